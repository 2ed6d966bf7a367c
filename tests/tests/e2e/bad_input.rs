//! Bad input from devices and callers: a clear error or finding, no panic, the server keeps
//! serving and nothing already stored is lost.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use crate::support::raw::{post_cbor, push, sync_request};
use crate::support::{AREZZO, Phone, TestServer, fix_at_arezzo, fixture_bytes, ms};
use flexwork_sync::protocol;
use flexwork_sync::{ContentHash, EvidenceDoc, PhotoRecord};
use reqwest::Method;

fn code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    value["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn broken_jpegs_from_the_wild_are_findings_not_crashes() {
    // 1. A worker submits the two broken JPEGs of the fixtures.
    let server = TestServer::start();
    let scene = server.scene("broken", &AREZZO);
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    phone.sync();
    let taken = ms("2008-10-23T14:27:07Z");
    for name in [
        "photos-invalid/corrupted.jpg",
        "photos-invalid/image00971.jpg",
    ] {
        let bytes = fixture_bytes(name);
        phone
            .device
            .record_photo(
                &scene.order_id,
                &bytes,
                "image/jpeg",
                Some(fix_at_arezzo(taken)),
                taken,
            )
            .unwrap();
    }
    phone
        .device
        .add_signature(&scene.order_id, support::signature(taken), taken)
        .unwrap();
    phone.device.submit(&scene.order_id, taken).unwrap();
    let report = phone.sync();
    assert_eq!(report.blobs_uploaded, 2, "{report:?}");

    // 2. Verification reports each one it cannot decode, and the server keeps serving.
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);
    let findings = order["report"]["findings"].as_array().unwrap();
    let undecodable = findings
        .iter()
        .filter(|f| f["code"] == "photo_undecodable")
        .count();
    assert!(undecodable >= 1, "{findings:?}");
    assert_ne!(order["verdict"], "passed");
    assert_eq!(scene.enterprise.get("/tasks").0, 200);
}

#[test]
fn hostile_sync_bodies_get_clear_errors_and_hurt_nobody() {
    // 1. A worker's order has evidence on the server.
    let server = TestServer::start();
    let scene = server.scene("hostile", &AREZZO);
    let worker = server.device_client(&scene.worker_login);
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    phone.sync();
    phone
        .device
        .add_note(&scene.order_id, "kept safe", 1)
        .unwrap();
    phone.sync();

    // 2. Garbage as a body, and a body from a future protocol version.
    let (status, body) = post_cbor(&worker, b"\x00\x01garbage bytes".to_vec());
    assert_eq!(
        (status, code(&body)),
        (400, "malformed_sync_message".into())
    );
    #[derive(serde::Serialize)]
    struct Future {
        protocol: u32,
    }
    let (status, body) = post_cbor(&worker, protocol::encode(&Future { protocol: 99 }));
    assert_eq!((status, code(&body)), (400, "unsupported_protocol".into()));
    let message = String::from_utf8_lossy(&body).to_string();
    assert!(message.contains("Update the app"), "{message}");

    // 3. The zero-bits Bloom filter and garbage as one document's message; an unknown order.
    let bloom = fixture_bytes("sync-invalid/bloom-zero-bits.bin");
    for (order_id, message, expected) in [
        (scene.order_id.as_str(), bloom, "sync_message_refused"),
        (
            scene.order_id.as_str(),
            b"\x42\xff\xff\xff\xff".to_vec(),
            "sync_message_refused",
        ),
        ("no-such-order", vec![0x42, 0, 0, 0, 0], "order_not_found"),
    ] {
        let (status, bytes) = post_cbor(&worker, sync_request(order_id, message));
        assert_eq!(status, 200);
        let response = protocol::decode_response(&bytes).unwrap();
        assert_eq!(response.rejected.len(), 1);
        assert_eq!(response.rejected[0].code, expected);
    }

    // 4. Someone else's order is as unknown as a missing one.
    let other = server.scene("bystander", &AREZZO);
    let (_, bytes) = post_cbor(
        &worker,
        sync_request(&other.order_id, vec![0x42, 0, 0, 0, 0]),
    );
    assert_eq!(
        protocol::decode_response(&bytes).unwrap().rejected[0].code,
        "order_not_found"
    );

    // 5. The server still serves, and the note is still there for a new phone of the worker.
    let mut second = Phone::new();
    second.login(&server, &scene.worker_login);
    second.sync();
    let notes = second.device.evidence(&scene.order_id).unwrap().notes;
    assert_eq!(
        notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(),
        ["kept safe"]
    );
}

#[test]
fn uploads_are_checked_for_reference_hash_type_and_size() {
    // 1. A device that skips client-core's checks references a text file named .jpg.
    let server = TestServer::start_with(|c| c.limits.max_upload_bytes = 100_000);
    let scene = server.scene("upload", &AREZZO);
    let worker = server.device_client(&scene.worker_login);
    let text = b"this is not a photo, whatever its name says".to_vec();
    let big = fixture_bytes("photos/DSCN0010.jpg");
    let mut doc = EvidenceDoc::new(&scene.order_id, automerge::ActorId::random()).unwrap();
    for (id, bytes) in [("text", &text), ("big", &big)] {
        let record = PhotoRecord {
            id: id.into(),
            hash: ContentHash::of(bytes),
            size: bytes.len() as u64,
            media_type: "image/jpeg".into(),
            captured_at_ms: 0,
            fix: None,
            device_id: "raw".into(),
        };
        doc.add_photo(&record, 0).unwrap();
    }
    assert!(push(&worker, &scene.order_id, &mut doc).is_empty());

    // 2. Each refusal has its status and code.
    let put = |hash: &ContentHash, offset: usize, size: usize, body: &[u8]| {
        let path = format!("/media/{hash}?offset={offset}&size={size}");
        worker.send_raw(Method::PUT, &path, body.to_vec(), "image/jpeg")
    };
    let text_hash = ContentHash::of(&text);
    assert_eq!(
        put(&text_hash, 0, text.len(), &text).1["code"],
        "unsupported_media_type"
    );
    assert_eq!(
        put(&ContentHash::of(&big), 0, big.len(), &big[..1000]).1["code"],
        "media_too_large"
    );
    let (status, body) = put(
        &ContentHash::of(b"never referenced"),
        0,
        16,
        b"never referenced",
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("media_not_referenced"))
    );
    assert_eq!(
        put(&text_hash, 5, text.len(), &text[5..]).1["code"],
        "upload_offset_mismatch"
    );
    let (status, body) = worker.send_raw(
        Method::PUT,
        "/media/not-a-hash?offset=0&size=1",
        vec![0],
        "image/jpeg",
    );
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_hash")));

    // 3. Bytes that do not match their name are refused and not kept.
    let mut lying = text.clone();
    lying[0] = b'T';
    let (status, body) = put(&text_hash, 0, lying.len(), &lying);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("hash_mismatch"))
    );
    let (_, status_body) = worker.get(&format!("/media/{text_hash}/status"));
    assert_eq!(status_body["state"], "absent");
}

#[test]
fn an_oversized_photo_fails_on_the_phone_with_the_servers_reason() {
    // 1. The server takes media of at most 100 kB; the photo is 160 kB.
    let server = TestServer::start_with(|c| c.limits.max_upload_bytes = 100_000);
    let scene = server.scene("oversized", &AREZZO);
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    phone.sync();
    let photo = fixture_bytes("photos/DSCN0010.jpg");
    phone
        .device
        .record_photo(&scene.order_id, &photo, "image/jpeg", None, 0)
        .unwrap();

    // 2. Sync reports it, and the item says why.
    let report = phone.sync();
    assert_eq!(report.blobs_uploaded, 0);
    assert!(
        report.failures.iter().any(|f| f.code == "media_too_large"),
        "{report:?}"
    );
    let items = phone.device.items(&scene.order_id).unwrap();
    let item = items.iter().find(|i| i.kind.as_str() == "photo").unwrap();
    assert_eq!(item.state.as_str(), "failed");
    assert_eq!(item.failure.as_ref().unwrap().code, "media_too_large");
}

#[test]
fn errors_below_the_handlers_are_json_too_and_assignments_are_unique() {
    let server = TestServer::start_with(|c| c.limits.max_sync_body_bytes = 1024);
    let scene = server.scene("plumbing", &AREZZO);
    let worker = server.device_client(&scene.worker_login);

    // 1. A body over the limit, and a method the endpoint does not take.
    let (status, body) = post_cbor(&worker, vec![0; 4096]);
    assert_eq!((status, code(&body).as_str()), (413, "body_too_large"));
    // A JSON body over the limit says so too, not that it is malformed JSON.
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let (status, body) = scene.enterprise.send_raw(
        Method::POST,
        "/tasks",
        huge.into_bytes(),
        "application/json",
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, body) = worker.send_raw(Method::PUT, "/tasks", b"{}".to_vec(), "application/json");
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    // 2. A title that hides its text direction is refused.
    let mut task = support::task_body(&AREZZO);
    task["title"] = "shop \u{202e}tnorf".into();
    let (status, body) = scene.enterprise.post("/tasks", task);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_title"))
    );

    // 3. The same worker cannot be given the same task twice.
    let assign = serde_json::json!({ "worker_login": scene.worker_login.to_uppercase() });
    let (status, body) = scene
        .enterprise
        .post(&format!("/tasks/{}/orders", scene.task_id), assign);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_assigned"))
    );
}
