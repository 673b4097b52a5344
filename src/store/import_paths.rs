//! The three ways a file enters the store, each one transaction:
//! - one file at a time ([`Store::import`]): the reference path, the one every other must equal
//!   (`tests/it/real_data.rs`, `tests/it/store_props.rs`);
//! - a lone file with a prefetch ([`Store::prefetch_append`], then [`Store::import_prefetched`]):
//!   the weekly file, whose transaction's first reads are made while the file is parsed;
//! - runs of appended weeks ([`Store::import_appends`], with a [`RunCarry`] between runs): a
//!   backfill.

use chrono::NaiveDate;
use ipnet::IpNet;
use rustc_hash::FxHashMap as HashMap;

use super::content::{ContentParts, Work};
use super::digests::TagDigests;
use super::rows::StoredVersion;
use super::temporal::Position;
use super::{Store, StoreError};
use crate::core::canonical::Style;
use crate::core::model::{Cloud, Snapshot, SnapshotInfo};

/// A file ready to import: its content, its hashes, its tags' digests and what is left to make
/// of its stored content ([`ContentParts`]).
pub struct NewSnapshot<'a> {
    /// The canonical content.
    pub snapshot: &'a Snapshot,
    /// Microsoft's file date.
    pub file_date: NaiveDate,
    /// The file name, for the record.
    pub source_name: &'a str,
    /// The content hash, unless it is made beside the transaction (a file imported alone).
    pub(super) content_sha256: Option<String>,
    pub(super) raw_sha256: String,
    pub(super) raw_size: i64,
    pub(super) raw_style: Style,
    pub(super) digests: Vec<TagDigests>,
    pub(super) work: Work,
}

impl<'a> NewSnapshot<'a> {
    /// Hashes the content and the original `raw` bytes (uncompressed JSON). Compressing the
    /// original happens during the import, beside the database work.
    pub fn new(
        snapshot: &'a Snapshot,
        raw: Vec<u8>,
        file_date: NaiveDate,
        source_name: &'a str,
    ) -> NewSnapshot<'a> {
        NewSnapshot::from_parts(
            snapshot,
            ContentParts::new(snapshot, raw),
            file_date,
            source_name,
        )
    }

    /// A file whose [`ContentParts`] were prepared already (from `snapshot`).
    pub fn from_parts(
        snapshot: &'a Snapshot,
        parts: ContentParts,
        file_date: NaiveDate,
        source_name: &'a str,
    ) -> NewSnapshot<'a> {
        NewSnapshot {
            snapshot,
            file_date,
            source_name,
            content_sha256: parts.work.content_sha256().map(str::to_string),
            raw_sha256: parts.raw_sha256,
            raw_size: parts.raw_size,
            raw_style: parts.raw_style,
            digests: parts.digests,
            work: parts.work,
        }
    }
}

/// What a committed run of appended weeks leaves for the next run of the same import
/// ([`Store::import_appends`]): the cloud's tag ids and each tag's prefixes in its newest snapshot,
/// which the next run would otherwise read back (the prefixes are most of a run's reads). Empty
/// at first and after a run that did not commit.
#[derive(Debug, Default)]
pub struct RunCarry(pub(super) Option<CarriedRun>);

/// [`RunCarry`]'s content. Valid for the next run only when no other transaction wrote history
/// in between: every history write bumps the import generation, so the next run's generation must
/// be this one's plus one, and the cloud's newest snapshot must still be this run's last.
#[derive(Debug)]
pub(super) struct CarriedRun {
    pub(super) cloud: i64,
    pub(super) generation: i64,
    pub(super) newest: i64,
    pub(super) tag_ids: HashMap<String, i64>,
    pub(super) heads: HashMap<i64, Vec<IpNet>>,
}

impl CarriedRun {
    /// Whether this can stand in for reading the store, in a transaction at `generation` that
    /// found `newest` the newest snapshot of `cloud`.
    pub(super) fn holds(&self, cloud: i64, generation: i64, newest: Option<i64>) -> bool {
        read_still_holds(
            (self.cloud, self.generation, self.newest),
            cloud,
            generation,
            newest,
        )
    }
}

/// The one rule for what was read before a writing transaction (a run's carry, a prefetch):
/// `read` (cloud, import generation, newest snapshot) stands in for reading the store only when
/// nothing wrote history since — the transaction's generation is the next one — and the cloud's
/// newest snapshot is still the one read.
fn read_still_holds(
    read: (i64, i64, i64),
    cloud: i64,
    generation: i64,
    newest: Option<i64>,
) -> bool {
    let (read_cloud, read_generation, read_newest) = read;
    read_cloud == cloud && read_generation + 1 == generation && Some(read_newest) == newest
}

/// What a single import reads before its file is parsed ([`Store::prefetch_append`]): the
/// cloud's tag ids and the versions open at its newest snapshot, the first fifth of a weekly
/// import's transaction. Used by [`Store::import_prefetched`] only when nothing wrote history in
/// between (the import generation is the next one) and the file is appended right after that
/// newest snapshot; otherwise the transaction reads them itself. Empty when nothing was read.
#[derive(Debug, Default)]
pub struct Prefetch(pub(super) Option<Prefetched>);

/// [`Prefetch`]'s content.
#[derive(Debug)]
pub(super) struct Prefetched {
    pub(super) cloud: i64,
    /// The import generation when read: every history write bumps it.
    pub(super) generation: i64,
    pub(super) newest: i64,
    pub(super) tag_ids: HashMap<String, i64>,
    /// The versions holding at `newest`.
    pub(super) versions: Vec<StoredVersion>,
}

impl Prefetch {
    /// Whether nothing was read (the cloud has no snapshot, or nothing was asked).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl Prefetched {
    /// Whether this can stand in for reading the store, in a transaction at `generation` that
    /// places the new snapshot of `cloud` at `pos`.
    pub(super) fn holds(&self, cloud: i64, generation: i64, pos: Position) -> bool {
        let read = (self.cloud, self.generation, self.newest);
        read_still_holds(read, cloud, generation, pos.prev) && pos.next.is_none()
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A new snapshot was stored.
    Imported(SnapshotInfo),
    /// The same content was already stored as this snapshot; nothing changed.
    AlreadyStored(SnapshotInfo),
}

impl Store {
    /// Imports one snapshot in one transaction: all of it or, on any error, nothing.
    pub async fn import(&self, new: NewSnapshot<'_>) -> Result<ImportOutcome, StoreError> {
        self.import_prefetched(new, Prefetch::default()).await
    }

    /// [`Store::import`], using what `prefetch` read when it still holds.
    pub async fn import_prefetched(
        &self,
        new: NewSnapshot<'_>,
        prefetch: Prefetch,
    ) -> Result<ImportOutcome, StoreError> {
        on_backend!(self, import(new, prefetch))
    }

    /// Reads what importing a file that follows the newest snapshot of `cloud` reads first
    /// ([`Prefetch`]), so that it can be read while the file is parsed. Read-only.
    pub async fn prefetch_append(&self, cloud: Cloud) -> Result<Prefetch, StoreError> {
        on_backend!(self, prefetch_append(cloud.code()))
    }

    /// Imports a run of appended weeks of one cloud in one transaction: all of them or, on any
    /// error, none. `Ok(None)` when `files` are not such a run (one cloud, file dates strictly
    /// increasing, all later than the cloud's newest snapshot): nothing was stored and they can
    /// be imported one by one. After an error their originals may have been taken out.
    ///
    /// `carry` passes what a committed run knows to the next run of the same import, so the next
    /// one need not read it back; it is used only when nothing else wrote history in between.
    pub async fn import_appends(
        &self,
        files: &mut [NewSnapshot<'_>],
        carry: &mut RunCarry,
    ) -> Result<Option<Vec<ImportOutcome>>, StoreError> {
        on_backend!(self, import_appends(files, carry))
    }
}
