//! A bounds check for incoming Automerge sync messages, run before Automerge sees the bytes.
//!
//! A sync message comes from a peer and is untrusted. Automerge's own decoder trusts some of
//! the numbers a message declares: a Bloom filter with zero bits per entry makes it divide by
//! zero when the next message is generated, and one that declares billions of probes makes it
//! try to allocate gigabytes (an abort that `catch_unwind` cannot stop). [`check_message`]
//! walks the wire format (message type, heads, needs, haves with their Bloom filters, change
//! chunks, flags) and refuses anything outside [`MessageLimits`] with a [`GuardError`] that
//! names the offending field.

use serde::{Deserialize, Serialize};

/// First byte of a version 1 sync message.
const MESSAGE_V1: u8 = 0x42;
/// First byte of a version 2 sync message (the whole document in one chunk).
const MESSAGE_V2: u8 = 0x43;
/// A change hash is a SHA-256.
const HASH_LEN: usize = 32;

/// Upper bounds on what one incoming sync message may declare.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageLimits {
    /// Size of one document's sync message, in bytes.
    pub max_message_bytes: usize,
    /// Heads, needs and last-sync hashes, each list.
    pub max_hashes: u64,
    /// Bloom-filter summaries ("haves") in one message.
    pub max_haves: u64,
    /// Entries declared by one Bloom filter.
    pub max_bloom_entries: u32,
    /// Bits per entry of a Bloom filter (Automerge uses 10).
    pub max_bloom_bits_per_entry: u32,
    /// Probes per lookup of a Bloom filter (Automerge uses 7).
    pub max_bloom_probes: u32,
    /// Change chunks in one message.
    pub max_changes: u64,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 8 * 1024 * 1024,
            max_hashes: 4096,
            max_haves: 64,
            max_bloom_entries: 1_000_000,
            max_bloom_bits_per_entry: 64,
            max_bloom_probes: 32,
            max_changes: 100_000,
        }
    }
}

/// Why an incoming sync message was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("sync message is empty")]
    Empty,
    #[error("sync message is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("sync message starts with byte {0:#04x}, which is not a known message type")]
    UnknownType(u8),
    #[error("sync message ends in the middle of its {0}")]
    Truncated(&'static str),
    #[error("sync message has a malformed number in its {0}")]
    BadNumber(&'static str),
    #[error("sync message declares {count} {field}, more than the limit of {limit}")]
    TooMany {
        field: &'static str,
        count: u64,
        limit: u64,
    },
    #[error("sync message has a bloom filter with {0}")]
    BadBloom(String),
}

/// Checks that `bytes` is a sync message whose every declared size is within `limits`.
///
/// Passing this check does not make the message valid Automerge; it makes it safe to hand to
/// Automerge's decoder, whose own errors then apply.
pub fn check_message(bytes: &[u8], limits: &MessageLimits) -> Result<(), GuardError> {
    if bytes.len() > limits.max_message_bytes {
        let limit = limits.max_message_bytes;
        return Err(GuardError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let mut r = Reader { bytes, pos: 0 };
    match r.byte("message type").map_err(|_| GuardError::Empty)? {
        MESSAGE_V1 | MESSAGE_V2 => {}
        other => return Err(GuardError::UnknownType(other)),
    }

    r.hashes("heads", limits)?;
    r.hashes("needs", limits)?;
    let haves = r.count("haves", limits.max_haves)?;
    for _ in 0..haves {
        r.hashes("last-sync hashes", limits)?;
        let bloom = r.length_prefixed("bloom filter")?;
        check_bloom(bloom, limits)?;
    }

    let changes = r.count("changes", limits.max_changes)?;
    for _ in 0..changes {
        r.length_prefixed("change")?;
    }
    if !r.is_done() {
        r.length_prefixed("flags")?;
    }

    Ok(())
}

/// A Bloom filter is either empty or `entries, bits per entry, probes, bits`.
fn check_bloom(bytes: &[u8], limits: &MessageLimits) -> Result<(), GuardError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = Reader { bytes, pos: 0 };
    let entries = r.u32("bloom entries")?;
    let bits_per_entry = r.u32("bloom bits per entry")?;
    let probes = r.u32("bloom probes")?;

    if entries > limits.max_bloom_entries {
        return Err(GuardError::BadBloom(format!("{entries} entries")));
    }
    if entries > 0 && !(1..=limits.max_bloom_bits_per_entry).contains(&bits_per_entry) {
        return Err(GuardError::BadBloom(format!(
            "{bits_per_entry} bits per entry"
        )));
    }
    if entries > 0 && !(1..=limits.max_bloom_probes).contains(&probes) {
        return Err(GuardError::BadBloom(format!("{probes} probes")));
    }

    let expected = (u64::from(entries) * u64::from(bits_per_entry)).div_ceil(8);
    let actual = (bytes.len() - r.pos) as u64;
    if actual != expected {
        return Err(GuardError::BadBloom(format!(
            "{actual} bytes of bits, expected {expected}"
        )));
    }

    Ok(())
}

/// A cursor over the message bytes that never reads past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, GuardError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(GuardError::Truncated(field))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 number of at most 64 bits.
    fn uleb(&mut self, field: &'static str) -> Result<u64, GuardError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(GuardError::BadNumber(field));
            }
            value |= part << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(GuardError::BadNumber(field))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, GuardError> {
        u32::try_from(self.uleb(field)?).map_err(|_| GuardError::BadNumber(field))
    }

    fn count(&mut self, field: &'static str, limit: u64) -> Result<u64, GuardError> {
        let count = self.uleb(field)?;
        if count > limit {
            return Err(GuardError::TooMany {
                field,
                count,
                limit,
            });
        }
        Ok(count)
    }

    fn take(&mut self, len: u64, field: &'static str) -> Result<&'a [u8], GuardError> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if len > remaining {
            return Err(GuardError::Truncated(field));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn length_prefixed(&mut self, field: &'static str) -> Result<&'a [u8], GuardError> {
        let len = self.uleb(field)?;
        self.take(len, field)
    }

    fn hashes(&mut self, field: &'static str, limits: &MessageLimits) -> Result<(), GuardError> {
        let count = self.count(field, limits.max_hashes)?;
        self.take(count * HASH_LEN as u64, field)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOOM_ZERO_BITS: &[u8] =
        include_bytes!("../../../shared/fixtures/sync-invalid/bloom-zero-bits.bin");

    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A v1 message with no heads or needs, one have with the given Bloom header, no changes.
    fn message_with_bloom(entries: u64, bits: u64, probes: u64, payload: usize) -> Vec<u8> {
        let mut bloom = Vec::new();
        leb(entries, &mut bloom);
        leb(bits, &mut bloom);
        leb(probes, &mut bloom);
        bloom.extend(std::iter::repeat_n(0xff, payload));

        let mut msg = vec![MESSAGE_V1, 0, 0, 1, 0];
        leb(bloom.len() as u64, &mut msg);
        msg.extend(bloom);
        msg.push(0);
        msg
    }

    #[test]
    fn refuses_the_zero_bits_bloom_fixture() {
        let err = check_message(BLOOM_ZERO_BITS, &MessageLimits::default()).unwrap_err();

        assert_eq!(err, GuardError::BadBloom("0 bits per entry".into()));
    }

    #[test]
    fn refuses_four_billion_probes() {
        let msg = message_with_bloom(1, 10, 4_000_000_000, 2);
        let err = check_message(&msg, &MessageLimits::default()).unwrap_err();

        assert_eq!(err, GuardError::BadBloom("4000000000 probes".into()));
    }

    #[test]
    fn accepts_a_well_formed_bloom() {
        let msg = message_with_bloom(3, 10, 7, 4);

        assert_eq!(check_message(&msg, &MessageLimits::default()), Ok(()));
    }

    #[test]
    fn refuses_bits_that_do_not_match_the_declared_size() {
        let msg = message_with_bloom(3, 10, 7, 3);

        assert!(matches!(
            check_message(&msg, &MessageLimits::default()),
            Err(GuardError::BadBloom(_))
        ));
    }

    #[test]
    fn refuses_hash_counts_beyond_the_limit_and_truncation() {
        let mut huge = vec![MESSAGE_V1];
        leb(u64::MAX / 2, &mut huge);
        let truncated = [MESSAGE_V1, 2, 0xaa];
        let limits = MessageLimits::default();

        assert!(matches!(
            check_message(&huge, &limits),
            Err(GuardError::TooMany { .. })
        ));
        assert_eq!(
            check_message(&truncated, &limits),
            Err(GuardError::Truncated("heads"))
        );
        assert_eq!(check_message(&[], &limits), Err(GuardError::Empty));
        assert_eq!(
            check_message(b"hello", &limits),
            Err(GuardError::UnknownType(b'h'))
        );
    }

    #[test]
    fn accepts_what_automerge_itself_generates() {
        use automerge::sync::{State, SyncDoc};
        use automerge::transaction::Transactable;

        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "k", 1).unwrap();
        let msg = doc.sync().generate_sync_message(&mut State::new()).unwrap();

        assert_eq!(
            check_message(&msg.encode(), &MessageLimits::default()),
            Ok(())
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(0u8..=255, 0..512)) {
            let _ = check_message(&bytes, &MessageLimits::default());
        }

        #[test]
        fn whatever_passes_the_guard_decodes_without_panicking(
            tail in proptest::collection::vec(0u8..=255, 0..256),
        ) {
            let mut bytes = vec![MESSAGE_V1];
            bytes.extend(tail);
            if check_message(&bytes, &MessageLimits::default()).is_ok() {
                let _ = automerge::sync::Message::decode(&bytes);
            }
        }
    }
}
