//! What a photo file says about itself: its media type and the GPS fix in its EXIF tags.

use std::io::Cursor;

use exif::{DateTime, Exif, In, Tag, Value};
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// A position and time read from a photo's EXIF GPS tags.
#[derive(Debug, Clone, PartialEq)]
pub struct ExifFix {
    pub lat: f64,
    pub lon: f64,
    /// The GPS time stamp, or else the original capture time, in ms since the epoch.
    pub at_ms: Option<i64>,
    /// `GPSHPositioningError`, when the camera wrote one.
    pub accuracy_m: Option<f64>,
}

/// The media type of an image by its first bytes.
pub fn sniff_media_type(bytes: &[u8]) -> Option<&'static str> {
    let brand = bytes.get(8..12);
    match bytes {
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ if bytes.get(4..8) == Some(b"ftyp") && is_heif_brand(brand) => Some("image/heic"),
        _ => None,
    }
}

fn is_heif_brand(brand: Option<&[u8]>) -> bool {
    let brands: [&[u8]; 4] = [b"heic", b"heix", b"mif1", b"msf1"];
    brand.is_some_and(|b| brands.contains(&b))
}

/// The GPS position of a photo, if its EXIF has one.
pub fn read_exif_fix(bytes: &[u8]) -> Option<ExifFix> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()?;
    let lat = coordinate(&exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?;
    let lon = coordinate(&exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }

    let accuracy_m = rationals(&exif, Tag::GPSHPositioningError)
        .and_then(|v| v.first().copied())
        .filter(|m| m.is_finite() && *m >= 0.0);
    let at_ms = gps_time_ms(&exif).or_else(|| original_time_ms(&exif));
    Some(ExifFix {
        lat,
        lon,
        at_ms,
        accuracy_m,
    })
}

fn rationals(exif: &Exif, tag: Tag) -> Option<Vec<f64>> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Rational(values) => Some(values.iter().map(|r| r.to_f64()).collect()),
        _ => None,
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<Vec<u8>> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(values) => values.first().cloned(),
        _ => None,
    }
}

/// Degrees, minutes, seconds and a hemisphere reference, as signed decimal degrees.
fn coordinate(exif: &Exif, tag: Tag, reference: Tag, negative: u8) -> Option<f64> {
    let dms = rationals(exif, tag)?;
    let [degrees, minutes, seconds] = dms.get(..3)? else {
        return None;
    };
    let value = degrees + minutes / 60.0 + seconds / 3600.0;
    let sign = match ascii(exif, reference)?.first() {
        Some(r) if r.eq_ignore_ascii_case(&negative) => -1.0,
        _ => 1.0,
    };
    value.is_finite().then_some(sign * value)
}

/// `GPSDateStamp` + `GPSTimeStamp`, which are UTC.
fn gps_time_ms(exif: &Exif) -> Option<i64> {
    let date = ascii(exif, Tag::GPSDateStamp)?;
    let hms = rationals(exif, Tag::GPSTimeStamp)?;
    let [hour, minute, second] = hms.get(..3)? else {
        return None;
    };
    let text = std::str::from_utf8(&date).ok()?;
    let mut parts = text.trim().split(':').map(|p| p.parse::<i32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);

    let date = Date::from_calendar_date(year, month_of(month)?, u8::try_from(day).ok()?).ok()?;
    let seconds = hour * 3600.0 + minute * 60.0 + second;
    let midnight = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
    let ms = midnight.unix_timestamp() * 1000 + (seconds * 1000.0) as i64;
    seconds.is_finite().then_some(ms)
}

/// `DateTimeOriginal` with `OffsetTimeOriginal`; without an offset the time is taken as UTC.
fn original_time_ms(exif: &Exif) -> Option<i64> {
    let mut taken = DateTime::from_ascii(&ascii(exif, Tag::DateTimeOriginal)?).ok()?;
    if let Some(offset) = ascii(exif, Tag::OffsetTimeOriginal) {
        taken.parse_offset(&offset).ok()?;
    }
    let month = month_of(i32::from(taken.month))?;
    let date = Date::from_calendar_date(i32::from(taken.year), month, taken.day).ok()?;
    let time = Time::from_hms(taken.hour, taken.minute, taken.second).ok()?;

    let offset_s = i32::from(taken.offset.unwrap_or(0)) * 60;
    let offset = UtcOffset::from_whole_seconds(offset_s).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    Some(at.unix_timestamp() * 1000)
}

fn month_of(number: i32) -> Option<Month> {
    Month::try_from(u8::try_from(number).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/photos/");
        std::fs::read(format!("{dir}{name}")).expect("fixture photo")
    }

    #[test]
    fn a_gps_tagged_camera_photo_yields_a_position_in_arezzo_and_a_time() {
        let fix = read_exif_fix(&fixture("DSCN0010.jpg")).expect("gps tags");

        assert!((43.0..44.0).contains(&fix.lat), "{fix:?}");
        assert!((11.0..12.5).contains(&fix.lon), "{fix:?}");
        let at = fix.at_ms.expect("a time");
        assert!(
            (1_222_819_200_000..1_225_497_600_000).contains(&at),
            "october 2008: {at}"
        );
    }

    #[test]
    fn a_photo_without_gps_tags_has_no_fix() {
        assert_eq!(read_exif_fix(&fixture("jolla-no-gps.jpg")), None);
        assert_eq!(read_exif_fix(b"not an image"), None);
    }

    #[test]
    fn media_types_are_sniffed_from_the_first_bytes() {
        assert_eq!(
            sniff_media_type(&fixture("DSCN0010.jpg")),
            Some("image/jpeg")
        );
        assert_eq!(sniff_media_type(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(sniff_media_type(b"\0\0\0\x18ftypheic"), Some("image/heic"));
        assert_eq!(sniff_media_type(b"%PDF-1.4"), None);
    }
}
