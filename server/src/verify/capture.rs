//! Checks of one photo: that it decodes, where it was taken (phone fix and EXIF GPS against
//! the site's geofence), when it was taken (against the work window) and whether its clocks
//! agree with each other.

use time::macros::offset;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::findings::Findings;
use super::geo::{
    distance_m, is_valid_position, local_time, metres, moment, seconds, seconds_between,
};
use super::inputs::{Context, DeviceFix, Site, Window};
use super::photo::{Decoding, PhotoFacts};
use super::thresholds::Thresholds;

/// One photo and everything its checks need.
pub(crate) struct PhotoCheck<'a> {
    pub id: &'a str,
    pub facts: &'a PhotoFacts,
    pub fix: Option<&'a DeviceFix>,
    pub ctx: &'a Context,
    pub thresholds: &'a Thresholds,
}

/// Runs every per-photo check.
pub(crate) fn check_photo(c: &PhotoCheck, out: &mut Findings) {
    check_decoding(c, out);
    check_exif_presence(c, out);
    check_fix(c, out);

    if let Some(site) = &c.ctx.site {
        check_place(c, site, out);
    }
    if let Some(window) = &c.ctx.window {
        check_window(c, window, out);
    }
    check_clocks(c, out);
}

fn check_decoding(c: &PhotoCheck, out: &mut Findings) {
    let id = c.id;
    match &c.facts.decoding {
        Decoding::Decoded { .. } => {}
        Decoding::Failed { reason } => {
            let msg = format!("photo {id} cannot be decoded as an image: {reason}");
            out.reject("photo_undecodable", Some(id), msg);
        }
        Decoding::TooLarge { width, height } => {
            let megapixels = f64::from(*width) * f64::from(*height) / 1e6;
            let max = c.thresholds.max_pixels as f64 / 1e6;
            let msg = format!(
                "photo {id} declares {width}×{height} pixels ({megapixels:.0} megapixels), \
                 more than the {max:.0} megapixels allowed, so it was not decoded"
            );
            out.reject("photo_too_large", Some(id), msg);
        }
    }
}

fn check_exif_presence(c: &PhotoCheck, out: &mut Findings) {
    let id = c.id;
    if c.facts.media_type.is_none() {
        return;
    }

    if let Some(error) = &c.facts.exif_error {
        let msg = format!("photo {id} has an EXIF block that cannot be read: {error}");
        out.info("photo_exif_unreadable", Some(id), msg);
    } else if c.facts.exif.is_none() {
        out.info(
            "photo_no_exif",
            Some(id),
            format!("photo {id} carries no EXIF data"),
        );
    } else if c.facts.exif.as_ref().is_some_and(|e| e.gps.is_none()) {
        let msg = format!(
            "photo {id} has no GPS position in its EXIF data (phones strip it unless the app \
             may read media locations); only the phone's location fix can place it"
        );
        out.info("photo_no_exif_gps", Some(id), msg);
    }
}

fn check_fix(c: &PhotoCheck, out: &mut Findings) {
    let id = c.id;
    let Some(fix) = c.fix else {
        let reason = "no location fix from the phone came with the photo \
                      (a file given to `flexwork verify` never has one)";
        out.skip_for("device_fix", Some(id), reason);
        return;
    };

    if fix.mock {
        let msg = format!("photo {id}: the phone marked its location fix as a mock location");
        out.reject("photo_mock_location", Some(id), msg);
    }
    if !is_valid_position(fix.lat, fix.lon) {
        let msg = format!(
            "photo {id}: the phone's fix ({}, {}) is not a position",
            fix.lat, fix.lon
        );
        out.review("photo_fix_invalid", Some(id), msg);
    }
    if fix.accuracy_m.is_nan() || fix.accuracy_m > c.thresholds.max_accuracy_m {
        let msg = format!(
            "photo {id}: the phone's fix is accurate to only {} ({} or better is needed); \
             a new fix should be taken",
            metres(fix.accuracy_m),
            metres(c.thresholds.max_accuracy_m)
        );
        out.review("photo_fix_inaccurate", Some(id), msg);
    }
}

fn check_place(c: &PhotoCheck, site: &Site, out: &mut Findings) {
    let id = c.id;
    let exif_gps = c.facts.exif.as_ref().and_then(|e| e.gps);

    if let Some(fix) = c.fix.filter(|f| is_valid_position(f.lat, f.lon)) {
        let place = Place {
            lat: fix.lat,
            lon: fix.lon,
            accuracy_m: Some(fix.accuracy_m),
        };
        check_geofence(c, site, &place, "by the phone's location fix", out);
    }
    if let Some(gps) = exif_gps {
        let place = Place {
            lat: gps.lat,
            lon: gps.lon,
            accuracy_m: gps.error_m,
        };
        check_geofence(c, site, &place, "by its EXIF GPS position", out);
    }

    if c.fix.is_none() && exif_gps.is_none() && c.facts.is_decoded() {
        let msg = format!(
            "photo {id} carries no position (no phone fix and no EXIF GPS), \
             so it cannot be placed at the site"
        );
        out.review("photo_position_unknown", Some(id), msg);
    }
}

struct Place {
    lat: f64,
    lon: f64,
    accuracy_m: Option<f64>,
}

fn check_geofence(c: &PhotoCheck, site: &Site, place: &Place, source: &str, out: &mut Findings) {
    let distance = distance_m(place.lat, place.lon, site.lat, site.lon);
    let slack = place.accuracy_m.map(|a| c.thresholds.accuracy_slack_m(a));
    if distance <= site.radius_m + slack.unwrap_or(0.0) {
        return;
    }

    let allowance = match slack {
        Some(slack) => format!(
            "allowed {} + {} accuracy",
            metres(site.radius_m),
            metres(slack)
        ),
        None => format!(
            "allowed {}; no accuracy was recorded",
            metres(site.radius_m)
        ),
    };
    let msg = format!(
        "photo {} was taken {} from the site {source} ({allowance})",
        c.id,
        metres(distance)
    );
    out.review("photo_outside_site", Some(c.id), msg);
}

/// The best-known moment of capture and where it comes from, most trusted first.
fn capture_time(c: &PhotoCheck) -> Option<(OffsetDateTime, &'static str)> {
    let exif = c.facts.exif.as_ref();

    c.fix
        .map(|f| (f.at, "by the phone's clock"))
        .or_else(|| {
            exif.and_then(|e| e.taken_at)
                .map(|t| (t, "by the camera's clock and zone"))
        })
        .or_else(|| {
            exif.and_then(|e| e.gps_time)
                .map(|t| (t, "by the EXIF GPS time"))
        })
}

fn check_window(c: &PhotoCheck, window: &Window, out: &mut Findings) {
    let id = c.id;
    if let Some((at, source)) = capture_time(c) {
        if let Some(relation) = outside(window, at) {
            let msg = format!(
                "photo {id} was taken at {} {source}, {relation}",
                moment(at)
            );
            out.review("photo_outside_window", Some(id), msg);
        }
        return;
    }

    match c.facts.exif.as_ref().and_then(|e| e.date_time_original) {
        Some(local) => check_unzoned_window(id, local, window, out),
        None if c.facts.is_decoded() => {
            let msg = format!(
                "photo {id} carries no capture time (no phone fix and no EXIF time), \
                 so it cannot be placed in the work window"
            );
            out.review("photo_time_unknown", Some(id), msg);
        }
        None => {}
    }
}

/// How `at` lies outside the window, or `None` when inside.
fn outside(window: &Window, at: OffsetDateTime) -> Option<String> {
    if at < window.from {
        let early = seconds(seconds_between(at, window.from));
        Some(format!(
            "{early} before the work window opened at {}",
            moment(window.from)
        ))
    } else if at > window.to {
        let late = seconds(seconds_between(window.to, at));
        Some(format!(
            "{late} after the work window closed at {}",
            moment(window.to)
        ))
    } else {
        None
    }
}

/// A camera time without a zone can be anywhere from UTC−12 to UTC+14: it is outside the
/// window only if it is outside for every zone.
fn check_unzoned_window(id: &str, local: PrimitiveDateTime, window: &Window, out: &mut Findings) {
    let earliest = local.assume_offset(offset!(+14));
    let latest = local.assume_offset(offset!(-12));

    if latest < window.from || earliest > window.to {
        let msg = format!(
            "photo {id}'s camera time {} (no time zone) lies outside the work window \
             {} – {} whatever zone the camera was set to",
            local_time(local),
            moment(window.from),
            moment(window.to)
        );
        out.review("photo_outside_window", Some(id), msg);
    } else {
        let msg = format!(
            "photo {id} has only a camera time without a time zone ({}); \
             it can only be said to fall near the work window",
            local_time(local)
        );
        out.info("photo_time_unzoned", Some(id), msg);
    }
}

/// A clock reading and the name messages call the clock by.
type Clock = (&'static str, OffsetDateTime);

/// The clocks one photo carries.
struct Clocks {
    device: Option<Clock>,
    gps: Option<Clock>,
    camera: Option<Clock>,
    /// `DateTimeOriginal` when no `OffsetTimeOriginal` places it in time.
    unzoned: Option<PrimitiveDateTime>,
}

impl Clocks {
    fn of(c: &PhotoCheck) -> Self {
        let exif = c.facts.exif.as_ref();
        let camera_name = "camera clock (DateTimeOriginal with OffsetTimeOriginal)";
        let camera = exif.and_then(|e| e.taken_at).map(|t| (camera_name, t));

        Clocks {
            device: c.fix.map(|f| ("phone's clock", f.at)),
            gps: exif.and_then(|e| e.gps_time).map(|t| ("EXIF GPS time", t)),
            unzoned: exif
                .and_then(|e| e.date_time_original)
                .filter(|_| camera.is_none()),
            camera,
        }
    }

    fn count(&self) -> usize {
        let camera = self.camera.is_some() || self.unzoned.is_some();
        [self.device.is_some(), self.gps.is_some(), camera]
            .into_iter()
            .filter(|p| *p)
            .count()
    }
}

fn check_clocks(c: &PhotoCheck, out: &mut Findings) {
    let clocks = Clocks::of(c);
    if clocks.count() < 2 {
        let reason = "the photo carries fewer than two clocks (phone fix, EXIF GPS time, \
                      EXIF DateTimeOriginal) to compare";
        out.skip_for("clock_agreement", Some(c.id), reason);
        return;
    }

    if let (Some(device), Some(gps)) = (clocks.device, clocks.gps) {
        compare(c, device, gps, "photo_gps_time_mismatch", out);
    }
    let Some(reference) = clocks.device.or(clocks.gps) else {
        return;
    };
    if let Some(camera) = clocks.camera {
        compare(c, camera, reference, "photo_exif_time_mismatch", out);
    }
    if let Some(local) = clocks.unzoned {
        check_unzoned_clock(c, local, reference, out);
    }
}

fn compare(
    c: &PhotoCheck,
    (a_name, a): (&str, OffsetDateTime),
    (b_name, b): (&str, OffsetDateTime),
    code: &str,
    out: &mut Findings,
) {
    let apart = seconds_between(a, b).abs();
    if apart <= c.thresholds.max_clock_skew_s {
        return;
    }

    let msg = format!(
        "photo {}: the {a_name} says {} and the {b_name} says {}, {} apart ({} allowed)",
        c.id,
        moment(a),
        moment(b),
        seconds(apart),
        seconds(c.thresholds.max_clock_skew_s)
    );
    out.review(code, Some(c.id), msg);
}

/// Offsets in use besides whole hours, in minutes east of UTC.
const PART_HOUR_ZONES: [i32; 13] = [
    -570, -210, -150, 210, 270, 330, 345, 390, 525, 570, 630, 765, 825,
];

/// The real time-zone offset (minutes) closest to `diff_s` seconds, UTC−12 to UTC+14.
fn nearest_zone(diff_s: f64) -> i32 {
    let whole_hours = (-12..=14).map(|h| h * 60);
    let zones = whole_hours.chain(PART_HOUR_ZONES);

    let distance = |z: &i32| (diff_s - f64::from(*z) * 60.0).abs();
    zones
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .unwrap_or(0)
}

/// `DateTimeOriginal` has no zone: it agrees with a reference clock when the difference is a
/// real time-zone offset give or take the allowed skew.
fn check_unzoned_clock(
    c: &PhotoCheck,
    local: PrimitiveDateTime,
    (ref_name, reference): (&str, OffsetDateTime),
    out: &mut Findings,
) {
    let diff = seconds_between(reference, local.assume_utc());
    let zone = nearest_zone(diff);
    let residual = (diff - f64::from(zone) * 60.0).abs();
    let (id, local, zone_name) = (c.id, local_time(local), zone_name(zone));
    let reference = format!("the {ref_name} ({})", moment(reference));

    if residual <= c.thresholds.max_clock_skew_s {
        let msg = format!(
            "photo {id}'s DateTimeOriginal {local} has no time zone; it agrees with \
             {reference} within {} if the camera was set to {zone_name}",
            seconds(residual)
        );
        out.info("photo_exif_time_zone_inferred", Some(id), msg);
    } else {
        let relation = if diff < 0.0 { "behind" } else { "ahead of" };
        let msg = format!(
            "photo {id}'s DateTimeOriginal {local} has no time zone and is {} {relation} \
             {reference}; no time zone explains that (the nearest, {zone_name}, leaves {}; \
             {} allowed)",
            seconds(diff.abs()),
            seconds(residual),
            seconds(c.thresholds.max_clock_skew_s)
        );
        out.review("photo_exif_time_mismatch", Some(id), msg);
    }
}

/// "UTC+02:00" for 120 minutes.
fn zone_name(minutes: i32) -> String {
    let sign = if minutes < 0 { '−' } else { '+' };
    let m = minutes.abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_real_offsets() {
        assert_eq!(nearest_zone(7200.0), 120);
        assert_eq!(nearest_zone(7200.0 + 100.0), 120);
        assert_eq!(nearest_zone(5.5 * 3600.0 + 60.0), 330);
        assert_eq!(nearest_zone(20.0 * 3600.0), 14 * 60);
        assert_eq!(zone_name(-210), "UTC−03:30");
        assert_eq!(zone_name(480), "UTC+08:00");
    }
}
