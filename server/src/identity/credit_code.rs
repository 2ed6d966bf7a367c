//! The Unified Social Credit Code (统一社会信用代码, GB 32100-2015) of an enterprise.

use serde::Serialize;

/// The 31 characters of the code; a character's value is its index.
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1–17 (3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Characters in a code.
const LEN: usize = 18;

/// Why a text is not a credit code at all. A wrong check character is *not* an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    /// Not 18 characters.
    #[error("a Unified Social Credit Code has 18 characters; this one has {0}")]
    Length(usize),
    /// A character outside `0-9` and the letters `ABCDEFGHJKLMNPQRTUWXY`.
    #[error(
        "a Unified Social Credit Code uses only digits and the letters \
         A-H, J-N, P-R, T, U, W-Y (no I, O, S, V or Z)"
    )]
    Characters,
}

impl CreditCodeError {
    /// A stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CreditCodeError::Length(_) => "credit_code_length",
            CreditCodeError::Characters => "credit_code_characters",
        }
    }
}

/// An 18-character credit code over the standard character set, upper case.
///
/// Its check character may be wrong ([`CreditCode::check_ok`] is then `false`): some early
/// pilot codes fail the check yet are real registrations, so a failed check means "verify
/// with the registry", not "reject". A credit code is public registration data, so it
/// serializes in full, as `{"code": "…", "check_ok": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CreditCode {
    code: String,
    check_ok: bool,
}

impl CreditCode {
    /// Parses a code as typed: surrounding whitespace ignored, lower case accepted.
    pub fn parse(s: &str) -> Result<CreditCode, CreditCodeError> {
        let s = s.trim();
        let len = s.chars().count();
        if len != LEN {
            return Err(CreditCodeError::Length(len));
        }
        let code = s.to_ascii_uppercase();
        let values: Vec<u32> = code
            .bytes()
            .map(value)
            .collect::<Option<_>>()
            .ok_or(CreditCodeError::Characters)?;
        let check_ok = expected_check(&values[..LEN - 1]) == values[LEN - 1];
        Ok(CreditCode { code, check_ok })
    }

    /// The 18 characters, upper case.
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// Whether the check character matches; `false` means "verify with the registry".
    pub fn check_ok(&self) -> bool {
        self.check_ok
    }

    /// The check character the first 17 characters call for.
    pub fn expected_check_char(&self) -> char {
        let values: Vec<u32> = self.code.bytes().take(LEN - 1).filter_map(value).collect();
        char::from(CHARSET[expected_check(&values) as usize])
    }
}

/// The value (index in the character set) of an upper-case ASCII character.
fn value(b: u8) -> Option<u32> {
    CHARSET
        .iter()
        .position(|c| *c == b)
        .and_then(|i| u32::try_from(i).ok())
}

/// `31 − (Σ value × weight mod 31)`, with 31 becoming 0.
fn expected_check(values: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    (31 - sum % 31) % 31
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1;
        for weight in WEIGHTS {
            assert_eq!(weight, w);
            w = w * 3 % 31;
        }
    }

    #[test]
    fn valid_codes_from_the_domain_notes() {
        for s in [
            "91350200MA2YJ1XR9G",
            "91350200776049653A",
            "913502000728319549",
            "91440101MA5CJQ4N59",
        ] {
            let code = CreditCode::parse(s).unwrap();
            assert!(code.check_ok(), "{s}");
            assert_eq!(code.as_str(), s);
            assert_eq!(Some(code.expected_check_char()), s.chars().last());
        }
    }

    #[test]
    fn pilot_codes_failing_the_check_are_accepted_for_registry_verification() {
        for s in [
            "91350100M0001TGQXM",
            "91350211M0000XUF46",
            "91350203M0001FUE2P",
        ] {
            let code = CreditCode::parse(s).unwrap();
            assert!(!code.check_ok(), "{s}");
            assert_eq!(code.as_str(), s);
            assert_ne!(Some(code.expected_check_char()), s.chars().last());
        }
    }

    #[test]
    fn a_typo_fails_the_check_but_parses() {
        let code = CreditCode::parse("91350200MA2YJ1XR9H").unwrap();
        assert!(!code.check_ok());
        assert_eq!(code.expected_check_char(), 'G');
    }

    #[test]
    fn lower_case_and_whitespace_are_accepted() {
        let code = CreditCode::parse(" 91350200ma2yj1xr9g\t").unwrap();
        assert_eq!(code.as_str(), "91350200MA2YJ1XR9G");
        assert!(code.check_ok());
    }

    #[test]
    fn wrong_length_is_an_error() {
        for (s, len) in [
            ("", 0),
            ("91350200MA2YJ1XR9", 17),
            ("91350200MA2YJ1XR9GG", 19),
        ] {
            let err = CreditCode::parse(s).unwrap_err();
            assert_eq!(err, CreditCodeError::Length(len));
            assert_eq!(err.code(), "credit_code_length");
        }
    }

    #[test]
    fn characters_outside_the_set_are_an_error() {
        // I, O, S, V, Z are not in the set; nor is anything non-alphanumeric.
        for s in [
            "91350200MA2YJ1XRIG",
            "91350200MA2YJ1XROG",
            "91350200MA2YJ1XRSG",
            "91350200MA2YJ1XRVG",
            "91350200MA2YJ1XRZG",
            "91350200MA2YJ1XR-G",
            "91350200MA2YJ1XR G",
            "91350200MA2YJ1XR９G",
        ] {
            let err = CreditCode::parse(s).unwrap_err();
            assert_eq!(err, CreditCodeError::Characters, "{s}");
            assert_eq!(err.code(), "credit_code_characters");
        }
    }

    #[test]
    fn serializes_code_and_check_result() {
        let code = CreditCode::parse("91350100M0001TGQXM").unwrap();
        assert_eq!(
            serde_json::to_string(&code).unwrap(),
            r#"{"code":"91350100M0001TGQXM","check_ok":false}"#
        );
    }
}
