//! Paying workers: a settled order's pay reaches the worker once, through the sandbox payment
//! provider, whatever the provider does (rejects, times out, calls back twice) and however
//! often the batch runs, with the ledger balanced afterwards.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::{Duration, Instant};

use flexwork_server::auth::Team;
use flexwork_server::ledger::{self, Account};
use flexwork_server::payments::{SandboxConfig, SandboxFate, SandboxPaymentProvider};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, TestServer, captured_logs};

const SECRET: &str = "payments-callback-secret-of-32-characters";

/// A server whose sandbox provider answers quickly, follows `script` and keeps its books in
/// the data folder (a restarted server's sandbox remembers them, as a real provider does),
/// with no scheduled run: each scenario runs the batch itself, as the finance team does.
fn start(script: Vec<SandboxFate>, change: impl FnOnce(&mut SandboxConfig)) -> TestServer {
    TestServer::start_with(|config| {
        let mut sandbox = SandboxConfig {
            latency_ms: (1, 5),
            timeout_ms: 50,
            timeout_rate: 0.0,
            reject_rate: 0.0,
            async_rate: 0.0,
            duplicate_callback_rate: 0.0,
            deliver_callbacks: true,
            script,
            state_file: Some(config.data_dir.join("payments-sandbox.json")),
            seed: Some(16),
        };
        change(&mut sandbox);
        config.payments.sandbox = sandbox;
        config.payments.batch_interval_secs = 0;
        // A payout left "sending" by a stopped server is asked about after a second.
        config.payments.stale_after_secs = 1;
        config.payments.callback_secret = Some(flexwork_server::config::Secret::new(SECRET));
    })
}

fn sandbox(server: &TestServer) -> &SandboxPaymentProvider {
    server.state().payments.as_sandbox().unwrap()
}

fn finance(server: &TestServer) -> Client {
    server.add_operator("cashier", &[Team::Finance]);
    server.client("cashier")
}

fn run(finance: &Client) -> Value {
    let (status, report) = finance.post("/payouts/run", json!({}));
    assert_eq!(status, 200, "{report}");
    report
}

fn balance(server: &TestServer, account: Account) -> i64 {
    server
        .block_on(ledger::balance(&server.state().db.pool, &account))
        .unwrap()
}

/// The ledger re-derived from its postings is consistent.
fn assert_ledger_healthy(server: &TestServer) {
    let report = server
        .block_on(ledger::check(&server.state().db.pool))
        .unwrap();
    assert!(report.is_healthy(), "{report:?}");
}

/// The settlement of the scene's order: worker id, gross and net pay.
fn settlement(client: &Client, order_id: &str) -> (String, i64, i64) {
    let (status, s) = client.get(&format!("/orders/{order_id}/settlement"));
    assert_eq!(status, 200, "{s}");
    (
        s["worker_id"].as_str().unwrap().to_owned(),
        s["gross_fen"].as_i64().unwrap(),
        s["net_fen"].as_i64().unwrap(),
    )
}

/// After the worker was paid `net` once out of a deposit of `gross`: nothing owed, nothing
/// in flight, the bank down by the net pay.
fn assert_paid_once(server: &TestServer, worker: &str, gross: i64, net: i64) {
    assert_eq!(balance(server, Account::WorkerPayable(worker.into())), 0);
    assert_eq!(balance(server, Account::PayoutsInFlight), 0);
    assert_eq!(balance(server, Account::Bank), gross - net);
    let payments = sandbox(server).payments();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(
        (payments[0].payee.as_str(), payments[0].amount_fen),
        (worker, net)
    );
    assert_ledger_healthy(server);
}

fn payouts_of(client: &Client) -> Vec<Value> {
    let (status, list) = client.get("/payouts");
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

#[test]
fn a_settled_order_is_paid_once_when_the_workers_cycle_is_due() {
    let server = start(Vec::new(), |_| {});
    let scene = server.settled_scene("paid");
    let order = scene.order_id.clone();
    let finance = finance(&server);
    let worker = server.device_client(&scene.worker_login);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &order);
    // 3,000 CNY as a first income of the year: no tax by the cumulative method.
    assert!(net > 0 && net <= gross);

    // The worker chooses a cycle from the phone; nonsense and enterprises are refused.
    let choose = |client: &Client, cycle: &str| {
        let body = serde_json::to_vec(&json!({ "cycle": cycle })).unwrap();
        client.send_raw(Method::PUT, "/me/payout-cycle", body, "application/json")
    };
    let (status, refused) = choose(&worker, "fortnight");
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invalid_payout_cycle"))
    );
    assert_eq!(choose(&scene.enterprise, "day").0, 403);
    let empty = b"{}".to_vec();
    let (status, missing) =
        worker.send_raw(Method::PUT, "/me/payout-cycle", empty, "application/json");
    assert_eq!(
        (status, missing["code"].as_str()),
        (422, Some("invalid_json"))
    );
    let (status, chosen) = choose(&worker, "week");
    assert_eq!((status, chosen["cycle"].as_str()), (200, Some("week")));
    assert_eq!(choose(&worker, "day").1["cycle"], "day");

    // Settled today: a daily payout is due tomorrow, so nothing is paid yet.
    server.backdate_settlement(&order, 0);
    let report = run(&finance);
    assert_eq!(
        (report["created"].as_i64(), report["sent"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(payouts_of(&worker).is_empty());
    assert_eq!(
        balance(&server, Account::WorkerPayable(worker_id.clone())),
        net
    );

    // Settled yesterday: paid in one payout of the net pay.
    server.backdate_settlement(&order, 1);
    let report = run(&finance);
    assert_eq!(
        (report["created"].as_i64(), report["paid"].as_i64()),
        (Some(1), Some(1))
    );
    let payouts = payouts_of(&worker);
    assert_eq!(payouts.len(), 1, "{payouts:?}");
    let payout = &payouts[0];
    assert_eq!(payout["status"], "paid");
    assert_eq!(payout["amount_fen"].as_i64(), Some(net));
    assert_eq!(payout["attempt"], 1);
    assert_eq!(payout["provider"], "sandbox");
    assert!(payout["period"].as_str().unwrap().starts_with("day:"));
    let id = payout["id"].as_str().unwrap();
    let (status, detail) = worker.get(&format!("/payouts/{id}"));
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["settlements"][0]["order_id"], order.as_str());
    assert_eq!(detail["settlements"][0]["status"], "paid");

    // Everyone sees the order paid; the enterprise sees no payouts, finance sees them all.
    let (_, seen) = scene.enterprise.get(&format!("/orders/{order}"));
    assert_eq!(seen["status"], "paid", "{seen}");
    assert_eq!(seen["settlement"]["status"], "paid");
    assert_eq!(scene.enterprise.get("/payouts").0, 403);
    assert_eq!(scene.enterprise.get(&format!("/payouts/{id}")).0, 403);
    assert!(payouts_of(&finance).iter().any(|p| p["id"] == id));

    // Running again pays nothing more.
    let again = run(&finance);
    assert_eq!(
        (again["created"].as_i64(), again["sent"].as_i64()),
        (Some(0), Some(0))
    );
    assert_paid_once(&server, &worker_id, gross, net);

    // The run and the payment are in the audit trail.
    let (_, runs) = scene.operator.get("/audit?action=payouts_run");
    assert!(runs.as_array().unwrap().len() >= 3, "{runs}");
    let (_, paid) = scene.operator.get("/audit?action=payout_paid");
    assert_eq!(paid[0]["object"], format!("payout:{id}"), "{paid}");
}

#[test]
fn a_rejected_payout_is_retried_under_a_new_attempt() {
    let server = start(vec![SandboxFate::Rejected, SandboxFate::Paid], |_| {});
    let scene = server.settled_scene("rejected");
    let order = scene.order_id.clone();
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &order);
    server.backdate_settlement(&order, 1);

    // The provider rejects the first payout: the reason is kept and the pay is owed again.
    let report = run(&finance);
    assert_eq!(
        (report["created"].as_i64(), report["failed"].as_i64()),
        (Some(1), Some(1))
    );
    let failed = payouts_of(&finance);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], "failed");
    assert_eq!(failed[0]["failure_code"], "sandbox_card_closed");
    assert!(
        failed[0]["failure_reason"]
            .as_str()
            .unwrap()
            .contains("closed")
    );
    let (_, seen) = scene.enterprise.get(&format!("/orders/{order}"));
    assert_eq!(seen["status"], "settled");
    assert_eq!(seen["settlement"]["status"], "pending_payout");
    assert_eq!(
        balance(&server, Account::WorkerPayable(worker_id.clone())),
        net
    );
    assert_eq!(balance(&server, Account::PayoutsInFlight), 0);
    assert!(sandbox(&server).payments().is_empty());

    // The next run pays it under a new key, attempt 2; the failed payout stays on record.
    let report = run(&finance);
    assert_eq!(
        (report["created"].as_i64(), report["paid"].as_i64()),
        (Some(1), Some(1))
    );
    let payouts = payouts_of(&finance);
    let paid = payouts.iter().find(|p| p["status"] == "paid").unwrap();
    assert_eq!(paid["attempt"], 2);
    let key = paid["idempotency_key"].as_str().unwrap();
    assert!(
        key.ends_with(":2") && key != failed[0]["idempotency_key"],
        "{key}"
    );
    assert_eq!(sandbox(&server).payments()[0].idempotency_key, key);
    let (_, detail) = finance.get(&format!("/payouts/{}", failed[0]["id"].as_str().unwrap()));
    assert_eq!(detail["settlements"][0]["order_id"], order.as_str());
    assert_eq!(detail["settlements"][0]["status"], "paid");
    assert_paid_once(&server, &worker_id, gross, net);
}

#[test]
fn a_timed_out_payout_is_resolved_by_its_key_without_paying_twice() {
    // The first call is lost on the way, the second pays but its answer is lost.
    let script = vec![SandboxFate::TimeoutLost, SandboxFate::TimeoutPaid];
    let server = start(script, |_| {});
    let scene = server.settled_scene("timeout");
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &scene.order_id);
    server.backdate_settlement(&scene.order_id, 1);

    let report = run(&finance);
    assert_eq!(
        (report["sent"].as_i64(), report["pending"].as_i64()),
        (Some(1), Some(1))
    );
    let payout = payouts_of(&finance)[0].clone();
    assert_eq!(payout["status"], "unknown");
    let key = payout["idempotency_key"].as_str().unwrap().to_owned();
    assert_eq!(balance(&server, Account::PayoutsInFlight), net);

    // The provider never got it: it is sent again under the same key, and times out again.
    let report = run(&finance);
    assert_eq!(
        (report["queried"].as_i64(), report["sent"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(payouts_of(&finance)[0]["status"], "unknown");
    assert_eq!(sandbox(&server).submissions(&key), 2);

    // This time the provider has it: asked by the key, it says paid.
    let report = run(&finance);
    assert_eq!(
        (report["queried"].as_i64(), report["paid"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["sent"], 0);
    let payouts = payouts_of(&finance);
    assert_eq!(
        payouts.len(),
        1,
        "one payout, never a second key: {payouts:?}"
    );
    assert_eq!(payouts[0]["status"], "paid");
    assert_eq!(payouts[0]["idempotency_key"], key.as_str());
    assert_eq!(sandbox(&server).submissions(&key), 2);
    assert_paid_once(&server, &worker_id, gross, net);
}

/// Waits until `check` holds, for at most ten seconds.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn post_callback(server: &TestServer, body: &Value, secret: &str) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let now = crate::support::unix_secs() as i64;
    let signature = flexwork_server::payouts::sign(secret, now, &bytes);
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/payments/callbacks", server.url()))
        .header("content-type", "application/json")
        .header(flexwork_server::payouts::TIMESTAMP_HEADER, now.to_string())
        .header(flexwork_server::payouts::SIGNATURE_HEADER, signature)
        .body(bytes)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn duplicate_callbacks_are_ignored() {
    // Answered later by callback, and every callback delivered twice.
    let server = start(vec![SandboxFate::Async], |sandbox| {
        sandbox.duplicate_callback_rate = 1.0;
    });
    let scene = server.settled_scene("callbacks");
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &scene.order_id);
    server.backdate_settlement(&scene.order_id, 1);

    let report = run(&finance);
    assert_eq!(
        (report["sent"].as_i64(), report["pending"].as_i64()),
        (Some(1), Some(1))
    );
    let id = payouts_of(&finance)[0]["id"].as_str().unwrap().to_owned();
    wait_until("the callback", || {
        payouts_of(&finance)[0]["status"] == "paid"
    });
    let duplicate = format!("payout={id}");
    wait_until("the second delivery", || {
        captured_logs()
            .lines()
            .any(|l| l.contains("duplicate payment callback ignored") && l.contains(&duplicate))
    });
    assert_paid_once(&server, &worker_id, gross, net);

    // The provider's callbacks over HTTP: verified, applied once, duplicates acknowledged.
    let key = payouts_of(&finance)[0]["idempotency_key"].clone();
    let paid = json!({
        "callback_id": "cb-http-1", "provider": "sandbox", "idempotency_key": key,
        "delivery_attempt": 1, "outcome": { "status": "paid", "provider_ref": "sandbox-x" },
    });
    let (status, ack) = post_callback(&server, &paid, SECRET);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["applied"].as_bool(), ack["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(post_callback(&server, &paid, SECRET).1["duplicate"], true);
    let mut rejected = paid.clone();
    rejected["callback_id"] = json!("cb-http-2");
    rejected["outcome"] = json!({ "status": "rejected", "code": "x", "reason": "late" });
    let (status, conflict) = post_callback(&server, &rejected, SECRET);
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("payout_outcome_conflict"))
    );
    let (status, forged) = post_callback(&server, &rejected, "not-the-secret-of-this-platform!!");
    assert_eq!(
        (status, forged["code"].as_str()),
        (401, Some("callback_signature_invalid"))
    );
    let mut unknown = paid.clone();
    unknown["idempotency_key"] = json!("payout:nobody:day:2026-01-01:1");
    unknown["callback_id"] = json!("cb-http-3");
    let (status, missing) = post_callback(&server, &unknown, SECRET);
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("unknown_payout"))
    );
    let mut long = paid.clone();
    long["callback_id"] = json!("c".repeat(200_000));
    let (status, refused) = post_callback(&server, &long, SECRET);
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invalid_callback"))
    );
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("1 to 200 characters"), "{message}");
    assert!(!message.contains("must not be empty"), "{message}");
    assert_paid_once(&server, &worker_id, gross, net);
}

#[test]
fn a_callback_over_http_settles_a_processing_payout_once() {
    let server = start(vec![SandboxFate::Async], |sandbox| {
        sandbox.deliver_callbacks = false;
    });
    let scene = server.settled_scene("http-callback");
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &scene.order_id);
    server.backdate_settlement(&scene.order_id, 1);
    run(&finance);
    let payout = payouts_of(&finance)[0].clone();
    assert_eq!(payout["status"], "processing");

    let body = json!({
        "callback_id": "cb-1", "provider": "sandbox", "idempotency_key": payout["idempotency_key"],
        "delivery_attempt": 1, "outcome": { "status": "paid", "provider_ref": "sandbox-ref" },
    });
    let (status, ack) = post_callback(&server, &body, SECRET);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["applied"].as_bool(), ack["duplicate"].as_bool()),
        (Some(true), Some(false))
    );
    let mut again = body.clone();
    again["delivery_attempt"] = json!(2);
    let (status, ack) = post_callback(&server, &again, SECRET);
    assert_eq!((status, ack["duplicate"].as_bool()), (200, Some(true)));
    let paid = &payouts_of(&finance)[0];
    assert_eq!(
        (paid["status"].as_str(), paid["provider_ref"].as_str()),
        (Some("paid"), Some("sandbox-ref"))
    );
    assert_eq!(balance(&server, Account::Bank), gross - net);
    assert_eq!(balance(&server, Account::WorkerPayable(worker_id)), 0);
    assert_ledger_healthy(&server);
}

#[test]
fn runs_at_once_on_two_servers_pay_once() {
    // Slow enough that the runs overlap.
    let server = start(Vec::new(), |sandbox| sandbox.latency_ms = (40, 80));
    let scene = server.settled_scene("race");
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &scene.order_id);
    server.backdate_settlement(&scene.order_id, 1);
    // A second server on the same database, with a provider client of its own: only the
    // database keeps the two from paying twice.
    let config = server.state().config.clone();
    let second = server
        .block_on(flexwork_server::AppState::start(config))
        .unwrap();

    let (server_ref, second_ref) = (&server, &second);
    let (reports, other) = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2).map(|_| s.spawn(|| run(&finance))).collect();
        let trigger = flexwork_server::payouts::Trigger::Command;
        let other = s.spawn(move || {
            server_ref
                .block_on(flexwork_server::payouts::run(second_ref, trigger))
                .unwrap()
        });
        let reports: Vec<Value> = runs.into_iter().map(|r| r.join().unwrap()).collect();
        (reports, other.join().unwrap())
    });
    let created: i64 = reports
        .iter()
        .map(|r| r["created"].as_i64().unwrap())
        .sum::<i64>()
        + other.created;
    let paid: i64 = reports
        .iter()
        .map(|r| r["paid"].as_i64().unwrap())
        .sum::<i64>()
        + other.paid;
    assert_eq!((created, paid), (1, 1), "{reports:?} {other:?}");
    assert_eq!(payouts_of(&finance).len(), 1);
    let elsewhere = second.payments.as_sandbox().unwrap().payments();
    assert!(elsewhere.is_empty() || sandbox(&server).payments().is_empty());
    // Whichever server sent it, the worker was paid once, and the books agree.
    let all: Vec<_> = sandbox(&server)
        .payments()
        .into_iter()
        .chain(elsewhere)
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0].payee.as_str(), all[0].amount_fen),
        (worker_id.as_str(), net)
    );
    assert_eq!(
        balance(&server, Account::WorkerPayable(worker_id.clone())),
        0
    );
    assert_eq!(balance(&server, Account::Bank), gross - net);
    assert_ledger_healthy(&server);
}

#[test]
fn a_payout_whose_sender_crashed_is_asked_about_and_paid_once() {
    // Slow answers, so the server can be killed while the provider is paying.
    let server_config = |sandbox: &mut SandboxConfig| sandbox.latency_ms = (1_500, 1_500);
    let mut server = start(Vec::new(), server_config);
    let scene = server.settled_scene("crash");
    let finance = finance(&server);
    let (worker_id, gross, net) = settlement(&scene.enterprise, &scene.order_id);
    server.backdate_settlement(&scene.order_id, 1);

    std::thread::scope(|s| {
        s.spawn(|| {
            // Killed midway: the answer never comes.
            let _ = finance
                .request(Method::POST, "/payouts/run", None, Vec::new())
                .send();
        });
        wait_until("the payout being sent", || {
            payouts_of(&finance)
                .first()
                .is_some_and(|p| p["status"] == "sending")
        });
        server.kill();
    });
    server.restart();

    // After the stale time, the run asks the provider by the payout's key instead of
    // sending anything new, and records what the provider says.
    std::thread::sleep(Duration::from_millis(1_100));
    let report = run(&finance);
    assert_eq!(
        (report["queried"].as_i64(), report["created"].as_i64()),
        (Some(1), Some(0))
    );
    let payouts = payouts_of(&finance);
    assert_eq!(payouts.len(), 1, "{payouts:?}");
    assert_eq!(payouts[0]["status"], "paid");
    assert_paid_once(&server, &worker_id, gross, net);
}
