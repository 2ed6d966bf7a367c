//! Authenticity checks of the platform's enterprises, workers and orders (standard 5.2).
//!
//! # What runs
//!
//! Once per Asia/Shanghai date a background job ([`spawn_daily`]) draws random samples:
//!
//! - admitted enterprises into the **risk review queue** (`enterprise_risk`), for the risk
//!   team to examine and close with a finding (`clear`, `concern` or `serious`);
//! - workers (`worker_sample`) and submitted orders (`order_sample`) for a call-back, survey
//!   or visit by the reviewer or support team; the result is kept as verification evidence of
//!   the order (table `verification_records`, which refuses any change or deletion) and shown
//!   in the order's view.
//!
//! A date is drawn once: the run is recorded in `check_runs`, so running the job again on the
//! same date — also after a restart, or by hand (`POST /checks/run`, `flexwork checks run`) —
//! draws nothing new. The same job makes sure every admitted enterprise has one **quarterly
//! screening** item (`screening`) for the current quarter, closed with a finding on each of
//! the four dimensions (entity, business, operations, funds).
//!
//! Sample sizes come from `[checks]`: `ceil(total × percent / 100)`, at least the minimum,
//! at most the total.

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339, shanghai_date};

/// The `[checks]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ChecksConfig {
    /// Percentage of admitted enterprises drawn into the risk queue each day.
    pub enterprise_sample_percent: u32,
    /// At least this many enterprises are drawn (when there are that many).
    pub enterprise_sample_min: u32,
    /// Percentage of active workers drawn for a call-back each day.
    pub worker_sample_percent: u32,
    /// At least this many workers are drawn.
    pub worker_sample_min: u32,
    /// Percentage of submitted orders drawn for a call-back or survey each day.
    pub order_sample_percent: u32,
    /// At least this many orders are drawn.
    pub order_sample_min: u32,
    /// How often the jobs wake up to see whether a new date began or a deregistration is
    /// due, in seconds.
    pub job_interval_secs: u64,
    /// Folder of the regulator outbox; empty means `regulator-outbox` in the data folder.
    pub outbox_dir: std::path::PathBuf,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self {
            enterprise_sample_percent: 10,
            enterprise_sample_min: 1,
            worker_sample_percent: 2,
            worker_sample_min: 1,
            order_sample_percent: 2,
            order_sample_min: 1,
            job_interval_secs: 3_600,
            outbox_dir: std::path::PathBuf::new(),
        }
    }
}

impl ChecksConfig {
    /// Refuses percentages over 100 and a zero job interval.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("enterprise_sample_percent", self.enterprise_sample_percent),
            ("worker_sample_percent", self.worker_sample_percent),
            ("order_sample_percent", self.order_sample_percent),
        ] {
            if value > 100 {
                return Err(format!("{name} is a percentage: 0 to 100, not {value}"));
            }
        }
        if self.job_interval_secs == 0 {
            return Err("job_interval_secs must be at least 1".into());
        }
        Ok(())
    }
}

/// How many of `total` a sample takes: `ceil(total × percent / 100)`, at least `min`, at
/// most `total`.
pub fn sample_size(total: usize, percent: u32, min: u32) -> usize {
    let share = (total * percent as usize).div_ceil(100);
    share.max(min as usize).min(total)
}

/// Draws `n` of `candidates` at random with the RNG seeded by `seed`: the same seed and
/// candidates give the same sample. The result keeps the candidates' order.
pub fn draw(candidates: &[String], n: usize, seed: u64) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut picked =
        rand::seq::index::sample(&mut rng, candidates.len(), n.min(candidates.len())).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| candidates[i].clone()).collect()
}

/// The quarter of a `YYYY-MM-DD` date, as `YYYY-Qn`.
pub fn quarter_of(date: &str) -> Option<String> {
    let parsed = parse_date(date)?;
    let q = (u8::from(parsed.month()) - 1) / 3 + 1;
    Some(format!("{}-Q{q}", parsed.year()))
}

/// The first and last date of a `YYYY-Qn` quarter.
pub fn quarter_dates(quarter: &str) -> Option<(time::Date, time::Date)> {
    let (year, q) = quarter.split_once("-Q")?;
    let year: i32 = year.parse().ok().filter(|y| (2000..=9999).contains(y))?;
    let q: u8 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
    let first = time::Month::try_from((q - 1) * 3 + 1).ok()?;
    let start = time::Date::from_calendar_date(year, first, 1).ok()?;
    let next = if q == 4 {
        time::Date::from_calendar_date(year + 1, time::Month::January, 1).ok()?
    } else {
        time::Date::from_calendar_date(year, first.nth_next(3), 1).ok()?
    };
    Some((start, next.previous_day()?))
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(date: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date, &format).ok()
}

/// The instant (ms) a Shanghai date begins.
pub fn start_of_day_ms(date: time::Date) -> i64 {
    let at = time::PrimitiveDateTime::new(date, time::Time::MIDNIGHT)
        .assume_offset(crate::identity::SHANGHAI);
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A queue of check items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Enterprises drawn for a risk review (5.2 a).
    EnterpriseRisk,
    /// Every admitted enterprise, once a quarter, on four dimensions (5.2 a).
    Screening,
    /// Workers drawn for a call-back or survey (5.2 b).
    WorkerSample,
    /// Orders drawn for a call-back, survey or visit (5.2 d).
    OrderSample,
}

impl Queue {
    pub const ALL: [Queue; 4] = [
        Queue::EnterpriseRisk,
        Queue::Screening,
        Queue::WorkerSample,
        Queue::OrderSample,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::EnterpriseRisk => "enterprise_risk",
            Queue::Screening => "screening",
            Queue::WorkerSample => "worker_sample",
            Queue::OrderSample => "order_sample",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Queue::ALL.into_iter().find(|q| q.as_str() == s)
    }

    /// Who works the queue: the risk team the enterprise checks, the reviewer and support
    /// teams the call-backs.
    pub fn permission(self) -> Permission {
        match self {
            Queue::EnterpriseRisk | Queue::Screening => Permission::RiskChecks,
            Queue::WorkerSample | Queue::OrderSample => Permission::CallBacks,
        }
    }

    fn subject_kind(self) -> &'static str {
        match self {
            Queue::EnterpriseRisk | Queue::Screening => "enterprise",
            Queue::WorkerSample => "worker",
            Queue::OrderSample => "order",
        }
    }
}

/// What one run of the daily job did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// The Asia/Shanghai date of the run.
    pub date: String,
    /// Whether this date had been drawn before (then nothing new was drawn).
    pub already_drawn: bool,
    /// Enterprises, workers and orders drawn on this date.
    pub enterprises: i64,
    pub workers: i64,
    pub orders: i64,
    /// The quarter whose screening items were made sure of, and how many were created now.
    pub quarter: String,
    pub screening_created: i64,
}

const ADMITTED_ENTERPRISES: &str = "SELECT id FROM accounts WHERE role = 'enterprise' \
     AND duties = 'admin' AND suspended = 0 ORDER BY id";

async fn ids(state: &AppState, sql: &'static str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(sql).fetch_all(&state.db.pool).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(ApiError::from))
        .collect()
}

/// Draws the samples of `date` (`YYYY-MM-DD`, Asia/Shanghai) unless that date was drawn
/// already, and makes sure the date's quarter has its screening items. `seed` fixes the
/// draw (tests); `None` draws at random.
pub async fn run_daily(
    state: &AppState,
    date: &str,
    seed: Option<u64>,
    actor: Option<&Caller>,
) -> ApiResult<RunSummary> {
    let quarter = quarter_of(date).ok_or_else(|| {
        ApiError::bad_request("invalid_date", "the date is a calendar date as YYYY-MM-DD")
    })?;
    let screening_created = ensure_screening(state, &quarter).await?;
    let config = &state.config.checks;
    let enterprises = ids(state, ADMITTED_ENTERPRISES).await?;
    let workers = ids(
        state,
        "SELECT id FROM accounts WHERE role = 'worker' AND suspended = 0 ORDER BY id",
    )
    .await?;
    let orders = ids(
        state,
        "SELECT id FROM orders WHERE submitted_at IS NOT NULL ORDER BY id",
    )
    .await?;
    let seed = seed.unwrap_or_else(rand::random::<u64>);
    let plan = [
        (
            Queue::EnterpriseRisk,
            draw(
                &enterprises,
                sample_size(
                    enterprises.len(),
                    config.enterprise_sample_percent,
                    config.enterprise_sample_min,
                ),
                seed,
            ),
        ),
        (
            Queue::WorkerSample,
            draw(
                &workers,
                sample_size(
                    workers.len(),
                    config.worker_sample_percent,
                    config.worker_sample_min,
                ),
                seed.wrapping_add(1),
            ),
        ),
        (
            Queue::OrderSample,
            draw(
                &orders,
                sample_size(
                    orders.len(),
                    config.order_sample_percent,
                    config.order_sample_min,
                ),
                seed.wrapping_add(2),
            ),
        ),
    ];

    let mut tx = state.db.begin_write().await?;
    let done =
        sqlx::query("SELECT enterprises, workers, orders FROM check_runs WHERE run_date = $1")
            .bind(date)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(row) = done {
        tx.rollback().await?;
        return Ok(RunSummary {
            date: date.to_owned(),
            already_drawn: true,
            enterprises: row.try_get("enterprises")?,
            workers: row.try_get("workers")?,
            orders: row.try_get("orders")?,
            quarter,
            screening_created,
        });
    }
    let now = now_ms();
    for (queue, subjects) in &plan {
        for subject in subjects {
            sqlx::query(
                "INSERT INTO check_items (id, queue, subject_kind, subject_id, period, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (queue, subject_id, period) DO NOTHING",
            )
            .bind(new_id())
            .bind(queue.as_str())
            .bind(queue.subject_kind())
            .bind(subject)
            .bind(date)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    let counts = plan.each_ref().map(|(_, s)| s.len() as i64);
    sqlx::query(
        "INSERT INTO check_runs (run_date, ran_at, seed, enterprises, workers, orders) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(date)
    .bind(now)
    .bind(seed as i64)
    .bind(counts[0])
    .bind(counts[1])
    .bind(counts[2])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let event = match actor {
        Some(caller) => Event::by(caller, "checks_drawn", Outcome::Ok),
        None => Event::anonymous("checks_drawn", Outcome::Ok),
    };
    let detail = serde_json::json!({
        "date": date, "enterprises": counts[0], "workers": counts[1], "orders": counts[2],
        "of_enterprises": enterprises.len(), "of_workers": workers.len(),
        "of_orders": orders.len(),
    });
    audit::record(
        state,
        event.object(format!("check_run:{date}")).detail(detail),
    )
    .await?;
    tracing::info!(
        date,
        enterprises = counts[0],
        workers = counts[1],
        orders = counts[2],
        "daily check samples drawn"
    );
    Ok(RunSummary {
        date: date.to_owned(),
        already_drawn: false,
        enterprises: counts[0],
        workers: counts[1],
        orders: counts[2],
        quarter,
        screening_created,
    })
}

/// Creates the quarter's screening item of every admitted enterprise that has none yet;
/// returns how many were created.
pub async fn ensure_screening(state: &AppState, quarter: &str) -> ApiResult<i64> {
    let mut created = 0;
    for enterprise in ids(state, ADMITTED_ENTERPRISES).await? {
        let done = sqlx::query(
            "INSERT INTO check_items (id, queue, subject_kind, subject_id, period, created_at) \
             VALUES ($1, 'screening', 'enterprise', $2, $3, $4) \
             ON CONFLICT (queue, subject_id, period) DO NOTHING",
        )
        .bind(new_id())
        .bind(&enterprise)
        .bind(quarter)
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
        created += done.rows_affected() as i64;
    }
    Ok(created)
}

/// Runs the daily draw at start and then every `job_interval_secs` (a new Shanghai date is
/// drawn on the first wake-up after midnight), and closes due deregistrations.
pub fn spawn_daily(state: AppState) {
    tokio::spawn(async move {
        loop {
            let today = shanghai_date(now_ms());
            if let Err(e) = run_daily(&state, &today, None, None).await {
                tracing::warn!(error = %e, "drawing the daily check samples failed");
            }
            if let Err(e) = crate::deregistration::close_due(&state, now_ms()).await {
                tracing::warn!(error = %e, "closing due deregistrations failed");
            }
            let interval = state.config.checks.job_interval_secs;
            tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
        }
    });
}

/// One check item as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub id: String,
    /// `enterprise_risk`, `screening`, `worker_sample` or `order_sample`.
    pub queue: String,
    /// `enterprise`, `worker` or `order`.
    pub subject_kind: String,
    /// The account or order id.
    pub subject_id: String,
    /// The date drawn (`YYYY-MM-DD`) or, for screening, the quarter (`YYYY-Qn`).
    pub period: String,
    pub created_at: String,
    /// `open` or `closed`.
    pub status: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    /// `clear`, `concern` or `serious`.
    pub outcome: Option<String>,
    /// `call_back`, `survey` or `visit` for samples of workers and orders.
    pub kind: Option<String>,
    pub notes: Option<String>,
    /// Screening only: the finding on each of `entity`, `business`, `operations`, `funds`.
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Content addresses of the attached recordings and photos.
    pub attachments: Vec<String>,
}

fn item_from(row: &sqlx::any::AnyRow) -> ApiResult<Item> {
    let closed_at: Option<i64> = row.try_get("closed_at")?;
    let dimensions: Option<String> = row.try_get("dimensions")?;
    let attachments: Option<String> = row.try_get("attachments")?;
    Ok(Item {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        subject_kind: row.try_get("subject_kind")?,
        subject_id: row.try_get("subject_id")?,
        period: row.try_get("period")?,
        created_at: rfc3339(row.try_get("created_at")?),
        status: if closed_at.is_some() {
            "closed"
        } else {
            "open"
        }
        .into(),
        closed_at: closed_at.map(rfc3339),
        closed_by: row.try_get("closed_by")?,
        outcome: row.try_get("outcome")?,
        kind: row.try_get("kind")?,
        notes: row.try_get("notes")?,
        dimensions: dimensions.and_then(|d| serde_json::from_str(&d).ok()),
        attachments: attachments
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default(),
    })
}

/// The items of the queues the caller works (or of `queue` alone), open ones only unless
/// `include_closed`, oldest first, at most 500.
pub async fn list_items(
    state: &AppState,
    caller: &Caller,
    queue: Option<&str>,
    include_closed: bool,
) -> ApiResult<Vec<Item>> {
    let queues: Vec<Queue> = match queue {
        Some(name) => {
            let queue = Queue::parse(name).ok_or_else(|| {
                ApiError::bad_request(
                    "unknown_queue",
                    "queue is one of enterprise_risk, screening, worker_sample, order_sample",
                )
            })?;
            caller.require(queue.permission())?;
            vec![queue]
        }
        None => Queue::ALL
            .into_iter()
            .filter(|q| caller.can(q.permission()))
            .collect(),
    };
    if queues.is_empty() {
        return Err(ApiError::forbidden(
            "check queues are for the risk, reviewer and support teams",
        ));
    }
    let mut items = Vec::new();
    for queue in queues {
        let rows = sqlx::query(
            "SELECT * FROM check_items WHERE queue = $1 AND ($2 = 1 OR closed_at IS NULL) \
             ORDER BY created_at, id LIMIT 500",
        )
        .bind(queue.as_str())
        .bind(i64::from(include_closed))
        .fetch_all(&state.db.pool)
        .await?;
        for row in &rows {
            items.push(item_from(row)?);
        }
    }
    Ok(items)
}

/// What closing a check item records.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Closing {
    /// `clear`, `concern` or `serious`.
    pub outcome: String,
    /// What was found, in words (at least 5 characters).
    pub notes: String,
    /// For samples of workers and orders: `call_back`, `survey` or `visit`.
    #[serde(default)]
    pub kind: Option<String>,
    /// For screening: a finding on each of `entity`, `business`, `operations` and `funds`.
    #[serde(default)]
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Content addresses of attachments uploaded to this item before.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// The four dimensions of the quarterly screening.
pub const DIMENSIONS: [&str; 4] = ["entity", "business", "operations", "funds"];

/// Closes an open item with its finding. For samples of workers and orders the result is
/// also kept as a verification record of the subject, which can never change.
pub async fn close_item(
    state: &AppState,
    caller: &Caller,
    id: &str,
    closing: &Closing,
) -> ApiResult<Item> {
    let row = sqlx::query("SELECT queue FROM check_items WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("check item"))?;
    let queue = Queue::parse(&row.try_get::<String, _>("queue")?)
        .ok_or_else(|| ApiError::internal("unknown queue in database"))?;
    caller.require(queue.permission())?;

    if !["clear", "concern", "serious"].contains(&closing.outcome.as_str()) {
        let message = "outcome is one of clear, concern, serious";
        return Err(ApiError::bad_request("invalid_outcome", message));
    }
    let notes = closing.notes.trim();
    if notes.chars().count() < 5 || notes.chars().count() > 4_000 {
        let message = "notes say what was found: 5 to 4000 characters";
        return Err(ApiError::bad_request("notes_required", message));
    }
    let kind = match queue {
        Queue::WorkerSample | Queue::OrderSample => {
            let kind = closing.kind.as_deref().unwrap_or_default();
            if !["call_back", "survey", "visit"].contains(&kind) {
                let message = "kind is one of call_back, survey, visit: how the check was done";
                return Err(ApiError::bad_request("invalid_kind", message));
            }
            Some(kind.to_owned())
        }
        Queue::EnterpriseRisk | Queue::Screening => None,
    };
    let dimensions = match queue {
        Queue::Screening => {
            let given = closing.dimensions.clone().unwrap_or_default();
            let missing: Vec<_> = DIMENSIONS
                .iter()
                .filter(|d| given.get(**d).is_none_or(|v| v.trim().is_empty()))
                .copied()
                .collect();
            let unknown = given.keys().any(|k| !DIMENSIONS.contains(&k.as_str()));
            if !missing.is_empty() || unknown {
                let message = format!(
                    "a screening records a finding on each of entity, business, operations \
                     and funds; missing: {}",
                    missing.join(", ")
                );
                return Err(ApiError::bad_request("dimensions_required", message));
            }
            Some(serde_json::to_string(&given).map_err(ApiError::internal)?)
        }
        _ => None,
    };
    let attachments = serde_json::to_string(&closing.attachments).map_err(ApiError::internal)?;

    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query("SELECT * FROM check_items WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if row.try_get::<Option<i64>, _>("closed_at")?.is_some() {
        return Err(ApiError::conflict(
            "already_closed",
            "this check is closed; its finding cannot change",
        ));
    }
    for hash in &closing.attachments {
        let found =
            sqlx::query("SELECT 1 AS hit FROM check_attachments WHERE item_id = $1 AND hash = $2")
                .bind(id)
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            let message = "an attachment is not uploaded to this check; upload it first";
            return Err(ApiError::bad_request("unknown_attachment", message));
        }
    }
    let now = now_ms();
    sqlx::query(
        "UPDATE check_items SET closed_at = $1, closed_by = $2, outcome = $3, kind = $4, \
           notes = $5, dimensions = $6, attachments = $7 WHERE id = $8 AND closed_at IS NULL",
    )
    .bind(now)
    .bind(&caller.account_id)
    .bind(&closing.outcome)
    .bind(&kind)
    .bind(notes)
    .bind(&dimensions)
    .bind(&attachments)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if let Some(kind) = &kind {
        sqlx::query(
            "INSERT INTO verification_records (id, item_id, subject_kind, subject_id, kind, \
               outcome, notes, attachments, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_id())
        .bind(id)
        .bind(row.try_get::<String, _>("subject_kind")?)
        .bind(row.try_get::<String, _>("subject_id")?)
        .bind(kind)
        .bind(&closing.outcome)
        .bind(notes)
        .bind(&attachments)
        .bind(&caller.account_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let subject: String = row.try_get("subject_id")?;
    let event = Event::by(caller, "check_closed", Outcome::Ok)
        .object(format!("check_item:{id}"))
        .detail(serde_json::json!({
            "queue": queue.as_str(), "subject": subject, "outcome": closing.outcome,
            "kind": kind, "attachments": closing.attachments.len(),
        }));
    audit::record(state, event).await?;
    let row = sqlx::query("SELECT * FROM check_items WHERE id = $1")
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    item_from(&row)
}

/// Largest attachment of a check: a few minutes of recorded call.
pub const MAX_ATTACHMENT_BYTES: usize = 8 * 1024 * 1024;

/// The type of a recording or photo, from its first bytes.
fn attachment_type(bytes: &[u8]) -> Option<&'static str> {
    if let Some(t) = crate::api::media::sniff(bytes) {
        return Some(t);
    }
    if bytes.starts_with(b"ID3") || bytes.starts_with(&[0xFF, 0xFB]) {
        return Some("audio/mpeg");
    }
    if bytes.starts_with(b"#!AMR") {
        return Some("audio/amr");
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        return Some("audio/wav");
    }
    if bytes.starts_with(b"OggS") {
        return Some("audio/ogg");
    }
    None
}

/// Stores a recording or photo for an open item, sealed in the media store and copied to
/// every site like any media; returns its content address.
pub async fn upload_attachment(
    state: &AppState,
    caller: &Caller,
    id: &str,
    bytes: &[u8],
) -> ApiResult<String> {
    let row = sqlx::query("SELECT queue, closed_at FROM check_items WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("check item"))?;
    let queue = Queue::parse(&row.try_get::<String, _>("queue")?)
        .ok_or_else(|| ApiError::internal("unknown queue in database"))?;
    caller.require(queue.permission())?;
    if row.try_get::<Option<i64>, _>("closed_at")?.is_some() {
        let message = "this check is closed; nothing can be attached any more";
        return Err(ApiError::conflict("already_closed", message));
    }
    let Some(media_type) = attachment_type(bytes) else {
        let message = "attachments are photos (JPEG, PNG, WebP, GIF, TIFF, HEIC), videos (MP4) \
                       or recordings (MP3, AMR, WAV, Ogg)";
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ));
    };
    let hash = crate::replication::store_object(state, bytes, media_type).await?;
    sqlx::query(
        "INSERT INTO check_attachments (item_id, hash, media_type, size, uploaded_by, \
           uploaded_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (item_id, hash) DO NOTHING",
    )
    .bind(id)
    .bind(hash.to_hex())
    .bind(media_type)
    .bind(bytes.len() as i64)
    .bind(&caller.account_id)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(hash.to_hex())
}

/// A call-back, survey or visit kept as verification evidence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationRecord {
    pub id: String,
    /// The check item it closed.
    pub item_id: String,
    /// `call_back`, `survey` or `visit`.
    pub kind: String,
    /// `clear`, `concern` or `serious`.
    pub outcome: String,
    pub notes: String,
    /// Content addresses of recordings and photos.
    pub attachments: Vec<String>,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// The verification records of an order, oldest first.
pub async fn records_for_order(
    state: &AppState,
    order_id: &str,
) -> ApiResult<Vec<VerificationRecord>> {
    let mut records = records_for_orders(state, &[order_id.to_owned()]).await?;
    Ok(records.remove(order_id).unwrap_or_default())
}

/// The verification records of these orders, by order id, each oldest first: one query.
pub async fn records_for_orders(
    state: &AppState,
    order_ids: &[String],
) -> ApiResult<std::collections::HashMap<String, Vec<VerificationRecord>>> {
    let mut records: std::collections::HashMap<String, Vec<VerificationRecord>> =
        std::collections::HashMap::new();
    if order_ids.is_empty() {
        return Ok(records);
    }
    let sql = format!(
        "SELECT * FROM verification_records WHERE subject_kind = 'order' \
         AND subject_id IN ({}) ORDER BY recorded_at, id",
        crate::evidence::placeholders(1, order_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in order_ids {
        query = query.bind(id);
    }
    for r in query.fetch_all(&state.db.pool).await? {
        let order_id: String = r.try_get("subject_id")?;
        records.entry(order_id).or_default().push(record_of(&r)?);
    }
    Ok(records)
}

fn record_of(r: &sqlx::any::AnyRow) -> ApiResult<VerificationRecord> {
    let attachments: String = r.try_get("attachments")?;
    Ok(VerificationRecord {
        id: r.try_get("id")?,
        item_id: r.try_get("item_id")?,
        kind: r.try_get("kind")?,
        outcome: r.try_get("outcome")?,
        notes: r.try_get("notes")?,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        recorded_by: r.try_get("recorded_by")?,
        recorded_at: rfc3339(r.try_get("recorded_at")?),
    })
}

/// Where one enterprise's screening of a quarter stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScreeningEntry {
    pub enterprise_id: String,
    pub display_name: String,
    pub item_id: String,
    /// `done`, `outstanding` (the quarter runs) or `overdue` (the quarter ended).
    pub state: String,
    pub outcome: Option<String>,
    pub closed_at: Option<String>,
}

/// The screening of a quarter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScreeningStatus {
    pub quarter: String,
    pub first_day: String,
    pub last_day: String,
    /// Whether the quarter is over (open items are then overdue).
    pub ended: bool,
    pub done: i64,
    pub outstanding: i64,
    pub overdue: i64,
    pub enterprises: Vec<ScreeningEntry>,
}

/// The screening of `quarter` (`YYYY-Qn`) as of the Shanghai date `today`.
pub async fn screening_status(
    state: &AppState,
    quarter: &str,
    today: &str,
) -> ApiResult<ScreeningStatus> {
    let (first, last) = quarter_dates(quarter).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_quarter",
            "the quarter is written YYYY-Qn, e.g. 2026-Q4",
        )
    })?;
    let today = parse_date(today).ok_or_else(|| ApiError::internal("bad date of today"))?;
    let ended = today > last;
    let rows = sqlx::query(
        "SELECT c.id, c.subject_id, c.outcome, c.closed_at, a.display_name \
         FROM check_items c JOIN accounts a ON a.id = c.subject_id \
         WHERE c.queue = 'screening' AND c.period = $1 ORDER BY a.display_name, c.id",
    )
    .bind(quarter)
    .fetch_all(&state.db.pool)
    .await?;
    let mut status = ScreeningStatus {
        quarter: quarter.to_owned(),
        first_day: first.to_string(),
        last_day: last.to_string(),
        ended,
        done: 0,
        outstanding: 0,
        overdue: 0,
        enterprises: Vec::new(),
    };
    for row in &rows {
        let closed_at: Option<i64> = row.try_get("closed_at")?;
        let state = match (closed_at, ended) {
            (Some(_), _) => {
                status.done += 1;
                "done"
            }
            (None, false) => {
                status.outstanding += 1;
                "outstanding"
            }
            (None, true) => {
                status.overdue += 1;
                "overdue"
            }
        };
        status.enterprises.push(ScreeningEntry {
            enterprise_id: row.try_get("subject_id")?,
            display_name: row.try_get("display_name")?,
            item_id: row.try_get("id")?,
            state: state.into(),
            outcome: row.try_get("outcome")?,
            closed_at: closed_at.map(rfc3339),
        });
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("e{i:03}")).collect()
    }

    #[test]
    fn sample_size_takes_the_share_rounded_up_within_min_and_total() {
        assert_eq!(sample_size(0, 10, 1), 0);
        assert_eq!(sample_size(3, 10, 1), 1);
        assert_eq!(sample_size(101, 10, 1), 11);
        assert_eq!(sample_size(100, 10, 20), 20);
        assert_eq!(sample_size(5, 10, 20), 5);
        assert_eq!(sample_size(40, 100, 0), 40);
        assert_eq!(sample_size(40, 0, 0), 0);
    }

    #[test]
    fn a_seeded_draw_is_repeatable_distinct_and_from_the_candidates() {
        let candidates = names(200);
        let a = draw(&candidates, 20, 42);
        let b = draw(&candidates, 20, 42);
        assert_eq!(a, b, "same seed, same sample");
        assert_eq!(a.len(), 20);
        let mut unique = a.clone();
        unique.dedup();
        assert_eq!(unique.len(), 20, "no subject drawn twice");
        assert!(a.iter().all(|x| candidates.contains(x)));
        let c = draw(&candidates, 20, 43);
        assert_ne!(a, c, "another seed draws another sample");
        assert_eq!(draw(&candidates[..3], 10, 1).len(), 3);
    }

    #[test]
    fn draws_spread_over_all_candidates() {
        let candidates = names(10);
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            seen.extend(draw(&candidates, 1, seed));
        }
        assert_eq!(seen.len(), 10, "every candidate can be drawn");
    }

    #[test]
    fn quarters_have_their_dates() {
        assert_eq!(quarter_of("2026-12-05").as_deref(), Some("2026-Q4"));
        assert_eq!(quarter_of("2026-04-01").as_deref(), Some("2026-Q2"));
        assert_eq!(quarter_of("2026-13-01"), None);
        let (first, last) = quarter_dates("2026-Q4").unwrap();
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2026-10-01".into(), "2026-12-31".into())
        );
        let (first, last) = quarter_dates("2024-Q1").unwrap();
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2024-01-01".into(), "2024-03-31".into())
        );
        assert!(quarter_dates("2026-Q5").is_none());
        assert!(quarter_dates("2026Q1").is_none());
    }

    async fn start(dir: &std::path::Path) -> AppState {
        let mut config = crate::Config {
            data_dir: dir.to_path_buf(),
            ..crate::Config::default()
        };
        config.checks.enterprise_sample_percent = 10;
        config.checks.enterprise_sample_min = 1;
        AppState::start(config).await.expect("server state")
    }

    async fn count(state: &AppState, queue: &str, period: &str) -> i64 {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM check_items WHERE queue = $1 AND period = $2")
                .bind(queue)
                .bind(period)
                .fetch_one(&state.db.pool)
                .await
                .unwrap();
        row.try_get("n").unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_date_is_drawn_once_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let state = start(dir.path()).await;
        let mut ids = Vec::new();
        for i in 0..25 {
            let account = crate::auth::NewAccount {
                login: format!("firm-{i:02}"),
                password: "a long enough password 1".into(),
                role: crate::auth::Role::Enterprise,
                display_name: format!("Firm {i:02}"),
                teams: Vec::new(),
                organisation_id: None,
            };
            ids.push(crate::auth::create_account(&state, &account).await.unwrap());
        }
        ids.sort();

        let first = run_daily(&state, "2026-01-05", Some(7), None)
            .await
            .unwrap();
        assert!(!first.already_drawn);
        assert_eq!(first.enterprises, 3, "10 % of 25, rounded up");
        assert_eq!(count(&state, "enterprise_risk", "2026-01-05").await, 3);
        let rows = sqlx::query(
            "SELECT subject_id FROM check_items WHERE queue = 'enterprise_risk' \
             AND period = '2026-01-05' ORDER BY subject_id",
        )
        .fetch_all(&state.db.pool)
        .await
        .unwrap();
        let drawn: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("subject_id").unwrap())
            .collect();
        assert_eq!(drawn, draw(&ids, 3, 7), "the seeded draw");
        assert_eq!(first.quarter, "2026-Q1");
        assert_eq!(first.screening_created, 25);

        let again = run_daily(&state, "2026-01-05", Some(8), None)
            .await
            .unwrap();
        assert!(again.already_drawn);
        assert_eq!((again.enterprises, again.screening_created), (3, 0));
        assert_eq!(count(&state, "enterprise_risk", "2026-01-05").await, 3);

        let next_day = run_daily(&state, "2026-01-06", Some(7), None)
            .await
            .unwrap();
        assert!(!next_day.already_drawn);
        assert_eq!(count(&state, "enterprise_risk", "2026-01-06").await, 3);

        state.db.pool.close().await;
        drop(state);
        let state = start(dir.path()).await;
        let restarted = run_daily(&state, "2026-01-05", None, None).await.unwrap();
        assert!(
            restarted.already_drawn,
            "the run is remembered across a restart"
        );
        assert_eq!(count(&state, "enterprise_risk", "2026-01-05").await, 3);
        assert_eq!(count(&state, "screening", "2026-Q1").await, 25);
    }

    #[test]
    fn percentages_over_100_are_refused() {
        let mut config = ChecksConfig::default();
        assert!(config.validate().is_ok());
        config.order_sample_percent = 101;
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("order_sample_percent")
        );
    }
}
