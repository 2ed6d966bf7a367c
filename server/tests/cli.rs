//! The account commands of the `flexwork` binary, on a fresh data folder: the way back in
//! when no administrator can sign in.

use std::process::{Command, Output};

fn flexwork(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flexwork"))
        .args(args)
        .env("FLEXWORK_DATA_DIR", data)
        .env("FLEXWORK_NEW_PASSWORD", "a-long-enough-password")
        .env_remove("FLEXWORK_DATABASE_URL")
        .output()
        .expect("running flexwork")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_administrator_is_suspended_once_reinstated_and_has_the_second_factor_reset() {
    let data = tempfile::tempdir().expect("temporary folder");
    let dir = data.path();
    let add = [
        "account",
        "add",
        "--role",
        "operator",
        "--team",
        "administrator",
        "--login",
        "root-op",
        "--name",
        "Root",
    ];
    let created = flexwork(dir, &add);
    assert!(created.status.success(), "{}", text(&created));

    let no_team = flexwork(
        dir,
        &[
            "account", "add", "--role", "operator", "--login", "x-op", "--name", "X",
        ],
    );
    assert!(!no_team.status.success());
    assert!(
        text(&no_team).contains("at least one team"),
        "{}",
        text(&no_team)
    );

    let suspend = [
        "account",
        "suspend",
        "--login",
        "root-op",
        "--reason",
        "left the company",
    ];
    let first = flexwork(dir, &suspend);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("account_suspended"));
    let second = flexwork(dir, &suspend);
    assert!(!second.status.success());
    assert!(
        text(&second).contains("already suspended"),
        "{}",
        text(&second)
    );

    let reinstate = [
        "account",
        "reinstate",
        "--login",
        "root-op",
        "--reason",
        "came back",
    ];
    let back = flexwork(dir, &reinstate);
    assert!(back.status.success(), "{}", text(&back));

    let no_reason = flexwork(
        dir,
        &[
            "account",
            "reset-second-factor",
            "--login",
            "root-op",
            "--reason",
            " ",
        ],
    );
    assert!(!no_reason.status.success());
    assert!(text(&no_reason).contains("reason"), "{}", text(&no_reason));
    let reset = flexwork(
        dir,
        &[
            "account",
            "reset-second-factor",
            "--login",
            "root-op",
            "--reason",
            "phone lost",
        ],
    );
    assert!(reset.status.success(), "{}", text(&reset));

    let unknown = flexwork(
        dir,
        &["account", "suspend", "--login", "nobody", "--reason", "x"],
    );
    assert!(!unknown.status.success());
}
