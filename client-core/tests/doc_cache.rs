//! The in-memory document cache of a device: what recording from it stores is exactly what
//! was recorded, failures leave memory and store alike, and sync delivers all of it.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use flexwork_client_core::{Device, ItemKind, ItemState, TrackPoint};
use flexwork_sync::ReviewRecord;
use support::FakeServer;

const ORDER: &str = "order-c";
/// More than the chunks after which recording folds a document into a snapshot (256).
const MANY: usize = 300;

fn device_with_orders(dir: &Path, orders: &[&str]) -> Device {
    let mut device = Device::open(dir).unwrap();
    let summaries: Vec<_> = orders.iter().map(|id| support::order(id)).collect();
    device.remember_orders(&summaries).unwrap();
    device
}

fn point(i: usize) -> TrackPoint {
    TrackPoint {
        lat: 43.467 + i as f64 * 1e-6,
        lon: 11.885,
        at_ms: Some(1_700_000_000_000 + i as i64 * 1_000),
        accuracy_m: Some(5.0),
        elevation_m: None,
    }
}

/// Records `count` items alternating notes and one-point tracks; returns their ids.
fn record_many(device: &mut Device, order_id: &str, from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|i| match i % 2 {
            0 => {
                device
                    .add_note(order_id, &format!("note {i}"), i as i64)
                    .unwrap()
                    .id
            }
            _ => device.append_track_points(order_id, &[point(i)]).unwrap(),
        })
        .collect()
}

/// Checks that the store holds exactly `ids` for the order, in items and in the document.
fn assert_holds_exactly(device: &Device, order_id: &str, ids: &[String]) {
    let items = device.items(order_id).unwrap();
    let item_ids: Vec<&String> = items.iter().map(|i| &i.id).collect();
    assert_eq!(item_ids, ids.iter().collect::<Vec<_>>());

    let evidence = device.evidence(order_id).unwrap();
    let note_ids: Vec<&String> = evidence.notes.iter().map(|n| &n.id).collect();
    let item_notes: Vec<&String> = items
        .iter()
        .filter(|i| i.kind == ItemKind::Note)
        .map(|i| &i.id)
        .collect();
    assert_eq!(note_ids, item_notes);
    let tracks = items.iter().filter(|i| i.kind == ItemKind::Track).count();
    assert_eq!(evidence.track.len(), tracks);
    assert!(evidence.malformed.is_empty());
}

#[test]
fn many_items_recorded_into_one_order_are_exactly_there_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device_with_orders(dir.path(), &[ORDER]);

    let ids = record_many(&mut device, ORDER, 0, MANY);
    assert_holds_exactly(&device, ORDER, &ids);
    drop(device);

    let mut device = Device::open(dir.path()).unwrap();
    assert_holds_exactly(&device, ORDER, &ids);
    let notes = device.evidence(ORDER).unwrap().notes;
    assert_eq!(notes.len(), MANY / 2);
    assert_eq!(notes[MANY / 2 - 1].text, format!("note {}", MANY - 2));

    // Recording goes on where it stopped after the reopen.
    let mut all = ids;
    all.extend(record_many(&mut device, ORDER, MANY, 10));
    assert_holds_exactly(&device, ORDER, &all);
}

#[test]
fn more_orders_than_the_cache_holds_evict_and_reload_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let orders = ["order-1", "order-2", "order-3"];
    let mut device = device_with_orders(dir.path(), &orders);
    device.set_doc_cache_capacity(2);

    let mut ids: Vec<Vec<String>> = vec![Vec::new(); orders.len()];
    for round in 0..40 {
        for (order_id, ids) in orders.iter().zip(&mut ids) {
            ids.extend(record_many(&mut device, order_id, round, 2));
        }
    }
    drop(device);

    let device = Device::open(dir.path()).unwrap();
    for (order_id, ids) in orders.iter().zip(&ids) {
        assert_eq!(ids.len(), 80);
        assert_holds_exactly(&device, order_id, ids);
    }
}

#[test]
fn failed_recordings_leave_the_cache_and_the_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device_with_orders(dir.path(), &[ORDER]);
    let mut ids = record_many(&mut device, ORDER, 0, 3);

    // Unknown order and invalid input fail before any document changes.
    let unknown = device.add_note("order-nowhere", "hello", 1).unwrap_err();
    let blank = device.add_note(ORDER, "  ", 1).unwrap_err();
    let nan = TrackPoint {
        lat: f64::NAN,
        ..point(1)
    };
    let bad_point = device.append_track_points(ORDER, &[nan]).unwrap_err();
    assert_eq!(unknown.code(), "unknown_order");
    assert_eq!(blank.code(), "invalid_input");
    assert_eq!(bad_point.code(), "invalid_input");

    // SQLite refuses the item row after the document took the change.
    let other = rusqlite::Connection::open(dir.path().join("device.sqlite")).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse_notes BEFORE INSERT ON items WHEN NEW.kind = 'note'
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END;",
        )
        .unwrap();
    let refused = device.add_note(ORDER, "never stored", 9).unwrap_err();
    assert_eq!(refused.code(), "storage", "{refused}");
    ids.extend(record_many(&mut device, ORDER, 3, 1));
    other.execute_batch("DROP TRIGGER refuse_notes;").unwrap();

    // Later recordings build on the store, not on the refused change.
    ids.extend(record_many(&mut device, ORDER, 4, MANY));
    assert_holds_exactly(&device, ORDER, &ids);
    drop(device);
    let device = Device::open(dir.path()).unwrap();
    assert_holds_exactly(&device, ORDER, &ids);
    let texts = device.evidence(ORDER).unwrap().notes;
    assert!(texts.iter().all(|n| n.text != "never stored"));
}

#[test]
fn another_device_writing_the_same_folder_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = device_with_orders(dir.path(), &[ORDER]);
    let mut second = Device::open(dir.path()).unwrap();
    let mut ids = record_many(&mut first, ORDER, 0, 2);

    // Both write the same order in turns, each with its document cached in between; the
    // first one crosses compaction, which writes its in-memory document as the snapshot.
    ids.extend(record_many(&mut second, ORDER, 2, 2));
    ids.extend(record_many(&mut first, ORDER, 4, MANY));
    ids.extend(record_many(&mut second, ORDER, MANY + 4, 2));
    ids.extend(record_many(&mut first, ORDER, MANY + 6, 2));
    drop((first, second));

    let device = Device::open(dir.path()).unwrap();
    assert_holds_exactly(&device, ORDER, &ids);
}

#[test]
fn sync_after_cached_recordings_delivers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new();
    server.add_order(ORDER);
    let mut device = Device::open(dir.path()).unwrap();
    device.sync(&server).unwrap();

    // 1. Recorded from the cache, then synced.
    let mut ids = record_many(&mut device, ORDER, 0, MANY);
    let report = device.sync(&server).unwrap();
    assert!(report.converged, "{report:?}");
    assert_eq!(server.evidence(ORDER).notes.len(), MANY / 2);
    assert_eq!(server.evidence(ORDER).track.len(), MANY / 2);

    // 2. The server writes its review; sync brings it into the cached document, and
    //    recordings after it (past a compaction) keep it.
    server.set_review(ORDER, &review());
    device.sync(&server).unwrap();
    ids.extend(record_many(&mut device, ORDER, MANY, MANY));
    assert_eq!(device.evidence(ORDER).unwrap().review, Some(review()));

    // 3. A sync that fails halfway loses nothing either.
    server.set_offline(true);
    assert!(device.sync(&server).is_err());
    server.set_offline(false);
    ids.extend(record_many(&mut device, ORDER, 2 * MANY, 4));
    let report = device.sync(&server).unwrap();

    assert!(report.converged, "{report:?}");
    assert_holds_exactly(&device, ORDER, &ids);
    let on_server = server.evidence(ORDER);
    let local = device.evidence(ORDER).unwrap();
    assert_eq!(on_server.notes, local.notes);
    assert_eq!(on_server.track, local.track);
    assert_eq!(local.review, Some(review()));
    let items = device.items(ORDER).unwrap();
    assert!(items.iter().all(|i| i.state == ItemState::Synced));
    drop(device);
    let device = Device::open(dir.path()).unwrap();
    assert_holds_exactly(&device, ORDER, &ids);
    assert_eq!(device.evidence(ORDER).unwrap().review, Some(review()));
}

fn review() -> ReviewRecord {
    ReviewRecord {
        verdict: "accepted".into(),
        findings: Vec::new(),
        reviewed_at_ms: 1_700_000_900_000,
        comment: Some("all good".into()),
    }
}
