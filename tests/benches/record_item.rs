//! record_item: the latency of recording one evidence item on the phone.
//!
//! Measured: `Device::add_note`, and `Device::append_track_points` with one point, on a store
//! that already holds orders and items. Each call is one SQLite transaction that loads the
//! order's Automerge document, appends a change, stores the change chunk and an item row.
//!
//! Reference: a bare rusqlite insert of a comparable row (item columns plus a change-sized
//! blob) in its own immediate transaction, into a WAL database opened with the device's
//! pragmas (`busy_timeout` 10 s, `journal_mode=WAL`, `synchronous=FULL`, `foreign_keys=ON`).
//! Both pay one WAL commit with its fsync; the ratio shows what the document work adds.
//! Device calls and bare inserts alternate so both see the same disk.
//!
//! Targets: p99 under 1 ms, and a p99 within 2× of the bare insert's.
//!
//! Context, not a reference: the same bare insert with `synchronous=NORMAL`, where a WAL
//! commit does not wait for the disk, shows how much of each figure is the fsync; and the
//! in-memory document work of one call (load a snapshot and chunks, append a note, encode
//! the change) on a document of the size the orders reach, shows how much is Automerge.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use automerge::ActorId;
use common::{Row, fmt_duration, print_header, print_table, quantile};
use flexwork_client_core::{Device, NoteRecord, OrderSummary, TrackPoint};
use flexwork_sync::EvidenceDoc;
use rusqlite::{Connection, TransactionBehavior, params};

/// Orders on the store; calls go round-robin over them.
const ORDERS: usize = 10;
/// Items recorded in each order before measuring.
const EXISTING_ITEMS: usize = 50;
/// Untimed calls before measuring, of each kind.
const WARM_UP: usize = 100;
/// Timed calls of each kind.
const CALLS: usize = 2_000;
/// Bytes of the blob in the bare row: about one note's Automerge change.
const CHANGE_BYTES: usize = 200;
/// Target: p99 under this.
const TARGET_P99: Duration = Duration::from_millis(1);
/// Target: p99 at most this many times the bare insert's.
const TARGET_RATIO: f64 = 2.0;

fn main() {
    print_header("record_item");
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut device = Device::open(&dir.path().join("device")).expect("device store");
    let orders = seed_device(&mut device);
    let mut bare = BareStore::open(&dir.path().join("bare.sqlite"), "FULL");
    let mut unsynced = BareStore::open(&dir.path().join("unsynced.sqlite"), "NORMAL");
    bare.seed(ORDERS * EXISTING_ITEMS);
    unsynced.seed(ORDERS * EXISTING_ITEMS);

    let [mut notes, mut tracks, mut inserts, mut unsynced_inserts] = [(); 4].map(|_| Vec::new());
    for i in 0..WARM_UP + CALLS {
        let order_id = &orders[i % ORDERS];
        let note = time(|| record_note(&mut device, order_id, i));
        let point = time(|| record_point(&mut device, order_id, i));
        let insert = time(|| bare.insert(order_id, i));
        let unsynced_insert = time(|| unsynced.insert(order_id, i));
        if i >= WARM_UP {
            notes.push(note);
            tracks.push(point);
            inserts.push(insert);
            unsynced_inserts.push(unsynced_insert);
        }
    }

    println!("{CALLS} timed calls of each kind after {WARM_UP} untimed ones;");
    println!("{ORDERS} orders with {EXISTING_ITEMS} items each before the first call.\n");
    let bare = Stats::of(inserts);
    let mut rows = Vec::new();
    rows.extend(rows_for("add_note", &Stats::of(notes), &bare));
    rows.extend(rows_for(
        "append_track_points (1 point)",
        &Stats::of(tracks),
        &bare,
    ));
    rows.extend(fsync_rows(&Stats::of(unsynced_inserts), &bare));
    rows.push(document_work_row(&bare));
    print_table(&rows);
}

/// Times one call.
fn time(call: impl FnOnce()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

/// Gives the device its orders and their existing items (notes and track points).
fn seed_device(device: &mut Device) -> Vec<String> {
    let orders: Vec<String> = (0..ORDERS).map(|i| format!("order-{i:03}")).collect();
    let summaries: Vec<OrderSummary> = orders.iter().map(|id| summary(id)).collect();
    device.remember_orders(&summaries).expect("orders");
    for i in 0..ORDERS * EXISTING_ITEMS {
        let order_id = &orders[i % ORDERS];
        if i % 2 == 0 {
            record_note(device, order_id, i);
        } else {
            record_point(device, order_id, i);
        }
    }
    orders
}

fn summary(order_id: &str) -> OrderSummary {
    let value = serde_json::json!({
        "order_id": order_id, "task_id": "task-1", "title": "Check the shop front",
        "description": "Photograph the entrance",
        "site": { "lat": 43.467448, "lon": 11.885127, "radius_m": 150.0 },
        "window": { "from_ms": 0, "to_ms": 4_102_444_800_000_i64 },
        "fee_fen": 300_000,
        "requirements": { "min_photos": 1, "track": true, "signature": false },
        "status": "assigned", "verdict": null
    });
    serde_json::from_value(value).expect("an order summary")
}

fn record_note(device: &mut Device, order_id: &str, i: usize) {
    let text = format!("gate {i} was locked, used the side door");
    device
        .add_note(order_id, &text, 1_700_000_000_000 + i as i64)
        .expect("note");
}

fn record_point(device: &mut Device, order_id: &str, i: usize) {
    let point = TrackPoint {
        lat: 43.467448 + i as f64 * 1e-6,
        lon: 11.885127,
        at_ms: Some(1_700_000_000_000 + i as i64 * 1_000),
        accuracy_m: Some(5.0),
        elevation_m: None,
    };
    device
        .append_track_points(order_id, &[point])
        .expect("track point");
}

/// A database like the device's with one items-like table and nothing else.
struct BareStore {
    conn: Connection,
    blob: Vec<u8>,
}

impl BareStore {
    /// Opens with the pragmas of client-core's `db::open` (`synchronous` is `FULL` there).
    fn open(path: &Path, synchronous: &str) -> Self {
        let conn = Connection::open(path).expect("bare database");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("journal mode");
        assert!(mode.eq_ignore_ascii_case("wal"), "journal mode is {mode}");
        conn.pragma_update(None, "synchronous", synchronous)
            .expect("synchronous");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        conn.execute_batch(BARE_SCHEMA).expect("bare schema");
        Self {
            conn,
            blob: vec![0xa5; CHANGE_BYTES],
        }
    }

    fn seed(&mut self, rows: usize) {
        for i in 0..rows {
            self.insert("seed", usize::MAX - i);
        }
    }

    /// One row in one immediate transaction, as the device commits each item.
    fn insert(&mut self, order_id: &str, i: usize) {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("transaction");
        tx.prepare_cached(BARE_INSERT)
            .expect("statement")
            .execute(params![format!("item-{i}"), order_id, self.blob, 1_i64])
            .expect("insert");
        tx.commit().expect("commit");
    }
}

const BARE_SCHEMA: &str = "
CREATE TABLE items (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    order_id       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    change         BLOB NOT NULL,
    points         INTEGER,
    state          TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX items_by_order ON items (order_id, seq);
";

const BARE_INSERT: &str = "INSERT INTO items (id, order_id, kind, change, points, state, \
                           recorded_at_ms) VALUES (?1, ?2, 'note', ?3, ?4, 'queued', 0)";

/// Latency quantiles of a set of calls.
struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self {
            p50: quantile(&samples, 0.50),
            p99: quantile(&samples, 0.99),
            max: quantile(&samples, 1.0),
        }
    }
}

/// p50, p99 and max of one kind of call against the bare insert; p99 carries the absolute
/// target, a row of its own the relative one.
fn rows_for(name: &str, calls: &Stats, bare: &Stats) -> Vec<Row> {
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let p99_ratio = ratio(calls.p99, bare.p99);
    let row = |figure: &str, value: Duration, reference: Duration| Row {
        figure: format!("{name} {figure}"),
        value: fmt_duration(value),
        reference: format!("{} (bare insert)", fmt_duration(reference)),
        ratio: format!("{:.2}", ratio(value, reference)),
        target: String::new(),
        met: None,
    };
    let relative = Row {
        figure: format!("{name} p99 ÷ bare p99"),
        value: format!("{p99_ratio:.2}"),
        reference: "1.00".to_owned(),
        ratio: format!("{p99_ratio:.2}"),
        target: format!("≤ {TARGET_RATIO}"),
        met: Some(p99_ratio <= TARGET_RATIO),
    };
    vec![
        row("p50", calls.p50, bare.p50),
        Row {
            target: format!("< {}", fmt_duration(TARGET_P99)),
            met: Some(calls.p99 < TARGET_P99),
            ..row("p99", calls.p99, bare.p99)
        },
        relative,
        row("max", calls.max, bare.max),
    ]
}

/// The bare insert without an fsync per commit, against the one with it.
fn fsync_rows(unsynced: &Stats, bare: &Stats) -> Vec<Row> {
    let row = |figure: &str, value: Duration, reference: Duration| Row {
        value: fmt_duration(value),
        ratio: format!("{:.2}", value.as_secs_f64() / reference.as_secs_f64()),
        ..Row::info(
            &format!("context: bare insert, synchronous=NORMAL, {figure}"),
            String::new(),
            format!("{} (bare insert, FULL)", fmt_duration(reference)),
        )
    };
    vec![
        row("p50", unsynced.p50, bare.p50),
        row("p99", unsynced.p99, bare.p99),
    ]
}

/// Items in each order by the end of the timed calls.
const FINAL_ITEMS: usize = EXISTING_ITEMS + 2 * (WARM_UP + CALLS) / ORDERS;
/// Change chunks stored beside the snapshot on average (compaction folds them at 64).
const AVERAGE_CHUNKS: usize = 32;

/// The Automerge part of one recording, in memory: what `record` does besides SQLite.
fn document_work_row(bare: &Stats) -> Row {
    let (snapshot, chunks) = stored_document();
    let mut samples = Vec::new();
    for i in 0..CALLS {
        samples.push(time(|| append_to_stored(&snapshot, &chunks, i)));
    }
    let work = Stats::of(samples);
    Row {
        value: fmt_duration(work.p50),
        ratio: format!("{:.2}", work.p50.as_secs_f64() / bare.p50.as_secs_f64()),
        ..Row::info(
            &format!("context: document work in memory ({FINAL_ITEMS} items), p50"),
            String::new(),
            format!("{} (bare insert, FULL)", fmt_duration(bare.p50)),
        )
    }
}

/// A snapshot of `FINAL_ITEMS` items, and `AVERAGE_CHUNKS` one-item changes after it.
fn stored_document() -> (Vec<u8>, Vec<u8>) {
    let mut doc = EvidenceDoc::new("order-000", actor()).expect("skeleton");
    for i in 0..FINAL_ITEMS - AVERAGE_CHUNKS {
        doc.add_note(&note(i), 0).expect("note");
    }
    let snapshot = doc.save();
    let heads = doc.automerge().get_heads();
    for i in 0..AVERAGE_CHUNKS {
        doc.add_note(&note(FINAL_ITEMS + i), 0).expect("note");
    }
    let chunks = doc.automerge().save_after(&heads);
    (snapshot, chunks)
}

/// Loads the stored document, appends a note and encodes the new change.
fn append_to_stored(snapshot: &[u8], chunks: &[u8], i: usize) {
    let mut doc = EvidenceDoc::load(snapshot, actor()).expect("snapshot");
    doc.automerge().load_incremental(chunks).expect("chunks");
    let heads = doc.automerge().get_heads();
    doc.add_note(&note(i), 0).expect("note");
    black_box(doc.automerge().save_after(&heads));
}

fn note(i: usize) -> NoteRecord {
    NoteRecord {
        id: format!("note-{i:08}-0000-0000-0000-000000000000"),
        text: format!("gate {i} was locked, used the side door"),
        at_ms: 1_700_000_000_000 + i as i64,
    }
}

fn actor() -> ActorId {
    ActorId::from(vec![0xd1; 16])
}
