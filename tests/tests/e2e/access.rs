//! Every call is checked against who makes it: what belongs to someone else is as
//! invisible as what does not exist, and roles only do their own work.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::{AREZZO, Phone, TestServer, fixture_bytes, task_body};
use flexwork_sync::ContentHash;
use serde_json::json;

#[test]
fn nobody_reaches_what_is_not_theirs() {
    // 1. Two enterprises, each with an order for its own worker; worker A records a photo.
    let server = TestServer::start();
    let a = server.scene("a", &AREZZO);
    let b = server.scene("b", &AREZZO);
    let worker_a = server.client(&a.worker_login);
    // Media calls are a phone's: worker B plays one over raw HTTP.
    let worker_b = server.device_client(&b.worker_login);
    let mut phone = Phone::new();
    phone.login(&server, &a.worker_login);
    phone.sync();
    let photo = fixture_bytes("photos/DSCN0021.jpg");
    phone
        .device
        .record_photo(&a.order_id, &photo, "image/jpeg", None, 0)
        .unwrap();
    phone.sync();
    let hash = ContentHash::of(&photo);
    let order_a = format!("/orders/{}", a.order_id);

    // 2. The owners see it.
    assert_eq!(a.enterprise.get(&order_a).0, 200);
    assert_eq!(worker_a.get(&order_a).0, 200);
    assert_eq!(a.operator.get(&order_a).0, 200);
    assert_eq!(a.enterprise.get(&format!("/media/{hash}/status")).0, 200);

    // 3. The other enterprise and the other worker get "not found", as for a missing order.
    for client in [&b.enterprise, &worker_b] {
        let (status, body) = client.get(&order_a);
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        assert_eq!(client.get(&format!("/tasks/{}", a.task_id)).0, 404);
    }
    let (status, _) = b.enterprise.post(&format!("{order_a}/confirm"), json!({}));
    assert_eq!(status, 404);
    let (status, _) = b.enterprise.post(
        &format!("/tasks/{}/orders", a.task_id),
        json!({ "worker_login": b.worker_login }),
    );
    assert_eq!(status, 404);
    assert_eq!(
        worker_b.get(&format!("/media/{hash}/status")).1["code"],
        "media_not_referenced"
    );
    assert_eq!(
        b.enterprise.get(&format!("/media/{hash}")).1["code"],
        "media_not_referenced"
    );

    // 4. Roles do only their own work.
    let (status, body) = worker_a.post("/tasks", task_body(&AREZZO));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let review = json!({ "decision": "approve", "reason": "looks fine" });
    assert_eq!(
        a.enterprise.post(&format!("{order_a}/review"), review).0,
        403
    );
    assert_eq!(
        worker_a.post(&format!("{order_a}/confirm"), json!({})).0,
        403
    );
    let account = json!({
        "login": "sneaky", "password": "long-enough-pw", "role": "operator", "display_name": "x",
    });
    assert_eq!(a.enterprise.post("/accounts", account).0, 403);

    // 5. No token, a wrong token: 401.
    let anonymous = reqwest::blocking::get(format!("{}/api/v1{order_a}", server.url())).unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1{order_a}", server.url()))
        .bearer_auth("0".repeat(64))
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401);

    // 6. The scheme name is case-insensitive.
    let lower = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1{order_a}", server.url()))
        .header("authorization", format!("bearer {}", a.enterprise.token))
        .send()
        .unwrap();
    assert_eq!(lower.status(), 200);
}

#[test]
fn the_phone_signs_in_workers_only() {
    let server = TestServer::start();
    let scene = server.scene("phone-role", &AREZZO);
    let enterprise_login = format!("acme-{}", "phone-role");
    let mut phone = Phone::new();

    let refused = phone.device.login(
        &server.url(),
        &enterprise_login,
        &support::password_of(&enterprise_login),
    );

    // The server already asks an enterprise for its second factor; an enterprise without one
    // would be refused by the app itself (`invalid_input`).
    let code = refused.unwrap_err().code();
    assert!(matches!(code, "server_refused" | "invalid_input"), "{code}");
    assert!(phone.device.session().unwrap().is_none());
    phone.login(&server, &scene.worker_login);
    assert_eq!(phone.device.session().unwrap().unwrap().role, "worker");
}

#[test]
fn a_revoked_token_stops_working() {
    let server = TestServer::start();
    let scene = server.scene("logout", &AREZZO);
    let client = server.client(&scene.worker_login);
    assert_eq!(client.get("/me").0, 200);

    let revoked = reqwest::blocking::Client::new()
        .delete(format!("{}/api/v1/sessions", server.url()))
        .bearer_auth(&client.token)
        .send()
        .unwrap();

    assert_eq!(revoked.status(), 200);
    assert_eq!(client.get("/me").0, 401);
}

#[test]
fn knowing_a_photos_hash_does_not_give_its_bytes() {
    // 1. Worker A uploads a photo.
    let server = TestServer::start();
    let a = server.scene("owner", &AREZZO);
    let b = server.scene("guesser", &AREZZO);
    let mut phone = Phone::new();
    phone.login(&server, &a.worker_login);
    phone.sync();
    let photo = fixture_bytes("photos/DSCN0027.jpg");
    phone
        .device
        .record_photo(&a.order_id, &photo, "image/jpeg", None, 0)
        .unwrap();
    assert_eq!(phone.sync().blobs_uploaded, 1);

    // 2. Worker B references the same hash in his own evidence without having the bytes.
    let hash = ContentHash::of(&photo);
    let worker_b = server.device_client(&b.worker_login);
    let mut doc =
        flexwork_sync::EvidenceDoc::new(&b.order_id, automerge::ActorId::random()).unwrap();
    let record = flexwork_sync::PhotoRecord {
        id: "borrowed".into(),
        hash,
        size: photo.len() as u64,
        media_type: "image/jpeg".into(),
        captured_at_ms: 0,
        fix: None,
        device_id: "raw".into(),
    };
    doc.add_photo(&record, 0).unwrap();
    assert!(support::raw::push(&worker_b, &b.order_id, &mut doc).is_empty());

    // 3. For him the photo is absent: no download, and uploading it is the only way in.
    let (_, status) = worker_b.get(&format!("/media/{hash}/status"));
    assert_eq!(status["state"], "absent");
    let (code, _) = worker_b.get(&format!("/media/{hash}"));
    assert_eq!(code, 404);
    let (code, _) = b.enterprise.get(&format!("/media/{hash}"));
    assert_eq!(code, 404);
    let (code, bytes) = a.enterprise.get(&format!("/media/{hash}"));
    assert_eq!((code, bytes.is_string()), (200, true));
}
