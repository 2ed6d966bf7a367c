//! Trajectory checks: timestamps present and increasing, implausible speeds and jumps, gaps,
//! sustained fast movement, time spent inside the site's geofence and time outside the work
//! window. Also reading a trajectory from GPX.

use std::io::Read;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::VerifyError;
use super::findings::Findings;
use super::geo::{distance_m, is_valid_position, metres, moment, seconds, seconds_between};
use super::inputs::{Context, Site, TrackPoint, Window};
use super::thresholds::Thresholds;

const ITEM: Option<&str> = Some("track");

/// What the trajectory looked like, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackSummary {
    /// Number of points submitted.
    pub points: usize,
    /// Number of points with a time.
    pub timed_points: usize,
    /// Time of the first timed point.
    #[serde(with = "time::serde::rfc3339::option")]
    pub start: Option<OffsetDateTime>,
    /// Time of the last timed point.
    #[serde(with = "time::serde::rfc3339::option")]
    pub end: Option<OffsetDateTime>,
    /// Length along the points, in metres.
    pub length_m: f64,
    /// Fastest speed between two consecutive timed points in km/h, after subtracting their
    /// accuracy radii.
    pub max_speed_kmh: Option<f64>,
    /// Number of gaps longer than the gap threshold.
    pub gaps: usize,
    /// Longest time between two consecutive points, in seconds.
    pub longest_gap_s: Option<f64>,
    /// Seconds spent inside the site's geofence (legs whose both ends are inside), when a site
    /// was given.
    pub time_on_site_s: Option<f64>,
    /// Distance in metres of the point closest to the site, when a site was given.
    pub closest_to_site_m: Option<f64>,
}

/// Reads every point of every track and segment of a GPX document, in order.
///
/// Points without a `<time>` keep `at: None`; GPX carries no accuracy radius, so `accuracy_m`
/// is `None`.
pub fn track_from_gpx<R: Read>(reader: R) -> Result<Vec<TrackPoint>, VerifyError> {
    let gpx = gpx::read(reader)?;

    let points = gpx
        .tracks
        .iter()
        .flat_map(|track| &track.segments)
        .flat_map(|segment| &segment.points)
        .map(|waypoint| {
            let point = waypoint.point();
            TrackPoint {
                lat: point.y(),
                lon: point.x(),
                at: waypoint.time.map(OffsetDateTime::from),
                accuracy_m: None,
            }
        });
    Ok(points.collect())
}

/// One step between two consecutive valid points.
struct Leg<'a> {
    from: &'a TrackPoint,
    to: &'a TrackPoint,
    distance_m: f64,
    /// Distance minus both accuracy radii, never below zero.
    net_m: f64,
    /// Seconds from `from` to `to`, when both have a time.
    dt_s: Option<f64>,
}

impl Leg<'_> {
    /// Speed in km/h over the net distance, when time moved forward.
    fn speed_kmh(&self) -> Option<f64> {
        self.dt_s
            .filter(|dt| *dt > 0.0)
            .map(|dt| self.net_m / dt * 3.6)
    }
}

fn legs<'a>(points: &[&'a TrackPoint]) -> Vec<Leg<'a>> {
    points
        .windows(2)
        .map(|pair| leg(pair[0], pair[1]))
        .collect()
}

fn leg<'a>(from: &'a TrackPoint, to: &'a TrackPoint) -> Leg<'a> {
    let distance_m = distance_m(from.lat, from.lon, to.lat, to.lon);
    let radii = from.accuracy_m.unwrap_or(0.0) + to.accuracy_m.unwrap_or(0.0);
    let dt_s = from.at.zip(to.at).map(|(a, b)| seconds_between(a, b));

    Leg {
        from,
        to,
        distance_m,
        net_m: (distance_m - radii).max(0.0),
        dt_s,
    }
}

/// Runs every trajectory check; `None` when no track was submitted.
pub(crate) fn check_track(
    track: &[TrackPoint],
    ctx: &Context,
    t: &Thresholds,
    out: &mut Findings,
) -> Option<TrackSummary> {
    if track.is_empty() {
        out.skip("track", "no trajectory was submitted");
        return None;
    }

    let points = valid_points(track, out);
    let legs = legs(&points);
    let timed: Vec<OffsetDateTime> = points.iter().filter_map(|p| p.at).collect();
    check_times(&points, &legs, out);

    let max_speed_kmh = check_speeds(&legs, t, out);
    check_jumps(&legs, t, out);
    check_sustained(&legs, t, out);
    let (gaps, longest_gap_s) = check_gaps(&legs, t, out);

    let on_site = ctx
        .site
        .map(|site| check_site(&points, &legs, &site, t, out));
    if let Some(window) = &ctx.window {
        check_window(&points, window, out);
    }

    Some(TrackSummary {
        points: track.len(),
        timed_points: timed.len(),
        start: timed.first().copied(),
        end: timed.last().copied(),
        length_m: legs.iter().map(|l| l.distance_m).sum(),
        max_speed_kmh,
        gaps,
        longest_gap_s,
        time_on_site_s: on_site.map(|s| s.0),
        closest_to_site_m: on_site.map(|s| s.1),
    })
}

fn valid_points<'a>(track: &'a [TrackPoint], out: &mut Findings) -> Vec<&'a TrackPoint> {
    let valid: Vec<&TrackPoint> = track
        .iter()
        .filter(|p| is_valid_position(p.lat, p.lon))
        .collect();

    let invalid = track.len() - valid.len();
    if invalid > 0 {
        let msg = format!(
            "{invalid} of {} track points are not valid positions",
            track.len()
        );
        out.review("track_invalid_point", ITEM, msg);
    }
    valid
}

fn check_times(points: &[&TrackPoint], legs: &[Leg], out: &mut Findings) {
    let untimed = points.iter().filter(|p| p.at.is_none()).count();
    if untimed == points.len() {
        out.skip_for("track_speed", ITEM, "no track point has a time");
    }
    if untimed > 0 {
        let msg = format!(
            "{untimed} of {} track points have no time; speeds and gaps next to them \
             were not checked",
            points.len()
        );
        out.review("track_time_missing", ITEM, msg);
    }

    let backwards: Vec<&Leg> = legs.iter().filter(|l| goes_back(l)).collect();
    let Some(first) = backwards.first() else {
        return;
    };
    let msg = format!(
        "track time does not increase at {} places; the first goes from {} to {}",
        backwards.len(),
        first.from.at.map(moment).unwrap_or_default(),
        first.to.at.map(moment).unwrap_or_default()
    );
    out.review("track_time_not_increasing", ITEM, msg);
}

/// Time stands still or runs backwards while the position changes (a repeated point is fine).
fn goes_back(leg: &Leg) -> bool {
    match leg.dt_s {
        Some(dt) => dt < 0.0 || (dt == 0.0 && leg.distance_m > 0.0),
        None => false,
    }
}

fn check_speeds(legs: &[Leg], t: &Thresholds, out: &mut Findings) -> Option<f64> {
    let speeds: Vec<(f64, &Leg)> = legs
        .iter()
        .filter_map(|l| l.speed_kmh().map(|s| (s, l)))
        .collect();
    let (fastest, leg) = speeds.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0))?;

    let too_fast = speeds.iter().filter(|(s, _)| *s > t.max_speed_kmh).count();
    if too_fast > 0 {
        let msg = format!(
            "the track moves faster than {:.0} km/h between {too_fast} pairs of points; \
             the fastest covers {} in {} ({fastest:.0} km/h) from {}",
            t.max_speed_kmh,
            metres(leg.distance_m),
            seconds(leg.dt_s.unwrap_or_default()),
            leg.from.at.map(moment).unwrap_or_default()
        );
        out.review("track_impossible_speed", ITEM, msg);
    }
    Some(fastest)
}

fn check_jumps(legs: &[Leg], t: &Thresholds, out: &mut Findings) {
    let is_jump = |l: &&Leg| {
        let quick = l.dt_s.is_some_and(|dt| dt > 0.0 && dt < t.jump_within_s);
        quick && l.net_m > t.jump_distance_m
    };
    let jumps: Vec<&Leg> = legs.iter().filter(is_jump).collect();
    let Some(biggest) = jumps.iter().max_by(|a, b| a.net_m.total_cmp(&b.net_m)) else {
        return;
    };

    let msg = format!(
        "the track jumps more than {} in under {} {} times; the biggest jump is {} in {} at {}",
        metres(t.jump_distance_m),
        seconds(t.jump_within_s),
        jumps.len(),
        metres(biggest.distance_m),
        seconds(biggest.dt_s.unwrap_or_default()),
        biggest.from.at.map(moment).unwrap_or_default()
    );
    out.review("track_jump", ITEM, msg);
}

/// Reports the longest stretch spent above walking speed, if it lasts long enough.
fn check_sustained(legs: &[Leg], t: &Thresholds, out: &mut Findings) {
    let mut longest = (0.0, 0.0, None);
    let mut run = (0.0, 0.0, None);
    for leg in legs {
        match leg.speed_kmh().filter(|s| *s > t.walking_speed_kmh) {
            Some(_) => {
                let dt = leg.dt_s.unwrap_or_default();
                run = (run.0 + dt, run.1 + leg.net_m, run.2.or(leg.from.at));
            }
            None => run = (0.0, 0.0, None),
        }
        if run.0 > longest.0 {
            longest = run;
        }
    }

    let (duration, distance, start) = longest;
    if duration < t.sustained_for_s || duration <= 0.0 {
        return;
    }
    let msg = format!(
        "the track moves faster than {:.0} km/h (walking pace) for {} from {}, \
         averaging {:.0} km/h",
        t.walking_speed_kmh,
        seconds(duration),
        start.map(moment).unwrap_or_default(),
        distance / duration * 3.6
    );
    out.info("track_fast_movement", ITEM, msg);
}

fn check_gaps(legs: &[Leg], t: &Thresholds, out: &mut Findings) -> (usize, Option<f64>) {
    let intervals = legs
        .iter()
        .filter_map(|l| l.dt_s.filter(|dt| *dt > 0.0).map(|dt| (dt, l)));
    let longest = intervals.clone().max_by(|a, b| a.0.total_cmp(&b.0));
    let gaps = intervals.filter(|(dt, _)| *dt > t.track_gap_s).count();

    if let Some((dt, leg)) = longest.filter(|_| gaps > 0) {
        let msg = format!(
            "the track has {gaps} gaps longer than {}; the longest lasts {} from {}",
            seconds(t.track_gap_s),
            seconds(dt),
            leg.from.at.map(moment).unwrap_or_default()
        );
        out.info("track_gap", ITEM, msg);
    }
    (gaps, longest.map(|(dt, _)| dt))
}

fn inside(point: &TrackPoint, site: &Site, t: &Thresholds) -> bool {
    let slack = point
        .accuracy_m
        .map(|a| t.accuracy_slack_m(a))
        .unwrap_or(0.0);
    distance_m(point.lat, point.lon, site.lat, site.lon) <= site.radius_m + slack
}

/// Time inside the geofence and closest approach, with a finding either way.
fn check_site(
    points: &[&TrackPoint],
    legs: &[Leg],
    site: &Site,
    t: &Thresholds,
    out: &mut Findings,
) -> (f64, f64) {
    let closest = points
        .iter()
        .map(|p| distance_m(p.lat, p.lon, site.lat, site.lon))
        .fold(f64::INFINITY, f64::min);
    let inside_points: Vec<&&TrackPoint> = points.iter().filter(|p| inside(p, site, t)).collect();

    let on_site_s: f64 = legs
        .iter()
        .filter(|l| inside(l.from, site, t) && inside(l.to, site, t))
        .filter_map(|l| l.dt_s.filter(|dt| *dt > 0.0 && *dt <= t.track_gap_s))
        .sum();

    if inside_points.is_empty() {
        let msg = format!(
            "the track never comes within {} of the site; its closest point is {} away",
            metres(site.radius_m),
            metres(closest)
        );
        out.review("track_never_on_site", ITEM, msg);
    } else {
        report_time_on_site(&inside_points, on_site_s, site, out);
    }
    (on_site_s, closest)
}

fn report_time_on_site(inside: &[&&TrackPoint], on_site_s: f64, site: &Site, out: &mut Findings) {
    let first = inside.iter().find_map(|p| p.at);
    let last = inside.iter().rev().find_map(|p| p.at);
    let span = match first.zip(last) {
        Some((a, b)) => format!(", between {} and {}", moment(a), moment(b)),
        None => String::new(),
    };

    let msg = format!(
        "the track spends {} within {} of the site ({} points inside{span})",
        seconds(on_site_s),
        metres(site.radius_m),
        inside.len()
    );
    out.info("track_time_on_site", ITEM, msg);
}

fn check_window(points: &[&TrackPoint], window: &Window, out: &mut Findings) {
    let timed: Vec<OffsetDateTime> = points.iter().filter_map(|p| p.at).collect();
    let outside: Vec<OffsetDateTime> = timed
        .iter()
        .copied()
        .filter(|at| !window.contains(*at))
        .collect();
    let Some(first) = outside.first() else {
        return;
    };

    let msg = format!(
        "{} of {} timed track points lie outside the work window {} – {} (the first at {})",
        outside.len(),
        timed.len(),
        moment(window.from),
        moment(window.to),
        moment(*first)
    );
    out.review("track_outside_window", ITEM, msg);
}
