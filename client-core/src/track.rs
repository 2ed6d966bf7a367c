//! Reading trajectories from GPX files.

use std::io::{BufReader, Read};

use flexwork_sync::TrackPoint;
use time::OffsetDateTime;

use crate::ClientError;

/// Every point of every track and segment, in file order; times become ms since the epoch.
pub(crate) fn read_gpx<R: Read>(reader: R) -> Result<Vec<TrackPoint>, ClientError> {
    let gpx = gpx::read(BufReader::new(reader)).map_err(|e| gpx_error(&e))?;
    let points: Vec<TrackPoint> = gpx
        .tracks
        .iter()
        .flat_map(|track| &track.segments)
        .flat_map(|segment| &segment.points)
        .map(to_point)
        .collect();

    if points.is_empty() {
        return Err(ClientError::Gpx("the file has no track points".into()));
    }
    Ok(points)
}

fn to_point(waypoint: &gpx::Waypoint) -> TrackPoint {
    let point = waypoint.point();
    TrackPoint {
        lat: point.y(),
        lon: point.x(),
        at_ms: waypoint.time.map(|t| unix_ms(t.into())),
        accuracy_m: None,
        elevation_m: waypoint.elevation.filter(|e| e.is_finite()),
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn gpx_error(error: &gpx::errors::GpxError) -> ClientError {
    let text = error.to_string();
    let mut chars = text.chars();
    let lower = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::from("unknown error"),
    };
    ClientError::Gpx(lower)
}
