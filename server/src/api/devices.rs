//! Workers' phones: registering a device key, listing and revoking devices.
//! See [`crate::auth::device`] for how signed requests are checked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use flexwork_sync::ErrorBody;
use flexwork_sync::device_auth::{DeviceInfo, DeviceRegistered, DeviceRegistration, HEADER_DEVICE};

use super::JsonBody;
use super::accounts::Done;
use crate::AppState;
use crate::auth::device;
use crate::auth::{self, Caller, ClientAddress};
use crate::error::{ApiError, ApiResult};

/// Registers a phone's public key.
///
/// `{public_key, name, proof, replaces?}` with the bearer token of a password sign-in made in
/// the last ten minutes; answers the device id and revokes that token: from then on the phone
/// signs its requests (see the README's "Phone credentials").
///
/// Who may call: a worker, with a fresh password session.
#[utoipa::path(
    post,
    path = "/devices",
    operation_id = "register_device",
    tag = "devices",
    security(("bearer" = [])),
    request_body = DeviceRegistration,
    responses(
        (status = 200, description = "Registered", body = DeviceRegistered),
        (status = 400, description = "`invalid_json`; `invalid_device_name`; `invalid_public_key`; \
            `invalid_proof`", body = ErrorBody),
        (status = 401, description = "`unauthorized`; `password_session_required`; \
            `sign_in_too_old`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a worker", body = ErrorBody),
        (status = 409, description = "`too_many_devices`; `public_key_taken`", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<DeviceRegistration>,
) -> ApiResult<Json<DeviceRegistered>> {
    let token = auth::bearer(&headers).filter(|_| !headers.contains_key(HEADER_DEVICE));
    let token = token.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "password_session_required",
            "register a phone with the bearer token of a password sign-in made just before",
        )
    })?;
    let registered = device::register(&state, &caller, token, address, &body).await?;
    Ok(Json(registered))
}

/// The caller's phones, newest first, revoked ones included; `current` marks the phone that
/// signed this request.
///
/// Who may call: any signed-in account (workers have phones).
#[utoipa::path(
    get,
    path = "/devices",
    operation_id = "list_devices",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The phones", body = Vec<DeviceInfo>),
        (status = 401, description = "`unauthorized`; a device refusal", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    // The Caller extractor verified the signature of a request naming a device.
    let current = headers.get(HEADER_DEVICE).and_then(|v| v.to_str().ok());
    Ok(Json(device::list(&state, &caller, current).await?))
}

/// Revokes one of the caller's phones; its next request is refused with `device_revoked`.
///
/// Who may call: the phone's owner.
#[utoipa::path(
    delete,
    path = "/devices/{id}",
    operation_id = "revoke_device",
    tag = "devices",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The device's id")),
    responses(
        (status = 200, description = "Revoked", body = Done),
        (status = 401, description = "`unauthorized`; a device refusal", body = ErrorBody),
        (status = 404, description = "`not_found`: no such phone of yours", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    device::revoke(&state, &caller, &id, address).await?;
    Ok(Json(Done { done: true }))
}
