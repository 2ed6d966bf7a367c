//! Reading the facts of one photo from its bytes, within fixed memory bounds: content hash,
//! media type, dimensions, EXIF and a perceptual hash.

use std::io::Cursor;

use flexwork_sync::ContentHash;
use image::{DynamicImage, ImageFormat, ImageReader, Limits, metadata::Orientation};
use image_hasher::{HashAlg, HasherConfig};
use serde::{Deserialize, Serialize};

use super::exif::{ExifFacts, read_exif};
use super::jpeg;
use super::thresholds::Thresholds;

/// Whether the image could be decoded, and how big it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decoding {
    /// The pixels were decoded.
    Decoded {
        /// Width in pixels as stored (before EXIF orientation).
        width: u32,
        /// Height in pixels as stored.
        height: u32,
    },
    /// The header declares more pixels than allowed; the pixels were not decoded.
    TooLarge {
        /// Declared width in pixels.
        width: u32,
        /// Declared height in pixels.
        height: u32,
    },
    /// The bytes are not an image this server can decode.
    Failed {
        /// What the decoder said.
        reason: String,
    },
}

/// What [`analyze_photo`] read from a photo's bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoFacts {
    /// SHA-256 of the bytes, as the content hash the sync layer uses.
    pub sha256: ContentHash,
    /// Length of the file in bytes.
    pub size_bytes: u64,
    /// Media type sniffed from the first bytes, for example `image/jpeg`.
    pub media_type: Option<String>,
    /// Decoding outcome and dimensions.
    pub decoding: Decoding,
    /// 64-bit difference hash of the decoded image as displayed (EXIF orientation applied),
    /// as 16 hexadecimal digits.
    #[serde(with = "hex_u64")]
    pub dhash: Option<u64>,
    /// The EXIF facts, when the file has an EXIF block.
    pub exif: Option<ExifFacts>,
    /// Why the EXIF block could not be read, when it is present but broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif_error: Option<String>,
}

impl PhotoFacts {
    /// Whether the pixels were decoded.
    pub fn is_decoded(&self) -> bool {
        matches!(self.decoding, Decoding::Decoded { .. })
    }
}

/// Reads everything verification needs from a photo's bytes.
///
/// Never panics and never decodes an image larger than `thresholds.max_pixels` or lets the
/// decoder allocate more than `thresholds.max_decoder_alloc_bytes`: such files come back as
/// [`Decoding::TooLarge`] or [`Decoding::Failed`].
pub fn analyze_photo(bytes: &[u8], thresholds: &Thresholds) -> PhotoFacts {
    let format = image::guess_format(bytes).ok();
    let (exif, exif_error) = exif_of(bytes, format);
    let orientation = exif.as_ref().and_then(|e| e.orientation);

    let (decoding, image) = decode(bytes, format, thresholds);
    let dhash = image.map(|img| difference_hash(img, orientation));

    PhotoFacts {
        sha256: ContentHash::of(bytes),
        size_bytes: bytes.len() as u64,
        media_type: media_type(bytes, format),
        decoding,
        dhash,
        exif,
        exif_error,
    }
}

fn exif_of(bytes: &[u8], format: Option<ImageFormat>) -> (Option<ExifFacts>, Option<String>) {
    if format.is_none() && !is_heif(bytes) {
        return (None, None);
    }

    match read_exif(bytes) {
        Ok(exif) => (exif, None),
        Err(e) => (None, Some(e)),
    }
}

fn media_type(bytes: &[u8], format: Option<ImageFormat>) -> Option<String> {
    match format {
        Some(format) => Some(format.to_mime_type().to_owned()),
        None if is_heif(bytes) => Some("image/heic".to_owned()),
        None => None,
    }
}

/// An ISO base media file whose brand is one of the HEIF/HEIC brands phones write.
fn is_heif(bytes: &[u8]) -> bool {
    let brand = bytes.get(4..12);
    let brands: [&[u8]; 5] = [
        b"ftypheic",
        b"ftypheix",
        b"ftypmif1",
        b"ftyphevc",
        b"ftypmsf1",
    ];

    brand.is_some_and(|b| brands.contains(&b))
}

/// Decodes the image, first reading the declared size from the header so that an oversized
/// image is refused before any pixel buffer is allocated, and checking a JPEG's structure,
/// which the lenient decoder would paint over.
fn decode(
    bytes: &[u8],
    format: Option<ImageFormat>,
    thresholds: &Thresholds,
) -> (Decoding, Option<DynamicImage>) {
    let Some(format) = format else {
        return (failed(unknown_format_reason(bytes)), None);
    };

    let (width, height) = match reader(bytes, format, thresholds).into_dimensions() {
        Ok(dimensions) => dimensions,
        Err(e) => return (failed(e.to_string()), None),
    };
    if u64::from(width) * u64::from(height) > thresholds.max_pixels {
        return (Decoding::TooLarge { width, height }, None);
    }

    if format == ImageFormat::Jpeg
        && let Err(damage) = jpeg::check_structure(bytes)
    {
        return (failed(format!("the JPEG data is damaged: {damage}")), None);
    }

    match reader(bytes, format, thresholds).decode() {
        Ok(img) => (Decoding::Decoded { width, height }, Some(img)),
        Err(e) => (failed(e.to_string()), None),
    }
}

/// A JPEG of the photo as a person sees it (EXIF orientation applied), at most `max` pixels
/// on its longer side and never larger than the photo, decoded under the same limits as
/// [`analyze_photo`]. The error says why the photo cannot be shown.
pub fn thumbnail(bytes: &[u8], max: u32, thresholds: &Thresholds) -> Result<Vec<u8>, String> {
    let format = image::guess_format(bytes).ok();
    let orientation = exif_of(bytes, format)
        .0
        .and_then(|e| e.orientation)
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif);
    let image = match decode(bytes, format, thresholds) {
        (_, Some(image)) => image,
        (Decoding::TooLarge { width, height }, None) => {
            return Err(format!(
                "the image is too large to decode ({width}×{height})"
            ));
        }
        (Decoding::Failed { reason }, None) => return Err(reason),
        (Decoding::Decoded { .. }, None) => return Err("the image did not decode".to_owned()),
    };
    // Smaller than asked already: shown as it is, never enlarged.
    let fits = image.width() <= max && image.height() <= max;
    let mut small = if fits {
        DynamicImage::ImageRgb8(image.to_rgb8())
    } else {
        DynamicImage::ImageRgb8(image.thumbnail(max, max).to_rgb8())
    };
    if let Some(orientation) = orientation {
        small.apply_orientation(orientation);
    }
    let mut out = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    small
        .write_with_encoder(encoder)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

fn failed(reason: String) -> Decoding {
    Decoding::Failed { reason }
}

fn unknown_format_reason(bytes: &[u8]) -> String {
    if is_heif(bytes) {
        "HEIF/HEIC images are not decoded by the server; the app must upload JPEG".to_owned()
    } else if bytes.is_empty() {
        "the file is empty".to_owned()
    } else {
        "the bytes are not a JPEG, PNG, WebP, GIF or TIFF image".to_owned()
    }
}

fn reader<'a>(
    bytes: &'a [u8],
    format: ImageFormat,
    thresholds: &Thresholds,
) -> ImageReader<Cursor<&'a [u8]>> {
    let side = u32::try_from(thresholds.max_pixels).unwrap_or(u32::MAX);
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(thresholds.max_decoder_alloc_bytes);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    reader
}

/// The 64-bit difference hash (9×8 grey thumbnail, one bit per horizontal neighbour pair) of
/// the image as a person sees it, so that a copy re-saved upright by any editor still matches.
fn difference_hash(img: DynamicImage, orientation: Option<u16>) -> u64 {
    // The hash compares neighbours in a 9×8 grey image. A 64-pixel grey thumbnail holds the
    // same coarse picture, and shrinking to it first costs a fraction of resampling every
    // pixel of the full photo down to 9×8.
    let mut img = DynamicImage::ImageLuma8(img.thumbnail(64, 64).to_luma8());
    let orientation = orientation
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif);
    if let Some(orientation) = orientation {
        img.apply_orientation(orientation);
    }

    let hasher = HasherConfig::new()
        .hash_alg(HashAlg::Gradient)
        .hash_size(8, 8)
        .to_hasher();
    let hash = hasher.hash_image(&img);
    hash.as_bytes()
        .iter()
        .fold(0u64, |acc, byte| acc << 8 | u64::from(*byte))
}

/// Serializes an optional 64-bit hash as 16 hexadecimal digits, which JSON readers that hold
/// numbers as doubles cannot corrupt.
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&format!("{v:016x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| u64::from_str_radix(&t, 16).map_err(D::Error::custom))
            .transpose()
    }
}
