//! Payouts: workers' payout cycles, the finance team's batch runs, payouts and their
//! settlements, and the payment provider's callbacks ([`crate::payouts`]).

use axum::Json;
use axum::extract::{Path, State};
use flexwork_sync::ErrorBody;
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::AppState;
use crate::auth::{Caller, ClientAddress, Permission};
use crate::error::{ApiError, ApiResult};
use crate::payouts::{self, CallbackAck, Cycle, PayoutView, RunReport, Trigger};

/// A payout cycle to choose.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CycleChoice {
    /// `day`, `week` or `month`.
    pub cycle: String,
}

/// The worker's payout cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CycleView {
    pub cycle: Cycle,
}

/// Chooses how often the calling worker is paid: `day` (the default), `week` or `month`.
///
/// A settlement is due the Asia/Shanghai day after its day, the Monday after its week or the
/// 1st of the month after its month; the cycle in force when the payout job runs decides.
///
/// Who may call: Permission `receive_pay`: workers, for themselves, from their phone.
#[utoipa::path(
    put,
    path = "/me/payout-cycle",
    operation_id = "set_payout_cycle",
    tag = "payouts",
    security(("bearer" = [])),
    request_body = CycleChoice,
    responses(
        (status = 200, description = "The cycle now in force", body = CycleView),
        (status = 400, description = "`invalid_payout_cycle`: not day, week or month; \
            `invalid_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid credential", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a worker", body = ErrorBody),
        (status = 422, description = "`invalid_json`: `cycle` is missing or not a string",
            body = ErrorBody),
    ),
)]
pub async fn set_cycle(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CycleChoice>,
) -> ApiResult<Json<CycleView>> {
    caller.require(Permission::ReceivePay)?;
    let cycle = match body.cycle.trim() {
        "day" => Cycle::Day,
        "week" => Cycle::Week,
        "month" => Cycle::Month,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_payout_cycle",
                "the payout cycle must be \"day\", \"week\" or \"month\"",
            ));
        }
    };
    let cycle = payouts::set_cycle(&state, &caller, cycle).await?;
    Ok(Json(CycleView { cycle }))
}

/// Runs the payout batch now: asks the provider about payouts of unknown outcome, turns due
/// settlements into payouts and sends them. Safe to call at any time, also while the
/// scheduled run or another server runs it: nothing is paid twice.
///
/// Who may call: Permission `manage_payouts`: operators in the finance team.
#[utoipa::path(
    post,
    path = "/payouts/run",
    operation_id = "run_payouts",
    tag = "payouts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the run did", body = RunReport),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not in the finance team", body = ErrorBody),
    ),
)]
pub async fn run(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<RunReport>> {
    caller.require(Permission::ManagePayouts)?;
    Ok(Json(
        payouts::run(&state, Trigger::Operator(&caller)).await?,
    ))
}

/// Payouts, newest first: every worker's for the finance team, one's own for a worker.
///
/// Who may call: Permission `manage_payouts` (operators in the finance team: every payout),
/// or Permission `receive_pay` (workers: their own).
#[utoipa::path(
    get,
    path = "/payouts",
    operation_id = "list_payouts",
    tag = "payouts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payouts", body = Vec<PayoutView>),
        (status = 401, description = "`unauthorized`: no valid credential", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither finance nor a worker",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<PayoutView>>> {
    if caller.can(Permission::ManagePayouts) {
        return Ok(Json(payouts::list(&state, None).await?));
    }
    caller.require(Permission::ReceivePay)?;
    Ok(Json(payouts::list(&state, Some(&caller.account_id)).await?))
}

/// One payout with the settlements it carried and, if the provider rejected it, why.
///
/// Who may call: Permission `manage_payouts` (operators in the finance team), or Permission
/// `receive_pay` (workers: their own payouts; another's answers 404).
#[utoipa::path(
    get,
    path = "/payouts/{id}",
    operation_id = "get_payout",
    tag = "payouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payout's id")),
    responses(
        (status = 200, description = "The payout and its settlements", body = PayoutView),
        (status = 401, description = "`unauthorized`: no valid credential", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither finance nor a worker",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such payout, or not the caller's",
            body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PayoutView>> {
    let finance = caller.can(Permission::ManagePayouts);
    if !finance {
        caller.require(Permission::ReceivePay)?;
    }
    let payout = payouts::get(&state, &id).await?;
    match payout {
        Some(p) if finance || p.worker_id == caller.account_id => Ok(Json(p)),
        _ => Err(ApiError::not_found("payout")),
    }
}

/// The payment provider's callback with a payout's result.
///
/// Signed with HMAC-SHA256 over `{timestamp}.{body}` under `[payments] callback_secret`, the
/// time and signature in the `x-payment-timestamp` and `x-payment-signature` headers; applied
/// once per callback id, a repeat acknowledged as a duplicate.
///
/// Who may call: the payment provider, proven by the signature; no token.
#[utoipa::path(
    post,
    path = "/payments/callbacks",
    operation_id = "payment_callback",
    tag = "payouts",
    request_body(content = crate::payments::PaymentCallback, content_type = "application/json",
        description = "The provider's callback as it signed it"),
    responses(
        (status = 200, description = "Applied, or acknowledged as a duplicate", body = CallbackAck),
        (status = 400, description = "`invalid_callback`; `callback_provider_mismatch`",
            body = ErrorBody),
        (status = 401, description = "`callback_signature_invalid`; `callback_signature_expired`",
            body = ErrorBody),
        (status = 404, description = "`unknown_payout`: no payout has this key", body = ErrorBody),
        (status = 409, description = "`payout_outcome_conflict`: the payout ended the other way",
            body = ErrorBody),
        (status = 503, description = "`callbacks_not_configured`", body = ErrorBody),
    ),
)]
pub async fn callback(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<CallbackAck>> {
    Ok(Json(
        payouts::receive(&state, &headers, &body, address).await?,
    ))
}
