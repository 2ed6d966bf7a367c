//! Invoices to enterprises for paid work, and their red-letter reversals.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use flexwork_sync::ErrorBody;
use serde::Deserialize;

use super::{JsonBody, QueryParams};
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::invoices::{self, Invoice};

/// `POST /invoices` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewInvoice {
    /// The enterprise (organisation) billed.
    pub enterprise_id: String,
    /// Bill only these settlements; all of the enterprise's paid settlements with an amount
    /// left to bill when absent.
    #[serde(default)]
    pub settlement_ids: Option<Vec<String>>,
    /// Makes the request safe to retry: the same key answers the same invoice.
    #[serde(default)]
    pub request_key: Option<String>,
}

/// Bills an enterprise for its paid settlements and has the e-invoice issued.
///
/// Each line bills one settlement that was paid, up to its gross amount; the database
/// refuses any invoice that would bill more than was paid. The answer shows the invoice
/// `issued` with its 20-digit number, `failed` with the service's reason (its settlements
/// can be billed again), or `unknown` when the invoicing service did not answer in time (it
/// is asked again by the same request key every minute, so the invoice is never issued
/// twice). Invoices are issued by the sandbox invoicing service: none of them is real.
///
/// Who may call: Permission `issue_invoices`: the finance team.
#[utoipa::path(
    post,
    path = "/invoices",
    operation_id = "create_invoice",
    tag = "invoices",
    security(("bearer" = [])),
    request_body = NewInvoice,
    responses(
        (status = 200, description = "The invoice", body = Invoice),
        (status = 400, description = "`invalid_request_key`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the finance team", body = ErrorBody),
        (status = 404, description = "`not_found`: no such enterprise", body = ErrorBody),
        (status = 409, description = "`nothing_to_invoice`, `not_invoiceable`, `exceeds_paid`, \
            `idempotency_key_reused`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewInvoice>,
) -> ApiResult<Json<Invoice>> {
    caller.require(Permission::IssueInvoices)?;
    if let Some(key) = &body.request_key
        && (key.is_empty() || key.len() > 100 || !key.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            "invalid_request_key",
            "a request key is 1 to 100 visible ASCII characters",
        ));
    }
    let invoice = invoices::bill(
        &state,
        &caller,
        &body.enterprise_id,
        body.settlement_ids.as_deref(),
        body.request_key.as_deref(),
    )
    .await?;
    Ok(Json(invoice))
}

/// `GET /invoices` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvoiceQuery {
    /// Only this enterprise's invoices (operators and regulators).
    pub enterprise_id: Option<String>,
    /// The same as `enterprise_id` (the earlier name).
    pub enterprise: Option<String>,
    /// Only invoices billing this order (one of their lines bills its settlement).
    pub order_id: Option<String>,
    /// Only invoices requested at or after this RFC 3339 date-time, or on or after this date
    /// (`2026-12-01`, a day in China Standard Time).
    pub from: Option<String>,
    /// Only invoices requested at or before this RFC 3339 date-time, or on or before this
    /// date.
    pub to: Option<String>,
    /// At most this many invoices (1 to 500; 100 when absent).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Where to go on: the `X-Next-Cursor` header of the previous page (same filters).
    /// Absent: the first page.
    pub cursor: Option<String>,
}

/// Lists invoices: an enterprise its own, operator teams that read work and regulators all
/// (or one enterprise's).
///
/// Who may call: Permission `read_all_work` (the reviewer, risk, finance, legal, welfare,
/// support and regulator liaison teams, and regulators) for every enterprise; enterprise
/// administrators and staff for their own organisation.
#[utoipa::path(
    get,
    path = "/invoices",
    operation_id = "list_invoices",
    tag = "invoices",
    security(("bearer" = [])),
    params(InvoiceQuery),
    responses(
        (status = 200, description = "A page of invoices, oldest first", body = Vec<Invoice>,
            headers(("X-Next-Cursor" = String,
                description = "The `cursor` of the next page; absent on the last page"))),
        (status = 400, description = "`invalid_query`: a filter, `limit` or `cursor` is not \
            understood (`field` names it)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: workers, and operators who read no work",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InvoiceQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Invoice>>)> {
    let period = super::filters::period(query.from.as_deref(), query.to.as_deref())?;
    let limit = super::filters::page_limit(query.limit.as_deref())?;
    let after = match query.cursor.as_deref() {
        Some(cursor) => super::filters::decode_cursor(cursor)?,
        None => (i64::MIN, String::new()),
    };
    let filter = invoices::ListFilter {
        enterprise: query
            .enterprise_id
            .as_deref()
            .or(query.enterprise.as_deref()),
        order: query.order_id.as_deref(),
        period,
    };
    let (page, more) = invoices::list(&state, &caller, &filter, after, limit).await?;
    let mut headers = HeaderMap::new();
    if more && let Some(last) = page.last() {
        let cursor = super::filters::encode_cursor(last.created_at_ms, &last.id);
        if let Ok(value) = HeaderValue::from_str(&cursor) {
            headers.insert("x-next-cursor", value);
        }
    }
    Ok((headers, Json(page)))
}

/// One invoice with its lines (each names the settlement and order billed), its number
/// and the dates until which its paper copy (10 years) and stub (5 years) must be kept.
///
/// Who may call: as for `GET /invoices`; another organisation's invoice is 404.
#[utoipa::path(
    get,
    path = "/invoices/{id}",
    operation_id = "get_invoice",
    tag = "invoices",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The invoice's id")),
    responses(
        (status = 200, description = "The invoice", body = Invoice),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: workers, and operators who read no work",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such invoice, or not the caller's",
            body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Invoice>> {
    Ok(Json(invoices::visible(&state, &caller, &id).await?))
}

/// `POST /invoices/{id}/reverse` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Reversal {
    /// Why the invoice is wrong (at least 10 characters); kept on the red-letter invoice and
    /// in the audit trail.
    pub reason: String,
}

/// Reverses an issued invoice in full with a red-letter invoice.
///
/// Invoices are never voided or deleted: a wrong one is reversed, and once the red-letter
/// invoice is issued its settlements can be billed again with a correct invoice. Reversing
/// again answers the same red-letter invoice.
///
/// Who may call: Permission `issue_invoices`: the finance team.
#[utoipa::path(
    post,
    path = "/invoices/{id}/reverse",
    operation_id = "reverse_invoice",
    tag = "invoices",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The invoice to reverse")),
    request_body = Reversal,
    responses(
        (status = 200, description = "The red-letter invoice", body = Invoice),
        (status = 400, description = "`reason_required`, `reason_too_long`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the finance team", body = ErrorBody),
        (status = 404, description = "`not_found`: no such invoice", body = ErrorBody),
        (status = 409, description = "`not_issued`, `not_reversible`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn reverse(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reversal>,
) -> ApiResult<Json<Invoice>> {
    caller.require(Permission::IssueInvoices)?;
    Ok(Json(
        invoices::reverse(&state, &caller, &id, &body.reason).await?,
    ))
}
