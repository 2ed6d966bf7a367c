//! The calls the bindings are measured on, made directly in Rust on client-core: opening a
//! store that holds 1,000 orders, recording one photo (DSCN0010.jpg, 161 KB), and the memory
//! the core holds with those orders listed. `mobile/benches/bindings.py` makes the same calls
//! through the generated Python bindings; `scripts/bindings-bench` runs both and prints the
//! comparison. Writes its figures as JSON to `$FLEXWORK_BENCH_OUT/rust.json` and leaves the
//! store with 1,000 orders in `$FLEXWORK_BENCH_OUT/store` for the Python side. Each side
//! records into an order of its own, so each starts from an empty evidence document (recording
//! gets slower as a document grows).
//!
//! `cargo bench -p flexwork-mobile --bench bindings` (release profile).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use flexwork_client_core::{Device, Fix, OrderSummary};
use flexwork_mobile::{LocationFix, Phone};

/// Orders in the store.
const ORDERS: usize = 1_000;
/// Timed repetitions of each call; the median is reported.
const RUNS: usize = 200;

fn main() {
    let out = std::env::var_os("FLEXWORK_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bindings-bench"));
    let store = out.join("store");
    if std::env::var_os("FLEXWORK_BENCH_MEMORY").is_some() {
        return memory(&store, &out);
    }
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&out).unwrap();
    let photo = std::fs::read(fixtures().join("photos/DSCN0010.jpg")).expect("fixture photo");

    drop(prepare(&store));

    let mut device = Device::open(&store).unwrap();
    let mut at = 1_224_772_027_000_i64;
    let record_us = median_us(RUNS, || {
        at += 1_000;
        let fix = Fix {
            lat: 43.467448,
            lon: 11.885127,
            accuracy_m: 8.0,
            at_ms: at,
            mock: false,
        };
        let record = device
            .record_photo("order-0001", &photo, "image/jpeg", Some(fix), at)
            .unwrap();
        std::hint::black_box(record);
    });

    // From the file the camera wrote, as apps do (`Phone::record_photo_file`): read, sniff,
    // record.
    let path = fixtures().join("photos/DSCN0010.jpg");
    let record_file_us = median_us(RUNS, || {
        at += 1_000;
        let bytes = std::fs::read(&path).unwrap();
        let media_type = flexwork_mobile::photo::sniff_media_type(&bytes).unwrap();
        let fix = Fix {
            lat: 43.467448,
            lon: 11.885127,
            accuracy_m: 8.0,
            at_ms: at,
            mock: false,
        };
        let record = device
            .record_photo("order-0004", &bytes, media_type, Some(fix), at)
            .unwrap();
        std::hint::black_box(record);
    });
    drop(device);

    // The same calls on the interface's Rust side (lock, panic guard, type conversions),
    // without crossing a language boundary.
    let phone = Phone::open(store.display().to_string()).unwrap();
    let phone_record_us = median_us(RUNS, || {
        at += 1_000;
        let fix = LocationFix {
            lat: 43.467448,
            lon: 11.885127,
            accuracy_m: 8.0,
            at_ms: at,
            mock: false,
        };
        let record = phone
            .record_photo_blocking(
                "order-0002".into(),
                photo.clone().into(),
                Some("image/jpeg".into()),
                Some(fix),
                at,
            )
            .unwrap();
        std::hint::black_box(record);
    });

    drop(phone);

    // Opening last, with nothing else holding the store: the Python side opens it next, in
    // this state (the same orders, documents and photos, no other connection open).
    let open_us = median_us(RUNS, || {
        let device = Device::open(&store).unwrap();
        std::hint::black_box(device.device_id());
    });
    let phone_open_us = median_us(RUNS, || {
        let phone = Phone::open(store.display().to_string()).unwrap();
        std::hint::black_box(phone.device_id());
    });

    let figures = serde_json::json!({
        "orders": ORDERS,
        "runs": RUNS,
        "open_store_us": open_us,
        "record_photo_us": record_us,
        "record_photo_file_us": record_file_us,
        "phone_open_store_us": phone_open_us,
        "phone_record_photo_us": phone_record_us,
        "photo_bytes": photo.len(),
    });
    std::fs::write(out.join("rust.json"), figures.to_string()).unwrap();
    println!("direct Rust (client-core), median of {RUNS}:");
    println!("  open a store with {ORDERS} orders   {open_us:>9.1} µs");
    println!(
        "  record one photo ({} B)     {record_us:>9.1} µs",
        photo.len()
    );
    println!("the interface's Rust side (flexwork_mobile::Phone), median of {RUNS}:");
    println!("  open a store with {ORDERS} orders   {phone_open_us:>9.1} µs");
    println!("  record one photo                {phone_record_us:>9.1} µs");
}

/// In a fresh process: resident memory added by opening the store and listing its orders.
fn memory(store: &Path, out: &Path) {
    let before = rss_kib();
    let device = Device::open(store).unwrap();
    let open = rss_kib().saturating_sub(before);
    let listed = device.orders().unwrap();
    assert_eq!(listed.len(), ORDERS);
    let with_orders = rss_kib().saturating_sub(before);
    let figures = serde_json::json!({ "rss_open_kib": open, "rss_with_orders_kib": with_orders });
    std::fs::write(out.join("memory-rust.json"), figures.to_string()).unwrap();
    std::hint::black_box(listed);
}

/// A store holding `ORDERS` orders, as sync would leave it.
fn prepare(dir: &Path) -> Device {
    let mut device = Device::open(dir).unwrap();
    let orders: Vec<OrderSummary> = (0..ORDERS)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "order_id": format!("order-{i:04}"), "task_id": format!("task-{i:04}"),
                "title": format!("Photograph shop front number {i}"),
                "description": "Arezzo, via Roma: the entrance and the sign, in daylight",
                "site": {"lat": 43.467448, "lon": 11.885127, "radius_m": 150.0},
                "window": {"from_ms": 1_224_763_200_000_i64, "to_ms": 1_224_784_800_000_i64},
                "fee_fen": 300000,
                "requirements": {"min_photos": 1, "track": false, "signature": true},
                "status": "assigned", "verdict": null
            }))
            .unwrap()
        })
        .collect();
    device.remember_orders(&orders).unwrap();
    device
}

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Resident memory of this process, KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fixtures() -> PathBuf {
    std::env::var_os("FLEXWORK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}
