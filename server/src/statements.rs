//! Three-party statements (standard 4.2.4, 5.4.1–5.4.2) and escrow deposits (5.4.4).
//!
//! When an order is submitted, its evidence accepted (passed, or needs review and approved
//! by an operator) and the enterprise confirmed completion, [`try_open`] creates one
//! **statement**: order, worker, enterprise, task, service period (the task's window), gross
//! fee, the platform's service fee and a SHA-256 digest of the verdict and report it rests
//! on. Its amounts never change (database triggers); a correction is a new version.
//!
//! Three parties confirm it: the platform (a finance or reviewer operator), the enterprise
//! (an administrator or staff member of the order's organisation) and the worker (from the
//! phone). The third confirmation settles it ([`crate::settlement::settle_statement`]), or
//! leaves it `awaiting_funds` until the enterprise's escrow covers it. Any party may dispute
//! an open statement, which stops it; a finance operator then resolves it by reissuing a
//! corrected version (the old one `superseded`, confirmations start again) or voiding it
//! (nothing is paid; the order is void). Every step is in the audit trail.
//!
//! Statuses: `open` → `settled`, or `open` → `awaiting_funds` → `settled`; `open` or
//! `awaiting_funds` → `disputed` → `superseded` (with a new `open` version) or `void`.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::ledger::{self, Account, Entry};
use crate::settlement::{self, Settlement};
use crate::{AppState, new_id, now_ms, rfc3339};

/// A statement as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub id: String,
    pub order_id: String,
    /// 1 for the first; a reissue adds one.
    pub version: i64,
    pub worker_id: String,
    pub enterprise_id: String,
    pub task_id: String,
    /// The service period: the task's window.
    pub period_from: String,
    pub period_to: String,
    /// The fee for the work, in fen: the worker's pay before tax.
    pub gross_fen: i64,
    /// The platform's service fee, in fen, charged to the enterprise on top of the gross.
    pub fee_fen: i64,
    /// What the enterprise's escrow pays: gross + fee, in fen.
    pub total_fen: i64,
    /// SHA-256 (hex) of the verdict, operator decision and verification report confirmed.
    pub evidence_digest: String,
    /// Why this version replaced the previous one.
    pub reissue_reason: Option<String>,
    /// `open`, `awaiting_funds`, `settled`, `disputed`, `superseded` or `void`.
    pub status: String,
    pub dispute_reason: Option<String>,
    /// `platform`, `enterprise` or `worker`.
    pub disputed_party: Option<String>,
    pub resolution_reason: Option<String>,
    /// Who confirmed so far, by party.
    pub confirmations: Vec<StatementConfirmation>,
    /// The parties whose confirmation is still missing.
    pub awaiting: Vec<String>,
    /// Gross, tax and net pay, once settled.
    pub settlement: Option<Settlement>,
    pub created_at: String,
}

/// One party's confirmation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatementConfirmation {
    /// `platform`, `enterprise` or `worker`.
    pub party: String,
    pub confirmed_at: String,
}

const PARTIES: [&str; 3] = ["platform", "enterprise", "worker"];

/// Opens the order's statement if every condition holds and it has none yet. Returns
/// whether this call opened it. Safe to call from every trigger at once: the insert is one
/// `INSERT … SELECT … WHERE <conditions>` and the order's first version is unique.
pub async fn try_open(state: &AppState, order_id: &str) -> ApiResult<bool> {
    let row = sqlx::query(
        "SELECT o.verdict, o.operator_decision, o.report, o.verified_at, o.decided_at, \
           t.fee_fen FROM orders o JOIN tasks t ON t.id = o.task_id WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let gross: i64 = row.try_get("fee_fen")?;
    let verdict: Option<String> = row.try_get("verdict")?;
    let decision: Option<String> = row.try_get("operator_decision")?;
    let report: Option<String> = row.try_get("report")?;
    let verified_at = row.try_get::<Option<i64>, _>("verified_at")?.unwrap_or(0);
    let decided_at = row.try_get::<Option<i64>, _>("decided_at")?.unwrap_or(0);

    let mut hash = Sha256::new();
    for part in [
        order_id,
        verdict.as_deref().unwrap_or_default(),
        decision.as_deref().unwrap_or_default(),
        report.as_deref().unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(verified_at.to_be_bytes());
    let digest = hex::encode(hash.finalize());
    let fee = state.config.settlement.fee_fen(gross);
    let now = now_ms();

    // The digest covers exactly the verdict and decision the conditions accept: both are
    // pinned by their times.
    let result = sqlx::query(
        "INSERT INTO statements \
           (id, order_id, version, worker_id, enterprise_id, task_id, period_from, period_to, \
            gross_fen, fee_fen, evidence_digest, status, created_at, updated_at) \
         SELECT $1, o.id, 1, o.worker_id, o.enterprise_id, o.task_id, t.window_from, \
            t.window_to, t.fee_fen, $2, $3, 'open', $4, $4 \
         FROM orders o JOIN tasks t ON t.id = o.task_id \
         WHERE o.id = $5 AND t.fee_fen = $6 \
           AND COALESCE(o.verified_at, 0) = $7 AND COALESCE(o.decided_at, 0) = $8 \
           AND o.submitted_at IS NOT NULL \
           AND o.needs_verification = 0 \
           AND o.confirmation = 'confirmed' \
           AND ((o.verdict = 'passed' AND o.operator_decision IS NULL) \
                OR (o.verdict = 'needs_review' AND o.operator_decision = 'approved')) \
           AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.order_id = o.id) \
         ON CONFLICT DO NOTHING",
    )
    .bind(new_id())
    .bind(fee)
    .bind(&digest)
    .bind(now)
    .bind(order_id)
    .bind(gross)
    .bind(verified_at)
    .bind(decided_at)
    .execute(&state.db.pool)
    .await?;
    let opened = result.rows_affected() == 1;
    if opened {
        tracing::info!(
            order_id,
            gross_fen = gross,
            fee_fen = fee,
            "statement opened"
        );
        let event = Event::anonymous("statement_opened", Outcome::Ok)
            .object(order_id)
            .detail(serde_json::json!({ "gross_fen": gross, "fee_fen": fee }));
        audit::record(state, event).await?;
    }
    Ok(opened)
}

/// The order's current statement (the latest version), if any.
pub async fn current_for_order(state: &AppState, order_id: &str) -> ApiResult<Option<Statement>> {
    let row = sqlx::query(
        "SELECT id FROM statements WHERE order_id = $1 AND status <> 'superseded' \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(&state.db.pool)
    .await?;
    match row {
        Some(row) => Ok(Some(load(state, &row.try_get::<String, _>("id")?).await?)),
        None => Ok(None),
    }
}

/// The status word of the order's current statement, if any.
pub async fn current_status(state: &AppState, order_id: &str) -> ApiResult<Option<String>> {
    let row =
        sqlx::query("SELECT status FROM statements WHERE order_id = $1 AND status <> 'superseded'")
            .bind(order_id)
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(row.map(|r| r.try_get("status")).transpose()?)
}

/// One statement, any version.
pub async fn load(state: &AppState, id: &str) -> ApiResult<Statement> {
    let row = sqlx::query("SELECT * FROM statements WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("statement"))?;
    let confirmed = sqlx::query(
        "SELECT party, confirmed_at FROM statement_confirmations WHERE statement_id = $1 \
         ORDER BY confirmed_at, party",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut confirmations = Vec::new();
    for c in confirmed {
        confirmations.push(StatementConfirmation {
            party: c.try_get("party")?,
            confirmed_at: rfc3339(c.try_get("confirmed_at")?),
        });
    }
    let settlement = if row.try_get::<String, _>("status")? == "settled" {
        settlement::for_order(state, &row.try_get::<String, _>("order_id")?).await?
    } else {
        None
    };
    from_parts(&row, confirmations, settlement)
}

/// The current statements of these orders, with their confirmations (`settlements`: the
/// orders' settlements, by order id). Three queries however many orders.
pub async fn current_for_orders(
    state: &AppState,
    order_ids: &[String],
    settlements: &HashMap<String, Settlement>,
) -> ApiResult<HashMap<String, Statement>> {
    let mut current = HashMap::new();
    if order_ids.is_empty() {
        return Ok(current);
    }
    let sql = format!(
        "SELECT * FROM statements WHERE status <> 'superseded' AND order_id IN ({})",
        crate::evidence::placeholders(1, order_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in order_ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(&state.db.pool).await?;
    if rows.is_empty() {
        return Ok(current);
    }
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let sql = format!(
        "SELECT statement_id, party, confirmed_at FROM statement_confirmations \
         WHERE statement_id IN ({}) ORDER BY confirmed_at, party",
        crate::evidence::placeholders(1, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        query = query.bind(id);
    }
    let mut confirmations: HashMap<String, Vec<StatementConfirmation>> = HashMap::new();
    for c in query.fetch_all(&state.db.pool).await? {
        confirmations
            .entry(c.try_get("statement_id")?)
            .or_default()
            .push(StatementConfirmation {
                party: c.try_get("party")?,
                confirmed_at: rfc3339(c.try_get("confirmed_at")?),
            });
    }
    for row in rows {
        let id: String = row.try_get("id")?;
        let order_id: String = row.try_get("order_id")?;
        let settlement = if row.try_get::<String, _>("status")? == "settled" {
            settlements.get(&order_id).cloned()
        } else {
            None
        };
        let confirmed = confirmations.remove(&id).unwrap_or_default();
        current.insert(order_id, from_parts(&row, confirmed, settlement)?);
    }
    Ok(current)
}

fn from_parts(
    row: &sqlx::any::AnyRow,
    confirmations: Vec<StatementConfirmation>,
    settlement: Option<Settlement>,
) -> ApiResult<Statement> {
    let awaiting = PARTIES
        .iter()
        .filter(|p| confirmations.iter().all(|c| c.party != **p))
        .map(|p| (*p).to_owned())
        .collect();
    let status: String = row.try_get("status")?;
    let order_id: String = row.try_get("order_id")?;
    let gross: i64 = row.try_get("gross_fen")?;
    let fee: i64 = row.try_get("fee_fen")?;
    let text = |column: &str| -> ApiResult<Option<String>> {
        let value: Option<String> = row.try_get(column)?;
        Ok(value.map(|v| crate::identity::redact_numbers(&v)))
    };
    Ok(Statement {
        id: row.try_get("id")?,
        order_id,
        version: row.try_get("version")?,
        worker_id: row.try_get("worker_id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        task_id: row.try_get("task_id")?,
        period_from: rfc3339(row.try_get("period_from")?),
        period_to: rfc3339(row.try_get("period_to")?),
        gross_fen: gross,
        fee_fen: fee,
        total_fen: gross + fee,
        evidence_digest: row.try_get("evidence_digest")?,
        reissue_reason: text("reissue_reason")?,
        status,
        dispute_reason: text("dispute_reason")?,
        disputed_party: row.try_get("disputed_party")?,
        resolution_reason: text("resolution_reason")?,
        confirmations,
        awaiting,
        settlement,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Which party `caller` is for `statement`; 404 when the statement is not theirs to see.
pub fn party_of(caller: &Caller, statement: &Statement) -> ApiResult<&'static str> {
    match caller.role {
        Role::Worker if statement.worker_id == caller.account_id => Ok("worker"),
        Role::Enterprise if statement.enterprise_id == caller.organisation_id => Ok("enterprise"),
        Role::Operator => Ok("platform"),
        _ => Err(ApiError::not_found("statement")),
    }
}

/// The 409 for acting on a statement in `status`.
fn not_open(status: &str) -> ApiError {
    match status {
        "superseded" => ApiError::conflict(
            "statement_superseded",
            "this statement was replaced by a newer version; confirm or dispute that one",
        ),
        "disputed" => ApiError::conflict(
            "statement_disputed",
            "this statement is disputed; the finance team must resolve it first",
        ),
        "void" => ApiError::conflict(
            "statement_void",
            "this statement was voided; nothing is paid for the order",
        ),
        "settled" => ApiError::conflict("already_settled", "this statement is already settled"),
        _ => ApiError::conflict("statement_not_open", "this statement cannot change now"),
    }
}

/// Records `caller`'s confirmation as `party` (idempotent) and settles the statement when it
/// is the third.
pub async fn confirm(
    state: &AppState,
    caller: &Caller,
    statement: &Statement,
    party: &str,
) -> ApiResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO statement_confirmations (statement_id, party, account_id, confirmed_at) \
         SELECT s.id, $1, $2, $3 FROM statements s \
         WHERE s.id = $4 AND s.status IN ('open', 'awaiting_funds') \
         ON CONFLICT DO NOTHING",
    )
    .bind(party)
    .bind(&caller.account_id)
    .bind(now_ms())
    .bind(&statement.id)
    .execute(&state.db.pool)
    .await?;
    if inserted.rows_affected() == 1 {
        let event = Event::by(caller, "statement_confirmed", Outcome::Ok)
            .object(&statement.id)
            .detail(serde_json::json!({ "party": party, "order_id": statement.order_id }));
        audit::record(state, event).await?;
    } else {
        let already = sqlx::query(
            "SELECT 1 AS one FROM statement_confirmations WHERE statement_id = $1 AND party = $2",
        )
        .bind(&statement.id)
        .bind(party)
        .fetch_optional(&state.db.pool)
        .await?
        .is_some();
        let status = load(state, &statement.id).await?.status;
        // Confirming again what one already confirmed is a no-op, unless the statement has
        // since been replaced or stopped.
        if !already || matches!(status.as_str(), "superseded" | "disputed" | "void") {
            return Err(not_open(&status));
        }
    }
    settlement::settle_statement(state, &statement.id).await?;
    Ok(())
}

/// Stops an open statement: `party` disputes it with `reason`.
pub async fn dispute(
    state: &AppState,
    caller: &Caller,
    statement: &Statement,
    party: &str,
    reason: &str,
) -> ApiResult<()> {
    // Personal numbers in the reason are masked before it is stored or audited.
    let reason = &crate::identity::redact_numbers(reason);
    let done = sqlx::query(
        "UPDATE statements SET status = 'disputed', dispute_reason = $1, disputed_by = $2, \
           disputed_party = $3, updated_at = $4 \
         WHERE id = $5 AND status IN ('open', 'awaiting_funds')",
    )
    .bind(reason)
    .bind(&caller.account_id)
    .bind(party)
    .bind(now_ms())
    .bind(&statement.id)
    .execute(&state.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        let status = load(state, &statement.id).await?.status;
        return Err(not_open(&status));
    }
    tracing::info!(order_id = %statement.order_id, party, "statement disputed");
    let event = Event::by(caller, "statement_disputed", Outcome::Ok)
        .object(&statement.id)
        .detail(serde_json::json!({
            "party": party, "reason": reason, "order_id": statement.order_id,
        }));
    audit::record(state, event).await
}

/// How a finance operator resolves a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A new version with this gross fee, in fen.
    Reissue(i64),
    /// No pay; the order is void.
    Void,
}

/// Resolves a disputed statement; returns the statement now current for the order.
pub async fn resolve(
    state: &AppState,
    caller: &Caller,
    statement: &Statement,
    resolution: Resolution,
    reason: &str,
) -> ApiResult<String> {
    // Personal numbers in the reason are masked before it is stored or audited.
    let reason = &crate::identity::redact_numbers(reason);
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let status = match resolution {
        Resolution::Reissue(_) => "superseded",
        Resolution::Void => "void",
    };
    let done = sqlx::query(
        "UPDATE statements SET status = $1, resolved_by = $2, resolution_reason = $3, \
           updated_at = $4 WHERE id = $5 AND status = 'disputed'",
    )
    .bind(status)
    .bind(&caller.account_id)
    .bind(reason)
    .bind(now)
    .bind(&statement.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        drop(tx);
        let status = load(state, &statement.id).await?.status;
        let message = format!("only a disputed statement can be resolved; this one is {status}");
        return Err(ApiError::conflict("statement_not_disputed", message));
    }
    let mut current = statement.id.clone();
    if let Resolution::Reissue(gross) = resolution {
        current = new_id();
        let fee = state.config.settlement.fee_fen(gross);
        sqlx::query(
            "INSERT INTO statements \
               (id, order_id, version, worker_id, enterprise_id, task_id, period_from, \
                period_to, gross_fen, fee_fen, evidence_digest, reissue_reason, status, \
                created_at, updated_at) \
             SELECT $1, order_id, version + 1, worker_id, enterprise_id, task_id, period_from, \
                period_to, $2, $3, evidence_digest, $4, 'open', $5, $5 \
             FROM statements WHERE id = $6",
        )
        .bind(&current)
        .bind(gross)
        .bind(fee)
        .bind(reason)
        .bind(now)
        .bind(&statement.id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let (action, detail) = match resolution {
        Resolution::Reissue(gross) => (
            "statement_reissued",
            serde_json::json!({
                "order_id": statement.order_id, "reason": reason, "new_statement": current,
                "gross_fen_before": statement.gross_fen, "gross_fen_after": gross,
            }),
        ),
        Resolution::Void => (
            "statement_voided",
            serde_json::json!({ "order_id": statement.order_id, "reason": reason }),
        ),
    };
    tracing::info!(order_id = %statement.order_id, action, "disputed statement resolved");
    let event = Event::by(caller, action, Outcome::Ok)
        .object(&statement.id)
        .detail(detail);
    audit::record(state, event).await?;
    Ok(current)
}

/// Statements with `status` (all when empty), newest first, at most `limit`.
pub async fn list(state: &AppState, status: &str, limit: i64) -> ApiResult<Vec<Statement>> {
    let rows = sqlx::query(
        "SELECT id FROM statements WHERE ($1 = '' OR status = $1) \
         ORDER BY created_at DESC, version DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit.clamp(1, 1_000))
    .fetch_all(&state.db.pool)
    .await?;
    let mut statements = Vec::with_capacity(rows.len());
    for row in rows {
        statements.push(load(state, &row.try_get::<String, _>("id")?).await?);
    }
    Ok(statements)
}

/// A deposit into an enterprise's escrow, as the bank reported it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deposit {
    pub id: String,
    pub enterprise_id: String,
    /// The bank's reference of the transfer; unique per enterprise.
    pub bank_reference: String,
    pub amount_fen: i64,
    /// The value date the bank reported, `YYYY-MM-DD`.
    pub value_date: String,
    pub recorded_at: String,
}

/// What the caller asked to record.
#[derive(Debug, Clone)]
pub struct NewDeposit<'a> {
    pub enterprise_id: &'a str,
    pub bank_reference: &'a str,
    pub amount_fen: i64,
    pub value_date: &'a str,
}

/// A bank reference as stored and compared: trimmed, ASCII letters upper-cased.
pub fn normalise_reference(reference: &str) -> String {
    reference.trim().to_ascii_uppercase()
}

/// Records a deposit once per (enterprise, bank reference) with its ledger entry (debit
/// `bank`, credit the enterprise's escrow) in one transaction. The same deposit again answers
/// the recorded one (`false`: not new); another amount or date under the same reference is
/// 409 `bank_reference_reused`. The reference is normalised first ([`normalise_reference`]).
pub async fn record_deposit(
    state: &AppState,
    caller: &Caller,
    deposit: &NewDeposit<'_>,
) -> ApiResult<(Deposit, bool)> {
    // References are compared as the bank means them: "dup" and "DUP" are one transfer.
    let reference = normalise_reference(deposit.bank_reference);
    let deposit = &NewDeposit {
        bank_reference: &reference,
        ..*deposit
    };
    let id = new_id();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO deposits \
           (id, enterprise_id, bank_reference, amount_fen, value_date, recorded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(deposit.enterprise_id)
    .bind(deposit.bank_reference)
    .bind(deposit.amount_fen)
    .bind(deposit.value_date)
    .bind(&caller.account_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        drop(tx);
        let existing = deposit_by_reference(state, deposit).await?;
        if existing.amount_fen != deposit.amount_fen || existing.value_date != deposit.value_date {
            let message = "this bank reference was already recorded for this enterprise with \
                           another amount or date; check the bank's report";
            return Err(ApiError::conflict("bank_reference_reused", message));
        }
        return Ok((existing, false));
    }
    let key = format!(
        "deposit:{}:{}",
        deposit.enterprise_id, deposit.bank_reference
    );
    let entry = Entry::new("deposit", key, &id)
        .debit(Account::Bank, deposit.amount_fen)
        .credit(
            Account::Escrow(deposit.enterprise_id.to_owned()),
            deposit.amount_fen,
        );
    ledger::post(&mut tx, &entry).await?;
    tx.commit().await?;

    tracing::info!(
        enterprise_id = deposit.enterprise_id,
        amount_fen = deposit.amount_fen,
        "escrow deposit recorded"
    );
    let event = Event::by(caller, "escrow_deposit_recorded", Outcome::Ok)
        .object(deposit.enterprise_id)
        .detail(serde_json::json!({
            "deposit": id, "amount_fen": deposit.amount_fen,
            "bank_reference": deposit.bank_reference, "value_date": deposit.value_date,
        }));
    audit::record(state, event).await?;
    let recorded = deposit_by_reference(state, deposit).await?;
    settlement::retry_waiting(state, Some(deposit.enterprise_id)).await?;
    Ok((recorded, true))
}

async fn deposit_by_reference(state: &AppState, deposit: &NewDeposit<'_>) -> ApiResult<Deposit> {
    let row =
        sqlx::query("SELECT * FROM deposits WHERE enterprise_id = $1 AND bank_reference = $2")
            .bind(deposit.enterprise_id)
            .bind(deposit.bank_reference)
            .fetch_one(&state.db.pool)
            .await?;
    deposit_from_row(&row)
}

fn deposit_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Deposit> {
    Ok(Deposit {
        id: row.try_get("id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        bank_reference: row.try_get("bank_reference")?,
        amount_fen: row.try_get("amount_fen")?,
        value_date: row.try_get("value_date")?,
        recorded_at: rfc3339(row.try_get("created_at")?),
    })
}

/// An enterprise's escrow: balance, deposits and every movement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Escrow {
    pub enterprise_id: String,
    /// What the platform holds for the enterprise, in fen, from the ledger.
    pub balance_fen: i64,
    pub deposits: Vec<Deposit>,
    /// Ledger movements of the escrow account, oldest first.
    pub movements: Vec<Movement>,
}

/// One movement of an escrow account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Movement {
    /// `deposit`, `settlement`, …
    pub kind: String,
    /// The deposit or order it belongs to.
    pub object_id: String,
    /// Positive when money came in, negative when it went out, in fen.
    pub amount_fen: i64,
    pub at: String,
}

/// The escrow of `enterprise_id`.
pub async fn escrow(state: &AppState, enterprise_id: &str) -> ApiResult<Escrow> {
    let account = Account::Escrow(enterprise_id.to_owned());
    let balance_fen = ledger::balance(&state.db.pool, &account).await?;
    let rows = sqlx::query("SELECT * FROM deposits WHERE enterprise_id = $1 ORDER BY created_at")
        .bind(enterprise_id)
        .fetch_all(&state.db.pool)
        .await?;
    let deposits = rows
        .iter()
        .map(deposit_from_row)
        .collect::<ApiResult<_>>()?;
    let rows = sqlx::query(
        "SELECT e.kind, e.object_id, e.created_at, p.amount_fen FROM ledger_postings p \
         JOIN ledger_events e ON e.id = p.event_id WHERE p.account = $1 \
         ORDER BY e.created_at, p.line",
    )
    .bind(account.name())
    .fetch_all(&state.db.pool)
    .await?;
    let mut movements = Vec::with_capacity(rows.len());
    for row in rows {
        movements.push(Movement {
            kind: row.try_get("kind")?,
            object_id: row.try_get("object_id")?,
            // Escrow is credit-normal: a credit (negative posting) brings money in.
            amount_fen: -row.try_get::<i64, _>("amount_fen")?,
            at: rfc3339(row.try_get("created_at")?),
        });
    }
    Ok(Escrow {
        enterprise_id: enterprise_id.to_owned(),
        balance_fen,
        deposits,
        movements,
    })
}
