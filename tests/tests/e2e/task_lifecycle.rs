//! The task lifecycle (standard 4.2.2, 4.2.3, 5.3, 5.5.4): an enterprise drafts a task and
//! submits it once complete, a reviewer checks it is genuine and publishes or refuses it,
//! workers apply with what they can do, accepted applications become orders, the headcount
//! closes the task, and tasks and orders are cancelled or voided only where that is allowed.

use serde_json::{Value, json};

use crate::support::{self, AREZZO, Client, Phone, TestServer, password_of};

/// The fields every task needs before it can be submitted, as the API names them.
const REQUIRED: [&str; 13] = [
    "description",
    "skills",
    "qualifications",
    "health_requirements",
    "hardware",
    "acceptance_criteria",
    "fee_basis",
    "min_fee_fen",
    "min_service_minutes",
    "max_minutes_per_day",
    "min_rest_minutes",
    "headcount",
    "estimated_minutes_per_person",
];

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

/// Only what a draft needs: title, site, window and fee.
fn bare_draft() -> Value {
    json!({
        "title": "Stock count", "site_lat": AREZZO.lat, "site_lon": AREZZO.lon,
        "site_radius_m": 150.0, "window_from": AREZZO.from, "window_to": AREZZO.to,
        "fee_fen": 20_000,
    })
}

/// A complete task that asks for a skill, a qualification and a health requirement.
fn demanding_task(headcount: i64) -> Value {
    let mut body = support::task_body(&AREZZO);
    body["skills"] = json!(["photography"]);
    body["qualifications"] = json!(["first aid certificate"]);
    body["health_requirements"] = json!(["fit for outdoor work"]);
    body["headcount"] = json!(headcount);
    body
}

/// A new worker account, signed in as their phone.
fn worker(server: &TestServer, operator: &Client, login: &str) -> Client {
    let body = json!({
        "login": login, "password": password_of(login), "role": "worker", "display_name": login,
    });
    let (status, created) = operator.post("/accounts", body);
    assert_eq!(status, 200, "{created}");
    server.device_client(login)
}

fn publish_check() -> Value {
    json!({
        "decision": "publish",
        "checks": [{ "kind": "visit", "note": "visited the shop; the manager confirmed it" }],
    })
}

#[test]
fn a_task_is_published_only_complete_and_after_an_authenticity_check() {
    let server = TestServer::start();
    let scene = server.scene("life", &AREZZO);
    let (enterprise, operator) = (&scene.enterprise, &scene.operator);

    // 0. A description with a control character is refused as a description, not a title.
    let mut garbled = bare_draft();
    garbled["description"] = json!("Count the stock\u{0007} in the back room");
    let (status, refused) = enterprise.post("/tasks", garbled);
    assert_eq!(
        (status, code(&refused)),
        (400, "invalid_description"),
        "{refused}"
    );
    assert!(
        refused["message"].as_str().unwrap().contains("description"),
        "{refused}"
    );

    // 1. A draft may be incomplete; submitting it names every missing field.
    let (status, draft) = enterprise.post("/tasks", bare_draft());
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["missing_fields"], json!(REQUIRED));
    let id = draft["id"].as_str().unwrap().to_owned();
    let task = format!("/tasks/{id}");
    let (status, refused) = enterprise.post(&format!("{task}/submit"), json!({}));
    assert_eq!((status, code(&refused)), (400, "task_incomplete"));
    let message = refused["message"].as_str().unwrap();
    for field in REQUIRED {
        assert!(message.contains(field), "{field} not named in: {message}");
    }

    // 2. What is given is checked, in a draft too.
    let (status, body) = enterprise.patch(&task, json!({ "min_fee_fen": 20_001 }));
    assert_eq!((status, code(&body)), (400, "fee_below_minimum"), "{body}");
    let (status, body) = enterprise.patch(&task, json!({ "skills": ["  "] }));
    assert_eq!((status, code(&body)), (400, "invalid_skills"), "{body}");
    let (status, body) = enterprise.patch(&task, json!({ "max_minutes_per_day": 2000 }));
    assert_eq!((status, code(&body)), (400, "invalid_rest_rules"), "{body}");

    // 3. Completed in two edits. Ten hours a person in a six-hour window is flagged.
    let (status, body) = enterprise.patch(
        &task,
        json!({ "description": "Count the stock", "skills": ["counting"], "headcount": 1 }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing_fields"].as_array().unwrap().len(), 10);
    assert_eq!(
        body["title"], "Stock count",
        "fields not given keep their value"
    );
    let rest = json!({
        "qualifications": [], "health_requirements": [], "hardware": "none",
        "acceptance_criteria": "a signed count sheet", "fee_basis": "per_hour",
        "min_fee_fen": 15_000, "min_service_minutes": 120, "max_minutes_per_day": 480,
        "min_rest_minutes": 60, "estimated_minutes_per_person": 600,
    });
    let (status, body) = enterprise.patch(&task, rest);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing_fields"], json!([]));
    let warnings: Vec<&str> = body["capacity_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(warnings, ["estimate_exceeds_window"], "{body}");

    // 4. Reviewing a draft, editing a submitted task, submitting twice: refused.
    let (status, body) = operator.post(&format!("{task}/review"), publish_check());
    assert_eq!((status, code(&body)), (409, "task_not_submitted"), "{body}");
    let (status, body) = enterprise.post(&format!("{task}/submit"), json!({}));
    assert_eq!((status, body["status"].as_str()), (200, Some("submitted")));
    let (status, body) = enterprise.patch(&task, json!({ "headcount": 2 }));
    assert_eq!((status, code(&body)), (409, "task_not_draft"), "{body}");
    let (status, body) = enterprise.post(&format!("{task}/submit"), json!({}));
    assert_eq!((status, code(&body)), (409, "task_not_draft"), "{body}");

    // 5. The reviewers' queue shows it with its warnings; enterprises do not review.
    let (status, queue) = operator.get("/tasks?status=submitted");
    assert_eq!(status, 200, "{queue}");
    let queued = queue.as_array().unwrap();
    assert_eq!(queued.len(), 1, "{queue}");
    assert_eq!(queued[0]["id"], id.as_str());
    assert_eq!(
        queued[0]["capacity_warnings"][0]["code"],
        "estimate_exceeds_window"
    );
    let (status, body) = operator.get("/tasks?status=pending");
    assert_eq!((status, code(&body)), (400, "invalid_status"));
    let (status, _) = enterprise.post(&format!("{task}/review"), publish_check());
    assert_eq!(status, 403);

    // 6. Publishing needs an authenticity check, with a note and evidence that exists.
    let no_check = json!({ "decision": "publish", "checks": [] });
    let (status, body) = operator.post(&format!("{task}/review"), no_check);
    assert_eq!((status, code(&body)), (400, "authenticity_check_required"));
    let short = json!({ "decision": "publish", "checks": [{ "kind": "lookup", "note": "ok" }] });
    let (status, body) = operator.post(&format!("{task}/review"), short);
    assert_eq!((status, code(&body)), (400, "invalid_check"), "{body}");
    let unknown = json!({ "decision": "publish", "checks": [{
        "kind": "lookup", "note": "registry entry matches", "evidence": ["ab".repeat(32)],
    }] });
    let (status, body) = operator.post(&format!("{task}/review"), unknown);
    assert_eq!((status, code(&body)), (400, "unknown_evidence"), "{body}");
    let (status, body) = operator.post(&format!("{task}/review"), json!({ "decision": "ok" }));
    assert_eq!((status, code(&body)), (400, "invalid_decision"));

    // 7. Published after a phone call; the number called is not kept in the clear.
    let publish = json!({ "decision": "publish", "checks": [{
        "kind": "phone_call", "note": "called 13812345678, the owner confirmed the count",
    }] });
    let (status, published) = operator.post(&format!("{task}/review"), publish);
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["status"], "published");
    let (status, seen) = enterprise.get(&task);
    assert_eq!(status, 200);
    let review = &seen["reviews"][0];
    assert_eq!(review["decision"], "published");
    assert_eq!(review["checks"][0]["kind"], "phone_call");
    assert!(
        review["checks"][0]["note"]
            .as_str()
            .unwrap()
            .contains("owner confirmed")
    );
    assert_eq!(
        review["capacity_warnings"][0]["code"],
        "estimate_exceeds_window"
    );
    let (_, records) = operator.get("/audit?action=task_reviewed");
    let record = &records.as_array().unwrap()[0];
    assert_eq!(record["object"], format!("task:{id}"));
    assert_eq!(record["detail"]["decision"], "published");
    assert_eq!(record["detail"]["checks"], json!(["phone_call"]));

    // 8. A published task is not reviewed again.
    let (status, body) = operator.post(&format!("{task}/review"), publish_check());
    assert_eq!((status, code(&body)), (409, "task_not_submitted"));
}

#[test]
fn a_refused_task_keeps_its_reason_and_goes_nowhere() {
    let server = TestServer::start();
    let scene = server.scene("refuse", &AREZZO);
    let (enterprise, operator) = (&scene.enterprise, &scene.operator);
    let (_, draft) = enterprise.post("/tasks", support::task_body(&AREZZO));
    let task = format!("/tasks/{}", draft["id"].as_str().unwrap());
    assert_eq!(enterprise.post(&format!("{task}/submit"), json!({})).0, 200);

    let (status, body) = operator.post(
        &format!("{task}/review"),
        json!({ "decision": "refuse", "reason": "a full-time post in disguise" }),
    );
    assert_eq!((status, code(&body)), (400, "reason_code_required"));
    let (status, body) = operator.post(
        &format!("{task}/review"),
        json!({ "decision": "refuse", "reason_code": "not_flexible_work", "reason": "" }),
    );
    assert_eq!((status, code(&body)), (400, "reason_required"));
    let (status, body) = operator.post(
        &format!("{task}/review"),
        json!({ "decision": "refuse", "reason_code": "sounds_wrong", "reason": "no" }),
    );
    assert_eq!((status, code(&body)), (422, "invalid_json"), "{body}");

    let refuse = json!({
        "decision": "refuse", "reason_code": "not_flexible_work",
        "reason": "a full-time post in disguise",
    });
    let (status, refused) = operator.post(&format!("{task}/review"), refuse);
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["status_reason"], "a full-time post in disguise");
    let (_, seen) = enterprise.get(&task);
    assert_eq!(seen["reviews"][0]["reason_code"], "not_flexible_work");
    assert_eq!(seen["reviews"][0]["decision"], "refused");

    // Refused is final: no edit, submission, cancellation, voiding or assignment.
    let reason = json!({ "reason": "changed our minds" });
    let attempts = [
        enterprise.patch(&task, json!({ "title": "again" })),
        enterprise.post(&format!("{task}/submit"), json!({})),
        enterprise.post(&format!("{task}/cancel"), reason.clone()),
        operator.post(&format!("{task}/void"), reason),
        enterprise.post(
            &format!("{task}/orders"),
            json!({ "worker_login": scene.worker_login }),
        ),
    ];
    let codes: Vec<(u16, String)> = attempts
        .iter()
        .map(|(status, body)| (*status, code(body).to_owned()))
        .collect();
    let expected = [
        "task_not_draft",
        "task_not_draft",
        "task_not_cancellable",
        "task_final",
        "task_not_published",
    ];
    for ((status, code), want) in codes.iter().zip(expected) {
        assert_eq!((*status, code.as_str()), (409, want), "{codes:?}");
    }
    // A refused task is not among those workers see.
    let phone = server.device_client(&scene.worker_login);
    let (status, open) = phone.get("/tasks");
    assert_eq!(status, 200, "{open}");
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "published")
    );
    assert!(!open.to_string().contains(seen["id"].as_str().unwrap()));
}

#[test]
fn workers_apply_with_what_the_task_requires_and_the_headcount_closes_it() {
    let server = TestServer::start();
    let scene = server.scene("apply", &AREZZO);
    let (enterprise, operator) = (&scene.enterprise, &scene.operator);
    let task_id = server.publish_task(enterprise, operator, demanding_task(2));
    let task = format!("/tasks/{task_id}");
    let li = worker(&server, operator, "li-apply");
    let zhao = worker(&server, operator, "zhao-apply");
    let sun = worker(&server, operator, "sun-apply");

    // 1. Workers see the published task; one lacking what it needs is told what is missing.
    let (status, open) = li.get("/tasks");
    assert_eq!(status, 200, "{open}");
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task_id.as_str())
    );
    let (status, refused) = li.post(&format!("{task}/applications"), json!({}));
    assert_eq!(
        (status, code(&refused)),
        (409, "requirements_not_met"),
        "{refused}"
    );
    let message = refused["message"].as_str().unwrap();
    for missing in ["photography", "first aid certificate", "health attestation"] {
        assert!(
            message.contains(missing),
            "{missing} not named in: {message}"
        );
    }
    let partly = json!({ "skills": ["photography"], "health_attested": true });
    let (status, refused) = li.post(&format!("{task}/applications"), partly);
    assert_eq!((status, code(&refused)), (409, "requirements_not_met"));
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("first aid certificate") && !message.contains("photography"));

    // 2. The worker's bearer token is not enough: applications come from the phone.
    let bearer = server.client("li-apply");
    let (status, body) = bearer.post(&format!("{task}/applications"), json!({}));
    assert_eq!((status, code(&body)), (401, "device_credential_required"));

    // 3. An eligible worker applies (names compare without case), once.
    let eligible = json!({
        "skills": ["Photography", "driving"], "qualifications": ["First Aid Certificate"],
        "health_attested": true,
    });
    let (status, application) = li.post(&format!("{task}/applications"), eligible.clone());
    assert_eq!(status, 200, "{application}");
    assert_eq!(application["status"], "pending");
    let (status, body) = li.post(&format!("{task}/applications"), eligible.clone());
    assert_eq!((status, code(&body)), (409, "already_applied"));
    let (_, listed) = enterprise.get(&format!("{task}/applications"));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // 4. Direct assignment checks what the worker declared: nothing, here.
    let (status, body) = enterprise.post(
        &format!("{task}/orders"),
        json!({ "worker_login": "zhao-apply" }),
    );
    assert_eq!(
        (status, code(&body)),
        (409, "requirements_not_met"),
        "{body}"
    );

    // 5. The enterprise accepts: an order is formed, the task stays open (one of two).
    let accept = format!(
        "{task}/applications/{}/accept",
        application["id"].as_str().unwrap()
    );
    let (status, order) = enterprise.post(&accept, json!({}));
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "assigned");
    assert_eq!(order["task_id"], task_id.as_str());
    let (status, body) = enterprise.post(&accept, json!({}));
    assert_eq!((status, code(&body)), (409, "application_not_pending"));
    assert_eq!(enterprise.get(&task).1["status"], "published");
    let (_, mine) = li.get("/orders");
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == order["id"])
    );

    // 6. Zhao declares and is then assigned directly: the headcount is reached, it closes.
    let (status, zhao_applied) = zhao.post(&format!("{task}/applications"), eligible.clone());
    assert_eq!(status, 200, "{zhao_applied}");
    let (status, body) = enterprise.post(
        &format!("{task}/orders"),
        json!({ "worker_login": "zhao-apply" }),
    );
    assert_eq!(status, 200, "{body}");
    let (_, closed) = enterprise.get(&task);
    assert_eq!(closed["status"], "closed", "{closed}");

    // 7. No more takers: applying, accepting and assigning are refused.
    let (status, body) = sun.post(&format!("{task}/applications"), eligible);
    assert_eq!((status, code(&body)), (409, "task_not_published"));
    let zhao_accept = format!(
        "{task}/applications/{}/accept",
        zhao_applied["id"].as_str().unwrap()
    );
    let (status, body) = operator.post(&zhao_accept, json!({}));
    assert_eq!((status, code(&body)), (409, "task_not_published"), "{body}");
    let (status, body) = enterprise.post(
        &format!("{task}/orders"),
        json!({ "worker_login": scene.worker_login }),
    );
    assert_eq!((status, code(&body)), (409, "task_not_published"));
    let (_, open) = sun.get("/tasks");
    assert!(
        !open
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task_id.as_str())
    );

    // 8. A reviewer may accept on the enterprise's behalf.
    let other = server.publish_task(enterprise, operator, demanding_task(1));
    let (status, applied) = sun.post(
        &format!("/tasks/{other}/applications"),
        json!({
            "skills": ["photography"], "qualifications": ["first aid certificate"],
            "health_attested": true,
        }),
    );
    assert_eq!(status, 200, "{applied}");
    let accept = format!(
        "/tasks/{other}/applications/{}/accept",
        applied["id"].as_str().unwrap()
    );
    let (status, order) = operator.post(&accept, json!({}));
    assert_eq!((status, order["status"].as_str()), (200, Some("assigned")));
    assert_eq!(
        enterprise.get(&format!("/tasks/{other}")).1["status"],
        "closed"
    );
}

#[test]
fn orders_and_tasks_are_cancelled_only_before_the_work_is_in() {
    let server = TestServer::start();
    let scene = server.scene("cancel", &AREZZO);
    let (enterprise, operator) = (&scene.enterprise, &scene.operator);
    let task = format!("/tasks/{}", scene.task_id);
    let order = format!("/orders/{}", scene.order_id);
    let reason = json!({ "reason": "the shop closed for renovation" });

    // 1. A task with an unfinished order is not cancelled.
    let (status, body) = enterprise.post(&format!("{task}/cancel"), reason.clone());
    assert_eq!(
        (status, code(&body)),
        (409, "task_has_open_orders"),
        "{body}"
    );

    // 2. The order is cancelled with a reason, by the enterprise, once.
    let (status, body) = enterprise.post(&format!("{order}/cancel"), json!({ "reason": "" }));
    assert_eq!((status, code(&body)), (400, "reason_required"));
    server.add_operator("finance-cancel", &[flexwork_server::auth::Team::Finance]);
    let finance = server.client("finance-cancel");
    assert_eq!(
        finance.post(&format!("{order}/cancel"), reason.clone()).0,
        403
    );
    let (status, cancelled) = enterprise.post(&format!("{order}/cancel"), reason.clone());
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "the shop closed for renovation");
    let (status, body) = enterprise.post(&format!("{order}/cancel"), reason.clone());
    assert_eq!((status, code(&body)), (409, "order_cancelled"));
    let (status, body) = enterprise.post(&format!("{order}/confirm"), json!({}));
    assert_eq!((status, code(&body)), (409, "order_cancelled"));

    // 3. The worker's phone learns it, and its evidence for the order is refused.
    let phone = Phone::for_scene(&server, &scene);
    let known = phone.device.order(&scene.order_id).unwrap();
    assert_eq!(known.summary.status, "cancelled");
    let worker = server.device_client(&scene.worker_login);
    let mut doc =
        flexwork_sync::EvidenceDoc::new(&scene.order_id, automerge::ActorId::random()).unwrap();
    let note = flexwork_sync::NoteRecord {
        id: "n1".into(),
        text: "arrived, shop closed".into(),
        at_ms: 0,
    };
    doc.add_note(&note, 0).unwrap();
    let rejected = support::raw::push(&worker, &scene.order_id, &mut doc);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].code, "order_cancelled");

    // 4. Now nothing is unfinished: the task is cancelled, and stays so.
    let (status, body) = enterprise.post(&format!("{task}/cancel"), reason.clone());
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    let (status, body) = operator.post(&format!("{task}/void"), reason.clone());
    assert_eq!((status, code(&body)), (409, "task_final"));
    let (_, records) = operator.get("/audit?action=order_cancelled");
    assert_eq!(records[0]["object"], format!("order:{}", scene.order_id));
    let (_, records) = operator.get("/audit?action=task_cancelled");
    assert_eq!(records[0]["object"], format!("task:{}", scene.task_id));

    // 5. A submitted order is not cancelled; its task then cannot be either.
    let done = server.scene("cancel-done", &AREZZO);
    let mut phone = Phone::for_scene(&server, &done);
    phone.record_arezzo_evidence(&done.order_id);
    phone
        .device
        .submit(&done.order_id, support::ms("2008-10-23T14:32:00Z"))
        .unwrap();
    phone.sync();
    let (status, body) = done.operator.post(
        &format!("/orders/{}/cancel", done.order_id),
        json!({ "reason": "too late for this" }),
    );
    assert_eq!(
        (status, code(&body)),
        (409, "order_already_submitted"),
        "{body}"
    );
    let (status, body) = done.enterprise.post(
        &format!("/tasks/{}/cancel", done.task_id),
        json!({ "reason": "too late for this" }),
    );
    assert_eq!((status, code(&body)), (409, "task_has_open_orders"));

    // 6. An operator voids a published task; a draft is cancelled by its enterprise.
    let published = server.publish_task(enterprise, operator, support::task_body(&AREZZO));
    let void = format!("/tasks/{published}/void");
    assert_eq!(enterprise.post(&void, reason.clone()).0, 403);
    let (status, body) = operator.post(&void, json!({ "reason": "enterprise unreachable" }));
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("void")),
        "{body}"
    );
    assert_eq!(body["status_reason"], "enterprise unreachable");
    let (status, body) = enterprise.post(&format!("/tasks/{published}/submit"), json!({}));
    assert_eq!((status, code(&body)), (409, "task_not_draft"));
    let (_, draft) = enterprise.post("/tasks", bare_draft());
    let (status, body) = enterprise.post(
        &format!("/tasks/{}/cancel", draft["id"].as_str().unwrap()),
        reason,
    );
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
}
