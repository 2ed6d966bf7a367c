//! One side of the sync of one document with one remote peer.
//!
//! [`DocPeer`] pairs a document with the Automerge sync state for one remote peer. It does no
//! I/O: the caller moves the bytes (over HTTP, or in memory in tests), persists the state
//! with [`DocPeer::state_bytes`] between sessions, and loops until neither side has anything
//! to send. Every incoming message goes through [`check_message`] before Automerge sees it.

use automerge::AutoCommit;
use automerge::sync::{Message, State, SyncDoc};

use crate::guard::{GuardError, MessageLimits, check_message};

/// Why a sync message from a peer was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("sync message could not be decoded: {0}")]
    Decode(String),
    #[error("sync message could not be applied: {0}")]
    Apply(#[from] automerge::AutomergeError),
    #[error("saved sync state is corrupt: {0}")]
    State(String),
}

impl SyncError {
    /// The stable code for the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(_) => "sync_message_refused",
            Self::Decode(_) => "malformed_sync_message",
            Self::Apply(_) => "sync_message_not_applicable",
            Self::State(_) => "sync_state_corrupt",
        }
    }
}

/// The sync state of one document towards one remote peer.
#[derive(Debug, Default)]
pub struct DocPeer {
    state: State,
}

impl DocPeer {
    /// A peer we have never synced with.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores the state saved by [`DocPeer::state_bytes`].
    pub fn from_state_bytes(bytes: &[u8]) -> Result<Self, SyncError> {
        let state = State::decode(bytes).map_err(|e| SyncError::State(e.to_string()))?;
        Ok(Self { state })
    }

    /// The part of the state worth keeping between sessions (what both sides had in common).
    pub fn state_bytes(&self) -> Vec<u8> {
        self.state.encode()
    }

    /// The next message for the peer, or `None` when there is nothing to say.
    pub fn generate(&mut self, doc: &mut AutoCommit) -> Option<Vec<u8>> {
        doc.sync()
            .generate_sync_message(&mut self.state)
            .map(Message::encode)
    }

    /// Checks and applies a message from the peer.
    pub fn receive(
        &mut self,
        doc: &mut AutoCommit,
        bytes: &[u8],
        limits: &MessageLimits,
    ) -> Result<(), SyncError> {
        check_message(bytes, limits)?;
        let message = Message::decode(bytes).map_err(|e| SyncError::Decode(e.to_string()))?;

        doc.sync().receive_sync_message(&mut self.state, message)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentHash;
    use crate::evidence::{EvidenceDoc, NoteRecord, PhotoRecord, TrackPoint};
    use automerge::ActorId;

    const BLOOM_ZERO_BITS: &[u8] =
        include_bytes!("../../../shared/fixtures/sync-invalid/bloom-zero-bits.bin");

    /// Two peers exchange messages until both are quiet; returns the number of messages.
    fn converge(a: &mut EvidenceDoc, b: &mut EvidenceDoc) -> usize {
        let (mut pa, mut pb) = (DocPeer::new(), DocPeer::new());
        let limits = MessageLimits::default();
        let mut sent = 0;
        for _ in 0..20 {
            let to_b = pa.generate(a.automerge());
            let to_a = pb.generate(b.automerge());
            if to_b.is_none() && to_a.is_none() {
                return sent;
            }
            if let Some(m) = to_b {
                pb.receive(b.automerge(), &m, &limits).unwrap();
                sent += 1;
            }
            if let Some(m) = to_a {
                pa.receive(a.automerge(), &m, &limits).unwrap();
                sent += 1;
            }
        }
        panic!("peers did not converge in 20 rounds");
    }

    fn note(id: &str) -> NoteRecord {
        NoteRecord {
            id: id.into(),
            text: format!("note {id}"),
            at_ms: 1,
        }
    }

    fn actor(n: u8) -> ActorId {
        ActorId::from(vec![n; 16])
    }

    #[test]
    fn two_phones_and_the_server_merge_offline_edits_with_nothing_lost() {
        // 1. The server and two phones of one worker each hold the order's document.
        let mut server = EvidenceDoc::new("order-1", actor(0)).unwrap();
        let mut phone_a = EvidenceDoc::new("order-1", actor(1)).unwrap();
        let mut phone_b = EvidenceDoc::new("order-1", actor(2)).unwrap();

        // 2. Offline, each phone records different evidence.
        phone_a.add_note(&note("a1"), 10).unwrap();
        let bytes = b"photo from phone b";
        let photo = PhotoRecord {
            id: "b-photo".into(),
            hash: ContentHash::of(bytes),
            size: bytes.len() as u64,
            media_type: "image/jpeg".into(),
            captured_at_ms: 11,
            fix: None,
            device_id: "phone-b".into(),
        };
        phone_b.add_photo(&photo, 11).unwrap();
        let point = TrackPoint {
            lat: 1.0,
            lon: 1.0,
            at_ms: Some(12),
            accuracy_m: None,
            elevation_m: None,
        };
        phone_a
            .append_track(std::slice::from_ref(&point), 12)
            .unwrap();
        phone_b
            .append_track(
                &[TrackPoint {
                    at_ms: Some(13),
                    ..point.clone()
                }],
                13,
            )
            .unwrap();

        // 3. Each phone syncs with the server, then phone A again.
        converge(&mut phone_a, &mut server);
        converge(&mut phone_b, &mut server);
        converge(&mut phone_a, &mut server);

        // 4. Everyone holds everything.
        for doc in [&server, &phone_a, &phone_b] {
            let evidence = doc.read().unwrap();
            assert_eq!(evidence.notes, vec![note("a1")]);
            assert_eq!(evidence.photos, vec![photo.clone()]);
            assert_eq!(evidence.track.len(), 2);
        }
        let read = server.read().unwrap();
        assert_eq!(read, phone_a.read().unwrap());
    }

    #[test]
    fn an_up_to_date_pair_exchanges_nothing_after_the_first_round() {
        let mut a = EvidenceDoc::new("o", actor(1)).unwrap();
        let mut b = EvidenceDoc::new("o", actor(2)).unwrap();
        a.add_note(&note("x"), 1).unwrap();

        converge(&mut a, &mut b);
        let mut pa = DocPeer::new();
        let mut pb = DocPeer::new();
        let first = pa.generate(a.automerge()).unwrap();
        pb.receive(b.automerge(), &first, &MessageLimits::default())
            .unwrap();
        let reply = pb.generate(b.automerge()).unwrap();
        pa.receive(a.automerge(), &reply, &MessageLimits::default())
            .unwrap();

        assert!(pa.generate(a.automerge()).is_none());
    }

    #[test]
    fn the_zero_bits_bloom_fixture_is_refused_and_the_document_still_syncs() {
        let mut doc = EvidenceDoc::new("o", actor(1)).unwrap();
        doc.add_note(&note("kept"), 1).unwrap();
        let mut peer = DocPeer::new();

        let err = peer.receive(doc.automerge(), BLOOM_ZERO_BITS, &MessageLimits::default());
        let next = peer.generate(doc.automerge());

        assert_eq!(err.unwrap_err().code(), "sync_message_refused");
        assert!(next.is_some());
        assert_eq!(doc.read().unwrap().notes, vec![note("kept")]);
    }

    #[test]
    fn sync_state_survives_a_save_and_restore() {
        let mut a = EvidenceDoc::new("o", actor(1)).unwrap();
        let mut b = EvidenceDoc::new("o", actor(2)).unwrap();
        a.add_note(&note("x"), 1).unwrap();
        converge(&mut a, &mut b);

        let saved = DocPeer::new().state_bytes();
        let restored = DocPeer::from_state_bytes(&saved);

        assert!(restored.is_ok());
        assert!(DocPeer::from_state_bytes(b"not a state").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! Property-based fuzzing of the whole receive path: whatever bytes a peer sends, a
    //! document that receives them and then generates its next message does not panic or
    //! abort, and keeps what it had.

    use super::*;
    use crate::evidence::{EvidenceDoc, NoteRecord};
    use automerge::ActorId;
    use proptest::prelude::*;

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

    /// A sync message with one "have" whose Bloom header is chosen by the fuzzer, no changes,
    /// and fuzzed flag bytes. Most of the time the bits are as long as the header says, so
    /// the message decodes and reaches Automerge's Bloom filter code.
    fn with_bloom(entries: u64, bits: u64, probes: u64, exact: bool, flags: Vec<u8>) -> Vec<u8> {
        let mut bloom = Vec::new();
        leb(entries, &mut bloom);
        leb(bits, &mut bloom);
        leb(probes, &mut bloom);
        let declared = entries.saturating_mul(bits).div_ceil(8);
        let len = if exact && declared <= 4096 {
            declared
        } else {
            declared % 7
        };
        bloom.extend(std::iter::repeat_n(0xa5, len as usize));

        let mut msg = vec![0x42, 0, 0, 1, 0];
        leb(bloom.len() as u64, &mut msg);
        msg.extend(bloom);
        msg.push(0);
        msg.extend(flags);
        msg
    }

    fn receive_then_generate(bytes: &[u8]) {
        let mut doc = EvidenceDoc::new("o", ActorId::from(vec![7; 16])).unwrap();
        let note = NoteRecord {
            id: "n".into(),
            text: "kept".into(),
            at_ms: 1,
        };
        doc.add_note(&note, 1).unwrap();
        let mut peer = DocPeer::new();

        let _ = peer.receive(doc.automerge(), bytes, &MessageLimits::default());
        let _ = peer.generate(doc.automerge());
        assert_eq!(doc.read().unwrap().notes, vec![note]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn hostile_bloom_headers(
            entries in prop_oneof![0u64..4, Just(u64::from(u32::MAX)), any::<u64>()],
            bits in prop_oneof![0u64..16, Just(u64::from(u32::MAX)), any::<u64>()],
            probes in prop_oneof![0u64..16, Just(4_000_000_000u64), any::<u64>()],
            exact in proptest::bool::weighted(0.9),
            flags in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            receive_then_generate(&with_bloom(entries, bits, probes, exact, flags));
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_type(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = vec![0x42];
            bytes.extend(tail);
            receive_then_generate(&bytes);
        }
    }
}
