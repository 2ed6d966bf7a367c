//! Orders: where each piece of work stands, and the enterprise's and operator's decisions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use flexwork_sync::ErrorBody;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{JsonBody, QueryParams};
use crate::auth::{Caller, Permission, WorkScope};
use crate::error::{ApiError, ApiResult};
use crate::settlement::{self, Settlement};
use crate::statements::{self, Statement};
use crate::{AppState, now_ms, rfc3339};

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: String,
    pub task_id: String,
    pub worker_id: String,
    pub enterprise_id: String,
    /// `assigned`, `submitted`, `verified`, `needs_review`, `returned` (an operator sent the
    /// evidence back to the worker with comments: it waits for new evidence), `rejected`,
    /// `confirmed`,
    /// `reconciling` (its statement awaits confirmations), `awaiting_funds` (confirmed by all
    /// three, the enterprise's escrow does not cover it yet), `disputed` (completion or the
    /// statement), `void` (the statement was voided: no pay), `settled`, `paid` (the
    /// settlement's payout was paid), `invoiced` (issued invoices bill all of it) or
    /// `cancelled`.
    pub status: String,
    pub created_at: String,
    pub submitted_at: Option<String>,
    /// `passed`, `needs_review` or `rejected`.
    pub verdict: Option<String>,
    /// New evidence arrived and has not been verified yet.
    pub verification_pending: bool,
    /// The last verification report: findings, photo facts, skipped checks.
    pub report: Option<serde_json::Value>,
    /// `approved`, `rejected` or `has_issues` by an operator.
    pub operator_decision: Option<String>,
    pub operator_reason: Option<String>,
    /// `confirmed` or `disputed` by the enterprise.
    pub confirmation: Option<String>,
    pub confirmation_reason: Option<String>,
    /// The current three-party statement, once the order is confirmed.
    pub statement: Option<Statement>,
    pub settlement: Option<Settlement>,
    /// When the enterprise or an operator cancelled the order, before it was submitted.
    pub cancelled_at: Option<String>,
    pub cancel_reason: Option<String>,
    /// Call-backs, surveys and visits of this order (authenticity checks), oldest first.
    pub verification_records: Vec<crate::checks::VerificationRecord>,
    /// What the evidence holds, in lists (`GET /orders`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_summary: Option<super::evidence::EvidenceSummary>,
}

/// Builds the view of one order (no access check).
pub async fn view(state: &AppState, order_id: &str) -> ApiResult<OrderView> {
    let row = sqlx::query("SELECT * FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let mut views = views(state, std::slice::from_ref(&row)).await?;
    views.pop().ok_or_else(|| ApiError::not_found("order"))
}

/// Builds the views of these order rows, in their order: five queries however many rows, so
/// a list and `GET /orders/{id}` build an order the same way.
async fn views(state: &AppState, rows: &[sqlx::any::AnyRow]) -> ApiResult<Vec<OrderView>> {
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut settlements = settlement::for_orders(state, &ids).await?;
    let mut statements = statements::current_for_orders(state, &ids, &settlements).await?;
    let mut records = crate::checks::records_for_orders(state, &ids).await?;
    let paid: Vec<String> = settlements
        .values()
        .filter(|s| s.status == "paid")
        .map(|s| s.id.clone())
        .collect();
    let issued = crate::invoices::issued_fen_of(state, &paid).await?;

    let mut views = Vec::with_capacity(rows.len());
    for (row, id) in rows.iter().zip(&ids) {
        let mut view = from_row(row, statements.remove(id), settlements.remove(id))?;
        view.verification_records = records.remove(id).unwrap_or_default();
        if let Some(paid) = view.settlement.as_ref().filter(|s| s.status == "paid")
            && issued.get(&paid.id).copied().unwrap_or(0) >= paid.gross_fen
        {
            view.status = status_of(&view, true).to_owned();
        }
        views.push(view);
    }
    Ok(views)
}

fn from_row(
    row: &sqlx::any::AnyRow,
    statement: Option<Statement>,
    settlement: Option<Settlement>,
) -> ApiResult<OrderView> {
    let report: Option<String> = row.try_get("report")?;
    let mut view = OrderView {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        worker_id: row.try_get("worker_id")?,
        enterprise_id: row.try_get("enterprise_id")?,
        status: String::new(),
        created_at: rfc3339(row.try_get("created_at")?),
        submitted_at: row.try_get::<Option<i64>, _>("submitted_at")?.map(rfc3339),
        verdict: row.try_get("verdict")?,
        verification_pending: row.try_get::<i64, _>("needs_verification")? > 0,
        report: report.and_then(|r| serde_json::from_str(&r).ok()),
        operator_decision: row.try_get("operator_decision")?,
        operator_reason: row.try_get("operator_reason")?,
        confirmation: row.try_get("confirmation")?,
        confirmation_reason: row.try_get("confirmation_reason")?,
        statement,
        settlement,
        cancelled_at: row.try_get::<Option<i64>, _>("cancelled_at")?.map(rfc3339),
        cancel_reason: row.try_get("cancel_reason")?,
        verification_records: Vec::new(),
        evidence_summary: None,
    };
    view.status = status_of(&view, false).to_owned();
    Ok(view)
}

/// The facts that decide an order's status.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub cancelled: bool,
    pub settled: bool,
    /// The status of the order's current statement, if it has one.
    pub statement: Option<&'a str>,
    /// The settlement was paid out.
    pub paid: bool,
    /// Issued invoices bill the whole of the paid settlement.
    pub invoiced: bool,
    pub submitted: bool,
    pub verdict: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub confirmation: Option<&'a str>,
}

impl Progress<'_> {
    /// The one word that says where an order stands, most advanced state first.
    pub fn status(&self) -> &'static str {
        let (decision, verdict) = (self.decision, self.verdict);
        if self.cancelled {
            return "cancelled";
        }
        if self.invoiced {
            return "invoiced";
        }
        if self.paid {
            return "paid";
        }
        if self.settled {
            return "settled";
        }
        match self.statement {
            Some("void") => return "void",
            Some("disputed") => return "disputed",
            Some("awaiting_funds") => return "awaiting_funds",
            Some("open") => return "reconciling",
            _ => {}
        }
        if self.confirmation == Some("disputed") {
            "disputed"
        } else if decision == Some("rejected")
            || (decision.is_none() && verdict == Some("rejected"))
        {
            "rejected"
        } else if decision == Some("has_issues") {
            "returned"
        } else if self.confirmation == Some("confirmed") {
            "confirmed"
        } else if decision == Some("approved") || verdict == Some("passed") {
            "verified"
        } else if verdict == Some("needs_review") {
            "needs_review"
        } else if self.submitted {
            "submitted"
        } else {
            "assigned"
        }
    }
}

fn status_of(order: &OrderView, invoiced: bool) -> &'static str {
    Progress {
        invoiced,
        cancelled: order.cancelled_at.is_some(),
        settled: order.settlement.is_some(),
        statement: order.statement.as_ref().map(|s| s.status.as_str()),
        paid: order
            .settlement
            .as_ref()
            .is_some_and(|s| s.status == "paid"),
        submitted: order.submitted_at.is_some(),
        verdict: order.verdict.as_deref(),
        decision: order.operator_decision.as_deref(),
        confirmation: order.confirmation.as_deref(),
    }
    .status()
}

/// Loads an order the caller may see: its worker, its enterprise, or an operator.
pub async fn visible(state: &AppState, caller: &Caller, order_id: &str) -> ApiResult<OrderView> {
    let order = view(state, order_id).await?;
    let visible = match caller.work_scope() {
        WorkScope::All => true,
        WorkScope::Worker(worker) => order.worker_id == worker,
        WorkScope::Organisation(organisation) => order.enterprise_id == organisation,
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    if !visible {
        return Err(ApiError::not_found("order"));
    }
    Ok(order)
}

/// One order: status, verdict, report, decisions, settlement.
///
/// Who may call: the order's worker, its enterprise (administrators and staff), and holders of
/// Permission `read_all_work`: operators in the reviewer, risk, finance, legal, welfare, support or
/// regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's to see",
            body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(visible(&state, &caller, &id).await?))
}

/// Every status an order can be in.
pub const STATUSES: [&str; 15] = [
    "assigned",
    "submitted",
    "verified",
    "needs_review",
    "returned",
    "rejected",
    "confirmed",
    "reconciling",
    "awaiting_funds",
    "disputed",
    "void",
    "settled",
    "paid",
    "invoiced",
    "cancelled",
];

/// Filters and paging of `GET /orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    /// Only orders in this status (as `status` shows it).
    pub status: Option<String>,
    /// Only orders of this enterprise (organisation id).
    pub enterprise_id: Option<String>,
    /// Only orders created at or after this RFC 3339 date-time, or on or after this date
    /// (`2026-12-01`, a day in China Standard Time).
    pub from: Option<String>,
    /// Only orders created at or before this RFC 3339 date-time, or on or before this date.
    pub to: Option<String>,
    /// At most this many orders (1 to 500; 100 when absent).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Where to go on: the `X-Next-Cursor` header of the previous page (same filters).
    /// Absent: the first page.
    pub cursor: Option<String>,
}

/// What an order in `status` must have in its row, settlement and statement: a condition
/// every such order meets, narrowing the scan. The status derived in Rust (`views`) then
/// decides exactly, so a list shows the status `GET /orders/{id}` shows.
fn status_condition(status: &str) -> String {
    const LIVE: &str = "o.cancelled_at IS NULL";
    const UNSETTLED: &str = "NOT EXISTS (SELECT 1 FROM settlements s WHERE s.order_id = o.id)";
    let statement = |word: &str| {
        format!(
            "EXISTS (SELECT 1 FROM statements t WHERE t.order_id = o.id \
             AND t.status = '{word}')"
        )
    };
    let settled = |paid: &str| {
        format!(
            "{LIVE} AND EXISTS (SELECT 1 FROM settlements s WHERE s.order_id = o.id \
             AND s.status {paid} 'paid')"
        )
    };
    let before_statement = |column: &str| {
        format!(
            "{LIVE} AND {UNSETTLED} AND NOT EXISTS (SELECT 1 FROM statements t \
             WHERE t.order_id = o.id AND t.status IN ('void', 'disputed', 'awaiting_funds', \
             'open')) AND COALESCE(o.confirmation, '') <> 'disputed' AND {column}"
        )
    };
    match status {
        "cancelled" => "o.cancelled_at IS NOT NULL".to_owned(),
        "invoiced" | "paid" => settled("="),
        "settled" => settled("<>"),
        "void" => format!("{LIVE} AND {UNSETTLED} AND {}", statement("void")),
        "awaiting_funds" => format!("{LIVE} AND {UNSETTLED} AND {}", statement("awaiting_funds")),
        "reconciling" => format!("{LIVE} AND {UNSETTLED} AND {}", statement("open")),
        "disputed" => format!(
            "{LIVE} AND {UNSETTLED} AND ({} OR o.confirmation = 'disputed')",
            statement("disputed")
        ),
        "rejected" => before_statement(
            "(o.operator_decision = 'rejected' \
             OR (o.operator_decision IS NULL AND o.verdict = 'rejected'))",
        ),
        "returned" => before_statement("o.operator_decision = 'has_issues'"),
        "confirmed" => before_statement("o.confirmation = 'confirmed'"),
        "verified" => {
            before_statement("(o.operator_decision = 'approved' OR o.verdict = 'passed')")
        }
        "needs_review" => before_statement("o.verdict = 'needs_review'"),
        "submitted" => before_statement("o.submitted_at IS NOT NULL"),
        "assigned" => before_statement("o.submitted_at IS NULL"),
        _ => "1 = 1".to_owned(),
    }
}

/// Orders, oldest first (by creation time, then id), a page at a time: the caller's own, or
/// all of them, narrowed by the filters. Each carries an `evidence_summary`. When more orders
/// follow, the `X-Next-Cursor` header holds the cursor of the next page; the last page has
/// none.
///
/// Who may call: workers (their orders), enterprise accounts (their organisation's), and holders of
/// Permission `read_all_work` (every order): operators in the reviewer, risk, finance, legal,
/// welfare, support or regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/orders",
    operation_id = "list_orders",
    tag = "orders",
    security(("bearer" = [])),
    params(OrderFilter),
    responses(
        (status = 200, description = "A page of orders", body = Vec<OrderView>,
            headers(("X-Next-Cursor" = String,
                description = "The `cursor` of the next page; absent on the last page"))),
        (status = 400, description = "`invalid_query`: a filter, `limit` or `cursor` is not \
            understood (`field` names it)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<OrderFilter>,
) -> ApiResult<(HeaderMap, Json<Vec<OrderView>>)> {
    let (from, to) = super::filters::period(filter.from.as_deref(), filter.to.as_deref())?;
    if let Some(status) = filter.status.as_deref()
        && !STATUSES.contains(&status)
    {
        let message = format!("status is one of {}", STATUSES.join(", "));
        return Err(ApiError::bad_request("invalid_query", message).field("status"));
    }
    let limit = super::filters::page_limit(filter.limit.as_deref())?;
    let mut after = match filter.cursor.as_deref() {
        Some(cursor) => super::filters::decode_cursor(cursor)?,
        None => (i64::MIN, String::new()),
    };
    let (scope_sql, scope_value) = match caller.work_scope() {
        WorkScope::All => ("$1 = ''", String::new()),
        WorkScope::Worker(worker) => ("o.worker_id = $1", worker.to_owned()),
        WorkScope::Organisation(organisation) => ("o.enterprise_id = $1", organisation.to_owned()),
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    let status_sql = status_condition(filter.status.as_deref().unwrap_or_default());
    // One more than the page, to know whether another page follows. The cursor is a row
    // comparison, so that both backends start the index scan at it (with `OR`, PostgreSQL
    // read every earlier order again on each page).
    let batch = limit + 1;
    let sql = format!(
        "SELECT o.*, e.version AS doc_version, e.photos AS doc_photos, \
           e.track_points AS doc_track_points, e.signatures AS doc_signatures, \
           e.notes AS doc_notes \
         FROM orders o LEFT JOIN evidence_docs e ON e.order_id = o.id \
         WHERE {scope_sql} AND ($2 = '' OR o.enterprise_id = $2) \
           AND o.created_at >= $3 AND o.created_at <= $4 \
           AND (o.created_at, o.id) > ($5, $6) \
           AND {status_sql} \
         ORDER BY o.created_at, o.id LIMIT {batch}"
    );

    let mut page: Vec<OrderView> = Vec::with_capacity(limit);
    let mut more = false;
    let mut last_created_at = 0_i64;
    'scan: loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&scope_value)
            .bind(filter.enterprise_id.clone().unwrap_or_default())
            .bind(from)
            .bind(to)
            .bind(after.0)
            .bind(&after.1)
            .fetch_all(&state.db.pool)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.try_get("created_at")?, last.try_get("id")?);
        let scanned = rows.len();
        // Without a status filter every row matches: the one past the page is not built.
        let wanted = if filter.status.is_none() {
            rows.len().min(limit - page.len())
        } else {
            rows.len()
        };
        let rows = &rows[..wanted];
        let built = views(&state, rows).await?;
        let summaries = summaries(&state, rows).await?;
        for ((mut order, summary), row) in built.into_iter().zip(summaries).zip(rows) {
            if filter.status.as_deref().is_some_and(|s| s != order.status) {
                continue;
            }
            if page.len() == limit {
                more = true;
                break 'scan;
            }
            order.evidence_summary = Some(super::evidence::summary_of(&order, summary));
            page.push(order);
            last_created_at = row.try_get("created_at")?;
        }
        if wanted < scanned && page.len() == limit {
            more = true;
            break;
        }
        if scanned < batch {
            break;
        }
    }

    let mut headers = HeaderMap::new();
    if more && let Some(last) = page.last() {
        let cursor = super::filters::encode_cursor(last_created_at, &last.id);
        if let Ok(value) = HeaderValue::from_str(&cursor) {
            headers.insert("x-next-cursor", value);
        }
    }
    Ok((headers, Json(page)))
}

/// The counts of each row's evidence document, from the columns the list joins in; documents
/// saved before they were counted are counted once now.
async fn summaries(
    state: &AppState,
    rows: &[sqlx::any::AnyRow],
) -> ApiResult<Vec<crate::evidence::Counts>> {
    let mut counts = Vec::with_capacity(rows.len());
    let mut uncounted = Vec::new();
    for row in rows {
        let version: Option<i64> = row.try_get("doc_version")?;
        let photos: Option<i64> = row.try_get("doc_photos")?;
        counts.push(match (version, photos) {
            (None, _) => Some(crate::evidence::Counts::default()),
            (Some(_), None) => {
                uncounted.push(row.try_get::<String, _>("id")?);
                None
            }
            (Some(_), Some(photos)) => Some(crate::evidence::Counts {
                photos,
                track_points: row
                    .try_get::<Option<i64>, _>("doc_track_points")?
                    .unwrap_or(0),
                signatures: row
                    .try_get::<Option<i64>, _>("doc_signatures")?
                    .unwrap_or(0),
                notes: row.try_get::<Option<i64>, _>("doc_notes")?.unwrap_or(0),
            }),
        });
    }
    let mut counted =
        crate::evidence::backfill_counts(&state.db.pool, &state.actor, &uncounted).await?;
    rows.iter()
        .zip(counts)
        .map(|(row, known)| match known {
            Some(known) => Ok(known),
            None => {
                let id: String = row.try_get("id")?;
                Ok(counted.remove(&id).unwrap_or_default())
            }
        })
        .collect()
}

/// Accepts the work as done, which opens the order's three-party statement.
///
/// Once confirmed, the order's evidence can no longer change.
///
/// Who may call: Permission `confirm_work`: the administrators of the order's enterprise.
#[utoipa::path(
    post,
    path = "/orders/{id}/confirm",
    operation_id = "confirm_order",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order, with its statement if everything else holds",
            body = OrderView),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise administrator",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`order_cancelled`, `not_submitted`, `already_settled`, \
            `statement_open`, `order_returned`: the evidence was sent back to the worker",
            body = ErrorBody),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    decide_completion(&state, &caller, &id, "confirmed", None).await
}

/// A reason for a decision.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DisputeReason)]
pub struct Reason {
    pub reason: String,
}

/// Disputes completion: the work was not done as agreed.
///
/// Who may call: Permission `dispute_work`: the order's enterprise, administrators and staff.
#[utoipa::path(
    post,
    path = "/orders/{id}/dispute",
    operation_id = "dispute_order",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "The order, disputed", body = OrderView),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise account", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`order_cancelled`, `not_submitted`, `already_settled`, \
            `statement_open`, `order_returned` (sent back to the worker to redo)",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn dispute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<OrderView>> {
    let reason = required_reason(&body.reason).map_err(|e| e.field("reason"))?;
    decide_completion(&state, &caller, &id, "disputed", Some(reason)).await
}

fn required_reason(reason: &str) -> ApiResult<&str> {
    let reason = reason.trim();
    if reason.chars().count() > 2000 {
        let message = "a reason has at most 2000 characters";
        return Err(ApiError::bad_request("reason_too_long", message));
    }
    if !reason.chars().any(char::is_alphanumeric) {
        let message = "give a reason of 1 to 2000 characters, with a letter or digit";
        return Err(ApiError::bad_request("reason_required", message));
    }
    Ok(reason)
}

async fn decide_completion(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
    decision: &str,
    reason: Option<&str>,
) -> ApiResult<Json<OrderView>> {
    caller.require(if decision == "confirmed" {
        Permission::ConfirmWork
    } else {
        Permission::DisputeWork
    })?;
    let order = visible(state, caller, order_id).await?;
    if order.cancelled_at.is_some() {
        return Err(cancelled());
    }
    if order.submitted_at.is_none() {
        let message = "the worker has not submitted this order yet";
        return Err(ApiError::conflict("not_submitted", message));
    }
    if order.settlement.is_some() {
        return Err(ApiError::conflict(
            "already_settled",
            "this order is already settled",
        ));
    }
    if order.statement.is_some() {
        return Err(statement_open());
    }
    let returned = || {
        let message = "an operator sent this order's evidence back to the worker to redo; \
                       confirm or dispute once the new evidence is verified and reviewed";
        ApiError::conflict("order_returned", message)
    };
    if order.operator_decision.as_deref() == Some("has_issues") {
        return Err(returned());
    }

    // Personal numbers in the reason are masked before it is stored. Confirming freezes the
    // evidence and a dispute judges it, so both wait while the worker redoes what was sent
    // back.
    let reason = reason.map(crate::identity::redact_numbers);
    let result = sqlx::query(
        "UPDATE orders SET confirmation = $1, confirmation_reason = $2, confirmed_at = $3 \
         WHERE id = $4 AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.order_id = $4) \
         AND (operator_decision IS NULL OR operator_decision <> 'has_issues')",
    )
    .bind(decision)
    .bind(reason)
    .bind(now_ms())
    .bind(order_id)
    .execute(&state.db.pool)
    .await?;
    if result.rows_affected() == 0 {
        // Something changed since the order was read: a statement opened or the evidence
        // was sent back.
        let now = view(state, order_id).await?;
        return Err(if now.statement.is_some() {
            statement_open()
        } else {
            returned()
        });
    }
    tracing::info!(order_id, decision, "enterprise decided completion");

    statements::try_open(state, order_id).await?;
    Ok(Json(view(state, order_id).await?))
}

fn statement_open() -> ApiError {
    let message = "the order's completion is confirmed and its statement is out for the three \
                   parties' confirmation; confirm or dispute the statement instead";
    ApiError::conflict("statement_open", message)
}

/// `POST /orders/{id}/review` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    /// `approve`, `reject` or `has_issues`.
    pub decision: String,
    /// Why; for `has_issues`, the comment the worker reads.
    pub reason: String,
    /// For `has_issues`: the items to redo, each with a comment (at least one).
    #[serde(default)]
    pub items: Vec<IssueItem>,
}

/// One item of the evidence an operator sends back, with what is wrong with it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueItem {
    /// A photo, signature or note id of the order's evidence, or `track`.
    pub item: String,
    pub comment: String,
}

/// Approves or rejects verified evidence, or sends it back to the worker, with a reason.
///
/// Only the latest verdict can be decided on: `needs_review` can be approved or rejected,
/// `passed` only rejected; both can be sent back (`has_issues`) with one comment per item to
/// redo, which reach the worker's phone as findings of those items (`operator_has_issues`).
/// A sent-back order is `returned` until new evidence arrives and is verified; then it is
/// reviewed as usual. The reason reaches the worker's phone. Every decision is kept in the
/// order's decision history and the audit trail.
///
/// Who may call: Permission `review_evidence`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/orders/{id}/review",
    operation_id = "review_order_evidence",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    request_body = ReviewDecision,
    responses(
        (status = 200, description = "The order, decided", body = OrderView),
        (status = 400, description = "`invalid_decision`, `reason_required`, \
            `reason_too_long`, `items_required`, `items_not_allowed`, `unknown_item`, \
            `comment_required`, `duplicate_item`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order", body = ErrorBody),
        (status = 409, description = "`not_verified`, `nothing_to_approve`, \
            `cannot_approve_rejected`, `cannot_return_rejected`, `order_confirmed` (the \
            enterprise confirmed: the evidence cannot be sent back), `order_disputed` (the \
            enterprise disputed: approve or reject), `order_returned` (sent back: approved only \
            after new evidence), `decision_conflict` (another decision at the same moment), \
            `already_settled`, `statement_open`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReviewDecision>,
) -> ApiResult<Json<OrderView>> {
    caller.require(Permission::ReviewEvidence)?;
    // One decision on an order at a time in this process, so the order, its decision history
    // and the review in its evidence document end on the same decision.
    let lock = &state.order_locks[crate::lock_slot(&id, state.order_locks.len())];
    let _guard = lock.lock().await;
    let order = visible(&state, &caller, &id).await?;
    let decision = match body.decision.as_str() {
        "approve" => "approved",
        "reject" => "rejected",
        "has_issues" => "has_issues",
        _ => {
            return Err(ApiError::bad_request(
                "invalid_decision",
                "decision is approve, reject or has_issues",
            )
            .field("decision"));
        }
    };
    let reason = required_reason(&body.reason).map_err(|e| e.field("reason"))?;
    // Personal numbers in what the worker and the history show are masked before storing.
    let reason = crate::identity::redact_numbers(reason);
    let items = if decision == "has_issues" {
        issue_items(&state, &id, &body.items).await?
    } else if body.items.is_empty() {
        Vec::new()
    } else {
        let message = "items go with has_issues only";
        return Err(ApiError::bad_request("items_not_allowed", message).field("items"));
    };
    let verdict = reviewable_verdict(&order, decision)?;
    let frozen = || {
        let message = "the enterprise has confirmed this order, so its evidence can no longer \
                       change; approve or reject it instead";
        ApiError::conflict("order_confirmed", message)
    };
    let disputed = || {
        let message = "the enterprise disputed this order's completion; approve or reject the \
                       evidence, and finance resolves the dispute";
        ApiError::conflict("order_disputed", message)
    };
    if decision == "has_issues" {
        match order.confirmation.as_deref() {
            Some("confirmed") => return Err(frozen()),
            Some("disputed") => return Err(disputed()),
            _ => {}
        }
    }

    // The decision covers the verdict just checked; if verification moved on meanwhile, the
    // operator must look again. Sending back needs evidence the worker can still change.
    // Decisions follow each other in time: one made by another server process at the same
    // moment (the same or a later `decided_at`) wins, and this one is refused.
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let result = sqlx::query(
        "UPDATE orders SET operator_decision = $1, operator_reason = $2, operator_id = $3, \
         decided_at = $4 WHERE id = $5 AND verdict = $6 AND needs_verification = 0 \
         AND ($1 <> 'has_issues' OR confirmation IS NULL) \
         AND (decided_at IS NULL OR decided_at < $4)",
    )
    .bind(decision)
    .bind(&reason)
    .bind(&caller.account_id)
    .bind(now)
    .bind(&id)
    .bind(verdict)
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() == 0 {
        drop(tx);
        let now_order = view(&state, &id).await?;
        return Err(match now_order.confirmation.as_deref() {
            Some("confirmed") if decision == "has_issues" => frozen(),
            Some("disputed") if decision == "has_issues" => disputed(),
            _ if now_order.verdict.as_deref() != Some(verdict)
                || now_order.verification_pending =>
            {
                not_verified()
            }
            _ => {
                let message = "another decision on this order was made at the same moment; \
                               reload it and decide again";
                ApiError::conflict("decision_conflict", message)
            }
        });
    }
    sqlx::query(
        "INSERT INTO order_decisions \
           (id, order_id, decision, reason, items, operator_id, verdict, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(crate::new_id())
    .bind(&id)
    .bind(decision)
    .bind(&reason)
    .bind(serde_json::to_string(&items).map_err(ApiError::internal)?)
    .bind(&caller.account_id)
    .bind(verdict)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let event = crate::audit::Event::by(&caller, "evidence_reviewed", crate::audit::Outcome::Ok)
        .object(format!("order:{id}"))
        .detail(serde_json::json!({
            "decision": decision, "verdict": verdict, "reason": reason,
            "items": items.iter().map(|i| i.item.as_str()).collect::<Vec<_>>(),
        }));
    crate::audit::record(&state, event).await?;
    tracing::info!(order_id = %id, decision, "operator reviewed evidence");

    rewrite_review(&state, &id).await?;
    statements::try_open(&state, &id).await?;
    Ok(Json(view(&state, &id).await?))
}

/// Checks the items of a `has_issues` decision against the order's evidence; comments are
/// masked like reasons.
async fn issue_items(
    state: &AppState,
    order_id: &str,
    items: &[IssueItem],
) -> ApiResult<Vec<IssueItem>> {
    if items.is_empty() {
        let message = "name at least one item to redo (a photo, signature or note id, or \
                       track), each with a comment";
        return Err(ApiError::bad_request("items_required", message).field("items"));
    }
    let known = super::evidence::item_ids(state, order_id).await?;
    let mut checked: Vec<IssueItem> = Vec::with_capacity(items.len());
    for item in items {
        if checked.iter().any(|c| c.item == item.item) {
            let message = format!(
                "item {:?} is named twice; put everything to redo on it in one comment",
                crate::identity::redact_numbers(&item.item)
            );
            return Err(ApiError::bad_request("duplicate_item", message).field("items"));
        }
        if !known.contains(&item.item) {
            let message = format!(
                "the order's evidence has no item {:?}; use a photo, signature or note id, or \
                 track",
                crate::identity::redact_numbers(&item.item)
            );
            return Err(ApiError::bad_request("unknown_item", message).field("items"));
        }
        let comment = required_reason(&item.comment).map_err(|_| {
            let message = "each item needs a comment of 1 to 2000 characters";
            ApiError::bad_request("comment_required", message).field("items")
        })?;
        checked.push(IssueItem {
            item: item.item.clone(),
            comment: crate::identity::redact_numbers(comment),
        });
    }
    Ok(checked)
}

/// The verdict an operator decision would cover, if the order can be decided now: evidence
/// submitted and verified, not settled; only a `needs_review` verdict can be approved.
fn reviewable_verdict<'a>(order: &'a OrderView, decision: &str) -> ApiResult<&'a str> {
    if order.settlement.is_some() {
        return Err(ApiError::conflict(
            "already_settled",
            "this order is already settled",
        ));
    }
    if order.statement.is_some() {
        return Err(statement_open());
    }
    let verdict = match order.verdict.as_deref() {
        Some(verdict) if !order.verification_pending => verdict,
        _ => return Err(not_verified()),
    };
    if decision == "approved" && order.operator_decision.as_deref() == Some("has_issues") {
        let message = "the evidence was sent back to the worker to redo; it is reviewed again \
                       once the new evidence is verified (reject it if the worker will not)";
        return Err(ApiError::conflict("order_returned", message));
    }
    match (decision, verdict) {
        ("approved", "passed") => {
            let message = "the evidence passed verification; there is nothing to approve";
            Err(ApiError::conflict("nothing_to_approve", message))
        }
        ("approved", "rejected") => {
            let message = "a rejected verdict means required evidence is missing or unusable; \
                           the worker must add or fix it before it can be approved";
            Err(ApiError::conflict("cannot_approve_rejected", message))
        }
        ("has_issues", "rejected") => {
            let message = "a rejected verdict already goes back to the worker with its \
                           findings; reject it, or wait for new evidence";
            Err(ApiError::conflict("cannot_return_rejected", message))
        }
        _ => Ok(verdict),
    }
}

fn cancelled() -> ApiError {
    let message = "this order was cancelled; it takes no more evidence or decisions";
    ApiError::conflict("order_cancelled", message)
}

/// Cancels an order the worker has not submitted yet, with a reason.
///
/// The worker's phone shows it as `cancelled` at its next sync, and the order takes no more
/// evidence, confirmation or dispute. Its place on the task is freed (a closed task stays
/// closed). Recorded in the audit trail.
///
/// Who may call: Permission `publish_tasks`: the order's enterprise, administrators and staff;
/// and Permission `review_tasks`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    operation_id = "cancel_order",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "The order, cancelled", body = OrderView),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither an enterprise account nor a reviewer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`order_cancelled`: cancelled already; \
            `order_already_submitted`: the worker submitted it", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<OrderView>> {
    if !caller.can(Permission::PublishTasks) {
        caller.require(Permission::ReviewTasks)?;
    }
    let order = visible(&state, &caller, &id).await?;
    let reason = crate::audit::reason(&body.reason, 3)?;
    let reason = crate::identity::redact_numbers(reason);
    if order.cancelled_at.is_some() {
        return Err(cancelled());
    }

    // The phone's sync sets `submitted_at` inside its write transaction: whichever commits
    // first wins, and a submitted order is not cancelled.
    let mut tx = state.db.begin_write().await?;
    let result = sqlx::query(
        "UPDATE orders SET cancelled_at = $1, cancel_reason = $2, cancelled_by = $3 \
         WHERE id = $4 AND cancelled_at IS NULL AND submitted_at IS NULL",
    )
    .bind(now_ms())
    .bind(&reason)
    .bind(&caller.account_id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() == 0 {
        let message = "the worker has submitted this order; dispute it instead of cancelling";
        return Err(ApiError::conflict("order_already_submitted", message));
    }
    tx.commit().await?;

    let event = crate::audit::Event::by(&caller, "order_cancelled", crate::audit::Outcome::Ok)
        .object(format!("order:{id}"))
        .detail(serde_json::json!({ "task_id": order.task_id, "reason": reason }));
    crate::audit::record(&state, event).await?;
    tracing::info!(order_id = %id, "order cancelled before submission");
    Ok(Json(view(&state, &id).await?))
}

fn not_verified() -> ApiError {
    let message = "the latest evidence of this order has not been verified yet; decide once \
                   the verdict is in";
    ApiError::conflict("not_verified", message)
}

/// Puts the operator's comment into the document's review, so the worker sees it.
async fn rewrite_review(state: &AppState, order_id: &str) -> ApiResult<()> {
    let order = view(state, order_id).await?;
    let Some(report) = order.report else {
        return Ok(());
    };
    let report: crate::verify::Report =
        serde_json::from_value(report).map_err(ApiError::internal)?;
    crate::verification::write_review(state, order_id, &report).await
}

/// The order's settlement: gross fee, tax withheld, net pay.
///
/// Who may call: the order's worker, its enterprise (administrators and staff), and holders of
/// Permission `read_all_work`: operators in the reviewer, risk, finance, legal, welfare, support or
/// regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/orders/{id}/settlement",
    operation_id = "get_settlement",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The settlement", body = Settlement),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order (or not the caller's), or not \
            settled yet", body = ErrorBody),
    ),
)]
pub async fn settlement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Settlement>> {
    let order = visible(&state, &caller, &id).await?;
    order
        .settlement
        .map(Json)
        .ok_or_else(|| ApiError::not_found("settlement"))
}
