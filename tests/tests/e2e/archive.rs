//! A worker's materials are archived when the application is decided (standard 7.2.1): sealed
//! and content-addressed in the media store, readable back only with a reason, and kept —
//! neither the archive nor the application can be deleted or changed before two years.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::{AREZZO, TestServer};
use serde_json::json;

const ID_NUMBER: &str = "34052419800101001X";

fn apply(server: &TestServer) -> String {
    support::apply_as_worker(server, "archived-worker", ID_NUMBER)
}

fn sql(server: &TestServer, statement: &str) -> Result<u64, String> {
    let statement = statement.to_owned();
    server.block_on(async {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&server.state().db.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string())
    })
}

#[test]
fn a_decided_application_is_archived_sealed_read_back_with_a_reason_and_kept_two_years() {
    let server = TestServer::start();
    let scene = server.scene("archive", &AREZZO);
    let reviewer = &scene.operator;
    let id = apply(&server);

    // 1. Nothing is archived while the application waits; the decision archives it.
    let subject = format!("worker_application:{id}");
    let (_, none) = reviewer.get(&format!("/archives?subject={subject}"));
    assert_eq!(none, json!([]));
    let decide = format!("/onboarding/workers/{id}/decision");
    support::wait_real_name(reviewer, &id);
    let (status, decided) =
        reviewer.post(&decide, json!({ "decision": "approve", "reason": "ok" }));
    assert_eq!(status, 200, "{decided}");
    let (status, archives) = reviewer.get(&format!("/archives?subject={subject}"));
    assert_eq!(status, 200, "{archives}");
    let archives = archives.as_array().unwrap().clone();
    assert_eq!(archives.len(), 1);
    let record = &archives[0];
    assert_eq!(record["kind"], "worker_materials");
    assert_eq!(record["hash"].as_str().unwrap().len(), 64);
    let created = record["created_at"].as_str().unwrap();
    let until = record["retain_until"].as_str().unwrap();
    let years = |t: &str| t[..4].parse::<i32>().unwrap();
    assert_eq!(years(until) - years(created), 2, "{created} → {until}");

    // 2. Reading it back needs the permission and a reason, and is audited.
    let archive = record["id"].as_str().unwrap();
    let reveal = format!("/archives/{archive}/reveal");
    let finance = {
        server.add_operator("finance-clerk", &[flexwork_server::auth::Team::Finance]);
        server.client("finance-clerk")
    };
    assert_eq!(finance.post(&reveal, json!({ "reason": "curious" })).0, 403);
    assert_eq!(finance.get("/archives").0, 403);
    let (status, refused) = reviewer.post(&reveal, json!({ "reason": "" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("reason_required"))
    );
    let why = "labour inspection request 2026-117";
    let (status, document) = reviewer.post(&reveal, json!({ "reason": why }));
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["applicant"]["id_number"], ID_NUMBER);
    assert_eq!(document["decision"]["state"], "approved");
    let text = document["declaration_text"].as_str().unwrap();
    assert_eq!(
        document["signature"]["signed_text_sha256"],
        flexwork_sync::ContentHash::of(text.as_bytes()).to_hex(),
        "the archive holds exactly the text that was signed"
    );
    assert_eq!(document["consents"].as_array().unwrap().len(), 1);
    let (_, records) = reviewer.get("/audit?action=archive_revealed");
    assert_eq!(records[0]["detail"]["reason"], why);

    // 3. The archive is sealed at rest: no file of the server holds the ID number.
    let mut stack = vec![server.state().config.data_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let found = bytes
                    .windows(ID_NUMBER.len())
                    .any(|w| w == ID_NUMBER.as_bytes());
                assert!(!found, "{} holds the ID number", path.display());
            }
        }
    }

    // 4. Neither the archive row nor the application can be changed away or deleted young,
    //    by the application or by hand.
    let refused = [
        format!("DELETE FROM archives WHERE id = '{archive}'"),
        format!("UPDATE archives SET retain_until = 0 WHERE id = '{archive}'"),
        format!("DELETE FROM worker_applications WHERE id = '{id}'"),
    ];
    for statement in refused {
        let error = sql(&server, &statement).unwrap_err();
        assert!(error.contains("cannot be"), "{statement}: {error}");
    }

    // 5. Nor can its retention be shortened or cleared to get round that; the hourly
    //    backfill finds nothing left to archive and makes no second archive.
    for shortened in ["NULL", "1"] {
        let statement =
            format!("UPDATE worker_applications SET retain_until = {shortened} WHERE id = '{id}'");
        let error = sql(&server, &statement).unwrap_err();
        assert!(error.contains("cannot be shortened"), "{error}");
    }
    let again = server.block_on(flexwork_server::archive::archive_missing(server.state()));
    assert_eq!(again.unwrap(), 0);
    let (_, archives) = reviewer.get(&format!("/archives?subject={subject}"));
    assert_eq!(archives.as_array().unwrap().len(), 1);
}

#[test]
fn nobody_is_admitted_before_the_real_name_check_answers_or_after_it_mismatches() {
    let server = TestServer::start_with(|c| c.realname.sandbox.latency_ms = (1_500, 1_500));
    let scene = server.scene("mismatch", &AREZZO);
    let reviewer = &scene.operator;
    // Sequence digits 999: the sandbox's documented identity whose name does not match.
    let id = support::apply_as_worker(&server, "not-the-person", "340524198001019997");
    let decide = format!("/onboarding/workers/{id}/decision");
    let approve = json!({ "decision": "approve", "reason": "looks fine" });
    let (status, early) = reviewer.post(&decide, approve.clone());
    assert_eq!(
        (status, early["code"].as_str()),
        (409, Some("real_name_pending"))
    );
    let verdict = support::wait_real_name(reviewer, &id);
    assert!(verdict.starts_with("mismatch"), "{verdict}");
    let (status, refused) = reviewer.post(&decide, approve);
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("real_name_mismatch"))
    );
    let reject = json!({ "decision": "reject", "reason": "name does not match the ID" });
    let (status, rejected) = reviewer.post(&decide, reject);
    assert_eq!(
        (status, rejected["state"].as_str()),
        (200, Some("rejected"))
    );
}
