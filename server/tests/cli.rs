//! The account commands of the `flexwork` binary, on a fresh data folder: the way back in
//! when no administrator can sign in.

use std::process::{Command, Output};

/// Runs `flexwork` with a command line given as one string (no argument holds a space).
fn flexwork(data: &std::path::Path, line: &str, reason: Option<&str>) -> (bool, String) {
    let mut args: Vec<&str> = line.split(' ').collect();
    if let Some(reason) = reason {
        args.extend(["--reason", reason]);
    }
    let output: Output = Command::new(env!("CARGO_BIN_EXE_flexwork"))
        .args(&args)
        .env("FLEXWORK_DATA_DIR", data)
        .env("FLEXWORK_NEW_PASSWORD", "a-long-enough-password")
        .env_remove("FLEXWORK_DATABASE_URL")
        .output()
        .expect("running flexwork");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn an_administrator_is_suspended_once_and_reinstated_but_never_the_last_one() {
    let data = tempfile::tempdir().expect("temporary folder");
    let dir = data.path();
    let add = "account add --role operator --team administrator --login root-op --name Root";
    let (ok, text) = flexwork(dir, add, None);
    assert!(ok, "{text}");

    // An empty or short secret is refused in a sentence, not as an internal error.
    let output = Command::new(env!("CARGO_BIN_EXE_flexwork"))
        .args(["totp-code", ""])
        .output()
        .expect("running flexwork");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && said.contains("not base32"),
        "{said}"
    );
    assert!(!said.contains("internal error"), "{said}");

    // The API's spelling of a team works on the command line too.
    let liaison = "account add --role operator --team regulator_liaison --login rl-op --name R";
    let (ok, text) = flexwork(dir, liaison, None);
    assert!(ok, "{text}");

    let no_team = "account add --role operator --login x-op --name X";
    let (ok, text) = flexwork(dir, no_team, None);
    assert!(!ok && text.contains("at least one team"), "{text}");

    // The last active administrator cannot be suspended; with another one it can, once.
    let suspend = "account suspend --login root-op";
    let (ok, text) = flexwork(dir, suspend, Some("left the company"));
    assert!(!ok && text.contains("last active administrator"), "{text}");
    let other = "account add --role operator --team administrator --login other-op --name Other";
    assert!(flexwork(dir, other, None).0);
    let (ok, text) = flexwork(dir, suspend, Some("left the company"));
    assert!(ok && text.contains("account_suspended"), "{text}");
    let (ok, text) = flexwork(dir, suspend, Some("left the company"));
    assert!(!ok && text.contains("already suspended"), "{text}");

    let reinstate = "account reinstate --login ROOT-OP";
    let (ok, text) = flexwork(dir, reinstate, Some("came back"));
    assert!(ok, "{text}");

    // A reason must say something; root-op never set up an authenticator, so there is
    // nothing to reset, and it says so; an unknown login is refused.
    let reset = "account reset-second-factor --login root-op";
    let (ok, text) = flexwork(dir, reset, Some(" "));
    assert!(!ok && text.contains("reason"), "{text}");
    let (ok, text) = flexwork(dir, reset, Some("phone lost"));
    assert!(!ok && text.contains("no second factor"), "{text}");
    let (ok, _) = flexwork(dir, "account suspend --login nobody", Some("x"));
    assert!(!ok);
}

#[test]
fn the_ledger_check_reports_a_healthy_ledger_and_fails_on_a_tampered_one() {
    let data = tempfile::tempdir().expect("temporary folder");
    let dir = data.path();
    let (ok, text) = flexwork(dir, "ledger-check", None);
    assert!(ok && text.contains("\"events\": 0"), "{text}");

    // A running balance changed behind the ledger's back (the only ledger table a trigger
    // does not guard, since posting updates it) no longer matches its postings.
    let db = dir.join("flexwork.sqlite");
    let connection = rusqlite::Connection::open(&db).expect("database");
    connection
        .execute(
            "INSERT INTO ledger_accounts (account, normal_side, balance_fen, created_at) \
             VALUES ('escrow:tampered', 'credit', 500, 0)",
            [],
        )
        .expect("tampering");
    drop(connection);
    let (ok, text) = flexwork(dir, "ledger-check", None);
    assert!(!ok, "{text}");
    assert!(
        text.contains("escrow:tampered") && text.contains("inconsistent"),
        "{text}"
    );
}
