//! [`Bytes`]: a byte string from the app (a photo, a GPX file, a face image) that crosses the
//! boundary in one copy.
//!
//! UniFFI 0.32 passes a `Vec<u8>` as a length and the bytes (the apps' `ByteArray`, `Data`,
//! `bytes`), but lifts it on the Rust side as a sequence like any other, one element at a
//! time with a bounds check each: about 2 ns a byte, 0.35 ms for a 160 KB photo. `Bytes`
//! declares itself to the bindings exactly as `Vec<u8>` does (the generated Kotlin, Swift and
//! Python are the same) and reads the same layout with one copy of the whole slice.

#![allow(unsafe_code)] // UniFFI's converter traits are `unsafe` to implement.

use uniffi::deps::bytes::{Buf, BufMut};
use uniffi::{FfiConverter, MetadataBuffer, RustBuffer, TypeId};

use crate::UniFfiTag;

/// Bytes passed to or from the app. Holds a `Vec<u8>`; `Debug` shows only the length (a face
/// image is personal data).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes as a vector, without copying.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

/// The length as UniFFI writes it: a big-endian `i32` before the bytes.
fn length_prefix(buf: &mut &[u8]) -> uniffi::Result<usize> {
    uniffi::check_remaining(buf, 4)?;
    let len = usize::try_from(buf.get_i32())?;
    uniffi::check_remaining(buf, len)?;
    Ok(len)
}

// SAFETY: the layout is the one UniFFI uses for `Vec<u8>` (and declares by the same type
// metadata): an `i32` length, then the bytes, in a `RustBuffer` owned by the receiver.
unsafe impl FfiConverter<UniFfiTag> for Bytes {
    type FfiType = RustBuffer;

    fn lower(obj: Self) -> RustBuffer {
        let mut buf = Vec::with_capacity(obj.0.len() + 4);
        Self::write(obj, &mut buf);
        RustBuffer::from_vec(buf)
    }

    fn try_lift(buf: RustBuffer) -> uniffi::Result<Self> {
        let mut vec = buf.destroy_into_vec();
        let mut rest = vec.as_slice();
        let len = length_prefix(&mut rest)?;
        if rest.len() != len {
            uniffi::deps::anyhow::bail!(
                "junk data left in buffer after lifting (count: {})",
                rest.len() - len
            );
        }
        // Drop the prefix in place: one move of the bytes within the buffer, no allocation.
        vec.drain(..4);
        Ok(Self(vec))
    }

    fn write(obj: Self, buf: &mut Vec<u8>) {
        // UniFFI's own limit for sequences, which panics beyond it as UniFFI does; nothing
        // the interface returns comes near 2 GiB.
        let len = i32::try_from(obj.0.len()).expect("a byte string over 2 GiB");
        buf.put_i32(len);
        buf.put_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<Self> {
        let len = length_prefix(buf)?;
        let bytes = buf[..len].to_vec();
        buf.advance(len);
        Ok(Self(bytes))
    }

    const TYPE_ID_META: MetadataBuffer = <Vec<u8> as TypeId<UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local Bytes);

#[cfg(test)]
mod tests {
    use uniffi::{Lift, Lower};

    use super::*;

    /// What the apps send: the layout UniFFI's `Vec<u8>` lowering writes.
    fn as_vec_lowers(bytes: &[u8]) -> RustBuffer {
        <Vec<u8> as Lower<UniFfiTag>>::lower(bytes.to_vec())
    }

    #[test]
    fn reads_what_a_vec_of_bytes_writes_and_writes_what_it_reads() {
        let photo: Vec<u8> = (0..=255).cycle().take(70_001).collect();
        for bytes in [Vec::new(), vec![0xff], photo] {
            let lifted = <Bytes as Lift<UniFfiTag>>::try_lift(as_vec_lowers(&bytes)).unwrap();
            assert_eq!(lifted.0, bytes);

            let lowered = <Bytes as Lower<UniFfiTag>>::lower(lifted);
            let back = <Vec<u8> as Lift<UniFfiTag>>::try_lift(lowered).unwrap();
            assert_eq!(back, bytes);
        }
    }

    #[test]
    fn a_record_field_reads_its_bytes_and_leaves_the_rest() {
        let mut buf = Vec::new();
        <Vec<u8> as Lower<UniFfiTag>>::write(b"jpeg".to_vec(), &mut buf);
        buf.extend_from_slice(&[1, 2]);
        let mut rest = buf.as_slice();
        let read = <Bytes as Lift<UniFfiTag>>::try_read(&mut rest).unwrap();
        assert_eq!(read.as_ref(), b"jpeg");
        assert_eq!(rest, &[1, 2]);
    }

    #[test]
    fn a_short_or_overlong_buffer_is_refused() {
        let mut truncated = Vec::new();
        truncated.put_i32(10);
        truncated.extend_from_slice(b"abc");
        let refused = <Bytes as Lift<UniFfiTag>>::try_lift(RustBuffer::from_vec(truncated));
        assert!(refused.is_err());

        let mut overlong = Vec::new();
        overlong.put_i32(1);
        overlong.extend_from_slice(b"ab");
        let refused = <Bytes as Lift<UniFfiTag>>::try_lift(RustBuffer::from_vec(overlong));
        assert!(refused.is_err());

        let negative = RustBuffer::from_vec((-1_i32).to_be_bytes().to_vec());
        assert!(<Bytes as Lift<UniFfiTag>>::try_lift(negative).is_err());
    }

    #[test]
    fn debug_shows_the_length_only() {
        assert_eq!(format!("{:?}", Bytes(vec![7; 3])), "Bytes(3 bytes)");
    }
}
