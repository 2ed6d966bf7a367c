//! Checks on recorded values, so nothing malformed reaches a document.

use flexwork_sync::{Fix, StrokePoint, TrackPoint};

use crate::ClientError;

/// Largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: usize = 64 * 1024 * 1024;
/// Most points in one track append.
pub const MAX_TRACK_POINTS: usize = 200_000;
/// Most points in one signature, over all strokes.
pub const MAX_SIGNATURE_POINTS: usize = 20_000;

pub(crate) fn media(bytes: &[u8], media_type: &str) -> Result<(), ClientError> {
    if bytes.is_empty() || bytes.len() > MAX_PHOTO_BYTES {
        let message = format!(
            "a photo has 1 to {MAX_PHOTO_BYTES} bytes, got {}",
            bytes.len()
        );
        return Err(ClientError::invalid(message));
    }
    let Some((kind, sub)) = media_type.split_once('/') else {
        return Err(ClientError::invalid(format!(
            "media type {media_type:?} has no '/'"
        )));
    };
    if kind != "image" || sub.is_empty() || media_type.len() > 100 {
        return Err(ClientError::invalid(format!(
            "media type {media_type:?} is not an image"
        )));
    }
    Ok(())
}

/// The latest instant a record may carry: 9999-12-31T23:59:59.999Z, the last one RFC 3339
/// (and so the server) can write.
const LATEST_MS: i64 = 253_402_300_799_999;

/// A time the phone recorded, in ms since 1970 UTC. A phone whose clock was reset reads 1970
/// and that is kept (the server judges the times); only what no calendar can show is refused.
pub(crate) fn time(what: &str, at_ms: i64) -> Result<(), ClientError> {
    if !(0..=LATEST_MS).contains(&at_ms) {
        let message = format!(
            "{what} {at_ms} is not a time: give milliseconds since 1970-01-01 UTC, \
             up to the year 9999"
        );
        return Err(ClientError::invalid(message));
    }
    Ok(())
}

pub(crate) fn fix(fix: &Fix) -> Result<(), ClientError> {
    position(fix.lat, fix.lon)?;
    time("the fix's time", fix.at_ms)?;
    if !fix.accuracy_m.is_finite() || fix.accuracy_m < 0.0 {
        let message = format!("fix accuracy {} m is not a distance", fix.accuracy_m);
        return Err(ClientError::invalid(message));
    }
    Ok(())
}

pub(crate) fn track(points: &[TrackPoint]) -> Result<(), ClientError> {
    if points.is_empty() || points.len() > MAX_TRACK_POINTS {
        let message = format!("a track append has 1 to {MAX_TRACK_POINTS} points");
        return Err(ClientError::invalid(message));
    }
    for point in points {
        position(point.lat, point.lon)?;
        if let Some(at_ms) = point.at_ms {
            time("a track point's time", at_ms)?;
        }
        let extras = [point.accuracy_m, point.elevation_m];
        if extras.iter().flatten().any(|v| !v.is_finite()) {
            return Err(ClientError::invalid(
                "track point accuracy or elevation is not finite",
            ));
        }
    }
    Ok(())
}

pub(crate) fn strokes(strokes: &[Vec<StrokePoint>]) -> Result<(), ClientError> {
    let total: usize = strokes.iter().map(Vec::len).sum();
    if total == 0 || total > MAX_SIGNATURE_POINTS {
        let message = format!("a signature has 1 to {MAX_SIGNATURE_POINTS} points");
        return Err(ClientError::invalid(message));
    }
    let finite = |p: &StrokePoint| p.x.is_finite() && p.y.is_finite() && p.pressure.is_finite();
    if !strokes.iter().flatten().all(finite) {
        return Err(ClientError::invalid("signature point is not finite"));
    }
    Ok(())
}

fn position(lat: f64, lon: f64) -> Result<(), ClientError> {
    let valid = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
    if !valid {
        return Err(ClientError::invalid(format!(
            "position {lat}, {lon} is not on earth"
        )));
    }
    Ok(())
}
