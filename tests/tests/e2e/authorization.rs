//! The authorization matrix: every endpoint that acts on someone's objects, called by the
//! owner, another worker, another enterprise, the enterprise's staff, each operator team and
//! the regulator. Whoever the table does not name must be refused (403, or 404 where saying
//! "forbidden" would tell that the object exists); whoever it names must get past the
//! permission check. The table is written here, from the standard's division of duties, not
//! read from the server's own permission table.
//!
//! Endpoints that act only on the caller's own account (`/sessions`, `/me…`) and the public
//! ones (privacy notice, declaration, applications) have no object of someone else's to
//! reach; `two_factor.rs` and `onboarding.rs` test them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use std::collections::BTreeMap;

use crate::support::{AREZZO, Client, Phone, TestServer, fixture_bytes, password_of};
use flexwork_server::auth::{Role, Team};
use flexwork_sync::ContentHash;
use reqwest::Method;
use serde_json::{Value, json};

/// Every operator team, by the name the matrix uses for its member.
const TEAMS: [(&str, Team); 8] = [
    ("reviewer", Team::Reviewer),
    ("risk", Team::Risk),
    ("finance", Team::Finance),
    ("legal", Team::Legal),
    ("welfare", Team::Welfare),
    ("support", Team::Support),
    ("regulator_liaison", Team::RegulatorLiaison),
    ("administrator", Team::Administrator),
];

/// Operator teams and the regulator: they read work and evidence, masked.
const READERS: [&str; 8] = [
    "reviewer",
    "risk",
    "finance",
    "legal",
    "welfare",
    "support",
    "regulator_liaison",
    "regulator",
];

/// The people of the matrix: owner worker and enterprise of order A, and everyone else.
struct Cast {
    clients: BTreeMap<&'static str, Client>,
}

impl Cast {
    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.clients.keys().copied()
    }
}

/// One row of the matrix.
struct Row {
    method: Method,
    path: String,
    /// Who gets past the permission check.
    allowed: Vec<&'static str>,
    /// The body each caller sends (fresh logins per caller where the call creates one).
    body: Box<dyn Fn(&str) -> Body>,
}

enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>, &'static str),
}

/// Calls as the client: with its bearer token, or signed by its phone's device key.
fn call(client: &Client, method: &Method, path: &str, body: Body) -> (u16, Value) {
    let (content_type, bytes) = match body {
        Body::None => (None, Vec::new()),
        Body::Json(value) => (
            Some("application/json"),
            serde_json::to_vec(&value).unwrap(),
        ),
        Body::Bytes(bytes, content_type) => (Some(content_type), bytes),
    };
    let response = client
        .request(method.clone(), path, content_type, bytes)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Whether a concrete path fits a documented template such as `/orders/{id}`.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

fn with(names: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    names.iter().chain(more).copied().collect()
}

#[test]
fn every_endpoint_refuses_everyone_the_table_does_not_name() {
    let server = TestServer::start();
    let (cast, fixtures) = set_up(&server);
    let rows = matrix(&fixtures);

    let mut failures = Vec::new();
    let mut refused = 0;
    for row in &rows {
        for name in cast.names() {
            let client = &cast.clients[name];
            let (status, body) = call(client, &row.method, &row.path, (row.body)(name));
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            let allowed = row.allowed.contains(&name);
            let refusal = matches!(status, 401 | 403 | 404)
                || code == "media_not_referenced"
                || code == "forbidden";
            if allowed && refusal {
                failures.push(format!(
                    "{} {} as {name}: refused ({status} {code}) but the table allows it",
                    row.method, row.path
                ));
            }
            if !allowed {
                refused += 1;
                if !matches!(status, 401 | 403 | 404) {
                    failures.push(format!(
                        "{} {} as {name}: answered {status} {body} but must be refused",
                        row.method, row.path
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every operation the server documents as needing a token is in the table, except those
    // acting only on the caller's own account.
    let own_account = [
        "/sessions",
        "/me",
        "/me/totp",
        "/me/totp/confirm",
        "/me/password",
        "/devices",
    ];
    let document: Value = reqwest::blocking::get(format!("{}/api/v1/openapi.json", server.url()))
        .unwrap()
        .json()
        .unwrap();
    let mut checked = 0;
    for (template, operations) in document["paths"].as_object().unwrap() {
        let template = template.trim_start_matches("/api/v1");
        for (method, operation) in operations.as_object().unwrap() {
            if operation.get("security").is_none() || own_account.contains(&template) {
                continue;
            }
            let covered = rows.iter().any(|row| {
                row.method.as_str().eq_ignore_ascii_case(method)
                    && matches_template(template, row.path.split('?').next().unwrap())
            });
            assert!(covered, "{method} {template} is not in the matrix");
            checked += 1;
        }
    }
    assert!(
        checked >= rows.len() - 1,
        "only {checked} documented operations checked"
    );
    assert!(refused > 250, "only {refused} cross calls were tried");

    // Lists answer only what is the caller's own.
    let order_a = &fixtures.order_a;
    for name in ["other_worker", "other_enterprise"] {
        let (_, orders) = cast.clients[name].get("/orders");
        let ids: Vec<&str> = orders
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert!(!ids.is_empty(), "{name} sees its own orders");
        assert!(!ids.contains(&order_a.as_str()), "{name} sees order A");
    }
    let (_, tasks) = cast.clients["other_enterprise"].get("/tasks");
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != fixtures.task_a.as_str())
    );
    let (_, staff) = cast.clients["other_enterprise"].get("/enterprise/staff");
    assert!(
        staff
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["login"] != "acme-a-staff"),
        "{staff}"
    );

    // A worker's sync never carries another worker's order, and a document message for it
    // is refused.
    let other = &cast.clients["other_worker"];
    let mut doc = flexwork_sync::EvidenceDoc::new(order_a, automerge::ActorId::random()).unwrap();
    let note = flexwork_sync::NoteRecord {
        id: "n1".into(),
        text: "not my order".into(),
        at_ms: 0,
    };
    doc.add_note(&note, 0).unwrap();
    let rejected = support::raw::push(other, order_a, &mut doc);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].order_id, *order_a);
}

#[test]
fn teams_staff_and_regulators_do_what_their_duties_name() {
    let server = TestServer::start();
    let (cast, fixtures) = set_up(&server);

    // What each account may do is answered by /me.
    let (_, me) = cast.clients["enterprise_staff"].get("/me");
    assert_eq!(me["enterprise_admin"], false);
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("confirm_work"))
    );
    let (_, me) = cast.clients["regulator"].get("/me");
    assert_eq!(
        me["permissions"],
        json!(["read_all_work", "read_regulator_exports"])
    );

    // Staff publish for their organisation: the administrator sees the task.
    let staff = &cast.clients["enterprise_staff"];
    let (status, task) = staff.post("/tasks", support::task_body(&AREZZO));
    assert_eq!(status, 200, "{task}");
    let admin = &cast.clients["enterprise_admin"];
    let task_path = format!("/tasks/{}", task["id"].as_str().unwrap());
    assert_eq!(admin.get(&task_path).0, 200);
    assert_eq!(cast.clients["other_enterprise"].get(&task_path).0, 404);

    // Regulators read orders and evidence, masked, and change nothing.
    let regulator = &cast.clients["regulator"];
    let order_path = format!("/orders/{}", fixtures.order_a);
    assert_eq!(regulator.get(&order_path).0, 200);
    let (status, refused) =
        regulator.post(&format!("{order_path}/dispute"), json!({"reason": "x"}));
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("the order's enterprise")
    );

    // An administrator moves an operator between teams; the change holds from the next
    // sign-in (tokens are revoked) and is audited with its reason.
    let administrator = &cast.clients["administrator"];
    let support_agent = &cast.clients["support"];
    let target = fixtures.accounts["support"].clone();
    let change = json!({ "teams": ["reviewer"], "reason": "moved to the review desk" });
    let (status, body) = administrator.send_raw(
        Method::PUT,
        &format!("/accounts/{target}/teams"),
        serde_json::to_vec(&change).unwrap(),
        "application/json",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(support_agent.get("/orders").0, 401, "old token revoked");
    let moved = server.client("team-support");
    assert_eq!(moved.get("/onboarding/workers").0, 200);
    let own = fixtures.accounts["administrator"].clone();
    let (status, body) = administrator.send_raw(
        Method::PUT,
        &format!("/accounts/{own}/teams"),
        serde_json::to_vec(&change).unwrap(),
        "application/json",
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("cannot_change_own_teams"))
    );
    let (_, records) = administrator.get("/audit?action=teams_changed");
    let record = &records.as_array().unwrap()[0];
    assert_eq!(record["detail"]["before"], json!(["support"]));
    assert_eq!(record["detail"]["after"], json!(["reviewer"]));
    assert_eq!(record["detail"]["reason"], "moved to the review desk");

    // An operator account without a team is refused, and so is a team for a worker.
    let teamless = json!({
        "login": "no-team", "password": password_of("no-team"), "role": "operator",
        "display_name": "x",
    });
    let (status, body) = administrator.post("/accounts", teamless);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("teams_required"))
    );
    let worker_in_team = json!({
        "login": "worker-team", "password": password_of("worker-team"), "role": "worker",
        "display_name": "x", "teams": ["finance"],
    });
    let (status, body) = administrator.post("/accounts", worker_in_team);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("teams_not_allowed"))
    );
}

/// Ids the matrix points at.
struct Fixtures {
    task_a: String,
    /// Drafts of A's, one to cancel and one to void.
    draft_to_cancel: String,
    draft_to_void: String,
    /// The other worker's pending application for A's task.
    application_a: String,
    order_a: String,
    hash_a: ContentHash,
    photo_len: usize,
    worker_application: String,
    enterprise_application: String,
    archive: String,
    victim: String,
    victim_operator: String,
    spare_device: String,
    check_item: String,
    export: String,
    leaving: String,
    /// An invoice of enterprise A, for order A's paid settlement.
    invoice: String,
    statement_a: String,
    enterprise_a: String,
    payout_a: String,
    accounts: BTreeMap<&'static str, String>,
}

/// Two enterprises with an order each; A's order has evidence, is verified, confirmed and
/// settled; an operator per team, a regulator, A's staff, pending applications and spare
/// accounts to suspend and move between teams.
fn set_up(server: &TestServer) -> (Cast, Fixtures) {
    let a = server.scene("a", &AREZZO);
    let b = server.scene("b", &AREZZO);

    let mut phone = Phone::for_scene(server, &a);
    let photo = phone.record_arezzo_evidence(&a.order_id);
    phone
        .device
        .submit(&a.order_id, support::ms("2008-10-23T14:32:00Z"))
        .unwrap();
    phone.sync();
    let verified = server.wait_verified(&a.enterprise, &a.order_id);
    if verified["verdict"] == "needs_review" {
        let body = json!({ "decision": "approve", "reason": "checked by hand" });
        let (status, _) = a
            .operator
            .post(&format!("/orders/{}/review", a.order_id), body);
        assert_eq!(status, 200);
    }
    let (status, confirmed) = a
        .enterprise
        .post(&format!("/orders/{}/confirm", a.order_id), json!({}));
    assert_eq!(status, 200, "{confirmed}");
    let settled = server.fund_and_settle(&a);
    assert_eq!(settled["status"], "settled", "{settled}");
    let statement_a = settled["statement"]["id"].as_str().unwrap().to_owned();
    let enterprise_a = settled["enterprise_id"].as_str().unwrap().to_owned();
    let (status, settlement) = a
        .enterprise
        .get(&format!("/orders/{}/settlement", a.order_id));
    assert_eq!(status, 200, "{settlement}");

    let mut accounts = BTreeMap::new();
    let mut clients = BTreeMap::new();
    for (name, team) in TEAMS {
        let login = format!("team-{}", name.replace('_', "-"));
        accounts.insert(name, server.add_operator(&login, &[team]));
        clients.insert(name, server.client(&login));
    }
    accounts.insert(
        "regulator",
        server.add_account(Role::Regulator, "regulator"),
    );
    clients.insert("regulator", server.client("regulator"));

    let staff = json!({
        "login": "acme-a-staff", "password": password_of("acme-a-staff"),
        "display_name": "Acme clerk",
    });
    let (status, created) = a.enterprise.post("/enterprise/staff", staff);
    assert_eq!(status, 200, "{created}");
    server.set_up_second_factor("acme-a-staff");
    clients.insert("enterprise_staff", server.client("acme-a-staff"));

    let victim = server.add_account(Role::Worker, "spare-worker");
    let victim_operator = server.add_operator("spare-operator", &[Team::Support]);
    let worker_application = support::apply_as_worker(server, "applicant", "34052419800101001X");
    let archived = support::apply_as_worker(server, "archived-applicant", "34052419800101001X");
    support::wait_real_name(&a.operator, &archived);
    let decision = json!({ "decision": "approve", "reason": "documents match" });
    let (status, decided) = a.operator.post(
        &format!("/onboarding/workers/{archived}/decision"),
        decision,
    );
    assert_eq!(status, 200, "{decided}");
    let subject = format!("worker_application:{archived}");
    let (_, archives) = a.operator.get(&format!("/archives?subject={subject}"));
    let archive = archives[0]["id"].as_str().unwrap().to_owned();
    let enterprise_application = apply_as_enterprise(server);
    // A's settlement, due and paid out: the payout the payout rows point at.
    server.backdate_settlement(&a.order_id, 1);
    let trigger = flexwork_server::payouts::Trigger::Command;
    let run = server.block_on(flexwork_server::payouts::run(server.state(), trigger));
    assert_eq!(run.unwrap().created, 1);
    let payouts = server.block_on(flexwork_server::payouts::list(server.state(), None));
    let payout_a = payouts.unwrap()[0].id.clone();
    // Once the payout is paid, the finance team bills A's work.
    let paid = (0..400).any(|_| {
        let order = a.enterprise.get(&format!("/orders/{}", a.order_id)).1;
        order["status"] == "paid" || {
            std::thread::sleep(std::time::Duration::from_millis(25));
            false
        }
    });
    assert!(paid, "order A's payout was not paid");
    let (status, invoice) =
        clients["finance"].post("/invoices", json!({ "enterprise_id": enterprise_a }));
    assert_eq!(status, 200, "{invoice}");
    let invoice = invoice["id"].as_str().unwrap().to_owned();
    let state = server.state();
    server
        .block_on(flexwork_server::checks::run_daily(
            state,
            "2026-01-05",
            Some(1),
            None,
        ))
        .unwrap();
    let item = server
        .block_on(
            sqlx::query(
                "SELECT id FROM check_items WHERE queue = 'enterprise_risk' \
                 AND period = '2026-01-05'",
            )
            .fetch_one(&state.db.pool),
        )
        .unwrap();
    let check_item: String = sqlx::Row::try_get(&item, "id").unwrap();
    let export = server
        .block_on(flexwork_server::regulator::export(
            state,
            None,
            flexwork_server::regulator::ExportKind::Orders,
            "2026-01-01..2026-01-02",
        ))
        .unwrap()
        .id;
    let leaving = server.add_account(Role::Worker, "leaving-worker");

    // Workers call as their phones do: every request signed by the device key.
    clients.insert("worker", server.device_client(&a.worker_login));
    // A second phone of the same worker, for the row that revokes a phone.
    let spare_phone = server.device_client(&a.worker_login);
    let spare_device = spare_phone.device.as_ref().unwrap().device_id.clone();
    clients.insert("other_worker", server.device_client(&b.worker_login));
    let (_, draft) = a.enterprise.post("/tasks", support::task_body(&AREZZO));
    let draft_to_cancel = draft["id"].as_str().unwrap().to_owned();
    let (_, draft) = a.enterprise.post("/tasks", support::task_body(&AREZZO));
    let draft_to_void = draft["id"].as_str().unwrap().to_owned();
    let (status, applied) = clients["other_worker"].post(
        &format!("/tasks/{}/applications", a.task_id),
        json!({ "skills": ["photography"] }),
    );
    assert_eq!(status, 200, "{applied}");
    let application_a = applied["id"].as_str().unwrap().to_owned();
    clients.insert("enterprise_admin", a.enterprise);
    clients.insert("other_enterprise", b.enterprise);

    let fixtures = Fixtures {
        task_a: a.task_id,
        draft_to_cancel,
        draft_to_void,
        application_a,
        order_a: a.order_id,
        hash_a: photo.hash,
        photo_len: fixture_bytes("photos/DSCN0010.jpg").len(),
        worker_application,
        enterprise_application,
        archive,
        victim,
        victim_operator,
        spare_device,
        check_item,
        export,
        leaving,
        invoice,
        statement_a,
        enterprise_a,
        payout_a,
        accounts,
    };
    (Cast { clients }, fixtures)
}

/// The rows: every endpoint that reaches someone's objects, and who may call it.
fn matrix(f: &Fixtures) -> Vec<Row> {
    let own_enterprise = ["enterprise_admin", "enterprise_staff"];
    let every_enterprise = with(&own_enterprise, &["other_enterprise"]);
    let order_readers = with(
        &READERS,
        &["worker", "enterprise_admin", "enterprise_staff"],
    );
    let list_readers = with(&READERS, &["worker", "other_worker"])
        .into_iter()
        .chain(every_enterprise.clone())
        .collect::<Vec<_>>();
    let order = format!("/orders/{}", f.order_a);
    let hash = f.hash_a;
    let size = f.photo_len;
    let none = || -> Box<dyn Fn(&str) -> Body> { Box::new(|_| Body::None) };
    let json_body = |value: Value| -> Box<dyn Fn(&str) -> Body> {
        Box::new(move |_| Body::Json(value.clone()))
    };
    let reason = json!({ "reason": "authorization matrix" });
    let sync_body = |_: &str| {
        let request = flexwork_sync::SyncRequest {
            protocol: flexwork_sync::PROTOCOL_VERSION,
            device_id: "matrix".into(),
            docs: Vec::new(),
            want_orders: true,
        };
        let bytes = flexwork_sync::protocol::encode(&request);
        Body::Bytes(bytes, flexwork_sync::protocol::CBOR_MEDIA_TYPE)
    };
    let row = |method: Method, path: String, allowed: Vec<&'static str>, body| Row {
        method,
        path,
        allowed,
        body,
    };

    vec![
        // Payouts: workers choose their cycle and see their own; finance runs and sees all.
        row(
            Method::PUT,
            "/me/payout-cycle".into(),
            vec!["worker", "other_worker"],
            json_body(json!({ "cycle": "day" })),
        ),
        row(Method::POST, "/payouts/run".into(), vec!["finance"], none()),
        row(
            Method::GET,
            "/payouts".into(),
            vec!["finance", "worker", "other_worker"],
            none(),
        ),
        row(
            Method::GET,
            format!("/payouts/{}", f.payout_a),
            vec!["finance", "worker"],
            none(),
        ),
        // Accounts and the audit trail: administrators (audit: legal too).
        row(
            Method::POST,
            "/accounts".into(),
            vec!["administrator"],
            Box::new(|caller: &str| {
                let login = format!("made-by-{}", caller.replace('_', "-"));
                Body::Json(json!({
                    "login": login, "password": password_of(&login), "role": "worker",
                    "display_name": "made in the matrix",
                }))
            }),
        ),
        row(
            Method::POST,
            format!("/accounts/{}/suspend", f.victim),
            vec!["administrator"],
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("/accounts/{}/reinstate", f.victim),
            vec!["administrator"],
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("/accounts/{}/second-factor/reset", f.victim_operator),
            vec!["administrator"],
            json_body(reason.clone()),
        ),
        row(
            Method::PUT,
            format!("/accounts/{}/teams", f.victim_operator),
            vec!["administrator"],
            json_body(json!({ "teams": ["welfare"], "reason": "matrix" })),
        ),
        row(
            Method::GET,
            "/audit".into(),
            vec!["administrator", "legal"],
            none(),
        ),
        // Archived materials: listed with the audit trail, read back like a reveal.
        row(
            Method::GET,
            "/archives".into(),
            vec!["administrator", "legal"],
            none(),
        ),
        row(
            Method::POST,
            format!("/archives/{}/reveal", f.archive),
            vec!["reviewer", "legal"],
            json_body(json!({ "reason": "matrix check" })),
        ),
        // An enterprise's staff: its administrators, each for their own organisation.
        row(
            Method::POST,
            "/enterprise/staff".into(),
            vec!["enterprise_admin", "other_enterprise"],
            Box::new(|caller: &str| {
                let login = format!("staff-by-{}", caller.replace('_', "-"));
                Body::Json(json!({
                    "login": login, "password": password_of(&login), "display_name": "clerk",
                }))
            }),
        ),
        row(
            Method::GET,
            "/enterprise/staff".into(),
            vec!["enterprise_admin", "other_enterprise"],
            none(),
        ),
        // Review of applications: reviewers; plaintext also for legal.
        row(
            Method::GET,
            "/onboarding/workers".into(),
            vec!["reviewer"],
            none(),
        ),
        row(
            Method::POST,
            format!("/onboarding/workers/{}/reveal", f.worker_application),
            vec!["reviewer", "legal"],
            json_body(json!({ "field": "phone", "reason": "matrix check" })),
        ),
        row(
            Method::POST,
            format!("/onboarding/workers/{}/decision", f.worker_application),
            vec!["reviewer"],
            json_body(json!({ "decision": "reject", "reason": "matrix" })),
        ),
        row(
            Method::GET,
            "/onboarding/enterprises".into(),
            vec!["reviewer"],
            none(),
        ),
        row(
            Method::POST,
            format!(
                "/onboarding/enterprises/{}/decision",
                f.enterprise_application
            ),
            vec!["reviewer"],
            json_body(json!({ "decision": "reject", "reason": "matrix" })),
        ),
        // Documents go up only with the application's own upload token, never an account's.
        row(
            Method::PUT,
            format!(
                "/onboarding/enterprises/{}/documents/storefront",
                f.enterprise_application
            ),
            vec![],
            Box::new(|_| Body::Bytes(fixture_bytes("photos/DSCN0010.jpg"), "image/jpeg")),
        ),
        // Tasks: enterprises for their own organisation; readers see all.
        row(
            Method::POST,
            "/tasks".into(),
            every_enterprise.clone(),
            json_body(support::task_body(&AREZZO)),
        ),
        // Workers list the published tasks they may apply for.
        row(
            Method::GET,
            "/tasks".into(),
            with(&READERS, &every_enterprise)
                .into_iter()
                .chain(["worker", "other_worker"])
                .collect(),
            none(),
        ),
        row(
            Method::GET,
            format!("/tasks/{}", f.task_a),
            with(&READERS, &own_enterprise),
            none(),
        ),
        // The lifecycle: the enterprise edits and submits (A's task is published: 409),
        // reviewers review (409: not submitted) and void, the enterprise cancels.
        row(
            Method::PATCH,
            format!("/tasks/{}", f.task_a),
            own_enterprise.to_vec(),
            json_body(json!({ "title": "edited in the matrix" })),
        ),
        row(
            Method::POST,
            format!("/tasks/{}/submit", f.task_a),
            own_enterprise.to_vec(),
            json_body(json!({})),
        ),
        row(
            Method::POST,
            format!("/tasks/{}/review", f.task_a),
            vec!["reviewer"],
            json_body(json!({
                "decision": "refuse", "reason_code": "other", "reason": "matrix check",
            })),
        ),
        row(
            Method::POST,
            format!("/tasks/{}/cancel", f.draft_to_cancel),
            own_enterprise.to_vec(),
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("/tasks/{}/void", f.draft_to_void),
            vec!["reviewer"],
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("/tasks/{}/orders", f.task_a),
            own_enterprise.to_vec(),
            json_body(json!({ "worker_login": "wang-a" })),
        ),
        // Applications: workers from their phones; the enterprise or a reviewer accepts.
        row(
            Method::POST,
            format!("/tasks/{}/applications", f.task_a),
            vec!["worker", "other_worker"],
            json_body(json!({ "skills": [], "health_attested": true })),
        ),
        row(
            Method::GET,
            format!("/tasks/{}/applications", f.task_a),
            with(&READERS, &own_enterprise),
            none(),
        ),
        row(
            Method::POST,
            format!(
                "/tasks/{}/applications/{}/accept",
                f.task_a, f.application_a
            ),
            with(&own_enterprise, &["reviewer"]),
            json_body(json!({})),
        ),
        // Orders: the worker, the enterprise, readers; decisions by duty.
        row(Method::GET, "/orders".into(), list_readers, none()),
        row(Method::GET, order.clone(), order_readers.clone(), none()),
        row(
            Method::GET,
            format!("{order}/evidence"),
            order_readers.clone(),
            none(),
        ),
        // The operators' queues: the teams that work them (reviewers; finance for disputes).
        row(
            Method::GET,
            "/queues".into(),
            vec!["reviewer", "finance"],
            none(),
        ),
        row(
            Method::GET,
            format!("{order}/settlement"),
            order_readers.clone(),
            none(),
        ),
        row(
            Method::POST,
            format!("{order}/confirm"),
            vec!["enterprise_admin"],
            json_body(json!({})),
        ),
        row(
            Method::POST,
            format!("{order}/dispute"),
            own_enterprise.to_vec(),
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("{order}/cancel"),
            with(&own_enterprise, &["reviewer"]),
            json_body(reason.clone()),
        ),
        row(
            Method::POST,
            format!("{order}/review"),
            vec!["reviewer"],
            json_body(json!({ "decision": "approve", "reason": "matrix" })),
        ),
        // Invoices: finance bills and reverses; enterprises read their own, readers all.
        row(
            Method::POST,
            "/invoices".into(),
            vec!["finance"],
            json_body(json!({ "enterprise_id": f.enterprise_a })),
        ),
        row(
            Method::GET,
            "/invoices".into(),
            with(&READERS, &every_enterprise),
            none(),
        ),
        row(
            Method::GET,
            format!("/invoices/{}", f.invoice),
            with(&READERS, &own_enterprise),
            none(),
        ),
        row(
            Method::POST,
            format!("/invoices/{}/reverse", f.invoice),
            vec!["finance"],
            json_body(json!({ "reason": "the matrix reverses it" })),
        ),
        // Money: escrow deposits and reading by finance (an enterprise reads its own);
        // statements confirmed or disputed by their three parties, resolved by finance. The
        // statement of order A is settled: confirming again is a no-op, disputing or
        // resolving it answers 409, past the permission check.
        row(
            Method::POST,
            format!("/enterprises/{}/deposits", f.enterprise_a),
            vec!["finance"],
            json_body(json!({
                "amount_fen": 100, "bank_reference": "MATRIX-1", "value_date": "2026-01-05",
            })),
        ),
        row(
            Method::GET,
            format!("/enterprise/escrow?enterprise={}", f.enterprise_a),
            with(&own_enterprise, &["finance"]),
            none(),
        ),
        row(
            Method::GET,
            format!("{order}/statement"),
            order_readers.clone(),
            none(),
        ),
        row(Method::GET, "/statements".into(), READERS.to_vec(), none()),
        row(
            Method::POST,
            format!("/statements/{}/confirm", f.statement_a),
            vec![
                "worker",
                "enterprise_admin",
                "enterprise_staff",
                "finance",
                "reviewer",
            ],
            json_body(json!({})),
        ),
        row(
            Method::POST,
            format!("/statements/{}/dispute", f.statement_a),
            vec![
                "worker",
                "enterprise_admin",
                "enterprise_staff",
                "finance",
                "reviewer",
            ],
            json_body(json!({ "reason": "authorization matrix" })),
        ),
        row(
            Method::POST,
            format!("/statements/{}/resolve", f.statement_a),
            vec!["finance"],
            json_body(json!({ "action": "void", "reason": "authorization matrix" })),
        ),
        // Evidence: workers sync their own; media by reference.
        row(
            Method::POST,
            "/sync".into(),
            vec!["worker", "other_worker"],
            Box::new(sync_body),
        ),
        row(
            Method::PUT,
            format!("/media/{hash}?offset=0&size={size}"),
            vec!["worker"],
            Box::new(|_| Body::Bytes(fixture_bytes("photos/DSCN0010.jpg"), "image/jpeg")),
        ),
        row(
            Method::GET,
            format!("/media/{hash}/status"),
            order_readers.clone(),
            none(),
        ),
        row(
            Method::GET,
            format!("/media/{hash}"),
            order_readers.clone(),
            none(),
        ),
        row(
            Method::GET,
            format!("/media/{hash}/thumbnail"),
            order_readers.clone(),
            none(),
        ),
        // A phone is revoked by its owner only.
        row(
            Method::DELETE,
            format!("/devices/{}", f.spare_device),
            vec!["worker"],
            none(),
        ),
        // Storage: administrators.
        row(
            Method::GET,
            format!("/media/{hash}/copies"),
            vec!["administrator"],
            none(),
        ),
        row(
            Method::GET,
            "/drills/status".into(),
            vec!["administrator"],
            none(),
        ),
        // Authenticity checks: the risk team draws and works enterprise checks; reviewers
        // and support call back sampled workers and orders.
        row(
            Method::POST,
            "/checks/run".into(),
            vec!["risk"],
            json_body(json!({ "date": "2026-01-06" })),
        ),
        row(
            Method::GET,
            "/checks/items".into(),
            vec!["risk", "reviewer", "support"],
            none(),
        ),
        row(
            Method::GET,
            "/checks/screening".into(),
            vec!["risk"],
            none(),
        ),
        row(
            Method::POST,
            format!("/checks/items/{}/attachments", f.check_item),
            vec!["risk"],
            Box::new(|_| Body::Bytes(fixture_bytes("photos/DSCN0010.jpg"), "image/jpeg")),
        ),
        row(
            Method::POST,
            format!("/checks/items/{}/close", f.check_item),
            vec!["risk"],
            json_body(json!({ "outcome": "clear", "notes": "matrix check" })),
        ),
        // Regulator exports: the liaison team makes them; liaison and regulators read them.
        row(
            Method::POST,
            "/regulator/exports".into(),
            vec!["regulator_liaison"],
            json_body(json!({ "kind": "orders", "period": "2026-01-01..2026-01-02" })),
        ),
        row(
            Method::GET,
            "/regulator/exports".into(),
            vec!["regulator_liaison", "regulator"],
            none(),
        ),
        row(
            Method::GET,
            format!("/regulator/exports/{}", f.export),
            vec!["regulator_liaison", "regulator"],
            none(),
        ),
        // Deregistration of someone else's account: on an authority's order, by
        // administrators and support (the holder's own request is in checks.rs).
        row(
            Method::POST,
            format!("/accounts/{}/deregistration", f.leaving),
            vec!["administrator", "support"],
            json_body(json!({ "reason": "authority order", "authority_reference": "GA-1" })),
        ),
        row(
            Method::GET,
            format!("/accounts/{}/deregistration", f.leaving),
            vec!["administrator", "support"],
            none(),
        ),
    ]
}

/// A pending enterprise application; returns its id.
fn apply_as_enterprise(server: &TestServer) -> String {
    let public = support::anonymous_client(server);
    let (_, notice) = public.get("/privacy/notice");
    let body = json!({
        "login": "lotus-trading", "password": password_of("lotus-trading"),
        "company_name": "Lotus Trading Co., Ltd.", "credit_code": "91350100M000100Y43",
        "licence_valid_from": "2015-03-01", "business_scope": "retail of daily goods",
        "managers": [{ "name": "李四", "id_number": "110105197001010038", "position": "director" }],
        "consent": { "notice_version": notice["version"], "accepted": true },
    });
    let (status, submitted) = public.post("/onboarding/enterprises", body);
    assert_eq!(status, 200, "{submitted}");
    submitted["id"].as_str().unwrap().to_owned()
}
