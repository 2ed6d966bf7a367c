//! The values that cross the interface: records and enums the apps see as Kotlin data classes,
//! Swift structs and Python dataclasses. Times are milliseconds since the Unix epoch (UTC),
//! money is integer fen, positions are WGS-84 degrees.
//!
//! Each mirrors a client-core type and converts from it; they serialize as JSON too (the
//! command-line phone prints them).

#![allow(unsafe_code)] // UniFFI's derives implement its (unsafe) FFI converter traits.

use flexwork_client_core as core;

use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Who the device is signed in as, where, and the id the server gave this phone's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct Session {
    pub server_url: String,
    pub account_id: String,
    pub role: String,
    pub registered_device_id: String,
}

impl From<core::SessionInfo> for Session {
    fn from(s: core::SessionInfo) -> Self {
        Self {
            server_url: s.server_url,
            account_id: s.account_id,
            role: s.role,
            registered_device_id: s.registered_device_id,
        }
    }
}

/// One of the account's registered phones, as the server lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct RegisteredDevice {
    pub device_id: String,
    pub name: String,
    /// RFC 3339.
    pub registered_at: String,
    pub last_seen_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    /// This is the phone asking.
    pub current: bool,
}

impl From<core::DeviceInfo> for RegisteredDevice {
    fn from(d: core::DeviceInfo) -> Self {
        Self {
            device_id: d.device_id,
            name: d.name,
            registered_at: d.registered_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
            revoked_reason: d.revoked_reason,
            current: d.current,
        }
    }
}

/// An order (a task given to this worker) as the device holds it.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct Order {
    pub order_id: String,
    pub task_id: String,
    pub title: String,
    pub description: String,
    /// The site: a circle of `site_radius_m` metres around this point.
    pub site_lat: f64,
    pub site_lon: f64,
    pub site_radius_m: f64,
    /// The work window, inclusive.
    pub window_from_ms: i64,
    pub window_to_ms: i64,
    pub fee_fen: i64,
    pub min_photos: u32,
    pub requires_track: bool,
    pub requires_signature: bool,
    /// `assigned`, `submitted`, `verified`, `confirmed`, `disputed`, `settled`.
    pub status: String,
    /// `passed`, `needs_review` or `rejected`, once verified.
    pub verdict: Option<String>,
    /// Evidence was recorded since the server last acknowledged the order's document.
    pub unsynced: bool,
    /// The server refused the document's last sync message: its code and sentence.
    pub rejection_code: Option<String>,
    pub rejection_reason: Option<String>,
}

impl From<core::Order> for Order {
    fn from(o: core::Order) -> Self {
        let s = o.summary;
        let (rejection_code, rejection_reason) = o.rejection.unzip();
        Self {
            order_id: s.order_id,
            task_id: s.task_id,
            title: s.title,
            description: s.description,
            site_lat: s.site.lat,
            site_lon: s.site.lon,
            site_radius_m: s.site.radius_m,
            window_from_ms: s.window.from_ms,
            window_to_ms: s.window.to_ms,
            fee_fen: s.fee_fen,
            min_photos: s.requirements.min_photos,
            requires_track: s.requirements.track,
            requires_signature: s.requirements.signature,
            status: s.status,
            verdict: s.verdict,
            unsynced: o.unsynced,
            rejection_code,
            rejection_reason,
        }
    }
}

/// The phone's location fix when something was captured, and whether the OS reported it as
/// coming from a mock location provider (Android `Location.isMock`, iOS
/// `CLLocationSourceInformation.isSimulatedBySoftware`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct LocationFix {
    pub lat: f64,
    pub lon: f64,
    /// Radius of the fix's uncertainty, metres.
    pub accuracy_m: f64,
    /// When the fix was taken.
    pub at_ms: i64,
    pub mock: bool,
}

impl From<LocationFix> for core::Fix {
    fn from(f: LocationFix) -> Self {
        Self {
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            at_ms: f.at_ms,
            mock: f.mock,
        }
    }
}

impl From<core::Fix> for LocationFix {
    fn from(f: core::Fix) -> Self {
        Self {
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            at_ms: f.at_ms,
            mock: f.mock,
        }
    }
}

/// A photo as recorded: its item id, the SHA-256 of its bytes and what was stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct PhotoRecorded {
    pub item_id: String,
    /// SHA-256 (hex) of the bytes.
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub captured_at_ms: i64,
    pub fix: Option<LocationFix>,
}

impl From<core::PhotoRecord> for PhotoRecorded {
    fn from(p: core::PhotoRecord) -> Self {
        Self {
            item_id: p.id,
            sha256: p.hash.to_hex(),
            size: p.size,
            media_type: p.media_type,
            captured_at_ms: p.captured_at_ms,
            fix: p.fix.map(Into::into),
        }
    }
}

/// One trajectory point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct TrackPoint {
    pub lat: f64,
    pub lon: f64,
    pub at_ms: Option<i64>,
    pub accuracy_m: Option<f64>,
    pub elevation_m: Option<f64>,
}

impl From<TrackPoint> for core::TrackPoint {
    fn from(p: TrackPoint) -> Self {
        Self {
            lat: p.lat,
            lon: p.lon,
            at_ms: p.at_ms,
            accuracy_m: p.accuracy_m,
            elevation_m: p.elevation_m,
        }
    }
}

/// What importing a GPX file recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct TrackImported {
    pub item_id: String,
    pub points: u64,
    /// Points that carried a time.
    pub timed_points: u64,
}

impl From<core::TrackImport> for TrackImported {
    fn from(t: core::TrackImport) -> Self {
        Self {
            item_id: t.item_id,
            points: t.points as u64,
            timed_points: t.timed_points as u64,
        }
    }
}

/// One point of a signature stroke, in screen pixels, with the time since the first touch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct StrokePoint {
    pub x: f64,
    pub y: f64,
    pub t_ms: i64,
    /// 0 to 1; 0.5 where the screen reports none.
    pub pressure: f64,
}

/// One stroke: the points from touch down to touch up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Stroke {
    pub points: Vec<StrokePoint>,
}

pub(crate) fn core_strokes(strokes: Vec<Stroke>) -> Vec<Vec<core::StrokePoint>> {
    strokes
        .into_iter()
        .map(|s| {
            s.points
                .into_iter()
                .map(|p| core::StrokePoint {
                    x: p.x,
                    y: p.y,
                    t_ms: p.t_ms,
                    pressure: p.pressure,
                })
                .collect()
        })
        .collect()
}

/// What kind of evidence an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Photo,
    Track,
    Signature,
    Note,
    Submission,
}

/// Where an item stands on its way to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Recorded, not on the server yet.
    Queued,
    /// A photo whose bytes are going up (`uploaded_bytes` of `size`).
    Uploading,
    /// The server holds it.
    Synced,
    /// The server refused it for good (`failure_code`, `failure_reason`).
    Failed,
}

/// One recorded item with its upload state.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct EvidenceItem {
    /// Findings name items by this id.
    pub item_id: String,
    pub order_id: String,
    pub kind: ItemKind,
    pub state: UploadState,
    /// SHA-256 (hex) of a photo's bytes.
    pub sha256: Option<String>,
    /// Size of a photo in bytes, and how many the server acknowledged.
    pub size: Option<u64>,
    pub uploaded_bytes: u64,
    pub media_type: Option<String>,
    /// Points of a track item.
    pub points: Option<u64>,
    /// The last reason the server gave for failing or holding back the item.
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    /// When the device stored it (device clock).
    pub recorded_at_ms: i64,
}

impl From<core::EvidenceItem> for EvidenceItem {
    fn from(i: core::EvidenceItem) -> Self {
        let kind = match i.kind {
            core::ItemKind::Photo => ItemKind::Photo,
            core::ItemKind::Track => ItemKind::Track,
            core::ItemKind::Signature => ItemKind::Signature,
            core::ItemKind::Note => ItemKind::Note,
            core::ItemKind::Submission => ItemKind::Submission,
        };
        let state = match i.state {
            core::ItemState::Queued => UploadState::Queued,
            core::ItemState::Uploading => UploadState::Uploading,
            core::ItemState::Synced => UploadState::Synced,
            core::ItemState::Failed => UploadState::Failed,
        };
        let (failure_code, failure_reason) = i.failure.map(|f| (f.code, f.message)).unzip();
        Self {
            item_id: i.id,
            order_id: i.order_id,
            kind,
            state,
            sha256: i.hash.map(|h| h.to_hex()),
            size: i.size,
            uploaded_bytes: i.uploaded_bytes,
            media_type: i.media_type,
            points: i.points,
            failure_code,
            failure_reason,
            recorded_at_ms: i.recorded_at_ms,
        }
    }
}

/// One finding of the server's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct Finding {
    /// Stable code, like `photo_outside_site`.
    pub code: String,
    /// `info`, `review` or `reject`.
    pub severity: String,
    pub message: String,
    /// The item it is about, if one.
    pub item_id: Option<String>,
}

impl From<core::FindingRecord> for Finding {
    fn from(f: core::FindingRecord) -> Self {
        Self {
            code: f.code,
            severity: f.severity,
            message: f.message,
            item_id: f.item,
        }
    }
}

/// The server's review of an order's evidence, as written into its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct Review {
    /// `passed`, `needs_review` or `rejected`.
    pub verdict: String,
    /// Verification's findings, then the operator's comment on each item they sent back
    /// (code `operator_has_issues`, naming the item).
    pub findings: Vec<Finding>,
    /// The operator's comment (the reason of their decision), if one decided.
    pub comment: Option<String>,
    pub reviewed_at_ms: i64,
}

impl From<core::ReviewRecord> for Review {
    fn from(r: core::ReviewRecord) -> Self {
        Self {
            verdict: r.verdict,
            findings: r.findings.into_iter().map(Into::into).collect(),
            comment: r.comment,
            reviewed_at_ms: r.reviewed_at_ms,
        }
    }
}

/// Finding code under which an operator's comment on one item reaches the phone, when they
/// sent the evidence back to the worker (`has_issues`).
pub(crate) const OPERATOR_COMMENT_CODE: &str = "operator_has_issues";

/// What the review says about one item: its upload state, verification's findings naming it,
/// and what the operator asked to redo about it.
#[derive(Debug, Clone, PartialEq, Serialize, uniffi::Record)]
pub struct ItemFeedback {
    pub item: EvidenceItem,
    /// Verification's findings about the item.
    pub findings: Vec<Finding>,
    /// The operator's comments on the item, when they sent the evidence back to the worker
    /// (empty otherwise).
    pub operator_comments: Vec<String>,
}

/// Which part of a sync a progress call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum SyncStage {
    /// Documents: `done` requests answered of `total` planned so far.
    Documents,
    /// One photo's bytes: `done` bytes on the server of `total`; `item_id` names the photo.
    Media,
}

/// One step of a sync, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct SyncStep {
    pub stage: SyncStage,
    pub done: u64,
    pub total: u64,
    pub item_id: Option<String>,
}

impl From<&core::SyncStep> for SyncStep {
    fn from(s: &core::SyncStep) -> Self {
        Self {
            stage: match s.stage {
                core::SyncStage::Documents => SyncStage::Documents,
                core::SyncStage::Media => SyncStage::Media,
            },
            done: s.done,
            total: s.total,
            item_id: s.item.clone(),
        }
    }
}

/// Something that did not get through a sync: a document the server refused (kept and
/// retried next time) or a photo held back or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct SyncProblem {
    pub order_id: Option<String>,
    /// SHA-256 (hex) of a photo's bytes.
    pub sha256: Option<String>,
    pub code: String,
    pub reason: String,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct SyncSummary {
    pub rounds: u64,
    pub requests: u64,
    pub docs_sent: u64,
    pub docs_received: u64,
    /// Orders the server listed for the worker, and how many were new here.
    pub orders: u64,
    pub new_orders: u64,
    /// Device and server hold the same documents.
    pub converged: bool,
    /// Tracks, signatures, notes and submissions the server now holds.
    pub items_synced: u64,
    pub photos_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Documents refused and items held back or refused; empty when everything got through.
    pub problems: Vec<SyncProblem>,
}

impl From<core::SyncReport> for SyncSummary {
    fn from(r: core::SyncReport) -> Self {
        let refused = r.rejected.into_iter().map(|d| SyncProblem {
            order_id: Some(d.order_id),
            sha256: None,
            code: d.code,
            reason: d.message,
        });
        let failed = r.failures.into_iter().map(|f| SyncProblem {
            order_id: f.order_id,
            sha256: f.hash.map(|h| h.to_hex()),
            code: f.code,
            reason: f.message,
        });
        Self {
            rounds: r.rounds as u64,
            requests: r.requests as u64,
            docs_sent: r.docs_sent as u64,
            docs_received: r.docs_received as u64,
            orders: r.orders as u64,
            new_orders: r.new_orders as u64,
            converged: r.converged,
            items_synced: r.items_synced as u64,
            photos_uploaded: r.blobs_uploaded as u64,
            bytes_uploaded: r.bytes_uploaded,
            problems: refused.chain(failed).collect(),
        }
    }
}

/// The order's three-party statement, as the server shows it to the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct Statement {
    pub id: String,
    pub order_id: String,
    pub version: i64,
    /// `open`, `awaiting_funds`, `settled`, `disputed`, `superseded` or `void`.
    pub status: String,
    /// The worker's pay before tax, fen.
    pub gross_fen: i64,
    /// The parties whose confirmation is missing: `platform`, `enterprise`, `worker`.
    pub awaiting: Vec<String>,
    /// Tax and net pay, once settled.
    pub settlement: Option<Settlement>,
}

/// How an order was settled: tax withheld and net pay, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct Settlement {
    pub gross_fen: i64,
    pub tax_fen: i64,
    pub net_fen: i64,
    /// `per_payment_2018` or `cumulative_2025`.
    pub tax_method: String,
}

/// The declaration an applicant signs and the privacy notice they accept, as fetched from a
/// server and kept on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct OnboardingTerms {
    pub server_url: String,
    pub declaration_text: String,
    /// SHA-256 (hex) of `declaration_text`, computed on the device.
    pub declaration_sha256: String,
    pub notice_version: String,
    pub notice_text: String,
    pub fetched_at_ms: i64,
}

impl From<core::OnboardingTerms> for OnboardingTerms {
    fn from(t: core::OnboardingTerms) -> Self {
        Self {
            server_url: t.server_url,
            declaration_text: t.declaration_text,
            declaration_sha256: t.declaration_sha256,
            notice_version: t.notice_version,
            notice_text: t.notice_text,
            fetched_at_ms: t.fetched_at_ms,
        }
    }
}

/// The applicant's fields, as typed in. `Debug` masks the personal ones and hides the
/// password; the device keeps them only while the application is queued.
#[derive(Clone, uniffi::Record)]
pub struct Applicant {
    pub login: String,
    pub password: String,
    pub name: String,
    pub id_number: String,
    pub bank_card: String,
    pub phone: String,
    pub trade: String,
}

impl Applicant {
    pub(crate) fn to_core(&self) -> core::Applicant {
        core::Applicant {
            login: self.login.clone(),
            password: self.password.clone(),
            name: self.name.clone(),
            id_number: self.id_number.clone(),
            bank_card: self.bank_card.clone(),
            phone: self.phone.clone(),
            trade: self.trade.clone(),
        }
    }
}

impl std::fmt::Debug for Applicant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_core(), f)
    }
}

/// The face image chosen by the liveness capture. `Debug` shows only its size.
#[derive(Clone, uniffi::Record)]
pub struct FaceCapture {
    /// JPEG, PNG or WebP bytes, at most 4 MiB.
    pub image: Bytes,
    pub captured_at_ms: i64,
}

impl std::fmt::Debug for FaceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceCapture")
            .field("bytes", &self.image.len())
            .field("captured_at_ms", &self.captured_at_ms)
            .finish()
    }
}

/// Everything the app collected for an application to work on the platform: the fields, the
/// declarations (each must be true), the acceptance of the privacy notice, the willingness
/// signature under the declaration, and the face.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ApplicationDraft {
    pub applicant: Applicant,
    /// Not a director, supervisor or senior manager of a hiring enterprise or its affiliates.
    pub not_manager_of_hiring_enterprise: bool,
    pub not_civil_servant: bool,
    /// Read the notice for people receiving benefits.
    pub benefits_notice_acknowledged: bool,
    /// Ticked "I accept" under the privacy notice of the terms.
    pub notice_accepted: bool,
    /// The signature under the declaration, as drawn.
    pub strokes: Vec<Stroke>,
    pub signed_at_ms: i64,
    pub face: Option<FaceCapture>,
}

impl ApplicationDraft {
    pub(crate) fn to_core(&self) -> core::ApplicationDraft {
        core::ApplicationDraft {
            applicant: self.applicant.to_core(),
            declarations: core::ApplicantDeclarations {
                not_manager_of_hiring_enterprise: self.not_manager_of_hiring_enterprise,
                not_civil_servant: self.not_civil_servant,
                benefits_notice_acknowledged: self.benefits_notice_acknowledged,
            },
            notice_accepted: self.notice_accepted,
            strokes: core_strokes(self.strokes.clone()),
            signed_at_ms: self.signed_at_ms,
            face: self.face.as_ref().map(|f| core::FaceCapture {
                image: f.image.to_vec(),
                captured_at_ms: f.captured_at_ms,
            }),
        }
    }
}

/// Where an application stands on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Signed and waiting to be sent; the device holds the application.
    Queued,
    /// The server took it for review.
    Submitted,
    /// The server refused it (`error_code`); it must be filled in again.
    Refused,
}

/// An application as the device knows it: no personal data beyond the login and the masked
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct Application {
    /// The device's reference, sent with it.
    pub id: String,
    pub server_url: String,
    pub state: ApplicationState,
    pub login: String,
    pub masked_name: String,
    /// SHA-256 (hex) of exactly the declaration text signed.
    pub signed_text_sha256: String,
    pub signed_at_ms: i64,
    pub notice_version: String,
    pub has_face: bool,
    /// The device still holds the full application (only while queued).
    pub holds_personal_data: bool,
    pub server_id: Option<String>,
    pub review_deadline: Option<String>,
    pub face_check: Option<String>,
    pub warnings: Vec<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub attempts: i64,
}

impl From<core::Application> for Application {
    fn from(a: core::Application) -> Self {
        Self {
            id: a.id,
            server_url: a.server_url,
            state: match a.state {
                core::ApplicationState::Queued => ApplicationState::Queued,
                core::ApplicationState::Submitted => ApplicationState::Submitted,
                core::ApplicationState::Refused => ApplicationState::Refused,
            },
            login: a.login,
            masked_name: a.masked_name,
            signed_text_sha256: a.signed_text_sha256,
            signed_at_ms: a.signed_at_ms,
            notice_version: a.notice_version,
            has_face: a.has_face,
            holds_personal_data: a.holds_personal_data,
            server_id: a.server_id,
            review_deadline: a.review_deadline,
            face_check: a.face_check,
            warnings: a.warnings,
            error_code: a.error_code,
            error_reason: a.error_message,
            attempts: a.attempts,
        }
    }
}
