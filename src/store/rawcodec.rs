//! Exact, compact storage of original file bytes.
//!
//! The original bytes of a file are compressed with zstd using the snapshot's own canonical
//! rendering (`crate::core::canonical::render`, in the original's line-ending style) as a reference
//! prefix. Since the original and the rendering differ only in tag order and small layout
//! details, a 4 MB Public file is stored in about 3 KB, and each stored original depends only on
//! its own snapshot's content, never on other weeks. Decoding checks the sha256 recorded at import,
//! so a stored original is either returned exactly or refused.

use std::io::{Read, Write};

use crate::core::digest::sha256_hex;

/// Compression level: a low level already finds the long matches against the reference.
const LEVEL: i32 = 1;

/// Why stored bytes could not be turned back into the original.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// zstd failed (the stored blob is damaged).
    #[error("the stored original does not decompress ({0}): the store may be damaged")]
    Zstd(#[from] std::io::Error),
    /// The result's sha256 differs from the one recorded at import.
    #[error("the stored original decompresses to other bytes (sha256 {actual}, recorded {expected}): the store may be damaged")]
    Mismatch {
        /// What was recorded at import.
        expected: String,
        /// What decoding gave.
        actual: String,
    },
}

fn window_log(base: &[u8], raw_len: usize) -> u32 {
    let total = (base.len() + raw_len).max(1 << 20) as u64;
    (64 - (total - 1).leading_zeros()).clamp(20, 30)
}

/// Compresses `raw` against `base`.
pub fn encode(raw: &[u8], base: &[u8]) -> Result<Vec<u8>, RawError> {
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), LEVEL, base)?;
    enc.window_log(window_log(base, raw.len()))?;
    enc.long_distance_matching(true)?;
    enc.include_checksum(true)?;
    enc.set_pledged_src_size(Some(raw.len() as u64))?;
    enc.write_all(raw)?;
    Ok(enc.finish()?)
}

/// Decompresses `blob` against `base`, unchecked: see [`decode`].
pub fn decompress(blob: &[u8], base: &[u8]) -> Result<Vec<u8>, RawError> {
    let mut dec = zstd::stream::read::Decoder::with_ref_prefix(blob, base)?;
    dec.window_log_max(31)?;
    let mut out = Vec::new();
    dec.read_to_end(&mut out)?;
    Ok(out)
}

/// Decompresses `blob` against `base` and checks the result's sha256 against `expected_sha256`.
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

    #[test]
    fn a_wrong_base_or_hash_is_refused() {
        let base = b"hello world, hello world".repeat(100);
        let raw = b"hello world!".repeat(100);
        let blob = encode(&raw, &base).unwrap();
        let err = decode(&blob, &base, "00").unwrap_err();
        assert!(matches!(err, RawError::Mismatch { .. }), "{err}");
        let other = b"something else entirely".repeat(100);
        assert!(decode(&blob, &other, &sha256_hex(&raw)).is_err());
    }
}
