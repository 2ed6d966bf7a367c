//! verify_photo: the server's verification of one photo, against decoding it alone.
//!
//! Measured: `flexwork_server::verify::verify` on evidence of one real camera photo
//! (DSCN0010.jpg, 640×480 JPEG with EXIF GPS) with the phone's fix, checked against a site
//! and a work window with the default thresholds. Verification reads the header, walks the
//! JPEG markers, parses EXIF, hashes the bytes (SHA-256), decodes the pixels under limits and
//! computes a difference hash, then runs the geofence, window and clock checks.
//!
//! Reference: `image::load_from_memory` of the same bytes, the pixel decode that any photo
//! check must pay at least once. The ratio is what everything else in verification costs on
//! top. Target: within 1.5× of the decode.
//!
//! Timing is criterion's (mean of its samples); the table is read back from criterion's
//! `estimates.json` once both benchmarks ran.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};

use common::{Row, print_header, print_table};
use criterion::Criterion;
use flexwork_server::verify::{
    Context, DeviceFix, Evidence, PhotoInput, Site, Thresholds, Window, verify,
};
use time::macros::datetime;

const PHOTO: &str = "photos/DSCN0010.jpg";
const GROUP: &str = "verify_photo";
const MEASURED: &str = "verify";
const REFERENCE: &str = "decode_only";
/// Target: verification takes at most this many times the decode.
const TARGET_RATIO: f64 = 1.5;

fn main() {
    print_header(GROUP);
    let bytes = photo_bytes();
    let output = criterion_dir();
    let mut criterion = Criterion::default()
        .output_directory(&output)
        .configure_from_args();

    run_benchmarks(&mut criterion, &bytes);
    criterion.final_summary();
    report(&output);
}

fn photo_bytes() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(PHOTO);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Where criterion keeps its estimates: `CRITERION_HOME`, else `target/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("criterion")
}

fn run_benchmarks(criterion: &mut Criterion, bytes: &[u8]) {
    let evidence = evidence(bytes);
    let context = arezzo_context();
    let thresholds = Thresholds::default();

    let mut group = criterion.benchmark_group(GROUP);
    group.bench_function(MEASURED, |b| {
        b.iter(|| verify(black_box(&evidence), &context, &[], &thresholds))
    });
    group.bench_function(REFERENCE, |b| {
        b.iter(|| image::load_from_memory(black_box(bytes)).expect("the fixture decodes"))
    });
    group.finish();
}

/// One photo with the fix a phone standing where it was taken would attach.
fn evidence(bytes: &[u8]) -> Evidence<'_> {
    let fix = DeviceFix {
        lat: 43.467448,
        lon: 11.885127,
        accuracy_m: 8.0,
        at: datetime!(2008-10-23 14:27:07 UTC),
        mock: false,
    };
    let photo = PhotoInput {
        id: "DSCN0010.jpg".to_owned(),
        bytes,
        fix: Some(fix),
    };
    Evidence {
        photos: vec![photo],
        ..Evidence::default()
    }
}

/// The Arezzo shop front of the scenarios: 150 m around the photo, 12:00 to 18:00 UTC.
fn arezzo_context() -> Context {
    Context {
        site: Some(Site {
            lat: 43.467448,
            lon: 11.885127,
            radius_m: 150.0,
        }),
        window: Some(Window {
            from: datetime!(2008-10-23 12:00 UTC),
            to: datetime!(2008-10-23 18:00 UTC),
        }),
        requirements: None,
    }
}

/// Reads both means back from criterion and prints the table.
fn report(output: &Path) {
    let (Some(measured), Some(reference)) = (mean_ns(output, MEASURED), mean_ns(output, REFERENCE))
    else {
        println!(
            "no estimates under {} (was a filter given?)",
            output.display()
        );
        return;
    };
    let ratio = measured / reference;
    println!();
    print_table(&[Row {
        figure: "verify, one photo (mean)".to_owned(),
        value: format!("{:.2} ms", measured / 1e6),
        reference: format!("{:.2} ms (image::load_from_memory)", reference / 1e6),
        ratio: format!("{ratio:.2}"),
        target: format!("≤ {TARGET_RATIO}"),
        met: Some(ratio <= TARGET_RATIO),
    }]);
}

/// Criterion's mean estimate of one benchmark of the group, in nanoseconds.
fn mean_ns(output: &Path, function: &str) -> Option<f64> {
    let path = output.join(GROUP).join(function).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}
