//! A worker applies through the API, consents to the privacy notice, signs the declaration;
//! a reviewer sees the application masked, reveals one field with a reason, and approves it.
//! Nothing personal is ever answered, logged or stored in the clear.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::{TestServer, password_of};
use serde_json::{Value, json};

const ID_NUMBER: &str = "34052419800101001X";
const CARD: &str = "6228480402564890018";
const PHONE: &str = "13812345678";
const NAME: &str = "王小明";

/// Now, in RFC 3339: applications are signed when they are sent, as on a phone.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

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
            "signed_at": now_rfc3339(),
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

    // 4. Approval waits for the real-name check; then it creates the worker's account, and a
    //    second decision is refused.
    let decide = format!("/onboarding/workers/{id}/decision");
    let approve = json!({ "decision": "approve", "reason": "documents match" });
    let (status, early) = operator.post(&decide, approve.clone());
    if status == 409 {
        assert_eq!(early["code"], "real_name_pending", "{early}");
    }
    let verdict = support::wait_real_name(operator, id);
    assert!(verdict.starts_with("match"), "{verdict}");
    let (status, approved) = if status == 200 {
        (status, early)
    } else {
        operator.post(&decide, approve.clone())
    };
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
    support::wait_real_name(operator, applied["id"].as_str().unwrap());
    assert_eq!(operator.post(&worker_decision, admit).0, 200);
    server.set_up_second_factor("lotus-trading");
    let lotus = server.client("lotus-trading");
    let task_id = server.publish_task(&lotus, operator, support::task_body(&support::AREZZO));
    let assign = format!("/tasks/{task_id}/orders");
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

    // 1. A login that is a phone number (also written in groups), or empty, is refused.
    for login in ["13912345678", "139.1234.5678", "139_1234_5678", "", "a b"] {
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

// ---------------------------------------------------------------------------------------
// Applying from the phone library, face checks and the provider's callbacks.
// ---------------------------------------------------------------------------------------

use flexwork_client_core::{
    Applicant, ApplicantDeclarations, ApplicationDraft, ApplicationState, FaceCapture,
};
use flexwork_server::realname::SandboxConfig;

const CALLBACK_SECRET: &str = "test-callback-secret-0123456789abcdef";

/// A sandbox that answers quickly and never fails, with callbacks delivered `duplicates`
/// of the time twice and `latency_ms` of delay, and the HTTP callback secret set.
fn sandbox(latency_ms: (u64, u64), duplicates: f64) -> impl FnOnce(&mut flexwork_server::Config) {
    move |config| {
        config.realname.sandbox = SandboxConfig {
            latency_ms,
            timeout_ms: 60_000,
            timeout_rate: 0.0,
            unavailable_rate: 0.0,
            duplicate_callback_rate: duplicates,
            async_face_check: true,
            seed: None,
        };
        // These scenarios send many applications from one address on purpose.
        config.login.max_applications_per_address = 1_000;
        let secret = flexwork_server::config::Secret::new(CALLBACK_SECRET);
        config.realname.callback_secret = Some(secret);
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn applicant(login: &str, id_number: &str) -> Applicant {
    Applicant {
        login: login.into(),
        password: password_of(login),
        name: NAME.into(),
        id_number: id_number.into(),
        bank_card: CARD.into(),
        phone: PHONE.into(),
        trade: "shop-front photography".into(),
    }
}

/// What a worker enters on the phone: their fields, the three declarations ticked, the
/// notice accepted, a signature drawn now, and a face captured now.
fn draft(login: &str, id_number: &str, face: Option<Vec<u8>>) -> ApplicationDraft {
    let now = now_ms();
    ApplicationDraft {
        applicant: applicant(login, id_number),
        declarations: ApplicantDeclarations {
            not_manager_of_hiring_enterprise: true,
            not_civil_servant: true,
            benefits_notice_acknowledged: true,
        },
        notice_accepted: true,
        strokes: support::signature(now - 2_000),
        signed_at_ms: now,
        face: face.map(|image| FaceCapture {
            image,
            captured_at_ms: now - 30_000,
        }),
    }
}

/// The SHA-256 of `bytes`, computed here rather than by the code under test.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A real photo with a few bytes appended after its end (decoders ignore them), chosen so
/// its SHA-256 starts with `prefix`: the sandbox's rule for a face that does not match
/// (`0000`) or fails liveness (`ffff`).
fn photo_whose_hash_starts_with(path: &str, prefix: [u8; 2]) -> Vec<u8> {
    use sha2::Digest;
    let mut bytes = support::fixture_bytes(path);
    let mut base = sha2::Sha256::new();
    base.update(&bytes);
    for nonce in 0u64.. {
        let mut hasher = base.clone();
        hasher.update(nonce.to_le_bytes());
        let digest = hasher.finalize();
        if digest[..2] == prefix {
            bytes.extend(nonce.to_le_bytes());
            return bytes;
        }
    }
    unreachable!("some nonce gives any 16-bit prefix")
}

/// The operator's view of one application.
fn reviewed(operator: &support::Client, id: &str) -> Value {
    let (status, queue) = operator.get("/onboarding/workers?state=pending");
    assert_eq!(status, 200, "{queue}");
    queue
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the queue: {queue}"))
        .clone()
}

/// Waits until the provider's answer about the face reached the application.
fn face_checked(operator: &support::Client, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let application = reviewed(operator, id);
        if application["automated"]["face_check"]["state"] != "pending" {
            return application;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no face check answer: {application}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn operator(server: &TestServer, login: &str) -> support::Client {
    server.add_account(flexwork_server::auth::Role::Operator, login);
    server.client(login)
}

/// The provider ticket of an application's face check, once the provider gave one.
fn ticket_of(server: &TestServer, id: &str) -> String {
    use sqlx::Row;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let row = server.block_on(
            sqlx::query("SELECT ticket FROM face_checks WHERE application_id = $1")
                .bind(id)
                .fetch_one(&server.state().db.pool),
        );
        if let Some(ticket) = row.unwrap().try_get::<Option<String>, _>("ticket").unwrap() {
            return ticket;
        }
        assert!(std::time::Instant::now() < deadline, "no ticket for {id}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Posts a callback as a licensed provider would, signed with `secret`.
fn post_callback(server: &TestServer, body: &Value, secret: &str) -> (u16, Value) {
    use hmac::{KeyInit, Mac};
    let body = serde_json::to_vec(body).unwrap();
    let timestamp = (now_ms() / 1_000).to_string();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&body);
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/realname/callbacks", server.url()))
        .header("content-type", "application/json")
        .header("x-realname-timestamp", timestamp)
        .header("x-realname-signature", format!("sha256={signature}"))
        .body(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn callback_body(ticket: &str, id: &str, verdict: Value, liveness: bool, attempt: u32) -> Value {
    json!({
        "ticket": ticket,
        "delivery_attempt": attempt,
        "result": {
            "request_id": id,
            "provider": "sandbox",
            "verdict": verdict,
            "checked_at_ms": now_ms(),
            "liveness_passed": liveness,
        },
    })
}

/// Whether a log line says the callback of `ticket` came again and was ignored.
fn duplicate_logged(ticket: &str) -> bool {
    support::captured_logs()
        .lines()
        .any(|l| l.contains("duplicate real-name callback ignored") && l.contains(ticket))
}

#[test]
fn a_worker_applies_from_the_phone_offline_and_it_is_sent_once_the_server_is_back() {
    let mut server = TestServer::start_with(sandbox((20, 60), 0.0));
    let mut phone = support::Phone::new();
    let url = server.url();

    // 1. Online, the app fetches what the applicant will read: the hash it computes is the
    //    server's, and both are the SHA-256 of the text.
    let terms = phone.device.fetch_onboarding_terms(&url).unwrap();
    let (_, declaration) = anonymous(&server, "GET", "/onboarding/declaration", None);
    assert_eq!(
        terms.declaration_text,
        declaration["text"].as_str().unwrap()
    );
    assert_eq!(
        terms.declaration_sha256,
        declaration["sha256"].as_str().unwrap()
    );
    assert_eq!(
        terms.declaration_sha256,
        sha256_hex(terms.declaration_text.as_bytes())
    );
    let (_, notice) = anonymous(&server, "GET", "/privacy/notice", None);
    assert_eq!(terms.notice_version, notice["version"].as_str().unwrap());
    assert!(
        terms.notice_text.contains("face_image"),
        "the notice names the face image"
    );

    // 2. Offline, the worker signs and captures their face: the application is queued.
    server.stop();
    // A face no other scenario uploads: other scenarios log the hashes of the photos they
    // store as evidence, and this one must never appear in a log line. Bytes after the
    // image's end marker make the file unique and change nothing a decoder reads.
    let mut face = support::fixture_bytes("photos/DSCN0012.jpg");
    face.extend_from_slice(b"offline-applicant-face");
    let signed = phone
        .device
        .sign_application(&terms, &draft("wang-phone", ID_NUMBER, Some(face.clone())))
        .unwrap();
    assert_eq!(signed.state, ApplicationState::Queued);
    assert_eq!(signed.signed_text_sha256, terms.declaration_sha256);
    assert_eq!(signed.masked_name, "王**");
    let tried = phone.device.submit_applications().unwrap();
    assert_eq!(tried.len(), 1);
    assert_eq!(tried[0].state, ApplicationState::Queued);
    assert_eq!(tried[0].error_code.as_deref(), Some("network"));
    assert!(tried[0].holds_personal_data);

    // 3. The app is killed and reopened: the application and the terms are still there.
    let mut phone = phone.reopen();
    let waiting = phone.device.applications().unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, signed.id);
    assert_eq!(waiting[0].state, ApplicationState::Queued);
    assert_eq!(
        phone.device.onboarding_terms(&url).unwrap(),
        Some(terms.clone())
    );

    // 4. The server is back: the application goes, once, and leaves no personal data behind.
    server.restart();
    let sent = phone.device.submit_applications().unwrap();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.state, ApplicationState::Submitted, "{sent:?}");
    assert!(!sent.holds_personal_data);
    assert_eq!(sent.face_check.as_deref(), Some("pending"));
    let id = sent.server_id.clone().unwrap();
    assert!(
        phone.device.submit_applications().unwrap().is_empty(),
        "nothing left to send"
    );

    // 5. The reviewer sees it: what was signed, the face present but masked, and the face
    //    check's answer.
    let operator = operator(&server, "op-phone");
    let application = face_checked(&operator, &id);
    assert_eq!(application["login"], "wang-phone");
    assert_eq!(application["id_number"], "340524********001X");
    assert_eq!(
        application["signature"]["signed_text_sha256"],
        declaration["sha256"]
    );
    assert_eq!(application["signature"]["strokes"], 2);
    assert_eq!(application["face_image"]["size"], face.len());
    assert_eq!(application["face_image"]["media_type"], "image/jpeg");
    let face_check = &application["automated"]["face_check"];
    assert_eq!(face_check["state"], "match", "{application}");
    assert_eq!(face_check["liveness_passed"], true);
    assert_eq!(face_check["provider"], "sandbox");
    assert_eq!(
        application["automated"]["real_name_verification"],
        "match (sandbox provider)"
    );
    let (_, queue) = operator.get("/onboarding/workers");
    assert_eq!(
        queue.as_array().unwrap().len(),
        1,
        "one application, not two"
    );
    let listed = queue.to_string();
    let face_hash = sha256_hex(&face);
    let face_base64 = data_encoding_free_base64(&face[..300]);
    assert!(
        !listed.contains(&face_hash),
        "the list shows the face's hash"
    );
    assert!(
        !listed.contains(&face_base64[..200]),
        "the list shows the face"
    );

    // 6. No file of the phone holds the applicant's data any more.
    let mut files = Vec::new();
    collect(phone.dir.path(), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("device.sqlite")));
    for (path, bytes) in &files {
        for secret in [ID_NUMBER, CARD, PHONE, NAME, &password_of("wang-phone")] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} still holds {secret}", path.display());
        }
        let photo = &face[1_000..1_064];
        assert!(
            !bytes.windows(photo.len()).any(|w| w == photo),
            "{} still holds the face image",
            path.display()
        );
    }
    let logs = support::captured_logs();
    for secret in [ID_NUMBER, CARD, PHONE, NAME, face_hash.as_str()] {
        assert!(!logs.contains(secret), "a log line carries {secret}");
    }
}

/// Standard base64 of `bytes`, written out here so the check does not use the encoder under
/// test.
fn data_encoding_free_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            out.push('=');
        }
    }
    out
}

#[test]
fn a_signature_over_another_text_or_at_an_impossible_time_is_refused() {
    let server = TestServer::start_with(sandbox((20, 60), 0.0));
    let mut phone = support::Phone::new();

    // 1. Through the phone: the text shown differs from the server's (it was changed on the
    //    way, or the declaration changed since): refused for good, and nothing kept.
    let mut terms = phone.device.fetch_onboarding_terms(&server.url()).unwrap();
    terms
        .declaration_text
        .push_str(" I also waive my right to be paid.");
    let signed = phone
        .device
        .sign_application(&terms, &draft("wang-tampered", ID_NUMBER, None))
        .unwrap();
    assert_ne!(
        signed.signed_text_sha256,
        sha256_hex(super_declaration(&server).as_bytes())
    );
    let tried = phone.device.submit_applications().unwrap();
    assert_eq!(tried[0].state, ApplicationState::Refused);
    assert_eq!(
        tried[0].error_code.as_deref(),
        Some("signature_text_mismatch")
    );
    assert!(!tried[0].holds_personal_data);

    // 2. Over HTTP: each implausible signature its own code.
    let good = application(&server, "wang-range", ID_NUMBER, CARD);
    let hour = 3_600_000;
    let at = |ms: i64| {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
        t.unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let future = at(now_ms() + hour);
    let long_ago = "2020-01-01T10:00:00+08:00";
    let stroke = |n: usize| {
        (0..n)
            .map(|i| json!([i % 500, 10.0, i]))
            .collect::<Vec<_>>()
    };
    let cases: Vec<Case> = vec![
        (
            "signed an hour from now",
            Box::new(move |a| a["signature"]["signed_at"] = json!(future.clone())),
            400,
            "signature_in_future",
        ),
        (
            "signed before the declaration existed",
            Box::new(move |a| a["signature"]["signed_at"] = json!(long_ago)),
            400,
            "signature_before_declaration",
        ),
        (
            "a signing time that is no time",
            Box::new(|a| a["signature"]["signed_at"] = json!("yesterday")),
            400,
            "signature_time_invalid",
        ),
        (
            "a point far off any canvas",
            Box::new(|a| a["signature"]["strokes"][0][1] = json!([1e12, 12.0, 80.0])),
            400,
            "signature_point_invalid",
        ),
        (
            "a negative time",
            Box::new(|a| a["signature"]["strokes"][0][1] = json!([40.0, 12.0, -5.0])),
            400,
            "signature_point_invalid",
        ),
        (
            "a pressure above 1",
            Box::new(|a| a["signature"]["strokes"][0][1] = json!([40.0, 12.0, 80.0, 7.5])),
            400,
            "signature_point_invalid",
        ),
        (
            "20,001 points",
            Box::new(move |a| a["signature"]["strokes"] = json!([stroke(20_001)])),
            400,
            "signature_too_long",
        ),
        (
            "a single point",
            Box::new(|a| a["signature"]["strokes"] = json!([[[1.0, 1.0, 0.0]]])),
            400,
            "signature_required",
        ),
        (
            "a point of five numbers",
            Box::new(|a| a["signature"]["strokes"][0][1] = json!([1, 2, 3, 0.5, 9])),
            422,
            "invalid_json",
        ),
        (
            "a face image that is text",
            Box::new(|a| {
                a["face"] = json!({ "image_base64": "aGVsbG8gd29ybGQ=",
                                    "captured_at": now_rfc3339() })
            }),
            415,
            "face_image_unreadable",
        ),
        (
            "a face image that is not base64",
            Box::new(|a| {
                a["face"] = json!({ "image_base64": "%%%", "captured_at": now_rfc3339() })
            }),
            400,
            "face_image_invalid",
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
        assert!(error["message"].as_str().unwrap().len() > 20, "{error}");
    }

    // 3. A resubmission under the same reference is answered with the first application; a
    //    different application under it is refused.
    let mut first = good.clone();
    first["client_reference"] = json!("8d0f1c52-6f2e-4a55-9a57-4b8f3f0c2a11");
    let (status, a) = anonymous(&server, "POST", "/onboarding/workers", Some(first.clone()));
    assert_eq!(status, 200, "{a}");
    let (status, again) = anonymous(&server, "POST", "/onboarding/workers", Some(first.clone()));
    assert_eq!((status, &again["id"]), (200, &a["id"]), "{again}");
    first["trade"] = json!("plumbing");
    let (status, reused) = anonymous(&server, "POST", "/onboarding/workers", Some(first));
    assert_eq!(
        (status, reused["code"].as_str()),
        (409, Some("client_reference_reused"))
    );
}

fn super_declaration(server: &TestServer) -> String {
    let (_, declaration) = anonymous(server, "GET", "/onboarding/declaration", None);
    declaration["text"].as_str().unwrap().to_owned()
}

#[test]
fn a_face_callback_delivered_twice_is_applied_once_even_after_a_restart() {
    let mut server = TestServer::start_with(sandbox((20, 80), 1.0));
    let mut phone = support::Phone::new();
    let terms = phone.device.fetch_onboarding_terms(&server.url()).unwrap();
    let face = support::fixture_bytes("photos/DSCN0027.jpg");
    phone
        .device
        .sign_application(&terms, &draft("wang-twice", ID_NUMBER, Some(face)))
        .unwrap();
    let sent = phone.device.submit_applications().unwrap();
    let id = sent[0].server_id.clone().unwrap();
    let operator = operator(&server, "op-twice");

    // 1. The sandbox delivers the callback twice: the second is recognised and ignored.
    let application = face_checked(&operator, &id);
    assert_eq!(application["automated"]["face_check"]["state"], "match");
    let ticket = ticket_of(&server, &id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !duplicate_logged(&ticket) {
        assert!(std::time::Instant::now() < deadline, "no second delivery");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let applied = server.count("realname_callbacks WHERE ticket", &ticket);
    assert_eq!(applied, 1);

    // 2. After a restart, the provider retries the same ticket over HTTP with a different
    //    answer: acknowledged as a duplicate, and the application is unchanged.
    server.stop();
    server.restart();
    let mismatch = json!({ "verdict": "mismatch", "fields": ["face"] });
    let body = callback_body(&ticket, &id, mismatch, true, 3);
    let (status, ack) = post_callback(&server, &body, CALLBACK_SECRET);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (&ack["applied"], &ack["duplicate"]),
        (&json!(false), &json!(true))
    );
    let operator = server.client("op-twice");
    let application = reviewed(&operator, &id);
    assert_eq!(application["automated"]["face_check"]["state"], "match");
}

#[test]
fn a_callback_with_a_bad_signature_is_refused_and_a_signed_one_applied_once() {
    // The sandbox takes 3 s to answer and 3 s more to call back: time for a "licensed
    // provider" to deliver the result over HTTP first.
    let server = TestServer::start_with(sandbox((3_000, 3_000), 0.0));
    let mut phone = support::Phone::new();
    let terms = phone.device.fetch_onboarding_terms(&server.url()).unwrap();
    let face = support::fixture_bytes("photos/DSCN0029.jpg");
    phone
        .device
        .sign_application(&terms, &draft("wang-hmac", ID_NUMBER, Some(face)))
        .unwrap();
    let id = phone.device.submit_applications().unwrap()[0]
        .server_id
        .clone()
        .unwrap();
    let operator = operator(&server, "op-hmac");
    let ticket = ticket_of(&server, &id);
    let mismatch = json!({ "verdict": "mismatch", "fields": ["face"] });
    let body = callback_body(&ticket, &id, mismatch, true, 1);

    // 1. Signed with another secret, or not signed: 401, nothing applied.
    let (status, error) = post_callback(&server, &body, "not-the-secret-0123456789abcdefghij");
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("callback_signature_invalid"))
    );
    let unsigned = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/realname/callbacks", server.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let application = reviewed(&operator, &id);
    assert_eq!(application["automated"]["face_check"]["state"], "pending");

    // 2. Signed with the secret: applied; the same again: acknowledged, not applied.
    let (status, ack) = post_callback(&server, &body, CALLBACK_SECRET);
    assert_eq!((status, &ack["applied"]), (200, &json!(true)), "{ack}");
    let (status, ack) = post_callback(&server, &body, CALLBACK_SECRET);
    assert_eq!((status, &ack["duplicate"]), (200, &json!(true)), "{ack}");
    let application = reviewed(&operator, &id);
    assert_eq!(application["automated"]["face_check"]["state"], "mismatch");
    assert_eq!(
        application["automated"]["real_name_verification"],
        "mismatch: face (sandbox provider)"
    );

    // 3. The sandbox's own delivery of the ticket arrives later and is ignored.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !duplicate_logged(&ticket) {
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox never called back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let application = reviewed(&operator, &id);
    assert_eq!(application["automated"]["face_check"]["state"], "mismatch");

    // 4. A callback about nothing of ours is 404; the audit trail has the refusal.
    let stranger = callback_body(
        "licensed-1",
        "no-such-application",
        json!({ "verdict": "match" }),
        true,
        1,
    );
    let (status, error) = post_callback(&server, &stranger, CALLBACK_SECRET);
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("unknown_verification"))
    );
    let (_, records) = operator.get("/audit?action=realname_callback");
    let records = records.as_array().unwrap();
    assert!(
        records.iter().any(|r| r["result"] == "refused"),
        "{records:?}"
    );
    assert!(records.iter().any(|r| r["detail"]["duplicate"] == true));
}

#[test]
fn a_face_that_does_not_match_or_fails_liveness_shows_in_the_checks_and_is_revealed_only_on_record()
{
    let server = TestServer::start_with(sandbox((20, 60), 0.0));
    let mut phone = support::Phone::new();
    let terms = phone.device.fetch_onboarding_terms(&server.url()).unwrap();
    let other = with_check("11010519900307002");
    let not_the_person = photo_whose_hash_starts_with("photos/DSCN0021.jpg", [0x00, 0x00]);
    let a_printout = photo_whose_hash_starts_with("photos/DSCN0025.jpg", [0xff, 0xff]);
    for (login, id_number, face) in [
        ("wang-notme", ID_NUMBER, &not_the_person),
        ("wang-printout", other.as_str(), &a_printout),
    ] {
        let draft = draft(login, id_number, Some(face.clone()));
        phone.device.sign_application(&terms, &draft).unwrap();
    }
    let sent = phone.device.submit_applications().unwrap();
    assert!(
        sent.iter().all(|a| a.state == ApplicationState::Submitted),
        "{sent:?}"
    );
    let operator = operator(&server, "op-faces");

    let notme = face_checked(&operator, sent[0].server_id.as_deref().unwrap());
    let check = &notme["automated"]["face_check"];
    assert_eq!(check["state"], "mismatch", "{notme}");
    assert_eq!(check["liveness_passed"], true);
    assert_eq!(
        notme["automated"]["real_name_verification"],
        "mismatch: face (sandbox provider)"
    );
    let printout = face_checked(&operator, sent[1].server_id.as_deref().unwrap());
    let check = &printout["automated"]["face_check"];
    assert_eq!(check["state"], "unverifiable", "{printout}");
    assert_eq!(check["liveness_passed"], false);
    assert!(check["detail"].as_str().unwrap().contains("liveness"));

    // The media endpoint does not serve a face, even to an operator; the reveal does, with a
    // reason, and the audit trail records it.
    let hash = sha256_hex(&not_the_person);
    let (status, refused) = operator.get(&format!("/media/{hash}"));
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("face_image_reveal_only"))
    );
    // Nor a thumbnail of it: a small face is still a face.
    let (status, refused) = operator.get(&format!("/media/{hash}/thumbnail"));
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("face_image_reveal_only")),
        "{refused}"
    );
    let id = notme["id"].as_str().unwrap();
    let reveal = format!("/onboarding/workers/{id}/reveal");
    let why = "compare the face with the ID card photo";
    let (status, revealed) =
        operator.post(&reveal, json!({ "field": "face_image", "reason": why }));
    assert_eq!(status, 200, "{revealed}");
    let expected = format!(
        "data:image/jpeg;base64,{}",
        data_encoding_free_base64(&not_the_person)
    );
    assert!(
        revealed["value"] == expected,
        "the revealed image is not the one sent"
    );
    let (_, records) = operator.get("/audit?action=reveal");
    let record = &records.as_array().unwrap()[0];
    assert_eq!(record["detail"]["field"], "face_image");
    assert_eq!(record["detail"]["reason"], why);
}
