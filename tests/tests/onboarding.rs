//! A worker applies through the API, consents to the privacy notice, signs the declaration;
//! a reviewer sees the application masked, reveals one field with a reason, and approves it.
//! Nothing personal is ever answered, logged or stored in the clear.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod support;

use serde_json::{Value, json};
use support::{TestServer, password_of};

const ID_NUMBER: &str = "34052419800101001X";
const CARD: &str = "6228480402564890018";
const PHONE: &str = "13812345678";
const NAME: &str = "王小明";

fn anonymous(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/api/v1{path}", server.url());
    let request = match method {
        "GET" => http.get(url),
        _ => http.post(url).json(&body.unwrap_or(Value::Null)),
    };
    let response = request.send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

/// What is wrong with an application, how to make it so, and the answer expected.
type Case = (&'static str, Box<dyn Fn(&mut Value)>, u16, &'static str);

/// The check character of a 17-digit ID body (GB 11643).
fn with_check(body: &str) -> String {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

fn application(server: &TestServer, login: &str, id_number: &str, card: &str) -> Value {
    let (_, notice) = anonymous(server, "GET", "/privacy/notice", None);
    let (_, declaration) = anonymous(server, "GET", "/onboarding/declaration", None);
    json!({
        "login": login,
        "password": password_of(login),
        "name": NAME,
        "id_number": id_number,
        "bank_card": card,
        "phone": PHONE,
        "trade": "shop-front photography",
        "declarations": {
            "not_manager_of_hiring_enterprise": true,
            "not_civil_servant": true,
            "benefits_notice_acknowledged": true,
        },
        "signature": {
            "strokes": [[[10.0, 10.0, 0.0], [40.0, 12.0, 80.0], [70.0, 30.0, 160.0]]],
            "signed_text_sha256": declaration["sha256"],
            "signed_at": "2026-12-04T10:00:00+08:00",
        },
        "consent": { "notice_version": notice["version"], "accepted": true },
    })
}

#[test]
fn an_application_is_refused_without_consent_or_with_bad_identity_data() {
    let server = TestServer::start();
    let good = application(&server, "wang-apply", ID_NUMBER, CARD);
    let cases: Vec<Case> = vec![
        (
            "no consent",
            Box::new(|a| a["consent"] = Value::Null),
            400,
            "consent_required",
        ),
        (
            "consent box left unchecked",
            Box::new(|a| a["consent"]["accepted"] = json!(false)),
            400,
            "consent_required",
        ),
        (
            "an older notice",
            Box::new(|a| a["consent"]["notice_version"] = json!("000000000000")),
            409,
            "notice_changed",
        ),
        (
            "a mistyped ID number",
            Box::new(|a| a["id_number"] = json!("340524198001010013")),
            400,
            "id_check_digit",
        ),
        (
            "a 16-year-old",
            Box::new(|a| a["id_number"] = json!(with_check("11010520100601001"))),
            400,
            "too_young",
        ),
        (
            "a 70-year-old",
            Box::new(|a| a["id_number"] = json!(with_check("11010519560601001"))),
            400,
            "too_old",
        ),
        (
            "a civil servant",
            Box::new(|a| a["declarations"]["not_civil_servant"] = json!(false)),
            400,
            "declaration_required",
        ),
        (
            "a signature over another text",
            Box::new(|a| a["signature"]["signed_text_sha256"] = json!("00".repeat(32))),
            400,
            "signature_text_mismatch",
        ),
        (
            "a landline",
            Box::new(|a| a["phone"] = json!("02112345678")),
            400,
            "phone_prefix",
        ),
    ];
    for (what, change, status, code) in cases {
        let mut body = good.clone();
        change(&mut body);
        let (got, error) = anonymous(&server, "POST", "/onboarding/workers", Some(body));
        assert_eq!(
            (got, error["code"].as_str()),
            (status, Some(code)),
            "{what}: {error}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            !message.contains("19800101") && !message.contains(PHONE),
            "{message}"
        );
    }
    let (_, notice) = anonymous(&server, "GET", "/privacy/notice", None);
    let listed: Vec<&str> = notice["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for field in ["name", "id_number", "bank_card", "phone"] {
        assert!(listed.contains(&field), "the notice does not list {field}");
    }
}

#[test]
fn a_reviewer_sees_it_masked_reveals_with_a_reason_approves_and_nothing_leaks() {
    let server = TestServer::start();
    let scene = server.scene("review-apply", &support::AREZZO);
    let operator = &scene.operator;
    let mut responses = Vec::new();

    // 1. Two applications with the same ID number; the second has a mistyped card.
    let first = application(&server, "wang-first", ID_NUMBER, CARD);
    let (status, submitted) = anonymous(&server, "POST", "/onboarding/workers", Some(first));
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["state"], "pending");
    assert!(submitted["review_deadline"].as_str().unwrap() > "2026");
    let typo = "6228480402564890017";
    let second = application(&server, "wang-second", ID_NUMBER, typo);
    let (status, warned) = anonymous(&server, "POST", "/onboarding/workers", Some(second));
    assert_eq!(status, 200, "{warned}");
    assert_eq!(warned["warnings"], json!(["bank_card_may_be_mistyped"]));
    responses.extend([submitted.clone(), warned.clone()]);

    // 2. The queue shows both masked, the duplicate flagged, deadlines in two working days.
    assert_eq!(scene.enterprise.get("/onboarding/workers").0, 403);
    let (status, queue) = operator.get("/onboarding/workers?state=pending");
    assert_eq!(status, 200);
    let queue = queue.as_array().unwrap().clone();
    assert_eq!(queue.len(), 2);
    let mine = queue.iter().find(|a| a["id"] == submitted["id"]).unwrap();
    assert_eq!(mine["id_number"], "340524********001X");
    assert_eq!(mine["phone"], "138****5678");
    assert_eq!(mine["name"], "王**");
    assert!(mine["bank_card"].as_str().unwrap().contains('*'));
    assert_eq!(mine["overdue"], false);
    let other = queue.iter().find(|a| a["id"] == warned["id"]).unwrap();
    assert_eq!(other["automated"]["duplicate_id_number"], true);
    assert_eq!(other["automated"]["card_luhn_failed"], true);
    responses.extend(queue.iter().cloned());

    // 3. Revealing a field needs a reason, and is audited with it.
    let id = submitted["id"].as_str().unwrap();
    let reveal = format!("/onboarding/workers/{id}/reveal");
    let (status, refused) = operator.post(&reveal, json!({ "field": "id_number", "reason": "" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("reason_required"))
    );
    let why = "compare with the scanned ID card";
    let (status, revealed) = operator.post(&reveal, json!({ "field": "id_number", "reason": why }));
    assert_eq!((status, revealed["value"].as_str()), (200, Some(ID_NUMBER)));

    // 4. Approval creates the worker's account; a second decision is refused.
    let decide = format!("/onboarding/workers/{id}/decision");
    let approve = json!({ "decision": "approve", "reason": "documents match" });
    let (status, approved) = operator.post(&decide, approve.clone());
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    assert_eq!(operator.post(&decide, approve).0, 409);
    let worker = server.client("wang-first");
    assert_eq!(worker.get("/me").1["role"], "worker");
    responses.push(approved);

    // 5. The audit trail has the masked view, the reveal with its reason, the decision.
    let (_, records) = operator.get("/audit?limit=500");
    let records = records.as_array().unwrap().clone();
    let reveal_record = records.iter().find(|r| r["action"] == "reveal").unwrap();
    assert_eq!(reveal_record["detail"]["reason"], why);
    assert_eq!(reveal_record["detail"]["field"], "id_number");
    assert!(records.iter().any(|r| r["action"] == "masked_view"));
    assert!(records.iter().any(|r| r["action"] == "application_decided"));
    responses.extend(records);

    // 6. No answer but the reveal, and no file of the server (database included), holds the ID
    //    number, the card or the phone number in the clear.
    let answered = serde_json::to_string(&responses).unwrap();
    let logs = support::captured_logs();
    assert!(
        logs.contains("onboarding"),
        "the logs were not captured: {logs:.2000}"
    );
    for secret in [ID_NUMBER, CARD, typo, PHONE, NAME] {
        assert!(!answered.contains(secret), "an answer carries {secret}");
        assert!(!logs.contains(secret), "a log line carries {secret}");
    }
    let mut files = Vec::new();
    collect(&server.state().config.data_dir, &mut files);
    for (path, bytes) in files {
        for secret in [ID_NUMBER, CARD, PHONE] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds {secret} in the clear", path.display());
        }
        let name = NAME.as_bytes();
        assert!(
            !bytes.windows(name.len()).any(|w| w == name),
            "{}",
            path.display()
        );
    }
}

fn collect(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

fn put_document(server: &TestServer, id: &str, token: &str, kind: &str, bytes: Vec<u8>) -> u16 {
    reqwest::blocking::Client::new()
        .put(format!(
            "{}/api/v1/onboarding/enterprises/{id}/documents/{kind}",
            server.url()
        ))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn an_enterprise_applies_with_its_documents_and_its_managers_cannot_work_for_it() {
    let server = TestServer::start();
    let scene = server.scene("enterprise-apply", &support::AREZZO);
    let operator = &scene.operator;
    let manager_id = with_check("11010519700101003");
    let (_, notice) = anonymous(&server, "GET", "/privacy/notice", None);

    // 1. A pilot-era credit code that fails its check is accepted with a warning.
    let body = json!({
        "login": "lotus-trading",
        "password": password_of("lotus-trading"),
        "company_name": "Lotus Trading Co., Ltd.",
        "credit_code": "91350100M0001TGQXM",
        "licence_valid_from": "2015-03-01",
        "business_scope": "retail of daily goods",
        "managers": [{ "name": "李四", "id_number": manager_id, "position": "director" }],
        "consent": { "notice_version": notice["version"], "accepted": true },
    });
    let (status, submitted) = anonymous(&server, "POST", "/onboarding/enterprises", Some(body));
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(
        submitted["warnings"],
        json!(["credit_code_check_failed_verify_with_registry"])
    );
    let id = submitted["id"].as_str().unwrap().to_owned();
    let token = submitted["upload_token"].as_str().unwrap().to_owned();

    // 2. Documents need the upload token and must be images; approval needs all four.
    let photo = || support::fixture_bytes("photos/DSCN0010.jpg");
    assert_eq!(
        put_document(&server, &id, "wrong-token", "storefront", photo()),
        401
    );
    assert_eq!(
        put_document(&server, &id, &token, "storefront", b"text".to_vec()),
        415
    );
    assert_eq!(
        put_document(&server, &id, &token, "storefront", photo()),
        200
    );
    let decide = format!("/onboarding/enterprises/{id}/decision");
    let approve = json!({ "decision": "approve", "reason": "licence checked with the registry" });
    let (status, missing) = operator.post(&decide, approve.clone());
    assert_eq!(
        (status, missing["code"].as_str()),
        (409, Some("documents_missing"))
    );
    for kind in ["business_licence", "office", "business_scene"] {
        assert_eq!(put_document(&server, &id, &token, kind, photo()), 200);
    }
    let (_, queue) = operator.get("/onboarding/enterprises");
    let listed = &queue.as_array().unwrap()[0];
    assert_eq!(listed["credit_code_check_ok"], false);
    assert_eq!(listed["managers"][0]["name"], "李*");
    assert_eq!(listed["documents"].as_object().unwrap().len(), 4);
    let hash = listed["documents"]["business_licence"].as_str().unwrap();
    let (_, copies) = operator.get(&format!("/media/{hash}/copies"));
    assert_eq!(copies[0]["state"], "stored", "{copies}");
    let (status, approved) = operator.post(&decide, approve);
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );

    // 3. The director applies as a worker: flagged, and once admitted, never assigned to
    //    the enterprise that declared them.
    let worker = application(&server, "li-si", &manager_id, CARD);
    let (status, applied) = anonymous(&server, "POST", "/onboarding/workers", Some(worker));
    assert_eq!(status, 200, "{applied}");
    let (_, queue) = operator.get("/onboarding/workers");
    let flagged = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == applied["id"])
        .unwrap();
    assert_eq!(
        flagged["automated"]["declared_manager_of_an_enterprise"],
        true
    );
    let worker_decision = format!(
        "/onboarding/workers/{}/decision",
        applied["id"].as_str().unwrap()
    );
    let admit = json!({ "decision": "approve", "reason": "may work for other enterprises" });
    assert_eq!(operator.post(&worker_decision, admit).0, 200);
    server.set_up_second_factor("lotus-trading");
    let lotus = server.client("lotus-trading");
    let (status, task) = lotus.post("/tasks", support::task_body(&support::AREZZO));
    assert_eq!(status, 200, "{task}");
    let assign = format!("/tasks/{}/orders", task["id"].as_str().unwrap());
    let (status, refused) = lotus.post(&assign, json!({ "worker_login": "li-si" }));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("conflict_of_interest"))
    );
    let (status, _) = scene.enterprise.post(
        &format!("/tasks/{}/orders", scene.task_id),
        json!({ "worker_login": "li-si" }),
    );
    assert_eq!(status, 200, "another enterprise may give them work");
}

#[test]
fn a_key_rotation_rewraps_personal_fields_and_totp_secrets_before_the_old_key_can_go() {
    let server = TestServer::start();
    let scene = server.scene("rotate-fields", &support::AREZZO);
    let body = application(&server, "wang-rotate", ID_NUMBER, CARD);
    let (status, submitted) = anonymous(&server, "POST", "/onboarding/workers", Some(body));
    assert_eq!(status, 200, "{submitted}");
    let state = server.state().clone();
    let old = server
        .block_on(flexwork_server::keys::status(&state))
        .unwrap()
        .current;

    // 1. A new master key made current without re-wrapping (as by another process): no media
    //    exists, but sealed fields still need the old key, so it cannot be retired.
    let sm4 = flexwork_storage::Suite::Sm4GcmSm3;
    state.sites.keys.rotate(sm4).unwrap();
    let early = server.block_on(flexwork_server::keys::retire(&state, &old));
    assert_eq!(early.unwrap_err().code, "master_key_in_use");

    // 2. A rotation re-wraps the four fields and both accounts' TOTP secrets.
    let rotation = server
        .block_on(flexwork_server::keys::rotate(&state, sm4))
        .unwrap();
    assert_eq!(rotation.fields_rewrapped, 4 + 2);
    server
        .block_on(flexwork_server::keys::retire(&state, &old))
        .unwrap();

    // 3. Everything still opens under the new key: the reveal, and two-factor sign-in.
    let id = submitted["id"].as_str().unwrap();
    let reveal = json!({ "field": "phone", "reason": "call the applicant back" });
    let (status, phone) = scene
        .operator
        .post(&format!("/onboarding/workers/{id}/reveal"), reveal);
    assert_eq!((status, phone["value"].as_str()), (200, Some(PHONE)));
    assert_eq!(server.client("acme-rotate-fields").get("/orders").0, 200);
}

#[test]
fn the_sandbox_real_name_provider_answers_each_application_and_says_it_is_a_sandbox() {
    let server = TestServer::start();
    let scene = server.scene("realname", &support::AREZZO);
    // The sandbox's documented test identity: sequence digits 999 → the name does not match.
    let mismatched = with_check("34052419800101999");
    let mut ids = Vec::new();
    for (login, id_number) in [("wang-match", ID_NUMBER), ("wang-mismatch", &mismatched)] {
        let body = application(&server, login, id_number, CARD);
        let (status, submitted) = anonymous(&server, "POST", "/onboarding/workers", Some(body));
        assert_eq!(status, 200, "{submitted}");
        ids.push(submitted["id"].as_str().unwrap().to_owned());
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answers = loop {
        let (_, queue) = scene.operator.get("/onboarding/workers");
        let answers: Vec<String> = ids
            .iter()
            .map(|id| {
                let found = queue.as_array().unwrap().iter().find(|a| a["id"] == *id);
                found.unwrap()["automated"]["real_name_verification"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if answers.iter().all(|a| a != "pending") {
            break answers;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer: {answers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };

    assert_eq!(answers[0], "match (sandbox provider)");
    assert_eq!(answers[1], "mismatch: name (sandbox provider)");
}

#[test]
fn logins_are_checked_across_every_kind_of_application_and_reasons_lose_their_numbers() {
    let server = TestServer::start();
    let scene = server.scene("logins", &support::AREZZO);

    // 1. A login that is a phone number, or empty, is refused.
    for login in ["13912345678", "", "a b"] {
        let body = application(&server, login, ID_NUMBER, CARD);
        let (status, error) = anonymous(&server, "POST", "/onboarding/workers", Some(body));
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_login")),
            "{login}"
        );
    }

    // 2. A login pending as a worker's application is taken for enterprises and accounts too.
    let body = application(&server, "shared-login", ID_NUMBER, CARD);
    let (status, submitted) = anonymous(&server, "POST", "/onboarding/workers", Some(body));
    assert_eq!(status, 200, "{submitted}");
    let (_, notice) = anonymous(&server, "GET", "/privacy/notice", None);
    let enterprise = json!({
        "login": "Shared-Login", "password": password_of("x-shared"),
        "company_name": "Shared Co.", "credit_code": "91350200MA2YJ1XR9G",
        "licence_valid_from": "2015-03-01", "business_scope": "retail",
        "managers": [{ "name": "李四", "id_number": with_check("11010519700101003"),
                       "position": "director" }],
        "consent": { "notice_version": notice["version"], "accepted": true },
    });
    let (status, error) = anonymous(&server, "POST", "/onboarding/enterprises", Some(enterprise));
    assert_eq!((status, error["code"].as_str()), (409, Some("login_taken")));
    let account = json!({ "login": "SHARED-LOGIN", "password": "long-enough-pw",
                          "role": "worker", "display_name": "x" });
    assert_eq!(scene.operator.post("/accounts", account).0, 409);

    // 3. A phone number typed into a decision's reason is not kept whole anywhere.
    let id = submitted["id"].as_str().unwrap();
    let reject = json!({ "decision": "reject", "reason": "called 13812345678, no answer" });
    let (status, rejected) = scene
        .operator
        .post(&format!("/onboarding/workers/{id}/decision"), reject);
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["decision_reason"], "called 138******78, no answer");
    let (_, records) = scene.operator.get("/audit?action=application_decided");
    assert!(!records.to_string().contains("13812345678"), "{records}");
    let (status, error) = anonymous(
        &server,
        "POST",
        "/onboarding/workers",
        Some(json!({ "login": "x", "id_number": 110101199001018011u64 })),
    );
    assert_eq!(status, 422, "{error}");
    assert!(!error.to_string().contains("110101199001018011"), "{error}");
}
