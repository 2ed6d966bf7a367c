//! Bank card numbers for payouts.

use super::mask::mask_bank_card;

/// Fewest digits of a card number.
const MIN_LEN: usize = 15;
/// Most digits of a card number.
const MAX_LEN: usize = 19;

/// Whether the digits of `number` pass the Luhn check.
///
/// Whitespace is ignored; any other non-digit, or fewer than two digits, fails. From the
/// right, every second digit (never the check digit) is doubled, 9 subtracted from results
/// over 9, and the sum must be a multiple of 10.
pub fn luhn_ok(number: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for c in number.chars().rev().filter(|c| !c.is_whitespace()) {
        let Some(d) = c.to_digit(10) else {
            return false;
        };
        let d = if count % 2 == 1 {
            let doubled = d * 2;
            if doubled > 9 { doubled - 9 } else { doubled }
        } else {
            d
        };
        sum += d;
        count += 1;
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// Why a text is not a bank card number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankCardError {
    /// A character other than a digit or whitespace.
    #[error("a bank card number is made of digits only")]
    Characters,
    /// Not 15 to 19 digits.
    #[error("a bank card number has 15 to 19 digits; this one has {0}")]
    Length(usize),
}

impl BankCardError {
    /// A stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            BankCardError::Characters => "card_characters",
            BankCardError::Length(_) => "card_length",
        }
    }
}

/// A bank card number of 15 to 19 digits.
///
/// The Luhn check is not enforced ([`BankCard::luhn_ok`] is a hint to show "please check
/// the number"); the real check is the name + ID + card verification through a licensed
/// provider. `Debug` prints the masked form; there is no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankCard {
    digits: String,
}

impl std::fmt::Debug for BankCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BankCard").field(&self.masked()).finish()
    }
}

impl BankCard {
    /// Parses a card number as typed, with any whitespace (such as groups of 4) removed.
    pub fn parse(s: &str) -> Result<BankCard, BankCardError> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BankCardError::Characters);
        }
        if !(MIN_LEN..=MAX_LEN).contains(&digits.len()) {
            return Err(BankCardError::Length(digits.len()));
        }
        Ok(BankCard { digits })
    }

    /// The digits. Plaintext: never put it in a response or a log.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The masked form for responses: `622848*********0018` (see [`mask_bank_card`]).
    pub fn masked(&self) -> String {
        mask_bank_card(&self.digits)
    }

    /// The last 4 digits, as shown in "card ending in …".
    pub fn last4(&self) -> &str {
        &self.digits[self.digits.len() - 4..]
    }

    /// Whether the Luhn check passes: a typing hint only, never a reason to reject.
    pub fn luhn_ok(&self) -> bool {
        luhn_ok(&self.digits)
    }

    /// Whether the card is a UnionPay card (starts with `62`).
    pub fn is_unionpay(&self) -> bool {
        self.digits.starts_with("62")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_the_domain_examples() {
        assert!(luhn_ok("6123451234567893"));
        assert!(luhn_ok("6228480402564890018"));
        assert!(luhn_ok("6228 4804 0256 4890 018"));
        // The classic test numbers.
        assert!(luhn_ok("79927398713"));
        assert!(luhn_ok("4111111111111111"));
    }

    #[test]
    fn luhn_catches_typos() {
        // One digit changed.
        assert!(!luhn_ok("6123451234567894"));
        // Two neighbouring digits swapped.
        assert!(!luhn_ok("6228480402564890081"));
        assert!(!luhn_ok("6228840402564890018"));
        assert!(!luhn_ok("6228480420564890018"));
        assert!(!luhn_ok("79927398710"));
    }

    #[test]
    fn luhn_misses_a_swapped_09() {
        // The one adjacent swap Luhn cannot see: why it is only a hint.
        assert!(luhn_ok("6228480402564809018"));
    }

    #[test]
    fn luhn_rejects_what_is_not_a_number() {
        assert!(!luhn_ok(""));
        assert!(!luhn_ok("0"));
        assert!(!luhn_ok("   "));
        assert!(!luhn_ok("6123-4512-3456-7893"));
        assert!(!luhn_ok("612345123456789a"));
        assert!(!luhn_ok("６１２３４５１２３４５６７８９３"));
        assert!(luhn_ok("00"));
    }

    #[test]
    fn parses_the_domain_examples() {
        let card = BankCard::parse("6123451234567893").unwrap();
        assert!(card.luhn_ok());
        assert!(!card.is_unionpay());
        assert_eq!(card.last4(), "7893");

        let card = BankCard::parse("6228 4804 0256 4890 018").unwrap();
        assert_eq!(card.as_str(), "6228480402564890018");
        assert!(card.luhn_ok());
        assert!(card.is_unionpay());
        assert_eq!(card.last4(), "0018");
        assert_eq!(card.masked(), "622848*********0018");
    }

    #[test]
    fn a_mistyped_card_still_parses_with_a_luhn_hint() {
        let card = BankCard::parse("6228480402564890019").unwrap();
        assert!(!card.luhn_ok());
        assert!(card.is_unionpay());
    }

    #[test]
    fn length_is_15_to_19_digits() {
        assert!(BankCard::parse("622848040256489").is_ok());
        assert!(BankCard::parse("6228480402564890018").is_ok());
        for (s, len) in [
            ("", 0),
            ("62284804025648", 14),
            ("62284804025648900181", 20),
        ] {
            let err = BankCard::parse(s).unwrap_err();
            assert_eq!(err, BankCardError::Length(len));
            assert_eq!(err.code(), "card_length");
        }
    }

    #[test]
    fn only_digits_and_whitespace() {
        for s in [
            "6228-4804-0256-4890-018",
            "622848040256489001X",
            "６２２８４８０４０２５６４８９００１８",
        ] {
            let err = BankCard::parse(s).unwrap_err();
            assert_eq!(err, BankCardError::Characters, "{s}");
            assert_eq!(err.code(), "card_characters");
        }
    }

    #[test]
    fn debug_prints_the_masked_form() {
        let card = BankCard::parse("6228480402564890018").unwrap();
        assert_eq!(format!("{card:?}"), "BankCard(\"622848*********0018\")");
    }
}
