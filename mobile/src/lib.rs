//! What the worker apps link to: one Rust interface over [`flexwork_client_core`], exported
//! with [UniFFI](https://mozilla.github.io/uniffi-rs) to Kotlin (Android), Swift (iOS) and
//! Python (the tests), and used as it is by the `flexwork-device` command-line phone, so every
//! client goes one path.
//!
//! - [`Phone`] is the object an app holds: open the store, log in and bind the device, list
//!   orders, record photos, trajectory points, GPX files, signatures and notes with the
//!   phone's location fix and mock flag, submit, sync with progress, read upload states and
//!   findings per item and the operator's comment, and apply to work on the platform (terms,
//!   willingness signature, submission).
//! - Every failure is a [`MobileError`] with a stable `code` and a sentence; a panic inside
//!   Rust is caught at the boundary and becomes `MobileError::Internal` (`internal`).
//! - Long calls (network, hashing, uploads) are `async` and run on a background thread of
//!   their own, or `…_blocking` for callers already off the UI thread; sync reports progress
//!   through the [`SyncProgress`] callback.
//!
//! `scripts/bindings` writes the Kotlin and Swift sources (`mobile/bindings/`) from the built
//! library; the README's "Phone bindings" section shows how apps consume them.

mod bytes;
mod error;
mod phone;
pub mod photo;
mod types;

pub use bytes::Bytes;
pub use error::MobileError;
pub use phone::{Phone, SyncProgress};
pub use types::{
    Applicant, Application, ApplicationDraft, ApplicationState, EvidenceItem, FaceCapture, Finding,
    ItemFeedback, ItemKind, LocationFix, OnboardingTerms, Order, PhotoRecorded, RegisteredDevice,
    Review, Session, Settlement, Statement, Stroke, StrokePoint, SyncProblem, SyncStage, SyncStep,
    SyncSummary, TrackImported, TrackPoint, UploadState,
};

uniffi::setup_scaffolding!();

/// The applicant's fields as they may be shown: `王**`, `340524********001X`,
/// `622848*********0018`, `138****5678`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, uniffi::Record)]
pub struct MaskedApplicant {
    pub login: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
}

/// Masks the applicant's personal fields for a confirmation screen or a log.
#[uniffi::export]
pub fn masked_applicant(applicant: Applicant) -> MaskedApplicant {
    let m = applicant.to_core().masked();
    MaskedApplicant {
        login: m.login,
        name: m.name,
        id_number: m.id_number,
        bank_card: m.bank_card,
        phone: m.phone,
        trade: m.trade,
    }
}

/// The version of this interface's crate, for an app's "about" screen and bug reports.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
