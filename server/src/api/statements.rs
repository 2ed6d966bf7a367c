//! Escrow deposits, an enterprise's escrow account, and the three-party statements that come
//! before any settlement ([`crate::statements`]).

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::ErrorBody;
use serde::Deserialize;

use super::{JsonBody, QueryParams};
use crate::auth::{Caller, Permission, Role};
use crate::error::{ApiError, ApiResult};
use crate::statements::{self, Deposit, Escrow, NewDeposit, Resolution, Statement};
use crate::{AppState, audit};

/// Largest single deposit accepted, in fen (ten billion CNY): anything above is a typing
/// error.
const MAX_DEPOSIT_FEN: i64 = 1_000_000_000_000;

/// `POST /enterprises/{id}/deposits` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DepositRequest {
    /// The amount the bank reported, in fen (positive).
    pub amount_fen: i64,
    /// The bank's reference of the transfer: 1–64 letters, digits, `-`, `_`, `/` or `.`;
    /// trimmed and upper-cased (ASCII) before it is stored and compared, so `dup` and `DUP`
    /// are the same reference.
    pub bank_reference: String,
    /// The value date the bank reported, `YYYY-MM-DD`, not in the future.
    pub value_date: String,
}

/// Records a deposit the bank reported into the enterprise's dedicated fund account.
///
/// Idempotent by (enterprise, bank reference), the reference trimmed and upper-cased (ASCII)
/// first, so `dup` and `DUP` are one reference: the same deposit again answers the recorded
/// one; another amount or date under the same reference is refused. Credits the enterprise's
/// escrow in the ledger in the same transaction, then settles the enterprise's statements
/// that were waiting for funds.
///
/// Who may call: Permission `record_deposits`: operators in the finance team.
#[utoipa::path(
    post,
    path = "/enterprises/{id}/deposits",
    operation_id = "record_deposit",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The enterprise's (organisation's) id")),
    request_body = DepositRequest,
    responses(
        (status = 200, description = "The deposit, new or recorded before", body = Deposit),
        (status = 400, description = "`invalid_amount`, `invalid_bank_reference`, \
            `invalid_date`, `date_in_future`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the finance team", body = ErrorBody),
        (status = 404, description = "`not_found`: no such enterprise", body = ErrorBody),
        (status = 409, description = "`bank_reference_reused`: the reference was recorded \
            with another amount or date", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn record_deposit(
    State(state): State<AppState>,
    caller: Caller,
    Path(enterprise_id): Path<String>,
    JsonBody(body): JsonBody<DepositRequest>,
) -> ApiResult<Json<Deposit>> {
    caller.require(Permission::RecordDeposits)?;
    let exists = sqlx::query(
        "SELECT id FROM accounts WHERE id = $1 AND role = 'enterprise' \
           AND (organisation_id IS NULL OR organisation_id = id)",
    )
    .bind(&enterprise_id)
    .fetch_optional(&state.db.pool)
    .await?;
    if exists.is_none() {
        return Err(ApiError::not_found("enterprise"));
    }
    if body.amount_fen <= 0 || body.amount_fen > MAX_DEPOSIT_FEN {
        let message = "amount_fen is the deposit in fen: a whole number from 1 to \
                       1000000000000";
        return Err(ApiError::bad_request("invalid_amount", message).field("amount_fen"));
    }
    let reference = statements::normalise_reference(&body.bank_reference);
    let reference = reference.as_str();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_/.".contains(c);
    if reference.is_empty() || reference.len() > 64 || !reference.chars().all(allowed) {
        let message = "bank_reference is the bank's reference of the transfer: 1 to 64 \
                       letters, digits, '-', '_', '/' or '.'";
        return Err(
            ApiError::bad_request("invalid_bank_reference", message).field("bank_reference")
        );
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(&body.value_date, &format).is_err() {
        let message = "value_date is the bank's value date as YYYY-MM-DD";
        return Err(ApiError::bad_request("invalid_date", message).field("value_date"));
    }
    if body.value_date > crate::shanghai_date(crate::now_ms()) {
        let message = "value_date is in the future; record a deposit once the bank reports it";
        return Err(ApiError::bad_request("date_in_future", message).field("value_date"));
    }
    let deposit = NewDeposit {
        enterprise_id: &enterprise_id,
        bank_reference: reference,
        amount_fen: body.amount_fen,
        value_date: &body.value_date,
    };
    let (deposit, _) = statements::record_deposit(&state, &caller, &deposit).await?;
    Ok(Json(deposit))
}

/// `GET /enterprise/escrow` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EscrowQuery {
    /// The enterprise to show (finance operators; enterprise accounts see their own).
    pub enterprise: Option<String>,
}

/// An enterprise's escrow: balance (from the ledger), deposits and movements.
///
/// Who may call: Permission `read_escrow`: an enterprise's administrators and staff (their
/// own organisation's), and operators in the finance team (any enterprise's, named with
/// `?enterprise=`).
#[utoipa::path(
    get,
    path = "/enterprise/escrow",
    operation_id = "get_escrow",
    tag = "money",
    security(("bearer" = [])),
    params(EscrowQuery),
    responses(
        (status = 200, description = "The escrow account", body = Escrow),
        (status = 400, description = "`enterprise_required`; `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither the enterprise nor finance",
            body = ErrorBody),
        (status = 404, description = "`not_found`: another enterprise's escrow",
            body = ErrorBody),
    ),
)]
pub async fn escrow(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<EscrowQuery>,
) -> ApiResult<Json<Escrow>> {
    caller.require(Permission::ReadEscrow)?;
    let enterprise = match caller.role {
        Role::Enterprise => {
            let own = caller.organisation_id.clone();
            if query.enterprise.as_ref().is_some_and(|e| *e != own) {
                return Err(ApiError::not_found("escrow"));
            }
            own
        }
        _ => query.enterprise.clone().ok_or_else(|| {
            let message = "name the enterprise with ?enterprise=<its id>";
            ApiError::bad_request("enterprise_required", message)
        })?,
    };
    Ok(Json(statements::escrow(&state, &enterprise).await?))
}

/// The order's current statement: amounts, evidence digest, who confirmed, and the
/// settlement (gross, tax, net) once settled.
///
/// Who may call: the order's worker and its enterprise (administrators and staff), and
/// holders of Permission `read_all_work`: operators in the reviewer, risk, finance, legal,
/// welfare, support or regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/orders/{id}/statement",
    operation_id = "get_order_statement",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The statement", body = Statement),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: an operator whose teams read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such order (or not the caller's), or no \
            statement yet", body = ErrorBody),
    ),
)]
pub async fn order_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Statement>> {
    let order = super::orders::visible(&state, &caller, &id).await?;
    order
        .statement
        .map(Json)
        .ok_or_else(|| ApiError::not_found("statement"))
}

/// Loads a statement the caller is a party of, with the party.
async fn as_party(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<(Statement, &'static str)> {
    caller.require(Permission::ConfirmStatements)?;
    let statement = statements::load(state, id).await?;
    let party = statements::party_of(caller, &statement)?;
    Ok((statement, party))
}

/// Confirms the statement as the caller's party; the third confirmation settles it.
///
/// Idempotent: confirming again what one confirmed answers the statement. Once all three
/// confirmed, the settlement is written and the worker's pay credited, or the statement
/// waits in `awaiting_funds` until the enterprise's escrow covers gross + fee.
///
/// Who may call: Permission `confirm_statements`: the order's worker (signed phone
/// requests), its enterprise (administrators and staff), and operators in the finance or
/// reviewer team for the platform.
#[utoipa::path(
    post,
    path = "/statements/{id}/confirm",
    operation_id = "confirm_statement",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The statement's id")),
    responses(
        (status = 200, description = "The statement, settled if this was the third \
            confirmation and funds cover it", body = Statement),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a party to statements",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such statement, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`statement_superseded`, `statement_disputed`, \
            `statement_void`", body = ErrorBody),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Statement>> {
    let (statement, party) = as_party(&state, &caller, &id).await?;
    statements::confirm(&state, &caller, &statement, party).await?;
    Ok(Json(statements::load(&state, &id).await?))
}

/// `POST /statements/{id}/dispute` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StatementDispute {
    /// What is wrong with the statement (5 to 2000 characters).
    pub reason: String,
}

/// Disputes the statement, which stops it until the finance team resolves it.
///
/// Who may call: Permission `confirm_statements`: the order's worker (signed phone
/// requests), its enterprise (administrators and staff), and operators in the finance or
/// reviewer team for the platform.
#[utoipa::path(
    post,
    path = "/statements/{id}/dispute",
    operation_id = "dispute_statement",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The statement's id")),
    request_body = StatementDispute,
    responses(
        (status = 200, description = "The statement, disputed", body = Statement),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a party to statements",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such statement, or not the caller's",
            body = ErrorBody),
        (status = 409, description = "`statement_superseded`, `statement_disputed`, \
            `statement_void`, `already_settled`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn dispute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatementDispute>,
) -> ApiResult<Json<Statement>> {
    let (statement, party) = as_party(&state, &caller, &id).await?;
    let reason = audit::reason(&body.reason, 5)?;
    statements::dispute(&state, &caller, &statement, party, reason).await?;
    Ok(Json(statements::load(&state, &id).await?))
}

/// `POST /statements/{id}/resolve` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StatementResolution {
    /// `reissue` (a new version with `gross_fen`) or `void` (no pay; the order is void).
    pub action: String,
    /// The corrected gross fee, in fen, for `reissue`: 1 to 100000000 (1,000,000 CNY), and
    /// not below the task's `min_fee_fen` when it has one.
    pub gross_fen: Option<i64>,
    /// Why (5 to 2000 characters); kept on the statement and in the audit trail.
    pub reason: String,
}

/// The most a reissued statement may pay: the same cap as a task's fee (1,000,000 CNY).
const MAX_REISSUE_FEN: i64 = 100_000_000;

/// Resolves a disputed statement: reissue it with a corrected gross (the old version is
/// superseded and the three confirmations start again) or void it.
///
/// Who may call: Permission `resolve_statements`: operators in the finance team.
#[utoipa::path(
    post,
    path = "/statements/{id}/resolve",
    operation_id = "resolve_statement",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The disputed statement's id")),
    request_body = StatementResolution,
    responses(
        (status = 200, description = "The statement now current for the order: the new \
            version, or the voided one", body = Statement),
        (status = 400, description = "`invalid_action`, `invalid_amount`, `reason_required`, \
            `reason_too_long`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the finance team", body = ErrorBody),
        (status = 404, description = "`not_found`: no such statement", body = ErrorBody),
        (status = 409, description = "`statement_not_disputed`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatementResolution>,
) -> ApiResult<Json<Statement>> {
    caller.require(Permission::ResolveStatements)?;
    let statement = statements::load(&state, &id).await?;
    let resolution = match (body.action.as_str(), body.gross_fen) {
        ("reissue", Some(gross)) if (1..=MAX_REISSUE_FEN).contains(&gross) => {
            Resolution::Reissue(gross)
        }
        ("reissue", _) => {
            let message = "a reissue needs gross_fen: the corrected fee, a whole number of fen \
                           from 1 to 100000000 (1,000,000 CNY), as for a task's fee (to pay \
                           nothing, void the statement)";
            return Err(ApiError::bad_request("invalid_amount", message));
        }
        ("void", _) => Resolution::Void,
        _ => {
            let message = "action is reissue or void";
            return Err(ApiError::bad_request("invalid_action", message));
        }
    };
    if let Resolution::Reissue(gross) = resolution {
        let row = sqlx::query("SELECT min_fee_fen FROM tasks WHERE id = $1")
            .bind(&statement.task_id)
            .fetch_optional(&state.db.pool)
            .await?;
        let min_fee = match row {
            Some(row) => sqlx::Row::try_get::<Option<i64>, _>(&row, "min_fee_fen")?,
            None => None,
        };
        if let Some(min_fee) = min_fee.filter(|&m| gross < m) {
            let message = format!(
                "the task guarantees a minimum fee of {min_fee} fen: a reissue's gross_fen \
                 must be from {min_fee} to 100000000 (1,000,000 CNY)"
            );
            return Err(ApiError::bad_request("invalid_amount", message));
        }
    }
    let reason = audit::reason(&body.reason, 5)?;
    let current = statements::resolve(&state, &caller, &statement, resolution, reason).await?;
    Ok(Json(statements::load(&state, &current).await?))
}

/// `GET /statements` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementsQuery {
    /// Only statements with this status: `open`, `awaiting_funds`, `settled`, `disputed`,
    /// `superseded` or `void`.
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Statements, newest first, for the platform's desks (e.g. `?status=disputed`).
///
/// Who may call: Permission `read_all_work`: operators in the reviewer, risk, finance,
/// legal, welfare, support or regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/statements",
    operation_id = "list_statements",
    tag = "money",
    security(("bearer" = [])),
    params(StatementsQuery),
    responses(
        (status = 200, description = "The statements", body = Vec<Statement>),
        (status = 400, description = "`invalid_status`; `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator team that reads work",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<StatementsQuery>,
) -> ApiResult<Json<Vec<Statement>>> {
    caller.require(Permission::ReadAllWork)?;
    let status = query.status.unwrap_or_default();
    let known = [
        "",
        "open",
        "awaiting_funds",
        "settled",
        "disputed",
        "superseded",
        "void",
    ];
    if !known.contains(&status.as_str()) {
        let message = "status is open, awaiting_funds, settled, disputed, superseded or void";
        return Err(ApiError::bad_request("invalid_status", message));
    }
    let limit = query.limit.unwrap_or(100);
    Ok(Json(statements::list(&state, &status, limit).await?))
}
