//! Query filters shared by lists: a period of creation times, and pages (`limit`, `cursor`).

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time, UtcOffset};

use crate::error::{ApiError, ApiResult};

/// The creation-time bounds (ms since the epoch, both inclusive) of `from` and `to`, each an
/// RFC 3339 date-time or a date. A date is a day in China Standard Time (UTC+8): `from` is
/// its first millisecond, `to` its last. Absent bounds are open.
pub fn period(from: Option<&str>, to: Option<&str>) -> ApiResult<(i64, i64)> {
    let from = match from.filter(|s| !s.is_empty()) {
        Some(text) => bound(text, "from", false)?,
        None => i64::MIN,
    };
    let to = match to.filter(|s| !s.is_empty()) {
        Some(text) => bound(text, "to", true)?,
        None => i64::MAX,
    };
    Ok((from, to))
}

fn bound(text: &str, field: &'static str, end_of_day: bool) -> ApiResult<i64> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(ms(at));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(date) = Date::parse(text, &format) else {
        let message = format!(
            "{field} is not a date (2026-12-01) or an RFC 3339 date-time \
             (2026-12-01T08:00:00+08:00)"
        );
        return Err(ApiError::bad_request("invalid_query", message).field(field));
    };
    let shanghai = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    let start = date.with_time(Time::MIDNIGHT).assume_offset(shanghai);
    Ok(if end_of_day {
        ms(start) + 86_400_000 - 1
    } else {
        ms(start)
    })
}

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Items a page of a list holds when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;
/// The most items one page holds.
pub const MAX_PAGE: usize = 500;

pub fn page_limit(limit: Option<&str>) -> ApiResult<usize> {
    let Some(text) = limit else {
        return Ok(DEFAULT_PAGE);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => {
            let message = format!("limit is a whole number from 1 to {MAX_PAGE}");
            Err(ApiError::bad_request("invalid_query", message).field("limit"))
        }
    }
}

/// A cursor: the creation time and id of the last item of a page, opaque to clients.
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> ApiResult<(i64, String)> {
    use base64::Engine;
    let refused = || {
        let message = "cursor is not one this list gave: pass the X-Next-Cursor header of \
                       the previous page as it came";
        ApiError::bad_request("invalid_query", message).field("cursor")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    let (created_at, id) = text.split_once(':').ok_or_else(refused)?;
    let created_at = created_at.parse().map_err(|_| refused())?;
    if id.is_empty() {
        return Err(refused());
    }
    Ok((created_at, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_in_china_and_date_times_are_exact() {
        let (from, to) = period(Some("2026-12-01"), Some("2026-12-01")).unwrap();
        // 2026-12-01T00:00:00+08:00 is 2026-11-30T16:00:00Z.
        assert_eq!(from, 1_796_054_400_000);
        assert_eq!(to - from, 86_400_000 - 1);
        let (from, _) = period(Some("2026-12-01T00:00:00Z"), None).unwrap();
        assert_eq!(from, 1_796_083_200_000);
    }

    #[test]
    fn a_bad_bound_names_its_field() {
        let error = period(Some("2026-12-01"), Some("yesterday")).unwrap_err();
        assert_eq!(error.code, "invalid_query");
        assert_eq!(error.field, Some("to"));
    }
}
