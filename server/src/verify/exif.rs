//! Reading the EXIF facts verification uses: GPS position and time stamp, the camera's capture
//! time, orientation and the camera that made the file.

use std::io::Cursor;

use exif::{Exif, Field, In, Rational, Tag, Value};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

time::serde::format_description!(
    local_time,
    PrimitiveDateTime,
    "[year]-[month]-[day]T[hour]:[minute]:[second]"
);

/// `local_time::option`, also reading `null` where serde buffers it as a unit (inside a
/// flattened struct, as in a stored report's photos), which the generated module refuses.
mod local_time_option {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::PrimitiveDateTime;

    pub fn serialize<S: Serializer>(
        value: &Option<PrimitiveDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        super::local_time::option::serialize(value, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PrimitiveDateTime>, D::Error> {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| PrimitiveDateTime::parse(&t, &format).map_err(D::Error::custom))
            .transpose()
    }
}

/// A position written by the camera into the EXIF GPS tags (WGS-84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExifPosition {
    /// Latitude in degrees, north positive.
    pub lat: f64,
    /// Longitude in degrees, east positive.
    pub lon: f64,
    /// `GPSHPositioningError` in metres, when the camera wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_m: Option<f64>,
}

/// The EXIF facts of one photo. Every field is absent when the tag is absent or unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExifFacts {
    /// The GPS position.
    pub gps: Option<ExifPosition>,
    /// `GPSDateStamp` + `GPSTimeStamp`, which are in UTC.
    #[serde(with = "time::serde::rfc3339::option")]
    pub gps_time: Option<OffsetDateTime>,
    /// `DateTimeOriginal` as written: the camera's local clock, without a time zone.
    #[serde(with = "local_time_option")]
    pub date_time_original: Option<PrimitiveDateTime>,
    /// `OffsetTimeOriginal` as written, for example `+08:00`.
    pub offset_time_original: Option<String>,
    /// `DateTimeOriginal` placed in time with `OffsetTimeOriginal`, when both are present.
    #[serde(with = "time::serde::rfc3339::option")]
    pub taken_at: Option<OffsetDateTime>,
    /// `Orientation` (1 = upright, 6 = rotate 90° clockwise to display, …).
    pub orientation: Option<u16>,
    /// `Make` of the camera or phone.
    pub make: Option<String>,
    /// `Model` of the camera or phone.
    pub model: Option<String>,
    /// `Software` that wrote the file last.
    pub software: Option<String>,
}

/// Reads the EXIF facts from an image file's bytes (JPEG, TIFF, PNG, WebP or HEIF).
///
/// Returns `Ok(None)` when the file has no EXIF block and an error message when the block is
/// present but broken beyond use. Fields that fail to parse on their own are left out.
pub(crate) fn read_exif(bytes: &[u8]) -> Result<Option<ExifFacts>, String> {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);

    let parsed = reader
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_| ()));

    match parsed {
        Ok(exif) => Ok(Some(facts_of(&exif))),
        Err(exif::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn facts_of(exif: &Exif) -> ExifFacts {
    let date_time_original = local_time_of(exif);
    let offset_time_original = ascii(exif, Tag::OffsetTimeOriginal);
    let offset = offset_time_original.as_deref().and_then(parse_offset);

    ExifFacts {
        gps: position(exif),
        gps_time: gps_time(exif),
        date_time_original,
        taken_at: date_time_original
            .zip(offset)
            .map(|(dt, off)| dt.assume_offset(off)),
        offset_time_original,
        orientation: field(exif, Tag::Orientation)
            .and_then(|f| f.value.get_uint(0))
            .map(to_u16),
        make: ascii(exif, Tag::Make),
        model: ascii(exif, Tag::Model),
        software: ascii(exif, Tag::Software),
    }
}

fn to_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn field(exif: &Exif, tag: Tag) -> Option<&Field> {
    exif.get_field(tag, In::PRIMARY)
}

/// The first string of an ASCII tag, trimmed of padding; absent when empty.
fn ascii(exif: &Exif, tag: Tag) -> Option<String> {
    let Value::Ascii(values) = &field(exif, tag)?.value else {
        return None;
    };

    let raw = values.first()?;
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_owned())
}

fn rationals(exif: &Exif, tag: Tag) -> Option<&[Rational]> {
    match &field(exif, tag)?.value {
        Value::Rational(values) => Some(values),
        _ => None,
    }
}

/// Degrees, minutes, seconds as three rationals → decimal degrees.
fn degrees(dms: &[Rational]) -> Option<f64> {
    let [d, m, s] = dms.get(..3)? else {
        return None;
    };

    let parts = [d, m, s].map(|r| (r.denom != 0).then(|| r.to_f64()));
    let [Some(d), Some(m), Some(s)] = parts else {
        return None;
    };
    Some(d + m / 60.0 + s / 3600.0)
}

fn signed_degrees(exif: &Exif, value: Tag, reference: Tag, negative: &str) -> Option<f64> {
    let magnitude = degrees(rationals(exif, value)?)?;
    let sign = match ascii(exif, reference) {
        Some(r) if r.eq_ignore_ascii_case(negative) => -1.0,
        _ => 1.0,
    };

    Some(sign * magnitude)
}

fn position(exif: &Exif) -> Option<ExifPosition> {
    let lat = signed_degrees(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, "S")?;
    let lon = signed_degrees(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, "W")?;
    if !super::geo::is_valid_position(lat, lon) {
        return None;
    }

    let error_m = rationals(exif, Tag::GPSHPositioningError)
        .and_then(|r| r.first())
        .filter(|r| r.denom != 0)
        .map(Rational::to_f64);
    Some(ExifPosition { lat, lon, error_m })
}

/// `GPSDateStamp` ("YYYY:MM:DD") with `GPSTimeStamp` (three rationals), both UTC.
fn gps_time(exif: &Exif) -> Option<OffsetDateTime> {
    let date = ascii(exif, Tag::GPSDateStamp)?;
    let date = parse_date(&date)?;

    let hms = rationals(exif, Tag::GPSTimeStamp)?;
    let [h, m, s] = hms.get(..3)? else {
        return None;
    };
    let seconds = [h, m, s].map(|r| if r.denom == 0 { f64::NAN } else { r.to_f64() });
    let total = seconds[0] * 3600.0 + seconds[1] * 60.0 + seconds[2];
    if !(0.0..86_400.0).contains(&total) {
        return None;
    }

    let midnight = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
    Some(midnight + time::Duration::seconds_f64(total))
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.split([':', '-']).map(|p| p.trim().parse::<i32>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };

    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()
}

/// `DateTimeOriginal`, falling back to `DateTime` of the primary image.
fn local_time_of(exif: &Exif) -> Option<PrimitiveDateTime> {
    [Tag::DateTimeOriginal, Tag::DateTime]
        .into_iter()
        .find_map(|tag| ascii(exif, tag).and_then(|text| parse_local_time(&text)))
}

fn parse_local_time(text: &str) -> Option<PrimitiveDateTime> {
    let dt = exif::DateTime::from_ascii(text.as_bytes()).ok()?;
    let month = Month::try_from(dt.month).ok()?;
    let date = Date::from_calendar_date(i32::from(dt.year), month, dt.day).ok()?;
    let time = Time::from_hms(dt.hour, dt.minute, dt.second).ok()?;

    Some(PrimitiveDateTime::new(date, time))
}

/// "+08:00" / "-05:30" → an offset.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    let mut dt = exif::DateTime::from_ascii(b"2000:01:01 00:00:00").ok()?;
    dt.parse_offset(text.as_bytes()).ok()?;

    let minutes = i32::from(dt.offset?);
    UtcOffset::from_whole_seconds(minutes * 60).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("garbage"), None);
    }

    #[test]
    fn dates_parse() {
        assert_eq!(
            parse_date("2008:10:22"),
            Date::from_calendar_date(2008, Month::October, 22).ok()
        );
        assert_eq!(parse_date("2008:13:22"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn text_is_not_an_exif_container() {
        assert!(read_exif(b"hello, this is not an image").is_err());
    }
}
