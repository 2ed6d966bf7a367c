//! The scanner every answer and log line of the suite goes through finds what it must and
//! nothing else — otherwise its silence would prove nothing.

use crate::support::personal_numbers;

#[test]
fn the_scanner_finds_id_card_and_phone_numbers_but_not_masks_hashes_or_times() {
    let text = "id 34052419800101001X, card 6228480402564890018, phone 13812345678.";
    assert_eq!(
        personal_numbers(text),
        ["34052419800101001X", "6228480402564890018", "13812345678"]
    );
    // In JSON, in a URL, at the ends of the text.
    assert_eq!(personal_numbers("\"13812345678\""), ["13812345678"]);
    assert_eq!(personal_numbers("/x?phone=13812345678"), ["13812345678"]);
    assert_eq!(
        personal_numbers("110105197001010038"),
        ["110105197001010038"]
    );

    let harmless = [
        "340524********001X",
        "6228 **** **** 0018",
        "138****5678",
        // A wrong check character, a failed Luhn digit, a landline.
        "340524198001010013",
        "6228480402564890017",
        "02112345678",
        // Hashes, ids and times.
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "a1b2c3d4-0000-1234-5678-13812345678a",
        "1733318400000",
        "1791234567890123456",
        "2026-12-04T21:40:00.123456Z",
        "11.027899654859041285",
    ];
    for text in harmless {
        assert!(personal_numbers(text).is_empty(), "{text}");
    }
}
