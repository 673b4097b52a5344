//! A file's content as the store keeps it, made beside the parse and the transaction: the
//! content hash (of the plain rendering), the tags' digests, the merged addresses and the
//! original compressed against the rendering.
//!
//! Where the work runs depends on how the file is imported:
//! - a backfill's preparing threads make all of it before the file's turn
//!   ([`ContentParts::new`], then [`ContentParts::compress_now`]);
//! - a file imported alone (the weekly one) makes only its tags' digests and its merged
//!   addresses before its transaction starts ([`ContentParts::beside_parse`]): the rendering,
//!   its hash (the content hash) and the compressed original are made on a blocking thread while
//!   the transaction writes ([`ContentJob`]), and the transaction reads the content hash at its
//!   end. The two halves take about as long on the weekly Public file.

use std::sync::Arc;

use super::rawcodec::{self, RawError};
use super::{StoreError, TagDigests};
use crate::core::buffers;
use crate::core::canonical::{self, Style};
use crate::core::digest::sha256_hex;
use crate::core::model::Snapshot;
use crate::core::parse::Parsed;
use crate::core::ranges::{AddrSet, Family};

/// A snapshot's IPv4 and IPv6 addresses as merged ranges (`AddrSet::to_bytes`): what
/// `snapshot_addresses` keeps for `diff`.
pub(super) type Addresses = (Vec<u8>, Vec<u8>);

/// The part of a [`super::NewSnapshot`] that needs no database. Owned, so a file can be
/// prepared on another thread while the store writes the one before
/// (`store::import::import_files`).
#[derive(Debug)]
pub struct ContentParts {
    /// sha256 of the original bytes, hex.
    pub(super) raw_sha256: String,
    pub(super) raw_size: i64,
    pub(super) raw_style: Style,
    /// Each tag's digests, in the snapshot's order.
    pub(super) digests: Vec<TagDigests>,
    /// The rest, done or to do.
    pub(super) work: Work,
}

/// What is left to make of a file's content.
#[derive(Debug)]
pub(super) enum Work {
    /// Rendered and hashed while the file was prepared; the original still to compress against
    /// the plain rendering (restyled in the original's style).
    Compress {
        content_sha256: String,
        raw: Vec<u8>,
        plain: Vec<u8>,
        addresses: Addresses,
    },
    /// Not rendered yet: a file imported alone is rendered, hashed and compressed beside its
    /// transaction, from the snapshot it shares with the import.
    Render {
        raw: Vec<u8>,
        snapshot: Arc<Snapshot>,
        addresses: Addresses,
    },
    /// All of it made ([`ContentParts::compress_now`]).
    Done(Finished),
    /// Handed to a [`ContentJob`].
    Started,
}

/// A file's content, all of it made.
#[derive(Debug)]
pub(super) struct Finished {
    /// sha256 of the plain rendering, hex: the snapshot's identity within its cloud.
    pub(super) content_sha256: String,
    /// The snapshot's addresses, merged.
    pub(super) addresses: Addresses,
    /// The compressed original.
    pub(super) original: Original,
}

/// A file's original bytes as the store keeps them.
#[derive(Debug)]
pub(super) struct Original {
    /// zstd, against the canonical rendering.
    pub(super) blob: Vec<u8>,
    /// sha256 of the uncompressed original, hex.
    pub(super) sha256: String,
}

impl Work {
    /// The content hash, when it is known before the work is done.
    pub(super) fn content_sha256(&self) -> Option<&str> {
        match self {
            Work::Compress { content_sha256, .. } => Some(content_sha256),
            Work::Done(finished) => Some(&finished.content_sha256),
            Work::Render { .. } | Work::Started => None,
        }
    }

    /// Does what is left, on this thread; the large buffers go back to it for the next file.
    fn finish(self, style: Style, raw_sha256: String) -> Result<Finished, StoreError> {
        match self {
            Work::Compress {
                content_sha256,
                raw,
                plain,
                addresses,
            } => {
                let original = compress(&raw, &plain, style, raw_sha256)?;
                buffers::give(raw);
                buffers::give(plain);
                Ok(Finished {
                    content_sha256,
                    addresses,
                    original,
                })
            }
            Work::Render {
                raw,
                snapshot,
                addresses,
            } => {
                let plain = canonical::render_plain(&snapshot);
                let content_sha256 = sha256_hex(&plain);
                Work::Compress {
                    content_sha256,
                    raw,
                    plain,
                    addresses,
                }
                .finish(style, raw_sha256)
            }
            Work::Done(finished) => Ok(finished),
            Work::Started => Err(StoreError::Damaged(
                "a file's content was handed to the store twice".into(),
            )),
        }
    }
}

impl ContentParts {
    /// Hashes the original `raw` bytes (uncompressed JSON) and `snapshot`'s plain rendering,
    /// digests its tags and merges its addresses, on this thread. The original is compressed
    /// later: [`ContentParts::compress_now`] or beside the import's transaction.
    pub fn new(snapshot: &Snapshot, raw: Vec<u8>) -> ContentParts {
        let raw_sha256 = sha256_hex(&raw);
        let digests = TagDigests::of_all(&snapshot.tags);
        let addresses = merged_addresses(snapshot);
        let plain = canonical::render_plain(snapshot);
        let content_sha256 = sha256_hex(&plain);
        ContentParts::of(raw, raw_sha256, digests, |raw| Work::Compress {
            content_sha256,
            raw,
            plain,
            addresses,
        })
    }

    /// The parse of a file imported alone, on a machine with a core to spare: beside `parse`
    /// parsing the original, the original is hashed; then the tags are digested while the
    /// addresses are merged. That is all its transaction needs to start: the rest is made
    /// beside it ([`ContentJob`]), from the returned snapshot, which the parts share. The result
    /// is what [`ContentParts::new`] gives, once made.
    pub fn beside_parse<E>(
        raw: Vec<u8>,
        parse: impl FnOnce(&[u8]) -> Result<Parsed, E>,
    ) -> Result<(Arc<Snapshot>, Vec<String>, ContentParts), E> {
        let (parsed, raw_sha256) = std::thread::scope(|s| {
            let hashing = s.spawn(|| sha256_hex(&raw));
            (parse(&raw), joined(hashing))
        });
        let Parsed { snapshot, warnings } = parsed?;
        let (digests, addresses) = std::thread::scope(|s| {
            let other = s.spawn(|| merged_addresses(&snapshot));
            (TagDigests::of_all(&snapshot.tags), joined(other))
        });
        let snapshot = Arc::new(snapshot);
        let shared = Arc::clone(&snapshot);
        let parts = ContentParts::of(raw, raw_sha256, digests, |raw| Work::Render {
            raw,
            snapshot: shared,
            addresses,
        });
        Ok((snapshot, warnings, parts))
    }

    /// The parts of the original `raw`, with `work` (given the original) left to do.
    fn of(
        raw: Vec<u8>,
        raw_sha256: String,
        digests: Vec<TagDigests>,
        work: impl FnOnce(Vec<u8>) -> Work,
    ) -> ContentParts {
        ContentParts {
            raw_sha256,
            raw_size: raw.len() as i64,
            raw_style: Style::detect(&raw),
            digests,
            work: work(raw),
        }
    }

    /// Makes the rest now, on the caller's thread, instead of beside the import's transaction:
    /// a prepared file waiting its turn then holds little memory (the original and the
    /// rendering are dropped), and the transaction has nothing to wait for.
    pub fn compress_now(&mut self) -> Result<(), StoreError> {
        let work = std::mem::replace(&mut self.work, Work::Started);
        self.work = Work::Done(work.finish(self.raw_style, self.raw_sha256.clone())?);
        Ok(())
    }
}

/// What is left of a file's content, being made on a blocking thread beside the transaction's
/// database work, or made already.
pub(super) enum ContentJob {
    Ready(Finished),
    Running(tokio::task::JoinHandle<Result<Finished, StoreError>>),
}

impl ContentJob {
    /// Starts what is left of `new`'s content on a blocking thread (nothing when it is all
    /// made). Takes the work out of `new`, which cannot start it again.
    pub(super) fn start(new: &mut super::NewSnapshot<'_>) -> ContentJob {
        let work = std::mem::replace(&mut new.work, Work::Started);
        if let Work::Done(finished) = work {
            return ContentJob::Ready(finished);
        }
        let (style, raw_sha256) = (new.raw_style, new.raw_sha256.clone());
        ContentJob::Running(tokio::task::spawn_blocking(move || {
            work.finish(style, raw_sha256)
        }))
    }

    /// The content hash, waiting for the job when it is still running.
    pub(super) async fn content_sha256(&mut self) -> Result<String, StoreError> {
        if let ContentJob::Running(handle) = self {
            let finished = joined_task(handle).await?;
            *self = ContentJob::Ready(finished);
        }
        match self {
            ContentJob::Ready(finished) => Ok(finished.content_sha256.clone()),
            ContentJob::Running(_) => Err(StoreError::Damaged(
                "a file's content job did not finish".into(),
            )),
        }
    }

    /// Everything, once made.
    pub(super) async fn wait(self) -> Result<Finished, StoreError> {
        match self {
            ContentJob::Ready(finished) => Ok(finished),
            ContentJob::Running(mut handle) => joined_task(&mut handle).await,
        }
    }

    /// Stops the job when its result is not needed.
    pub(super) fn abort(self) {
        if let ContentJob::Running(handle) = self {
            handle.abort();
        }
    }
}

async fn joined_task(
    handle: &mut tokio::task::JoinHandle<Result<Finished, StoreError>>,
) -> Result<Finished, StoreError> {
    handle
        .await
        .map_err(|e| StoreError::Damaged(format!("making the file's stored content failed: {e}")))?
}

/// Whether a rendering in `style` differs from the plain one.
fn is_styled(style: Style) -> bool {
    style != Style::default()
}

/// A thread's result; its panic, if it panicked, goes on in the caller.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Compresses the original against the rendering in its `style`, made from the `plain` one
/// (which serves itself when the style is plain).
pub(super) fn compress(
    raw: &[u8],
    plain: &[u8],
    style: Style,
    sha256: String,
) -> Result<Original, RawError> {
    let styled = is_styled(style).then(|| canonical::restyle(plain, style));
    // Checked there to give the original back exactly.
    let blob = rawcodec::encode(raw, styled.as_deref().unwrap_or(plain));
    if let Some(styled) = styled {
        buffers::give(styled);
    }
    Ok(Original {
        sha256,
        blob: blob?,
    })
}

/// The addresses of every prefix of every tag, merged, per family.
fn merged_addresses(snapshot: &Snapshot) -> Addresses {
    let (v4, v6) = AddrSet::of_all(snapshot.tags.iter().flat_map(|t| &t.prefixes));
    (v4.to_bytes(Family::V4), v6.to_bytes(Family::V6))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lone file's parts (its tags digested beside the parse, the rest made later) are the
    /// parts made on one thread, once made: in each line-ending style, with and without a byte
    /// order mark.
    #[test]
    fn parts_beside_the_parse_are_the_parts_made_on_one_thread() {
        let lf = "{\n  \"changeNumber\": 7,\n  \"cloud\": \"Public\",\n  \"values\": [\n    {\n      \"name\": \"B\",\n      \"id\": \"B\",\n      \"properties\": {\n        \"changeNumber\": 1,\n        \"region\": \"\",\n        \"regionId\": 0,\n        \"platform\": \"Azure\",\n        \"systemService\": \"\",\n        \"addressPrefixes\": [\n          \"2603:1000::/40\",\n          \"10.0.0.0/8\"\n        ],\n        \"networkFeatures\": null\n      }\n    },\n    {\n      \"name\": \"A\",\n      \"id\": \"A\",\n      \"properties\": {\n        \"changeNumber\": 2,\n        \"region\": \"westeurope\",\n        \"platform\": \"Azure\",\n        \"systemService\": \"X\",\n        \"addressPrefixes\": [\n          \"20.38.64.0/19\"\n        ]\n      }\n    }\n  ]\n}";
        let crlf = lf.replace('\n', "\r\n");
        for text in [lf.to_string(), crlf.clone(), format!("\u{feff}{crlf}")] {
            let raw = text.into_bytes();
            let parse = |raw: &[u8]| crate::core::parse::parse(raw, None);
            let parsed = parse(&raw).unwrap();
            let mut one = ContentParts::new(&parsed.snapshot, raw.clone());
            let (snapshot, warnings, mut two) =
                ContentParts::beside_parse(raw.clone(), parse).unwrap();
            assert_eq!(*snapshot, parsed.snapshot);
            assert_eq!(warnings, parsed.warnings);
            let plain = canonical::render_plain(&snapshot);
            assert_eq!(one.work.content_sha256(), Some(sha256_hex(&plain).as_str()));
            // Only the digests are made before the transaction.
            assert!(matches!(two.work, Work::Render { .. }));
            assert_eq!(two.work.content_sha256(), None);
            assert_eq!(two.raw_sha256, sha256_hex(&raw));
            assert_eq!(two.raw_sha256, one.raw_sha256);
            assert_eq!(two.raw_size, raw.len() as i64);
            assert_eq!(two.raw_style, one.raw_style);
            let digests = |p: &ContentParts| -> Vec<(Vec<u8>, Vec<u8>)> {
                p.digests
                    .iter()
                    .map(|d| (d.prefixes.clone(), d.version.clone()))
                    .collect()
            };
            assert_eq!(digests(&two), digests(&one));
            assert_eq!(two.digests.len(), snapshot.tags.len());

            one.compress_now().unwrap();
            two.compress_now().unwrap();
            let (Work::Done(one), Work::Done(two)) = (&one.work, &two.work) else {
                panic!("compress_now leaves the work done");
            };
            assert_eq!(two.content_sha256, one.content_sha256);
            assert_eq!(two.original.sha256, sha256_hex(&raw));
            assert_eq!(two.original.blob, one.original.blob);
            // The original compresses against its style's rendering, made from the plain one.
            let base = canonical::render(&snapshot, Style::detect(&raw));
            let back = rawcodec::decode(&two.original.blob, &base, &two.original.sha256).unwrap();
            assert_eq!(back, raw);
            assert!(
                two.original.blob.len() < raw.len() / 8,
                "{} bytes",
                two.original.blob.len()
            );
            // 10.0.0.0/8 and 20.38.64.0/19 stay apart; 2603:1000::/40 alone.
            let v4: Vec<u8> = [
                [10, 0, 0, 0],
                [10, 255, 255, 255],
                [20, 38, 64, 0],
                [20, 38, 95, 255],
            ]
            .concat();
            let mut v6 = "2603:1000::"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec();
            v6.extend(
                "2603:1000:ff:ffff:ffff:ffff:ffff:ffff"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            );
            assert_eq!(one.addresses, (v4, v6));
            assert_eq!(two.addresses, one.addresses);
        }
        let bad =
            ContentParts::beside_parse(b"{".to_vec(), |raw| crate::core::parse::parse(raw, None));
        assert!(bad.is_err());
    }

    /// Work handed to a job once is not made again: an error, never a second original.
    #[test]
    fn started_work_is_refused() {
        let finished = Work::Started.finish(Style::default(), String::new());
        assert!(matches!(finished, Err(StoreError::Damaged(_))));
    }
}
