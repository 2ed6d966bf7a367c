//! Device-signed requests: how a worker's registered phone proves that each API call is its
//! own, fresh and unaltered.
//!
//! At its first sign-in a phone makes a P-256 key pair, registers the public key with
//! `POST /api/v1/devices` (a [`DeviceRegistration`], sent with the password session's bearer
//! token) and gets a device id. Every later call carries four headers instead of a token:
//!
//! | header | value |
//! | --- | --- |
//! | [`HEADER_DEVICE`] | the device id the server answered |
//! | [`HEADER_TIMESTAMP`] | the phone's clock, Unix milliseconds, decimal |
//! | [`HEADER_NONCE`] | 32 to 64 lowercase hex digits, random, never reused |
//! | [`HEADER_SIGNATURE`] | ECDSA P-256 with SHA-256 over [`canonical_request`], base64 |
//!
//! The signature covers the method, path, query, content type, device id, timestamp, nonce
//! and the SHA-256 of the body, so nothing of a captured request can be changed, and the
//! server refuses a timestamp more than [`MAX_CLOCK_SKEW_MS`] from its clock and a nonce it
//! has seen, so it cannot be sent again either. This module only builds the text both sides
//! sign and check; keys and clocks belong to the callers.

use serde::{Deserialize, Serialize};

use crate::ContentHash;

/// The device id of a signed request.
pub const HEADER_DEVICE: &str = "x-flexwork-device";
/// When the phone signed the request: Unix milliseconds.
pub const HEADER_TIMESTAMP: &str = "x-flexwork-timestamp";
/// A random value used once per device.
pub const HEADER_NONCE: &str = "x-flexwork-nonce";
/// The signature, base64 (standard alphabet, padded) of the 64-byte `r‖s` form (or of the
/// DER form that hardware keystores produce).
pub const HEADER_SIGNATURE: &str = "x-flexwork-signature";
/// Sent by the server with a `device_clock_skew` refusal: its own clock, Unix milliseconds,
/// so a phone whose clock is wrong can sign again with the server's time.
pub const HEADER_SERVER_TIME: &str = "x-flexwork-server-time";

/// The first line of every signed text; a later scheme gets a new one.
pub const SCHEME: &str = "flexwork-device-v1";
/// The first line of a registration proof.
pub const REGISTRATION_SCHEME: &str = "flexwork-device-registration-v1";

/// How far a request's timestamp may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1_000;

/// Shortest and longest nonce, in hex digits (128 to 256 bits).
pub const NONCE_HEX_LEN: std::ops::RangeInclusive<usize> = 32..=64;

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// Upper case, like `PUT`.
    pub method: &'a str,
    /// The path exactly as sent, percent-encoding included, like `/api/v1/media/ab12`.
    pub path: &'a str,
    /// The query exactly as sent, without `?`; empty when there is none.
    pub query: &'a str,
    /// The `Content-Type` header as sent; empty when there is none.
    pub content_type: &'a str,
    pub device_id: &'a str,
    pub timestamp_ms: i64,
    pub nonce: &'a str,
    /// The body bytes (empty for a request without a body).
    pub body: &'a [u8],
}

/// The text a device signs: nine lines joined by `\n`, without a trailing newline:
///
/// ```text
/// flexwork-device-v1
/// PUT
/// /api/v1/media/9f86…
/// offset=0&size=120000
/// image/jpeg
/// 3f0c2d2e-…
/// 1718000000000
/// 5d41402abc4b2a76b9719d911017c592
/// <lowercase hex SHA-256 of the body>
/// ```
pub fn canonical_request(request: &RequestToSign<'_>) -> String {
    [
        SCHEME,
        request.method,
        request.path,
        request.query,
        request.content_type,
        request.device_id,
        &request.timestamp_ms.to_string(),
        request.nonce,
        &ContentHash::of(request.body).to_hex(),
    ]
    .join("\n")
}

/// The text a new key signs to prove it is held by the phone registering it:
/// `flexwork-device-registration-v1\n<account id>\n<public key as sent>`.
pub fn registration_message(account_id: &str, public_key: &str) -> String {
    [REGISTRATION_SCHEME, account_id, public_key].join("\n")
}

/// Whether `nonce` has the form the server accepts.
pub fn valid_nonce(nonce: &str) -> bool {
    NONCE_HEX_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `POST /api/v1/devices`: registers a phone's public key, with the bearer token of a
/// password sign-in made in the last few minutes. That token is revoked by the call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRegistration {
    /// The P-256 public key, SEC1 encoded (65-byte uncompressed or 33-byte compressed),
    /// base64.
    pub public_key: String,
    /// What the worker calls this phone, shown in their device list.
    pub name: String,
    /// The signature of [`registration_message`] by the new key, encoded like
    /// [`HEADER_SIGNATURE`].
    pub proof: String,
    /// A device of the same account this one replaces (the app's earlier registration);
    /// it is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRegistered {
    pub device_id: String,
    pub name: String,
    /// RFC 3339.
    pub registered_at: String,
    /// Whether the password session used to register was revoked (always, today).
    pub session_revoked: bool,
}

/// One of a worker's phones, as `GET /api/v1/devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    /// RFC 3339, like every time below.
    pub registered_at: String,
    /// The last signed request, to the minute.
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `revoked_by_owner`, `replaced`, `password_changed`, `account_suspended` or
    /// `sessions_revoked`.
    pub revoked_reason: Option<String>,
    /// Whether this is the device that signed the listing request.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_text_has_one_line_per_field_and_hashes_the_body() {
        let request = RequestToSign {
            method: "PUT",
            path: "/api/v1/media/abc",
            query: "offset=0&size=3",
            content_type: "image/jpeg",
            device_id: "dev-1",
            timestamp_ms: 1_718_000_000_000,
            nonce: "00112233445566778899aabbccddeeff",
            body: b"abc",
        };

        let text = canonical_request(&request);

        assert_eq!(
            text,
            "flexwork-device-v1\nPUT\n/api/v1/media/abc\noffset=0&size=3\nimage/jpeg\ndev-1\n\
             1718000000000\n00112233445566778899aabbccddeeff\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn nonces_are_32_to_64_lowercase_hex_digits() {
        assert!(valid_nonce(&"a".repeat(32)));
        assert!(valid_nonce(&"0".repeat(64)));
        assert!(!valid_nonce(&"a".repeat(31)));
        assert!(!valid_nonce(&"a".repeat(65)));
        assert!(!valid_nonce(&"A".repeat(32)));
        assert!(!valid_nonce(&"g".repeat(32)));
    }
}
