//! Paying workers what they are owed (5.4.3 payout cycles, 5.5.1 payment): the batch job
//! that turns settlements into payouts and hands them to the payment provider
//! ([`crate::payments`]).
//!
//! # Payout cycles
//!
//! Each worker chooses how often they are paid: `day` (the default), `week` or `month`. A
//! settlement belongs to a **period** by the Asia/Shanghai date it was created on, and is
//! **due** from the first Shanghai day after the period:
//!
//! | Cycle   | Period of a settlement made on date D | Due from                          |
//! |---------|---------------------------------------|-----------------------------------|
//! | `day`   | `day:D`                               | D + 1 day                         |
//! | `week`  | `week:M`, M = the Monday of D's week  | M + 7 days (the Monday after D)   |
//! | `month` | `month:YYYY-MM` of D                  | the 1st of the month after D      |
//!
//! The cycle in force when the job runs decides: a worker who switches from `month` to
//! `day` has their waiting settlements paid at the next run.
//!
//! # The batch job
//!
//! [`run`] is spawned every `[payments] batch_interval_secs`, and started on demand by the
//! finance team (`POST /api/v1/payouts/run`) or `flexwork payouts run`. Each run:
//!
//! 1. **Resolves** payouts whose outcome is not known: `unknown` (the call timed out or the
//!    provider was unavailable), `processing` (accepted, result pending) and `sending`
//!    payouts older than `stale_after_secs` (their sender stopped midway). It asks the
//!    provider by the payout's own key; if the provider never received it, the payout goes
//!    back to `created` and is sent again **under the same key**.
//! 2. **Creates** payouts: the due `pending_payout` settlements of each worker and period
//!    become one payout of their summed net pay, key `payout:{worker}:{period}:{attempt}`,
//!    attempt one more than the period's previous payouts. In one transaction: the payout
//!    row (its key unique), the settlements `in_payout` (only if still `pending_payout`),
//!    and the ledger entry `payout_sent:{id}` (Dr worker payable, Cr payouts in flight).
//! 3. **Sends** every `created` payout: it is claimed (`created` → `sending` by one
//!    conditional update, so one sender per payout) and submitted under its key.
//!
//! An outcome is applied once ([`apply`]), whether it comes from the submission, a query or
//! a callback: the payout's conditional move to `paid` or `failed` is the lock. **Paid**:
//! ledger `payout_paid:{id}` (Dr payouts in flight, Cr bank), settlements `paid`.
//! **Rejected**: ledger `payout_failed:{id}` (Dr payouts in flight, Cr worker payable), the
//! provider's reason kept, settlements back to `pending_payout` for the next run, which
//! pays them under a new attempt's key. A new key is only ever made after the provider said
//! no for good.
//!
//! Why nothing is paid twice, whatever is retried, raced or replayed: one key per payout,
//! unique in the database and deduplicated by the provider; a settlement joins a payout only
//! from `pending_payout`, in the transaction that creates it (two runs, or two servers on one
//! PostgreSQL, race on the key and on the settlements, and the loser rolls back); a payout
//! is submitted only by whoever claimed it; a new attempt's key only after a rejection; and
//! each ledger entry is posted once per key.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Event, Outcome};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ledger::{self, Account, Entry};
use crate::payments::{PaymentCallback, PaymentError, PayoutRequest, PayoutState};
use crate::{AppState, new_id, now_ms, rfc3339};

/// Header carrying the Unix time (seconds) a payment callback was signed at.
pub const TIMESTAMP_HEADER: &str = "x-payment-timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = "x-payment-signature";
/// How far a callback's timestamp may be from the server's clock.
pub const MAX_CALLBACK_SKEW_SECS: i64 = 300;

/// How often a worker is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cycle {
    Day,
    Week,
    Month,
}

impl Cycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Cycle::Day => "day",
            Cycle::Week => "week",
            Cycle::Month => "month",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Cycle::Day),
            "week" => Some(Cycle::Week),
            "month" => Some(Cycle::Month),
            _ => None,
        }
    }
}

/// The Asia/Shanghai calendar date of an instant.
fn shanghai_day(ms: i64) -> time::Date {
    let shanghai = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(shanghai)
        .date()
}

/// The period a settlement made at `created_ms` belongs to under `cycle`, and the first
/// Shanghai date it is due on. See the module documentation.
pub fn period(cycle: Cycle, created_ms: i64) -> (String, time::Date) {
    let day = shanghai_day(created_ms);
    match cycle {
        Cycle::Day => (format!("day:{day}"), day + time::Duration::days(1)),
        Cycle::Week => {
            let monday =
                day - time::Duration::days(i64::from(day.weekday().number_days_from_monday()));
            (format!("week:{monday}"), monday + time::Duration::days(7))
        }
        Cycle::Month => {
            let (year, month) = (day.year(), day.month());
            let (next_year, next_month) = match month {
                time::Month::December => (year + 1, time::Month::January),
                m => (year, m.next()),
            };
            let due = time::Date::from_calendar_date(next_year, next_month, 1).unwrap_or(day);
            (format!("month:{year:04}-{:02}", u8::from(month)), due)
        }
    }
}

/// Whether a settlement made at `created_ms` is due for payment at `now_ms`.
pub fn is_due(cycle: Cycle, created_ms: i64, now_ms: i64) -> bool {
    shanghai_day(now_ms) >= period(cycle, created_ms).1
}

/// The worker's payout cycle (`day` unless they chose another).
pub async fn cycle_of(state: &AppState, worker_id: &str) -> ApiResult<Cycle> {
    let row = sqlx::query("SELECT cycle FROM payout_preferences WHERE worker_id = $1")
        .bind(worker_id)
        .fetch_optional(&state.db.pool)
        .await?;
    let stored: Option<String> = row.map(|r| r.try_get("cycle")).transpose()?;
    Ok(stored
        .as_deref()
        .and_then(Cycle::parse)
        .unwrap_or(Cycle::Day))
}

/// Sets the calling worker's payout cycle; audited with the old and new cycle.
pub async fn set_cycle(state: &AppState, caller: &Caller, cycle: Cycle) -> ApiResult<Cycle> {
    let before = cycle_of(state, &caller.account_id).await?;
    sqlx::query(
        "INSERT INTO payout_preferences (worker_id, cycle, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (worker_id) DO UPDATE SET cycle = $2, updated_at = $3",
    )
    .bind(&caller.account_id)
    .bind(cycle.as_str())
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    let detail = serde_json::json!({ "before": before.as_str(), "after": cycle.as_str() });
    let event = Event::by(caller, "payout_cycle_changed", Outcome::Ok)
        .object(format!("account:{}", caller.account_id))
        .detail(detail);
    audit::record(state, event).await?;
    Ok(cycle)
}

/// What one run of the batch job did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RunReport {
    /// Payouts of unknown outcome asked about at the provider.
    pub queried: i64,
    /// Payouts created from due settlements.
    pub created: i64,
    /// Payouts submitted to the provider.
    pub sent: i64,
    /// Payouts that ended paid in this run.
    pub paid: i64,
    /// Payouts the provider rejected in this run.
    pub failed: i64,
    /// Payouts whose outcome is still not known (timeout, unavailable, processing).
    pub pending: i64,
    /// Groups of due settlements not turned into a payout (another run took them, or the
    /// ledger refused); see the server log.
    pub skipped: i64,
}

/// Who started a run, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Trigger<'a> {
    /// The scheduled job.
    Schedule,
    /// `flexwork payouts run`.
    Command,
    /// A finance operator over HTTP.
    Operator(&'a Caller),
}

/// One run of the batch job: resolve, create, send. See the module documentation.
pub async fn run(state: &AppState, trigger: Trigger<'_>) -> ApiResult<RunReport> {
    let mut report = RunReport::default();
    resolve(state, &mut report).await?;
    create(state, &mut report).await?;
    send(state, &mut report).await?;
    let detail = serde_json::to_value(&report).map_err(ApiError::internal)?;
    let event = match trigger {
        Trigger::Operator(caller) => Event::by(caller, "payouts_run", Outcome::Ok),
        Trigger::Schedule | Trigger::Command => Event::anonymous("payouts_run", Outcome::Ok),
    };
    let by = match trigger {
        Trigger::Schedule => "schedule",
        Trigger::Command => "command",
        Trigger::Operator(_) => "operator",
    };
    let detail = serde_json::json!({ "trigger": by, "report": detail });
    audit::record(state, event.detail(detail)).await?;
    tracing::info!(
        trigger = by,
        created = report.created,
        paid = report.paid,
        failed = report.failed,
        pending = report.pending,
        "payout run finished"
    );
    Ok(report)
}

/// The stored facts of a payout the job needs.
#[derive(Debug, Clone)]
struct PayoutRow {
    id: String,
    worker_id: String,
    key: String,
    amount_fen: i64,
    status: String,
}

fn payout_row(row: &sqlx::any::AnyRow) -> ApiResult<PayoutRow> {
    Ok(PayoutRow {
        id: row.try_get("id")?,
        worker_id: row.try_get("worker_id")?,
        key: row.try_get("idempotency_key")?,
        amount_fen: row.try_get("amount_fen")?,
        status: row.try_get("status")?,
    })
}

const PAYOUT_COLUMNS: &str = "id, worker_id, idempotency_key, amount_fen, status";

async fn resolve(state: &AppState, report: &mut RunReport) -> ApiResult<()> {
    let stale = now_ms() - state.config.payments.stale_after_secs as i64 * 1_000;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE status IN ('unknown', 'processing') \
           OR (status = 'sending' AND updated_at < $1) ORDER BY created_at"
    )))
    .bind(stale)
    .fetch_all(&state.db.pool)
    .await?;
    for row in rows {
        let payout = payout_row(&row)?;
        report.queried += 1;
        match state.payments.query(&payout.key).await {
            Ok(Some(answer)) => record_answer(state, &payout, answer, "query", report).await?,
            Ok(None) => {
                // The provider never received it: send it again, under the same key.
                let resent = sqlx::query(
                    "UPDATE payouts SET status = 'created', updated_at = $1 \
                     WHERE id = $2 AND status = $3",
                )
                .bind(now_ms())
                .bind(&payout.id)
                .bind(&payout.status)
                .execute(&state.db.pool)
                .await?;
                if resent.rows_affected() == 1 {
                    tracing::info!(payout = %payout.id, key = %payout.key,
                        "payout unknown to the provider: it is sent again under its key");
                }
            }
            Err(e) => {
                report.pending += 1;
                tracing::warn!(payout = %payout.id, error = %e,
                    "payout status query failed; asked again at the next run");
            }
        }
    }
    Ok(())
}

async fn create(state: &AppState, report: &mut RunReport) -> ApiResult<()> {
    let rows = sqlx::query(
        "SELECT s.id, s.worker_id, s.net_fen, s.created_at, p.cycle \
         FROM settlements s LEFT JOIN payout_preferences p ON p.worker_id = s.worker_id \
         WHERE s.status = 'pending_payout' ORDER BY s.worker_id, s.created_at, s.id",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let now = now_ms();
    let mut groups: BTreeMap<(String, String), Vec<(String, i64)>> = BTreeMap::new();
    for row in rows {
        let cycle: Option<String> = row.try_get("cycle")?;
        let cycle = cycle
            .as_deref()
            .and_then(Cycle::parse)
            .unwrap_or(Cycle::Day);
        let created: i64 = row.try_get("created_at")?;
        if !is_due(cycle, created, now) {
            continue;
        }
        let worker: String = row.try_get("worker_id")?;
        groups
            .entry((worker, period(cycle, created).0))
            .or_default()
            .push((row.try_get("id")?, row.try_get("net_fen")?));
    }
    for ((worker, period), items) in groups {
        match create_payout(state, &worker, &period, &items).await {
            Ok(Some(_)) => report.created += 1,
            Ok(None) => report.skipped += 1,
            Err(e) => {
                report.skipped += 1;
                tracing::error!(worker = %worker, period = %period, error = %e.message,
                    code = e.code, "payout not created");
            }
        }
    }
    Ok(())
}

/// Creates one payout of `items`; `None` if another run took the settlements or the key.
async fn create_payout(
    state: &AppState,
    worker: &str,
    period: &str,
    items: &[(String, i64)],
) -> ApiResult<Option<String>> {
    let amount: i64 = items.iter().map(|(_, fen)| fen).sum();
    if amount <= 0 {
        return Ok(None);
    }
    let mut tx = state.db.begin_write().await?;
    let attempt: i64 = sqlx::query(
        "SELECT COALESCE(MAX(attempt), 0) + 1 AS next FROM payouts \
         WHERE worker_id = $1 AND period = $2",
    )
    .bind(worker)
    .bind(period)
    .fetch_one(&mut *tx)
    .await?
    .try_get("next")?;
    let id = new_id();
    let key = format!("payout:{worker}:{period}:{attempt}");
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO payouts (id, worker_id, period, attempt, idempotency_key, amount_fen, \
           status, provider, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(worker)
    .bind(period)
    .bind(attempt)
    .bind(&key)
    .bind(amount)
    .bind(state.payments.name())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tracing::info!(key = %key, "payout key taken by a concurrent run; skipped");
        return Ok(None);
    }
    for (settlement, net) in items {
        let taken = sqlx::query(
            "UPDATE settlements SET status = 'in_payout', payout_id = $1 \
             WHERE id = $2 AND status = 'pending_payout'",
        )
        .bind(&id)
        .bind(settlement)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            tracing::info!(key = %key, "settlement taken by a concurrent run; payout dropped");
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO payout_items (payout_id, settlement_id, net_fen) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(settlement)
        .bind(net)
        .execute(&mut *tx)
        .await?;
    }
    let entry = Entry::new("payout_sent", format!("payout_sent:{id}"), &id)
        .debit(Account::WorkerPayable(worker.to_owned()), amount)
        .credit(Account::PayoutsInFlight, amount);
    ledger::post(&mut tx, &entry).await?;
    tx.commit().await?;
    tracing::info!(payout = %id, key = %key, amount_fen = amount, settlements = items.len(),
        "payout created");
    Ok(Some(id))
}

async fn send(state: &AppState, report: &mut RunReport) -> ApiResult<()> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE status = 'created' ORDER BY created_at"
    )))
    .fetch_all(&state.db.pool)
    .await?;
    for row in rows {
        let payout = payout_row(&row)?;
        let claimed = sqlx::query(
            "UPDATE payouts SET status = 'sending', updated_at = $1 \
             WHERE id = $2 AND status = 'created'",
        )
        .bind(now_ms())
        .bind(&payout.id)
        .execute(&state.db.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        report.sent += 1;
        let request = PayoutRequest {
            idempotency_key: payout.key.clone(),
            payout_id: payout.id.clone(),
            payee: payout.worker_id.clone(),
            amount_fen: payout.amount_fen,
        };
        match state.payments.submit(&request).await {
            Ok(answer) => record_answer(state, &payout, answer, "submit", report).await?,
            Err(e) => {
                report.pending += 1;
                mark(state, &payout.id, "unknown", &["sending"]).await?;
                let timeout = matches!(e, PaymentError::Timeout);
                tracing::warn!(payout = %payout.id, key = %payout.key, timeout, error = %e,
                    "payout outcome unknown; the provider is asked by its key at the next run");
            }
        }
    }
    Ok(())
}

/// Moves a payout to `status` if it is in one of `from`.
async fn mark(state: &AppState, id: &str, status: &str, from: &[&str]) -> ApiResult<bool> {
    let mut changed = false;
    for old in from {
        let result = sqlx::query(
            "UPDATE payouts SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .bind(old)
        .execute(&state.db.pool)
        .await?;
        changed |= result.rows_affected() == 1;
    }
    Ok(changed)
}

/// Applies the provider's answer about `payout`.
async fn record_answer(
    state: &AppState,
    payout: &PayoutRow,
    answer: PayoutState,
    source: &'static str,
    report: &mut RunReport,
) -> ApiResult<()> {
    match answer {
        PayoutState::Processing { .. } => {
            report.pending += 1;
            mark(state, &payout.id, "processing", &["sending", "unknown"]).await?;
        }
        answer => {
            let mut tx = state.db.begin_write().await?;
            let applied = apply(&mut tx, payout, &answer).await?;
            tx.commit().await?;
            if let Applied::Now = applied {
                match answer {
                    PayoutState::Paid { .. } => report.paid += 1,
                    _ => report.failed += 1,
                }
                audit_outcome(state, payout, &answer, source).await?;
            }
        }
    }
    Ok(())
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The outcome was recorded now.
    Now,
    /// The payout had already ended the same way.
    Already,
    /// The payout had already ended the other way: the provider contradicts itself.
    Contradicted,
}

/// Records a final answer (`paid` or `rejected`) in `tx`, once. See the module docs.
async fn apply(
    tx: &mut Transaction<'static, Any>,
    payout: &PayoutRow,
    answer: &PayoutState,
) -> ApiResult<Applied> {
    let (status, provider_ref, code, reason) = match answer {
        PayoutState::Paid { provider_ref } => ("paid", Some(provider_ref), None, None),
        PayoutState::Rejected { code, reason } => ("failed", None, Some(code), Some(reason)),
        PayoutState::Processing { .. } => return Err(ApiError::internal("not a final answer")),
    };
    let now = now_ms();
    let moved = sqlx::query(
        "UPDATE payouts SET status = $1, provider_ref = COALESCE($2, provider_ref), \
           failure_code = $3, failure_reason = $4, updated_at = $5, completed_at = $5 \
         WHERE id = $6 AND status NOT IN ('paid', 'failed')",
    )
    .bind(status)
    .bind(provider_ref)
    .bind(code)
    .bind(reason)
    .bind(now)
    .bind(&payout.id)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 0 {
        let stored: String = sqlx::query("SELECT status FROM payouts WHERE id = $1")
            .bind(&payout.id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("status")?;
        return Ok(if stored == status {
            Applied::Already
        } else {
            Applied::Contradicted
        });
    }
    let (id, amount) = (&payout.id, payout.amount_fen);
    if status == "paid" {
        let entry = Entry::new("payout_paid", format!("payout_paid:{id}"), id)
            .debit(Account::PayoutsInFlight, amount)
            .credit(Account::Bank, amount);
        ledger::post(tx, &entry).await?;
        sqlx::query("UPDATE settlements SET status = 'paid' WHERE payout_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    } else {
        let entry = Entry::new("payout_failed", format!("payout_failed:{id}"), id)
            .debit(Account::PayoutsInFlight, amount)
            .credit(Account::WorkerPayable(payout.worker_id.clone()), amount);
        ledger::post(tx, &entry).await?;
        sqlx::query(
            "UPDATE settlements SET status = 'pending_payout', payout_id = NULL \
             WHERE payout_id = $1",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Now)
}

async fn audit_outcome(
    state: &AppState,
    payout: &PayoutRow,
    answer: &PayoutState,
    source: &'static str,
) -> ApiResult<()> {
    let (action, detail) = match answer {
        PayoutState::Rejected { code, reason } => (
            "payout_failed",
            serde_json::json!({ "source": source, "amount_fen": payout.amount_fen,
                "code": code, "reason": reason }),
        ),
        _ => (
            "payout_paid",
            serde_json::json!({ "source": source, "amount_fen": payout.amount_fen }),
        ),
    };
    tracing::info!(payout = %payout.id, key = %payout.key, amount_fen = payout.amount_fen,
        source, outcome = action, "payout outcome recorded");
    let event = Event::anonymous(action, Outcome::Ok)
        .object(format!("payout:{}", payout.id))
        .detail(detail);
    audit::record(state, event).await
}

/// What became of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Applied now (or a `processing` notice noted).
    Applied(String),
    /// The same callback was applied before, or the payout already ended this way.
    Duplicate(String),
    /// The payout already ended the other way; nothing was changed.
    Contradicted(String),
    /// No payout has this key.
    Unknown,
}

/// Applies a provider callback once: the callback's id is recorded in the same transaction
/// as the outcome, so a repeat delivery (before or after a restart) changes nothing.
pub async fn apply_callback(
    state: &AppState,
    callback: &PaymentCallback,
    channel: &'static str,
) -> ApiResult<CallbackOutcome> {
    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE idempotency_key = $1"
    )))
    .bind(&callback.idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(CallbackOutcome::Unknown);
    };
    let payout = payout_row(&row)?;
    let first = sqlx::query(
        "INSERT INTO payout_callbacks (provider, callback_id, payout_id, received_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (provider, callback_id) DO NOTHING",
    )
    .bind(&callback.provider)
    .bind(&callback.callback_id)
    .bind(&payout.id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if first.rows_affected() == 0 {
        tracing::info!(payout = %payout.id, callback_id = %callback.callback_id,
            attempt = callback.delivery_attempt, channel,
            "duplicate payment callback ignored");
        return Ok(CallbackOutcome::Duplicate(payout.id));
    }
    let applied = match &callback.outcome {
        PayoutState::Processing { .. } => {
            sqlx::query(
                "UPDATE payouts SET status = 'processing', updated_at = $1 \
                 WHERE id = $2 AND status IN ('sending', 'unknown')",
            )
            .bind(now_ms())
            .bind(&payout.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(CallbackOutcome::Applied(payout.id));
        }
        outcome => apply(&mut tx, &payout, outcome).await?,
    };
    if applied == Applied::Contradicted {
        tracing::error!(payout = %payout.id, callback_id = %callback.callback_id, channel,
            "payment callback contradicts the payout's recorded outcome; not applied");
        return Ok(CallbackOutcome::Contradicted(payout.id));
    }
    tx.commit().await?;
    match applied {
        Applied::Now => {
            let source = if channel == "http" {
                "callback_http"
            } else {
                "callback"
            };
            audit_outcome(state, &payout, &callback.outcome, source).await?;
            Ok(CallbackOutcome::Applied(payout.id))
        }
        _ => {
            tracing::info!(payout = %payout.id, callback_id = %callback.callback_id, channel,
                "payment callback for a payout already in that state");
            Ok(CallbackOutcome::Duplicate(payout.id))
        }
    }
}

/// The answer to an HTTP callback.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackAck {
    pub callback_id: String,
    pub payout_id: String,
    /// True the first time; a repeat is acknowledged with `duplicate` and changes nothing.
    pub applied: bool,
    pub duplicate: bool,
}

/// The value of [`SIGNATURE_HEADER`] for `body` signed at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn verify(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> ApiResult<()> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let invalid = || {
        let message = format!(
            "the payment callback is not signed with this platform's callback secret: \
             {SIGNATURE_HEADER} must be sha256=<hex HMAC-SHA256 of \
             \"{{{TIMESTAMP_HEADER}}}.{{body}}\">"
        );
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "callback_signature_invalid",
            message,
        )
    };
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(invalid)?;
    let signature = header(SIGNATURE_HEADER)
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(invalid)?;
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| invalid())?;
    if (now_ms() / 1_000 - timestamp).abs() > MAX_CALLBACK_SKEW_SECS {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "callback_signature_expired",
            "the callback's timestamp is more than 5 minutes from the server's clock; sign \
             it again when sending it",
        ));
    }
    Ok(())
}

/// Receives a provider's callback over HTTP: checks its signature, then applies it once.
pub async fn receive(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    address: Option<String>,
) -> ApiResult<CallbackAck> {
    let Some(secret) = &state.config.payments.callback_secret else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "callbacks_not_configured",
            "this server takes no payment callbacks over HTTP: no callback secret is \
             configured ([payments] callback_secret)",
        ));
    };
    if let Err(e) = verify(secret.expose(), headers, body) {
        let event = Event::anonymous("payment_callback", Outcome::Refused)
            .detail(serde_json::json!({ "code": e.code }))
            .address(address);
        audit::record(state, event).await?;
        return Err(e);
    }
    let callback: PaymentCallback = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "invalid_callback",
            "the callback is not one this platform reads: send {callback_id, provider, \
             idempotency_key, delivery_attempt, outcome: {status, ...}}",
        )
    })?;
    if !(1..=200).contains(&callback.callback_id.trim().len()) {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "the callback's callback_id must be 1 to 200 characters (not blank)",
        ));
    }
    if callback.idempotency_key.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "the callback's idempotency_key must not be empty",
        ));
    }
    if callback.provider != state.payments.name() {
        let message = format!(
            "the callback names provider {:?}, but this platform pays through {:?}",
            callback.provider,
            state.payments.name()
        );
        return Err(ApiError::bad_request("callback_provider_mismatch", message));
    }
    let (payout_id, applied) = match apply_callback(state, &callback, "http").await? {
        CallbackOutcome::Applied(id) => (id, true),
        CallbackOutcome::Duplicate(id) => (id, false),
        CallbackOutcome::Contradicted(_) => {
            return Err(ApiError::conflict(
                "payout_outcome_conflict",
                "the payout already ended the other way; the callback was not applied",
            ));
        }
        CallbackOutcome::Unknown => {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "unknown_payout",
                "no payout has this idempotency key",
            ));
        }
    };
    let event = Event::anonymous("payment_callback", Outcome::Ok)
        .object(format!("payout:{payout_id}"))
        .detail(serde_json::json!({
            "callback_id": callback.callback_id, "duplicate": !applied,
        }))
        .address(address);
    audit::record(state, event).await?;
    Ok(CallbackAck {
        callback_id: callback.callback_id,
        payout_id,
        applied,
        duplicate: !applied,
    })
}

/// Starts the payout machinery: the consumer of the provider's in-process callbacks, and
/// the scheduled batch job every `[payments] batch_interval_secs` (none when 0).
pub fn spawn(state: AppState) {
    if let Some(mut callbacks) = state.payments.take_callbacks() {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(callback) = callbacks.recv().await {
                for attempt in 0..5u32 {
                    match apply_callback(&state, &callback, "provider").await {
                        Ok(CallbackOutcome::Unknown) => tracing::warn!(
                            callback_id = %callback.callback_id,
                            "payment callback for no known payout"),
                        Ok(_) => {}
                        Err(e) if attempt < 4 => {
                            tracing::warn!(callback_id = %callback.callback_id,
                                error = %e.message, "payment callback not applied yet; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt))
                                .await;
                            continue;
                        }
                        Err(e) => tracing::error!(callback_id = %callback.callback_id,
                            error = %e.message, "payment callback could not be applied"),
                    }
                    break;
                }
            }
        });
    }
    let interval = state.config.payments.batch_interval_secs;
    if interval == 0 {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
            if let Err(e) = run(&state, Trigger::Schedule).await {
                tracing::warn!(error = %e.message, "scheduled payout run failed");
            }
        }
    });
}

/// One settlement a payout carried.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PayoutItem {
    pub settlement_id: String,
    pub order_id: String,
    pub net_fen: i64,
    /// The settlement's status now: `paid` once this payout was paid, `pending_payout` or
    /// `in_payout` (another attempt) after a rejection.
    pub status: String,
}

/// A payout as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PayoutView {
    pub id: String,
    pub worker_id: String,
    /// `day:YYYY-MM-DD`, `week:<Monday>` or `month:YYYY-MM`.
    pub period: String,
    /// 1 for the period's first payout; one more after each rejection.
    pub attempt: i64,
    /// The key the provider deduplicates on.
    pub idempotency_key: String,
    pub amount_fen: i64,
    /// `created`, `sending`, `processing`, `unknown`, `paid` or `failed`.
    pub status: String,
    /// The provider it went through (`sandbox` for the sandbox: nobody was paid).
    pub provider: String,
    pub provider_ref: Option<String>,
    /// Why the provider rejected it.
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// The settlements it carried (only in `GET /payouts/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlements: Option<Vec<PayoutItem>>,
}

fn view_from_row(row: &sqlx::any::AnyRow) -> ApiResult<PayoutView> {
    Ok(PayoutView {
        id: row.try_get("id")?,
        worker_id: row.try_get("worker_id")?,
        period: row.try_get("period")?,
        attempt: row.try_get("attempt")?,
        idempotency_key: row.try_get("idempotency_key")?,
        amount_fen: row.try_get("amount_fen")?,
        status: row.try_get("status")?,
        provider: row.try_get("provider")?,
        provider_ref: row.try_get("provider_ref")?,
        failure_code: row.try_get("failure_code")?,
        failure_reason: row.try_get("failure_reason")?,
        created_at: rfc3339(row.try_get("created_at")?),
        completed_at: row.try_get::<Option<i64>, _>("completed_at")?.map(rfc3339),
        settlements: None,
    })
}

/// Payouts, newest first: every worker's, or only `worker`'s.
pub async fn list(state: &AppState, worker: Option<&str>) -> ApiResult<Vec<PayoutView>> {
    let rows = match worker {
        Some(worker) => {
            sqlx::query("SELECT * FROM payouts WHERE worker_id = $1 ORDER BY created_at DESC")
                .bind(worker)
                .fetch_all(&state.db.pool)
                .await?
        }
        None => {
            sqlx::query("SELECT * FROM payouts ORDER BY created_at DESC LIMIT 1000")
                .fetch_all(&state.db.pool)
                .await?
        }
    };
    rows.iter().map(view_from_row).collect()
}

/// One payout with its settlements.
pub async fn get(state: &AppState, id: &str) -> ApiResult<Option<PayoutView>> {
    let Some(row) = sqlx::query("SELECT * FROM payouts WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
    else {
        return Ok(None);
    };
    let mut view = view_from_row(&row)?;
    let items = sqlx::query(
        "SELECT i.settlement_id, s.order_id, i.net_fen, s.status FROM payout_items i \
         JOIN settlements s ON s.id = i.settlement_id WHERE i.payout_id = $1 \
         ORDER BY s.created_at, s.id",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let items = items
        .iter()
        .map(|r| {
            Ok(PayoutItem {
                settlement_id: r.try_get("settlement_id")?,
                order_id: r.try_get("order_id")?,
                net_fen: r.try_get("net_fen")?,
                status: r.try_get("status")?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    view.settlements = Some(items);
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a Shanghai wall-clock time.
    fn at(date: &str, hh: u8) -> i64 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let day = time::Date::parse(date, &format).unwrap();
        let time = time::Time::from_hms(hh, 0, 0).unwrap();
        let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap();
        let instant = time::PrimitiveDateTime::new(day, time).assume_offset(offset);
        (instant.unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn due(cycle: Cycle, created: (&str, u8)) -> (String, String) {
        let (label, due) = period(cycle, at(created.0, created.1));
        (label, due.to_string())
    }

    #[test]
    fn a_day_is_paid_the_next_shanghai_day() {
        assert_eq!(
            due(Cycle::Day, ("2026-12-04", 10)),
            ("day:2026-12-04".into(), "2026-12-05".into())
        );
        // 23:30 in Shanghai is still the same Shanghai day, though UTC is too.
        assert_eq!(due(Cycle::Day, ("2026-12-31", 23)).1, "2027-01-01");
        // 07:00 in Shanghai is the previous day in UTC: the Shanghai date counts.
        assert_eq!(due(Cycle::Day, ("2026-12-05", 7)).0, "day:2026-12-05");
        assert!(!is_due(
            Cycle::Day,
            at("2026-12-04", 10),
            at("2026-12-04", 23)
        ));
        assert!(is_due(
            Cycle::Day,
            at("2026-12-04", 10),
            at("2026-12-05", 0)
        ));
    }

    #[test]
    fn a_week_is_paid_the_monday_after() {
        // 2026-12-07 is a Monday.
        let monday = ("week:2026-12-07".to_string(), "2026-12-14".to_string());
        assert_eq!(due(Cycle::Week, ("2026-12-07", 9)), monday);
        assert_eq!(due(Cycle::Week, ("2026-12-10", 9)), monday);
        assert_eq!(due(Cycle::Week, ("2026-12-13", 22)), monday);
        assert_eq!(
            due(Cycle::Week, ("2026-12-29", 9)),
            ("week:2026-12-28".into(), "2027-01-04".into())
        );
        assert!(!is_due(
            Cycle::Week,
            at("2026-12-07", 9),
            at("2026-12-13", 23)
        ));
        assert!(is_due(
            Cycle::Week,
            at("2026-12-07", 9),
            at("2026-12-14", 0)
        ));
    }

    #[test]
    fn a_month_is_paid_on_the_first_of_the_next() {
        assert_eq!(
            due(Cycle::Month, ("2026-12-04", 9)),
            ("month:2026-12".into(), "2027-01-01".into())
        );
        assert_eq!(due(Cycle::Month, ("2028-02-29", 9)).1, "2028-03-01");
        assert_eq!(due(Cycle::Month, ("2026-01-31", 23)).0, "month:2026-01");
        assert!(!is_due(
            Cycle::Month,
            at("2026-12-01", 0),
            at("2026-12-31", 23)
        ));
        assert!(is_due(
            Cycle::Month,
            at("2026-12-31", 23),
            at("2027-01-01", 0)
        ));
    }

    #[test]
    fn callbacks_are_signed_over_time_and_body() {
        let secret = "0123456789abcdef0123456789abcdef";
        let now = now_ms() / 1_000;
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, now.to_string().parse().unwrap());
        let signature = sign(secret, now, b"{}");
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        assert!(verify(secret, &headers, b"{}").is_ok());
        assert_eq!(
            verify(secret, &headers, b"{ }").unwrap_err().code,
            "callback_signature_invalid"
        );
        let old = now - 600;
        headers.insert(TIMESTAMP_HEADER, old.to_string().parse().unwrap());
        headers.insert(SIGNATURE_HEADER, sign(secret, old, b"{}").parse().unwrap());
        assert_eq!(
            verify(secret, &headers, b"{}").unwrap_err().code,
            "callback_signature_expired"
        );
    }
}
