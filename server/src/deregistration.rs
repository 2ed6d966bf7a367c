//! Deregistration of accounts (standard 4.2.6, 5.6).
//!
//! A worker or enterprise asks to close their own account, or an administrator or support
//! operator does so on an authority's order (with a reason and the order's reference). The
//! request:
//!
//! 1. is refused (409 `deregistration_blocked`, the blocking items listed) while the
//!    account still has orders not finished (not settled, rejected or cancelled) or, for an
//!    enterprise, tasks published;
//! 2. otherwise records a **reconciliation summary** of all the account's business on the
//!    platform (orders by status, settlements' gross, tax and net) and a **reminder** to the
//!    holder (a row in `notifications`: there is no SMS or e-mail service);
//! 3. is due within **3 working days** (calendar of `[calendar]`), the holder's time to
//!    settle anything left. The background job ([`close_due`]) closes it on its last wake-up
//!    before the due time: the account is suspended for good, its tokens and phones
//!    revoked, its draft and submitted tasks voided. Nothing is deleted: orders, evidence,
//!    settlements and the records here stay as retention requires. A request still blocked
//!    when due is flagged overdue.
//!
//! Every step is in the audit trail (`deregistration_requested`, `_refused`, `_closed`,
//! `_overdue`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission, Role};
use crate::error::{ApiError, ApiResult};
use crate::identity::SHANGHAI;
use crate::{AppState, new_id, now_ms, rfc3339};

/// Working days within which a deregistration is carried out (5.6.3).
pub const CLOSE_WITHIN_WORKING_DAYS: u32 = 3;

/// What a request carries.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Request {
    /// Why. Required (at least 5 characters) when an operator deregisters someone else.
    #[serde(default)]
    pub reason: Option<String>,
    /// The reference of the authority's order. Required when an operator deregisters
    /// someone else.
    #[serde(default)]
    pub authority_reference: Option<String>,
}

/// What stops a deregistration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BlockingItem {
    /// `order`, `task` or `escrow` (an enterprise's escrow still holds money that must be
    /// returned first).
    pub kind: String,
    pub id: String,
    /// The order's or task's status (`settled`: settled but not yet paid out); for `escrow`,
    /// `funds_held`.
    pub status: String,
}

/// Everything the account did on the platform, at the time of the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// The account's role: `worker` or `enterprise`.
    pub role: String,
    /// Orders by status.
    pub orders: BTreeMap<String, i64>,
    /// Settlements of the account (as worker or as enterprise).
    pub settlements: i64,
    pub gross_fen: i64,
    pub tax_fen: i64,
    pub net_fen: i64,
    /// Tasks by status (enterprises, once tasks carry a status).
    pub tasks: BTreeMap<String, i64>,
    /// Money the enterprise's escrow still holds, in fen (0 for workers).
    #[serde(default)]
    pub escrow_fen: i64,
}

/// A deregistration as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deregistration {
    pub id: String,
    pub account_id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub reason: Option<String>,
    pub authority_reference: Option<String>,
    /// When the account is closed at the latest (end of the 3rd working day).
    pub due_at: String,
    /// `pending` or `closed`.
    pub state: String,
    /// Whether it was still pending when due.
    pub overdue: bool,
    pub closed_at: Option<String>,
    /// Tasks voided on closing.
    pub voided_tasks: Option<i64>,
    pub summary: Summary,
    /// The reminder sent to the holder.
    pub reminder: Option<String>,
}

fn from_row(row: &sqlx::any::AnyRow, reminder: Option<String>) -> ApiResult<Deregistration> {
    let summary: String = row.try_get("summary")?;
    Ok(Deregistration {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: rfc3339(row.try_get("requested_at")?),
        reason: row.try_get("reason")?,
        authority_reference: row.try_get("authority_reference")?,
        due_at: rfc3339(row.try_get("due_at")?),
        state: row.try_get("state")?,
        overdue: row.try_get::<Option<i64>, _>("overdue_at")?.is_some(),
        closed_at: row.try_get::<Option<i64>, _>("closed_at")?.map(rfc3339),
        voided_tasks: row.try_get("voided_tasks")?,
        summary: serde_json::from_str(&summary).map_err(ApiError::internal)?,
        reminder,
    })
}

/// Whether `tasks` has the `status` column (added with the task lifecycle).
async fn tasks_have_status(state: &AppState) -> ApiResult<bool> {
    let sql = match state.db.backend {
        crate::db::Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM pragma_table_info('tasks') WHERE name = 'status'"
        }
        crate::db::Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.columns \
             WHERE table_name = 'tasks' AND column_name = 'status'"
        }
    };
    let row = sqlx::query(sql).fetch_one(&state.db.pool).await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// The account's role and whether it is an organisation (an enterprise's administrator).
async fn account(state: &AppState, id: &str) -> ApiResult<(Role, bool)> {
    let row = sqlx::query("SELECT role, duties FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    let role = Role::parse(&row.try_get::<String, _>("role")?)
        .ok_or_else(|| ApiError::internal("unknown role in database"))?;
    let organisation = role == Role::Enterprise && row.try_get::<String, _>("duties")? == "admin";
    Ok((role, organisation))
}

/// The reconciliation summary and the items that block closing.
pub async fn reconcile(state: &AppState, id: &str) -> ApiResult<(Summary, Vec<BlockingItem>)> {
    let (role, organisation) = account(state, id).await?;
    let mut summary = Summary {
        role: role.as_str().into(),
        ..Summary::default()
    };
    let mut blocking = Vec::new();
    let (orders_sql, settlements_sql) = match (role, organisation) {
        (Role::Worker, _) => (
            "SELECT id FROM orders WHERE worker_id = $1 ORDER BY created_at",
            "SELECT COUNT(*) AS n, CAST(SUM(gross_fen) AS BIGINT) AS g, \
               CAST(SUM(tax_fen) AS BIGINT) AS t, CAST(SUM(net_fen) AS BIGINT) AS m \
             FROM settlements WHERE worker_id = $1",
        ),
        (Role::Enterprise, true) => (
            "SELECT id FROM orders WHERE enterprise_id = $1 ORDER BY created_at",
            "SELECT COUNT(*) AS n, CAST(SUM(gross_fen) AS BIGINT) AS g, \
               CAST(SUM(tax_fen) AS BIGINT) AS t, CAST(SUM(net_fen) AS BIGINT) AS m \
             FROM settlements WHERE enterprise_id = $1",
        ),
        // Staff act for their organisation: its business is not theirs to reconcile.
        _ => return Ok((summary, blocking)),
    };
    let rows = sqlx::query(orders_sql)
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?;
    for row in &rows {
        let order: String = row.try_get("id")?;
        let status = crate::api::orders::view(state, &order).await?.status;
        *summary.orders.entry(status.clone()).or_default() += 1;
        // Finished: paid out (and perhaps invoiced), voided, rejected or cancelled. An order
        // `settled` but not paid yet is money still owed, so it blocks like any other.
        if !["paid", "invoiced", "void", "rejected", "cancelled"].contains(&status.as_str()) {
            blocking.push(BlockingItem {
                kind: "order".into(),
                id: order,
                status,
            });
        }
    }
    let row = sqlx::query(settlements_sql)
        .bind(id)
        .fetch_one(&state.db.pool)
        .await?;
    summary.settlements = row.try_get("n")?;
    summary.gross_fen = row.try_get::<Option<i64>, _>("g")?.unwrap_or(0);
    summary.tax_fen = row.try_get::<Option<i64>, _>("t")?.unwrap_or(0);
    summary.net_fen = row.try_get::<Option<i64>, _>("m")?.unwrap_or(0);

    if role == Role::Enterprise {
        let escrow = crate::ledger::Account::Escrow(id.to_owned());
        summary.escrow_fen = crate::ledger::balance(&state.db.pool, &escrow).await?;
        if summary.escrow_fen > 0 {
            blocking.push(BlockingItem {
                kind: "escrow".into(),
                id: escrow.name(),
                status: "funds_held".into(),
            });
        }
    }
    if role == Role::Enterprise && tasks_have_status(state).await? {
        let rows = sqlx::query(
            "SELECT id, status FROM tasks WHERE enterprise_id = $1 ORDER BY created_at",
        )
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?;
        for row in &rows {
            let status: String = row.try_get("status")?;
            *summary.tasks.entry(status.clone()).or_default() += 1;
            if status == "published" {
                blocking.push(BlockingItem {
                    kind: "task".into(),
                    id: row.try_get("id")?,
                    status,
                });
            }
        }
    }
    Ok((summary, blocking))
}

/// Starts the deregistration of account `id`.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &Request,
) -> ApiResult<Deregistration> {
    let own = caller.account_id == id;
    let (reason, reference) = if own {
        let reason = match body.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => Some(audit::reason(r, 1)?.to_owned()),
            _ => None,
        };
        (reason, None)
    } else {
        caller.require(Permission::OrderDeregistration)?;
        let reason = audit::reason(body.reason.as_deref().unwrap_or_default(), 5)?;
        let reference = body
            .authority_reference
            .as_deref()
            .unwrap_or_default()
            .trim();
        if reference.is_empty() || reference.chars().count() > 200 {
            let message = "an operator deregisters an account only on an authority's order: \
                           give the order's reference (authority_reference, up to 200 \
                           characters)";
            return Err(ApiError::bad_request(
                "authority_reference_required",
                message,
            ));
        }
        (Some(reason.to_owned()), Some(reference.to_owned()))
    };
    let (role, _) = account(state, id).await?;
    if !matches!(role, Role::Worker | Role::Enterprise) {
        let message = "only worker and enterprise accounts are deregistered; staff accounts \
                       of the platform are suspended by an administrator";
        return Err(ApiError::conflict("not_deregistrable", message));
    }

    let (summary, blocking) = reconcile(state, id).await?;
    let object = format!("account:{id}");
    if !blocking.is_empty() {
        let event = Event::by(caller, "deregistration_refused", Outcome::Refused)
            .object(object)
            .detail(serde_json::json!({ "blocking": blocking.len() }));
        audit::record(state, event).await?;
        let list: Vec<String> = blocking
            .iter()
            .map(|b| match (b.kind.as_str(), b.status.as_str()) {
                ("order", "settled") => format!("order {} (settled, not yet paid out)", b.id),
                ("escrow", _) => format!("{} (escrow holds money to be returned first)", b.id),
                _ => format!("{} {} ({})", b.kind, b.id, b.status),
            })
            .collect();
        let message = format!(
            "the account still has business not finished; finish or cancel it first: {}",
            list.join(", ")
        );
        return Err(ApiError::conflict("deregistration_blocked", message));
    }

    let now = now_ms();
    let requested = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .map_err(ApiError::internal)?;
    let due =
        state
            .config
            .calendar
            .add_working_days(requested, CLOSE_WITHIN_WORKING_DAYS, SHANGHAI);
    let due_ms = (due.unix_timestamp_nanos() / 1_000_000) as i64;
    let summary_text = serde_json::to_string(&summary).map_err(ApiError::internal)?;
    let reg_id = new_id();
    let reminder = format!(
        "Your account will be closed by {} (Asia/Shanghai). Your orders, evidence and \
         payments stay on record as the law requires; you will no longer be able to sign in. \
         Settled: {} payment(s), net {} fen.",
        due.format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap_or_default(),
        summary.settlements,
        summary.net_fen
    );

    let mut tx = state.db.begin_write().await?;
    let open =
        sqlx::query("SELECT id FROM deregistrations WHERE account_id = $1 AND state = 'pending'")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if open.is_some() {
        let message = "a deregistration of this account is already under way";
        return Err(ApiError::conflict("deregistration_pending", message));
    }
    let closed =
        sqlx::query("SELECT id FROM deregistrations WHERE account_id = $1 AND state = 'closed'")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if closed.is_some() {
        return Err(ApiError::conflict(
            "already_deregistered",
            "the account is closed",
        ));
    }
    sqlx::query(
        "INSERT INTO deregistrations (id, account_id, requested_by, requested_at, reason, \
           authority_reference, due_at, state, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)",
    )
    .bind(&reg_id)
    .bind(id)
    .bind(&caller.account_id)
    .bind(now)
    .bind(&reason)
    .bind(&reference)
    .bind(due_ms)
    .bind(&summary_text)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO notifications (id, account_id, kind, body, created_at) \
         VALUES ($1, $2, 'deregistration_reminder', $3, $4)",
    )
    .bind(new_id())
    .bind(id)
    .bind(&reminder)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let event = Event::by(caller, "deregistration_requested", Outcome::Ok)
        .object(object.clone())
        .detail(serde_json::json!({
            "deregistration": reg_id, "by_authority": !own, "reason": reason,
            "authority_reference": reference, "due_at": rfc3339(due_ms),
        }));
    audit::record(state, event).await?;
    let event = Event::by(caller, "deregistration_reminder_sent", Outcome::Ok)
        .object(object)
        .detail(serde_json::json!({ "deregistration": reg_id, "channel": "notifications" }));
    audit::record(state, event).await?;
    latest(state, id)
        .await?
        .ok_or_else(|| ApiError::internal("deregistration missing after insert"))
}

/// The account's latest deregistration, if any.
pub async fn latest(state: &AppState, id: &str) -> ApiResult<Option<Deregistration>> {
    let row = sqlx::query(
        "SELECT * FROM deregistrations WHERE account_id = $1 \
         ORDER BY requested_at DESC, id LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let reminder = sqlx::query(
        "SELECT body FROM notifications WHERE account_id = $1 \
         AND kind = 'deregistration_reminder' AND created_at = $2",
    )
    .bind(id)
    .bind(row.try_get::<i64, _>("requested_at")?)
    .fetch_optional(&state.db.pool)
    .await?
    .map(|r| r.try_get::<String, _>("body"))
    .transpose()?;
    from_row(&row, reminder).map(Some)
}

/// Closes every pending deregistration due before the job's next wake-up (`[checks]
/// job_interval_secs`), as of `now` (ms), so none is closed late: re-checks that nothing
/// blocks, suspends the account, revokes its tokens and phones and voids its draft and
/// submitted tasks. One still blocked past its due time is flagged overdue once. Returns how
/// many were closed.
pub async fn close_due(state: &AppState, now: i64) -> ApiResult<usize> {
    let rows = sqlx::query(
        "SELECT id, account_id, due_at, overdue_at FROM deregistrations \
         WHERE state = 'pending' ORDER BY requested_at",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let mut closed = 0;
    let horizon = now.saturating_add(
        i64::try_from(state.config.checks.job_interval_secs.saturating_mul(1_000))
            .unwrap_or(i64::MAX),
    );
    for row in &rows {
        let reg_id: String = row.try_get("id")?;
        let account_id: String = row.try_get("account_id")?;
        let due_at: i64 = row.try_get("due_at")?;
        if due_at > horizon {
            continue;
        }
        let object = format!("account:{account_id}");
        let (_, blocking) = reconcile(state, &account_id).await?;
        if !blocking.is_empty() {
            if now > due_at && row.try_get::<Option<i64>, _>("overdue_at")?.is_none() {
                sqlx::query("UPDATE deregistrations SET overdue_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&reg_id)
                    .execute(&state.db.pool)
                    .await?;
                let event = Event::anonymous("deregistration_overdue", Outcome::Refused)
                    .object(object)
                    .detail(serde_json::json!({
                        "deregistration": reg_id, "blocking": blocking.len(),
                    }));
                audit::record(state, event).await?;
                tracing::warn!(deregistration = %reg_id, "a deregistration is overdue");
            }
            continue;
        }
        let voided = if tasks_have_status(state).await? {
            sqlx::query(
                "UPDATE tasks SET status = 'void' WHERE enterprise_id = $1 \
                 AND status IN ('draft', 'submitted')",
            )
            .bind(&account_id)
            .execute(&state.db.pool)
            .await?
            .rows_affected() as i64
        } else {
            0
        };
        sqlx::query("UPDATE accounts SET suspended = 1 WHERE id = $1")
            .bind(&account_id)
            .execute(&state.db.pool)
            .await?;
        crate::auth::device::revoke_all(state, &account_id, "account_deregistered", None).await?;
        crate::auth::revoke_all(state, &account_id).await?;
        let late = now > due_at;
        sqlx::query(
            "UPDATE deregistrations SET state = 'closed', closed_at = $1, voided_tasks = $2, \
               overdue_at = CASE WHEN $3 = 1 AND overdue_at IS NULL THEN $1 \
               ELSE overdue_at END \
             WHERE id = $4 AND state = 'pending'",
        )
        .bind(now)
        .bind(voided)
        .bind(i64::from(late))
        .bind(&reg_id)
        .execute(&state.db.pool)
        .await?;
        let event = Event::anonymous("deregistration_closed", Outcome::Ok)
            .object(object)
            .detail(serde_json::json!({
                "deregistration": reg_id, "voided_tasks": voided, "late": late,
            }));
        audit::record(state, event).await?;
        tracing::info!(deregistration = %reg_id, "account deregistered and closed");
        closed += 1;
    }
    Ok(closed)
}
