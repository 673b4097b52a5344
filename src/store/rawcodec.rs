//! Exact, compact storage of original file bytes.
//!
//! The original bytes of a file are stored as a delta against the snapshot's own canonical
//! rendering (`crate::core::canonical::render`, in the original's line-ending style): the copies
//! and literals of `rawdelta`, compressed with zstd. Since the original and the rendering differ
//! only in tag order and small layout details, a 4 MB Public file is stored in a few kilobytes,
//! and each stored original depends only on its own snapshot's content, never on other weeks.
//! Decoding checks the sha256 recorded at import, so a stored original is either returned exactly
//! or refused.
//!
//! Stores written before the delta hold zstd frames compressed with the rendering as a reference
//! prefix; they are still decoded (a zstd frame starts with its own magic number, which the
//! delta's never does).

use std::io::Read;

use crate::core::digest::sha256_hex;
use crate::core::parse::MAX_FILE_BYTES;
use crate::store::rawdelta;

/// How a delta blob starts: then the original's length (8 bytes, little-endian) and the zstd
/// frame of the ops.
const DELTA_MAGIC: &[u8; 4] = b"TWD1";
/// How a zstd frame starts: blobs written by tagwall before the delta.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// zstd level for the ops: they are small, so a middle level costs little.
const OPS_LEVEL: i32 = 3;

/// Why stored bytes could not be turned back into the original.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// zstd failed (the stored blob is damaged).
    #[error("the stored original does not decompress ({0}): the store may be damaged")]
    Zstd(#[from] std::io::Error),
    /// The delta does not fit its base (the stored blob is damaged).
    #[error("the stored original cannot be rebuilt ({0}): the store may be damaged")]
    Delta(#[from] rawdelta::DeltaError),
    /// The result's sha256 differs from the one recorded at import.
    #[error("the stored original decompresses to other bytes (sha256 {actual}, recorded {expected}): the store may be damaged")]
    Mismatch {
        /// What was recorded at import.
        expected: String,
        /// What decoding gave.
        actual: String,
    },
}

/// Encodes `raw` against `base`, checked to give `raw` back exactly: the stored frame is
/// decompressed again and its ops walked over `base` and compared with `raw` piece by piece (a
/// byte comparison, cheaper than hashing a rebuilt copy). A mismatch is an error, never a blob.
pub fn encode(raw: &[u8], base: &[u8]) -> Result<Vec<u8>, RawError> {
    let ops = rawdelta::encode(raw, base);
    let frame = zstd::bulk::compress(&ops, OPS_LEVEL)?;
    if zstd::bulk::decompress(&frame, ops.len())? != ops || !rawdelta::rebuilds(&ops, base, raw)? {
        return Err(RawError::Mismatch {
            expected: sha256_hex(raw),
            actual: "(other bytes)".into(),
        });
    }
    let mut blob = Vec::with_capacity(12 + frame.len());
    blob.extend_from_slice(DELTA_MAGIC);
    blob.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    blob.extend_from_slice(&frame);
    Ok(blob)
}

/// Decodes `blob` against `base`, unchecked: see [`decode`].
pub fn decompress(blob: &[u8], base: &[u8]) -> Result<Vec<u8>, RawError> {
    if blob.starts_with(&ZSTD_MAGIC) {
        return decompress_zstd(blob, base);
    }
    let rest = blob
        .strip_prefix(DELTA_MAGIC)
        .ok_or_else(|| damaged("neither a delta nor a zstd frame"))?;
    let (len, frame) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| damaged("the delta has no length"))?;
    let len = u64::from_le_bytes(*len);
    if len > MAX_FILE_BYTES {
        return Err(damaged(
            "the delta claims a larger file than any import takes",
        ));
    }
    let len = len as usize;
    // The ops hold at most the literals and a few bytes per copy.
    let ops = zstd::bulk::decompress(frame, len + len / 2 + 4096)?;
    Ok(rawdelta::apply(&ops, base, len)?)
}

fn damaged(what: &str) -> RawError {
    RawError::Zstd(std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// Decompresses a zstd frame written with `base` as its reference prefix.
fn decompress_zstd(blob: &[u8], base: &[u8]) -> Result<Vec<u8>, RawError> {
    let mut dec = zstd::stream::read::Decoder::with_ref_prefix(blob, base)?;
    dec.window_log_max(31)?;
    let mut out = Vec::new();
    dec.take(MAX_FILE_BYTES + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(damaged(
            "the frame decompresses to more than any import takes",
        ));
    }
    Ok(out)
}

/// Decodes `blob` against `base` and checks the result's sha256 against `expected_sha256`.
pub fn decode(blob: &[u8], base: &[u8], expected_sha256: &str) -> Result<Vec<u8>, RawError> {
    let out = decompress(blob, base)?;
    let actual = sha256_hex(&out);
    if actual != expected_sha256 {
        return Err(RawError::Mismatch {
            expected: expected_sha256.to_string(),
            actual,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_small_against_a_similar_base() {
        let base: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("\"10.{}.{}.0/24\",\n", i % 251, i % 13).into_bytes())
            .collect();
        let mut raw = base.clone();
        raw.splice(1000..1000, b"inserted".iter().copied());
        let blob = encode(&raw, &base).unwrap();
        assert!(blob.len() < 2_000, "{} bytes", blob.len());
        assert_eq!(decode(&blob, &base, &sha256_hex(&raw)).unwrap(), raw);
    }

    /// A blob as tagwall wrote them before the delta.
    fn zstd_blob(raw: &[u8], base: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 1, base).unwrap();
        enc.window_log(22).unwrap();
        enc.long_distance_matching(true).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(raw).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn blobs_written_before_the_delta_still_decode() {
        let base = b"line one of the base\nline two of the base\n".repeat(500);
        let mut raw = base.clone();
        raw.splice(100..100, b"inserted".iter().copied());
        let blob = zstd_blob(&raw, &base);
        assert_eq!(decode(&blob, &base, &sha256_hex(&raw)).unwrap(), raw);
        assert!(decode(&blob, &base, "00").is_err());
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let base = b"line one of the base\nline two of the base\n".repeat(500);
        let blob = encode(&base, &base).unwrap();
        for bad in [
            &blob[..3],
            &blob[..10],
            &blob[..blob.len() - 1],
            b"garbage!".as_slice(),
        ] {
            assert!(decompress(bad, &base).is_err());
        }
        let mut huge = blob.clone();
        huge[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decompress(&huge, &base).is_err());
    }

    #[test]
    fn a_wrong_base_or_hash_is_refused() {
        let base = b"hello world, hello world\n".repeat(100);
        let mut raw = base.clone();
        raw.splice(50..50, b"changed".iter().copied());
        let blob = encode(&raw, &base).unwrap();
        let err = decode(&blob, &base, "00").unwrap_err();
        assert!(matches!(err, RawError::Mismatch { .. }), "{err}");
        let other = b"something else entirely\n".repeat(100);
        assert!(decode(&blob, &other, &sha256_hex(&raw)).is_err());
    }
}
