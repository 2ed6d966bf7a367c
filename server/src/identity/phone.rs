//! Mainland China mobile numbers.

use super::mask::mask_phone;

/// Why a text is not a mainland mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// A character other than digits, spaces, dashes and a leading `+`.
    #[error("a mobile number is made of digits (spaces and dashes are fine)")]
    Characters,
    /// Not 11 digits once the country code is removed.
    #[error("a mainland mobile number has 11 digits; this one has {0}")]
    Length(usize),
    /// Does not start with `1` and a second digit 3–9, or a country code other than +86.
    #[error("this is not a mainland China mobile number (they start with 13 to 19)")]
    Prefix,
}

impl PhoneError {
    /// A stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Characters => "phone_characters",
            PhoneError::Length(_) => "phone_length",
            PhoneError::Prefix => "phone_prefix",
        }
    }
}

/// An 11-digit mainland China mobile number, without country code.
///
/// `Debug` prints the masked form; there is no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    digits: String,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Phone").field(&self.masked()).finish()
    }
}

impl Phone {
    /// Parses a mobile number as typed.
    ///
    /// Whitespace and dashes are removed; a leading `+86` or `0086` is dropped, and so is a
    /// leading `86` before 11 more digits. What remains must be 11 digits, the first `1` and
    /// the second 3–9. Any other `+` country code is [`PhoneError::Prefix`].
    pub fn parse(s: &str) -> Result<Phone, PhoneError> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let (plus, rest) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_str()),
        };
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Characters);
        }
        let digits = if plus {
            rest.strip_prefix("86").ok_or(PhoneError::Prefix)?
        } else if let Some(national) = rest.strip_prefix("0086") {
            national
        } else if rest.len() == 13 && rest.starts_with("86") {
            &rest[2..]
        } else {
            rest
        };
        if digits.len() != 11 {
            return Err(PhoneError::Length(digits.len()));
        }
        let bytes = digits.as_bytes();
        if bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
            return Err(PhoneError::Prefix);
        }
        Ok(Phone {
            digits: digits.to_string(),
        })
    }

    /// The 11 digits. Plaintext: never put it in a response or a log.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The masked form for responses: `138****5678` (see [`mask_phone`]).
    pub fn masked(&self) -> String {
        mask_phone(&self.digits)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers() {
        let phone = Phone::parse("13812345678").unwrap();
        assert_eq!(phone.as_str(), "13812345678");
        assert_eq!(phone.masked(), "138****5678");
        for s in ["13012345678", "15912345678", "19912345678", "16612345678"] {
            assert_eq!(Phone::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn country_code_spaces_and_dashes_are_stripped() {
        for s in [
            "+86 138 1234 5678",
            "+8613812345678",
            "+86-138-1234-5678",
            "8613812345678",
            "86 138 1234 5678",
            "008613812345678",
            " 138-1234-5678 ",
            "138 1234 5678",
        ] {
            assert_eq!(Phone::parse(s).unwrap().as_str(), "13812345678", "{s}");
        }
    }

    #[test]
    fn wrong_prefix() {
        for s in [
            "12812345678",
            "10812345678",
            "23812345678",
            "+1 138 1234 5678",
        ] {
            let err = Phone::parse(s).unwrap_err();
            assert_eq!(err, PhoneError::Prefix, "{s}");
            assert_eq!(err.code(), "phone_prefix");
        }
    }

    #[test]
    fn wrong_length() {
        for (s, len) in [
            ("", 0),
            ("1381234567", 10),
            ("138123456789", 12),
            ("+86 138123456", 9),
            ("02112345678901", 14),
        ] {
            let err = Phone::parse(s).unwrap_err();
            assert_eq!(err, PhoneError::Length(len), "{s}");
            assert_eq!(err.code(), "phone_length");
        }
    }

    #[test]
    fn wrong_characters() {
        for s in [
            "138a2345678",
            "(138)12345678",
            "138.1234.5678",
            "1３８12345678",
            "++8613812345678",
        ] {
            let err = Phone::parse(s).unwrap_err();
            assert_eq!(err, PhoneError::Characters, "{s}");
            assert_eq!(err.code(), "phone_characters");
        }
    }

    #[test]
    fn debug_prints_the_masked_form() {
        let phone = Phone::parse("13812345678").unwrap();
        assert_eq!(format!("{phone:?}"), "Phone(\"138****5678\")");
    }
}
