//! Phones sign in once and then sign every request with a device key: a copied token is
//! useless for their calls, a captured request cannot be replayed (not even after a restart)
//! or altered, a stale one is refused, and a revoked phone is refused.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::raw::sync_request;
use crate::support::{
    AREZZO, DeviceCredential, Phone, TestServer, fixture_bytes, now_ms, password_of,
};
use flexwork_client_core::{ClientError, TransportError};
use flexwork_sync::ContentHash;
use flexwork_sync::device_auth::{HEADER_SERVER_TIME, MAX_CLOCK_SKEW_MS};
use flexwork_sync::protocol::CBOR_MEDIA_TYPE;
use reqwest::Method;
use serde_json::{Value, json};

/// What the server answered: status, JSON body (or text), and the headers.
struct Answer {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// Sends one request with exactly the given headers and body, as a captured one is replayed.
fn send(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&'static str, String)],
) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::blocking::Client::new()
        .request(method, format!("{}{path_and_query}", server.url()))
        .body(body.to_vec());
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        headers,
    }
}

/// The refusal a phone's call got, as client-core reports it.
fn refusal(error: ClientError) -> (u16, String, String) {
    match error {
        ClientError::Transport(TransportError::Server {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("not a refusal of the server: {other:?}"),
    }
}

fn audit_actions(operator: &support::Client, action: &str) -> Vec<Value> {
    let (status, records) = operator.get(&format!("/audit?action={action}&limit=500"));
    assert_eq!(status, 200, "{records}");
    records.as_array().unwrap().clone()
}

#[test]
fn a_phone_signs_in_once_then_syncs_and_uploads_a_photo_with_its_device_key() {
    // 1. The worker's phone signs in with the password once; it keeps a key, not a token.
    let server = TestServer::start();
    let scene = server.scene("key", &AREZZO);
    let mut phone = Phone::new();
    phone
        .device
        .login_named(
            &server.url(),
            &scene.worker_login,
            &password_of(&scene.worker_login),
            "Wang's Redmi",
        )
        .unwrap();
    let session = phone.device.session().unwrap().unwrap();
    assert_eq!(session.role, "worker");
    let store = rusqlite::Connection::open(phone.dir.path().join("device.sqlite")).unwrap();
    let tables: Vec<String> = store
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!tables.contains(&"session".to_owned()), "{tables:?}");
    let columns: Vec<String> = store
        .prepare("SELECT name FROM pragma_table_info('credential')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c.contains("token")), "{columns:?}");

    // 2. It learns its order, records a real photo and a signature, and syncs: the photo is
    // uploaded through signed requests over HTTP.
    let first = phone.sync();
    assert_eq!(first.new_orders, 1);
    let photo = phone.record_arezzo_evidence(&scene.order_id);
    let report = phone.sync();
    assert_eq!(report.blobs_uploaded, 1, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    let (status, _) = scene.operator.get(&format!("/media/{}", photo.hash));
    assert_eq!(status, 200);
    let stored = fixture_bytes("photos/DSCN0010.jpg");
    assert_eq!(photo.hash, ContentHash::of(&stored));

    // 3. The device list shows the phone, to the worker on the web and on the phone itself.
    let web = server.client(&scene.worker_login);
    let (status, listed) = web.get("/devices");
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["device_id"],
        session.registered_device_id.as_str()
    );
    assert_eq!(listed[0]["name"], "Wang's Redmi");
    assert_eq!(listed[0]["current"], false);
    assert!(listed[0]["revoked_at"].is_null());
    assert!(listed[0]["last_seen_at"].is_string());
    let on_phone = phone.device.devices().unwrap();
    assert_eq!(on_phone.len(), 1);
    assert!(on_phone[0].current);

    // 4. Enterprises and operators keep their web sign-in; devices are for workers.
    let (status, body) = scene.enterprise.get("/devices");
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    // 5. The registration is audited, without the key.
    let registered = audit_actions(&scene.operator, "device_registered");
    assert_eq!(registered.len(), 1);
    let object = format!("device:{}", session.registered_device_id);
    assert_eq!(registered[0]["object"], object.as_str());
    assert_eq!(registered[0]["detail"]["session_revoked"], true);
}

#[test]
fn the_sign_in_token_is_revoked_at_registration_and_a_token_alone_cannot_sync() {
    let server = TestServer::start();
    let scene = server.scene("token", &AREZZO);

    // 1. A phone's password session registers a key and is revoked by it.
    let mut phone = server.client(&scene.worker_login);
    let (_, me) = phone.get("/me");
    let account_id = me["account_id"].as_str().unwrap().to_owned();
    let key = flexwork_client_core::DeviceKey::generate();
    let bad_proof = json!({
        "public_key": key.public_key(), "name": "phone",
        "proof": key.registration_proof("someone-else"),
    });
    let (status, body) = phone.post("/devices", bad_proof);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_proof"))
    );
    let registration = json!({
        "public_key": key.public_key(), "name": "phone",
        "proof": key.registration_proof(&account_id),
    });
    let (status, registered) = phone.post("/devices", registration.clone());
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["session_revoked"], true);
    let token = phone.token.clone();
    let (status, body) = phone.get("/me");
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = phone.post("/devices", registration);
    assert_eq!(status, 401, "the revoked token registers nothing");

    // 2. The key works; the same copied token, sent to the sync endpoint, does not.
    phone.device = Some(DeviceCredential {
        device_id: registered["device_id"].as_str().unwrap().to_owned(),
        key,
    });
    let body = sync_request(&scene.order_id, vec![]);
    let headers = [("authorization", format!("Bearer {token}"))];
    let copied = send(
        &server,
        "POST",
        "/api/v1/sync",
        CBOR_MEDIA_TYPE,
        &body,
        &headers,
    );
    assert_eq!(copied.status, 401);
    let (status, _) = support::raw::post_cbor(&phone, body.clone());
    assert_eq!(status, 200);

    // 3. Even a valid bearer token of the worker (a web sign-in) is refused on the phone's
    // calls, with a sentence saying what to do; it still reads orders.
    let web = server.client(&scene.worker_login);
    let hash = ContentHash::of(b"anything");
    let bearer = [("authorization", format!("Bearer {}", web.token))];
    for (method, path) in [
        ("POST", "/api/v1/sync".to_owned()),
        ("GET", format!("/api/v1/media/{hash}/status")),
        ("PUT", format!("/api/v1/media/{hash}?offset=0&size=8")),
    ] {
        let answer = send(&server, method, &path, CBOR_MEDIA_TYPE, &body, &bearer);
        assert_eq!(
            (answer.status, answer.code()),
            (401, "device_credential_required"),
            "{path}"
        );
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains("sign in on the phone")
        );
    }
    assert_eq!(web.get("/orders").0, 200);

    // 4. A registration needs a fresh password sign-in, and a signed request cannot make one.
    let stale = server.client(&scene.worker_login);
    let eleven_minutes = 11 * 60_000_i64;
    server.block_on(async {
        sqlx::query("UPDATE api_tokens SET created_at = created_at - $1")
            .bind(eleven_minutes)
            .execute(&server.state().db.pool)
            .await
            .unwrap();
    });
    let other = flexwork_client_core::DeviceKey::generate();
    let late = json!({
        "public_key": other.public_key(), "name": "late",
        "proof": other.registration_proof(&account_id),
    });
    let (status, body) = stale.post("/devices", late.clone());
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("sign_in_too_old"))
    );
    let (status, body) = phone.post("/devices", late);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("password_session_required"))
    );
}

#[test]
fn captured_requests_cannot_be_replayed_altered_or_sent_late() {
    // 1. A phone signs a sync request and sends it: accepted.
    let mut server = TestServer::start();
    let scene = server.scene("replay", &AREZZO);
    let phone = server.device_client(&scene.worker_login);
    let device = phone.device.as_ref().unwrap();
    let body = sync_request(&scene.order_id, vec![]);
    let signed = device.headers("POST", "/api/v1/sync", CBOR_MEDIA_TYPE, &body);
    let sync = |server: &TestServer, body: &[u8], headers: &[(&'static str, String)]| {
        send(
            server,
            "POST",
            "/api/v1/sync",
            CBOR_MEDIA_TYPE,
            body,
            headers,
        )
    };
    assert_eq!(sync(&server, &body, &signed).status, 200);

    // 2. The same request again is a replay, also after the server restarted.
    let again = sync(&server, &body, &signed);
    assert_eq!((again.status, again.code()), (401, "device_replay"));
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already received")
    );
    server.stop();
    server.restart();
    let after_restart = sync(&server, &body, &signed);
    assert_eq!(
        (after_restart.status, after_restart.code()),
        (401, "device_replay")
    );

    // 3. A changed body, path, query, method or content type breaks the signature.
    let fresh = || device.headers("POST", "/api/v1/sync", CBOR_MEDIA_TYPE, &body);
    let other_body = sync_request("another-order", vec![]);
    let altered = sync(&server, &other_body, &fresh());
    assert_eq!(
        (altered.status, altered.code()),
        (401, "device_signature_invalid")
    );
    let photo = fixture_bytes("photos/DSCN0021.jpg");
    let hash = ContentHash::of(&photo);
    let put_path = format!("/api/v1/media/{hash}?offset=0&size={}", photo.len());
    let chunk = &photo[..1000];
    let put_headers = device.headers("PUT", &put_path, "image/jpeg", chunk);
    let moved_query = format!("/api/v1/media/{hash}?offset=10&size={}", photo.len());
    let other_hash = ContentHash::of(b"other");
    let moved_path = format!("/api/v1/media/{other_hash}?offset=0&size={}", photo.len());
    for (method, path, content_type) in [
        ("PUT", moved_query.as_str(), "image/jpeg"),
        ("PUT", moved_path.as_str(), "image/jpeg"),
        ("POST", put_path.as_str(), "image/jpeg"),
        ("PUT", put_path.as_str(), "image/png"),
    ] {
        let answer = send(&server, method, path, content_type, chunk, &put_headers);
        assert_eq!(
            (answer.status, answer.code()),
            (401, "device_signature_invalid"),
            "{method} {path} {content_type}"
        );
    }
    let mut forged = fresh();
    forged[3].1 = device.headers("POST", "/api/v1/sync", CBOR_MEDIA_TYPE, b"x")[3]
        .1
        .clone();
    assert_eq!(
        sync(&server, &body, &forged).code(),
        "device_signature_invalid"
    );
    let mut garbage = fresh();
    garbage[3].1 = "not a signature".into();
    assert_eq!(
        sync(&server, &body, &garbage).code(),
        "device_signature_invalid"
    );

    // 4. A request signed too long ago (or ahead) is refused, with the server's clock.
    let nonce = flexwork_client_core::new_nonce();
    for skew in [-(MAX_CLOCK_SKEW_MS + 60_000), MAX_CLOCK_SKEW_MS + 60_000] {
        let at = now_ms() + skew;
        let late = device.headers_at("POST", "/api/v1/sync", CBOR_MEDIA_TYPE, &body, at, &nonce);
        let answer = sync(&server, &body, &late);
        assert_eq!((answer.status, answer.code()), (401, "device_clock_skew"));
        assert!(answer.body["message"].as_str().unwrap().contains("clock"));
        let server_time: i64 = answer.headers[HEADER_SERVER_TIME]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((server_time - now_ms()).abs() < 60_000);
    }
    let mut extreme = fresh();
    extreme[1].1 = i64::MIN.to_string();
    let answer = sync(&server, &body, &extreme);
    assert_eq!((answer.status, answer.code()), (401, "device_clock_skew"));

    // 5. A device nobody registered is unknown; the server keeps serving the real one.
    let stranger = DeviceCredential {
        device_id: uuid::Uuid::new_v4().to_string(),
        key: flexwork_client_core::DeviceKey::generate(),
    };
    let unknown = sync(
        &server,
        &body,
        &stranger.headers("POST", "/api/v1/sync", CBOR_MEDIA_TYPE, &body),
    );
    assert_eq!((unknown.status, unknown.code()), (401, "device_unknown"));
    assert_eq!(sync(&server, &body, &fresh()).status, 200);
    let (status, _) = phone.get("/orders");
    assert_eq!(status, 200);

    // 6. Replays and bad signatures of a known device are in the audit trail.
    let refused = audit_actions(&scene.operator, "device_request");
    let reasons: Vec<&str> = refused
        .iter()
        .map(|r| r["detail"]["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"replay"), "{reasons:?}");
    assert!(reasons.contains(&"signature"), "{reasons:?}");
}

#[test]
fn revoked_phones_are_refused_and_a_password_change_or_suspension_revokes_them() {
    // 1. The worker has two phones, both syncing.
    let server = TestServer::start();
    let scene = server.scene("revoke", &AREZZO);
    let mut lost = Phone::for_scene(&server, &scene);
    let mut kept = Phone::for_scene(&server, &scene);
    let lost_id = lost.device.session().unwrap().unwrap().registered_device_id;
    let kept_id = kept.device.session().unwrap().unwrap().registered_device_id;

    // 2. One is lost: the worker signs in on the web and revokes it. Its next call is refused
    // with a sentence; the other phone goes on.
    let web = server.client(&scene.worker_login);
    let (status, body) = web.delete(&format!("/devices/{lost_id}"));
    assert_eq!(status, 200, "{body}");
    let transport = lost.device.transport().unwrap();
    let (status, code, message) = refusal(lost.device.sync(&transport).unwrap_err());
    assert_eq!((status, code.as_str()), (401, "device_revoked"));
    assert!(message.contains("the worker revoked it"), "{message}");
    kept.sync();
    let listed = kept.device.devices().unwrap();
    let lost_entry = listed.iter().find(|d| d.device_id == lost_id).unwrap();
    assert_eq!(
        lost_entry.revoked_reason.as_deref(),
        Some("revoked_by_owner")
    );
    assert!(listed.iter().any(|d| d.device_id == kept_id && d.current));

    // 3. Another worker cannot revoke (or see) this worker's phone.
    let stranger = server.scene("stranger", &AREZZO);
    let other = server.client(&stranger.worker_login);
    assert_eq!(other.delete(&format!("/devices/{kept_id}")).0, 404);
    assert_eq!(other.get("/devices").1, json!([]));

    // 4. A password change revokes every phone.
    let change = json!({
        "current_password": password_of(&scene.worker_login),
        "new_password": "a-new-long-password",
    });
    let (status, body) = web.post("/me/password", change);
    assert_eq!(status, 200, "{body}");
    let transport = kept.device.transport().unwrap();
    let (status, code, message) = refusal(kept.device.sync(&transport).unwrap_err());
    assert_eq!((status, code.as_str()), (401, "device_revoked"));
    assert!(message.contains("password was changed"), "{message}");

    // 5. Signing in again with the new password registers a new key, which works.
    kept.device
        .login(&server.url(), &scene.worker_login, "a-new-long-password")
        .unwrap();
    kept.sync();
    let renewed_id = kept.device.session().unwrap().unwrap().registered_device_id;
    assert_ne!(renewed_id, kept_id);

    // 6. Suspension revokes the phones too, and reinstating does not bring them back.
    let (_, me) = web_after_change(&server, &scene.worker_login).get("/me");
    let account = me["account_id"].as_str().unwrap();
    let reason = json!({ "reason": "identity in doubt" });
    let (status, _) = scene
        .operator
        .post(&format!("/accounts/{account}/suspend"), reason);
    assert_eq!(status, 200);
    let transport = kept.device.transport().unwrap();
    let (_, code, message) = refusal(kept.device.sync(&transport).unwrap_err());
    assert_eq!(code, "device_revoked");
    assert!(message.contains("suspended"), "{message}");
    let reason = json!({ "reason": "checked in person" });
    let (status, _) = scene
        .operator
        .post(&format!("/accounts/{account}/reinstate"), reason);
    assert_eq!(status, 200);
    let transport = kept.device.transport().unwrap();
    let (_, code, _) = refusal(kept.device.sync(&transport).unwrap_err());
    assert_eq!(code, "device_revoked");

    // 7. Every revocation is audited with its reason and who caused it.
    let revoked = audit_actions(&scene.operator, "device_revoked");
    let mut reasons: Vec<(&str, &str)> = revoked
        .iter()
        .map(|r| {
            (
                r["detail"]["reason"].as_str().unwrap(),
                r["actor_role"].as_str().unwrap(),
            )
        })
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            ("account_suspended", "operator"),
            ("password_changed", "worker"),
            ("revoked_by_owner", "worker"),
        ]
    );

    // 8. Signing out on the phone revokes its registration and forgets the key.
    let mut leaving = Phone::new();
    leaving.login(&server, &stranger.worker_login);
    let leaving_id = leaving
        .device
        .session()
        .unwrap()
        .unwrap()
        .registered_device_id;
    leaving.device.logout().unwrap();
    assert!(leaving.device.session().unwrap().is_none());
    let (_, listed) = other.get("/devices");
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == leaving_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["revoked_reason"], "revoked_by_owner");
}

/// A web sign-in of a worker whose password is now `a-new-long-password`.
fn web_after_change(server: &TestServer, login: &str) -> support::Client {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/sessions", server.url()))
        .json(&json!({ "login": login, "password": "a-new-long-password" }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let session: Value = response.json().unwrap();
    support::Client {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        token: session["token"].as_str().unwrap().to_owned(),
        device: None,
    }
}
