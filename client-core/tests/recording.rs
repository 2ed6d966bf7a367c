//! Recording on the phone with no network at all: durability, fixtures, bad input.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flexwork_client_core::{
    ClientError, Device, Fix, ItemKind, ItemState, StrokePoint, TrackPoint,
};
use flexwork_sync::ContentHash;
use support::FakeServer;

const ORDER: &str = "order-1";
/// Set in the child process of the killed-process test: the store folder to record into.
const CHILD_STORE_ENV: &str = "FLEXWORK_CLIENT_CORE_CHILD_STORE";
/// Lines the parent reads before it kills the child.
const LINES_BEFORE_KILL: usize = 12;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(path)
}

fn device_with_order(dir: &Path) -> Device {
    let mut device = Device::open(dir).unwrap();
    device.remember_orders(&[support::order(ORDER)]).unwrap();
    device
}

fn fix() -> Fix {
    Fix {
        lat: 43.467,
        lon: 11.885,
        accuracy_m: 6.0,
        at_ms: 1_700_000_100_000,
        mock: false,
    }
}

fn point(at_ms: i64) -> TrackPoint {
    TrackPoint {
        lat: 43.467,
        lon: 11.885,
        at_ms: Some(at_ms),
        accuracy_m: Some(5.0),
        elevation_m: None,
    }
}

fn stroke() -> Vec<StrokePoint> {
    (0..5)
        .map(|i| StrokePoint {
            x: f64::from(i) * 10.0,
            y: 20.0,
            t_ms: i64::from(i) * 16,
            pressure: 0.5,
        })
        .collect()
}

#[test]
fn everything_records_with_no_transport_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();

    // 1. Record one of each kind, with no server anywhere.
    let mut device = device_with_order(dir.path());
    let photo = device
        .record_photo(
            ORDER,
            b"\xff\xd8\xff fake jpeg",
            "image/jpeg",
            Some(fix()),
            1_700_000_100_000,
        )
        .unwrap();
    let track = device
        .append_track_points(ORDER, &[point(1), point(2)])
        .unwrap();
    let signature = device
        .add_signature(ORDER, vec![stroke()], 1_700_000_200_000)
        .unwrap();
    let note = device
        .add_note(ORDER, "  back door was locked  ", 1_700_000_300_000)
        .unwrap();
    let submission = device.submit(ORDER, 1_700_000_400_000).unwrap();
    let device_id = device.device_id().to_owned();
    drop(device);

    // 2. Reopen: same device, same evidence, every item queued.
    let device = Device::open(dir.path()).unwrap();
    let evidence = device.evidence(ORDER).unwrap();
    let items = device.items(ORDER).unwrap();

    assert_eq!(device.device_id(), device_id);
    assert_eq!(evidence.photos, vec![photo.clone()]);
    assert_eq!(evidence.track.len(), 2);
    assert_eq!(evidence.signatures, vec![signature.clone()]);
    assert_eq!(evidence.notes[0].text, "back door was locked");
    assert_eq!(evidence.submitted_at_ms(), Some(1_700_000_400_000));
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [&photo.id, &track, &signature.id, &note.id, &submission]
    );
    let kinds: Vec<ItemKind> = items.iter().map(|i| i.kind).collect();
    assert_eq!(kinds[0], ItemKind::Photo);
    assert!(items.iter().all(|i| i.state == ItemState::Queued));
    assert_eq!(items[1].points, Some(2));
    assert!(device.orders().unwrap()[0].unsynced);
}

#[test]
fn a_fixture_photo_is_stored_by_its_hash_and_never_in_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device_with_order(dir.path());
    let bytes = std::fs::read(fixture("photos/DSCN0010.jpg")).unwrap();

    let photo = device
        .record_photo(ORDER, &bytes, "image/jpeg", None, 5)
        .unwrap();

    assert_eq!(photo.hash, ContentHash::of(&bytes));
    assert_eq!(photo.size, 161_713);
    let stored = std::fs::read(dir.path().join("blobs").join(photo.hash.to_hex())).unwrap();
    assert_eq!(stored, bytes);
    let items = device.items(ORDER).unwrap();
    assert_eq!(items[0].hash, Some(photo.hash));
    assert_eq!(items[0].size, Some(161_713));
    let sqlite = std::fs::metadata(dir.path().join("device.sqlite"))
        .unwrap()
        .len();
    assert!(sqlite < 161_713, "the photo bytes ended up in sqlite");
}

#[test]
fn the_gpsies_track_imports_its_41_timed_points() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device_with_order(dir.path());
    let file = std::fs::File::open(fixture("tracks/gpsies-example.gpx")).unwrap();

    let import = device.import_gpx(ORDER, file).unwrap();
    let track = device.evidence(ORDER).unwrap().track;

    assert_eq!((import.points, import.timed_points), (41, 41));
    assert_eq!(track.len(), 41);
    assert_eq!((track[0].lat, track[0].lon), (48.5608462, 13.4414291));
    assert_eq!(track[0].at_ms, Some(1_262_304_000_000)); // 2010-01-01T00:00:00Z
    assert_eq!(track[0].elevation_m, Some(305.0));
    assert_eq!(track[40].at_ms, Some(1_262_306_519_000)); // 00:41:59Z
    assert_eq!(device.items(ORDER).unwrap()[0].points, Some(41));
}

/// The store holds the device's private key and the worker's photos: nobody but the app's
/// own user may read them, even where the folder itself is shared.
#[cfg(unix)]
#[test]
fn the_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("store");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut device = device_with_order(&shared);
    let photo = std::fs::read(fixture("photos/DSCN0012.jpg")).unwrap();
    device
        .record_photo(ORDER, &photo, "image/jpeg", Some(fix()), 1)
        .unwrap();
    drop(device);
    // An older store made with the default mode is tightened when it is opened.
    let db = shared.join("device.sqlite");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _device = Device::open(&shared).unwrap();

    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&shared.join("blobs")), 0o700);
    for entry in std::fs::read_dir(&shared).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is open to others",
            path.display()
        );
    }
}

#[test]
fn bad_input_gets_clear_errors_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device_with_order(dir.path());
    let photo = std::fs::read(fixture("photos/DSCN0012.jpg")).unwrap();
    let far = Fix {
        lat: 123.0,
        ..fix()
    };

    let not_gpx = device.import_gpx(ORDER, &photo[..]).unwrap_err();
    let empty_gpx = device
        .import_gpx(ORDER, &b"<gpx version=\"1.1\"></gpx>"[..])
        .unwrap_err();
    let unknown = device.add_note("no-such-order", "hello", 1).unwrap_err();
    let unknown_read = device.evidence("no-such-order").unwrap_err();
    let off_earth = device
        .record_photo(ORDER, &photo, "image/jpeg", Some(far), 1)
        .unwrap_err();
    let not_image = device
        .record_photo(ORDER, &photo, "text/plain", None, 1)
        .unwrap_err();
    let empty = device
        .record_photo(ORDER, b"", "image/jpeg", None, 1)
        .unwrap_err();
    let blank_note = device.add_note(ORDER, "   ", 1).unwrap_err();
    let no_strokes = device.add_signature(ORDER, vec![vec![]], 1).unwrap_err();
    let nan = TrackPoint {
        lat: f64::NAN,
        ..point(1)
    };
    let nan_track = device.append_track_points(ORDER, &[nan]).unwrap_err();
    // Times no calendar can show: before 1970 or past the year 9999.
    let before_1970 = device
        .record_photo(ORDER, &photo, "image/jpeg", None, i64::MIN)
        .unwrap_err();
    let past_9999 = device.add_note(ORDER, "hello", i64::MAX).unwrap_err();
    let fix_time = Fix { at_ms: -1, ..fix() };
    let bad_fix_time = device
        .record_photo(ORDER, &photo, "image/jpeg", Some(fix_time), 1)
        .unwrap_err();
    let bad_point_time = device
        .append_track_points(ORDER, &[point(i64::MAX)])
        .unwrap_err();
    let bad_submit = device.submit(ORDER, -5).unwrap_err();
    assert!(
        before_1970.to_string().contains("not a time"),
        "{before_1970}"
    );

    assert_eq!(not_gpx.code(), "invalid_gpx");
    assert_eq!(empty_gpx.code(), "invalid_gpx");
    assert!(matches!(unknown, ClientError::UnknownOrder(ref id) if id == "no-such-order"));
    assert_eq!(unknown_read.code(), "unknown_order");
    assert_eq!(
        unknown.to_string(),
        "order no-such-order is not known on this device; sync to fetch tasks"
    );
    for err in [
        off_earth,
        not_image,
        empty,
        blank_note,
        no_strokes,
        nan_track,
        before_1970,
        past_9999,
        bad_fix_time,
        bad_point_time,
        bad_submit,
    ] {
        assert_eq!(err.code(), "invalid_input", "{err}");
    }
    assert!(device.items(ORDER).unwrap().is_empty());
}

/// Runs only as the child of the test below: records items forever, printing a line after
/// each call returns, until it is killed.
#[test]
fn child_records_until_killed() {
    let Ok(dir) = std::env::var(CHILD_STORE_ENV) else {
        return;
    };
    let mut device = Device::open(Path::new(&dir)).unwrap();
    let photo = std::fs::read(fixture("photos/DSCN0021.jpg")).unwrap();

    for i in 0..10_000_i64 {
        let (kind, id) = match i % 3 {
            0 => (
                "note",
                device.add_note(ORDER, &format!("note {i}"), i).unwrap().id,
            ),
            1 => {
                let mut bytes = photo.clone();
                bytes.extend_from_slice(&i.to_be_bytes());
                let record = device.record_photo(ORDER, &bytes, "image/jpeg", None, i);
                ("photo", record.unwrap().id)
            }
            _ => (
                "track",
                device.append_track_points(ORDER, &[point(i)]).unwrap(),
            ),
        };
        println!("recorded {kind} {id}");
    }
}

#[test]
fn items_whose_call_returned_survive_the_process_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::new();
    server.add_order(ORDER);
    drop(device_with_order(dir.path()));

    // 1. Start this test binary again as a child that records into the store.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_records_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // 2. Read what it reports, and SIGKILL it right after the last line we wait for.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut recorded: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("recorded ") else {
            continue;
        };
        let (kind, id) = rest.split_once(' ').unwrap();
        recorded.push((kind.to_owned(), id.to_owned()));
        if recorded.len() == LINES_BEFORE_KILL {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child ended on its own");
    assert_eq!(recorded.len(), LINES_BEFORE_KILL);

    // 3. Reopen: every item whose line we read is there, in items and in the document.
    let mut device = Device::open(dir.path()).unwrap();
    let items = device.items(ORDER).unwrap();
    let evidence = device.evidence(ORDER).unwrap();
    for (kind, id) in &recorded {
        let item = items.iter().find(|i| &i.id == id);
        assert_eq!(
            item.map(|i| i.kind.as_str()),
            Some(kind.as_str()),
            "lost {kind} {id}"
        );
    }
    let notes = recorded.iter().filter(|(k, _)| k == "note").count();
    let photos = recorded.iter().filter(|(k, _)| k == "photo").count();
    assert!(evidence.notes.len() >= notes);
    assert!(evidence.photos.len() >= photos);
    assert!(
        evidence
            .photos
            .iter()
            .all(|p| dir.path().join("blobs").join(p.hash.to_hex()).exists())
    );

    // 4. Sync: the server gets all of it.
    let report = device.sync(&server).unwrap();
    let on_server = server.evidence(ORDER);

    assert!(report.converged, "{report:?}");
    assert_eq!(on_server.notes.len(), evidence.notes.len());
    assert_eq!(on_server.photos.len(), evidence.photos.len());
    assert_eq!(report.blobs_uploaded, evidence.photos.len());
    for photo in &evidence.photos {
        assert!(server.blob(&photo.hash).is_some());
    }
    let items = device.items(ORDER).unwrap();
    assert!(
        items.iter().all(|i| i.state == ItemState::Synced),
        "{items:?}"
    );
}
