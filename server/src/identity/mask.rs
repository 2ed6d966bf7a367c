//! Masking of personal data for responses (requirement 6.2.2).
//!
//! Every function returns text of the same number of characters as the (normalised) input,
//! one `*` for each hidden character, and always replaces at least one character: an input
//! too short for its format's visible parts falls back to showing at most a quarter of its
//! characters at each end, and an empty input masks to a single `*`.

/// Masks a resident ID number: the first 6 characters (the region) and the last 4 stay, the
/// rest becomes `*`.
///
/// `34052419800101001X` → `340524********001X`. The 8-digit birth date is always hidden. A
/// legacy 15-digit number keeps its first 6 and last 3 digits (its sequence), hiding its
/// 6-digit birth date: `340524800101001` → `340524******001`. Surrounding whitespace is
/// dropped; any other length falls back to the generic rule.
pub fn mask_id_number(id: &str) -> String {
    let id = id.trim();
    match id.chars().count() {
        15 => keep_ends(id, 6, 3),
        _ => keep_ends(id, 6, 4),
    }
}

/// Masks a bank card number: the first 6 digits (the issuer's BIN) and the last 4 stay.
///
/// Whitespace is removed first, so grouping does not survive: `6228 4804 0256 4890 018` →
/// `622848*********0018`. A 15-digit card shows 10 digits and hides 5.
pub fn mask_bank_card(card: &str) -> String {
    let card: String = card.chars().filter(|c| !c.is_whitespace()).collect();
    keep_ends(&card, 6, 4)
}

/// Masks a phone number: the first 3 and last 4 digits stay.
///
/// Whitespace and dashes are removed first, and a leading `+86`/`0086` country code (or `86`
/// before 11 digits) is dropped: `13812345678` and `+86 138-1234-5678` both give
/// `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    let mut digits: String = phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    for prefix in ["+86", "0086"] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            digits = rest.to_string();
        }
    }
    if digits.len() == 13 && digits.starts_with("86") {
        digits = digits[2..].to_string();
    }
    keep_ends(&digits, 3, 4)
}

/// Masks a person's name.
///
/// - A name with any Chinese character keeps its first character and replaces every other
///   one (whitespace dropped): `张三` → `张*`, `欧阳娜娜` → `欧***`,
///   `阿卜杜·热合曼` → `阿******`. A one-character name becomes `*`.
/// - Any other name is split into words at whitespace (re-joined with single spaces), and
///   each word keeps its first character: `John Smith` → `J*** S****`. When every word has
///   a single character, nothing would be hidden, so all become `*`: `A B` → `* *`.
/// - An empty name becomes `*`.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    if name.chars().any(is_cjk) {
        let mut chars = name.chars().filter(|c| !c.is_whitespace());
        let mut out = String::new();
        match chars.next() {
            None => out.push('*'),
            Some(first) => {
                let rest = chars.count();
                if rest == 0 {
                    out.push('*');
                } else {
                    out.push(first);
                    out.extend(std::iter::repeat_n('*', rest));
                }
            }
        }
        return out;
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.is_empty() {
        return "*".to_string();
    }
    let hides_something = words.iter().any(|w| w.chars().count() > 1);
    let masked: Vec<String> = words
        .iter()
        .map(|w| {
            let n = w.chars().count();
            if hides_something {
                w.chars()
                    .take(1)
                    .chain(std::iter::repeat_n('*', n - 1))
                    .collect()
            } else {
                "*".repeat(n)
            }
        })
        .collect();
    masked.join(" ")
}

/// Keeps `front` characters at the start and `back` at the end, replacing the rest with `*`.
///
/// When that would hide nothing, shows at most `n / 4` characters at each end instead (so at
/// least half is hidden, and a text of 3 characters or fewer is hidden completely). An empty
/// text gives `*`.
pub(crate) fn keep_ends(text: &str, front: usize, back: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n == 0 {
        return "*".to_string();
    }
    let (front, back) = if front + back < n {
        (front, back)
    } else {
        (front.min(n / 4), back.min(n / 4))
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < front || i >= n - back { *c } else { '*' })
        .collect()
}

/// Whether `c` is a CJK unified ideograph (basic block, extensions, compatibility ideographs).
fn is_cjk(c: char) -> bool {
    matches!(
        c,
        '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{323AF}'
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The masked text hides at least one character of `original` behind a `*`, position by
    /// position, and has the same number of characters.
    fn hides_something(original: &str, masked: &str) {
        let o: Vec<char> = original.chars().collect();
        let m: Vec<char> = masked.chars().collect();
        assert_eq!(o.len(), m.len(), "{original} → {masked}");
        assert!(
            o.iter().zip(&m).any(|(a, b)| *b == '*' && a != b),
            "{original} → {masked} hides nothing"
        );
    }

    #[test]
    fn id_numbers_keep_region_and_last_four() {
        let id = "34052419800101001X";
        let masked = mask_id_number(id);
        assert_eq!(masked, "340524********001X");
        hides_something(id, &masked);
        assert!(!masked.contains("19800101"));
        assert!(!masked.contains("800101"));
        assert_eq!(
            mask_id_number("  110105194912310038 "),
            "110105********0038"
        );
    }

    #[test]
    fn legacy_id_numbers_hide_their_birth_date() {
        let id = "340524800101001";
        let masked = mask_id_number(id);
        assert_eq!(masked, "340524******001");
        hides_something(id, &masked);
        assert!(!masked.contains("800101"));
    }

    #[test]
    fn malformed_id_numbers_still_hide_something() {
        for id in ["", "1", "12", "1234", "1234567890", "12345678901234567890"] {
            let masked = mask_id_number(id);
            if id.is_empty() {
                assert_eq!(masked, "*");
            } else {
                hides_something(id, &masked);
            }
        }
        assert_eq!(mask_id_number("1234567890"), "12******90");
        assert_eq!(mask_id_number("12345678901"), "123456*8901");
        assert_eq!(mask_id_number("12345678"), "12****78");
    }

    #[test]
    fn bank_cards_keep_bin_and_last_four() {
        assert_eq!(mask_bank_card("6228480402564890018"), "622848*********0018");
        assert_eq!(
            mask_bank_card("6228 4804 0256 4890 018"),
            "622848*********0018"
        );
        assert_eq!(mask_bank_card("6123451234567893"), "612345******7893");
        assert_eq!(mask_bank_card("622848040256489"), "622848*****6489");
        hides_something(
            "6228480402564890018",
            &mask_bank_card("6228480402564890018"),
        );
        hides_something("6123", &mask_bank_card("6123"));
        assert_eq!(mask_bank_card(""), "*");
    }

    #[test]
    fn phones_keep_first_three_and_last_four() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+86 138-1234-5678"), "138****5678");
        assert_eq!(mask_phone("008613812345678"), "138****5678");
        assert_eq!(mask_phone("8613812345678"), "138****5678");
        hides_something("13812345678", &mask_phone("13812345678"));
        hides_something("1234567", &mask_phone("1234567"));
        assert_eq!(mask_phone("1234567"), "1*****7");
        assert_eq!(mask_phone("123"), "***");
    }

    #[test]
    fn chinese_names_keep_the_first_character() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("李"), "*");
        assert_eq!(mask_name(" 王 小明 "), "王**");
        assert_eq!(mask_name("阿卜杜·热合曼"), "阿******");
        for name in ["张三", "欧阳娜娜", "李", "阿卜杜·热合曼"] {
            hides_something(name, &mask_name(name));
        }
    }

    #[test]
    fn latin_names_keep_the_first_letter_of_each_word() {
        assert_eq!(mask_name("John Smith"), "J*** S****");
        assert_eq!(mask_name("  Mary   Ann  Lee "), "M*** A** L**");
        assert_eq!(mask_name("Madonna"), "M******");
        assert_eq!(mask_name("José García"), "J*** G*****");
        assert_eq!(mask_name("J R"), "* *");
        assert_eq!(mask_name("J Smith"), "J S****");
        assert_eq!(mask_name("X"), "*");
        hides_something("John Smith", &mask_name("John Smith"));
    }

    #[test]
    fn empty_input_masks_to_one_star() {
        assert_eq!(mask_name(""), "*");
        assert_eq!(mask_name("   "), "*");
        assert_eq!(mask_phone(""), "*");
        assert_eq!(mask_id_number(""), "*");
    }

    #[test]
    fn keep_ends_always_hides_at_least_one_character() {
        for n in 1..30 {
            let text: String = "abcdefghijklmnopqrstuvwxyz0123".chars().take(n).collect();
            for (front, back) in [(0, 0), (3, 4), (6, 4), (20, 20)] {
                let masked = keep_ends(&text, front, back);
                hides_something(&text, &masked);
            }
        }
    }
}

/// Masks every number of seven or more digits in free text, so a phone, card or ID number
/// typed into a reason or comment, or echoed in an error message, is never kept or shown
/// whole: `"fraud check 13812345678"` → `"fraud check 138******78"`.
///
/// - Any Unicode digit counts (ASCII, full-width `１３８…`, Arabic-Indic, …).
/// - A number may be written in groups: digit groups joined by up to three separator
///   characters (spaces of any kind, zero-width characters, dashes, dots, slashes,
///   underscores, brackets: `138 1234 5678`, `138.1234.5678`, `(021) 6123-4567`) are one
///   number when they have ten digits or more (a phone number with its area code), and an ID
///   number's final `X` belongs to it.
/// - A calendar date (`2026-12-04`, `2026/12/4`) is not a number and is kept, as are dates
///   written next to each other (`2026-12-01 - 2026-12-31`); but digits that reach the length
///   of an ID or card number (15) with a date among them are masked whole, so an ID number
///   written with its birth date apart (`110105-1949-12-31-002X`) is still hidden.
///
/// The first 3 and last 2 digits stay; every other digit becomes `*` and the separators stay,
/// so the text keeps its length. Numbers spelt in words (`一三八…`) are not recognised.
pub fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The longest reading first: everything joined, dates included.
        let whole_end = number_end(&chars, i, false);
        let whole = &chars[i..whole_end];
        if !only_dates(&chars, i, whole_end) && digit_count(whole) >= 15 {
            mask_into(&mut out, whole);
            i = whole_end;
            continue;
        }
        if let Some(len) = date_at(&chars, i) {
            out.extend(&chars[i..i + len]);
            i += len;
            continue;
        }
        let end = number_end(&chars, i, true);
        let run = &chars[i..end];
        let grouped = run.iter().any(|c| !is_digit(*c) && !is_id_check_x(*c));
        // Written in groups, a number needs the length of a phone number with its area code
        // to count (`010-1234 5678`), so references like `2026-117` stay as written.
        if digit_count(run) < if grouped { 10 } else { 7 } {
            out.extend(run);
        } else {
            mask_into(&mut out, run);
        }
        i = end;
    }
    out
}

/// Appends `run` with its digits (and check `X`) masked but the first 3 and last 2.
fn mask_into(out: &mut String, run: &[char]) {
    let total = digit_count(run) + usize::from(run.last().is_some_and(|c| is_id_check_x(*c)));
    let mut seen = 0;
    for c in run {
        if is_digit(*c) || is_id_check_x(*c) {
            seen += 1;
            let visible = seen <= 3 || seen + 2 > total;
            out.push(if visible { *c } else { '*' });
        } else {
            out.push(*c);
        }
    }
}

fn digit_count(run: &[char]) -> usize {
    run.iter().filter(|c| is_digit(**c)).count()
}

/// Any digit, in any script (`char::is_numeric`: also `²`, `½` and the like, harmlessly).
fn is_digit(c: char) -> bool {
    c.is_numeric()
}

/// The value of an ASCII or full-width decimal digit (for reading dates).
fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

fn is_id_check_x(c: char) -> bool {
    matches!(c, 'X' | 'x' | 'Ｘ' | 'ｘ')
}

/// What people put between the digit groups of one number.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}'..='\u{2015}'
                | '\u{2212}'
                | '－'
                | '.'
                | '/'
                | '_'
                | '('
                | ')'
                | '（'
                | '）'
                | '·'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'
                | '\u{FEFF}'
        )
}

/// Where the number starting at `start` ends: digit groups joined by one to three separator
/// characters each (not before a date when `stop_at_dates`), and a final ID check `X` right
/// after the last digit.
fn number_end(chars: &[char], start: usize, stop_at_dates: bool) -> usize {
    let mut i = start;
    loop {
        while i < chars.len() && is_digit(chars[i]) {
            i += 1;
        }
        let gap = chars[i..]
            .iter()
            .take(4)
            .take_while(|c| is_separator(**c))
            .count();
        let next = i + gap;
        let joins = (1..=3).contains(&gap)
            && next < chars.len()
            && is_digit(chars[next])
            && !(stop_at_dates && date_at(chars, next).is_some());
        if !joins {
            break;
        }
        i = next;
    }
    if i < chars.len() && is_id_check_x(chars[i]) {
        i += 1;
    }
    i
}

/// Whether every digit in `start..end` belongs to a calendar date.
fn only_dates(chars: &[char], start: usize, end: usize) -> bool {
    let mut i = start;
    while i < end {
        if is_digit(chars[i]) {
            match date_at(chars, i) {
                Some(len) => i += len,
                None => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// The length of a calendar date (year 1900–2199, month 1–12, day 1–31, joined by `-`, `/`
/// or `.`) starting at `start`, when one does and no digit touches it on either side.
fn date_at(chars: &[char], start: usize) -> Option<usize> {
    if start > 0 && is_digit(chars[start - 1]) {
        return None;
    }
    let group = |from: usize, min: usize, max: usize| -> Option<(u32, usize)> {
        let mut value = 0;
        let mut i = from;
        while i < chars.len() && i - from < max {
            match digit_value(chars[i]) {
                Some(d) => value = value * 10 + d,
                None => break,
            }
            i += 1;
        }
        let len = i - from;
        let more = i < chars.len() && is_digit(chars[i]);
        (len >= min && !more).then_some((value, i))
    };
    let (year, i) = group(start, 4, 4)?;
    let sep = *chars.get(i)?;
    if !matches!(sep, '-' | '/' | '.') {
        return None;
    }
    let (month, i) = group(i + 1, 1, 2)?;
    if chars.get(i) != Some(&sep) {
        return None;
    }
    let (day, end) = group(i + 1, 1, 2)?;
    let valid =
        (1900..2200).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day);
    valid.then_some(end - start)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod redaction_tests {
    use super::redact_numbers;

    #[test]
    fn long_numbers_are_masked_and_short_ones_and_words_are_kept() {
        assert_eq!(
            redact_numbers("fraud check 13812345678"),
            "fraud check 138******78"
        );
        assert_eq!(
            redact_numbers("id 34052419800101001X ok"),
            "id 340*************1X ok"
        );
        assert_eq!(
            redact_numbers("order 42, 2026-12-04, 王五"),
            "order 42, 2026-12-04, 王五"
        );
        assert_eq!(
            redact_numbers("integer `110101199001018011`"),
            "integer `110*************11`"
        );
    }

    #[test]
    fn numbers_written_in_groups_or_full_width_are_masked() {
        assert_eq!(redact_numbers("call 138 1234 5678"), "call 138 **** **78");
        assert_eq!(redact_numbers("call 138-1234-5678."), "call 138-****-**78.");
        assert_eq!(
            redact_numbers("卡号 6228 4804 0256 4890 018"),
            "卡号 622* **** **** **** *18"
        );
        assert_eq!(
            redact_numbers("电话１３８１２３４５６７８"),
            "电话１３８******７８"
        );
        assert_eq!(
            redact_numbers("身份证 340524 19800101 001X"),
            "身份证 340*** ******** **1X"
        );
        assert_eq!(
            redact_numbers("tel 138\u{3000}1234\u{3000}5678"),
            "tel 138\u{3000}****\u{3000}**78"
        );
    }

    #[test]
    fn any_common_separator_or_script_joins_the_groups() {
        for (text, masked) in [
            ("138.1234.5678", "138.****.**78"),
            ("138/1234/5678", "138/****/**78"),
            ("138_1234_5678", "138_****_**78"),
            ("138 - 1234 - 5678", "138 - **** - **78"),
            ("138  1234\t5678", "138  ****\t**78"),
            ("138–1234–5678", "138–****–**78"),
            ("(021) 6123-4567", "(021) ****-**67"),
            (
                "6222\u{a0}0212\u{a0}3456\u{a0}7890",
                "622*\u{a0}****\u{a0}****\u{a0}**90",
            ),
            ("138\u{200b}1234\u{200b}5678", "138\u{200b}****\u{200b}**78"),
            ("١٣٨١٢٣٤٥٦٧٨", "١٣٨******٧٨"),
        ] {
            assert_eq!(redact_numbers(text), masked, "{text}");
        }
    }

    #[test]
    fn an_id_number_with_its_birth_date_apart_is_hidden_whole() {
        assert_eq!(
            redact_numbers("ID 110105-1949-12-31-002X"),
            "ID 110***-****-**-**-**2X"
        );
        assert_eq!(
            redact_numbers("ID 110105 1949.12.31 002X"),
            "ID 110*** ****.**.** **2X"
        );
    }

    #[test]
    fn dates_times_and_short_numbers_stay() {
        for kept in [
            "拍摄于 2026-12-04 10:30，共 3 张",
            "2026/12/4 and 2026.1.31",
            "rooms 12 14 16",
            "labour inspection request 2026-117",
            "local line 1234 5678",
            "worked 2026-12-01 - 2026-12-31",
            "amount 1234567.89 fen",
            "amount 1,234.50 yuan",
        ] {
            assert_eq!(redact_numbers(kept), kept);
        }
        // A date next to a phone number does not shield it (both go, as one long number).
        assert_eq!(
            redact_numbers("2026-12-04 13812345678"),
            "202*-**-** *********78"
        );
        assert_eq!(
            redact_numbers("2026-12-04 联系 13812345678"),
            "2026-12-04 联系 138******78"
        );
        // Not a date: year out of range, so the whole number is masked.
        assert_eq!(redact_numbers("1381-2-3 4567 89"), "138*-*-* **** 89");
    }
}
