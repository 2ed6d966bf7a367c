//! What verification is given: the evidence of one order and the context it is checked
//! against.

use std::fmt;

use flexwork_sync::ContentHash;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The place where the work happens: a WGS-84 position and a geofence radius.
///
/// Site coordinates picked on a Chinese map are GCJ-02 and must be converted to WGS-84 by the
/// caller before they reach verification.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// Latitude in degrees (WGS-84), north positive.
    pub lat: f64,
    /// Longitude in degrees (WGS-84), east positive.
    pub lon: f64,
    /// Geofence radius in metres.
    pub radius_m: f64,
}

/// When the work is supposed to happen, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start of the work window.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// End of the work window.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
}

impl Window {
    /// Whether `at` lies inside the window.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at <= self.to
    }
}

/// What the order asks the worker to submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Fewest decodable photos.
    pub min_photos: u32,
    /// Whether a GPS trajectory is required.
    pub track: bool,
    /// Whether a signature is required.
    pub signature: bool,
}

/// The phone's own location fix taken when the photo was captured (the primary position
/// signal: Android strips EXIF location from most apps' photos).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeviceFix {
    /// Latitude in degrees (WGS-84).
    pub lat: f64,
    /// Longitude in degrees (WGS-84).
    pub lon: f64,
    /// Accuracy radius in metres reported by the phone (68 % confidence on Android).
    pub accuracy_m: f64,
    /// When the phone took the fix, by the phone's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Whether the phone marked the fix as coming from a mock location provider.
    pub mock: bool,
}

/// One submitted photo: its id within the order, its bytes and the phone's fix.
#[derive(Clone)]
pub struct PhotoInput<'a> {
    /// The photo's id within the order (a file name for `flexwork verify`).
    pub id: String,
    /// The file as uploaded.
    pub bytes: &'a [u8],
    /// The phone's location fix at capture, if the app attached one.
    pub fix: Option<DeviceFix>,
}

impl fmt::Debug for PhotoInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhotoInput")
            .field("id", &self.id)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("fix", &self.fix)
            .finish()
    }
}

/// One point of a GPS trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    /// Latitude in degrees (WGS-84).
    pub lat: f64,
    /// Longitude in degrees (WGS-84).
    pub lon: f64,
    /// When the point was recorded, if known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Accuracy radius in metres, if known.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
}

/// A photo already used as evidence in another order, for the reuse checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPhoto {
    /// The order the photo was used in.
    pub order_id: String,
    /// SHA-256 of its bytes.
    pub sha256: ContentHash,
    /// Its 64-bit difference hash, as [`PhotoFacts::dhash`](super::PhotoFacts::dhash).
    pub dhash: u64,
}

/// The evidence of one order.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    /// Photos in the order the worker took them.
    pub photos: Vec<PhotoInput<'a>>,
    /// The GPS trajectory, in recording order (empty when none was submitted).
    pub track: Vec<TrackPoint>,
    /// How many signatures were submitted.
    pub signature_count: usize,
}

/// What the evidence is checked against. Every part is optional: checks that need an absent
/// part are listed as skipped in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Where the work happens.
    pub site: Option<Site>,
    /// When the work happens.
    pub window: Option<Window>,
    /// What must be submitted.
    pub requirements: Option<Requirements>,
}
