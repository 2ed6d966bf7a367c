//! Identity data of people and enterprises: parsing, checking and masking.
//!
//! Everything here is a pure function of its arguments (no clock, no I/O, no configuration
//! read behind the caller's back):
//!
//! - [`IdNumber`]: the 18-character resident ID number (GB 11643-1999), including conversion of
//!   legacy 15-digit numbers, the birth date, sex, and the 18-to-under-65 admission rule
//!   (requirement 5.1.1 a).
//! - [`CreditCode`]: the enterprise's Unified Social Credit Code (GB 32100-2015). A failed
//!   check character is reported, not rejected: some real pilot registrations fail it.
//! - [`BankCard`] and [`luhn_ok`]: the payout card. Luhn is a typing hint only; the real check
//!   is the name + ID + card verification through a licensed provider (5.1.4).
//! - [`Phone`]: a mainland mobile number.
//! - [`mask_id_number`], [`mask_bank_card`], [`mask_phone`], [`mask_name`]: masking per
//!   requirement 6.2.2. Masking happens **on the server, before data leaves it**: every
//!   response carrying one of these values carries the masked form, and the plaintext is shown
//!   only after authentication, a permission check and an audit log entry (6.2.1 c). These
//!   functions only compute the masked text; logging each masking is the caller's job.
//! - [`Calendar`]: working days with public holidays and make-up working days (调休) from the
//!   configuration, and [`Calendar::add_working_days`] for review deadlines such as the
//!   2-working-day onboarding review (5.1.3).
//!
//! The types holding personal data ([`IdNumber`], [`BankCard`], [`Phone`]) print their masked
//! form in `Debug`, so a stray `{:?}` in a log line does not leak them, and they implement no
//! `Display` or `Serialize`: getting the plaintext takes an explicit `as_str()`.

mod bank_card;
mod calendar;
mod credit_code;
mod id_number;
mod mask;
mod phone;

pub use bank_card::{BankCard, BankCardError, luhn_ok};
pub use calendar::{Calendar, CalendarError, SHANGHAI};
pub use credit_code::{CreditCode, CreditCodeError};
pub use id_number::{IdError, IdNumber, Sex};
pub use mask::{mask_bank_card, mask_id_number, mask_name, mask_phone, redact_numbers};
pub use phone::{Phone, PhoneError};
