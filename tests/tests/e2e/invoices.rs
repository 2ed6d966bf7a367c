//! Invoices bill enterprises for paid work only, never more than was paid; corrections are
//! red-letter reversals; nothing is deleted.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use flexwork_server::auth::Team;
use serde_json::{Value, json};

use crate::support::{AREZZO, Client, Scene, TestServer};

/// A scene whose order went the whole way: evidence verified, completion confirmed, escrow
/// funded, statement confirmed by all three parties, settled, and paid out by the payout
/// run once the worker's daily cycle was due. Answers the scene, the settlement's id and
/// its gross amount.
fn paid_scene(server: &TestServer, tag: &str) -> (Scene, String, i64) {
    let scene = server.settled_scene(tag);
    server.backdate_settlement(&scene.order_id, 1);
    let path = format!("/orders/{}", scene.order_id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let trigger = flexwork_server::payouts::Trigger::Command;
        server
            .block_on(flexwork_server::payouts::run(server.state(), trigger))
            .unwrap();
        let (_, order) = scene.enterprise.get(&path);
        if order["status"] == "paid" {
            let settlement = &order["settlement"];
            let id = settlement["id"].as_str().unwrap().to_owned();
            return (scene, id, settlement["gross_fen"].as_i64().unwrap());
        }
        assert!(std::time::Instant::now() < deadline, "never paid: {order}");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn finance(server: &TestServer, login: &str) -> Client {
    server.add_operator(login, &[Team::Finance]);
    server.client(login)
}

fn enterprise_of(client: &Client) -> String {
    client.get("/me").1["organisation_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn paid_work_is_invoiced_once_and_a_wrong_invoice_is_reversed_in_red() {
    let server = TestServer::start();
    let (scene, settlement, gross) = paid_scene(&server, "inv");
    let finance = finance(&server, "fin-inv");
    let enterprise = enterprise_of(&scene.enterprise);

    // The finance team bills the enterprise: one line, the settlement's gross, a number.
    let (status, blue) = finance.post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(status, 200, "{blue}");
    assert_eq!(blue["status"], "issued", "{blue}");
    assert_eq!(blue["kind"], "blue");
    assert_eq!(blue["total_fen"], gross);
    assert_eq!(blue["lines"][0]["settlement_id"], settlement.as_str());
    assert_eq!(blue["lines"][0]["order_id"], scene.order_id.as_str());
    let number = blue["number"].as_str().unwrap();
    assert!(
        number.len() == 20 && number.chars().all(|c| c.is_ascii_digit()),
        "{number}"
    );
    let issued = blue["issued_at_ms"].as_i64().unwrap();
    let years = |field: &str| (blue[field].as_i64().unwrap() - issued) / (365 * 86_400_000);
    assert_eq!(years("stub_retain_until_ms"), 5);
    assert_eq!(years("paper_retain_until_ms"), 10);

    let order_path = format!("/orders/{}", scene.order_id);
    assert_eq!(scene.enterprise.get(&order_path).1["status"], "invoiced");

    // Nothing is left to bill.
    let (status, again) = finance.post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("nothing_to_invoice"))
    );

    // The enterprise reads its invoice; the worker and another enterprise cannot.
    let blue_id = blue["id"].as_str().unwrap();
    let (status, listed) = scene.enterprise.get("/invoices");
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let other = server.scene("inv-other", &AREZZO);
    assert_eq!(other.enterprise.get(&format!("/invoices/{blue_id}")).0, 404);
    assert_eq!(other.enterprise.get("/invoices").1, json!([]));
    let worker = server.device_client(&scene.worker_login);
    assert_eq!(worker.get("/invoices").0, 403);

    // A reversal needs a reason; then a red-letter invoice mirrors the original.
    let path = format!("/invoices/{blue_id}/reverse");
    let (status, refused) = finance.post(&path, json!({ "reason": "x" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("reason_required"))
    );
    let (status, red) = finance.post(
        &path,
        json!({ "reason": "billed the wrong buyer tax number" }),
    );
    assert_eq!(status, 200, "{red}");
    assert_eq!(red["kind"], "red");
    assert_eq!(red["status"], "issued");
    assert_eq!(red["total_fen"], -gross);
    assert_eq!(red["reverses_id"], blue_id);
    let (_, blue_now) = finance.get(&format!("/invoices/{blue_id}"));
    assert_eq!(blue_now["reversed_by"], red["id"]);
    assert_eq!(scene.enterprise.get(&order_path).1["status"], "paid");
    // Reversing again answers the same red invoice; a red one cannot be reversed.
    let (_, same) = finance.post(
        &path,
        json!({ "reason": "billed the wrong buyer tax number" }),
    );
    assert_eq!(same["id"], red["id"]);
    let red_path = format!("/invoices/{}/reverse", red["id"].as_str().unwrap());
    let (status, refused) =
        finance.post(&red_path, json!({ "reason": "a reversal of a reversal" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("not_reversible"))
    );

    // The settlement can be billed again, once.
    let (status, rebilled) = finance.post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(status, 200, "{rebilled}");
    assert_eq!(rebilled["total_fen"], gross);
    assert_ne!(rebilled["number"], blue["number"]);
    assert_eq!(scene.enterprise.get(&order_path).1["status"], "invoiced");
    let (_, all) = finance.get(&format!("/invoices?enterprise={enterprise}"));
    let total: i64 = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["total_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(total, gross, "billed in all, net of the reversal: {all}");
    // The order's own invoices: the first, its red-letter reversal and the new one.
    let (status, of_order) = scene
        .enterprise
        .get(&format!("/invoices?order_id={}", scene.order_id));
    assert_eq!(status, 200, "{of_order}");
    let numbers: Vec<&str> = of_order
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(numbers.len(), 3, "{of_order}");
    assert!(numbers.contains(&blue["number"].as_str().unwrap()));
    assert!(numbers.contains(&rebilled["number"].as_str().unwrap()));
    let (_, none) = finance.get("/invoices?order_id=no-such-order");
    assert_eq!(none, json!([]));

    // A page at a time: two, then the last one, in the order of the whole list.
    let page = |path: &str| crate::support::list_page(&finance, path);
    let whole: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let (first, cursor) = page(&format!("/invoices?enterprise={enterprise}&limit=2"));
    let cursor = cursor.expect("a cursor after the first page");
    let (rest, after) = page(&format!(
        "/invoices?enterprise={enterprise}&limit=2&cursor={cursor}"
    ));
    assert_eq!(after, None, "the last page has no cursor");
    assert_eq!([first, rest].concat(), whole);
    for (query, field) in [("limit=0", "limit"), ("cursor=nonsense!", "cursor")] {
        let (status, refused) = finance.get(&format!("/invoices?{query}"));
        assert_eq!(
            (status, refused["field"].as_str()),
            (400, Some(field)),
            "{refused}"
        );
    }
}

#[test]
fn the_database_refuses_to_bill_more_than_was_paid_or_to_change_invoices() {
    let server = TestServer::start();
    let (scene, settlement, gross) = paid_scene(&server, "inv-db");
    let finance = finance(&server, "fin-db");
    let enterprise = enterprise_of(&scene.enterprise);

    let (status, invoice) = finance.post(
        "/invoices",
        json!({ "enterprise_id": enterprise, "settlement_ids": [settlement] }),
    );
    assert_eq!(status, 200, "{invoice}");
    let invoice_id = invoice["id"].as_str().unwrap().to_owned();

    let pool = &server.state().db.pool;
    server.block_on(async {
        // A second invoice of one fen for the same settlement: refused by the database.
        let over = async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO invoices (id, enterprise_id, kind, total_fen, request_key, status, \
                   requested_by, created_at) \
                 VALUES ('x', $1, 'blue', 1, 'k', 'requested', 'me', 0)",
            )
            .bind(&enterprise)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO invoice_lines (invoice_id, settlement_id, amount_fen) \
                 VALUES ('x', $1, 1)",
            )
            .bind(&settlement)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await;
        let message = over.unwrap_err().to_string();
        assert!(message.contains("exceeds what was paid"), "{message}");

        for sql in [
            "UPDATE invoices SET total_fen = 1 WHERE id = $1",
            "UPDATE invoices SET number = '00000000000000000000' WHERE id = $1",
            "DELETE FROM invoices WHERE id = $1",
            "DELETE FROM invoice_lines WHERE invoice_id = $1",
            "UPDATE invoice_lines SET amount_fen = 1 WHERE invoice_id = $1",
        ] {
            let changed = sqlx::query(sql).bind(&invoice_id).execute(pool).await;
            assert!(changed.is_err(), "{sql} was allowed");
        }
    });
    let (_, kept) = finance.get(&format!("/invoices/{invoice_id}"));
    assert_eq!(kept["total_fen"], gross);
    assert_eq!(kept["number"], invoice["number"]);
}

#[test]
fn unpaid_settlements_and_other_enterprises_work_cannot_be_billed() {
    let server = TestServer::start();
    // Settled, but its payout is not due yet: not paid.
    let scene = server.settled_scene("inv-unpaid");
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["settlement"]["status"], "pending_payout", "{order}");
    let settlement = order["settlement"]["id"].as_str().unwrap().to_owned();
    let finance = finance(&server, "fin-unpaid");
    let enterprise = enterprise_of(&scene.enterprise);
    let (status, refused) = finance.post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("nothing_to_invoice"))
    );

    let other = server.scene("inv-unpaid-other", &AREZZO);
    let other_id = enterprise_of(&other.enterprise);
    let (status, refused) = finance.post(
        "/invoices",
        json!({ "enterprise_id": other_id, "settlement_ids": [settlement] }),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("not_invoiceable"))
    );
    // Only finance bills.
    let (status, _) = scene
        .enterprise
        .post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(status, 403);
}

#[test]
fn concurrent_bills_for_one_paid_settlement_issue_one_invoice() {
    let server = TestServer::start();
    let (scene, _, _) = paid_scene(&server, "inv-race");
    let enterprise = enterprise_of(&scene.enterprise);
    let clerks: Vec<Client> = (0..6)
        .map(|i| finance(&server, &format!("fin-race-{i}")))
        .collect();

    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = clerks
            .iter()
            .map(|c| s.spawn(|| c.post("/invoices", json!({ "enterprise_id": enterprise }))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let issued = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(issued, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        let code = body["code"].as_str().unwrap();
        assert_eq!(*status, 409);
        assert!(
            ["nothing_to_invoice", "exceeds_paid"].contains(&code),
            "{body}"
        );
    }
    let (_, all) = clerks[0].get("/invoices");
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[test]
fn an_invoice_whose_request_timed_out_is_issued_once_when_asked_again() {
    let server = TestServer::start_with(|config| {
        config.invoicing.sandbox.timeout_rate = 1.0;
        config.invoicing.sandbox.latency_ms = (0, 2);
        config.invoicing.sandbox.seed = Some(11);
    });
    let (scene, _, _) = paid_scene(&server, "inv-late");
    let finance = finance(&server, "fin-late");
    let enterprise = enterprise_of(&scene.enterprise);

    let (status, invoice) = finance.post(
        "/invoices",
        json!({ "enterprise_id": enterprise, "request_key": "late-1" }),
    );
    assert_eq!(status, 200, "{invoice}");
    assert_eq!(invoice["status"], "unknown", "{invoice}");
    assert!(invoice["number"].is_null());
    let id = invoice["id"].as_str().unwrap();
    // Retrying the request answers the same invoice, and bills nothing twice.
    let (_, retried) = finance.post(
        "/invoices",
        json!({ "enterprise_id": enterprise, "request_key": "late-1" }),
    );
    assert_eq!(retried["id"], id);

    // The resolver asks the service by the same key until it has an answer.
    let mut number = Value::Null;
    for _ in 0..30 {
        server
            .block_on(flexwork_server::invoices::resolve_unknown(server.state()))
            .unwrap();
        let (_, now) = finance.get(&format!("/invoices/{id}"));
        if now["status"] == "issued" {
            number = now["number"].clone();
            break;
        }
        assert_eq!(now["status"], "unknown", "{now}");
    }
    assert!(number.is_string(), "never issued");
    server
        .block_on(flexwork_server::invoices::resolve_unknown(server.state()))
        .unwrap();
    let (_, later) = finance.get(&format!("/invoices/{id}"));
    assert_eq!(later["number"], number);
    let (_, all) = finance.get("/invoices");
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[test]
fn invoice_numbers_never_repeat_across_a_restart_and_reversals_at_once_answer_one() {
    let mut server = TestServer::start();
    let (first, _, _) = paid_scene(&server, "inv-restart-a");
    let (second, _, _) = paid_scene(&server, "inv-restart-b");
    let clerk = finance(&server, "fin-restart");
    let body = |scene: &Scene| json!({ "enterprise_id": enterprise_of(&scene.enterprise) });
    let (status, before) = clerk.post("/invoices", body(&first));
    assert_eq!(status, 200, "{before}");

    server.stop();
    server.restart();
    let clerk = server.client("fin-restart");
    let (status, after) = clerk.post("/invoices", body(&second));
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "issued", "{after}");
    assert_ne!(after["number"], before["number"]);

    // Eight clerks reverse one invoice at once: one red invoice, answered to all of them,
    // and no error in the log.
    let path = format!("/invoices/{}/reverse", after["id"].as_str().unwrap());
    let reason = json!({ "reason": "billed under the wrong contract" });
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| clerk.post(&path, reason.clone())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let red = &answers[0].1["id"];
    assert!(red.is_string(), "{answers:?}");
    assert!(
        answers.iter().all(|(s, a)| *s == 200 && a["id"] == *red),
        "{answers:?}"
    );
    let logs = crate::support::captured_logs();
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("internal error") && l.contains("reverses_id")),
        "a reversal race logged an internal error"
    );

    let (status, unknown) = clerk.post("/invoices", json!({ "enterprise_id": "no-such-firm" }));
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
}
