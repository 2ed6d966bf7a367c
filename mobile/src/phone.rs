//! [`Phone`]: the object the apps hold, one per device store.

#![allow(unsafe_code)] // UniFFI's export macros write the `extern "C"` functions of this module.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use flexwork_client_core::{self as core, Device};

use crate::bytes::Bytes;
use crate::error::{MobileError, guarded};
use crate::photo;
use crate::types::{
    Application, ApplicationDraft, EvidenceItem, Finding, ItemFeedback, LocationFix,
    OPERATOR_COMMENT_CODE, OnboardingTerms, Order, PhotoRecorded, RegisteredDevice, Review,
    Session, Statement, Stroke, SyncStep, SyncSummary, TrackImported, TrackPoint, core_strokes,
};

/// Told how a sync goes. Called on the thread running the sync (never the caller's UI
/// thread when the async `sync` is used): post to the UI thread to update a view. Should
/// return quickly; an exception thrown from it ends the sync with an `internal` error.
#[uniffi::export(callback_interface)]
pub trait SyncProgress: Send + Sync {
    fn on_progress(&self, step: SyncStep);
}

/// A phone's evidence store (`device.sqlite` and `blobs/` in one folder) and its sign-in.
///
/// Safe to share between threads: calls are serialised on one lock around the store, so two
/// threads recording at once each get their own transaction. Every method that may take
/// long — network, hashing a photo, uploads — comes twice: an `async` one (Kotlin `suspend`,
/// Swift `async`, Python `async def`) that runs the work on a background thread of its own
/// and never blocks the caller, and a `…_blocking` one for callers already on a background
/// thread (an Android `Worker`, a `BGProcessingTask`, the command-line phone). The other
/// methods read or write one SQLite transaction and return in milliseconds; apps still call
/// them off the UI thread, as they would any disk access.
///
/// A cancelled async call still finishes on its background thread: a recording is either
/// stored whole or not at all.
#[derive(Debug, uniffi::Object)]
pub struct Phone {
    dir: PathBuf,
    device_id: String,
    /// Upload chunk size in bytes, applied to the store on every call.
    chunk_size: AtomicU64,
    device: Mutex<Device>,
}

#[uniffi::export]
impl Phone {
    /// Opens the store in the folder `dir` (the app's private files folder), creating it and
    /// this installation's id on first use.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>, MobileError> {
        guarded(|| {
            let dir = PathBuf::from(dir);
            let device = Device::open(&dir)?;
            Ok(Arc::new(Self {
                device_id: device.device_id().to_owned(),
                dir,
                chunk_size: AtomicU64::new(core::DEFAULT_CHUNK_SIZE as u64),
                device: Mutex::new(device),
            }))
        })
    }

    /// The stable id of this installation (it names the phone's evidence edits).
    pub fn device_id(&self) -> String {
        self.device_id.clone()
    }

    /// The folder of the store.
    pub fn store_dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// Sets the size of one media upload chunk in bytes (at least 1; 256 KiB by default).
    pub fn set_upload_chunk_size(&self, bytes: u64) {
        self.chunk_size.store(bytes.max(1), Ordering::Relaxed);
    }

    /// Who the device is signed in as, if anyone.
    pub fn session(&self) -> Result<Option<Session>, MobileError> {
        self.with(|d| Ok(d.session()?.map(Into::into)))
    }

    /// Signs in with the worker's login and password once and registers this phone's new
    /// device key under `device_name` (default: `phone` and the start of the installation
    /// id). Neither the password nor a token is kept; every later call is signed with the key.
    pub async fn login(
        self: Arc<Self>,
        server_url: String,
        login: String,
        password: String,
        device_name: Option<String>,
    ) -> Result<Session, MobileError> {
        background(move || self.login_blocking(server_url, login, password, device_name)).await
    }

    /// [`Phone::login`], blocking: call from a background thread.
    pub fn login_blocking(
        &self,
        server_url: String,
        login: String,
        password: String,
        device_name: Option<String>,
    ) -> Result<Session, MobileError> {
        self.with(|d| {
            let session = match device_name {
                Some(name) => d.login_named(&server_url, &login, &password, &name)?,
                None => d.login(&server_url, &login, &password)?,
            };
            Ok(session.into())
        })
    }

    /// Signs out: the server revokes this phone and the key is deleted (also when the
    /// server cannot be reached; the error then says so).
    pub async fn logout(self: Arc<Self>) -> Result<(), MobileError> {
        background(move || self.logout_blocking()).await
    }

    /// [`Phone::logout`], blocking: call from a background thread.
    pub fn logout_blocking(&self) -> Result<(), MobileError> {
        self.with(|d| Ok(d.logout()?))
    }

    /// The account's registered phones, as the server lists them.
    pub async fn devices(self: Arc<Self>) -> Result<Vec<RegisteredDevice>, MobileError> {
        background(move || self.devices_blocking()).await
    }

    /// [`Phone::devices`], blocking: call from a background thread.
    pub fn devices_blocking(&self) -> Result<Vec<RegisteredDevice>, MobileError> {
        let transport = self.with(|d| Ok(d.transport()?))?;
        let devices = guarded(|| Ok(transport.devices()?))?;
        Ok(devices.into_iter().map(Into::into).collect())
    }

    /// Revokes one of the account's phones (a lost one); revoking this one signs it out.
    pub async fn revoke_device(self: Arc<Self>, device_id: String) -> Result<(), MobileError> {
        background(move || self.revoke_device_blocking(device_id)).await
    }

    /// [`Phone::revoke_device`], blocking: call from a background thread.
    pub fn revoke_device_blocking(&self, device_id: String) -> Result<(), MobileError> {
        self.with(|d| Ok(d.revoke_device(&device_id)?))
    }

    /// Every order on the device, by order id.
    pub fn orders(&self) -> Result<Vec<Order>, MobileError> {
        self.with(|d| Ok(d.orders()?.into_iter().map(Into::into).collect()))
    }

    /// One order; `unknown_order` if it has not reached this device.
    pub fn order(&self, order_id: String) -> Result<Order, MobileError> {
        self.with(|d| Ok(d.order(&order_id)?.into()))
    }

    /// Records a photo from its bytes: hashed, written to the store and fsynced, then named
    /// in the order's evidence document, in one transaction. `media_type` is sniffed from the
    /// bytes when not given (JPEG, PNG, WebP, HEIC). `fix` is the phone's location fix at the
    /// capture, with the OS's mock flag.
    pub async fn record_photo(
        self: Arc<Self>,
        order_id: String,
        photo: Bytes,
        media_type: Option<String>,
        fix: Option<LocationFix>,
        captured_at_ms: i64,
    ) -> Result<PhotoRecorded, MobileError> {
        background(move || {
            self.record_photo_blocking(order_id, photo, media_type, fix, captured_at_ms)
        })
        .await
    }

    /// [`Phone::record_photo`], blocking: call from a background thread.
    pub fn record_photo_blocking(
        &self,
        order_id: String,
        photo: Bytes,
        media_type: Option<String>,
        fix: Option<LocationFix>,
        captured_at_ms: i64,
    ) -> Result<PhotoRecorded, MobileError> {
        let media_type = match media_type {
            Some(given) => given,
            None => sniffed(&photo)?.to_owned(),
        };
        self.with(|d| {
            let fix = fix.map(Into::into);
            let record = d.record_photo(&order_id, &photo, &media_type, fix, captured_at_ms)?;
            Ok(record.into())
        })
    }

    /// Records a photo from a file the camera wrote (no copy of the bytes across the
    /// boundary); see [`Phone::record_photo`].
    pub async fn record_photo_file(
        self: Arc<Self>,
        order_id: String,
        path: String,
        fix: Option<LocationFix>,
        captured_at_ms: i64,
    ) -> Result<PhotoRecorded, MobileError> {
        background(move || self.record_photo_file_blocking(order_id, path, fix, captured_at_ms))
            .await
    }

    /// [`Phone::record_photo_file`], blocking: call from a background thread.
    pub fn record_photo_file_blocking(
        &self,
        order_id: String,
        path: String,
        fix: Option<LocationFix>,
        captured_at_ms: i64,
    ) -> Result<PhotoRecorded, MobileError> {
        let bytes = read_file(Path::new(&path))?;
        self.record_photo_blocking(order_id, bytes.into(), None, fix, captured_at_ms)
    }

    /// Appends trajectory points the phone sampled, as one track item; returns its id.
    pub fn append_track_points(
        &self,
        order_id: String,
        points: Vec<TrackPoint>,
    ) -> Result<String, MobileError> {
        let points: Vec<core::TrackPoint> = points.into_iter().map(Into::into).collect();
        self.with(|d| Ok(d.append_track_points(&order_id, &points)?))
    }

    /// Imports every point of every track and segment of a GPX document as one track item.
    pub fn import_gpx(&self, order_id: String, gpx: Bytes) -> Result<TrackImported, MobileError> {
        self.with(|d| Ok(d.import_gpx(&order_id, &gpx[..])?.into()))
    }

    /// [`Phone::import_gpx`] from a file.
    pub fn import_gpx_file(
        &self,
        order_id: String,
        path: String,
    ) -> Result<TrackImported, MobileError> {
        let gpx = read_file(Path::new(&path))?;
        self.import_gpx(order_id, gpx.into())
    }

    /// Records a handwritten signature as strokes; returns its item id.
    pub fn add_signature(
        &self,
        order_id: String,
        strokes: Vec<Stroke>,
        signed_at_ms: i64,
    ) -> Result<String, MobileError> {
        let strokes = core_strokes(strokes);
        self.with(|d| Ok(d.add_signature(&order_id, strokes, signed_at_ms)?.id))
    }

    /// Records a note (1 to 10,000 characters); returns its item id.
    pub fn add_note(
        &self,
        order_id: String,
        text: String,
        at_ms: i64,
    ) -> Result<String, MobileError> {
        self.with(|d| Ok(d.add_note(&order_id, &text, at_ms)?.id))
    }

    /// Declares the order done from this phone; returns the submission's item id.
    pub fn submit(&self, order_id: String, at_ms: i64) -> Result<String, MobileError> {
        self.with(|d| Ok(d.submit(&order_id, at_ms)?))
    }

    /// The items recorded for an order, in recording order, each with its upload state.
    pub fn items(&self, order_id: String) -> Result<Vec<EvidenceItem>, MobileError> {
        self.with(|d| Ok(d.items(&order_id)?.into_iter().map(Into::into).collect()))
    }

    /// The server's review of the order as the last sync brought it: verdict, findings and
    /// the operator's comment; `None` before any.
    pub fn review(&self, order_id: String) -> Result<Option<Review>, MobileError> {
        self.with(|d| Ok(d.evidence(&order_id)?.review.map(Into::into)))
    }

    /// One item with its upload state, the review's findings naming it and the operator's
    /// comments on it; `unknown_item` if the order has no such item.
    pub fn item_feedback(
        &self,
        order_id: String,
        item_id: String,
    ) -> Result<ItemFeedback, MobileError> {
        let (items, findings) =
            self.with(|d| Ok((d.items(&order_id)?, d.item_findings(&order_id, &item_id)?)))?;
        let item = items.into_iter().find(|i| i.id == item_id).ok_or_else(|| {
            let reason = format!("order {order_id} has no item {item_id} on this device");
            MobileError::invalid("unknown_item", reason)
        })?;
        let (comments, findings): (Vec<Finding>, Vec<Finding>) = findings
            .into_iter()
            .map(Finding::from)
            .partition(|f| f.code == OPERATOR_COMMENT_CODE);
        Ok(ItemFeedback {
            item: item.into(),
            findings,
            operator_comments: comments.into_iter().map(|c| c.message).collect(),
        })
    }

    /// Syncs: documents both ways (new orders, the server's reviews), then every photo the
    /// server lacks, in resumable chunks. `progress` hears each step. No answer from the
    /// server is an `Offline` error; photos held back or refused are listed in `problems`.
    pub async fn sync(
        self: Arc<Self>,
        progress: Option<Box<dyn SyncProgress>>,
    ) -> Result<SyncSummary, MobileError> {
        background(move || self.sync_blocking(progress)).await
    }

    /// [`Phone::sync`], blocking: call from a background thread.
    pub fn sync_blocking(
        &self,
        progress: Option<Box<dyn SyncProgress>>,
    ) -> Result<SyncSummary, MobileError> {
        self.with(|d| {
            let transport = d.transport()?;
            let mut tell = |step: &core::SyncStep| {
                if let Some(progress) = &progress {
                    progress.on_progress(step.into());
                }
            };
            Ok(d.sync_with_progress(&transport, &mut tell)?.into())
        })
    }

    /// The order's three-party statement: the fee, who confirmed, and once settled the tax
    /// and net pay.
    pub async fn statement(self: Arc<Self>, order_id: String) -> Result<Statement, MobileError> {
        background(move || self.statement_blocking(order_id)).await
    }

    /// [`Phone::statement`], blocking: call from a background thread.
    pub fn statement_blocking(&self, order_id: String) -> Result<Statement, MobileError> {
        let transport = self.with(|d| Ok(d.transport()?))?;
        guarded(|| statement_from(transport.statement(&order_id)?))
    }

    /// Confirms the order's statement as the worker, signed by this phone's key.
    pub async fn confirm_statement(
        self: Arc<Self>,
        order_id: String,
    ) -> Result<Statement, MobileError> {
        background(move || self.confirm_statement_blocking(order_id)).await
    }

    /// [`Phone::confirm_statement`], blocking: call from a background thread.
    pub fn confirm_statement_blocking(&self, order_id: String) -> Result<Statement, MobileError> {
        let transport = self.with(|d| Ok(d.transport()?))?;
        guarded(|| {
            let statement = statement_from(transport.statement(&order_id)?)?;
            statement_from(transport.confirm_statement(&statement.id)?)
        })
    }

    /// Fetches the declaration to sign and the privacy notice from `server_url` (no sign-in
    /// needed) and keeps them, so the application can be signed offline.
    pub async fn fetch_onboarding_terms(
        self: Arc<Self>,
        server_url: String,
    ) -> Result<OnboardingTerms, MobileError> {
        background(move || self.fetch_onboarding_terms_blocking(server_url)).await
    }

    /// [`Phone::fetch_onboarding_terms`], blocking: call from a background thread.
    pub fn fetch_onboarding_terms_blocking(
        &self,
        server_url: String,
    ) -> Result<OnboardingTerms, MobileError> {
        self.with(|d| Ok(d.fetch_onboarding_terms(&server_url)?.into()))
    }

    /// The terms last fetched from `server_url`, if any (offline).
    pub fn onboarding_terms(
        &self,
        server_url: String,
    ) -> Result<Option<OnboardingTerms>, MobileError> {
        self.with(|d| Ok(d.onboarding_terms(&server_url)?.map(Into::into)))
    }

    /// Signs the declaration of the terms kept for `server_url` (the willingness signature)
    /// and queues the application, offline; `no_terms` if none were fetched. Send it with
    /// [`Phone::submit_applications`].
    pub fn sign_application(
        &self,
        server_url: String,
        draft: ApplicationDraft,
    ) -> Result<Application, MobileError> {
        let draft = draft.to_core();
        self.with(|d| {
            let Some(terms) = d.onboarding_terms(&server_url)? else {
                let reason = format!(
                    "no terms of {server_url} on this device: fetch them while online first"
                );
                return Err(MobileError::invalid("no_terms", reason));
            };
            Ok(d.sign_application(&terms, &draft)?.into())
        })
    }

    /// Sends every queued application, oldest first; returns those tried. No network keeps
    /// an application queued; an answer or a refusal is final and erases its personal data
    /// from the device.
    pub async fn submit_applications(self: Arc<Self>) -> Result<Vec<Application>, MobileError> {
        background(move || self.submit_applications_blocking()).await
    }

    /// [`Phone::submit_applications`], blocking: call from a background thread.
    pub fn submit_applications_blocking(&self) -> Result<Vec<Application>, MobileError> {
        self.with(|d| {
            Ok(d.submit_applications()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Every application on the device, oldest first.
    pub fn applications(&self) -> Result<Vec<Application>, MobileError> {
        self.with(|d| Ok(d.applications()?.into_iter().map(Into::into).collect()))
    }
}

impl Phone {
    /// Runs `f` on the store under the lock, with panics and errors turned into
    /// [`MobileError`].
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Device) -> Result<T, MobileError>,
    ) -> Result<T, MobileError> {
        guarded(|| {
            let mut device = self.lock()?;
            let bytes = self.chunk_size.load(Ordering::Relaxed);
            device.set_chunk_size(usize::try_from(bytes).unwrap_or(usize::MAX));
            f(&mut device)
        })
    }

    /// The store, reopened if an earlier call panicked while holding it: its in-memory state
    /// (the document cache) may be half changed, the store on disk is not.
    fn lock(&self) -> Result<MutexGuard<'_, Device>, MobileError> {
        match self.device.lock() {
            Ok(device) => Ok(device),
            Err(poisoned) => {
                let mut device = poisoned.into_inner();
                *device = Device::open(&self.dir)?;
                self.device.clear_poison();
                tracing::warn!("device store reopened after a panic");
                Ok(device)
            }
        }
    }
}

/// Runs `f` on a new thread of its own and waits for it without blocking the caller's.
async fn background<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MobileError> + Send + 'static,
) -> Result<T, MobileError> {
    let (answer, answered) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("flexwork-phone".into())
        .spawn(move || {
            // The caller may have stopped waiting (a cancelled coroutine): the work is done
            // all the same, and the answer dropped.
            let _ = answer.send(guarded(f));
        })
        .map_err(|e| MobileError::internal(format!("cannot start a background thread: {e}")))?;
    answered
        .await
        .map_err(|_| MobileError::internal("the background call ended without an answer"))?
}

fn sniffed(bytes: &[u8]) -> Result<&'static str, MobileError> {
    photo::sniff_media_type(bytes).ok_or_else(|| {
        MobileError::invalid(
            "unsupported_media_type",
            "the photo is not a JPEG, PNG, WebP or HEIC image",
        )
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, MobileError> {
    std::fs::read(path).map_err(|e| {
        MobileError::invalid(
            "file_unreadable",
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn statement_from(value: serde_json::Value) -> Result<Statement, MobileError> {
    serde_json::from_value(value).map_err(|e| MobileError::BadResponse {
        code: "bad_response".into(),
        reason: format!("the statement could not be read: {e}"),
    })
}
