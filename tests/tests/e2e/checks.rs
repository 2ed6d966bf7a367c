//! Authenticity checks (5.2), regulator reporting (5.4.7) and deregistration (4.2.6, 5.6)
//! through HTTP: samples drawn once per date, risk findings, quarterly screening, call-back
//! records kept with the order, exports written to the outbox with their SHA-256 and
//! identities masked, and accounts closed within three working days with nothing deleted.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support::{self, AREZZO, Scene, TestServer, anonymous_client, ms, password_of};
use flexwork_server::auth::{Role, Team};
use serde_json::{Value, json};

/// Settles the scene's order (see [`TestServer::settle`]); returns its settlement.
fn settle(server: &TestServer, scene: &Scene) -> Value {
    server.settle(scene);
    let (status, settlement) = scene
        .enterprise
        .get(&format!("/orders/{}/settlement", scene.order_id));
    assert_eq!(status, 200, "{settlement}");
    settlement
}

fn account_id(client: &support::Client) -> String {
    let (status, me) = client.get("/me");
    assert_eq!(status, 200, "{me}");
    me["account_id"].as_str().unwrap().to_owned()
}

fn items(client: &support::Client, query: &str) -> Vec<Value> {
    let (status, items) = client.get(&format!("/checks/items?{query}"));
    assert_eq!(status, 200, "{items}");
    items.as_array().unwrap().clone()
}

fn sha256_hex(bytes: &[u8]) -> String {
    flexwork_sync::ContentHash::of(bytes).to_hex()
}

fn today_shanghai() -> String {
    flexwork_server::shanghai_date(flexwork_server::now_ms())
}

#[test]
fn samples_are_drawn_once_per_date_and_their_findings_are_kept_with_the_order() {
    let server = TestServer::start_with(|config| {
        config.checks.enterprise_sample_percent = 100;
        config.checks.worker_sample_percent = 100;
        config.checks.order_sample_percent = 100;
    });
    let scene = server.scene("chk", &AREZZO);
    settle(&server, &scene);
    let enterprise_id = account_id(&scene.enterprise);
    server.add_operator("risk-officer", &[Team::Risk]);
    server.add_operator("support-agent", &[Team::Support]);
    let risk = server.client("risk-officer");
    let support_agent = server.client("support-agent");

    // The risk team draws a date by hand; the same date again draws nothing new.
    let (status, first) = risk.post("/checks/run", json!({ "date": "2026-11-02" }));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["already_drawn"], false);
    assert_eq!(first["enterprises"], 1, "{first}");
    assert_eq!(first["orders"], 1, "{first}");
    assert_eq!(first["workers"], 1, "{first}");
    let (status, again) = risk.post("/checks/run", json!({ "date": "2026-11-02" }));
    assert_eq!(status, 200);
    assert_eq!(again["already_drawn"], true);
    assert_eq!(again["enterprises"], 1);
    let risk_items = items(&risk, "queue=enterprise_risk");
    let drawn: Vec<&Value> = risk_items
        .iter()
        .filter(|i| i["period"] == "2026-11-02")
        .collect();
    assert_eq!(drawn.len(), 1, "{risk_items:?}");
    assert_eq!(drawn[0]["subject_id"], enterprise_id.as_str());
    let (status, bad) = risk.post("/checks/run", json!({ "date": "2026-02-30" }));
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_date")));
    let (status, _) = support_agent.post("/checks/run", json!({}));
    assert_eq!(status, 403, "drawing is for the risk team");

    // A risk finding closes the item once; its team alone works the queue.
    let item = drawn[0]["id"].as_str().unwrap();
    let close = format!("/checks/items/{item}/close");
    let (status, bad) = risk.post(
        &close,
        json!({ "outcome": "fine", "notes": "looked at it" }),
    );
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_outcome"))
    );
    let (status, bad) = risk.post(&close, json!({ "outcome": "clear", "notes": "" }));
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("notes_required"))
    );
    let finding = json!({ "outcome": "concern", "notes": "licence address differs from site" });
    let (status, closed) = support_agent.post(&close, finding.clone());
    assert_eq!(status, 403, "{closed}");
    let (status, closed) = risk.post(&close, finding.clone());
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "concern");
    let (status, twice) = risk.post(&close, finding);
    assert_eq!(
        (status, twice["code"].as_str()),
        (409, Some("already_closed"))
    );
    assert_eq!(
        support_agent.get("/checks/items?queue=enterprise_risk").0,
        403
    );
    assert!(
        items(&risk, "queue=enterprise_risk")
            .iter()
            .all(|i| i["id"] != item),
        "closed items leave the open queue"
    );
    let with_closed = items(&risk, "queue=enterprise_risk&include_closed=true");
    assert!(with_closed.iter().any(|i| i["id"] == item));

    // Support calls the sampled order back, with a recording attached.
    let samples = items(&support_agent, "queue=order_sample");
    let sample = samples
        .iter()
        .find(|i| i["subject_id"] == scene.order_id.as_str())
        .expect("the submitted order is drawn");
    let sample_id = sample["id"].as_str().unwrap();
    let attach = format!("/checks/items/{sample_id}/attachments");
    let (status, refused) = support_agent.send_raw(
        reqwest::Method::POST,
        &attach,
        b"plain words".to_vec(),
        "text/plain",
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let mut recording = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    recording.extend_from_slice(&[0x55; 2048]);
    let (status, stored) = support_agent.send_raw(
        reqwest::Method::POST,
        &attach,
        recording.clone(),
        "audio/mpeg",
    );
    assert_eq!(status, 200, "{stored}");
    let hash = stored["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash, sha256_hex(&recording));
    let close = format!("/checks/items/{sample_id}/close");
    let call = json!({
        "outcome": "clear", "notes": "worker confirms the visit on 23 October",
        "attachments": [hash],
    });
    let (status, bad) = support_agent.post(&close, call.clone());
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_kind")));
    let mut unknown = call.clone();
    unknown["kind"] = json!("call_back");
    unknown["attachments"] = json!(["00".repeat(32)]);
    let (status, bad) = support_agent.post(&close, unknown);
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("unknown_attachment"))
    );
    let mut call = call;
    call["kind"] = json!("call_back");
    let (status, closed) = support_agent.post(&close, call);
    assert_eq!(status, 200, "{closed}");

    // The record is part of the order's view for everyone who reads the order.
    let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
    let records = order["verification_records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{order}");
    assert_eq!(records[0]["kind"], "call_back");
    assert_eq!(records[0]["outcome"], "clear");
    assert_eq!(records[0]["attachments"], json!([hash]));
    assert_eq!(records[0]["item_id"], sample_id);

    // Neither the record nor a closed check can be changed or removed, whatever tool asks.
    let pool = &server.state().db.pool;
    for sql in [
        "UPDATE verification_records SET outcome = 'serious'",
        "DELETE FROM verification_records",
        "UPDATE check_items SET outcome = 'clear' WHERE closed_at IS NOT NULL",
        "DELETE FROM check_items",
    ] {
        let result = server.block_on(sqlx::query(sql).execute(pool));
        assert!(result.is_err(), "{sql} must be refused");
    }
    let (_, order) = scene.operator.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["verification_records"][0]["outcome"], "clear");

    // Quarterly screening: the current quarter is outstanding until all four dimensions
    // are recorded; a past quarter left open is overdue.
    let (status, _) = risk.post("/checks/run", json!({}));
    assert_eq!(status, 200);
    let (status, screening) = risk.get("/checks/screening");
    assert_eq!(status, 200, "{screening}");
    let entry = screening["enterprises"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["enterprise_id"] == enterprise_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["state"], "outstanding");
    assert_eq!(screening["ended"], false);
    let close = format!("/checks/items/{}/close", entry["item_id"].as_str().unwrap());
    let partial = json!({
        "outcome": "clear", "notes": "quarterly screening done",
        "dimensions": { "entity": "registered and active", "business": "scope matches" },
    });
    let (status, bad) = risk.post(&close, partial);
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("dimensions_required"))
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("operations, funds")
    );
    let full = json!({
        "outcome": "clear", "notes": "quarterly screening done",
        "dimensions": {
            "entity": "registered and active", "business": "scope matches",
            "operations": "site visited", "funds": "deposits match payouts",
        },
    });
    let (status, closed) = risk.post(&close, full);
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["dimensions"]["funds"], "deposits match payouts");
    let (_, screening) = risk.get("/checks/screening");
    assert_eq!(screening["done"], 1, "{screening}");
    assert_eq!(screening["outstanding"], 0, "{screening}");

    let (status, _) = risk.post("/checks/run", json!({ "date": "2025-02-01" }));
    assert_eq!(status, 200);
    let (_, past) = risk.get("/checks/screening?quarter=2025-Q1");
    assert_eq!(past["ended"], true);
    assert_eq!(past["overdue"], 1, "{past}");
    assert_eq!(past["enterprises"][0]["state"], "overdue");
    let (status, bad) = risk.get("/checks/screening?quarter=2025-Q5");
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_quarter"))
    );
    assert_eq!(support_agent.get("/checks/screening").0, 403);
}

#[test]
fn regulator_exports_are_written_hashed_masked_sealed_and_audited() {
    let server = TestServer::start();
    let scene = server.scene("reg", &AREZZO);
    let settled = settle(&server, &scene);
    server.add_operator("liaison", &[Team::RegulatorLiaison]);
    let liaison = server.client("liaison");
    server.add_account(Role::Regulator, "inspector");
    let inspector = server.client("inspector");

    // An admitted worker with identity on file, paid for one order this quarter.
    let id_number = "34052419800101001X";
    let application = support::apply_as_worker(&server, "paid-applicant", id_number);
    support::wait_real_name(&scene.operator, &application);
    let decision = json!({ "decision": "approve", "reason": "documents match" });
    let path = format!("/onboarding/workers/{application}/decision");
    let (status, decided) = scene.operator.post(&path, decision);
    assert_eq!(status, 200, "{decided}");
    let applicant = account_id(&server.client("paid-applicant"));
    let (status, order) = scene.enterprise.post(
        &format!("/tasks/{}/orders", scene.task_id),
        json!({ "worker_login": "paid-applicant" }),
    );
    assert_eq!(status, 200, "{order}");
    let enterprise_id = account_id(&scene.enterprise);
    let insert = sqlx::query(
        "INSERT INTO settlements (id, order_id, worker_id, enterprise_id, gross_fen, tax_fen, \
           net_fen, tax_method, status, created_at) \
         VALUES ('s-fixture', $1, $2, $3, 123456, 2345, 121111, 'fixture', 'paid', $4)",
    )
    .bind(order["id"].as_str().unwrap())
    .bind(&applicant)
    .bind(&enterprise_id)
    .bind(flexwork_server::now_ms());
    server
        .block_on(insert.execute(&server.state().db.pool))
        .unwrap();

    let quarter = flexwork_server::checks::quarter_of(&today_shanghai()).unwrap();
    let (status, income) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "worker_income", "period": quarter }),
    );
    assert_eq!(status, 200, "{income}");
    assert_eq!(income["records"], 2, "{income}");
    assert_eq!(income["version"], 1);
    assert_eq!(income["adapter"], "outbox");

    // The file is in the outbox, whole, with the recorded SHA-256, and masked.
    let outbox = server.state().config.data_dir.join("regulator-outbox");
    let file = outbox.join(income["file_name"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(income["sha256"], sha256_hex(&bytes));
    assert_eq!(income["size"], bytes.len());
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        !text.contains(id_number),
        "no plaintext ID number in the outbox"
    );
    assert!(!text.contains("王小明"), "no plaintext name in the outbox");
    let content: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(content["kind"], "worker_income");
    let workers = content["workers"].as_array().unwrap();
    let paid = workers
        .iter()
        .find(|w| w["worker_id"] == applicant.as_str())
        .unwrap();
    assert_eq!(paid["id_number"], "340524********001X");
    assert_eq!(paid["income"]["gross_fen"], 123_456);
    assert_eq!(paid["income"]["tax_withheld_fen"], 2_345);
    assert_eq!(paid["income"]["net_paid_fen"], 121_111);
    let worker = workers
        .iter()
        .find(|w| w["worker_id"] != applicant.as_str())
        .unwrap();
    assert_eq!(paid["income"]["settled_unpaid_fen"], 0);
    assert_eq!(worker["identity_on_file"], false);
    // Settled but not yet paid out: owed, not paid.
    assert_eq!(settled["status"], "pending_payout", "{settled}");
    assert_eq!(worker["income"]["settlements"], 1);
    assert_eq!(worker["income"]["paid_settlements"], 0);
    assert_eq!(worker["income"]["gross_fen"], 0);
    assert_eq!(worker["income"]["tax_withheld_fen"], 0);
    assert_eq!(worker["income"]["net_paid_fen"], 0);
    assert_eq!(worker["income"]["settled_unpaid_fen"], settled["net_fen"]);

    // The full identities go only into the sealed document the file names.
    let sealed = income["sealed_hash"].as_str().unwrap();
    assert_eq!(content["sealed_identity_document"], sealed);
    let hash = sealed.parse().unwrap();
    let opened = server.block_on(server.state().media.get(&hash)).unwrap();
    let opened: Value = serde_json::from_slice(&opened).unwrap();
    let full = opened["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker_id"] == applicant.as_str())
        .unwrap();
    assert_eq!(full["id_number"], id_number);
    assert_eq!(full["name"], "王小明");

    // Orders with their evidence summary.
    let today = today_shanghai();
    let period = format!("{today}..{today}");
    let (status, orders) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "orders", "period": period }),
    );
    assert_eq!(status, 200, "{orders}");
    assert_eq!(orders["records"], 2, "{orders}");
    let (status, read) = inspector.get(&format!(
        "/regulator/exports/{}",
        orders["id"].as_str().unwrap()
    ));
    assert_eq!(status, 200, "{read}");
    let listed = read["content"]["orders"].as_array().unwrap();
    let evidenced = listed
        .iter()
        .find(|o| o["order_id"] == scene.order_id.as_str())
        .unwrap();
    assert_eq!(evidenced["status"], "settled");
    assert_eq!(evidenced["photos"], 1);
    assert_eq!(evidenced["signature_present"], true);
    assert!(!evidenced["verdict"].is_null());
    let bare = listed
        .iter()
        .find(|o| o["order_id"] == order["id"])
        .unwrap();
    assert_eq!(bare["photos"], 0, "{bare}");
    assert_eq!(bare["signature_present"], false);
    assert!(bare["verdict"].is_null());

    // A second export of the same period is a new version; the first stays.
    let (status, again) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "orders", "period": period }),
    );
    assert_eq!(status, 200);
    assert_eq!(again["version"], 2);
    assert_ne!(again["file_name"], orders["file_name"]);
    let (status, listed) = inspector.get("/regulator/exports");
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 3);

    // Bad periods and kinds are refused with a reason; regulators read but do not export.
    for (body, code) in [
        (
            json!({ "kind": "orders", "period": "2026-12-31..2026-01-01" }),
            "invalid_period",
        ),
        (
            json!({ "kind": "worker_income", "period": "2026-Q7" }),
            "invalid_period",
        ),
    ] {
        let (status, bad) = liaison.post("/regulator/exports", body);
        assert_eq!((status, bad["code"].as_str()), (400, Some(code)));
    }
    let (status, _) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "payslips", "period": quarter }),
    );
    assert_eq!(status, 422);
    let (status, _) = inspector.post(
        "/regulator/exports",
        json!({ "kind": "orders", "period": period }),
    );
    assert_eq!(status, 403);

    // Every export is in the audit trail.
    server.add_operator("auditor", &[Team::Administrator]);
    let (_, audit) = server
        .client("auditor")
        .get("/audit?action=regulator_export");
    let audit = audit.as_array().unwrap();
    assert_eq!(audit.len(), 3);
    let object = format!("regulator_export:{}", income["id"].as_str().unwrap());
    let recorded = audit
        .iter()
        .find(|r| r["object"] == object.as_str())
        .unwrap();
    assert_eq!(recorded["detail"]["kind"], "worker_income");
    assert_eq!(recorded["detail"]["file"], income["file_name"]);

    // A file changed in the outbox is noticed when read.
    std::fs::write(&file, b"{}").unwrap();
    let (status, changed) = inspector.get(&format!(
        "/regulator/exports/{}",
        income["id"].as_str().unwrap()
    ));
    assert_eq!(
        (status, changed["code"].as_str()),
        (409, Some("export_file_changed"))
    );
}

#[test]
fn deregistration_reconciles_refuses_unfinished_business_and_closes_in_three_working_days() {
    let server = TestServer::start();
    let scene = server.scene("leave", &AREZZO);
    let busy = server.client(&scene.worker_login);
    let busy_id = account_id(&busy);
    let enterprise_id = account_id(&scene.enterprise);

    // Unfinished orders block, for the worker and for the enterprise; the answer lists them.
    let path = format!("/accounts/{busy_id}/deregistration");
    let (status, refused) = busy.post(&path, json!({}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("deregistration_blocked"))
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains(&scene.order_id)
    );
    let (status, refused) = scene.enterprise.post(
        &format!("/accounts/{enterprise_id}/deregistration"),
        json!({}),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("deregistration_blocked"))
    );

    // A worker with nothing open asks for their own account to be closed.
    let admin = &scene.operator;
    for login in ["leaving-worker", "ordered-worker"] {
        let body = json!({
            "login": login, "password": password_of(login), "role": "worker",
            "display_name": login,
        });
        assert_eq!(admin.post("/accounts", body).0, 200);
    }
    let leaving = server.client("leaving-worker");
    let leaving_id = account_id(&leaving);
    let path = format!("/accounts/{leaving_id}/deregistration");
    let (status, started) = leaving.post(&path, json!({ "reason": "moving abroad" }));
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "pending");
    assert_eq!(started["summary"]["settlements"], 0);
    assert_eq!(started["summary"]["net_fen"], 0);
    assert!(
        started["reminder"]
            .as_str()
            .unwrap()
            .contains("will be closed by")
    );
    let requested = ms(started["requested_at"].as_str().unwrap());
    let due = ms(started["due_at"].as_str().unwrap());
    let day = 86_400_000;
    assert!(
        due - requested > 2 * day && due - requested < 6 * day,
        "{started}"
    );
    let due_date = flexwork_server::shanghai_date(due);
    let weekday = time::Date::parse(
        &due_date,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap()
    .weekday();
    assert!(
        !matches!(weekday, time::Weekday::Saturday | time::Weekday::Sunday),
        "due on a working day: {due_date}"
    );
    let (status, twice) = leaving.post(&path, json!({}));
    assert_eq!(
        (status, twice["code"].as_str()),
        (409, Some("deregistration_pending"))
    );
    let (status, own) = leaving.get(&path);
    assert_eq!(status, 200);
    assert_eq!(own["id"], started["id"]);
    assert_eq!(busy.get(&path).0, 403, "another worker does not see it");

    // An operator acts only on an authority's order, with its reference; support may.
    server.add_operator("support-desk", &[Team::Support]);
    server.add_operator("finance-desk", &[Team::Finance]);
    let desk = server.client("support-desk");
    let ordered_id = account_id(&server.client("ordered-worker"));
    let path = format!("/accounts/{ordered_id}/deregistration");
    let (status, bad) = desk.post(&path, json!({ "reason": "court order" }));
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("authority_reference_required"))
    );
    let (status, bad) = desk.post(&path, json!({ "authority_reference": "GA-2026-117" }));
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("reason_required"))
    );
    let order = json!({ "reason": "court order to close", "authority_reference": "GA-2026-117" });
    assert_eq!(
        server.client("finance-desk").post(&path, order.clone()).0,
        403
    );
    let (status, ordered) = desk.post(&path, order);
    assert_eq!(status, 200, "{ordered}");
    assert_eq!(ordered["authority_reference"], "GA-2026-117");

    // New business after the request holds the closing up.
    let (status, late_order) = scene.enterprise.post(
        &format!("/tasks/{}/orders", scene.task_id),
        json!({ "worker_login": "ordered-worker" }),
    );
    assert_eq!(status, 200, "{late_order}");

    // The job closes nothing early, and closes a request by its due time.
    let state = server.state();
    let closed_now = server
        .block_on(flexwork_server::deregistration::close_due(state, requested))
        .unwrap();
    assert_eq!(closed_now, 0);
    assert_eq!(
        leaving
            .get(&format!("/accounts/{leaving_id}/deregistration"))
            .1["state"],
        "pending"
    );
    let closed = server
        .block_on(flexwork_server::deregistration::close_due(state, due))
        .unwrap();
    assert_eq!(closed, 1, "the blocked one waits");
    let (status, after) = desk.get(&format!("/accounts/{leaving_id}/deregistration"));
    assert_eq!(status, 200);
    assert_eq!(after["state"], "closed");
    assert_eq!(after["overdue"], false);
    assert!(ms(after["closed_at"].as_str().unwrap()) <= due);
    let ordered_due = ms(ordered["due_at"].as_str().unwrap());
    let closed = server
        .block_on(flexwork_server::deregistration::close_due(
            state,
            ordered_due + 1_000,
        ))
        .unwrap();
    assert_eq!(closed, 0);
    let (_, held) = desk.get(&format!("/accounts/{ordered_id}/deregistration"));
    assert_eq!(
        (held["state"].as_str(), held["overdue"].as_bool()),
        (Some("pending"), Some(true))
    );

    // The account can no longer be used; its records stay.
    assert_eq!(leaving.get("/me").0, 401, "tokens revoked");
    let sign_in = anonymous_client(&server).post(
        "/sessions",
        json!({ "login": "leaving-worker", "password": password_of("leaving-worker") }),
    );
    assert_ne!(sign_in.0, 200, "{}", sign_in.1);
    let kept = server.block_on(
        sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE id = $1")
            .bind(&leaving_id)
            .fetch_one(&state.db.pool),
    );
    assert_eq!(
        sqlx::Row::try_get::<i64, _>(&kept.unwrap(), "n").unwrap(),
        1
    );
    let removed =
        server.block_on(sqlx::query("DELETE FROM deregistrations").execute(&state.db.pool));
    assert!(removed.is_err(), "deregistration records cannot be deleted");

    // Every step is audited.
    server.add_operator("dereg-auditor", &[Team::Administrator]);
    let auditor = server.client("dereg-auditor");
    for (action, n) in [
        ("deregistration_refused", 2),
        ("deregistration_requested", 2),
        ("deregistration_reminder_sent", 2),
        ("deregistration_closed", 1),
        ("deregistration_overdue", 1),
    ] {
        let (_, records) = auditor.get(&format!("/audit?action={action}"));
        assert_eq!(records.as_array().unwrap().len(), n, "{action}: {records}");
    }
}

#[test]
fn issued_invoices_blue_and_red_are_exported_with_their_numbers() {
    let server = TestServer::start();
    let scene = server.scene("reg-inv", &AREZZO);
    // A settlement recorded as paid, as the payout job leaves it.
    let settle = sqlx::query(
        "INSERT INTO settlements (id, order_id, worker_id, enterprise_id, gross_fen, tax_fen, \
           net_fen, tax_method, status, created_at) \
         SELECT 's-paid', id, worker_id, enterprise_id, 50000, 0, 50000, 'per_payment_2018', \
           'paid', $1 FROM orders WHERE id = $2",
    )
    .bind(flexwork_server::now_ms())
    .bind(&scene.order_id);
    server
        .block_on(settle.execute(&server.state().db.pool))
        .unwrap();
    server.add_operator("inv-finance", &[Team::Finance]);
    let finance = server.client("inv-finance");
    let enterprise = scene.enterprise.get("/me").1["organisation_id"].clone();
    let (status, blue) = finance.post("/invoices", json!({ "enterprise_id": enterprise }));
    assert_eq!(status, 200, "{blue}");
    assert_eq!(blue["status"], "issued", "{blue}");
    server.add_operator("inv-liaison", &[Team::RegulatorLiaison]);
    let liaison = server.client("inv-liaison");
    let today = today_shanghai();
    let period = format!("{today}..{today}");

    let (status, first) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "invoices", "period": period }),
    );
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["records"], 1);
    let (_, read) = liaison.get(&format!(
        "/regulator/exports/{}",
        first["id"].as_str().unwrap()
    ));
    let invoice = &read["content"]["invoices"][0];
    assert_eq!(invoice["number"], blue["number"]);
    assert_eq!(invoice["kind"], "blue");
    assert_eq!(invoice["total_fen"], 50_000);
    assert_eq!(invoice["settlements"], json!(["s-paid"]));

    // A red-letter reversal is reported too; the two cancel out.
    let path = format!("/invoices/{}/reverse", blue["id"].as_str().unwrap());
    let (status, red) = finance.post(&path, json!({ "reason": "billed the wrong buyer" }));
    assert_eq!(status, 200, "{red}");
    let (status, second) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "invoices", "period": period }),
    );
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        (second["records"].as_i64(), second["version"].as_i64()),
        (Some(2), Some(2))
    );
    let (_, read) = liaison.get(&format!(
        "/regulator/exports/{}",
        second["id"].as_str().unwrap()
    ));
    let totals: i64 = read["content"]["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["total_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(totals, 0);
    let (status, none) = liaison.post(
        "/regulator/exports",
        json!({ "kind": "invoices", "period": "2020-01-01..2020-01-31" }),
    );
    assert_eq!((status, none["records"].as_i64()), (200, Some(0)));
}

#[test]
fn deregistration_waits_for_settled_money_to_be_paid_out() {
    let server = TestServer::start();
    let scene = server.settled_scene("owed");
    let worker = server.client(&scene.worker_login);
    let worker_id = account_id(&worker);
    let path = format!("/accounts/{worker_id}/deregistration");

    // Settled but not paid: the worker is still owed money, so the account stays open.
    let (status, refused) = worker.post(&path, json!({}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("deregistration_blocked")),
        "{refused}"
    );
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "order {} (settled, not yet paid out)",
            scene.order_id
        )),
        "{message}"
    );

    // Once paid out, nothing is left open and the worker can leave.
    server.backdate_settlement(&scene.order_id, 40);
    server.add_operator("dereg-cashier", &[Team::Finance]);
    let finance = server.client("dereg-cashier");
    let (status, report) = finance.post("/payouts/run", json!({}));
    assert_eq!(status, 200, "{report}");
    let (_, order) = worker.get(&format!("/orders/{}", scene.order_id));
    assert_eq!(order["status"], "paid", "{order} {report}");
    let (status, started) = worker.post(&path, json!({ "reason": "done here" }));
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["summary"]["orders"]["paid"], 1, "{started}");
    assert_eq!(started["summary"]["escrow_fen"], 0);
}
