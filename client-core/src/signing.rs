//! The phone's device key: a P-256 key pair made on the device at its first sign-in. The
//! public half is registered with the server; the private half never leaves the device and
//! never appears in `Debug` output or logs. Every API call is signed with it
//! ([`flexwork_sync::device_auth`] defines what is signed).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flexwork_sync::device_auth::{
    self, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestToSign,
};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;

use crate::ClientError;

/// A device's private signing key.
#[derive(Clone)]
pub struct DeviceKey {
    key: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public_key", &self.public_key())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The headers that authenticate one request, in the order they are sent.
pub type SignedHeaders = Vec<(&'static str, String)>;

impl DeviceKey {
    /// Makes a new key from the operating system's random numbers.
    pub fn generate() -> Self {
        loop {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            // A random 256-bit number is a valid P-256 scalar except with negligible chance.
            let key = SigningKey::from_slice(&secret);
            secret.fill(0);
            std::hint::black_box(&secret);
            if let Ok(key) = key {
                return Self { key };
            }
        }
    }

    /// The key kept in the device store.
    pub(crate) fn from_secret(secret: &[u8]) -> Result<Self, ClientError> {
        let key = SigningKey::from_slice(secret)
            .map_err(|_| ClientError::Corrupt("the stored device key is not a P-256 key".into()))?;
        Ok(Self { key })
    }

    /// The 32 secret bytes, for the device store only.
    pub(crate) fn secret(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    /// The public key as the server registers it: SEC1 uncompressed, base64.
    pub fn public_key(&self) -> String {
        let point = self.key.verifying_key().to_sec1_point(false);
        BASE64.encode(point.as_bytes())
    }

    /// The proof that this key belongs to the phone registering it for `account_id`.
    pub fn registration_proof(&self, account_id: &str) -> String {
        let message = device_auth::registration_message(account_id, &self.public_key());
        self.sign_text(&message)
    }

    /// The signature of `request`, base64 of the 64-byte `r‖s` form.
    pub fn sign(&self, request: &RequestToSign<'_>) -> String {
        self.sign_text(&device_auth::canonical_request(request))
    }

    /// The four headers of a signed request, for `request` (whose device id, timestamp and
    /// nonce they carry).
    pub fn headers(&self, request: &RequestToSign<'_>) -> SignedHeaders {
        vec![
            (HEADER_DEVICE, request.device_id.to_owned()),
            (HEADER_TIMESTAMP, request.timestamp_ms.to_string()),
            (HEADER_NONCE, request.nonce.to_owned()),
            (HEADER_SIGNATURE, self.sign(request)),
        ]
    }

    fn sign_text(&self, text: &str) -> String {
        let signature: Signature = self.key.sign(text.as_bytes());
        BASE64.encode(signature.to_bytes())
    }
}

/// A new random nonce: 128 bits, 32 lowercase hex digits.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_is_not_in_debug_output() {
        let key = DeviceKey::generate();
        let secret = key.secret();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let shown = format!("{key:?}");

        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&hex));
        assert!(!shown.contains(&BASE64.encode(&secret)));
    }

    #[test]
    fn a_stored_key_signs_like_the_original() {
        let key = DeviceKey::generate();
        let again = DeviceKey::from_secret(&key.secret()).unwrap();

        assert_eq!(key.public_key(), again.public_key());
        assert_eq!(key.registration_proof("a1"), again.registration_proof("a1"));
        assert!(flexwork_sync::device_auth::valid_nonce(&new_nonce()));
        assert_ne!(new_nonce(), new_nonce());
    }
}
