//! The phone app killed between recording and syncing: everything it reported as recorded is
//! still there after a restart, and reaches the server.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{AREZZO, Phone, TestServer, fixture_bytes};

/// Set in the child process: the store folder and order it records into.
const CHILD_STORE: &str = "FLEXWORK_KILLED_DEVICE_STORE";
const CHILD_ORDER: &str = "FLEXWORK_KILLED_DEVICE_ORDER";

/// How many items the parent waits to see reported before it kills the child.
const REPORTED_BEFORE_KILL: usize = 6;

/// The child role: records a photo, then notes, reporting each id once the call returned,
/// until it is killed. In a normal test run (no variables set) it does nothing.
#[test]
fn child_records_until_killed() {
    let (Ok(store), Ok(order_id)) = (std::env::var(CHILD_STORE), std::env::var(CHILD_ORDER)) else {
        return;
    };
    let mut device = flexwork_client_core::Device::open(std::path::Path::new(&store)).unwrap();
    let photo = fixture_bytes("photos/DSCN0012.jpg");
    let record = device
        .record_photo(&order_id, &photo, "image/jpeg", None, 1)
        .unwrap();
    println!("recorded {}", record.id);

    for n in 0.. {
        let note = device.add_note(&order_id, &format!("note {n}"), n).unwrap();
        println!("recorded {}", note.id);
    }
}

#[test]
fn a_device_killed_after_recording_keeps_everything_and_syncs_it() {
    // 1. The phone knows its order, then the app process starts recording.
    let server = TestServer::start();
    let scene = server.scene("killed", &AREZZO);
    let mut phone = Phone::new();
    phone.login(&server, &scene.worker_login);
    phone.sync();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "device_killed::child_records_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE, phone.dir.path())
        .env(CHILD_ORDER, &scene.order_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // 2. Kill it without warning right after it reported a few items.
    let mut reported = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("recorded ") {
            reported.push(id.to_owned());
        }
        if reported.len() == REPORTED_BEFORE_KILL {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(
        reported.len(),
        REPORTED_BEFORE_KILL,
        "the child reported too few items"
    );

    // 3. Reopened, the store holds every reported item.
    let mut phone = phone.reopen();
    let items = phone.device.items(&scene.order_id).unwrap();
    for id in &reported {
        assert!(
            items.iter().any(|i| &i.id == id),
            "item {id} lost: {items:?}"
        );
    }

    // 4. They all reach the server, the photo's bytes included.
    let report = phone.sync();
    assert_eq!(report.blobs_uploaded, 1, "{report:?}");
    let state = server.state().clone();
    let on_server = server.block_on(async {
        let mut conn = state.db.pool.acquire().await.unwrap();
        let loaded = flexwork_server::evidence::load(&mut conn, &state.actor, &scene.order_id);
        loaded.await.unwrap().doc.read().unwrap()
    });
    let mut ids: Vec<&str> = on_server.notes.iter().map(|n| n.id.as_str()).collect();
    ids.extend(on_server.photos.iter().map(|p| p.id.as_str()));
    for id in &reported {
        assert!(
            ids.contains(&id.as_str()),
            "item {id} did not reach the server"
        );
    }
}
