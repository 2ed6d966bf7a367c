//! Evidence verification: what the server checks before an enterprise is asked to confirm an
//! order, as a pure library (no I/O besides [`cli::run`], which reads files for
//! `flexwork verify`).
//!
//! # Flow
//!
//! [`verify`] takes the [`Evidence`] of one order (photo bytes with the phone's own location
//! fix, a GPS trajectory, a signature count), the [`Context`] it is checked against (site,
//! work window, requirements; each optional) and the photos already used in other orders
//! ([`KnownPhoto`]). It returns a [`Report`]: a [`Verdict`], the [`Finding`]s, the facts read
//! from each photo ([`analyze_photo`]), a [`TrackSummary`] and the checks that were skipped
//! because an input was absent. A check never passes silently for lack of input.
//!
//! # Checks
//!
//! - **Photo decoding** (`photo_undecodable`, `photo_too_large`): the header's dimensions are
//!   read first and images over [`Thresholds::max_pixels`] are refused before any pixel buffer
//!   exists; the decoder also runs under an allocation limit. A JPEG's marker structure is
//!   walked first, because the decoder paints truncated or damaged data grey without error.
//! - **EXIF** (`photo_no_exif`, `photo_no_exif_gps`, `photo_exif_unreadable`): GPS position
//!   and UTC time stamp, `DateTimeOriginal` (+ `OffsetTimeOriginal`), orientation, camera.
//! - **Phone fix** (`photo_mock_location`, `photo_fix_inaccurate`, `photo_fix_invalid`).
//! - **Geofence** (`photo_outside_site`, `photo_position_unknown`): the phone fix and the EXIF
//!   position are each on site when `distance ≤ radius + min(accuracy, 50 m)`.
//! - **Work window** (`photo_outside_window`, `photo_time_unknown`, `photo_time_unzoned`): the
//!   capture time is the phone's clock, else the camera clock with its offset, else the GPS
//!   stamp. A camera time without a zone is outside only if no zone (UTC−12…+14) puts it in.
//! - **Clock agreement** (`photo_gps_time_mismatch`, `photo_exif_time_mismatch`,
//!   `photo_exif_time_zone_inferred`): phone clock, EXIF GPS stamp and camera clock must agree
//!   within [`Thresholds::max_clock_skew_s`]. `DateTimeOriginal` without `OffsetTimeOriginal`
//!   agrees when it differs by a real time-zone offset give or take that skew.
//! - **Reuse** (`photo_reused`, `photo_near_duplicate`, `photo_repeated`): same SHA-256 as a
//!   known photo, or a 64-bit difference hash within [`Thresholds::near_duplicate_bits`].
//! - **Trajectory** (`track_time_missing`, `track_time_not_increasing`,
//!   `track_impossible_speed`, `track_jump`, `track_fast_movement`, `track_gap`,
//!   `track_time_on_site`, `track_never_on_site`, `track_outside_window`,
//!   `track_invalid_point`): speeds use the distance minus both points' accuracy radii.
//! - **Requirements** (`photos_missing`, `track_missing`, `signature_missing`).
//!
//! # Thresholds
//!
//! Every number comes from [`Thresholds`], whose defaults are the field practice in
//! `spec/DOMAIN.md`: 150 m geofence, 50 m accuracy slack cap, fixes worse than 100 m unusable,
//! 200 km/h, 1 km in 10 s, 15 km/h sustained for 2 min, 300 s gaps, 300 s clock skew,
//! 40 megapixels, 256 MiB decoder memory, 10 bits of difference hash. The server reads them
//! from the `[verification]` table of its configuration.
//!
//! # Verdict
//!
//! The verdict is the worst severity among the findings: any `reject` → `rejected`, else any
//! `review` → `needs_review`, else `passed`. Severities follow one rule:
//!
//! - `reject` when the evidence cannot stand as submitted: a photo that does not decode or is
//!   too large to decode, a fix the phone itself marked as mocked, a required item missing.
//! - `review` when a person must judge: outside the geofence or the work window, a fix too
//!   inaccurate to place, no position or time at all, clocks that disagree, speeds and jumps,
//!   points without time, a track never on site, any reuse hit (before/after shots of one
//!   place look alike, so reuse is never an automatic rejection).
//! - `info` for facts that do not hold up the order: time spent on site, gaps, fast
//!   movement, missing or unreadable EXIF, an inferred camera time zone.

mod capture;
pub mod cli;
mod exif;
mod findings;
mod geo;
mod inputs;
mod jpeg;
mod photo;
mod reuse;
mod thresholds;
mod track;

#[cfg(test)]
mod tests;

pub use self::exif::{ExifFacts, ExifPosition};
pub use self::findings::{Finding, PhotoReport, Report, Severity, SkippedCheck, Verdict};
pub use self::inputs::{
    Context, DeviceFix, Evidence, KnownPhoto, PhotoInput, Requirements, Site, TrackPoint, Window,
};
pub use self::photo::{Decoding, PhotoFacts, analyze_photo, thumbnail};
pub use self::thresholds::Thresholds;
pub use self::track::{TrackSummary, track_from_gpx};

use self::capture::{PhotoCheck, check_photo};
use self::findings::Findings;

/// Why evidence could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The GPX document is not valid GPX.
    #[error("invalid GPX document: {0}")]
    Gpx(#[from] gpx::errors::GpxError),
}

/// Checks the evidence of one order against its context and the photos of other orders.
///
/// Pure: reads nothing but its arguments and never fails; problems with the input become
/// findings, and checks that lack an input are listed in [`Report::skipped`].
pub fn verify(
    evidence: &Evidence,
    ctx: &Context,
    known: &[KnownPhoto],
    thresholds: &Thresholds,
) -> Report {
    let mut out = Findings::default();
    note_missing_context(ctx, &mut out);

    let photos = check_photos(evidence, ctx, thresholds, &mut out);
    let track = track::check_track(&evidence.track, ctx, thresholds, &mut out);
    reuse::check_reuse(&photos, known, thresholds, &mut out);
    check_requirements(evidence, &photos, ctx.requirements.as_ref(), &mut out);

    out.into_report(photos, track)
}

fn note_missing_context(ctx: &Context, out: &mut Findings) {
    if ctx.site.is_none() {
        out.skip(
            "geofence",
            "no site was given, so no position was compared with one",
        );
    }
    if ctx.window.is_none() {
        out.skip(
            "work_window",
            "no work window was given, so no time was compared with one",
        );
    }
    if ctx.requirements.is_none() {
        out.skip(
            "requirements",
            "no requirements were given, so nothing counts as missing",
        );
    }
}

fn check_photos(
    evidence: &Evidence,
    ctx: &Context,
    thresholds: &Thresholds,
    out: &mut Findings,
) -> Vec<PhotoReport> {
    let check = |input: &PhotoInput, out: &mut Findings| {
        let facts = analyze_photo(input.bytes, thresholds);
        let fix = input.fix.as_ref();
        let c = PhotoCheck {
            id: &input.id,
            facts: &facts,
            fix,
            ctx,
            thresholds,
        };
        check_photo(&c, out);

        PhotoReport {
            id: input.id.clone(),
            facts,
        }
    };
    evidence
        .photos
        .iter()
        .map(|input| check(input, out))
        .collect()
}

fn check_requirements(
    evidence: &Evidence,
    photos: &[PhotoReport],
    requirements: Option<&Requirements>,
    out: &mut Findings,
) {
    let Some(req) = requirements else {
        return;
    };

    let usable = photos.iter().filter(|p| p.facts.is_decoded()).count();
    if usable < req.min_photos as usize {
        let msg = format!(
            "{usable} usable photos were submitted ({} in all); the order requires {}",
            photos.len(),
            req.min_photos
        );
        out.reject("photos_missing", None, msg);
    }

    if req.track && evidence.track.is_empty() {
        let msg = "the order requires a GPS trajectory and none was submitted".to_owned();
        out.reject("track_missing", Some("track"), msg);
    }
    if req.signature && evidence.signature_count == 0 {
        let msg = "the order requires a signature and none was submitted".to_owned();
        out.reject("signature_missing", None, msg);
    }
}
