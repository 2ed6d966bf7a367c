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

pub(crate) fn fix(fix: &Fix) -> Result<(), ClientError> {
    position(fix.lat, fix.lon)?;
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
