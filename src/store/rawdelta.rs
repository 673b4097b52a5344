//! A line-anchored delta of a file against a similar base: the original bytes as copies of base
//! ranges and literal runs.
//!
//! An original and its canonical rendering hold the same lines, mostly in the same order (the
//! rendering sorts tags and prefixes; Microsoft's files are nearly sorted), so the delta is a few
//! hundred copies and a few kilobytes of literals. Finding them is one pass over each side
//! (index the base's lines, look up the original's, extend each match byte by byte), which costs a
//! fraction of a general compressor that must index every position of a 4 MB reference.
//!
//! Ops, as varints: `literal length`, the literal bytes, `copy length`, and (when the copy length
//! is not zero) the copy's start as a zigzag distance from where the previous copy ended.
//! Applying them checks every length and offset, so a damaged delta is refused, never followed
//! out of bounds.

use std::hash::BuildHasher;

/// Lines shorter than this are not looked up: `{`, `],` and the like match everywhere, and a
/// match is only worth a copy when it extends into the lines around it.
const MIN_ANCHOR: usize = 12;

/// How far after the last copy a line is first looked for: the two sides mostly run in the same
/// order, and a line the base holds more than once is then found in the right place.
const NEAR: usize = 1024;

/// Why a delta could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("the delta is damaged: {0}")]
pub struct DeltaError(&'static str);

/// The ops that rebuild `raw` from `base`.
pub fn encode(raw: &[u8], base: &[u8]) -> Vec<u8> {
    let index = LineIndex::new(base);
    let mut ops = Vec::with_capacity(1024);
    let (mut literal_from, mut at, mut copy_end) = (0usize, 0usize, 0usize);
    while at < raw.len() {
        let line_end = next_line(raw, at);
        let Some(base_at) = index.find(base, &raw[at..line_end], copy_end) else {
            at = line_end;
            continue;
        };
        // Reach back into the pending literal, then forward as far as the bytes agree.
        let back = common_suffix(&raw[literal_from..at], &base[..base_at]);
        let (start, base_start) = (at - back, base_at - back);
        let len = back + common_prefix(&raw[at..], &base[base_at..]);
        push_op(
            &mut ops,
            &raw[literal_from..start],
            base_start,
            len,
            &mut copy_end,
        );
        literal_from = start + len;
        at = if literal_from > 0 && raw[literal_from - 1] == b'\n' {
            literal_from
        } else {
            next_line(raw, literal_from)
        };
    }
    if literal_from < raw.len() {
        push_op(&mut ops, &raw[literal_from..], 0, 0, &mut copy_end);
    }
    ops
}

/// Rebuilds the original of `len` bytes from `ops` and `base`.
pub fn apply(ops: &[u8], base: &[u8], len: usize) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::with_capacity(len);
    walk(ops, base, len, |piece| {
        out.extend_from_slice(piece);
        true
    })?;
    Ok(out)
}

/// Whether `ops` rebuild exactly `original` from `base`, compared piece by piece as they are
/// walked: the check of a fresh delta, without building a second copy of the file.
pub fn rebuilds(ops: &[u8], base: &[u8], original: &[u8]) -> Result<bool, DeltaError> {
    let mut rest = original;
    walk(ops, base, original.len(), |piece| {
        rest.strip_prefix(piece).map(|tail| rest = tail).is_some()
    })
}

/// Walks `ops` over `base`, handing each literal and copied piece in order to `piece`, which
/// says whether to go on. `Ok(false)` when it stopped; an error when the ops do not make exactly
/// `len` bytes from `base`.
fn walk(
    ops: &[u8],
    base: &[u8],
    len: usize,
    mut piece: impl FnMut(&[u8]) -> bool,
) -> Result<bool, DeltaError> {
    let mut rest = ops;
    let (mut made, mut copy_end) = (0usize, 0usize);
    while !rest.is_empty() {
        let literal = take_len(&mut rest, len - made)?;
        let bytes = rest
            .get(..literal)
            .ok_or(DeltaError("a literal runs past the end"))?;
        if !piece(bytes) {
            return Ok(false);
        }
        made += literal;
        rest = &rest[literal..];
        let copy = take_len(&mut rest, len - made)?;
        if copy == 0 {
            continue;
        }
        let distance = unzigzag(take_varint(&mut rest)?);
        let start = i64::try_from(copy_end)
            .ok()
            .and_then(|end| end.checked_add(distance))
            .and_then(|s| usize::try_from(s).ok())
            .ok_or(DeltaError("a copy starts outside the base"))?;
        let copied = start
            .checked_add(copy)
            .and_then(|end| base.get(start..end))
            .ok_or(DeltaError("a copy runs outside the base"))?;
        if !piece(copied) {
            return Ok(false);
        }
        made += copy;
        copy_end = start + copy;
    }
    if made != len {
        return Err(DeltaError("the ops rebuild fewer bytes than recorded"));
    }
    Ok(true)
}

/// Where each line of the base first starts, by the line's hash: a direct-mapped table (a line
/// whose slot is taken is not indexed; every match is checked byte by byte), which costs a
/// fraction of a hash map's inserts for the ~130,000 lines of a Public file.
struct LineIndex {
    /// Offset + 1 of the line in each slot, 0 for none (a file is at most 64 MiB).
    slots: Vec<u32>,
    shift: u32,
}

impl LineIndex {
    fn new(base: &[u8]) -> LineIndex {
        let bits = (base.len() / 16)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 24);
        let mut index = LineIndex {
            slots: vec![0; 1 << bits],
            shift: 64 - bits,
        };
        let mut at = 0;
        while at < base.len() {
            let end = next_line(base, at);
            if let Some(slot) = index.slot(&base[at..end]) {
                if index.slots[slot] == 0 {
                    index.slots[slot] = u32::try_from(at + 1).unwrap_or(0);
                }
            }
            at = end;
        }
        index
    }

    /// The slot of a line long enough to anchor a match.
    fn slot(&self, line: &[u8]) -> Option<usize> {
        (line.len() >= MIN_ANCHOR)
            .then(|| (rustc_hash::FxBuildHasher.hash_one(line) >> self.shift) as usize)
    }

    /// Where `line` starts in `base`: just after `near` (where the last copy ended), or where the
    /// index says.
    fn find(&self, base: &[u8], line: &[u8], near: usize) -> Option<usize> {
        let window = base.get(near..(near + NEAR).min(base.len())).unwrap_or(&[]);
        if let Some(i) = memchr::memmem::find(window, line) {
            if i == 0 || window[i - 1] == b'\n' {
                return Some(near + i);
            }
        }
        let at = (self.slots[self.slot(line)?] as usize).checked_sub(1)?;
        // Another line may share the slot: only the same bytes match.
        (base.get(at..at + line.len())? == line).then_some(at)
    }
}

/// Where the line starting at `at` ends (after its `\n`, or at the end).
fn next_line(bytes: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i + 1)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const STEP: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + STEP <= n && a[i..i + STEP] == b[i..i + STEP] {
        i += STEP;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn push_op(ops: &mut Vec<u8>, literal: &[u8], start: usize, len: usize, copy_end: &mut usize) {
    push_varint(ops, literal.len() as u64);
    ops.extend_from_slice(literal);
    push_varint(ops, len as u64);
    if len > 0 {
        push_varint(ops, zigzag(start as i64 - *copy_end as i64));
        *copy_end = start + len;
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(rest: &mut &[u8]) -> Result<u64, DeltaError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest
            .split_first()
            .ok_or(DeltaError("a number runs past the end"))?;
        *rest = tail;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DeltaError("a number is too long"))
}

/// A length, at most `room`: no op may build more than the recorded size.
fn take_len(rest: &mut &[u8], room: usize) -> Result<usize, DeltaError> {
    let v = take_varint(rest)?;
    usize::try_from(v)
        .ok()
        .filter(|&n| n <= room)
        .ok_or(DeltaError("an op builds more bytes than recorded"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("  \"10.{}.{}.0/24\",\n", i / 251, i % 251).into_bytes())
            .collect()
    }

    #[test]
    fn moved_and_edited_blocks_are_copies_and_small_literals() {
        let base = lines(20_000);
        let half = base.len() / 2 + 3; // not on a line boundary
        let mut raw = base[half..].to_vec();
        raw.extend_from_slice(b"{ an inserted line that the base never had }\n");
        raw.extend_from_slice(&base[..half]);
        raw.truncate(raw.len() - 1); // no final newline
        let ops = encode(&raw, &base);
        assert!(ops.len() < 120, "{} bytes of ops", ops.len());
        assert_eq!(apply(&ops, &base, raw.len()).unwrap(), raw);
    }

    #[test]
    fn damaged_ops_are_refused_not_followed() {
        let base = lines(500);
        let mut raw = base[base.len() / 2..].to_vec();
        raw.extend_from_slice(&base[..base.len() / 2]);
        let ops = encode(&raw, &base);
        assert_eq!(apply(&ops, &base, raw.len()).unwrap(), raw);
        assert!(apply(&ops, &base, raw.len() + 1).is_err());
        assert!(apply(&ops, &base, raw.len() - 1).is_err());
        assert!(apply(&ops, &base[..base.len() - 10], raw.len()).is_err());
        assert!(apply(&ops[..ops.len() - 1], &base, raw.len()).is_err());
        assert!(apply(&[0x80; 12], &base, raw.len()).is_err());
        // A copy whose start lies before the base.
        assert!(apply(&[0, 5, 3], &base, 5).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(
            raw in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..3000),
            base in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..3000),
            cut in 0usize..3000,
        ) {
            let mut base = base;
            base.extend_from_slice(&raw[..cut.min(raw.len())]);
            let ops = encode(&raw, &base);
            prop_assert!(rebuilds(&ops, &base, &raw).unwrap());
            prop_assert_eq!(apply(&ops, &base, raw.len()).unwrap(), raw);
        }

        /// The check of a fresh delta says no for any other original: one byte changed, or the
        /// original one byte longer or shorter.
        #[test]
        fn rebuilds_refuses_any_other_original(
            raw in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 1..3000),
            at in any::<proptest::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let base = lines(50);
            let ops = encode(&raw, &base);
            let mut changed = raw.clone();
            changed[at.index(raw.len())] ^= flip;
            prop_assert!(!rebuilds(&ops, &base, &changed).unwrap());
            let mut longer = raw.clone();
            longer.push(b'x');
            prop_assert!(!matches!(rebuilds(&ops, &base, &longer), Ok(true)));
            prop_assert!(!matches!(rebuilds(&ops, &base, &raw[..raw.len() - 1]), Ok(true)));
        }

        #[test]
        fn any_ops_are_applied_or_refused(ops in proptest::collection::vec(any::<u8>(), 0..200), len in 0usize..500) {
            let base = lines(20);
            if let Ok(out) = apply(&ops, &base, len) {
                prop_assert_eq!(out.len(), len);
            }
        }
    }
}
