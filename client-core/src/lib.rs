//! The worker's phone: records proof of work offline and syncs it with the server.
//!
//! A field worker's phone is often offline. Everything here works without a network except
//! [`Device::sync`], [`Device::login`] and the device calls; the app calls the recording
//! methods whenever the worker takes a photo, walks, signs or writes a note, and syncs when
//! it has a connection.
//!
//! # Data flow
//!
//! 1. **Record.** [`Device::record_photo`], [`Device::append_track_points`],
//!    [`Device::import_gpx`], [`Device::add_signature`], [`Device::add_note`] and
//!    [`Device::submit`] each run one SQLite transaction (`device.sqlite`, WAL,
//!    `synchronous=FULL`). It takes the order's Automerge evidence document
//!    ([`flexwork_sync::EvidenceDoc`]) from the device's in-memory cache (loading it from
//!    the store on a miss), appends the record, stores only the new change as a chunk, and
//!    adds an [`EvidenceItem`] row; the document goes back into the cache only after the
//!    commit, so the cache never holds what the store does not. The cache keeps up to
//!    [`DEFAULT_DOC_CACHE_DOCS`] documents, least recently used dropped first, and empties
//!    itself when another connection wrote the store. Every 256 chunks the cached document
//!    is written as the order's new snapshot. Photo bytes go to the content-addressed
//!    `blobs/` folder first (temp file, fsync, rename); the document names them by SHA-256.
//!    When a call returns, its item survives the process being killed.
//! 2. **Sync documents.** [`Device::sync`] sends one Automerge sync message per document to
//!    the server through a [`Transport`] ([`HttpTransport`] in the app), applies the
//!    server's messages and repeats until both sides are quiet. It works on the cached
//!    documents (taken out of the cache for the duration), folds every document into a
//!    snapshot at the end, and returns the cached ones only if it finished without error.
//!    The first answer of a sync also carries the worker's orders (new tasks get an empty
//!    document at once); every answer names the media the server still lacks.
//! 3. **Upload media.** Each photo the server lacks is sent in chunks (256 KiB by default)
//!    from the offset the server holds, so an interrupted upload resumes where it stopped.
//!    Items move `queued → uploading → synced`, or `failed` with the server's reason.
//! 4. **Findings come back.** The server writes its review (verdict and findings, each
//!    naming an item id) into the same document; after a sync, [`Device::evidence`] and
//!    [`Device::item_findings`] show the worker why something was flagged.
//!
//! 5. **Apply.** Before any of this, a person applies to work on the platform:
//!    [`Device::fetch_onboarding_terms`], [`Device::sign_application`] (offline) and
//!    [`Device::submit_applications`]; see the `onboarding` module for what the device keeps.
//!
//! # Signing in
//!
//! [`Device::login`] signs in with the worker's password once, makes a P-256 device key,
//! registers its public half with the server (the password session is then revoked) and
//! keeps the key in the store. Every call of [`HttpTransport`] is signed with it (method,
//! path, query, content type, time, nonce and body hash; see
//! [`flexwork_sync::device_auth`]); no bearer token is kept.
//!
//! Time that is evidence (capture, signing, note time) is passed in by the caller; record
//! ids are random UUIDs; the device id is a UUID created on first open, and the Automerge
//! actor of this device is derived from it.

mod blobs;
mod cache;
mod db;
mod device;
mod docs;
mod error;
mod items;
mod onboarding;
mod orders;
mod record;
mod session;
mod signing;
mod sync;
mod track;
mod transport;
mod validate;

pub use cache::DEFAULT_DOC_CACHE_DOCS;
pub use device::{DEFAULT_CHUNK_SIZE, Device};
pub use error::ClientError;
pub use items::{EvidenceItem, ItemFailure, ItemKind, ItemState};
pub use onboarding::{
    Applicant, ApplicantDeclarations, Application, ApplicationDraft, ApplicationState, FaceCapture,
    MAX_FACE_IMAGE_BYTES, MaskedApplicant, OnboardingTerms,
};
pub use orders::Order;
pub use record::TrackImport;
pub use session::SessionInfo;
pub use signing::{DeviceKey, SignedHeaders, new_nonce};
pub use sync::{MAX_ROUNDS, SyncFailure, SyncReport, SyncStage, SyncStep};
pub use transport::{HttpTransport, Transport, TransportError};
pub use validate::{MAX_PHOTO_BYTES, MAX_SIGNATURE_POINTS, MAX_TRACK_POINTS};

pub use flexwork_sync::device_auth::DeviceInfo;
pub use flexwork_sync::{
    Evidence, FindingRecord, Fix, NoteRecord, OrderSummary, PhotoRecord, ReviewRecord,
    SignatureRecord, StrokePoint, TrackPoint,
};
