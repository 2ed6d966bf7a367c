//! Evidence that should not pass unseen: a photo far from the site, a track with an
//! impossible jump, a photo already used in another order.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::support;

use std::io::Cursor;

use crate::support::{
    AREZZO, Phone, TaskSpec, TestServer, fix_at_arezzo, fixture, fixture_bytes, ms,
};

const TAKEN_AT: &str = "2008-10-23T14:27:07Z";

/// The start of the Garmin run in the fixtures (first track point, an EXIF-free GPX).
const SAN_JOSE_RUN: TaskSpec = TaskSpec {
    lat: 37.241738,
    lon: -121.972324,
    radius_m: 200.0,
    from: "2017-07-29T14:00:00Z",
    to: "2017-07-29T17:00:00Z",
    fee_fen: 20_000,
    min_photos: 0,
    track: true,
    signature: false,
};

fn codes(order: &serde_json::Value) -> Vec<String> {
    let findings = order["report"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    findings
        .iter()
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect()
}

/// Signs the worker's phone in and brings the orders down.
fn phone_for(server: &TestServer, worker: &str) -> Phone {
    let mut phone = Phone::new();
    phone.login(server, worker);
    phone.sync();
    phone
}

fn submit_photo(phone: &mut Phone, order_id: &str, bytes: &[u8]) -> String {
    let taken = ms(TAKEN_AT);
    let fix = Some(fix_at_arezzo(taken));
    let record = phone
        .device
        .record_photo(order_id, bytes, "image/jpeg", fix, taken)
        .unwrap();
    phone
        .device
        .add_signature(order_id, support::signature(taken), taken)
        .unwrap();
    phone.device.submit(order_id, taken + 1_000).unwrap();
    phone.sync();
    record.id
}

#[test]
fn a_photo_taken_far_from_the_site_needs_review_and_the_phone_says_why() {
    // 1. The task's site is 20 km north of where the photo was taken.
    let server = TestServer::start();
    let far = TaskSpec {
        lat: AREZZO.lat + 0.18,
        ..AREZZO
    };
    let scene = server.scene("far", &far);
    let mut phone = phone_for(&server, &scene.worker_login);

    // 2. The worker records the photo where it really was taken.
    let photo_id = submit_photo(
        &mut phone,
        &scene.order_id,
        &fixture_bytes("photos/DSCN0010.jpg"),
    );
    let order = server.wait_verified(&scene.enterprise, &scene.order_id);

    // 3. The server flags it, and the phone shows the finding on that photo.
    assert!(
        codes(&order).contains(&"photo_outside_site".into()),
        "{:?}",
        codes(&order)
    );
    assert_ne!(order["verdict"], "passed");
    phone.sync();
    let review = phone
        .device
        .evidence(&scene.order_id)
        .unwrap()
        .review
        .unwrap();
    let on_photo: Vec<_> = review
        .findings
        .iter()
        .filter(|f| f.item.as_deref() == Some(photo_id.as_str()))
        .collect();
    assert!(
        on_photo
            .iter()
            .any(|f| f.code == "photo_outside_site" && f.message.contains("km")),
        "{on_photo:?}"
    );
}

/// The Garmin track with one point in the middle moved about 55 km north.
fn track_with_a_jump() -> Vec<u8> {
    let text = std::fs::read_to_string(fixture("tracks/garmin-activity.gpx")).unwrap();
    let marker = "<trkpt lat=\"37.";
    let positions: Vec<_> = text.match_indices(marker).map(|(i, _)| i).collect();
    let at = positions[positions.len() / 2] + "<trkpt lat=\"".len();
    let mut edited = text.clone();
    edited.replace_range(at..at + 2, "38");
    edited.replace_range(at + 2..at + 3, ".");
    edited.into_bytes()
}

#[test]
fn a_track_with_an_impossible_jump_is_flagged_and_the_real_one_is_not() {
    // 1. Two orders at the start of the real run.
    let server = TestServer::start();
    let edited = server.scene("jump", &SAN_JOSE_RUN);
    let real = server.scene("real", &SAN_JOSE_RUN);

    // 2. One worker imports the edited copy, the other the real track.
    for (scene, gpx) in [
        (&edited, track_with_a_jump()),
        (&real, fixture_bytes("tracks/garmin-activity.gpx")),
    ] {
        let mut phone = phone_for(&server, &scene.worker_login);
        let import = phone
            .device
            .import_gpx(&scene.order_id, Cursor::new(gpx))
            .unwrap();
        assert_eq!(import.points, 988);
        phone
            .device
            .submit(&scene.order_id, ms("2017-07-29T16:20:00Z"))
            .unwrap();
        phone.sync();
    }

    // 3. Only the edited track has a jump or an impossible speed.
    let jumped = codes(&server.wait_verified(&edited.enterprise, &edited.order_id));
    let clean = server.wait_verified(&real.enterprise, &real.order_id);
    let flagged = |c: &Vec<String>| {
        c.iter()
            .any(|c| c == "track_jump" || c == "track_impossible_speed")
    };
    assert!(flagged(&jumped), "{jumped:?}");
    assert!(!flagged(&codes(&clean)), "{:?}", codes(&clean));
    assert!(!codes(&clean).contains(&"track_never_on_site".into()));
}

#[test]
fn a_photo_reused_in_a_second_order_is_flagged_and_a_near_copy_too() {
    // 1. Three orders at the same site, for one worker each.
    let server = TestServer::start();
    let first = server.scene("orig", &AREZZO);
    let second = server.scene("reuse", &AREZZO);
    let third = server.scene("copy", &AREZZO);
    let photo = fixture_bytes("photos/DSCN0010.jpg");

    // 2. The photo is used honestly once ...
    let mut phone = phone_for(&server, &first.worker_login);
    submit_photo(&mut phone, &first.order_id, &photo);
    let original = server.wait_verified(&first.enterprise, &first.order_id);
    assert!(!codes(&original).contains(&"photo_reused".into()));

    // 3. ... then the same bytes in a second order, and a re-encoded smaller copy in a third.
    let mut phone = phone_for(&server, &second.worker_login);
    submit_photo(&mut phone, &second.order_id, &photo);
    let mut phone = phone_for(&server, &third.worker_login);
    submit_photo(&mut phone, &third.order_id, &reencoded(&photo));

    // 4. Each is flagged for review, naming what it matches.
    let reused = server.wait_verified(&second.enterprise, &second.order_id);
    assert!(
        codes(&reused).contains(&"photo_reused".into()),
        "{:?}",
        codes(&reused)
    );
    assert_ne!(reused["verdict"], "passed");
    let copied = server.wait_verified(&third.enterprise, &third.order_id);
    assert!(
        codes(&copied).contains(&"photo_near_duplicate".into()),
        "{:?}",
        codes(&copied)
    );
}

/// The photo decoded, scaled to half size and saved again as JPEG: other bytes, same picture.
fn reencoded(jpeg: &[u8]) -> Vec<u8> {
    let image = image::load_from_memory(jpeg).unwrap();
    let smaller = image.resize(320, 240, image::imageops::FilterType::Triangle);
    let mut out = Cursor::new(Vec::new());
    smaller
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}
