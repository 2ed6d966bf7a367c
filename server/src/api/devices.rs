//! Workers' phones: registering a device key, listing and revoking devices.
//! See [`crate::auth::device`] for how signed requests are checked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use flexwork_sync::device_auth::{DeviceInfo, DeviceRegistered, DeviceRegistration, HEADER_DEVICE};

use super::JsonBody;
use super::accounts::Done;
use crate::AppState;
use crate::auth::device;
use crate::auth::{self, Caller, ClientAddress};
use crate::error::{ApiError, ApiResult};

/// `POST /devices`: registers the phone's public key `{public_key, name, proof, replaces?}`
/// with the bearer token of a fresh password sign-in, answers its device id and revokes that
/// token: from then on the phone signs its requests.
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

/// `GET /devices`: the caller's phones, newest first, revoked ones included; `current` marks
/// the phone that signed this request.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    // The Caller extractor verified the signature of a request naming a device.
    let current = headers.get(HEADER_DEVICE).and_then(|v| v.to_str().ok());
    Ok(Json(device::list(&state, &caller, current).await?))
}

/// `DELETE /devices/{id}`: the caller revokes one of their phones; its next request is
/// refused with `device_revoked`.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    device::revoke(&state, &caller, &id, address).await?;
    Ok(Json(Done { done: true }))
}
