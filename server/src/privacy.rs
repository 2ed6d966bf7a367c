//! Personal data: what is collected and why (the data catalogue), the privacy notice made
//! from it, consent to each notice version, and personal fields sealed at rest.
//!
//! The notice is generated from [`CATALOGUE`], so it lists every field the platform collects
//! and why; its version is a hash of its text, so any change to the catalogue makes a new
//! version and people are asked again. Consent is never assumed: a registration without an
//! explicit `accepted: true` for the current version is refused.
//!
//! Personal fields (names, ID numbers, bank cards, phones) are stored only sealed by the key
//! manager's current master key, each bound to its table, column and row, plus a keyed hash
//! (HMAC under the index key) where the platform must find equal values — such as a second
//! application with the same ID number — without being able to read them.

use flexwork_storage::{Kms, WrappedKey};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// How sensitive a field is (PIPL's classes, and the platform's grade 1–4, 4 the highest).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Personal information.
    Personal,
    /// Sensitive personal information (identity numbers, financial accounts, biometrics).
    SensitivePersonal,
    /// An enterprise's business information.
    Business,
}

/// One field the platform collects.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Field {
    pub name: &'static str,
    pub class: Class,
    pub grade: u8,
    pub purpose: &'static str,
    pub retention: &'static str,
}

/// Every personal or business field the platform collects, with its class, grade and purpose.
pub const CATALOGUE: &[Field] = &[
    Field {
        name: "name",
        class: Class::Personal,
        grade: 3,
        purpose: "real-name verification, contracts, tax withholding and payslips",
        retention: "2 years after the worker leaves the platform",
    },
    Field {
        name: "id_number",
        class: Class::SensitivePersonal,
        grade: 4,
        purpose: "real-name verification, the age rule, tax withholding and reporting",
        retention: "2 years after the worker leaves the platform",
    },
    Field {
        name: "bank_card",
        class: Class::SensitivePersonal,
        grade: 4,
        purpose: "paying the worker's fees",
        retention: "2 years after the last payment",
    },
    Field {
        name: "phone",
        class: Class::Personal,
        grade: 3,
        purpose: "sign-in, verification with the bank card, and reaching the worker",
        retention: "2 years after the worker leaves the platform",
    },
    Field {
        name: "trade",
        class: Class::Personal,
        grade: 2,
        purpose: "matching the worker with tasks",
        retention: "while the account exists",
    },
    Field {
        name: "declarations_and_signature",
        class: Class::Personal,
        grade: 3,
        purpose: "proof of the worker's free will and of the declarations the standard asks for",
        retention: "2 years after the worker leaves the platform",
    },
    Field {
        name: "face_image",
        class: Class::SensitivePersonal,
        grade: 4,
        purpose: "face comparison with liveness against the ID photo by the real-name \
                  verification provider (standard 5.1.4)",
        retention: "2 years after the worker leaves the platform",
    },
    Field {
        name: "photos_tracks_signatures_of_work",
        class: Class::SensitivePersonal,
        grade: 4,
        purpose: "proof that the work was done, for its acceptance and payment",
        retention: "as long as the order's retention rules require",
    },
];

/// The privacy notice: its version and the fields it lists.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub version: String,
    pub text: String,
    pub fields: &'static [Field],
}

/// The current notice, generated from the catalogue.
pub fn notice() -> Notice {
    let mut text = String::from(
        "flexwork collects the following information about you, for the purposes given, and \
         keeps it no longer than stated. Sensitive fields are encrypted at rest and shown to \
         staff only masked unless they record a reason.\n",
    );
    for field in CATALOGUE {
        text.push_str(&format!(
            "- {} ({:?}, grade {}): {}; kept {}.\n",
            field.name, field.class, field.grade, field.purpose, field.retention
        ));
    }
    let version = flexwork_sync::ContentHash::of(text.as_bytes()).to_hex()[..12].to_owned();
    Notice {
        version,
        text,
        fields: CATALOGUE,
    }
}

/// Consent as a registration carries it: the version of the notice read, accepted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub notice_version: String,
    #[serde(default)]
    pub accepted: bool,
}

/// Refuses a registration unless it explicitly accepts the current notice.
pub fn require_consent(consent: Option<&Consent>) -> ApiResult<String> {
    let current = notice().version;
    let Some(consent) = consent.filter(|c| c.accepted) else {
        let message = "read the privacy notice (GET /api/v1/privacy/notice) and accept it \
                       explicitly: consent is never assumed";
        return Err(ApiError::bad_request("consent_required", message));
    };
    if consent.notice_version != current {
        let message = format!(
            "the privacy notice has changed (now version {current}); read it and accept it again"
        );
        return Err(ApiError::conflict("notice_changed", message));
    }
    Ok(current)
}

/// Records that `subject` accepted notice `version` at `at`, in the caller's transaction.
pub async fn record_consent(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subject: &str,
    version: &str,
    at: i64,
    address: Option<&str>,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO consents (id, subject, notice_version, given_at, address) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crate::new_id())
    .bind(subject)
    .bind(version)
    .bind(at)
    .bind(address)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn context(table: &str, column: &str, row: &str) -> Vec<u8> {
    format!("flexwork-field-v1\0{table}\0{column}\0{row}").into_bytes()
}

/// Seals a personal field for storage.
pub async fn seal(
    state: &AppState,
    table: &str,
    column: &str,
    row: &str,
    value: &str,
) -> ApiResult<String> {
    let wrapped = state
        .sites
        .keys
        .wrap(value.as_bytes(), &context(table, column, row))
        .await
        .map_err(ApiError::internal)?;
    serde_json::to_string(&wrapped).map_err(ApiError::internal)
}

/// Opens a field sealed by [`seal`].
pub async fn open(
    state: &AppState,
    table: &str,
    column: &str,
    row: &str,
    sealed: &str,
) -> ApiResult<String> {
    let wrapped: WrappedKey = serde_json::from_str(sealed).map_err(ApiError::internal)?;
    let plain = state
        .sites
        .keys
        .unwrap(&wrapped, &context(table, column, row))
        .await
        .map_err(ApiError::internal)?;
    String::from_utf8(plain.to_vec()).map_err(ApiError::internal)
}

/// A keyed hash of a field's value, for finding equal values without reading them.
pub fn lookup_hash(state: &AppState, column: &str, value: &str) -> String {
    let (suite, key) = state.sites.keys.index_key();
    hex::encode(suite.mac(
        &key,
        &[b"flexwork-field-v1", column.as_bytes(), value.as_bytes()],
    ))
}
