//! Distances on the WGS-84 sphere and the wording of distances, durations and times in
//! finding messages.

use geo::{Distance, Haversine, Point};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Great-circle (haversine) distance in metres between two WGS-84 positions in degrees.
pub(crate) fn distance_m(lat_a: f64, lon_a: f64, lat_b: f64, lon_b: f64) -> f64 {
    Haversine.distance(Point::new(lon_a, lat_a), Point::new(lon_b, lat_b))
}

/// Whether a latitude/longitude pair is a real position.
pub(crate) fn is_valid_position(lat: f64, lon: f64) -> bool {
    lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
}

/// "870 m" below a kilometre, "1.3 km" above, "9906 km" from 100 km on.
pub(crate) fn metres(m: f64) -> String {
    if m.abs() < 1000.0 {
        format!("{m:.0} m")
    } else if m.abs() < 100_000.0 {
        format!("{:.1} km", m / 1000.0)
    } else {
        format!("{:.0} km", m / 1000.0)
    }
}

/// "45 s", "4 min 10 s", "2 h 5 min" for a duration in seconds.
pub(crate) fn seconds(s: f64) -> String {
    let total = s.abs().round() as u64;
    let sign = if s < 0.0 { "-" } else { "" };

    let (hours, minutes, secs) = (total / 3600, total % 3600 / 60, total % 60);
    match (hours, minutes, secs) {
        (0, 0, s) => format!("{sign}{s} s"),
        (0, m, 0) => format!("{sign}{m} min"),
        (0, m, s) => format!("{sign}{m} min {s} s"),
        (h, 0, _) => format!("{sign}{h} h"),
        (h, m, _) => format!("{sign}{h} h {m} min"),
    }
}

/// "2008-10-22 14:28:39 UTC" for a moment, shown in UTC so messages compare easily.
pub(crate) fn moment(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    utc.format(format).unwrap_or_else(|_| utc.to_string())
}

/// "2008-10-22 16:28:39" for a camera time without a zone.
pub(crate) fn local_time(at: PrimitiveDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.format(format).unwrap_or_else(|_| at.to_string())
}

/// Signed seconds from `a` to `b`.
pub(crate) fn seconds_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let d = distance_m(0.0, 0.0, 1.0, 0.0);

        assert!((d - 111_195.0).abs() < 100.0, "{d}");
    }

    #[test]
    fn wording() {
        assert_eq!(metres(149.6), "150 m");
        assert_eq!(metres(1290.0), "1.3 km");
        assert_eq!(metres(9_905_500.0), "9906 km");
        assert_eq!(seconds(45.0), "45 s");
        assert_eq!(seconds(250.0), "4 min 10 s");
        assert_eq!(seconds(7500.0), "2 h 5 min");
        assert_eq!(seconds(300.0), "5 min");
        assert_eq!(seconds(-7200.0), "-2 h");
        assert_eq!(
            moment(time::macros::datetime!(2008-10-22 16:28:39 +2)),
            "2008-10-22 14:28:39 UTC"
        );
    }
}
