//! A structural check of JPEG files. The image decoder is lenient: it paints a truncated or
//! damaged file grey from the point of damage on and reports success. Evidence must not be
//! accepted half grey, so the marker structure is walked before decoding: segments must fit
//! in the file, the compressed data may hold no reserved markers, restart markers must count
//! 0–7 in turn, and the file must reach its end-of-image marker.

/// The end-of-image marker.
const EOI: u8 = 0xD9;
/// The start-of-scan marker, after which compressed data follows.
const SOS: u8 = 0xDA;

/// Checks the structure of a JPEG file (starting with its SOI marker); the error says what is
/// wrong and where.
pub(crate) fn check_structure(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 2;
    loop {
        let (marker, at) = next_marker(bytes, pos)?;
        pos = match marker {
            EOI => return Ok(()),
            0x01 | 0xD0..=0xD8 => at + 2,
            SOS => scan_end(bytes, at + 2 + segment_len(bytes, at)?)?,
            _ => at + 2 + segment_len(bytes, at)?,
        };
    }
}

/// The marker code at `pos` (after any 0xFF fill bytes) and the offset of its 0xFF.
fn next_marker(bytes: &[u8], pos: usize) -> Result<(u8, usize), String> {
    if pos >= bytes.len() {
        return Err(truncated());
    }
    if bytes[pos] != 0xFF {
        return Err(format!(
            "expected a marker at byte {pos}, found 0x{:02X}",
            bytes[pos]
        ));
    }

    let fill = bytes[pos..].iter().take_while(|b| **b == 0xFF).count();
    let at = pos + fill - 1;
    match bytes.get(at + 1) {
        Some(code) => Ok((*code, at)),
        None => Err(truncated()),
    }
}

/// Length of the segment whose marker starts at `at`, checked to fit in the file.
fn segment_len(bytes: &[u8], at: usize) -> Result<usize, String> {
    let len = match bytes.get(at + 2..at + 4) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(truncated()),
    };

    if len < 2 || at + 2 + len > bytes.len() {
        return Err(format!("the segment at byte {at} does not fit in the file"));
    }
    Ok(len)
}

/// Walks compressed data from `start` to the marker that ends it and returns that marker's
/// offset.
fn scan_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut next_restart = 0u8;
    let mut pos = start;

    while let Some(offset) = bytes
        .get(pos..)
        .and_then(|rest| rest.iter().position(|b| *b == 0xFF))
    {
        let at = pos + offset;
        let (code, marker_at) = next_marker(bytes, at)?;
        match code {
            0x00 => {}
            0xD0..=0xD7 if code - 0xD0 == next_restart => next_restart = (next_restart + 1) % 8,
            0xD0..=0xD7 => return Err(restart_out_of_turn(code, next_restart, marker_at)),
            0xC0..=0xFE => return Ok(marker_at),
            _ => {
                return Err(format!(
                    "invalid marker 0xFF{code:02X} in the image data at byte {marker_at}"
                ));
            }
        }
        pos = marker_at + 2;
    }
    Err(truncated())
}

fn restart_out_of_turn(code: u8, expected: u8, at: usize) -> String {
    format!(
        "restart marker {} at byte {at} where {expected} was due: image data is missing",
        code - 0xD0
    )
}

fn truncated() -> String {
    "the file ends before its end-of-image marker: it is truncated".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &[u8] = &[
        0xFF, 0xD8, // SOI
        0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, // APP0, 2 bytes of payload
        0xFF, 0xDA, 0x00, 0x02, // SOS with an empty header
        0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD1, // data, stuffing, RST0, RST1
        0xFF, 0xFF, 0xD9, // fill, EOI
    ];

    #[test]
    fn a_well_formed_file_passes() {
        assert_eq!(check_structure(MINIMAL), Ok(()));
    }

    #[test]
    fn truncation_is_found() {
        for cut in 3..MINIMAL.len() - 1 {
            assert!(check_structure(&MINIMAL[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn reserved_markers_and_skipped_restarts_are_found() {
        let mut reserved = MINIMAL.to_vec();
        reserved[13] = 0xFF;
        reserved[14] = 0x9F;
        assert!(
            check_structure(&reserved)
                .unwrap_err()
                .contains("invalid marker 0xFF9F")
        );

        let mut skipped = MINIMAL.to_vec();
        skipped[20] = 0xD3;
        assert!(
            check_structure(&skipped)
                .unwrap_err()
                .contains("restart marker 3")
        );
    }
}
