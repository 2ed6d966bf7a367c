//! Money after the work: the three-party statement, the enterprise's escrow and the
//! settlement with tax, as the finance desk, the enterprise and the worker see them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::{AREZZO, Client, Phone, Scene, TaskSpec, TestServer, ms, task_body};
use serde_json::{Value, json};

/// A scene whose order is submitted with the Arezzo evidence, verified, approved where it
/// needs review, and confirmed by the enterprise: its statement is open.
fn confirmed_scene(server: &TestServer, tag: &str, fee_fen: i64) -> Scene {
    let task = TaskSpec { fee_fen, ..AREZZO };
    let scene = server.scene(tag, &task);
    submit_and_confirm(server, &scene, &scene.order_id);
    scene
}

/// Records the Arezzo evidence for `order_id` on the scene worker's phone, submits it, waits
/// for the verdict, approves it where it needs review, and confirms it as the enterprise.
fn submit_and_confirm(server: &TestServer, scene: &Scene, order_id: &str) {
    let mut phone = Phone::for_scene(server, scene);
    phone.record_arezzo_evidence(order_id);
    phone
        .device
        .submit(order_id, ms("2008-10-23T14:32:00Z"))
        .unwrap();
    phone.sync();
    let verified = server.wait_verified(&scene.enterprise, order_id);
    if verified["verdict"] == "needs_review" {
        let body = json!({ "decision": "approve", "reason": "camera clock known to be off" });
        let (status, body) = scene
            .operator
            .post(&format!("/orders/{order_id}/review"), body);
        assert_eq!(status, 200, "{body}");
    }
    let (status, confirmed) = scene
        .enterprise
        .post(&format!("/orders/{order_id}/confirm"), json!({}));
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "reconciling", "{confirmed}");
}

fn statement_of(scene: &Scene) -> Value {
    let (status, statement) = scene
        .enterprise
        .get(&format!("/orders/{}/statement", scene.order_id));
    assert_eq!(status, 200, "{statement}");
    statement
}

fn escrow_of(server: &TestServer, scene: &Scene) -> Value {
    let (status, escrow) = scene.enterprise.get("/enterprise/escrow");
    assert_eq!(status, 200, "{escrow}");
    let enterprise = escrow["enterprise_id"].as_str().unwrap();
    let (status, seen) = server
        .finance()
        .get(&format!("/enterprise/escrow?enterprise={enterprise}"));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["balance_fen"], escrow["balance_fen"]);
    escrow
}

fn ledger_healthy(server: &TestServer) {
    let report = server
        .block_on(flexwork_server::ledger::check(&server.state().db.pool))
        .unwrap();
    assert!(report.is_healthy(), "{report:?}");
}

fn confirm(client: &Client, statement_id: &str) -> (u16, Value) {
    client.post(&format!("/statements/{statement_id}/confirm"), json!({}))
}

#[test]
fn three_confirmations_settle_once_with_the_fee_and_the_tax() {
    // 1. A platform fee of 1.5 %; a task worth 20,000.00 CNY, confirmed by the enterprise.
    let server = TestServer::start_with(|c| c.settlement.platform_fee_basis_points = 150);
    let scene = confirmed_scene(&server, "three", 2_000_000);
    let statement = statement_of(&scene);
    assert_eq!(statement["gross_fen"], 2_000_000);
    assert_eq!(statement["fee_fen"], 30_000);
    assert_eq!(statement["total_fen"], 2_030_000);
    assert_eq!(statement["evidence_digest"].as_str().unwrap().len(), 64);
    let id = statement["id"].as_str().unwrap().to_owned();

    // 2. The enterprise deposits exactly the total.
    let (status, deposit) = server.deposit(&scene, 2_030_000, "BOC-0001");
    assert_eq!(status, 200, "{deposit}");
    assert_eq!(escrow_of(&server, &scene)["balance_fen"], 2_030_000);

    // 3. The platform and the enterprise confirm; twice changes nothing; not settled yet.
    assert_eq!(confirm(&scene.operator, &id).0, 200);
    let (status, twice) = confirm(&scene.operator, &id);
    assert_eq!(status, 200, "{twice}");
    let (_, after_two) = confirm(&scene.enterprise, &id);
    assert_eq!(after_two["status"], "open");
    assert_eq!(after_two["awaiting"], json!(["worker"]));
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        0
    );

    // 4. The worker confirms from the phone: settled. Tax by the cumulative method, the
    // worker's first income of the year: 20,000 − 4,000 − 5,000 = 11,000 taxable, 3 % = 330.
    let worker = server.device_client(&scene.worker_login);
    let (status, settled) = confirm(&worker, &id);
    assert_eq!(status, 200, "{settled}");
    assert_eq!(settled["status"], "settled");
    let settlement = &settled["settlement"];
    assert_eq!(settlement["tax_method"], "cumulative_2025");
    assert_eq!(settlement["tax_fen"], 33_000);
    assert_eq!(settlement["net_fen"], 1_967_000);
    assert_eq!(settlement["fee_fen"], 30_000);
    assert_eq!(settlement["status"], "pending_payout");

    // 5. The worker's own view shows gross, tax and net; the order is settled.
    let (status, mine) = worker.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["status"], "settled");
    assert_eq!(mine["settlement"]["gross_fen"], 2_000_000);
    assert_eq!(mine["settlement"]["tax_fen"], 33_000);
    assert_eq!(mine["settlement"]["net_fen"], 1_967_000);

    // 6. The escrow paid gross + fee; the movements say so; the ledger balances.
    let escrow = escrow_of(&server, &scene);
    assert_eq!(escrow["balance_fen"], 0);
    let movements: Vec<i64> = escrow["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["amount_fen"].as_i64().unwrap())
        .collect();
    assert_eq!(movements, vec![2_030_000, -2_030_000]);
    ledger_healthy(&server);

    // 7. A late confirmation is a no-op; every step is in the audit trail.
    assert_eq!(confirm(&scene.enterprise, &id).0, 200);
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        1
    );
    for action in [
        "statement_opened",
        "escrow_deposit_recorded",
        "statement_confirmed",
        "statement_settled",
    ] {
        let (_, records) = scene.operator.get(&format!("/audit?action={action}"));
        let expected = if action == "statement_confirmed" {
            3
        } else {
            1
        };
        assert_eq!(records.as_array().unwrap().len(), expected, "{action}");
    }
}

#[test]
fn a_dispute_stops_it_and_a_reissue_settles_the_corrected_amount() {
    // 1. A 3,000.00 CNY statement, escrow funded; the worker disputes it.
    let server = TestServer::start();
    let scene = confirmed_scene(&server, "dispute", 300_000);
    assert_eq!(server.deposit(&scene, 1_000_000, "ICBC-77").0, 200);
    let first = statement_of(&scene)["id"].as_str().unwrap().to_owned();
    let worker = server.device_client(&scene.worker_login);
    assert_eq!(confirm(&scene.enterprise, &first).0, 200);
    let dispute = json!({ "reason": "twice the shops were checked; agreed 4,000 CNY" });
    let (status, disputed) = worker.post(&format!("/statements/{first}/dispute"), dispute);
    assert_eq!(status, 200, "{disputed}");
    assert_eq!(disputed["status"], "disputed");
    assert_eq!(disputed["disputed_party"], "worker");

    // 2. Nothing settles while it is disputed; confirming it is refused with a stable code.
    let (status, refused) = confirm(&scene.operator, &first);
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("statement_disputed"))
    );
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["status"], "disputed");
    let (_, listed) = scene.operator.get("/statements?status=disputed");
    assert!(listed.as_array().unwrap().iter().any(|s| s["id"] == *first));
    let (status, bad) = scene.operator.get("/statements?status=paused");
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_status"))
    );

    // 3. The finance desk reissues it at 4,000.00 CNY with a reason (not below the task's
    // 3,000.00 CNY minimum); the old version is superseded and cannot be confirmed; a plain
    // reviewer may not resolve.
    let finance = server.finance();
    let resolve =
        |client: &Client, body: Value| client.post(&format!("/statements/{first}/resolve"), body);
    let reissue = json!({
        "action": "reissue", "gross_fen": 400_000, "reason": "twice the shops, as agreed",
    });
    assert_eq!(resolve(&scene.operator, reissue.clone()).0, 403);
    let (status, bad) = resolve(
        &finance,
        json!({ "action": "reissue", "reason": "no amount" }),
    );
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_amount"))
    );
    let (status, bad) = resolve(
        &finance,
        json!({ "action": "reissue", "gross_fen": 150_000, "reason": "half the shops" }),
    );
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_amount")),
        "below the task's minimum fee"
    );
    let (status, second) = resolve(&finance, reissue.clone());
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["version"], 2);
    assert_eq!(second["gross_fen"], 400_000);
    assert_eq!(second["status"], "open");
    assert_eq!(second["reissue_reason"], "twice the shops, as agreed");
    assert_eq!(second["awaiting"].as_array().unwrap().len(), 3);
    let (status, again) = resolve(&finance, reissue);
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("statement_not_disputed"))
    );
    let (status, stale) = confirm(&scene.enterprise, &first);
    assert_eq!(
        (status, stale["code"].as_str()),
        (409, Some("statement_superseded"))
    );

    // 4. Three confirmations of the new version settle 4,000.00 CNY, once.
    let settled = server.confirm_statement(&scene);
    assert_eq!(settled["id"], second["id"]);
    assert_eq!(settled["settlement"]["gross_fen"], 400_000);
    assert_eq!(escrow_of(&server, &scene)["balance_fen"], 600_000);
    ledger_healthy(&server);

    // 5. A statement's amounts cannot be changed behind the API's back.
    let tamper = server.block_on(
        sqlx::query("UPDATE statements SET gross_fen = 1 WHERE order_id = $1")
            .bind(&scene.order_id)
            .execute(&server.state().db.pool),
    );
    assert!(tamper.is_err(), "the amounts of a statement changed");
    for sql in [
        "DELETE FROM statements",
        "DELETE FROM deposits",
        "UPDATE deposits SET amount_fen = 1",
        "UPDATE statement_confirmations SET party = 'worker'",
        "DELETE FROM statement_confirmations",
    ] {
        let changed = server.block_on(sqlx::query(sql).execute(&server.state().db.pool));
        assert!(changed.is_err(), "{sql} went through");
    }

    // 6. Another dispute ends void: no pay, the order is void.
    let other = confirmed_scene(&server, "void", 300_000);
    let id = statement_of(&other)["id"].as_str().unwrap().to_owned();
    let body = json!({ "reason": "the work was never done" });
    assert_eq!(
        other
            .enterprise
            .post(&format!("/statements/{id}/dispute"), body)
            .0,
        200
    );
    let void = json!({ "action": "void", "reason": "the enterprise showed the shop closed" });
    let (status, voided) = finance.post(&format!("/statements/{id}/resolve"), void);
    assert_eq!(status, 200, "{voided}");
    assert_eq!(voided["status"], "void");
    let (_, order) = other.enterprise.get(&format!("/orders/{}", other.order_id));
    assert_eq!(order["status"], "void");
    let (status, refused) = confirm(&other.operator, &id);
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("statement_void"))
    );
    assert_eq!(
        server.count("settlements WHERE order_id", &other.order_id),
        0
    );
}

#[test]
fn without_escrow_it_waits_for_funds_and_a_deposit_settles_it() {
    // 1. Confirmed by all three with no money in escrow: awaiting funds, nothing written.
    let server = TestServer::start();
    let scene = confirmed_scene(&server, "funds", 300_000);
    let confirmed = server.confirm_statement(&scene);
    assert_eq!(confirmed["status"], "awaiting_funds", "{confirmed}");
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["status"], "awaiting_funds");
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        0
    );
    assert_eq!(
        server.count("ledger_events WHERE object_id", &scene.order_id),
        0
    );

    // 2. Bad deposits are refused with a reason.
    let finance = server.finance();
    let enterprise = order["enterprise_id"].as_str().unwrap();
    let path = format!("/enterprises/{enterprise}/deposits");
    for (body, code) in [
        (
            json!({ "amount_fen": 0, "bank_reference": "A1", "value_date": "2026-01-05" }),
            "invalid_amount",
        ),
        (
            json!({ "amount_fen": 5, "bank_reference": "A 1;", "value_date": "2026-01-05" }),
            "invalid_bank_reference",
        ),
        (
            json!({ "amount_fen": 5, "bank_reference": "A1", "value_date": "5 Jan" }),
            "invalid_date",
        ),
        (
            json!({ "amount_fen": 5, "bank_reference": "A1", "value_date": "2999-01-01" }),
            "date_in_future",
        ),
    ] {
        let (status, refused) = finance.post(&path, body);
        assert_eq!((status, refused["code"].as_str()), (400, Some(code)));
    }
    let (status, _) = finance.post(
        "/enterprises/no-such-enterprise/deposits",
        json!({ "amount_fen": 5, "bank_reference": "A1", "value_date": "2026-01-05" }),
    );
    assert_eq!(status, 404);

    // 3. A deposit too small leaves it waiting; the same deposit again is the same deposit;
    // another amount under its reference is refused.
    let (status, part) = server.deposit(&scene, 100_000, "CCB-1");
    assert_eq!(status, 200, "{part}");
    let (_, again) = server.deposit(&scene, 100_000, "CCB-1");
    assert_eq!(again["id"], part["id"]);
    let (status, reused) = server.deposit(&scene, 200_000, "CCB-1");
    assert_eq!(
        (status, reused["code"].as_str()),
        (409, Some("bank_reference_reused"))
    );
    // The reference is the bank's whatever its case or spaces: "dup" after "DUP" is the same.
    let (status, dup) = server.deposit(&scene, 50_000, "DUP");
    assert_eq!(status, 200, "{dup}");
    let (status, again) = server.deposit(&scene, 50_000, " dup ");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], dup["id"]);
    assert_eq!(again["bank_reference"], "DUP");
    let (status, reused) = server.deposit(&scene, 60_000, "dup");
    assert_eq!(
        (status, reused["code"].as_str()),
        (409, Some("bank_reference_reused"))
    );
    assert_eq!(statement_of(&scene)["status"], "awaiting_funds");
    assert_eq!(escrow_of(&server, &scene)["balance_fen"], 150_000);

    // 4. The rest arrives: the deposit settles the waiting statement at once.
    assert_eq!(server.deposit(&scene, 250_000, "CCB-2").0, 200);
    let statement = statement_of(&scene);
    assert_eq!(statement["status"], "settled", "{statement}");
    assert_eq!(statement["settlement"]["net_fen"], 300_000);
    let escrow = escrow_of(&server, &scene);
    assert_eq!(escrow["balance_fen"], 100_000);
    assert_eq!(escrow["deposits"].as_array().unwrap().len(), 3);
    ledger_healthy(&server);
}

#[test]
fn concurrent_confirmations_settle_exactly_once() {
    // 1. A funded statement.
    let server = TestServer::start();
    let scene = confirmed_scene(&server, "race", 300_000);
    assert_eq!(server.deposit(&scene, 1_000_000, "ABC-9").0, 200);
    let id = statement_of(&scene)["id"].as_str().unwrap().to_owned();
    let workers: Vec<Client> = (0..2)
        .map(|_| server.device_client(&scene.worker_login))
        .collect();

    // 2. Every party confirms from many threads at once while settlement is also triggered
    // directly.
    let state = server.state().clone();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let direct = s.spawn(|| {
            server.block_on(async {
                let tries = (0..16).map(|_| {
                    let (state, id) = (state.clone(), id.clone());
                    tokio::spawn(async move {
                        flexwork_server::settlement::settle_statement(&state, &id).await
                    })
                });
                for handle in tries.collect::<Vec<_>>() {
                    handle.await.unwrap().unwrap();
                }
            })
        });
        let mut handles = Vec::new();
        for round in 0..6 {
            let clients = [&scene.operator, &scene.enterprise, &workers[round % 2]];
            for client in clients {
                let id = &id;
                handles.push(s.spawn(move || confirm(client, id).0));
            }
        }
        direct.join().unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // 3. All answered; one settlement, one ledger entry, the escrow debited once.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        1
    );
    let key = format!("settlement:{}", scene.order_id);
    assert_eq!(server.count("ledger_events WHERE idempotency_key", &key), 1);
    assert_eq!(statement_of(&scene)["status"], "settled");
    assert_eq!(escrow_of(&server, &scene)["balance_fen"], 700_000);
    ledger_healthy(&server);
}

#[test]
fn two_settlements_of_one_worker_at_once_withhold_the_cumulative_tax_once() {
    // 1. One worker, two orders of 20,000.00 CNY each, both confirmed by platform and
    // enterprise, the escrow funded for both.
    let server = TestServer::start();
    let scene = confirmed_scene(&server, "twice", 2_000_000);
    let task = TaskSpec {
        fee_fen: 2_000_000,
        ..AREZZO
    };
    let second_task = server.publish_task(&scene.enterprise, &scene.operator, task_body(&task));
    let (status, second) = scene.enterprise.post(
        &format!("/tasks/{second_task}/orders"),
        json!({ "worker_login": scene.worker_login }),
    );
    assert_eq!(status, 200, "{second}");
    let second_order = second["id"].as_str().unwrap().to_owned();
    submit_and_confirm(&server, &scene, &second_order);
    assert_eq!(server.deposit(&scene, 4_000_000, "SPDB-3").0, 200);
    let mut ids = Vec::new();
    for order in [&scene.order_id, &second_order] {
        let (_, statement) = scene.enterprise.get(&format!("/orders/{order}/statement"));
        let id = statement["id"].as_str().unwrap().to_owned();
        assert_eq!(confirm(&scene.operator, &id).0, 200);
        assert_eq!(confirm(&scene.enterprise, &id).0, 200);
        ids.push(id);
    }

    // 2. The worker confirms both at once from two phones.
    let phones: Vec<Client> = (0..2)
        .map(|_| server.device_client(&scene.worker_login))
        .collect();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = phones
            .iter()
            .zip(&ids)
            .map(|(phone, id)| s.spawn(move || confirm(phone, id).1))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // 3. Whichever came first withheld 330 (taxable 16,000 − 5,000 = 11,000 at 3 %); the
    // other saw it: cumulative 40,000 − 8,000 − 5,000 (one month) = 27,000 → 810 − 330 = 480.
    let mut taxes: Vec<i64> = answers
        .iter()
        .map(|a| a["settlement"]["tax_fen"].as_i64().unwrap())
        .collect();
    taxes.sort_unstable();
    assert_eq!(taxes, vec![33_000, 48_000], "{answers:?}");
    assert_eq!(escrow_of(&server, &scene)["balance_fen"], 0);
    ledger_healthy(&server);
}

#[test]
fn the_periodic_retry_settles_a_statement_once_funds_are_there() {
    // 1. Retried every second; confirmed by all three with no funds: it waits.
    let server = TestServer::start_with(|c| c.settlement.retry_interval_secs = 1);
    let scene = confirmed_scene(&server, "retry", 300_000);
    assert_eq!(server.confirm_statement(&scene)["status"], "awaiting_funds");

    // 2. Money reaches the escrow without a deposit call (as a ledger correction would):
    // the periodic job, not a request, settles the statement.
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    let enterprise = order["enterprise_id"].as_str().unwrap().to_owned();
    server.block_on(async {
        use flexwork_server::ledger::{Account, Entry, post};
        let state = server.state();
        let mut tx = state.db.begin_write().await.unwrap();
        let entry = Entry::new("deposit", "retry-test", "retry-test")
            .debit(Account::Bank, 300_000)
            .credit(Account::Escrow(enterprise), 300_000);
        post(&mut tx, &entry).await.unwrap();
        tx.commit().await.unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while statement_of(&scene)["status"] != "settled" {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiting statement was not retried"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        server.count("settlements WHERE order_id", &scene.order_id),
        1
    );
    ledger_healthy(&server);
}

#[test]
fn dispute_reasons_are_masked_and_a_reissue_stays_within_the_fee_bounds() {
    let server = TestServer::start();
    let numbers = "call 13900001111, ID 440101199001011234";
    let plain = ["13900001111", "440101199001011234"];
    let pool = &server.state().db.pool;
    let stored = |sql: &'static str, id: &str| -> String {
        let row = server
            .block_on(sqlx::query(sql).bind(id).fetch_one(pool))
            .unwrap();
        sqlx::Row::try_get::<Option<String>, _>(&row, "r")
            .unwrap()
            .unwrap_or_default()
    };
    let assert_masked = |what: &str, text: &str| {
        assert!(!text.is_empty(), "{what} is empty");
        for number in plain {
            assert!(!text.contains(number), "{what} holds {number}: {text}");
        }
    };

    // The enterprise disputes the submitted work: the reason comes back and is kept masked.
    let scene = server.scene("masked", &AREZZO);
    let mut phone = Phone::for_scene(&server, &scene);
    phone.record_arezzo_evidence(&scene.order_id);
    phone
        .device
        .submit(&scene.order_id, ms("2008-10-23T14:32:00Z"))
        .unwrap();
    phone.sync();
    server.wait_verified(&scene.enterprise, &scene.order_id);
    let body = json!({ "reason": format!("not done; {numbers}") });
    let (status, disputed) = scene
        .enterprise
        .post(&format!("/orders/{}/dispute", scene.order_id), body);
    assert_eq!(status, 200, "{disputed}");
    assert_masked(
        "the answer",
        disputed["confirmation_reason"].as_str().unwrap(),
    );
    let sql = "SELECT confirmation_reason AS r FROM orders WHERE id = $1";
    assert_masked("orders.confirmation_reason", &stored(sql, &scene.order_id));

    // The statement's dispute and resolution reasons are stored masked too.
    let scene = confirmed_scene(&server, "masked-statement", 300_000);
    let id = statement_of(&scene)["id"].as_str().unwrap().to_owned();
    let body = json!({ "reason": format!("wrong amount; {numbers}") });
    let (status, disputed) = scene
        .enterprise
        .post(&format!("/statements/{id}/dispute"), body);
    assert_eq!(status, 200, "{disputed}");
    assert_masked("the answer", disputed["dispute_reason"].as_str().unwrap());
    let sql = "SELECT dispute_reason AS r FROM statements WHERE id = $1";
    assert_masked("statements.dispute_reason", &stored(sql, &id));

    // A reissue outside 1..=100000000 fen is refused with the bounds named.
    let finance = server.finance();
    let resolve = |gross: i64| {
        let body = json!({
            "action": "reissue", "gross_fen": gross, "reason": format!("agreed; {numbers}"),
        });
        finance.post(&format!("/statements/{id}/resolve"), body)
    };
    for gross in [0, 100_000_001, i64::MAX] {
        let (status, bad) = resolve(gross);
        assert_eq!(
            (status, bad["code"].as_str()),
            (400, Some("invalid_amount")),
            "{gross}"
        );
        assert!(
            bad["message"]
                .as_str()
                .unwrap()
                .contains("from 1 to 100000000"),
            "{bad}"
        );
    }
    // Nor below the task's minimum fee (here 3,000.00 CNY).
    let (status, bad) = resolve(299_999);
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_amount"))
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("minimum fee of 300000 fen"),
        "{bad}"
    );
    let (status, second) = resolve(350_000);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["gross_fen"], 350_000);
    assert_masked("the answer", second["reissue_reason"].as_str().unwrap());
    let sql = "SELECT resolution_reason AS r FROM statements WHERE id = $1";
    assert_masked("statements.resolution_reason", &stored(sql, &id));
    let sql = "SELECT reissue_reason AS r FROM statements WHERE id = $1";
    assert_masked(
        "statements.reissue_reason",
        &stored(sql, second["id"].as_str().unwrap()),
    );
}
