//! Sync against the in-memory server: documents, media uploads, resumption, findings, two
//! phones of one worker.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use flexwork_client_core::{Device, ItemState, TrackPoint};
use flexwork_sync::{FindingRecord, ReviewRecord};
use support::FakeServer;

const ORDER: &str = "order-7";

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(path)
}

fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("photos/{name}"))).unwrap()
}

fn point(at_ms: i64) -> TrackPoint {
    TrackPoint {
        lat: 43.4671,
        lon: 11.8852,
        at_ms: Some(at_ms),
        accuracy_m: Some(4.0),
        elevation_m: None,
    }
}

/// A server with one order, and a device that fetched it.
fn setup(dir: &Path) -> (FakeServer, Device) {
    let server = FakeServer::new();
    server.add_order(ORDER);
    let mut device = Device::open(dir).unwrap();
    let report = device.sync(&server).unwrap();
    assert_eq!((report.orders, report.new_orders), (1, 1));
    (server, device)
}

#[test]
fn a_first_sync_brings_the_tasks_to_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new();
    server.add_order("order-a");
    server.add_order("order-b");
    let mut device = Device::open(dir.path()).unwrap();

    let report = device.sync(&server).unwrap();
    let orders = device.orders().unwrap();

    assert!(report.converged);
    assert_eq!(report.new_orders, 2);
    let ids: Vec<&str> = orders.iter().map(|o| o.summary.order_id.as_str()).collect();
    assert_eq!(ids, ["order-a", "order-b"]);
    assert_eq!(orders[0].summary.fee_fen, 15_000);
    assert!(!orders[0].unsynced);
    assert_eq!(device.evidence("order-b").unwrap().order_id, "order-b");
}

#[test]
fn sync_delivers_documents_and_photos_and_marks_items_synced() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device) = setup(dir.path());
    let bytes = photo_bytes("DSCN0025.jpg");

    // 1. Offline, the worker records evidence.
    let photo = device
        .record_photo(ORDER, &bytes, "image/jpeg", None, 10)
        .unwrap();
    device
        .append_track_points(ORDER, &[point(11), point(12)])
        .unwrap();
    let note = device.add_note(ORDER, "done, manager signed", 13).unwrap();
    device.submit(ORDER, 14).unwrap();
    assert!(device.order(ORDER).unwrap().unsynced);

    // 2. Sync.
    let report = device.sync(&server).unwrap();

    // 3. The server holds the document and the photo bytes; every item is synced.
    let on_server = server.evidence(ORDER);
    assert!(report.converged);
    assert_eq!(on_server.photos, vec![photo.clone()]);
    assert_eq!(on_server.track.len(), 2);
    assert_eq!(on_server.notes, vec![note]);
    assert_eq!(on_server.submitted_at_ms(), Some(14));
    assert_eq!(server.blob(&photo.hash), Some(bytes.clone()));
    assert_eq!(
        (report.blobs_uploaded, report.bytes_uploaded),
        (1, bytes.len() as u64)
    );
    assert_eq!(report.items_synced, 3);
    let items = device.items(ORDER).unwrap();
    assert!(
        items.iter().all(|i| i.state == ItemState::Synced),
        "{items:?}"
    );
    assert_eq!(items[0].uploaded_bytes, bytes.len() as u64);
    assert!(!device.order(ORDER).unwrap().unsynced);

    // 4. A second sync has nothing to upload.
    let again = device.sync(&server).unwrap();
    assert_eq!((again.blobs_uploaded, again.bytes_uploaded), (0, 0));
    assert!(again.failures.is_empty());
}

#[test]
fn an_interrupted_upload_resumes_from_the_servers_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device) = setup(dir.path());
    let bytes = photo_bytes("jolla-no-gps.jpg");
    let chunk = 64 * 1024;
    device.set_chunk_size(chunk);
    let photo = device
        .record_photo(ORDER, &bytes, "image/jpeg", None, 10)
        .unwrap();

    // 1. The connection drops after three chunks: the photo stays queued, three chunks in.
    server.drop_after_chunks(Some(3));
    let first = device.sync(&server).unwrap();
    let item = device.items(ORDER).unwrap().remove(0);

    assert_eq!(first.failures[0].code, "network");
    assert_eq!(first.bytes_uploaded, 3 * chunk as u64);
    assert_eq!(item.state, ItemState::Queued);
    assert_eq!(item.uploaded_bytes, 3 * chunk as u64);
    assert_eq!(item.failure.unwrap().code, "network");
    assert!(server.blob(&photo.hash).is_none());

    // 2. Back online: only the rest is sent, starting where the server stopped.
    server.drop_after_chunks(None);
    server.reset_upload_log();
    let second = device.sync(&server).unwrap();
    let (resent, offsets) = server.upload_log();

    assert_eq!(resent, (bytes.len() - 3 * chunk) as u64);
    assert_eq!(offsets[0], 3 * chunk as u64);
    assert_eq!(second.bytes_uploaded, resent);
    assert_eq!(server.blob(&photo.hash), Some(bytes));
    let item = device.items(ORDER).unwrap().remove(0);
    assert_eq!(item.state, ItemState::Synced);
    assert_eq!(item.failure, None);
}

#[test]
fn with_the_server_unreachable_sync_fails_and_everything_stays_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device) = setup(dir.path());
    device.add_note(ORDER, "no signal here", 1).unwrap();

    server.set_offline(true);
    let err = device.sync(&server).unwrap_err();
    server.set_offline(false);
    let items = device.items(ORDER).unwrap();

    assert_eq!(err.code(), "network");
    assert_eq!(items[0].state, ItemState::Queued);
    assert!(device.sync(&server).unwrap().converged);
    assert_eq!(device.items(ORDER).unwrap()[0].state, ItemState::Synced);
    assert_eq!(server.evidence(ORDER).notes[0].text, "no signal here");
}

#[test]
fn a_photo_damaged_on_the_device_fails_for_good_with_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device) = setup(dir.path());
    let photo = device
        .record_photo(ORDER, &photo_bytes("DSCN0027.jpg"), "image/jpeg", None, 1)
        .unwrap();
    let blob = dir.path().join("blobs").join(photo.hash.to_hex());
    let mut damaged = std::fs::read(&blob).unwrap();
    damaged[1000] ^= 0xff;
    std::fs::write(&blob, damaged).unwrap();

    let report = device.sync(&server).unwrap();
    let item = device.items(ORDER).unwrap().remove(0);

    assert_eq!(report.failures[0].code, "hash_mismatch");
    assert_eq!(item.state, ItemState::Failed);
    assert_eq!(item.failure.unwrap().code, "hash_mismatch");
    assert!(server.blob(&photo.hash).is_none());
    let again = device.sync(&server).unwrap();
    assert_eq!(
        again.bytes_uploaded, 0,
        "a permanent failure is not retried"
    );
}

#[test]
fn the_servers_findings_come_back_and_name_the_flagged_item() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device) = setup(dir.path());
    let photo = device
        .record_photo(ORDER, &photo_bytes("DSCN0038.jpg"), "image/jpeg", None, 1)
        .unwrap();
    let note = device.add_note(ORDER, "site closed early", 2).unwrap();
    device.sync(&server).unwrap();

    // 1. The server verifies and writes its review into the document.
    let finding = FindingRecord {
        code: "photo_without_fix".into(),
        severity: "review".into(),
        message: "the photo has no location fix".into(),
        item: Some(photo.id.clone()),
    };
    let review = ReviewRecord {
        verdict: "needs_review".into(),
        findings: vec![finding.clone()],
        reviewed_at_ms: 1_700_000_500_000,
        comment: None,
    };
    server.set_review(ORDER, &review);

    // 2. The next sync brings it to the phone, readable per item.
    let report = device.sync(&server).unwrap();
    let evidence = device.evidence(ORDER).unwrap();

    assert!(report.docs_received >= 1);
    assert_eq!(evidence.review, Some(review));
    assert_eq!(
        device.item_findings(ORDER, &photo.id).unwrap(),
        vec![finding]
    );
    assert!(device.item_findings(ORDER, &note.id).unwrap().is_empty());

    // 3. It survives a reopen (the document was compacted after sync).
    drop(device);
    let device = Device::open(dir.path()).unwrap();
    assert_eq!(
        device.evidence(ORDER).unwrap().review.unwrap().verdict,
        "needs_review"
    );
}

#[test]
fn two_phones_of_one_worker_edit_offline_and_nothing_is_lost() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (server, mut phone_a) = setup(dir_a.path());
    let mut phone_b = Device::open(dir_b.path()).unwrap();
    phone_b.sync(&server).unwrap();

    // 1. Both phones record into the same order, offline.
    let photo_a = phone_a.record_photo(ORDER, &photo_bytes("DSCN0040.jpg"), "image/jpeg", None, 1);
    let photo_b = phone_b.record_photo(ORDER, &photo_bytes("DSCN0042.jpg"), "image/jpeg", None, 2);
    let (photo_a, photo_b) = (photo_a.unwrap(), photo_b.unwrap());
    phone_a
        .append_track_points(ORDER, &[point(10), point(30)])
        .unwrap();
    phone_b.append_track_points(ORDER, &[point(20)]).unwrap();
    phone_a.add_note(ORDER, "from phone a", 3).unwrap();
    phone_b.add_note(ORDER, "from phone b", 4).unwrap();

    // 2. A syncs, then B, then A again.
    phone_a.sync(&server).unwrap();
    phone_b.sync(&server).unwrap();
    phone_a.sync(&server).unwrap();

    // 3. Server and both phones hold everything; each phone's photo bytes reached the server.
    let on_server = server.evidence(ORDER);
    assert_eq!(on_server.photos.len(), 2);
    assert_eq!(on_server.notes.len(), 2);
    let times: Vec<Option<i64>> = on_server.track.iter().map(|p| p.at_ms).collect();
    assert_eq!(times, [Some(10), Some(20), Some(30)]);
    assert_eq!(phone_a.evidence(ORDER).unwrap(), on_server);
    assert_eq!(phone_b.evidence(ORDER).unwrap(), on_server);
    assert!(server.blob(&photo_a.hash).is_some());
    assert!(server.blob(&photo_b.hash).is_some());
    assert_ne!(phone_a.device_id(), phone_b.device_id());
}

#[test]
fn more_orders_than_fit_in_one_request_are_sent_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new();
    let count = flexwork_sync::protocol::MAX_DOCS_PER_REQUEST + 5;
    for i in 0..count {
        server.add_order(&format!("order-{i:03}"));
    }
    let mut device = Device::open(dir.path()).unwrap();

    let report = device.sync(&server).unwrap();

    assert!(report.converged, "{report:?}");
    assert_eq!(report.new_orders, count);
    assert!(report.requests > report.rounds, "{report:?}");
    assert_eq!(device.orders().unwrap().len(), count);
}
