//! Authenticity checks, regulator exports and deregistration over HTTP ([`crate::checks`],
//! [`crate::regulator`], [`crate::deregistration`]).

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::ErrorBody;
use serde::{Deserialize, Serialize};

use super::{JsonBody, QueryParams};
use crate::auth::{Caller, Permission};
use crate::checks::{self, Closing, Item, RunSummary, ScreeningStatus};
use crate::deregistration::{self, Deregistration};
use crate::error::{ApiError, ApiResult};
use crate::regulator::{self, ExportKind, ExportRecord, ExportWithContent};
use crate::{AppState, now_ms, shanghai_date};

/// Which date to draw.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RunRequest {
    /// `YYYY-MM-DD` (Asia/Shanghai); today when left out.
    #[serde(default)]
    pub date: Option<String>,
}

/// Draws the daily samples of a date now, as the daily job does; a date already drawn
/// draws nothing new. Also creates missing screening items of the date's quarter.
///
/// Who may call: Permission `risk_checks`: operators in the risk team.
#[utoipa::path(
    post,
    path = "/checks/run",
    operation_id = "run_checks",
    tag = "checks",
    security(("bearer" = [])),
    request_body = RunRequest,
    responses(
        (status = 200, description = "What was drawn (or had been)", body = RunSummary),
        (status = 400, description = "`invalid_date`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the risk team", body = ErrorBody),
    ),
)]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RunRequest>,
) -> ApiResult<Json<RunSummary>> {
    caller.require(Permission::RiskChecks)?;
    let date = body.date.unwrap_or_else(|| shanghai_date(now_ms()));
    if checks::parse_date(&date).is_none() {
        let message = "the date is a calendar date as YYYY-MM-DD";
        return Err(ApiError::bad_request("invalid_date", message));
    }
    Ok(Json(
        checks::run_daily(&state, &date, None, Some(&caller)).await?,
    ))
}

/// Filters of the check queues.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// `enterprise_risk`, `screening`, `worker_sample` or `order_sample`; every queue the
    /// caller works when left out.
    pub queue: Option<String>,
    /// Closed items too (default: open ones only).
    #[serde(default)]
    pub include_closed: bool,
}

/// The items of the check queues, oldest first.
///
/// Who may call: Permission `risk_checks` (risk team: `enterprise_risk`, `screening`) or
/// `call_backs` (reviewer and support teams: `worker_sample`, `order_sample`).
#[utoipa::path(
    get,
    path = "/checks/items",
    operation_id = "list_check_items",
    tag = "checks",
    security(("bearer" = [])),
    params(ItemQuery),
    responses(
        (status = 200, description = "The items", body = Vec<Item>),
        (status = 400, description = "`unknown_queue`; `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller works no such queue",
            body = ErrorBody),
    ),
)]
pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ItemQuery>,
) -> ApiResult<Json<Vec<Item>>> {
    let items = checks::list_items(
        &state,
        &caller,
        query.queue.as_deref(),
        query.include_closed,
    )
    .await?;
    Ok(Json(items))
}

/// Closes a check item with its finding. A sample of a worker or order also becomes a
/// verification record of its subject, shown with the order and never changed.
///
/// Who may call: Permission `risk_checks` for enterprise risk and screening items,
/// `call_backs` for samples of workers and orders.
#[utoipa::path(
    post,
    path = "/checks/items/{id}/close",
    operation_id = "close_check_item",
    tag = "checks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The item's id")),
    request_body = Closing,
    responses(
        (status = 200, description = "The item, closed", body = Item),
        (status = 400, description = "`invalid_outcome`, `notes_required`, `invalid_kind`, \
            `dimensions_required`, `unknown_attachment`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the team of this queue", body = ErrorBody),
        (status = 404, description = "`not_found`: no such item", body = ErrorBody),
        (status = 409, description = "`already_closed`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn close_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Closing>,
) -> ApiResult<Json<Item>> {
    Ok(Json(checks::close_item(&state, &caller, &id, &body).await?))
}

/// An attachment stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attached {
    /// The content address (SHA-256) to list in `attachments` when closing.
    pub hash: String,
}

/// Attaches a recording or photo to an open check item (sealed and copied like all media).
///
/// Who may call: the team of the item's queue (Permission `risk_checks` or `call_backs`).
#[utoipa::path(
    post,
    path = "/checks/items/{id}/attachments",
    operation_id = "attach_to_check_item",
    tag = "checks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The item's id")),
    request_body(description = "The file's bytes", content(
        ("application/octet-stream"), ("image/jpeg"), ("image/png"), ("audio/mpeg"),
        ("audio/amr"), ("audio/wav"), ("audio/ogg"), ("video/mp4"),
    )),
    responses(
        (status = 200, description = "Stored", body = Attached),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the team of this queue", body = ErrorBody),
        (status = 404, description = "`not_found`: no such item", body = ErrorBody),
        (status = 409, description = "`already_closed`", body = ErrorBody),
        (status = 413, description = "`body_too_large`: more than 8 MiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a photo, video or \
            recording", body = ErrorBody),
    ),
)]
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Attached>> {
    let hash = checks::upload_attachment(&state, &caller, &id, &body).await?;
    Ok(Json(Attached { hash }))
}

/// Which quarter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarterQuery {
    /// `YYYY-Qn`; the current quarter when left out.
    pub quarter: Option<String>,
}

/// The quarterly screening: which enterprises are done, outstanding, or overdue (the quarter
/// ended without their screening).
///
/// Who may call: Permission `risk_checks`: operators in the risk team.
#[utoipa::path(
    get,
    path = "/checks/screening",
    operation_id = "screening_status",
    tag = "checks",
    security(("bearer" = [])),
    params(QuarterQuery),
    responses(
        (status = 200, description = "The quarter's screening", body = ScreeningStatus),
        (status = 400, description = "`invalid_quarter`; `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the risk team", body = ErrorBody),
    ),
)]
pub async fn screening(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<QuarterQuery>,
) -> ApiResult<Json<ScreeningStatus>> {
    caller.require(Permission::RiskChecks)?;
    let today = shanghai_date(now_ms());
    let quarter = match query.quarter {
        Some(q) => q,
        None => checks::quarter_of(&today).ok_or_else(|| ApiError::internal("no quarter"))?,
    };
    Ok(Json(
        checks::screening_status(&state, &quarter, &today).await?,
    ))
}

/// What to export.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExportRequest {
    pub kind: ExportKind,
    /// `YYYY-MM-DD..YYYY-MM-DD` for `orders` and `invoices`, `YYYY-Qn` for `worker_income`.
    pub period: String,
}

/// Makes an export for the regulator and writes it to the outbox. A second export of the
/// same kind and period is a new version (a correction); the earlier one stays.
///
/// Who may call: Permission `make_regulator_exports`: operators in the regulator liaison
/// team.
#[utoipa::path(
    post,
    path = "/regulator/exports",
    operation_id = "make_regulator_export",
    tag = "regulator",
    security(("bearer" = [])),
    request_body = ExportRequest,
    responses(
        (status = 200, description = "The export, written", body = ExportRecord),
        (status = 400, description = "`invalid_period`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the regulator liaison team",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: unknown kind, or a field missing",
            body = ErrorBody),
    ),
)]
pub async fn make_export(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ExportRequest>,
) -> ApiResult<Json<ExportRecord>> {
    caller.require(Permission::MakeRegulatorExports)?;
    let record = regulator::export(&state, Some(&caller), body.kind, body.period.trim()).await?;
    Ok(Json(record))
}

/// Every export made for the regulator, newest first.
///
/// Who may call: Permission `read_regulator_exports`: operators in the regulator liaison
/// team, and regulators.
#[utoipa::path(
    get,
    path = "/regulator/exports",
    operation_id = "list_regulator_exports",
    tag = "regulator",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The exports", body = Vec<ExportRecord>),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither regulator nor liaison",
            body = ErrorBody),
    ),
)]
pub async fn list_exports(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ExportRecord>>> {
    caller.require(Permission::ReadRegulatorExports)?;
    Ok(Json(regulator::list(&state).await?))
}

/// One export with the content of its file (identities masked), checked against the SHA-256
/// recorded when it was made.
///
/// Who may call: Permission `read_regulator_exports`: operators in the regulator liaison
/// team, and regulators.
#[utoipa::path(
    get,
    path = "/regulator/exports/{id}",
    operation_id = "get_regulator_export",
    tag = "regulator",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The export", body = ExportWithContent),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither regulator nor liaison",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such export", body = ErrorBody),
        (status = 409, description = "`export_file_gone`, `export_file_changed`",
            body = ErrorBody),
    ),
)]
pub async fn get_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportWithContent>> {
    caller.require(Permission::ReadRegulatorExports)?;
    Ok(Json(regulator::get(&state, &id).await?))
}

/// Asks to close an account: the holder's own, or another's on an authority's order (reason
/// and the order's reference required). Refused while business is unfinished; otherwise
/// the account is closed within 3 working days, its records kept.
///
/// Who may call: the account's holder (worker or enterprise), or Permission
/// `order_deregistration`: operators in the administrator or support team.
#[utoipa::path(
    post,
    path = "/accounts/{id}/deregistration",
    operation_id = "request_deregistration",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = deregistration::Request,
    responses(
        (status = 200, description = "Under way", body = Deregistration),
        (status = 400, description = "`reason_required`, `reason_too_long`, \
            `authority_reference_required`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither the holder nor an administrator or \
            support operator", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = ErrorBody),
        (status = 409, description = "`deregistration_blocked` (the blocking orders and tasks \
            are listed), `deregistration_pending`, `already_deregistered`, \
            `not_deregistrable`", body = ErrorBody),
    ),
)]
pub async fn request_deregistration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<deregistration::Request>,
) -> ApiResult<Json<Deregistration>> {
    Ok(Json(
        deregistration::request(&state, &caller, &id, &body).await?,
    ))
}

/// Where the account's deregistration stands: summary, reminder, due time, closing.
///
/// Who may call: the account's holder, or Permission `order_deregistration`: operators in
/// the administrator or support team.
#[utoipa::path(
    get,
    path = "/accounts/{id}/deregistration",
    operation_id = "get_deregistration",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The latest deregistration", body = Deregistration),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither the holder nor an administrator or \
            support operator", body = ErrorBody),
        (status = 404, description = "`not_found`: no deregistration of this account",
            body = ErrorBody),
    ),
)]
pub async fn get_deregistration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Deregistration>> {
    if caller.account_id != id {
        caller.require(Permission::OrderDeregistration)?;
    }
    deregistration::latest(&state, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("deregistration"))
}
