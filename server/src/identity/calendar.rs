//! Working days for deadlines counted in working days (the 2-working-day review of 5.1.3,
//! the 3-working-day account closure of 5.6.3).
//!
//! China's public holidays move: each year the State Council publishes the days off, and
//! some Saturdays or Sundays next to a holiday become working days (调休). Neither list can
//! be computed, so both come from the configuration:
//!
//! ```toml
//! [calendar]
//! holidays = ["2026-10-01", "2026-10-02"]
//! extra_working_days = ["2026-09-27"]
//! ```
//!
//! Dates are `YYYY-MM-DD` strings (not TOML date literals).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// Asia/Shanghai: UTC+8 all year, no daylight saving. Deadlines are counted in this zone.
pub const SHANGHAI: UtcOffset = time::macros::offset!(+8);

/// The last second of a day, the time of every deadline.
const END_OF_DAY: Time = time::macros::time!(23:59:59);

/// Which days are working days: Monday to Friday, except `holidays`, plus
/// `extra_working_days` (weekend days worked in exchange for a holiday).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// Public holidays: no work even on a weekday. Weekend days may be listed too.
    #[serde(default, with = "date_set")]
    pub holidays: BTreeSet<Date>,
    /// Saturdays and Sundays that are working days (调休).
    #[serde(default, with = "date_set")]
    pub extra_working_days: BTreeSet<Date>,
}

/// A calendar configuration that contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A date is listed both as a holiday and as an extra working day.
    #[error("{0} is listed both as a holiday and as an extra working day")]
    Both(Date),
    /// An extra working day that is a weekday (a working day anyway): most likely a typo.
    #[error("extra working day {0} is a weekday, not a Saturday or Sunday")]
    WeekdayAsExtra(Date),
}

impl Calendar {
    /// Checks the configuration: no date in both lists, and every extra working day a
    /// Saturday or Sunday. (If a date were in both lists anyway, it counts as a holiday.)
    pub fn validate(&self) -> Result<(), CalendarError> {
        if let Some(date) = self.holidays.intersection(&self.extra_working_days).next() {
            return Err(CalendarError::Both(*date));
        }
        if let Some(date) = self.extra_working_days.iter().find(|d| !is_weekend(**d)) {
            return Err(CalendarError::WeekdayAsExtra(*date));
        }
        Ok(())
    }

    /// Whether `date` is a working day: a listed holiday never is, a listed extra working day
    /// always is, and otherwise Monday to Friday are.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.holidays.contains(&date) {
            false
        } else if self.extra_working_days.contains(&date) {
            true
        } else {
            !is_weekend(date)
        }
    }

    /// The deadline `n` working days after `start`, in the time zone `offset` (use
    /// [`SHANGHAI`]).
    ///
    /// Let D be `start`'s calendar date in `offset`. The deadline is 23:59:59 (in `offset`)
    /// of the `n`-th working day after D, counting only days after D: the day of submission
    /// never counts, whether or not it is a working day and whatever the time of day. A
    /// submission at any time on Friday 2026-12-04 with `n = 2` is due at the end of Tuesday
    /// 2026-12-08; one on Saturday 2026-12-05 or Sunday 2026-12-06 likewise. With `n = 0`
    /// the deadline is the end of D itself. The result carries `offset`; a deadline has
    /// passed when the current instant is later than it. Past the last representable date
    /// the result saturates at the end of that date.
    pub fn add_working_days(
        &self,
        start: OffsetDateTime,
        n: u32,
        offset: UtcOffset,
    ) -> OffsetDateTime {
        let mut date = start.to_offset(offset).date();
        let mut left = n;
        while left > 0 {
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        PrimitiveDateTime::new(date, END_OF_DAY).assume_offset(offset)
    }
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// (De)serializes a set of dates as a list of `YYYY-MM-DD` strings.
mod date_set {
    use std::collections::BTreeSet;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::format_description::BorrowedFormatItem;

    const FORMAT: &[BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]");

    pub fn serialize<S: Serializer>(dates: &BTreeSet<Date>, s: S) -> Result<S::Ok, S::Error> {
        let texts = dates
            .iter()
            .map(|d| d.format(FORMAT))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::ser::Error::custom)?;
        s.collect_seq(texts)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Date>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                Date::parse(t.trim(), FORMAT).map_err(|e| {
                    D::Error::custom(format!("calendar date {t:?} is not YYYY-MM-DD: {e}"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    /// The 2026 National Day example: 1–7 October off, Sunday 27 September and Saturday
    /// 10 October worked (an example for tests, not an authoritative list).
    fn national_day_2026() -> Calendar {
        toml::from_str(
            r#"
            holidays = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
                        "2026-10-05", "2026-10-06", "2026-10-07"]
            extra_working_days = ["2026-09-27", "2026-10-10"]
            "#,
        )
        .unwrap()
    }

    fn deadline(cal: &Calendar, start: OffsetDateTime, n: u32) -> OffsetDateTime {
        cal.add_working_days(start, n, SHANGHAI)
    }

    #[test]
    fn plain_weeks() {
        let cal = Calendar::default();
        // Friday, Saturday, Sunday, Monday.
        assert!(cal.is_working_day(date!(2026 - 12 - 04)));
        assert!(!cal.is_working_day(date!(2026 - 12 - 05)));
        assert!(!cal.is_working_day(date!(2026 - 12 - 06)));
        assert!(cal.is_working_day(date!(2026 - 12 - 07)));
    }

    #[test]
    fn friday_plus_two_is_end_of_tuesday() {
        let cal = Calendar::default();
        let due = datetime!(2026-12-08 23:59:59 +8);
        for start in [
            datetime!(2026-12-04 00:00:00 +8),
            datetime!(2026-12-04 09:30:00 +8),
            datetime!(2026-12-04 23:59:59 +8),
            // Friday in Shanghai, still Thursday in UTC.
            datetime!(2026-12-03 16:00:00 UTC),
            // Saturday and Sunday submissions are due on the same Tuesday.
            datetime!(2026-12-05 12:00:00 +8),
            datetime!(2026-12-06 23:00:00 +8),
        ] {
            let got = deadline(&cal, start, 2);
            assert_eq!(got, due, "{start}");
            assert_eq!(got.offset(), SHANGHAI);
        }
        // Midnight Saturday in Shanghai is Friday 16:00 UTC: the day is Saturday.
        let got = deadline(&cal, datetime!(2026-12-04 16:00:00 UTC), 2);
        assert_eq!(got, due);
        // Thursday 23:59:59 in Shanghai is due Monday.
        let got = deadline(&cal, datetime!(2026-12-03 23:59:59 +8), 2);
        assert_eq!(got, datetime!(2026-12-07 23:59:59 +8));
    }

    #[test]
    fn weekdays_within_a_week() {
        let cal = Calendar::default();
        let monday = datetime!(2026-12-07 10:00:00 +8);
        assert_eq!(deadline(&cal, monday, 1), datetime!(2026-12-08 23:59:59 +8));
        assert_eq!(deadline(&cal, monday, 2), datetime!(2026-12-09 23:59:59 +8));
        assert_eq!(deadline(&cal, monday, 4), datetime!(2026-12-11 23:59:59 +8));
        assert_eq!(deadline(&cal, monday, 5), datetime!(2026-12-14 23:59:59 +8));
        assert_eq!(
            deadline(&cal, monday, 10),
            datetime!(2026-12-21 23:59:59 +8)
        );
    }

    #[test]
    fn zero_working_days_is_the_end_of_the_same_day() {
        let cal = Calendar::default();
        let saturday = datetime!(2026-12-05 08:00:00 +8);
        assert_eq!(
            deadline(&cal, saturday, 0),
            datetime!(2026-12-05 23:59:59 +8)
        );
    }

    #[test]
    fn holidays_in_the_span_are_skipped() {
        let cal = national_day_2026();
        // Thursday 1 and Monday 5 October are holidays.
        assert!(!cal.is_working_day(date!(2026 - 10 - 01)));
        assert!(!cal.is_working_day(date!(2026 - 10 - 05)));
        // Wednesday 30 September + 2: 1–7 October off, Thursday 8 and Friday 9 count.
        let got = deadline(&cal, datetime!(2026-09-30 15:00:00 +8), 2);
        assert_eq!(got, datetime!(2026-10-09 23:59:59 +8));
        // Submitted during the holiday.
        let got = deadline(&cal, datetime!(2026-10-03 11:00:00 +8), 1);
        assert_eq!(got, datetime!(2026-10-08 23:59:59 +8));
    }

    #[test]
    fn make_up_working_saturday_counts() {
        let cal = national_day_2026();
        // Saturday 10 October is worked, Sunday 11 is not.
        assert!(cal.is_working_day(date!(2026 - 10 - 10)));
        assert!(!cal.is_working_day(date!(2026 - 10 - 11)));
        // Thursday 8 October + 2: Friday 9, Saturday 10 (make-up day).
        let got = deadline(&cal, datetime!(2026-10-08 09:00:00 +8), 2);
        assert_eq!(got, datetime!(2026-10-10 23:59:59 +8));
        // Without the make-up day it would be Monday 12.
        let got = deadline(&Calendar::default(), datetime!(2026-10-08 09:00:00 +8), 2);
        assert_eq!(got, datetime!(2026-10-12 23:59:59 +8));
        // Saturday 26 September + 1: Sunday 27 is worked.
        let got = deadline(&cal, datetime!(2026-09-26 09:00:00 +8), 1);
        assert_eq!(got, datetime!(2026-09-27 23:59:59 +8));
    }

    #[test]
    fn a_holiday_listed_as_extra_working_day_counts_as_holiday_and_fails_validation() {
        let mut cal = national_day_2026();
        assert_eq!(cal.validate(), Ok(()));
        cal.extra_working_days.insert(date!(2026 - 10 - 03));
        assert!(!cal.is_working_day(date!(2026 - 10 - 03)));
        assert_eq!(
            cal.validate(),
            Err(CalendarError::Both(date!(2026 - 10 - 03)))
        );
    }

    #[test]
    fn weekday_extra_working_days_fail_validation() {
        let mut cal = Calendar::default();
        cal.extra_working_days.insert(date!(2026 - 12 - 07));
        assert_eq!(
            cal.validate(),
            Err(CalendarError::WeekdayAsExtra(date!(2026 - 12 - 07)))
        );
    }

    #[test]
    fn other_offsets_are_honoured() {
        let cal = Calendar::default();
        // Friday 20:00 UTC is Saturday in Shanghai but still Friday in UTC.
        let start = datetime!(2026-12-04 20:00:00 UTC);
        assert_eq!(
            cal.add_working_days(start, 1, UtcOffset::UTC),
            datetime!(2026-12-07 23:59:59 UTC)
        );
        assert_eq!(
            cal.add_working_days(start, 1, SHANGHAI),
            datetime!(2026-12-07 23:59:59 +8)
        );
    }

    #[test]
    fn saturates_at_the_last_date() {
        let cal = Calendar::default();
        let start = datetime!(9999-12-30 12:00:00 +8);
        let got = deadline(&cal, start, 1000);
        assert_eq!(got.date(), Date::MAX);
        assert_eq!(got.time(), END_OF_DAY);
    }

    #[test]
    fn deserializes_from_toml_and_json() {
        let cal = national_day_2026();
        assert_eq!(cal.holidays.len(), 7);
        assert!(cal.holidays.contains(&date!(2026 - 10 - 07)));
        assert!(cal.extra_working_days.contains(&date!(2026 - 09 - 27)));

        let cal: Calendar = serde_json::from_str(r#"{"holidays": ["2026-10-01"]}"#).unwrap();
        assert_eq!(cal.holidays.len(), 1);
        assert!(cal.extra_working_days.is_empty());

        let empty: Calendar = toml::from_str("").unwrap();
        assert_eq!(empty, Calendar::default());
    }

    #[test]
    fn bad_dates_are_rejected_with_the_date_named() {
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026/10/01",
            "20261001",
            "tomorrow",
        ] {
            let text = format!("holidays = [\"{bad}\"]");
            let err = toml::from_str::<Calendar>(&text).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn serializes_back_to_date_strings() {
        let cal = national_day_2026();
        let json = serde_json::to_string(&cal).unwrap();
        assert!(
            json.contains(r#""extra_working_days":["2026-09-27","2026-10-10"]"#),
            "{json}"
        );
        let back: Calendar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cal);
    }
}
