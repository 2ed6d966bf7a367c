//! The numbers the checks compare against, with the defaults from the field practice
//! described in `spec/DOMAIN.md` ("Evidence: what practice uses").

use serde::{Deserialize, Serialize};

/// Limits used by [`verify`](super::verify) and [`analyze_photo`](super::analyze_photo).
///
/// The server reads it from the `[verification]` table of its configuration; every field may be
/// left out there and then takes the default shown on the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Geofence radius in metres used when a site is given without one (the `--radius`
    /// default of `flexwork verify`). Default 150 m; gig apps use 100–250 m.
    pub default_radius_m: f64,

    /// Largest accuracy slack in metres added to a site's radius: a fix is on site when
    /// `distance ≤ radius + min(accuracy, cap)`. Default 50 m.
    pub accuracy_slack_cap_m: f64,

    /// A fix whose accuracy radius is worse (larger) than this many metres is unusable and a
    /// new fix should be asked for. Default 100 m.
    pub max_accuracy_m: f64,

    /// Fastest plausible speed between two track points in km/h, after subtracting both
    /// points' accuracy radii from the distance. Default 200 km/h.
    pub max_speed_kmh: f64,

    /// A move of more than this many metres (after subtracting accuracy radii)…
    pub jump_distance_m: f64,

    /// …within less than this many seconds is a jump. Defaults 1000 m in 10 s.
    pub jump_within_s: f64,

    /// Speed in km/h above which sustained movement is reported as faster than walking.
    /// Default 15 km/h (e-bikes are limited to 25 km/h by law).
    pub walking_speed_kmh: f64,

    /// How long in seconds movement must stay above `walking_speed_kmh` to be reported.
    /// Default 120 s.
    pub sustained_for_s: f64,

    /// Seconds between two consecutive track points above which the track has a gap.
    /// Default 300 s.
    pub track_gap_s: f64,

    /// Allowed disagreement in seconds between the phone's clock, the EXIF clock and the GPS
    /// clock of one photo. Default 300 s.
    pub max_clock_skew_s: f64,

    /// Largest image accepted for decoding, in pixels (width × height). Default 40 megapixels.
    pub max_pixels: u64,

    /// Largest memory the image decoder may allocate, in bytes. Default 256 MiB.
    pub max_decoder_alloc_bytes: u64,

    /// Two 64-bit difference hashes at most this many bits apart are near duplicates.
    /// Default 10 bits.
    pub near_duplicate_bits: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            default_radius_m: 150.0,
            accuracy_slack_cap_m: 50.0,
            max_accuracy_m: 100.0,
            max_speed_kmh: 200.0,
            jump_distance_m: 1000.0,
            jump_within_s: 10.0,
            walking_speed_kmh: 15.0,
            sustained_for_s: 120.0,
            track_gap_s: 300.0,
            max_clock_skew_s: 300.0,
            max_pixels: 40_000_000,
            max_decoder_alloc_bytes: 256 * 1024 * 1024,
            near_duplicate_bits: 10,
        }
    }
}

impl Thresholds {
    /// The slack in metres granted for a fix with the given accuracy radius.
    pub fn accuracy_slack_m(&self, accuracy_m: f64) -> f64 {
        if accuracy_m.is_finite() && accuracy_m > 0.0 {
            accuracy_m.min(self.accuracy_slack_cap_m)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_toml_table_keeps_the_other_defaults() {
        let parsed: Thresholds = toml::from_str("max_speed_kmh = 120.0").unwrap();

        assert_eq!(parsed.max_speed_kmh, 120.0);
        assert_eq!(parsed.default_radius_m, 150.0);
        assert_eq!(parsed.near_duplicate_bits, 10);
    }

    #[test]
    fn slack_is_capped() {
        let t = Thresholds::default();

        assert_eq!(t.accuracy_slack_m(20.0), 20.0);
        assert_eq!(t.accuracy_slack_m(80.0), 50.0);
        assert_eq!(t.accuracy_slack_m(f64::NAN), 0.0);
    }
}
