//! A real server on a loopback port, real devices and a real HTTP client, for the scenarios.
//!
//! The server runs on its own tokio runtime in the background, so a scenario reads as plain
//! sequential code: start the server, act as the enterprise over HTTP, act as the worker's
//! phone through client-core. `FLEXWORK_TEST_DATABASE_URL=postgres://…` runs every scenario
//! on a fresh PostgreSQL database instead of a SQLite file.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flexwork_server::auth::{NewAccount, Role, Team};
use flexwork_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The shared fixtures of real photos and tracks.
/// A client with no account, as an applicant is.
pub fn anonymous_client(server: &TestServer) -> Client {
    Client {
        http: reqwest::blocking::Client::new(),
        base: server.url(),
        token: String::new(),
        device: None,
    }
}

/// Submits a valid worker application under `login` with `id_number`, signed now over the
/// server's declaration; returns the application's id.
pub fn apply_as_worker(server: &TestServer, login: &str, id_number: &str) -> String {
    let public = anonymous_client(server);
    let (_, notice) = public.get("/privacy/notice");
    let (_, declaration) = public.get("/onboarding/declaration");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({
        "login": login, "password": password_of(login),
        "name": "王小明", "id_number": id_number, "bank_card": "6228480402564890018",
        "phone": "13812345678", "trade": "shop-front photography",
        "declarations": {
            "not_manager_of_hiring_enterprise": true, "not_civil_servant": true,
            "benefits_notice_acknowledged": true,
        },
        "signature": {
            "strokes": [[[10.0, 10.0, 0.0], [40.0, 12.0, 80.0]]],
            "signed_text_sha256": declaration["sha256"],
            "signed_at": now,
        },
        "consent": { "notice_version": notice["version"], "accepted": true },
    });
    let (status, submitted) = public.post("/onboarding/workers", body);
    assert_eq!(status, 200, "{submitted}");
    submitted["id"].as_str().unwrap().to_owned()
}

/// Waits until the real-name check of a pending worker application has answered, as a
/// reviewer watching the queue would, and returns its result.
pub fn wait_real_name(reviewer: &Client, application_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, queue) = reviewer.get("/onboarding/workers?state=pending");
        assert_eq!(status, 200, "{queue}");
        let verdict = queue
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == application_id)
            .map(|a| {
                a["automated"]["real_name_verification"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .expect("the application is pending");
        if !verdict.starts_with("pending") {
            return verdict;
        }
        assert!(
            Instant::now() < deadline,
            "no real-name answer for {application_id}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(path)
}

pub fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap_or_else(|e| panic!("reading fixture {path}: {e}"))
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A running server and what it needs to be restarted on the same data and port.
pub struct TestServer {
    runtime: Runtime,
    pub state: Option<AppState>,
    pub addr: SocketAddr,
    shutdown: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    config: Config,
    database: Option<TestDatabase>,
    _data: tempfile::TempDir,
}

/// An account's authenticator, as the test plays it.
struct SecondFactor {
    secret: String,
    last_step: u64,
    recovery: Vec<String>,
}

/// Every account's authenticator, by server address and login.
static SECOND_FACTORS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, SecondFactor>>> =
    std::sync::LazyLock::new(Default::default);

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every log line the servers of this test binary wrote, at debug level and above, for
/// tests that check nothing personal is logged.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: std::sync::LazyLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
    std::sync::LazyLock::new(Default::default);

/// Log lines of this test binary that held a personal number in the clear.
static LEAKED: std::sync::LazyLock<std::sync::Mutex<Vec<String>>> =
    std::sync::LazyLock::new(Default::default);

/// Every unmasked ID number, bank card number or mobile number in `text`: runs of digits
/// standing alone (not part of a longer word, hash or id) that are an 18-character ID
/// number with a valid check character, a 16–19 digit card number of the usual issuer
/// ranges (3–6) with a valid Luhn digit, or an 11-digit mainland mobile number. Masked values
/// hold `*` and never match, nor do the decimals of a number such as a coordinate. Every
/// answer of [`Client`] and every log line of the servers of the whole suite goes through this.
pub fn personal_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        // An ID number may end in X.
        if i - start == 17 && i < chars.len() && matches!(chars[i], 'X' | 'x') {
            i += 1;
        }
        if i < chars.len() && chars[i].is_ascii_alphanumeric() {
            continue;
        }
        // The fraction of a decimal number (a coordinate, say) is not a number of its own.
        let fraction = start >= 2 && chars[start - 1] == '.' && chars[start - 2].is_ascii_digit();
        let run: String = chars[start..i].iter().collect();
        let personal = !fraction
            && match run.len() {
                18 => id_check_ok(&run),
                11 => run.starts_with('1') && matches!(run.as_bytes()[1], b'3'..=b'9'),
                16..=19 => matches!(run.as_bytes()[0], b'3'..=b'6') && luhn_ok(&run),
                _ => false,
            };
        if personal {
            found.push(run);
        }
    }
    found
}

fn id_check_ok(id: &str) -> bool {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let digits: Vec<u32> = id[..17].chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 17 {
        return false;
    }
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    id[17..].eq_ignore_ascii_case(&check.to_string())
}

fn luhn_ok(number: &str) -> bool {
    let sum: u32 = number
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Fails if any log line written so far held a personal number in the clear.
pub fn assert_no_leaks_in_logs() {
    let leaked = LEAKED.lock().unwrap();
    assert!(
        leaked.is_empty(),
        "personal numbers in the clear:\n{}",
        leaked.join("\n")
    );
}

#[derive(Clone)]
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The servers write from their own threads, where a panic would not fail the test:
        // leaks are kept and reported when the test's server is dropped.
        let line = String::from_utf8_lossy(buf);
        let found = personal_numbers(&line);
        if !found.is_empty() {
            LEAKED.lock().unwrap().push(format!("log line: {line}"));
        }
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the servers' logs to [`captured_logs`] (once per test binary).
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=warn,h2=warn,aws=warn,tower=warn")
            .with_writer(|| LogSink)
            .with_ansi(false)
            .try_init();
    });
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A PostgreSQL database made for one test, dropped after it.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestServer {
    /// Starts a server on a fresh database and data folder.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts with a changed configuration (limits, thresholds).
    pub fn start_with(change: impl FnOnce(&mut Config)) -> Self {
        capture_logs();
        let runtime = runtime();
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        let database = runtime.block_on(fresh_database());
        config.database_url = database.as_ref().map(|d| d.url.clone()).unwrap_or_default();
        config.media = runtime.block_on(media_from_env());
        // The payment sandbox pays every payout at once and keeps its books in the data
        // folder: scenarios that are not about payment failures need a payout to be paid.
        // The payout scenarios and the money simulation set their own failure rates.
        config.payments.sandbox = flexwork_server::payments::SandboxConfig {
            latency_ms: (1, 5),
            timeout_ms: 5_000,
            timeout_rate: 0.0,
            reject_rate: 0.0,
            async_rate: 0.0,
            duplicate_callback_rate: 0.0,
            deliver_callbacks: true,
            script: Vec::new(),
            state_file: Some(config.data_dir.join("payments-sandbox.json")),
            seed: None,
        };
        change(&mut config);

        let addr = config.listen;
        let mut server = Self {
            runtime,
            state: None,
            addr,
            shutdown: None,
            config,
            database,
            _data: data,
        };
        server.boot();
        server
    }

    fn boot(&mut self) {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(self.addr))
            .unwrap();
        self.addr = listener.local_addr().unwrap();
        self.config.listen = self.addr;
        let state = self
            .runtime
            .block_on(AppState::start(self.config.clone()))
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();

        let serving = state.clone();
        let serving = self.runtime.spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            flexwork_server::serve(serving, listener, shutdown)
                .await
                .unwrap();
        });
        self.state = Some(state);
        self.shutdown = Some((tx, serving));
    }

    /// Stops serving; the data stays for [`TestServer::restart`].
    pub fn stop(&mut self) {
        if let Some((tx, serving)) = self.shutdown.take() {
            let _ = tx.send(());
            let stopped = async { tokio::time::timeout(Duration::from_secs(10), serving).await };
            let _ = self.runtime.block_on(stopped);
        }
        if let Some(state) = self.state.take() {
            self.runtime.block_on(state.db.pool.close());
        }
    }

    /// Stops the server the way a crash would: every task is dropped where it stands, nothing
    /// is finished, flushed or closed. The data stays for [`TestServer::restart`].
    pub fn kill(&mut self) {
        self.state = None;
        let fresh = runtime();
        let old = std::mem::replace(&mut self.runtime, fresh);
        // Drops every task where it stands (nothing runs to completion) and waits for the
        // worker threads to go, so the port and files are free for the restart.
        old.shutdown_timeout(Duration::from_secs(10));
        self.shutdown = None;
    }

    /// Starts again on the same data folder, database and port.
    pub fn restart(&mut self) {
        self.boot();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        self.state.as_ref().expect("server is running")
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates an account directly, as `flexwork account add` does. Accounts of roles that
    /// sign in with two factors then set up their authenticator over HTTP, as a person would.
    /// Operators made here are a small platform's lead, in the reviewer and administrator
    /// teams; [`TestServer::add_operator`] chooses the teams.
    pub fn add_account(&self, role: Role, login: &str) -> String {
        let teams = match role {
            Role::Operator => vec![Team::Reviewer, Team::Administrator],
            _ => Vec::new(),
        };
        self.add_account_in(role, login, teams)
    }

    /// Creates an operator in the given teams.
    pub fn add_operator(&self, login: &str, teams: &[Team]) -> String {
        self.add_account_in(Role::Operator, login, teams.to_vec())
    }

    fn add_account_in(&self, role: Role, login: &str, teams: Vec<Team>) -> String {
        let account = NewAccount {
            login: login.into(),
            password: password_of(login),
            role,
            display_name: login.into(),
            teams,
            organisation_id: None,
        };
        let id = self
            .block_on(flexwork_server::auth::create_account(
                self.state(),
                &account,
            ))
            .unwrap();
        if self.config.login.require_totp_roles.contains(&role) {
            self.set_up_second_factor(login);
        }
        id
    }

    /// Signs in with the password and sets up TOTP; remembers the secret and recovery codes.
    pub fn set_up_second_factor(&self, login: &str) -> String {
        let http = reqwest::blocking::Client::new();
        let (status, session) = self.sign_in(&http, login, None);
        assert_eq!(status, 200, "first sign-in of {login}: {session}");
        assert_eq!(session["second_factor_setup_required"], true, "{session}");
        let setup = Client {
            http,
            base: self.url(),
            token: session["token"].as_str().unwrap().to_owned(),
            device: None,
        };
        let (status, enrollment) = setup.post("/me/totp", json!({}));
        assert_eq!(status, 200, "{enrollment}");
        let secret = enrollment["secret"].as_str().unwrap().to_owned();
        let step = unix_secs() / 30;
        let code = flexwork_server::auth::totp::code_at(&secret, step * 30).unwrap();
        let (status, enabled) = setup.post("/me/totp/confirm", json!({ "code": code }));
        assert_eq!(status, 200, "{enabled}");
        let recovery: Vec<String> = enabled["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let factor = SecondFactor {
            secret: secret.clone(),
            last_step: step,
            recovery,
        };
        SECOND_FACTORS
            .lock()
            .unwrap()
            .insert(format!("{}#{login}", self.url()), factor);
        secret
    }

    /// The second factor of the next sign-in of `login`, as its owner would type it: the
    /// app's code for a step not used yet, or else an unused recovery code.
    fn next_factor(&self, login: &str) -> Option<(&'static str, String)> {
        let mut all = SECOND_FACTORS.lock().unwrap();
        let factor = all.get_mut(&format!("{}#{login}", self.url()))?;
        let now = unix_secs() / 30;
        for step in [now, now + 1] {
            if step > factor.last_step {
                factor.last_step = step;
                let code = flexwork_server::auth::totp::code_at(&factor.secret, step * 30);
                return Some(("totp", code.unwrap()));
            }
        }
        Some((
            "recovery_code",
            factor.recovery.pop().expect("recovery codes left"),
        ))
    }

    fn sign_in(
        &self,
        http: &reqwest::blocking::Client,
        login: &str,
        factor: Option<(&'static str, String)>,
    ) -> (u16, Value) {
        let mut body = json!({ "login": login, "password": password_of(login) });
        if let Some((field, code)) = factor {
            body[field] = json!(code);
        }
        let response = http
            .post(format!("{}/api/v1/sessions", self.url()))
            .json(&body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json().unwrap_or(Value::Null),
        )
    }

    /// The sign-in body of `login`: its password and, where the account has one, its next
    /// second factor, as its owner would type them.
    pub fn sign_in_body(&self, login: &str) -> Value {
        let mut body = json!({ "login": login, "password": password_of(login) });
        if let Some((field, code)) = self.next_factor(login) {
            body[field] = json!(code);
        }
        body
    }

    /// Signs in over HTTP, with the second factor where the account has one.
    pub fn client(&self, login: &str) -> Client {
        let http = reqwest::blocking::Client::new();
        let (status, session) = self.sign_in(&http, login, self.next_factor(login));
        assert_eq!(status, 200, "login of {login}: {session}");
        let token = session["token"].as_str().unwrap().to_owned();
        Client {
            http,
            base: self.url(),
            token,
            device: None,
        }
    }

    /// A worker's phone played over raw HTTP: signs in with the password, registers a new
    /// device key with that session (which the server then revokes) and signs every later
    /// request with the key.
    pub fn device_client(&self, login: &str) -> Client {
        let mut client = self.client(login);
        let (status, me) = client.get("/me");
        assert_eq!(status, 200, "{me}");
        let key = flexwork_client_core::DeviceKey::generate();
        let registration = json!({
            "public_key": key.public_key(),
            "name": "raw phone",
            "proof": key.registration_proof(me["account_id"].as_str().unwrap()),
        });
        let (status, registered) = client.post("/devices", registration);
        assert_eq!(status, 200, "registering a device of {login}: {registered}");
        client.device = Some(DeviceCredential {
            device_id: registered["device_id"].as_str().unwrap().to_owned(),
            key,
        });
        client
    }

    /// Waits until the order's latest evidence has been verified; returns the order.
    pub fn wait_verified(&self, client: &Client, order_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let order = client.get(&format!("/orders/{order_id}")).1;
            if order["verification_pending"] == false && !order["verdict"].is_null() {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {order_id} was not verified in time: {order}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Rows of a table matching an order, straight from the database.
    pub fn count(&self, table_and_filter: &'static str, order_id: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {table_and_filter} = $1");
        self.block_on(async {
            use sqlx::Row;
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(order_id)
                .fetch_one(&self.state().db.pool)
                .await
                .unwrap();
            row.try_get::<i64, _>("n").unwrap()
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(db) = self.database.take() {
            self.runtime.block_on(drop_database(&db));
        }
        if !std::thread::panicking() {
            assert_no_leaks_in_logs();
        }
    }
}

pub fn password_of(login: &str) -> String {
    format!("{login}-long-password")
}

/// A SQLite file by default, or a new PostgreSQL database when the variable says so.
async fn fresh_database() -> Option<TestDatabase> {
    let admin_url = std::env::var("FLEXWORK_TEST_DATABASE_URL").ok()?;
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let name = format!("flexwork_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("connecting to FLEXWORK_TEST_DATABASE_URL");
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    pool.close().await;

    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("database url ends in /<database>");
    let url = format!("{base}/{name}");
    Some(TestDatabase {
        admin_url,
        name,
        url,
    })
}

async fn drop_database(db: &TestDatabase) {
    use sqlx::Executor;
    let Ok(pool) = sqlx::AnyPool::connect(&db.admin_url).await else {
        return;
    };
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name);
    let _ = pool.execute(sqlx::AssertSqlSafe(sql)).await;
    pool.close().await;
}

/// The local folder by default; a fresh bucket on the S3 server of `scripts/s3-server` when
/// `FLEXWORK_TEST_MEDIA=s3`.
async fn media_from_env() -> Option<flexwork_storage::StoreConfig> {
    if std::env::var("FLEXWORK_TEST_MEDIA").ok()? != "s3" {
        return None;
    }
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("FLEXWORK_TEST_MEDIA=s3 needs {name}: run scripts/test"))
    };
    let (endpoint, access, secret) = (
        var("FLEXWORK_TEST_S3_ENDPOINT"),
        var("FLEXWORK_TEST_S3_ACCESS_KEY"),
        var("FLEXWORK_TEST_S3_SECRET_KEY"),
    );
    let bucket = format!("flexwork-e2e-{}", uuid::Uuid::new_v4().simple());
    let client = flexwork_storage::s3_client(&endpoint, "us-east-1", &access, &secret, true);
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("creating the test bucket");

    Some(flexwork_storage::StoreConfig::S3 {
        name: "test-s3".into(),
        endpoint,
        region: "us-east-1".into(),
        bucket,
        access_key_id: access,
        secret_access_key: secret,
        path_style: true,
        prefix: String::new(),
    })
}

/// An API client signed in as one account: with a bearer token, or as a registered phone
/// signing every request with its device key.
pub struct Client {
    pub http: reqwest::blocking::Client,
    pub base: String,
    /// The bearer token; revoked once a device was registered with it.
    pub token: String,
    pub device: Option<DeviceCredential>,
}

/// A registered phone's id and key.
pub struct DeviceCredential {
    pub device_id: String,
    pub key: flexwork_client_core::DeviceKey,
}

impl DeviceCredential {
    /// The headers signing one request at `timestamp_ms` with `nonce`; `path_and_query` is
    /// the full one, like `/api/v1/media/ab?offset=0&size=2`.
    pub fn headers_at(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
        timestamp_ms: i64,
        nonce: &str,
    ) -> Vec<(&'static str, String)> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        self.key
            .headers(&flexwork_sync::device_auth::RequestToSign {
                method,
                path,
                query,
                content_type,
                device_id: &self.device_id,
                timestamp_ms,
                nonce,
                body,
            })
    }

    /// The headers signing one request now, with a new nonce.
    pub fn headers(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let nonce = flexwork_client_core::new_nonce();
        self.headers_at(method, path_and_query, content_type, body, now_ms(), &nonce)
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Client {
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// A request to `/api/v1{path}`, authenticated the client's way.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::blocking::RequestBuilder {
        let full = format!("/api/v1{path}");
        let mut builder = self
            .http
            .request(method.clone(), format!("{}{full}", self.base));
        match &self.device {
            Some(device) => {
                let signed = device.headers(
                    method.as_str(),
                    &full,
                    content_type.unwrap_or_default(),
                    &body,
                );
                for (name, value) in signed {
                    builder = builder.header(name, value);
                }
            }
            None => builder = builder.bearer_auth(&self.token),
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path, None, Vec::new())
            .send()
            .unwrap();
        read(response)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&body).unwrap();
        let response = self
            .request(reqwest::Method::POST, path, Some("application/json"), body)
            .send()
            .unwrap();
        read(response)
    }

    pub fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&body).unwrap();
        let response = self
            .request(reqwest::Method::PATCH, path, Some("application/json"), body)
            .send()
            .unwrap();
        read(response)
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::DELETE, path, None, Vec::new())
            .send()
            .unwrap();
        read(response)
    }

    /// Sends raw bytes, for bad-input scenarios.
    pub fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, Value) {
        let response = self
            .request(method, path, Some(content_type), body)
            .send()
            .unwrap();
        read(response)
    }
}

fn read(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let path = response.url().path().to_owned();
    let textual = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json") || v.starts_with("text/"));
    let text = response.text().unwrap();
    // Plaintext is answered only by the audited reveal calls; media bytes are the worker's
    // own photos and tracks, whatever they hold.
    if textual && !path.ends_with("/reveal") {
        let found = personal_numbers(&text);
        assert!(
            found.is_empty(),
            "the answer of {path} holds personal numbers in the clear: {found:?}"
        );
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// An enterprise, a worker and a task at a site, with the worker assigned: an order.
pub struct Scene {
    pub enterprise: Client,
    pub operator: Client,
    pub worker_login: String,
    pub task_id: String,
    pub order_id: String,
}

/// Everything a task says, with the defaults of the walkthrough.
pub struct TaskSpec {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub from: &'static str,
    pub to: &'static str,
    pub fee_fen: i64,
    pub min_photos: u32,
    pub track: bool,
    pub signature: bool,
}

/// Where and when the Arezzo photos of the fixtures were taken (read with an EXIF viewer:
/// DSCN0010.jpg carries GPS 43.467448 N, 11.885127 E, GPS time 2008-10-23 14:27:07 UTC).
pub const AREZZO: TaskSpec = TaskSpec {
    lat: 43.467448,
    lon: 11.885127,
    radius_m: 150.0,
    from: "2008-10-23T12:00:00Z",
    to: "2008-10-23T18:00:00Z",
    fee_fen: 300_000,
    min_photos: 1,
    track: false,
    signature: true,
};

impl TestServer {
    /// Creates the accounts (fresh logins with `tag`), a task and an order.
    pub fn scene(&self, tag: &str, task: &TaskSpec) -> Scene {
        let (enterprise, worker, operator) = (
            format!("acme-{tag}"),
            format!("wang-{tag}"),
            format!("op-{tag}"),
        );
        self.add_account(Role::Operator, &operator);
        let operator = self.client(&operator);
        for (role, login) in [("enterprise", &enterprise), ("worker", &worker)] {
            let body = json!({
                "login": login, "password": password_of(login), "role": role, "display_name": login,
            });
            assert_eq!(operator.post("/accounts", body).0, 200);
        }
        self.set_up_second_factor(&enterprise);
        let enterprise = self.client(&enterprise);

        let task_id = self.publish_task(&enterprise, &operator, task_body(task));
        let (status, order) = enterprise.post(
            &format!("/tasks/{task_id}/orders"),
            json!({ "worker_login": worker }),
        );
        assert_eq!(status, 200, "{order}");

        let order_id = order["id"].as_str().unwrap().to_owned();
        Scene {
            enterprise,
            operator,
            worker_login: worker,
            task_id,
            order_id,
        }
    }
}

impl TestServer {
    /// Takes a task through its lifecycle as people would: the enterprise drafts it from
    /// `body` and submits it, the operator (a reviewer) records a phone call with the
    /// enterprise and publishes it. Returns the task's id.
    pub fn publish_task(&self, enterprise: &Client, operator: &Client, body: Value) -> String {
        let (status, created) = enterprise.post("/tasks", body);
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["status"], "draft", "{created}");
        let task_id = created["id"].as_str().unwrap().to_owned();
        let (status, submitted) = enterprise.post(&format!("/tasks/{task_id}/submit"), json!({}));
        assert_eq!(status, 200, "{submitted}");
        let review = json!({
            "decision": "publish",
            "checks": [{ "kind": "phone_call", "note": "called the shop: the job is real" }],
        });
        let (status, published) = operator.post(&format!("/tasks/{task_id}/review"), review);
        assert_eq!(status, 200, "{published}");
        assert_eq!(published["status"], "published", "{published}");
        task_id
    }
}

/// A complete task: everything the standard asks for before it can be submitted. It needs
/// no particular skill, qualification or health, and takes up to five workers.
/// The finance desk's login: one finance operator per server, made on first use.
pub const FINANCE_DESK: &str = "finance-desk";

impl TestServer {
    /// A client of the finance desk (a finance team operator), created on first use.
    pub fn finance(&self) -> Client {
        let exists = self.block_on(async {
            sqlx::query("SELECT id FROM accounts WHERE login = $1")
                .bind(FINANCE_DESK)
                .fetch_optional(&self.state().db.pool)
                .await
                .unwrap()
                .is_some()
        });
        if !exists {
            self.add_operator(FINANCE_DESK, &[Team::Finance]);
        }
        self.client(FINANCE_DESK)
    }

    /// Records a deposit of `fen` the bank reported under `reference` into the escrow of the
    /// scene's enterprise, as the finance desk; returns the answer.
    pub fn deposit(&self, scene: &Scene, fen: i64, reference: &str) -> (u16, Value) {
        let (_, order) = scene.enterprise.get(&format!("/orders/{}", scene.order_id));
        let enterprise = order["enterprise_id"].as_str().unwrap().to_owned();
        let body = json!({
            "amount_fen": fen, "bank_reference": reference, "value_date": "2026-01-05",
        });
        self.finance()
            .post(&format!("/enterprises/{enterprise}/deposits"), body)
    }

    /// Has the platform (the scene's reviewer), the enterprise and the worker (from a signed
    /// phone) confirm the order's current statement; returns the statement as the last
    /// confirmation answered it.
    pub fn confirm_statement(&self, scene: &Scene) -> Value {
        let (status, statement) = scene
            .enterprise
            .get(&format!("/orders/{}/statement", scene.order_id));
        assert_eq!(status, 200, "{statement}");
        let path = format!("/statements/{}/confirm", statement["id"].as_str().unwrap());
        let worker = self.device_client(&scene.worker_login);
        let mut last = Value::Null;
        for client in [&scene.operator, &scene.enterprise, &worker] {
            let (status, answer) = client.post(&path, json!({}));
            assert_eq!(status, 200, "{answer}");
            last = answer;
        }
        last
    }

    /// Deposits the statement's total into escrow, then has all three parties confirm it:
    /// the order settles. Returns the order.
    pub fn fund_and_settle(&self, scene: &Scene) -> Value {
        let (status, statement) = scene
            .enterprise
            .get(&format!("/orders/{}/statement", scene.order_id));
        assert_eq!(status, 200, "{statement}");
        let total = statement["total_fen"].as_i64().unwrap();
        let reference = format!("REF-{}", &scene.order_id[..8]);
        let (status, deposit) = self.deposit(scene, total, &reference);
        assert_eq!(status, 200, "{deposit}");
        let confirmed = self.confirm_statement(scene);
        assert_eq!(confirmed["status"], "settled", "{confirmed}");
        scene
            .enterprise
            .get(&format!("/orders/{}", scene.order_id))
            .1
    }
}

pub fn task_body(task: &TaskSpec) -> Value {
    json!({
        "title": "Check the shop front", "description": "Photograph the entrance, sign on site",
        "site_lat": task.lat, "site_lon": task.lon, "site_radius_m": task.radius_m,
        "window_from": task.from, "window_to": task.to, "fee_fen": task.fee_fen,
        "min_photos": task.min_photos, "require_track": task.track,
        "require_signature": task.signature,
        "skills": [], "qualifications": [], "health_requirements": [],
        "hardware": "a phone with a camera", "acceptance_criteria": "the entrance is in focus",
        "fee_basis": "per_order", "min_fee_fen": task.fee_fen,
        "min_service_minutes": 30, "max_minutes_per_day": 480, "min_rest_minutes": 60,
        "headcount": 5, "estimated_minutes_per_person": 60,
    })
}

/// A worker's phone: a client-core store in a temporary folder.
pub struct Phone {
    pub device: flexwork_client_core::Device,
    pub dir: tempfile::TempDir,
}

impl Phone {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let device = flexwork_client_core::Device::open(dir.path()).unwrap();
        Self { device, dir }
    }

    /// Drops the device and opens the same store again, as after the app was killed.
    pub fn reopen(self) -> Self {
        let Phone { device, dir } = self;
        drop(device);
        let device = flexwork_client_core::Device::open(dir.path()).unwrap();
        Self { device, dir }
    }

    pub fn login(&mut self, server: &TestServer, login: &str) {
        self.device
            .login(&server.url(), login, &password_of(login))
            .unwrap();
    }

    pub fn sync(&mut self) -> flexwork_client_core::SyncReport {
        let transport = self.device.transport().unwrap();
        self.device.sync(&transport).unwrap()
    }
}

impl Phone {
    /// A phone signed in as the scene's worker that has learned its order.
    pub fn for_scene(server: &TestServer, scene: &Scene) -> Self {
        let mut phone = Phone::new();
        phone.login(server, &scene.worker_login);
        phone.sync();
        phone
    }

    /// Records what a worker standing where DSCN0010.jpg was taken would: the photo with the
    /// phone's fix at the photo's GPS time, and a signature a minute later. Returns the photo.
    pub fn record_arezzo_evidence(&mut self, order_id: &str) -> flexwork_sync::PhotoRecord {
        let taken = ms(AREZZO_TAKEN_AT);
        let photo = fixture_bytes("photos/DSCN0010.jpg");
        let fix = Some(fix_at_arezzo(taken));
        let record = self
            .device
            .record_photo(order_id, &photo, "image/jpeg", fix, taken)
            .unwrap();
        let signed = taken + 60_000;
        self.device
            .add_signature(order_id, signature(signed), signed)
            .unwrap();
        record
    }
}

/// GPS time of DSCN0010.jpg, which a phone standing there would also report.
pub const AREZZO_TAKEN_AT: &str = "2008-10-23T14:27:07Z";

/// A simple two-stroke signature.
pub fn signature(at_ms: i64) -> Vec<Vec<flexwork_sync::StrokePoint>> {
    let stroke = |y: f64, t0: i64| {
        (0..20)
            .map(|i| flexwork_sync::StrokePoint {
                x: f64::from(i) * 5.0,
                y,
                t_ms: t0 + i64::from(i) * 16,
                pressure: 0.5,
            })
            .collect()
    };
    vec![stroke(10.0, at_ms), stroke(30.0, at_ms + 400)]
}

/// The fix a phone would report standing where DSCN0010.jpg was taken.
pub fn fix_at_arezzo(at_ms: i64) -> flexwork_sync::Fix {
    flexwork_sync::Fix {
        lat: 43.467448,
        lon: 11.885127,
        accuracy_m: 8.0,
        at_ms,
        mock: false,
    }
}

/// Plays a device that does not use client-core (a buggy or hostile one) over raw HTTP.
pub mod raw {
    use flexwork_sync::protocol::{self, CBOR_MEDIA_TYPE};
    use flexwork_sync::{DocMessage, DocPeer, DocRejection, EvidenceDoc, SyncRequest};

    use super::Client;

    /// A sync request carrying one document message.
    pub fn sync_request(order_id: &str, message: Vec<u8>) -> Vec<u8> {
        let docs = vec![DocMessage {
            order_id: order_id.into(),
            message,
        }];
        let protocol = flexwork_sync::PROTOCOL_VERSION;
        protocol::encode(&SyncRequest {
            protocol,
            device_id: "raw".into(),
            docs,
            want_orders: true,
        })
    }

    /// Syncs `doc` with the server until both are quiet; returns the refusals seen.
    pub fn push(client: &Client, order_id: &str, doc: &mut EvidenceDoc) -> Vec<DocRejection> {
        let mut peer = DocPeer::new();
        let mut rejected = Vec::new();
        for _ in 0..10 {
            let Some(message) = peer.generate(doc.automerge()) else {
                return rejected;
            };
            let (status, bytes) = post_cbor(client, sync_request(order_id, message));
            assert_eq!(status, 200);
            let response = protocol::decode_response(&bytes).unwrap();
            if !response.rejected.is_empty() {
                rejected.extend(response.rejected);
                return rejected;
            }
            for reply in response.docs {
                peer.receive(doc.automerge(), &reply.message, &Default::default())
                    .unwrap();
            }
        }
        panic!("raw device did not converge");
    }

    pub fn post_cbor(client: &Client, body: Vec<u8>) -> (u16, Vec<u8>) {
        let response = client
            .request(reqwest::Method::POST, "/sync", Some(CBOR_MEDIA_TYPE), body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.bytes().unwrap().to_vec(),
        )
    }
}

impl TestServer {
    /// A scene whose order is submitted with the Arezzo evidence, verified (approved by hand
    /// if flagged), confirmed by the enterprise, funded, its statement confirmed by all three
    /// parties, and therefore settled.
    pub fn settled_scene(&self, tag: &str) -> Scene {
        let scene = self.scene(tag, &AREZZO);
        self.settle(&scene);
        scene
    }

    /// Takes the scene's order the whole way to a settlement: the Arezzo evidence recorded
    /// and submitted, verified (approved by hand if flagged), confirmed by the enterprise,
    /// funded and its statement confirmed by all three parties. Returns the order.
    pub fn settle(&self, scene: &Scene) -> Value {
        let mut phone = Phone::for_scene(self, scene);
        phone.record_arezzo_evidence(&scene.order_id);
        phone
            .device
            .submit(&scene.order_id, ms("2008-10-23T14:32:00Z"))
            .unwrap();
        phone.sync();
        let verified = self.wait_verified(&scene.enterprise, &scene.order_id);
        if verified["verdict"] == "needs_review" {
            let body = json!({ "decision": "approve", "reason": "checked by hand" });
            let path = format!("/orders/{}/review", scene.order_id);
            assert_eq!(scene.operator.post(&path, body).0, 200);
        }
        let path = format!("/orders/{}/confirm", scene.order_id);
        let (status, confirmed) = scene.enterprise.post(&path, json!({}));
        assert_eq!(status, 200, "{confirmed}");
        let settled = self.fund_and_settle(scene);
        assert_eq!(
            settled["settlement"]["status"], "pending_payout",
            "{settled}"
        );
        settled
    }

    /// Dates the order's settlement `days_ago` days back, so that its payout cycle is due
    /// without waiting for the calendar.
    pub fn backdate_settlement(&self, order_id: &str, days_ago: i64) {
        self.block_on(async {
            sqlx::query("UPDATE settlements SET created_at = created_at - $1 WHERE order_id = $2")
                .bind(days_ago * 86_400_000)
                .bind(order_id)
                .execute(&self.state().db.pool)
                .await
                .unwrap();
        });
    }
}

/// One page of a paged list (`GET /orders`, `GET /invoices`): the items' ids and the next
/// page's cursor, if any.
pub fn list_page(client: &Client, path: &str) -> (Vec<String>, Option<String>) {
    let response = client
        .request(reqwest::Method::GET, path, None, Vec::new())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let cursor = response
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    let list: serde_json::Value = response.json().unwrap();
    let ids = list
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, cursor)
}
