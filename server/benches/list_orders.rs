//! `GET /orders` over 1,000 and 10,000 orders: the first page now, against the list as it was
//! built before pages (every order's full view and evidence document, one order at a time).
//!
//! For each size N (default 1,000 and 10,000) a fresh server is started on loopback with N
//! orders of one enterprise (not timed): one in ten rejected, the others confirmed, each
//! with an evidence document (one note, three track points) saved through the server's own
//! [`evidence::save`], which keeps its counts, and the tables analysed. Then, timed (the
//! median of several runs):
//!
//! - **before**: what the list did before pages, in process (no HTTP, no JSON, so it is
//!   cheaper here than it was): every matching id, then each order's view
//!   ([`orders::view`]) and its document loaded and read for the summary;
//! - **page**: `GET /orders` over HTTP (the first page, 100 orders, JSON included);
//! - **rejected**: `GET /orders?status=rejected` (the first 100 of the one in ten);
//! - **walk**: every page of 100, following `X-Next-Cursor` to the end.
//!
//! Run: `cargo bench -p flexwork-server --bench list_orders [-- N ...]`. On PostgreSQL:
//! `FLEXWORK_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres` (a database is
//! created per run and dropped after).

use std::time::{Duration, Instant};

use flexwork_server::api::orders;
use flexwork_server::auth::{NewAccount, Role, Team};
use flexwork_server::config::Config;
use flexwork_server::{AppState, evidence};
use flexwork_sync::{NoteRecord, TrackPoint};
use sqlx::{Executor, Row};

const ENTERPRISE: &str = "bench-enterprise";
const WORKERS: usize = 1_000;
const RUNS: usize = 5;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    sqlx::any::install_default_drivers();
    let admin = std::env::var("FLEXWORK_BENCH_DATABASE_URL").ok();
    println!(
        "list_orders on {}: median of {RUNS} runs",
        if admin.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "{:>7} {:>12} {:>10} {:>10} {:>10}",
        "orders", "before(all)", "page", "rejected", "walk"
    );
    for n in sizes {
        let times = runtime.block_on(run(n, admin.as_deref()));
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
        println!(
            "{n:>7} {:>12} {:>10} {:>10} {:>10}",
            ms(times[0]),
            ms(times[1]),
            ms(times[2]),
            ms(times[3])
        );
    }
}

/// The median of `RUNS` timings of `f`.
async fn median<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[RUNS / 2]
}

async fn run(n: usize, admin: Option<&str>) -> [Duration; 4] {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, dropper) = match admin {
        None => (String::new(), None),
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
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: url,
        ..Config::default()
    };
    config.login.require_totp_roles.clear();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("listen");
    let base = format!("http://{}/api/v1", listener.local_addr().expect("address"));
    let state = AppState::start(config).await.expect("server state");
    seed(&state, n).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(flexwork_server::serve(state.clone(), listener, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let password = "bench-reviewer-long-password";
    let account = NewAccount {
        login: "bench-reviewer".into(),
        password: password.into(),
        role: Role::Operator,
        display_name: "bench".into(),
        teams: vec![Team::Reviewer],
        organisation_id: None,
    };
    flexwork_server::auth::create_account(&state, &account)
        .await
        .expect("reviewer");
    let session: serde_json::Value = http
        .post(format!("{base}/sessions"))
        .json(&serde_json::json!({ "login": "bench-reviewer", "password": password }))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("session");
    let token = session["token"].as_str().expect("token").to_owned();
    let get = |query: String| {
        let request = http
            .get(format!("{base}/orders{query}"))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.expect("list");
            assert_eq!(response.status(), 200);
            let cursor = response
                .headers()
                .get("x-next-cursor")
                .map(|v| v.to_str().expect("cursor").to_owned());
            let page: Vec<serde_json::Value> = response.json().await.expect("orders");
            (page.len(), cursor)
        }
    };

    let before = median(|| before(&state)).await;
    let page = median(|| async {
        assert_eq!(get(String::new()).await.0, n.min(100));
    })
    .await;
    let rejected = median(|| async {
        assert_eq!(get("?status=rejected".into()).await.0, (n / 10).min(100));
    })
    .await;
    let walk = median(|| async {
        let (mut seen, mut cursor) = get(String::new()).await;
        while let Some(next) = cursor {
            let (count, following) = get(format!("?cursor={next}")).await;
            seen += count;
            cursor = following;
        }
        assert_eq!(seen, n);
    })
    .await;

    let _ = stop.send(());
    let _ = serving.await;
    state.db.pool.close().await;
    if let Some((pool, name)) = dropper {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = pool.execute(sqlx::AssertSqlSafe(sql)).await;
    }
    [before, page, rejected, walk]
}

/// The list as it was built before pages: every order's view, and its document read for the
/// counts of the summary.
async fn before(state: &AppState) {
    let rows = sqlx::query("SELECT id FROM orders ORDER BY created_at, id")
        .fetch_all(&state.db.pool)
        .await
        .expect("ids");
    let mut photos = 0;
    for row in rows {
        let id: String = row.try_get("id").expect("id");
        let order = orders::view(state, &id).await.expect("view");
        let mut conn = state.db.pool.acquire().await.expect("connection");
        let loaded = evidence::load(&mut conn, &state.actor, &order.id)
            .await
            .expect("document");
        drop(conn);
        photos += loaded.doc.read().expect("read").photos.len();
    }
    assert_eq!(photos, 0);
}

/// One enterprise, 1,000 workers, a task per thousand orders and `n` orders with documents.
async fn seed(state: &AppState, n: usize) {
    let mut tx = state.db.pool.begin().await.expect("begin");
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
    for t in 0..n.div_ceil(WORKERS) {
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tasks (id, enterprise_id, title, description, site_lat, site_lon, \
               site_radius_m, window_from, window_to, fee_fen, min_photos, require_track, \
               require_signature, created_at) \
             VALUES ('bench-task-{t}', '{ENTERPRISE}', 'bench', '', 0, 0, 100, 0, 1, \
               30000, 1, 0, 0, 0)"
        )))
        .await
        .expect("task");
    }
    let ids: Vec<String> = (0..n).map(|i| format!("order-{i:07}")).collect();
    for (c, chunk) in ids.chunks(500).enumerate() {
        let mut sql = String::from(
            "INSERT INTO orders (id, task_id, worker_id, enterprise_id, created_at, \
               submitted_at, verdict, confirmation) VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            let k = c * 500 + i;
            let sep = if i > 0 { ", " } else { "" };
            let (task, worker) = (k / WORKERS, k % WORKERS);
            let (verdict, confirmation) = if k % 10 == 9 {
                ("rejected", "NULL")
            } else {
                ("passed", "'confirmed'")
            };
            sql.push_str(&format!(
                "{sep}('{id}', 'bench-task-{task}', 'worker-{worker}', '{ENTERPRISE}', \
                 {created}, 1, '{verdict}', {confirmation})",
                created = 1_000_000 + k
            ));
        }
        tx.execute(sqlx::AssertSqlSafe(sql)).await.expect("orders");
    }
    tx.commit().await.expect("commit");

    let mut conn = state.db.pool.acquire().await.expect("connection");
    conn.execute("BEGIN").await.expect("begin");
    for id in &ids {
        let mut loaded = evidence::open(id, &state.actor, None).expect("skeleton");
        let note = NoteRecord {
            id: "note-1".into(),
            text: "the shop was open".into(),
            at_ms: 1_000,
        };
        loaded.doc.add_note(&note, 1_000).expect("note");
        let track: Vec<TrackPoint> = (0..3)
            .map(|p| TrackPoint {
                lat: 31.23 + f64::from(p) * 1e-4,
                lon: 121.47,
                at_ms: Some(1_000 + i64::from(p)),
                accuracy_m: Some(5.0),
                elevation_m: None,
            })
            .collect();
        loaded.doc.append_track(&track, 1_000).expect("track");
        assert!(
            evidence::save(&mut conn, id, &mut loaded)
                .await
                .expect("save")
        );
    }
    conn.execute("COMMIT").await.expect("commit");
    // Statistics, as autovacuum gathers them in a live database: without them PostgreSQL
    // sorts every order after the cursor for each page of the freshly filled table.
    conn.execute("ANALYZE").await.expect("analyze");
}
