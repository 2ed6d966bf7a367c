//! Settling reconciled orders at scale, against a bulk insert of the same rows.
//!
//! For each size N (default 25,000, 50,000 and 100,000 orders) two fresh databases are
//! seeded with one enterprise, 1,000 workers, one task and N reconciled orders (not timed).
//! Then, timed:
//!
//! - **settle**: the settlement path, 1,000 orders a transaction: the tax of each payment,
//!   the settlement rows (`ON CONFLICT (order_id) DO NOTHING`, exactly once), and the
//!   ledger entries through [`ledger::post_many`] — idempotency keys, balanced postings,
//!   running balances under their `CHECK`s, escrow never negative;
//! - **bulk**: the same settlement, event and posting rows written with plain multi-row
//!   inserts (bound parameters, 500 rows a statement, as the ledger writes them) in
//!   transactions of the same size, with no idempotency, balance or check at all.
//!
//! The settle run must end with a healthy [`ledger::check`]. Prints one line per size: both
//! times, their ratio and the time per order (flat when the cost is linear).
//!
//! Run: `cargo bench -p flexwork-server --bench settle_orders [-- N ...]`. On PostgreSQL:
//! `FLEXWORK_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres` (a database is
//! created per run and dropped after).

use std::time::{Duration, Instant};

use flexwork_server::db::Db;
use flexwork_server::ledger::{self, Account, Entry};
use flexwork_server::settlement::per_payment_tax_fen;
use sqlx::Executor;

const CHUNK: usize = 1_000;
const WORKERS: usize = 1_000;
const ENTERPRISE: &str = "bench-enterprise";
const FEE_FEN: i64 = 30_000;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![25_000, 50_000, 100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    sqlx::any::install_default_drivers();
    let backend = std::env::var("FLEXWORK_BENCH_DATABASE_URL").ok();
    println!(
        "settle_orders on {}: {} orders a transaction",
        if backend.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (WAL, synchronous=FULL)"
        },
        CHUNK
    );
    println!(
        "{:>8} {:>10} {:>10} {:>6} {:>12}",
        "orders", "settle", "bulk", "ratio", "settle/order"
    );
    for n in sizes {
        let (settle, bulk) = runtime.block_on(async {
            let settle = run(n, backend.as_deref(), Mode::Settle).await;
            let bulk = run(n, backend.as_deref(), Mode::Bulk).await;
            (settle, bulk)
        });
        println!(
            "{n:>8} {:>9.2}s {:>9.2}s {:>5.2}x {:>10.1}µs",
            settle.as_secs_f64(),
            bulk.as_secs_f64(),
            settle.as_secs_f64() / bulk.as_secs_f64(),
            settle.as_secs_f64() * 1e6 / n as f64
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Settle,
    Bulk,
}

async fn run(n: usize, admin_url: Option<&str>, mode: Mode) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, dropper) = match admin_url {
        None => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.sqlite").display()
            ),
            None,
        ),
        Some(admin) => {
            let name = format!("flexwork_bench_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::AnyPool::connect(admin).await.expect("PostgreSQL");
            pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create database");
            let (base, _) = admin.rsplit_once('/').expect("url ends in /<database>");
            (format!("{base}/{name}"), Some((pool, name)))
        }
    };
    let db = Db::connect(&url).await.expect("database");
    let orders = seed(&db, n).await;

    let started = Instant::now();
    for chunk in orders.chunks(CHUNK) {
        match mode {
            Mode::Settle => settle(&db, chunk).await,
            Mode::Bulk => bulk(&db, chunk).await,
        }
    }
    let elapsed = started.elapsed();

    if mode == Mode::Settle {
        let report = ledger::check(&db.pool).await.expect("check");
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(
            report.events as usize,
            n + 1,
            "one deposit and one entry per order"
        );
    }
    db.pool.close().await;
    if let Some((pool, name)) = dropper {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = pool.execute(sqlx::AssertSqlSafe(sql)).await;
    }
    elapsed
}

/// One enterprise with escrow for every order, 1,000 workers, one task, `n` orders; answers
/// (order id, worker id).
async fn seed(db: &Db, n: usize) -> Vec<(String, String)> {
    let mut tx = db.pool.begin().await.expect("begin");
    let mut accounts = vec![(ENTERPRISE.to_owned(), "enterprise")];
    accounts.extend((0..WORKERS).map(|w| (format!("worker-{w}"), "worker")));
    for chunk in accounts.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO accounts (id, login, role, display_name, password_hash, created_at) \
             VALUES ",
        );
        for (i, (id, role)) in chunk.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            sql.push_str(&format!("{sep}('{id}', '{id}', '{role}', 'bench', 'x', 0)"));
        }
        tx.execute(sqlx::AssertSqlSafe(sql))
            .await
            .expect("accounts");
    }
    // One task per thousand orders: a worker takes a task once.
    for t in 0..n.div_ceil(WORKERS) {
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tasks (id, enterprise_id, title, description, site_lat, site_lon, \
               site_radius_m, window_from, window_to, fee_fen, min_photos, require_track, \
               require_signature, created_at) \
             VALUES ('bench-task-{t}', '{ENTERPRISE}', 'bench', '', 0, 0, 100, 0, 1, \
               {FEE_FEN}, 1, 0, 0, 0)"
        )))
        .await
        .expect("task");
    }
    let orders: Vec<(String, String)> = (0..n)
        .map(|i| (format!("order-{i:07}"), format!("worker-{}", i % WORKERS)))
        .collect();
    let task_of = |i: usize| format!("bench-task-{}", i / WORKERS);
    for (c, chunk) in orders.chunks(500).enumerate() {
        let mut sql = String::from(
            "INSERT INTO orders (id, task_id, worker_id, enterprise_id, created_at, \
               submitted_at, verdict, confirmation) VALUES ",
        );
        for (i, (id, worker)) in chunk.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            let task = task_of(c * 500 + i);
            sql.push_str(&format!(
                "{sep}('{id}', '{task}', '{worker}', '{ENTERPRISE}', 0, 1, 'passed', \
                 'confirmed')"
            ));
        }
        tx.execute(sqlx::AssertSqlSafe(sql)).await.expect("orders");
    }
    tx.commit().await.expect("commit");

    let mut tx = db.begin_write().await.expect("begin");
    let funds = FEE_FEN * n as i64;
    let deposit = Entry::new("deposit", "bench-deposit", ENTERPRISE)
        .debit(Account::Bank, funds)
        .credit(Account::Escrow(ENTERPRISE.into()), funds);
    ledger::post(&mut tx, &deposit).await.expect("deposit");
    // The accounts the settlements post to, so that the bulk rows' references hold.
    let mut sql = String::from(
        "INSERT INTO ledger_accounts (account, normal_side, created_at) \
         VALUES ('tax_payable', 'credit', 0)",
    );
    for w in 0..WORKERS {
        sql.push_str(&format!(", ('worker_payable:worker-{w}', 'credit', 0)"));
    }
    tx.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("ledger accounts");
    tx.commit().await.expect("commit");
    orders
}

fn settlement_rows(chunk: &[(String, String)]) -> (String, Vec<Entry>) {
    let tax = per_payment_tax_fen(FEE_FEN);
    let mut sql = String::from(
        "INSERT INTO settlements (id, order_id, worker_id, enterprise_id, gross_fen, tax_fen, \
           net_fen, tax_method, status, created_at) VALUES ",
    );
    let mut entries = Vec::with_capacity(chunk.len());
    for (i, (order, worker)) in chunk.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        sql.push_str(&format!(
            "{sep}('s-{order}', '{order}', '{worker}', '{ENTERPRISE}', {FEE_FEN}, {tax}, {}, \
             'per_payment_2018', 'pending_payout', 0)",
            FEE_FEN - tax
        ));
        entries.push(
            Entry::new("settlement", format!("settlement:{order}"), order.clone())
                .debit(Account::Escrow(ENTERPRISE.into()), FEE_FEN)
                .credit(Account::WorkerPayable(worker.clone()), FEE_FEN - tax)
                .credit(Account::TaxPayable, tax),
        );
    }
    (sql, entries)
}

async fn settle(db: &Db, chunk: &[(String, String)]) {
    let (mut sql, entries) = settlement_rows(chunk);
    sql.push_str(" ON CONFLICT (order_id) DO NOTHING");
    let mut tx = db.begin_write().await.expect("begin");
    tx.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("settlements");
    ledger::post_many(&mut tx, &entries).await.expect("post");
    tx.commit().await.expect("commit");
}

/// The same rows, written as multi-row inserts with bound parameters (500 rows a
/// statement, as the ledger writes them), with no idempotency, balance or check at all.
async fn bulk(db: &Db, chunk: &[(String, String)]) {
    let (sql, entries) = settlement_rows(chunk);
    let mut tx = db.pool.begin().await.expect("begin");
    tx.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("settlements");
    for part in entries.chunks(500) {
        let sql = format!(
            "INSERT INTO ledger_events (id, kind, idempotency_key, object_id, digest, \
               created_at) VALUES {}",
            placeholders(part.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in part {
            query = query
                .bind(format!("e-{}", entry.object_id))
                .bind("settlement")
                .bind(entry.key.clone())
                .bind(entry.object_id.clone())
                .bind("")
                .bind(0_i64);
        }
        query.execute(&mut *tx).await.expect("events");
    }
    let lines: Vec<(String, i64, String, i64)> = entries
        .iter()
        .flat_map(|entry| {
            entry
                .lines()
                .iter()
                .enumerate()
                .map(|(line, (account, fen))| {
                    (
                        format!("e-{}", entry.object_id),
                        line as i64,
                        account.name(),
                        *fen,
                    )
                })
        })
        .collect();
    for part in lines.chunks(500) {
        let sql = format!(
            "INSERT INTO ledger_postings (event_id, line, account, amount_fen) VALUES {}",
            placeholders(part.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (event, line, account, fen) in part {
            query = query
                .bind(event.clone())
                .bind(*line)
                .bind(account.clone())
                .bind(*fen);
        }
        query.execute(&mut *tx).await.expect("postings");
    }
    tx.commit().await.expect("commit");
}

fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
