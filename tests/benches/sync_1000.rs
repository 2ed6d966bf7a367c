//! sync_1000: one device sends 1,000 evidence documents to an empty server in one sync.
//!
//! Measured: `Device::sync` over real HTTP on loopback against a real server (SQLite), after
//! the phone recorded a note and a few track points offline in each of 1,000 orders.
//!
//! Reference: the same 1,000 documents synced in process, each with a fresh server-side
//! skeleton, by `DocPeer` generate/receive loops with no network and no database. That is
//! the Automerge work any sync must do; the ratio shows what HTTP, CBOR, SQLite on both
//! sides and the protocol's bookkeeping add on top. Target: the server path reaches at
//! least half the in-process rate.
//!
//! Every `POST /api/v1/sync` of the timed sync is timed by a wrapping transport, so the
//! bench also prints where the time went: per round, time inside requests (client encode,
//! HTTP, the whole server handler) against time on the device between requests.
//!
//! Runs: `FLEXWORK_BENCH_RUNS` (default 3) fresh servers and phones; the median counts.

#[path = "../tests/e2e/support/mod.rs"]
mod support;

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use automerge::ActorId;
use common::{Row, fmt_duration, median, print_header, print_table};
use flexwork_client_core::{SyncReport, Transport, TransportError};
use flexwork_sync::{
    ContentHash, DocPeer, EvidenceDoc, MediaStatus, MessageLimits, PROTOCOL_VERSION, SyncRequest,
    SyncResponse, TrackPoint,
};
use serde_json::json;
use support::{AREZZO, Phone, TestServer, ms};

/// Documents (orders) synced in one go.
const DOCS: usize = 1_000;
/// Track points recorded in each order, in one call.
const TRACK_POINTS: usize = 3;
/// In-process reference repetitions (cheap; the median counts).
const REFERENCE_RUNS: usize = 5;
/// Target: the server path reaches this share of the in-process rate.
const TARGET_RATIO: f64 = 0.5;

fn main() {
    print_header("sync_1000");
    let runs = bench_runs();
    let mut measured = Vec::new();
    let mut last = None;
    for run in 1..=runs {
        let outcome = measure_server_path(run);
        measured.push(outcome.rate());
        last = Some(outcome);
    }
    let Some(last) = last else {
        return;
    };

    let reference = measure_reference(&last.docs);
    print_results(&measured, &reference);
    print_breakdown(&last);
}

fn bench_runs() -> usize {
    std::env::var("FLEXWORK_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// What one timed sync did, and the documents it sent (for the reference).
struct ServerRun {
    elapsed: Duration,
    report: SyncReport,
    calls: Vec<Call>,
    /// One empty `POST /sync` after convergence: the fixed cost of a request.
    empty_request: Duration,
    resync: Resync,
    docs: Vec<EvidenceDoc>,
}

impl ServerRun {
    fn rate(&self) -> f64 {
        DOCS as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sets up a server and a phone holding 1,000 unsynced documents, then times one sync.
fn measure_server_path(run: usize) -> ServerRun {
    let server = TestServer::start();
    let mut phone = Phone::new();
    let orders = assign_orders(&server, &mut phone);
    record_offline(&mut phone, &orders);
    let docs = in_memory_copies(&phone, &orders);

    let transport = TimedTransport::new(phone.device.transport().expect("transport"));
    let start = Instant::now();
    let report = phone.device.sync(&transport).expect("timed sync");
    let elapsed = start.elapsed();
    assert!(
        report.converged,
        "the timed sync did not converge: {report:?}"
    );
    assert_eq!(
        stored_docs(&server),
        DOCS as i64,
        "every document should be stored"
    );

    let calls = transport.take_calls();
    let empty_request = time_empty_request(&phone);
    let resync = time_resync(&mut phone);
    println!(
        "run {run}: {DOCS} docs in {} ({:.0} docs/s), {} rounds, {} requests",
        fmt_duration(elapsed),
        DOCS as f64 / elapsed.as_secs_f64(),
        report.rounds,
        report.requests
    );
    ServerRun {
        elapsed,
        report,
        calls,
        empty_request,
        resync,
        docs,
    }
}

/// Evidence documents the server holds.
fn stored_docs(server: &TestServer) -> i64 {
    use sqlx::Row;
    let query = sqlx::query("SELECT COUNT(*) AS n FROM evidence_docs");
    let row = server
        .block_on(query.fetch_one(&server.state().db.pool))
        .expect("counting documents");
    row.try_get("n").expect("a count")
}

/// Creates a worker with `DOCS` orders, one per task (a worker takes a task once); the
/// phone logs in and learns them.
fn assign_orders(server: &TestServer, phone: &mut Phone) -> Vec<String> {
    let scene = server.scene("bench", &AREZZO);
    for _ in 1..DOCS {
        let (status, task) = scene.enterprise.post("/tasks", support::task_body(&AREZZO));
        assert_eq!(status, 200, "{task}");
        let path = format!("/tasks/{}/orders", task["id"].as_str().expect("task id"));
        let body = json!({ "worker_login": scene.worker_login });
        let (status, order) = scene.enterprise.post(&path, body);
        assert_eq!(status, 200, "{order}");
    }

    phone.login(server, &scene.worker_login);
    let report = phone.sync();
    assert_eq!(report.orders, DOCS, "the phone should learn every order");
    let orders = phone.device.orders().expect("orders");
    orders.into_iter().map(|o| o.summary.order_id).collect()
}

/// Offline, in each order: one note and one call appending a few track points.
fn record_offline(phone: &mut Phone, orders: &[String]) {
    let start = ms("2008-10-23T13:00:00Z");
    for (i, order_id) in orders.iter().enumerate() {
        let at = start + i as i64 * 1_000;
        let text = format!("arrived at the shop front, visit {i}");
        phone.device.add_note(order_id, &text, at).expect("note");
        let points = track(at);
        phone
            .device
            .append_track_points(order_id, &points)
            .expect("track");
    }
}

/// A short walk near the Arezzo site, one point every five seconds from `at`.
fn track(at: i64) -> Vec<TrackPoint> {
    (0..TRACK_POINTS)
        .map(|i| TrackPoint {
            lat: AREZZO.lat + i as f64 * 1e-5,
            lon: AREZZO.lon,
            at_ms: Some(at + i as i64 * 5_000),
            accuracy_m: Some(6.0),
            elevation_m: None,
        })
        .collect()
}

/// In-memory documents with exactly what the device recorded, by the device's actor.
fn in_memory_copies(phone: &Phone, orders: &[String]) -> Vec<EvidenceDoc> {
    let actor = ActorId::from(phone.device.device_id().as_bytes().to_vec());
    orders
        .iter()
        .map(|order_id| {
            let evidence = phone.device.evidence(order_id).expect("evidence");
            let mut doc = EvidenceDoc::new(order_id, actor.clone()).expect("skeleton");
            for note in &evidence.notes {
                doc.add_note(note, note.at_ms).expect("note");
            }
            doc.append_track(&evidence.track, 1).expect("track");
            doc
        })
        .collect()
}

/// Times `POST /sync` requests carrying no document: the fixed cost of every request
/// (authentication, the worker's order summaries, wanted media). Median of five.
fn time_empty_request(phone: &Phone) -> Duration {
    let transport = phone.device.transport().expect("transport");
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: phone.device.device_id().to_owned(),
        docs: Vec::new(),
        want_orders: true,
    };
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let response = transport.sync(&request).expect("empty request");
            assert_eq!(response.orders.len(), DOCS, "every order is listed");
            start.elapsed().as_secs_f64()
        })
        .collect();
    Duration::from_secs_f64(median(&times))
}

/// A second sync right after the timed one, with nothing new on either side.
fn time_resync(phone: &mut Phone) -> Resync {
    let transport = TimedTransport::new(phone.device.transport().expect("transport"));
    let start = Instant::now();
    let report = phone.device.sync(&transport).expect("second sync");
    Resync {
        elapsed: start.elapsed(),
        docs_sent: report.docs_sent,
        requests: report.requests,
    }
}

/// What a sync with nothing new costs.
struct Resync {
    elapsed: Duration,
    docs_sent: usize,
    requests: usize,
}

/// The in-process rate: each document against a fresh server skeleton, no I/O.
struct Reference {
    rates: Vec<f64>,
    messages_per_doc: f64,
}

fn measure_reference(docs: &[EvidenceDoc]) -> Reference {
    let server_actor = ActorId::from(vec![0x5e; 16]);
    let limits = MessageLimits::default();
    let mut rates = Vec::new();
    let mut messages = 0;
    for _ in 0..REFERENCE_RUNS {
        let mut phones = docs.to_vec();
        let start = Instant::now();
        messages = 0;
        for phone in &mut phones {
            let order_id = phone.read().expect("read").order_id;
            let mut server = EvidenceDoc::new(&order_id, server_actor.clone()).expect("skeleton");
            messages += converge(phone, &mut server, &limits);
        }
        rates.push(docs.len() as f64 / start.elapsed().as_secs_f64());
    }
    Reference {
        rates,
        messages_per_doc: messages as f64 / docs.len() as f64,
    }
}

/// Exchanges sync messages until both sides are quiet; returns the messages sent.
fn converge(phone: &mut EvidenceDoc, server: &mut EvidenceDoc, limits: &MessageLimits) -> usize {
    let (mut phone_peer, mut server_peer) = (DocPeer::new(), DocPeer::new());
    let mut sent = 0;
    loop {
        let to_server = phone_peer.generate(phone.automerge());
        let to_phone = server_peer.generate(server.automerge());
        if to_server.is_none() && to_phone.is_none() {
            return sent;
        }
        if let Some(bytes) = to_server {
            server_peer
                .receive(server.automerge(), &bytes, limits)
                .expect("server receives");
            sent += 1;
        }
        if let Some(bytes) = to_phone {
            phone_peer
                .receive(phone.automerge(), &bytes, limits)
                .expect("phone receives");
            sent += 1;
        }
    }
}

fn print_results(measured: &[f64], reference: &Reference) {
    let rate = median(measured);
    let reference_rate = median(&reference.rates);
    let ratio = rate / reference_rate;
    println!();
    print_table(&[Row {
        figure: format!("sync of {DOCS} docs (median of {} runs)", measured.len()),
        value: format!("{rate:.0} docs/s"),
        reference: format!("{reference_rate:.0} docs/s in process"),
        ratio: format!("{ratio:.3}"),
        target: format!("≥ {TARGET_RATIO}"),
        met: Some(ratio >= TARGET_RATIO),
    }]);
    let runs: Vec<String> = measured.iter().map(|r| format!("{r:.0}")).collect();
    let refs: Vec<String> = reference.rates.iter().map(|r| format!("{r:.0}")).collect();
    println!("server path runs (docs/s): {}", runs.join(", "));
    println!("reference runs (docs/s):   {}", refs.join(", "));
    println!(
        "reference messages per doc: {:.1} (both directions)",
        reference.messages_per_doc
    );
}

/// Where the time of the last timed sync went, round by round.
fn print_breakdown(run: &ServerRun) {
    let in_requests: Duration = run.calls.iter().map(|c| c.elapsed).sum();
    let on_device = run.elapsed.saturating_sub(in_requests);
    let per_request_fixed = run.empty_request * run.calls.len() as u32;
    let doc_work = in_requests.saturating_sub(per_request_fixed);
    let sent = run.report.docs_sent.max(1) as u32;

    println!(
        "\nbreakdown of the last run ({}, {} rounds):",
        fmt_duration(run.elapsed),
        run.report.rounds
    );
    println!("| request | docs sent | docs back | time |");
    println!("| --- | --- | --- | --- |");
    for (i, call) in run.calls.iter().enumerate() {
        let (sent, back) = (call.docs_sent, call.docs_back);
        println!(
            "| {} | {sent} | {back} | {} |",
            i + 1,
            fmt_duration(call.elapsed)
        );
    }
    println!();
    println!(
        "inside POST /sync (HTTP + server): {}",
        fmt_duration(in_requests)
    );
    println!(
        "on the device between requests:   {}",
        fmt_duration(on_device)
    );
    println!(
        "fixed cost of one request (no document sent, {DOCS} order summaries back): {}",
        fmt_duration(run.empty_request)
    );
    println!(
        "  × {} requests = {}; the rest, per document message sent: {}",
        run.calls.len(),
        fmt_duration(per_request_fixed),
        fmt_duration(doc_work / sent)
    );
    println!(
        "a second sync with nothing new: {} in {} requests, {} document messages sent",
        fmt_duration(run.resync.elapsed),
        run.resync.requests,
        run.resync.docs_sent
    );
}

/// One `POST /api/v1/sync` as seen from the device.
#[derive(Debug, Clone)]
struct Call {
    elapsed: Duration,
    docs_sent: usize,
    docs_back: usize,
}

/// The device's HTTP transport, timing each sync request.
struct TimedTransport<T> {
    inner: T,
    calls: RefCell<Vec<Call>>,
}

impl<T: Transport> TimedTransport<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            calls: RefCell::new(Vec::new()),
        }
    }

    fn take_calls(&self) -> Vec<Call> {
        self.calls.take()
    }
}

impl<T: Transport> Transport for TimedTransport<T> {
    fn sync(&self, request: &SyncRequest) -> Result<SyncResponse, TransportError> {
        let start = Instant::now();
        let response = self.inner.sync(request)?;
        self.calls.borrow_mut().push(Call {
            elapsed: start.elapsed(),
            docs_sent: request.docs.len(),
            docs_back: response.docs.len(),
        });
        Ok(response)
    }

    fn media_status(&self, hash: &ContentHash) -> Result<MediaStatus, TransportError> {
        self.inner.media_status(hash)
    }

    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        media_type: &str,
        chunk: &[u8],
    ) -> Result<MediaStatus, TransportError> {
        self.inner
            .upload_chunk(hash, offset, total, media_type, chunk)
    }
}
