//! The resident ID number (居民身份证号码, GB 11643-1999).

use serde::Serialize;
use time::{Date, Month};

use super::mask::mask_id_number;

/// Weights of positions 1–17 for the check character.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for `Σ(digit × weight) mod 11` = 0..10.
const CHECK: [u8; 11] = *b"10X98765432";

/// Youngest age admitted (5.1.1 a): 18 on the application date.
const MIN_AGE: u32 = 18;
/// First age no longer admitted: the applicant must be under 65.
const MAX_AGE_EXCLUSIVE: u32 = 65;

/// Why an ID number was not accepted. Messages never repeat the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Neither 18 characters nor a legacy 15-digit number.
    #[error("an ID number has 18 characters (or 15 digits on an old card); this one has {0}")]
    Length(usize),
    /// A character other than a digit, or an `X` anywhere but last.
    #[error("an ID number is made of digits, with only the last character possibly an X")]
    Characters,
    /// The region code (first 6 digits) cannot be right.
    #[error("the ID number's region code (first 6 digits) is not valid")]
    Region,
    /// Digits 7–14 are not a real calendar date.
    #[error("the ID number's birth date is not a real date")]
    BirthDate,
    /// The birth date is after today.
    #[error("the ID number's birth date is in the future")]
    FutureBirthDate,
    /// The check character does not match: most likely a typing error.
    #[error("the ID number's last character does not match the others; please check for a typo")]
    CheckDigit,
    /// Under 18 on the application date.
    #[error("the applicant must be at least 18 years old on the application date")]
    TooYoung,
    /// 65 or older on the application date.
    #[error("the applicant must be under 65 years old on the application date")]
    TooOld,
}

impl IdError {
    /// A stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Length(_) => "id_length",
            IdError::Characters => "id_characters",
            IdError::Region => "id_region",
            IdError::BirthDate => "id_birth_date",
            IdError::FutureBirthDate => "id_birth_date_future",
            IdError::CheckDigit => "id_check_digit",
            IdError::TooYoung => "too_young",
            IdError::TooOld => "too_old",
        }
    }
}

/// Sex as encoded by the 17th digit: odd is male, even is female.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// The 17th digit is odd.
    Male,
    /// The 17th digit is even.
    Female,
}

/// A checked 18-character resident ID number, upper-case `X`.
///
/// `Debug` prints the masked form. There is deliberately no `Display` or `Serialize`:
/// [`IdNumber::as_str`] is the one way to the plaintext.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber {
    number: String,
    birth_date: Date,
}

impl std::fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

impl IdNumber {
    /// Parses and checks an ID number as typed.
    ///
    /// Surrounding whitespace is ignored and a lower-case `x` accepted. A legacy 15-digit
    /// number (6 region + `YYMMDD` + 3 sequence) is converted to 18 characters by inserting
    /// `19` before the year and appending the computed check character. Checked, in this
    /// order: length, characters, region code (all digits, first 1–9), birth date (a real
    /// date, not after `today`), check character. `today` is the date of the check in
    /// Asia/Shanghai.
    pub fn parse(s: &str, today: Date) -> Result<IdNumber, IdError> {
        let s = s.trim();
        let len = s.chars().count();
        if (len == 18 || len == 15) && !s.is_ascii() {
            return Err(IdError::Characters);
        }
        let number = match len {
            18 => {
                let (body, last) = s.split_at(17);
                if !all_digits(body) || !(all_digits(last) || last == "X" || last == "x") {
                    return Err(IdError::Characters);
                }
                s.to_ascii_uppercase()
            }
            15 => {
                if !all_digits(s) {
                    return Err(IdError::Characters);
                }
                let body = format!("{}19{}", &s[..6], &s[6..]);
                let check = check_char(&body);
                format!("{body}{check}")
            }
            _ => return Err(IdError::Length(len)),
        };
        if number.starts_with('0') {
            return Err(IdError::Region);
        }
        let birth_date = birth_date(&number[6..14]).ok_or(IdError::BirthDate)?;
        if birth_date > today {
            return Err(IdError::FutureBirthDate);
        }
        if number.as_bytes()[17] != check_char(&number[..17]) as u8 {
            return Err(IdError::CheckDigit);
        }
        Ok(IdNumber { number, birth_date })
    }

    /// The 18 characters, upper-case `X`. Plaintext: never put it in a response or a log.
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The masked form for responses: `340524********001X` (see [`mask_id_number`]).
    pub fn masked(&self) -> String {
        mask_id_number(&self.number)
    }

    /// The birth date, digits 7–14.
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The sex encoded by the 17th digit.
    pub fn sex(&self) -> Sex {
        if (self.number.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Age in full years on `date` (0 before the birth date).
    ///
    /// The age goes up on the birthday itself: someone born 2008-12-04 is 18 on 2026-12-04.
    /// Someone born on 29 February gets a year older on 1 March in common years (the
    /// birthday has not come until 28 February is over).
    pub fn age_on(&self, date: Date) -> u32 {
        let birth = self.birth_date;
        let years = date.year() - birth.year();
        let before_birthday = (date.month() as u8, date.day()) < (birth.month() as u8, birth.day());
        let age = years - i32::from(before_birthday);
        u32::try_from(age).unwrap_or(0)
    }

    /// Checks the age rule of 5.1.1 a: 18 to under 65 on the application date `date`
    /// (Asia/Shanghai). Errors are [`IdError::TooYoung`] and [`IdError::TooOld`].
    pub fn eligible_on(&self, date: Date) -> Result<(), IdError> {
        let age = self.age_on(date);
        if age < MIN_AGE {
            Err(IdError::TooYoung)
        } else if age >= MAX_AGE_EXCLUSIVE {
            Err(IdError::TooOld)
        } else {
            Ok(())
        }
    }
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// The check character of 17 ASCII digits.
fn check_char(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    char::from(CHECK[(sum % 11) as usize])
}

/// `YYYYMMDD` as a date, when it is one.
fn birth_date(digits: &str) -> Option<Date> {
    let year: i32 = digits.get(0..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 12 - 04);

    fn parse(s: &str) -> Result<IdNumber, IdError> {
        IdNumber::parse(s, TODAY)
    }

    /// Builds a valid number from region, birth date `YYYYMMDD` and sequence.
    fn make(region: &str, birth: &str, seq: &str) -> String {
        let body = format!("{region}{birth}{seq}");
        format!("{body}{}", check_char(&body))
    }

    #[test]
    fn check_character_table_follows_the_standard() {
        // r = 0..10 → 1 0 X 9 8 7 6 5 4 3 2
        assert_eq!(&CHECK, b"10X98765432");
        // Weights are 2^(17 - i) mod 11 for positions i = 1..17.
        for (i, w) in WEIGHTS.iter().enumerate() {
            assert_eq!(*w, (1u32 << (17 - i)) % 11);
        }
    }

    #[test]
    fn domain_examples() {
        let id = parse("34052419800101001X").unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
        assert_eq!(id.birth_date(), date!(1980 - 01 - 01));
        assert_eq!(id.sex(), Sex::Male);

        let err = parse("340524198001010013").unwrap_err();
        assert_eq!(err, IdError::CheckDigit);
        assert_eq!(err.code(), "id_check_digit");

        assert_eq!(check_char("31010819840330008"), 'X');
        let id = parse("31010819840330008X").unwrap();
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.birth_date(), date!(1984 - 03 - 30));
    }

    #[test]
    fn lower_case_x_is_accepted_and_stored_upper_case() {
        let id = parse("34052419800101001x").unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
        assert_eq!(id, parse("34052419800101001X").unwrap());
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let id = parse("  34052419800101001X\n").unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
    }

    #[test]
    fn legacy_15_digit_numbers_are_converted() {
        // 110105 491231 003 → body 11010519491231003. By hand:
        // 1·7 + 1·9 + 0·10 + 1·5 + 0·8 + 5·4 + 1·2 + 9·1 + 4·6 + 9·3 + 1·7 + 2·9 + 3·10
        //   + 1·5 + 0·8 + 0·4 + 3·2 = 169; 169 mod 11 = 4 → '8'.
        let id = parse("110105491231003").unwrap();
        assert_eq!(id.as_str(), "110105194912310038");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id, parse("110105194912310038").unwrap());

        // The domain examples in their legacy form.
        assert_eq!(
            parse("340524800101001").unwrap().as_str(),
            "34052419800101001X"
        );
        assert_eq!(
            parse("310108840330008").unwrap().as_str(),
            "31010819840330008X"
        );
    }

    #[test]
    fn legacy_numbers_are_checked_too() {
        assert_eq!(parse("34052480010100X").unwrap_err(), IdError::Characters);
        assert_eq!(parse("340524800230001").unwrap_err(), IdError::BirthDate);
        assert_eq!(parse("040524800101001").unwrap_err(), IdError::Region);
    }

    #[test]
    fn length_errors() {
        for (s, len) in [
            ("", 0),
            ("3405241980010100", 16),
            ("34052419800101001X1", 19),
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err, IdError::Length(len));
            assert_eq!(err.code(), "id_length");
        }
        // Counted in characters, not bytes.
        assert_eq!(parse("３４０５２４").unwrap_err(), IdError::Length(6));
    }

    #[test]
    fn character_errors() {
        for s in [
            "3405241980010100XX",
            "X40524198001010013",
            "34052419800101001Y",
            "34052419800101 01X",
            "34052419800101001-",
            "３４０５２４１９８００１０１００１Ｘ",
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err, IdError::Characters, "{s}");
            assert_eq!(err.code(), "id_characters");
        }
    }

    #[test]
    fn region_must_not_start_with_zero() {
        let s = make("040524", "19800101", "001");
        let err = parse(&s).unwrap_err();
        assert_eq!(err, IdError::Region);
        assert_eq!(err.code(), "id_region");
        assert!(parse(&make("940524", "19800101", "001")).is_ok());
    }

    #[test]
    fn birth_date_must_be_real() {
        // 19800230: there is no 30 February. The check character is right for the body.
        let s = make("340524", "19800230", "001");
        let err = parse(&s).unwrap_err();
        assert_eq!(err, IdError::BirthDate);
        assert_eq!(err.code(), "id_birth_date");
        for birth in ["19801301", "19800001", "19800100", "19810229", "19000229"] {
            assert_eq!(
                parse(&make("340524", birth, "001")).unwrap_err(),
                IdError::BirthDate,
                "{birth}"
            );
        }
        assert!(parse(&make("340524", "20000229", "001")).is_ok());
    }

    #[test]
    fn birth_date_must_not_be_in_the_future() {
        let s = make("340524", "20261205", "001");
        let err = parse(&s).unwrap_err();
        assert_eq!(err, IdError::FutureBirthDate);
        assert_eq!(err.code(), "id_birth_date_future");
        // Born today is not in the future.
        assert!(parse(&make("340524", "20261204", "001")).is_ok());
        // The same number is accepted once its birth date has come.
        assert!(IdNumber::parse(&s, date!(2026 - 12 - 05)).is_ok());
    }

    #[test]
    fn sex_follows_the_17th_digit() {
        for (seq, sex) in [
            ("000", Sex::Female),
            ("001", Sex::Male),
            ("128", Sex::Female),
            ("999", Sex::Male),
        ] {
            let id = parse(&make("340524", "19800101", seq)).unwrap();
            assert_eq!(id.sex(), sex, "{seq}");
        }
    }

    #[test]
    fn age_in_full_years() {
        let id = parse(&make("340524", "20081204", "001")).unwrap();
        assert_eq!(id.age_on(date!(2026 - 12 - 03)), 17);
        assert_eq!(id.age_on(date!(2026 - 12 - 04)), 18);
        assert_eq!(id.age_on(date!(2027 - 12 - 03)), 18);
        assert_eq!(id.age_on(date!(2008 - 12 - 04)), 0);
        assert_eq!(id.age_on(date!(2000 - 01 - 01)), 0);
    }

    #[test]
    fn eighteenth_birthday_is_eligible() {
        let id = parse(&make("340524", "20081204", "002")).unwrap();
        assert_eq!(id.eligible_on(date!(2026 - 12 - 04)), Ok(()));
        let err = id.eligible_on(date!(2026 - 12 - 03)).unwrap_err();
        assert_eq!(err, IdError::TooYoung);
        assert_eq!(err.code(), "too_young");
    }

    #[test]
    fn sixty_fifth_birthday_is_too_old() {
        let id = parse(&make("340524", "19611204", "001")).unwrap();
        assert_eq!(id.age_on(date!(2026 - 12 - 04)), 65);
        let err = id.eligible_on(date!(2026 - 12 - 04)).unwrap_err();
        assert_eq!(err, IdError::TooOld);
        assert_eq!(err.code(), "too_old");
        assert_eq!(id.eligible_on(date!(2026 - 12 - 03)), Ok(()));

        let id = parse(&make("340524", "19611205", "001")).unwrap();
        assert_eq!(id.age_on(date!(2026 - 12 - 04)), 64);
        assert_eq!(id.eligible_on(date!(2026 - 12 - 04)), Ok(()));
    }

    #[test]
    fn february_29_birthdays() {
        let id = parse(&make("340524", "20080229", "001")).unwrap();
        // 2026 is a common year: still 17 on 28 February, 18 on 1 March.
        assert_eq!(id.age_on(date!(2026 - 02 - 28)), 17);
        assert_eq!(id.age_on(date!(2026 - 03 - 01)), 18);
        assert_eq!(
            id.eligible_on(date!(2026 - 02 - 28)),
            Err(IdError::TooYoung)
        );
        assert_eq!(id.eligible_on(date!(2026 - 03 - 01)), Ok(()));
        // In a leap year the birthday itself counts.
        assert_eq!(id.age_on(date!(2028 - 02 - 28)), 19);
        assert_eq!(id.age_on(date!(2028 - 02 - 29)), 20);

        let id = parse(&make("340524", "19600229", "001")).unwrap();
        assert_eq!(id.eligible_on(date!(2025 - 02 - 28)), Ok(()));
        assert_eq!(id.eligible_on(date!(2025 - 03 - 01)), Err(IdError::TooOld));
    }

    #[test]
    fn debug_and_errors_never_show_the_number() {
        let id = parse("34052419800101001X").unwrap();
        let debug = format!("{id:?}");
        assert_eq!(debug, "IdNumber(\"340524********001X\")");
        assert!(!debug.contains("19800101"));
        assert_eq!(id.masked(), "340524********001X");

        for s in [
            "340524198001010013",
            "34052419800101001",
            "3405241980010100Y",
            "34052419800230001X",
        ] {
            let err = parse(s).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("3405241980"), "{text}");
            assert!(!text.contains("19800"), "{text}");
        }
    }

    #[test]
    fn sex_serializes_as_snake_case() {
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"female\"");
        assert_eq!(serde_json::to_string(&Sex::Male).unwrap(), "\"male\"");
    }
}
