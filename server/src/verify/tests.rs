//! Scenario tests on the real camera photos and GPS tracks in `shared/fixtures`. The values
//! asserted are what the files hold, as any EXIF or GPX viewer shows them.

use std::io::Cursor;

use image::ImageFormat;
use time::OffsetDateTime;
use time::macros::datetime;

use super::cli::{VerifyArgs, run};
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

fn fixture_track(name: &str) -> Vec<TrackPoint> {
    let file = std::fs::File::open(format!("{FIXTURES}/tracks/{name}")).unwrap();
    track_from_gpx(std::io::BufReader::new(file)).unwrap()
}

fn photo<'a>(id: &str, bytes: &'a [u8], fix: Option<DeviceFix>) -> PhotoInput<'a> {
    PhotoInput {
        id: id.to_owned(),
        bytes,
        fix,
    }
}

fn photos_only<'a>(photos: Vec<PhotoInput<'a>>) -> Evidence<'a> {
    Evidence {
        photos,
        ..Evidence::default()
    }
}

fn check(evidence: &Evidence, ctx: &Context) -> Report {
    verify(evidence, ctx, &[], &Thresholds::default())
}

fn site(lat: f64, lon: f64) -> Context {
    Context {
        site: Some(Site {
            lat,
            lon,
            radius_m: 150.0,
        }),
        ..Context::default()
    }
}

fn codes(report: &Report) -> Vec<&str> {
    report.findings.iter().map(|f| f.code.as_str()).collect()
}

fn message<'a>(report: &'a Report, code: &'a str) -> &'a str {
    let finding = report.with_code(code).next();
    &finding
        .unwrap_or_else(|| panic!("no {code} in {:#?}", report.findings))
        .message
}

fn fix_at(lat: f64, lon: f64, at: OffsetDateTime) -> DeviceFix {
    DeviceFix {
        lat,
        lon,
        accuracy_m: 12.0,
        at,
        mock: false,
    }
}

// DSCN0010.jpg: where the EXIF says it was taken.
const DSCN0010_LAT: f64 = 43.467448;
const DSCN0010_LON: f64 = 11.885127;

#[test]
fn dscn0010_facts_are_read_from_its_exif() {
    let facts = analyze_photo(&fixture("photos/DSCN0010.jpg"), &Thresholds::default());
    let exif = facts.exif.unwrap();
    let gps = exif.gps.unwrap();

    assert!((gps.lat - DSCN0010_LAT).abs() < 1e-5, "{}", gps.lat);
    assert!((gps.lon - DSCN0010_LON).abs() < 1e-5, "{}", gps.lon);
    assert_eq!(exif.make.as_deref(), Some("NIKON"));
    assert_eq!(exif.model.as_deref(), Some("COOLPIX P6000"));
    assert_eq!(exif.orientation, Some(1));

    assert_eq!(
        exif.date_time_original,
        Some(datetime!(2008-10-22 16:28:39))
    );
    assert_eq!(exif.offset_time_original, None);
    assert_eq!(exif.gps_time, Some(datetime!(2008-10-23 14:27:07.24 UTC)));
    assert_eq!(
        facts.decoding,
        Decoding::Decoded {
            width: 640,
            height: 480
        }
    );
    assert_eq!(facts.media_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        facts.sha256.to_hex(),
        "17307b1207eb6487d7908e9d154890b46e3d2e0192369cfd3f4c33d5a5af4035"
    );
}

#[test]
fn the_exif_position_is_inside_a_site_there_and_outside_one_5_km_away() {
    let bytes = fixture("photos/DSCN0010.jpg");
    let evidence = photos_only(vec![photo("p1", &bytes, None)]);

    let here = check(&evidence, &site(43.4675, 11.8851));
    assert!(!here.has("photo_outside_site"), "{:#?}", here.findings);

    // 0.045° of latitude north is 5.0 km.
    let away = check(&evidence, &site(DSCN0010_LAT + 0.045, DSCN0010_LON));
    let msg = message(&away, "photo_outside_site");
    assert!(msg.contains("5.0 km") && msg.contains("EXIF GPS"), "{msg}");
    assert_eq!(away.verdict, Verdict::NeedsReview);
}

#[test]
fn the_phone_fix_is_checked_with_its_accuracy_slack() {
    let bytes = fixture("photos/jolla-no-gps.jpg");
    let at = datetime!(2014-09-21 13:00:56 UTC);
    // 190 m north of the site: inside 150 m + 50 m slack, outside 150 m + 20 m.
    let lat = 43.0 + 190.0 / 111_195.0;

    let loose = DeviceFix {
        accuracy_m: 80.0,
        ..fix_at(lat, 11.0, at)
    };
    let report = check(
        &photos_only(vec![photo("p1", &bytes, Some(loose))]),
        &site(43.0, 11.0),
    );
    assert!(!report.has("photo_outside_site"));

    let tight = DeviceFix {
        accuracy_m: 20.0,
        ..fix_at(lat, 11.0, at)
    };
    let report = check(
        &photos_only(vec![photo("p1", &bytes, Some(tight))]),
        &site(43.0, 11.0),
    );
    let msg = message(&report, "photo_outside_site");
    assert!(
        msg.contains("190 m") && msg.contains("allowed 150 m + 20 m accuracy"),
        "{msg}"
    );
}

#[test]
fn the_gps_stamp_of_dscn0010_is_almost_a_day_off_its_camera_clock() {
    let bytes = fixture("photos/DSCN0010.jpg");
    let report = check(
        &photos_only(vec![photo("p1", &bytes, None)]),
        &Context::default(),
    );

    // DateTimeOriginal 2008-10-22 16:28:39 (no zone) vs GPS 2008-10-23 14:27:07 UTC.
    let msg = message(&report, "photo_exif_time_mismatch");
    assert!(
        msg.contains("no time zone") && msg.contains("21 h 58 min"),
        "{msg}"
    );
    assert_eq!(report.verdict, Verdict::NeedsReview);
}

#[test]
fn an_unzoned_camera_clock_agrees_with_the_phone_through_a_time_zone() {
    let bytes = fixture("photos/DSCN0010.jpg");
    // The camera's 16:28:39 local time is 14:28:39 UTC in Italy's summer time (UTC+2).
    let fix = fix_at(
        DSCN0010_LAT,
        DSCN0010_LON,
        datetime!(2008-10-22 14:29:10 UTC),
    );
    let report = check(
        &photos_only(vec![photo("p1", &bytes, Some(fix))]),
        &Context::default(),
    );

    let msg = message(&report, "photo_exif_time_zone_inferred");
    assert!(msg.contains("UTC+02:00"), "{msg}");
    assert!(!report.has("photo_exif_time_mismatch"));

    // The GPS stamp, a day later, disagrees with the phone's clock.
    let msg = message(&report, "photo_gps_time_mismatch");
    assert!(msg.contains("2008-10-23 14:27:07 UTC"), "{msg}");
}

#[test]
fn capture_time_outside_the_window_is_reviewed() {
    let bytes = fixture("photos/DSCN0010.jpg");
    let window = Window {
        from: datetime!(2020-01-01 00:00 UTC),
        to: datetime!(2020-01-02 00:00 UTC),
    };
    let ctx = Context {
        window: Some(window),
        ..Context::default()
    };
    let report = check(&photos_only(vec![photo("p1", &bytes, None)]), &ctx);

    let msg = message(&report, "photo_outside_window");
    assert!(
        msg.contains("2008-10-23 14:27:07 UTC") && msg.contains("EXIF GPS time"),
        "{msg}"
    );
}

#[test]
fn jolla_photo_has_no_gps_which_is_only_information() {
    let bytes = fixture("photos/jolla-no-gps.jpg");
    let facts = analyze_photo(&bytes, &Thresholds::default());
    let exif = facts.exif.clone().unwrap();
    assert_eq!(exif.gps, None);
    assert_eq!(exif.make.as_deref(), Some("Jolla"));
    assert_eq!(
        exif.date_time_original,
        Some(datetime!(2014-09-21 16:00:56))
    );
    assert_eq!(
        facts.decoding,
        Decoding::Decoded {
            width: 3264,
            height: 2448
        }
    );

    let report = check(
        &photos_only(vec![photo("p1", &bytes, None)]),
        &Context::default(),
    );
    let finding = report.with_code("photo_no_exif_gps").next().unwrap();
    assert_eq!(finding.severity, Severity::Info);
    assert_eq!(report.verdict, Verdict::Passed);
}

#[test]
fn portrait_photo_reports_orientation_6_and_hashes_as_displayed() {
    let bytes = fixture("photos/portrait-orientation-6.jpg");
    let facts = analyze_photo(&bytes, &Thresholds::default());
    assert_eq!(facts.exif.as_ref().and_then(|e| e.orientation), Some(6));
    assert_eq!(
        facts.decoding,
        Decoding::Decoded {
            width: 600,
            height: 450
        }
    );

    // An editor that saves the photo upright (rotated, no EXIF) makes a near copy.
    let upright = image::load_from_memory(&bytes).unwrap().rotate90();
    let copy = analyze_photo(&encode(&upright, ImageFormat::Png), &Thresholds::default());
    let bits = (copy.dhash.unwrap() ^ facts.dhash.unwrap()).count_ones();
    assert!(bits <= 10, "{bits} bits apart");
}

#[test]
fn damaged_fixture_and_text_files_are_undecodable_without_panicking() {
    let damaged = fixture("photos-invalid/corrupted.jpg");
    let text = b"this is a text file that someone named photo.jpg\n".to_vec();
    let empty = Vec::new();
    let evidence = photos_only(vec![
        photo("corrupted.jpg", &damaged, None),
        photo("notes.jpg", &text, None),
        photo("empty.jpg", &empty, None),
    ]);

    let report = check(&evidence, &Context::default());
    let undecodable: Vec<_> = report
        .with_code("photo_undecodable")
        .map(|f| &f.item)
        .collect();
    assert_eq!(undecodable.len(), 3, "{:#?}", report.findings);
    assert_eq!(report.verdict, Verdict::Rejected);

    // corrupted.jpg loses 16 KiB to 0xFF bytes mid-image; the decoder alone would paint it grey.
    let msg = message(&report, "photo_undecodable");
    assert!(msg.contains("damaged") && msg.contains("0xFF9F"), "{msg}");
    assert_eq!(report.photos[1].facts.media_type, None);
}

#[test]
fn image00971_is_an_intact_jpeg_with_xmp_but_no_exif() {
    // The second file of photos-invalid/ is "invalid" only for EXIF readers: it holds an
    // Adobe XMP packet and no EXIF block; its image data is whole.
    let bytes = fixture("photos-invalid/image00971.jpg");
    let report = check(
        &photos_only(vec![photo("banner", &bytes, None)]),
        &Context::default(),
    );

    assert_eq!(
        report.photos[0].facts.decoding,
        Decoding::Decoded {
            width: 636,
            height: 227
        }
    );
    assert_eq!(report.photos[0].facts.exif, None);
    assert_eq!(codes(&report), ["photo_no_exif"]);
}

#[test]
fn truncated_and_scrambled_copies_never_panic() {
    let bytes = fixture("photos/DSCN0010.jpg");
    let thresholds = Thresholds::default();

    for cut in [
        0,
        1,
        2,
        3,
        100,
        11_000,
        11_300,
        15_000,
        16_000,
        80_000,
        bytes.len() - 2,
    ] {
        let facts = analyze_photo(&bytes[..cut], &thresholds);
        assert!(!facts.is_decoded(), "cut at {cut} decoded");
    }
    for at in (0..20_000).step_by(997) {
        let mut scrambled = bytes.clone();
        scrambled[at] ^= 0x5A;
        let _ = analyze_photo(&scrambled, &thresholds);
    }
}

/// A 57-byte PNG whose header declares `width` × `height`, with an empty image data chunk.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend(height.to_be_bytes());
    header.extend([8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", header.as_slice()), (b"IDAT", &[]), (b"IEND", &[])] {
        let chunk = [kind.as_slice(), data].concat();
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_decompression_bomb_is_refused_before_decoding() {
    let bomb = png_header(100_000, 100_000);
    let facts = analyze_photo(&bomb, &Thresholds::default());
    assert_eq!(
        facts.decoding,
        Decoding::TooLarge {
            width: 100_000,
            height: 100_000
        }
    );

    let report = check(
        &photos_only(vec![photo("bomb.png", &bomb, None)]),
        &Context::default(),
    );
    let msg = message(&report, "photo_too_large");
    assert!(
        msg.contains("100000×100000") && msg.contains("40 megapixels"),
        "{msg}"
    );
    assert_eq!(report.verdict, Verdict::Rejected);
}

#[test]
fn a_jpeg_whose_frame_header_claims_60000_square_is_refused() {
    let mut bytes = fixture("photos/DSCN0010.jpg");
    // The frame header: marker, length 17, 8 bits, height 480, width 640.
    let frame = [0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80];
    let sof = bytes.windows(frame.len()).position(|w| w == frame).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);

    let facts = analyze_photo(&bytes, &Thresholds::default());
    assert_eq!(
        facts.decoding,
        Decoding::TooLarge {
            width: 60_000,
            height: 60_000
        }
    );
}

#[test]
fn the_pixel_limit_comes_from_the_thresholds() {
    let small = Thresholds {
        max_pixels: 100_000,
        ..Thresholds::default()
    };
    let facts = analyze_photo(&fixture("photos/DSCN0010.jpg"), &small);

    assert_eq!(
        facts.decoding,
        Decoding::TooLarge {
            width: 640,
            height: 480
        }
    );
    assert_eq!(facts.dhash, None);
}

#[test]
fn mock_and_inaccurate_fixes_are_flagged() {
    let bytes = fixture("photos/jolla-no-gps.jpg");
    let at = datetime!(2014-09-21 13:00:56 UTC);
    let mock = DeviceFix {
        mock: true,
        ..fix_at(43.0, 11.0, at)
    };
    let vague = DeviceFix {
        accuracy_m: 250.0,
        ..fix_at(43.0, 11.0, at)
    };
    let evidence = photos_only(vec![
        photo("a", &bytes, Some(mock)),
        photo("b", &bytes, Some(vague)),
    ]);

    let report = check(&evidence, &site(43.0, 11.0));
    assert_eq!(
        report
            .with_code("photo_mock_location")
            .next()
            .unwrap()
            .item
            .as_deref(),
        Some("a")
    );
    assert!(message(&report, "photo_fix_inaccurate").contains("250 m"));
    assert!(report.has("photo_repeated"));
    assert_eq!(report.verdict, Verdict::Rejected);
}

#[test]
fn garmin_track_is_plausible() {
    let track = fixture_track("garmin-activity.gpx");
    assert_eq!(track.len(), 988);
    let first = track[0];
    assert!((first.lat - 37.241738).abs() < 1e-6 && (first.lon + 121.972324).abs() < 1e-6);
    assert_eq!(first.at, Some(datetime!(2017-07-29 14:46:35 UTC)));
    assert_eq!(track[987].at, Some(datetime!(2017-07-29 16:18:13 UTC)));

    let evidence = Evidence {
        track,
        ..Evidence::default()
    };
    let report = check(&evidence, &Context::default());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);

    let summary = report.track.unwrap();
    assert_eq!(summary.timed_points, 988);
    assert!(
        (summary.length_m - 12_821.0).abs() < 10.0,
        "{}",
        summary.length_m
    );
    assert!(summary.max_speed_kmh.unwrap() < 20.0);
    assert_eq!(summary.longest_gap_s, Some(12.0));
}

#[test]
fn a_point_moved_50_km_is_a_jump_at_impossible_speed() {
    let mut track = fixture_track("garmin-activity.gpx");
    track[500].lat += 0.45; // 50 km north

    let report = check(
        &Evidence {
            track,
            ..Evidence::default()
        },
        &Context::default(),
    );
    assert!(message(&report, "track_jump").contains("50.0 km"));
    assert!(report.has("track_impossible_speed"));
    assert_eq!(report.verdict, Verdict::NeedsReview);
}

#[test]
fn time_running_backwards_is_found() {
    let mut track = fixture_track("garmin-activity.gpx");
    let (a, b) = (track[300].at, track[301].at);
    track[300].at = b;
    track[301].at = a;
    track[700].at = None;

    let report = check(
        &Evidence {
            track,
            ..Evidence::default()
        },
        &Context::default(),
    );
    assert!(report.has("track_time_not_increasing"));
    assert!(message(&report, "track_time_missing").starts_with("1 of 988"));
}

#[test]
fn time_on_site_is_reported_and_a_track_elsewhere_is_reviewed() {
    let track = fixture_track("garmin-activity.gpx");
    let (lat, lon) = (track[0].lat, track[0].lon);
    let evidence = Evidence {
        track,
        ..Evidence::default()
    };

    let report = check(&evidence, &site(lat, lon));
    let on_site = report
        .track
        .as_ref()
        .and_then(|t| t.time_on_site_s)
        .unwrap();
    assert!(on_site > 0.0);
    assert!(message(&report, "track_time_on_site").contains("2017-07-29 14:46:35 UTC"));

    let report = check(&evidence, &site(lat + 0.045, lon));
    assert!(message(&report, "track_never_on_site").contains("closest point"));
}

#[test]
fn gpsies_track_gaps_follow_the_threshold() {
    let track = fixture_track("gpsies-example.gpx");
    assert_eq!(track.len(), 41);
    assert_eq!(track[0].at, Some(datetime!(2010-01-01 00:00:00 UTC)));
    assert_eq!(track[40].at, Some(datetime!(2010-01-01 00:41:59 UTC)));
    let evidence = Evidence {
        track,
        ..Evidence::default()
    };

    assert!(!check(&evidence, &Context::default()).has("track_gap"));

    let strict = Thresholds {
        track_gap_s: 200.0,
        ..Thresholds::default()
    };
    let report = verify(&evidence, &Context::default(), &[], &strict);
    assert!(message(&report, "track_gap").contains("3 min 37 s"));
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.to_rgb8().write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn known(order_id: &str, bytes: &[u8]) -> KnownPhoto {
    let facts = analyze_photo(bytes, &Thresholds::default());
    KnownPhoto {
        order_id: order_id.into(),
        sha256: facts.sha256,
        dhash: facts.dhash.unwrap(),
    }
}

#[test]
fn reused_and_near_duplicate_photos_are_reviewed() {
    let original = fixture("photos/DSCN0010.jpg");
    let img = image::load_from_memory(&original).unwrap();
    let resized = encode(
        &img.resize(600, 450, image::imageops::FilterType::Triangle),
        ImageFormat::Jpeg,
    );
    let other = fixture("photos/DSCN0042.jpg");

    let known = [known("order-17", &original)];
    let evidence = photos_only(vec![
        photo("same", &original, None),
        photo("resized", &resized, None),
        photo("other", &other, None),
    ]);
    let report = verify(
        &evidence,
        &Context::default(),
        &known,
        &Thresholds::default(),
    );

    let reused: Vec<_> = report
        .with_code("photo_reused")
        .map(|f| f.item.as_deref())
        .collect();
    assert_eq!(reused, [Some("same")]);
    let near: Vec<_> = report
        .with_code("photo_near_duplicate")
        .map(|f| f.item.as_deref())
        .collect();
    assert_eq!(near, [Some("resized")]);
    assert!(message(&report, "photo_near_duplicate").contains("order order-17"));
    assert!(
        report
            .with_code("photo_reused")
            .all(|f| f.severity == Severity::Review)
    );
}

#[test]
fn missing_signature_photos_and_track_are_rejected() {
    let bytes = fixture("photos/jolla-no-gps.jpg");
    let requirements = Requirements {
        min_photos: 2,
        track: true,
        signature: true,
    };
    let ctx = Context {
        requirements: Some(requirements),
        ..Context::default()
    };

    let report = check(&photos_only(vec![photo("p1", &bytes, None)]), &ctx);
    assert!(message(&report, "photos_missing").contains("requires 2"));
    assert!(report.has("track_missing"));
    assert!(report.has("signature_missing"));
    assert_eq!(report.verdict, Verdict::Rejected);
}

#[test]
fn evidence_in_order_passes() {
    // 1. A Jolla photo with a phone fix on site, taken at 16:00:56 Finnish summer time.
    let bytes = fixture("photos/jolla-no-gps.jpg");
    let fix = fix_at(60.1699, 24.9384, datetime!(2014-09-21 13:01:20 UTC));
    let window = Window {
        from: datetime!(2014-09-21 12:00 UTC),
        to: datetime!(2014-09-21 14:00 UTC),
    };
    let ctx = Context {
        site: Some(Site {
            lat: 60.1700,
            lon: 24.9385,
            radius_m: 150.0,
        }),
        window: Some(window),
        requirements: Some(Requirements {
            min_photos: 1,
            track: false,
            signature: true,
        }),
    };

    // 2. One signature, and a known photo that looks nothing like it.
    let evidence = Evidence {
        signature_count: 1,
        ..photos_only(vec![photo("p1", &bytes, Some(fix))])
    };
    let known = [known("order-3", &fixture("photos/DSCN0042.jpg"))];
    let report = verify(&evidence, &ctx, &known, &Thresholds::default());

    // 3. Only facts remain: the inferred camera zone.
    assert_eq!(report.verdict, Verdict::Passed, "{:#?}", report.findings);
    assert!(message(&report, "photo_exif_time_zone_inferred").contains("UTC+03:00"));
    assert!(report.findings.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn a_track_only_order_on_site_and_in_time_passes() {
    let track = fixture_track("garmin-activity.gpx");
    let window = Window {
        from: datetime!(2017-07-29 14:00 UTC),
        to: datetime!(2017-07-29 17:00 UTC),
    };
    let ctx = Context {
        site: Some(Site {
            lat: track[0].lat,
            lon: track[0].lon,
            radius_m: 150.0,
        }),
        window: Some(window),
        requirements: Some(Requirements {
            min_photos: 0,
            track: true,
            signature: false,
        }),
    };

    let report = verify(
        &Evidence {
            track,
            ..Evidence::default()
        },
        &ctx,
        &[],
        &Thresholds::default(),
    );
    assert_eq!(report.verdict, Verdict::Passed, "{:#?}", report.findings);
    assert!(report.has("track_time_on_site"));
}

#[test]
fn the_report_is_json_with_snake_case_names() {
    let bytes = fixture("photos/DSCN0010.jpg");
    let report = check(
        &photos_only(vec![photo("p1", &bytes, None)]),
        &Context::default(),
    );
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();

    assert_eq!(json["verdict"], "needs_review");
    assert_eq!(json["photos"][0]["id"], "p1");
    assert_eq!(json["photos"][0]["decoding"]["status"], "decoded");
    assert_eq!(json["photos"][0]["dhash"].as_str().map(str::len), Some(16));
    assert_eq!(json["findings"][0]["severity"], "review");

    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn a_stored_report_reads_back_when_a_photo_has_no_camera_clock() {
    // The portrait fixture has EXIF but no DateTimeOriginal: the stored `null` must read back
    // although the photo's facts are flattened into its report.
    let bytes = fixture("photos/portrait-orientation-6.jpg");
    let report = check(
        &photos_only(vec![photo("p1", &bytes, None)]),
        &Context::default(),
    );
    let text = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn cli_checks_files_and_explains_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.jpg");
    std::fs::write(&notes, "not a photo").unwrap();

    let args = VerifyArgs {
        photos: vec![format!("{FIXTURES}/photos/DSCN0010.jpg").into(), notes],
        track: Some(format!("{FIXTURES}/tracks/gpsies-example.gpx").into()),
        site: Some((DSCN0010_LAT, DSCN0010_LON)),
        ..VerifyArgs::default()
    };
    let report = run(&args).unwrap();

    assert_eq!(report.photos[0].id, "DSCN0010.jpg");
    assert_eq!(
        report
            .with_code("photo_undecodable")
            .next()
            .unwrap()
            .item
            .as_deref(),
        Some("notes.jpg")
    );
    assert!(
        !report
            .with_code("photo_outside_site")
            .any(|f| f.item.as_deref() == Some("DSCN0010.jpg"))
    );
    assert!(report.has("track_never_on_site"));
    let device_fix = report
        .skipped
        .iter()
        .find(|s| s.check == "device_fix")
        .unwrap();
    assert_eq!(device_fix.items, ["DSCN0010.jpg", "notes.jpg"]);
    assert!(report.skipped("work_window") && report.skipped("photo_reuse"));
}

#[test]
fn cli_reports_bad_files_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("track.gpx");
    std::fs::write(&garbage, "<gpx><trk><trkseg><trkpt lat=\"x\"").unwrap();

    let missing = VerifyArgs {
        photos: vec![dir.path().join("nope.jpg")],
        ..VerifyArgs::default()
    };
    let err = format!("{:#}", run(&missing).unwrap_err());
    assert!(err.contains("nope.jpg"), "{err}");

    let bad_track = VerifyArgs {
        track: Some(garbage),
        ..VerifyArgs::default()
    };
    let err = format!("{:#}", run(&bad_track).unwrap_err());
    assert!(err.contains("as GPX"), "{err}");
}

#[test]
fn cli_reads_thresholds_from_the_server_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n\n[verification]\ndefault_radius_m = 6000.0\n",
    )
    .unwrap();

    let args = VerifyArgs {
        photos: vec![format!("{FIXTURES}/photos/DSCN0010.jpg").into()],
        site: Some((DSCN0010_LAT + 0.045, DSCN0010_LON)),
        config: Some(config),
        ..VerifyArgs::default()
    };
    let report = run(&args).unwrap();

    assert!(!report.has("photo_outside_site"), "{:#?}", report.findings);
}
