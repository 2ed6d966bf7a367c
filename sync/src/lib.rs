//! The protocol flexwork devices and the server speak.
//!
//! A worker's phone records evidence offline; later it meets the server and the two exchange
//! what the other lacks. This crate holds everything both sides must agree on, and nothing
//! that touches a socket, a file or a clock: time and randomness (Automerge actor ids, record
//! ids, `now_ms`) are passed in by the caller, so the protocol runs deterministically in
//! tests with any number of simulated peers.
//!
//! # Data flow
//!
//! 1. **Evidence documents** ([`evidence`]). Each order has one Automerge document. Devices
//!    append photos (by [`ContentHash`], never bytes), trajectory points, signature strokes,
//!    notes and submissions; the server writes its review (verdict and findings) back into
//!    the same document so the phone can show the worker why something was flagged.
//! 2. **Document sync** ([`peer`], [`protocol`]). `POST /api/v1/sync` carries a
//!    [`SyncRequest`]: one Automerge sync message per document. The server applies each one
//!    and answers with its own messages in a [`SyncResponse`], together with the worker's
//!    orders (how tasks reach the phone) and the media it still wants. The device repeats
//!    rounds until neither side has anything to send. Every incoming message first passes
//!    [`guard::check_message`], which bounds every size and count it declares, because
//!    Automerge's own decoder trusts some of them.
//! 3. **Media upload** ([`MediaStatus`]). Blobs are named by SHA-256 and uploaded in chunks
//!    with `PUT /api/v1/media/{hash}?offset=N&size=TOTAL`; an interrupted upload resumes at
//!    the offset the server reports. The server stores a blob only when the hash of all its
//!    bytes matches the name.
//! 4. **Device credentials** ([`device_auth`]). A worker's phone signs each call with a key it
//!    registered at its first sign-in; the text it signs is defined here.
//!
//! Bodies are CBOR and start with a protocol version; a peer speaking an unsupported
//! version gets [`ProtocolError::UnsupportedVersion`].
//!
//! # Example: a phone and the server converge
//!
//! ```
//! use automerge::ActorId;
//! use flexwork_sync::{DocPeer, EvidenceDoc, MessageLimits, NoteRecord};
//!
//! // Both sides create the order's document; the skeleton is shared, not duplicated.
//! let mut phone = EvidenceDoc::new("order-42", ActorId::from(vec![1; 16]))?;
//! let mut server = EvidenceDoc::new("order-42", ActorId::from(vec![2; 16]))?;
//!
//! // Offline, the worker writes a note.
//! let text = "gate was locked, used side door".into();
//! let note = NoteRecord { id: "n1".into(), text, at_ms: 1 };
//! phone.add_note(&note, 1)?;
//!
//! // Online: exchange messages until both sides are quiet.
//! let (mut phone_peer, mut server_peer) = (DocPeer::new(), DocPeer::new());
//! let limits = MessageLimits::default();
//! loop {
//!     let to_server = phone_peer.generate(phone.automerge());
//!     let to_phone = server_peer.generate(server.automerge());
//!     if to_server.is_none() && to_phone.is_none() {
//!         break;
//!     }
//!     if let Some(bytes) = to_server {
//!         server_peer.receive(server.automerge(), &bytes, &limits)?;
//!     }
//!     if let Some(bytes) = to_phone {
//!         phone_peer.receive(phone.automerge(), &bytes, &limits)?;
//!     }
//! }
//!
//! assert_eq!(server.read()?.notes, vec![note]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod device_auth;
pub mod evidence;
pub mod guard;
pub mod hash;
pub mod peer;
pub mod protocol;

pub use evidence::{
    Evidence, EvidenceDoc, EvidenceError, FindingRecord, Fix, NoteRecord, PhotoRecord,
    ReviewRecord, SignatureRecord, StrokePoint, Submission, TrackPoint,
};
pub use guard::{GuardError, MessageLimits};
pub use hash::{ContentHash, ContentHasher, InvalidHash};
pub use peer::{DocPeer, SyncError};
pub use protocol::{
    DocMessage, DocRejection, ErrorBody, LoginRequest, LoginResponse, MediaState, MediaStatus,
    OrderSummary, PROTOCOL_VERSION, ProtocolError, RequirementsSpec, SiteSpec, SyncRequest,
    SyncResponse, WindowSpec,
};
