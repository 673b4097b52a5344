//! The history store: every imported ServiceTags file, exactly and compactly, in SQLite (the
//! default, embedded) or PostgreSQL (shared by several runners).
//!
//! Layout (see ARCHITECTURE.md for the reasoning):
//! - `snapshots`: one row per distinct file content per cloud, with the original bytes stored as a
//!   zstd delta against the snapshot's canonical rendering (`crate::store::rawcodec`);
//! - `tag_versions` and `prefix_intervals`: each tag's properties and each (tag, prefix) pair
//!   stored once per run of snapshots in which it holds (`crate::store::temporal`).
//!
//! The backend is chosen once from the URL. Both run the same SQL (`ops.rs`, included once per
//! backend) and apply their own embedded migrations on connect.

mod content;
mod head;
pub mod import;
mod lock;
pub mod rawcodec;
mod rawdelta;
mod rows;
pub mod temporal;
mod url;
mod window;
pub use window::Earlier;

// Fx hashing: keys are tag ids and names from the store and a checked file, and SipHash
// was a visible share of an import.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use ipnet::IpNet;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use self::content::ContentParts;
use self::content::Work;
pub use self::lock::RunLock;
use self::rawcodec::RawError;
use self::rows::{features_to_column, SnapshotRow, StoredVersion, VersionKey, VersionRow};
pub use self::url::{Backend, BadUrl, DbUrl};
use crate::core::canonical::{self, Style, RENDER_VERSION};
use crate::core::history;
use crate::core::model::{
    decode_prefix, encode_prefix, Cloud, ServiceTag, Snapshot, SnapshotInfo, TagMeta,
};
use crate::core::ranges::{AddrSet, Family};
pub use crate::core::snapref::SnapRef;
use crate::rules::lookup::PrefixHit;
use crate::store::temporal::Position;

mod sqlite {
    type Db = sqlx::Sqlite;
    /// Takes the write lock at once, so concurrent importers wait (busy timeout) rather than fail.
    const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
    /// Binary columns as hex text.
    const HEX_PREFIX: &str = "hex(prefix)";
    const HEX_VERSION: &str = "hex(version_digest)";
    const HEX_PREFIXES: &str = "hex(prefixes_digest)";
    include!("ops.rs");
    include!("appends.rs");
    include!("delete.rs");
    include!("reads.rs");
    include!("validators.rs");
    include!("published.rs");
}

mod postgres {
    type Db = sqlx::Postgres;
    /// Importers serialise on the `import_lock` row each import updates first.
    const BEGIN_WRITE: &str = "BEGIN";
    /// Binary columns as hex text.
    const HEX_PREFIX: &str = "encode(prefix, 'hex')";
    const HEX_VERSION: &str = "encode(version_digest, 'hex')";
    const HEX_PREFIXES: &str = "encode(prefixes_digest, 'hex')";
    include!("ops.rs");
    include!("appends.rs");
    include!("delete.rs");
    include!("reads.rs");
    include!("validators.rs");
    include!("published.rs");
}

/// What someone decided about a withheld change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Published (`tagwall approve`, or `emit --force`).
    #[default]
    Approved,
    /// Not to be published (`tagwall reject`): the published files stay.
    Rejected,
}

impl Decision {
    /// The stored and serde name.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<Decision> {
        match text {
            "approved" => Some(Decision::Approved),
            "rejected" => Some(Decision::Rejected),
            _ => None,
        }
    }
}

/// One decision on a withheld change (`tagwall approve` or `reject`): who, which change, why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Approval {
    /// Approved or rejected.
    pub decision: Decision,
    /// The ruleset.
    pub ruleset: String,
    /// The snapshot published, for people ("Public 2025-06-02 (id:7)").
    pub snapshot: String,
    /// Its id.
    pub snapshot_id: i64,
    /// `--by`.
    pub approved_by: String,
    /// `--comment`.
    pub comment: String,
    /// Why the guard had withheld it (or the tags approved as gone).
    pub reasons: Vec<String>,
    /// When (RFC 3339, UTC).
    pub approved_at: String,
}

/// A ruleset's directory as published, for [`Store::record_publish`].
#[derive(Debug)]
pub struct NewPublish<'a> {
    /// The ruleset.
    pub ruleset: &'a str,
    /// The sha256 of its `manifest.json`.
    pub manifest_sha256: &'a str,
    /// Every file, `manifest.json` included, in the manifest's order: (name, bytes).
    pub files: &'a [(String, Vec<u8>)],
}

/// How many publishes of each ruleset the store keeps.
pub const PUBLISHES_KEPT: i64 = 4;

/// Ordinals per file date: room for this many different files dated the same day.
pub(crate) const ORDS_PER_DAY: i64 = 64;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("could not open the store at {url}: {message}")]
    Open {
        /// The store URL, password hidden.
        url: String,
        /// The driver's reason.
        message: String,
    },
    /// The embedded migrations could not be applied.
    #[error("could not bring the store at {url} up to date: {message}")]
    Migrate {
        /// The store URL, password hidden.
        url: String,
        /// The migrator's reason.
        message: String,
    },
    /// A query failed; the transaction in progress was rolled back.
    #[error("the store failed, nothing was changed: {0}")]
    Sql(#[from] sqlx::Error),
    /// No snapshot matches the reference.
    #[error(
        "no {cloud} snapshot matches {at}: run `tagwall snapshots --cloud {cloud}` to list them"
    )]
    NotFound {
        /// The cloud searched.
        cloud: Cloud,
        /// The reference, as the user wrote it.
        at: SnapRef,
    },
    /// The store holds data it could not have written.
    /// Another run holds the store's run lock.
    #[error("another tagwall run holds the lock on {url} (waited {waited} s): it is probably still running; try again later or raise --lock-wait")]
    Busy {
        /// The store.
        url: String,
        /// Seconds waited.
        waited: u64,
    },
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// Too many different files share one file date.
    #[error(
        "{0} already has 63 different files of this cloud: refusing another for the same date"
    )]
    TooManyForDate(NaiveDate),
    /// The file date cannot be placed in history.
    #[error("file date {0} is before 1970-01-01: pass the right --date")]
    DateOutOfRange(NaiveDate),
    /// A stored original could not be reproduced.
    #[error(transparent)]
    Raw(#[from] RawError),
}

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
    content_sha256: Option<String>,
    raw_sha256: String,
    raw_size: i64,
    raw_style: Style,
    digests: Vec<TagDigests>,
    work: Work,
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
pub struct RunCarry(Option<CarriedRun>);

/// [`RunCarry`]'s content. Valid for the next run only when no other transaction wrote history
/// in between: every history write bumps the import generation, so the next run's generation must
/// be this one's plus one, and the cloud's newest snapshot must still be this run's last.
#[derive(Debug)]
struct CarriedRun {
    cloud: i64,
    generation: i64,
    newest: i64,
    tag_ids: HashMap<String, i64>,
    heads: HashMap<i64, Vec<IpNet>>,
}

impl CarriedRun {
    /// Whether this can stand in for reading the store, in a transaction at `generation` that
    /// found `newest` the newest snapshot of `cloud`.
    fn holds(&self, cloud: i64, generation: i64, newest: Option<i64>) -> bool {
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
pub struct Prefetch(Option<Prefetched>);

/// [`Prefetch`]'s content.
#[derive(Debug)]
struct Prefetched {
    cloud: i64,
    /// The import generation when read: every history write bumps it.
    generation: i64,
    newest: i64,
    tag_ids: HashMap<String, i64>,
    /// The versions holding at `newest`.
    versions: Vec<StoredVersion>,
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
    fn holds(&self, cloud: i64, generation: i64, pos: Position) -> bool {
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

/// What a URL answered the last time its bytes were imported, for conditional requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Last-Modified` header.
    pub last_modified: Option<String>,
    /// sha256 of the bytes (uncompressed), hex.
    pub sha256: String,
    /// The snapshot that holds them.
    pub snapshot_id: i64,
}

/// A tag as `tagwall tags` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSummary {
    /// The tag's name.
    pub name: String,
    /// Its properties.
    pub meta: TagMeta,
    /// Number of IPv4 prefixes.
    pub ipv4_prefixes: i64,
    /// Number of IPv6 prefixes.
    pub ipv6_prefixes: i64,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open history store.
pub struct Store {
    pool: Pool,
    url: DbUrl,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Calls the same `ops.rs` function on whichever backend the store has.
macro_rules! on_backend {
    ($store:expr, $f:ident($($arg:expr),*)) => {
        match &$store.pool {
            Pool::Sqlite(p) => sqlite::$f(p, $($arg),*).await,
            Pool::Postgres(p) => postgres::$f(p, $($arg),*).await,
        }
    };
}

/// How long the first PostgreSQL connection may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One direct connection before the pool: a refused port, an unknown host, a TLS or password
/// problem is reported at once and by name, where the pool would retry until its timeout.
async fn pg_reachable(url: &DbUrl, options: &PgConnectOptions) -> Result<(), StoreError> {
    use sqlx::Connection;
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let fail = |message: String| StoreError::Open {
        url: url.to_string(),
        message,
    };
    let conn = tokio::time::timeout(PG_CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(options))
        .await
        .map_err(|_| {
            fail(format!(
                "PostgreSQL at {server} did not answer within {} s: check the host, port and firewall",
                PG_CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| match e {
            sqlx::Error::Io(io) if io.to_string().contains("certificate") => fail(format!(
                "TLS to PostgreSQL at {server} failed: {io}: check sslmode and sslrootcert in the store URL"
            )),
            sqlx::Error::Io(io) => fail(format!(
                "could not reach PostgreSQL at {server}: {io}: check that the server runs and the host and port in the store URL"
            )),
            sqlx::Error::Tls(tls) => fail(format!(
                "TLS to PostgreSQL at {server} failed: {tls}: check sslmode and sslrootcert in the store URL"
            )),
            other => fail(format!("PostgreSQL at {server}: {other}")),
        })?;
    let _ = conn.close().await;
    Ok(())
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the store at `url`.
    pub async fn open(url: &DbUrl) -> Result<Store, StoreError> {
        let open_err = |e: sqlx::Error| StoreError::Open {
            url: url.to_string(),
            message: e.to_string(),
        };
        let migrate_err = |e: sqlx::migrate::MigrateError| StoreError::Migrate {
            url: url.to_string(),
            message: e.to_string(),
        };
        let pool = match url.backend() {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(open_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(60))
                    .foreign_keys(true)
                    // A first import writes ~90,000 interval rows into three indexes: with
                    // SQLite's default 2 MB page cache they no longer fit, and every insert
                    // into the prefix index misses. Up to 64 MB per connection, used only as
                    // needed.
                    .pragma("cache_size", "-65536")
                    // An import writes ~1,600 pages to the WAL, so SQLite's default checkpoint
                    // at 1,000 pages copied them back after nearly every import, in the
                    // importing transaction. At 8,192 pages (32 MiB) a backfill checkpoints
                    // every few files and each hot page once; the limit truncates the WAL back
                    // to 32 MiB after a checkpoint.
                    .pragma("wal_autocheckpoint", "8192")
                    .pragma("journal_size_limit", "33554432")
                    // A multi-row statement inside a transaction keeps a statement journal
                    // (the pages it changed, to undo it alone if it fails): past 64 KiB SQLite
                    // spills it to a temporary file, which cost a backfill ~4% of its CPU in
                    // writes. In memory it is a copy of a few hundred pages at most.
                    .pragma("temp_store", "memory");
                // Two processes opening a new store would both switch it to WAL and apply the
                // migrations: they take turns with an flock on `<db>.open.lock`, from before the
                // first connection until migrated. Never a handle on the database file itself:
                // SQLite's locks are POSIX locks, which belong to the process and inode, so
                // closing any other handle on that file would drop them.
                let _turn = match url.sqlite_file() {
                    Some(path) => {
                        let mut lock = path.clone().into_os_string();
                        lock.push(".open.lock");
                        let lock = std::path::PathBuf::from(lock);
                        Some(
                            lock::flock_wait(&lock, Duration::from_secs(60))
                                .await
                                .map_err(|e| StoreError::Open {
                                    url: url.to_string(),
                                    message: format!(
                                        "could not lock {} to open the store: {e}",
                                        lock.display()
                                    ),
                                })?,
                        )
                    }
                    None => None,
                };
                if let Some(path) = url.sqlite_file() {
                    create_private(&path).map_err(|e| StoreError::Open {
                        url: url.to_string(),
                        message: format!("could not create {}: {e}", path.display()),
                    })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                sqlx::migrate!("./migrations/sqlite")
                    .run(&pool)
                    .await
                    .map_err(migrate_err)?;
                Pool::Sqlite(pool)
            }
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(open_err)?;
                pg_reachable(url, &options).await?;
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(15))
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .map_err(migrate_err)?;
                Pool::Postgres(pool)
            }
            None => {
                return Err(StoreError::Open {
                    url: url.to_string(),
                    message: "unknown scheme".into(),
                })
            }
        };
        Ok(Store {
            pool,
            url: url.clone(),
        })
    }

    /// The store's URL (its `Display` hides any password).
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

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

    /// Deletes a snapshot and everything only it held, in one transaction; the intervals of the
    /// other snapshots become what importing only them gives. `false` when `id` is not stored.
    pub async fn delete_snapshot(&self, id: i64) -> Result<bool, StoreError> {
        on_backend!(self, delete_snapshot(id))
    }

    /// Every snapshot of `cloud` (or of every cloud), oldest first.
    pub async fn snapshots(&self, cloud: Option<Cloud>) -> Result<Vec<SnapshotInfo>, StoreError> {
        let rows: Vec<SnapshotRow> = on_backend!(self, snapshots(cloud))?;
        rows.into_iter()
            .map(|r| r.info().map(|(info, _)| info))
            .collect()
    }

    /// The weekly changelog of one tag over every snapshot of its cloud, read from the temporal
    /// tables alone. `None` if the cloud never had the tag.
    pub async fn tag_history(
        &self,
        cloud: Cloud,
        name: &str,
    ) -> Result<Option<Vec<history::Entry>>, StoreError> {
        let Some(tag_id) = on_backend!(self, tag_id(cloud, name))? else {
            return Ok(None);
        };
        let snapshots = self.snapshot_ords(cloud).await?;
        let packed: Option<String> = on_backend!(self, tag_prefix_spans(tag_id))?;
        let mut spans = Vec::new();
        for item in packed
            .as_deref()
            .unwrap_or("")
            .split(';')
            .filter(|s| !s.is_empty())
        {
            let damaged = || StoreError::Damaged(format!("prefix interval {item:?}"));
            let mut f = item.splitn(3, ',');
            let from = f.next().and_then(|x| x.parse().ok()).ok_or_else(damaged)?;
            let to = f.next().and_then(|x| x.parse().ok()).ok_or_else(damaged)?;
            let prefix = rows::unhex_prefix(f.next().ok_or_else(damaged)?)?;
            spans.push((prefix, from, to));
        }
        let versions = on_backend!(self, tag_version_spans(tag_id))?;
        Ok(Some(history::changelog(&snapshots, &spans, &versions)))
    }

    /// The file date of the newest snapshot of `cloud` that holds the tag `name` (exactly that
    /// name); `None` when no stored snapshot does.
    pub async fn tag_last_seen(
        &self,
        cloud: Cloud,
        name: &str,
    ) -> Result<Option<chrono::NaiveDate>, StoreError> {
        let Some(tag_id) = on_backend!(self, tag_id(cloud, name))? else {
            return Ok(None);
        };
        let versions = on_backend!(self, tag_version_spans(tag_id))?;
        let snapshots = self.snapshot_ords(cloud).await?;
        Ok(snapshots
            .iter()
            .rev()
            .find(|(_, ord)| {
                versions
                    .iter()
                    .any(|(from, to, _, _)| from <= ord && ord <= to)
            })
            .map(|(info, _)| info.file_date))
    }

    /// The snapshot of `cloud` that `at` names (`id:N` names one of any cloud).
    pub async fn resolve(&self, cloud: Cloud, at: &SnapRef) -> Result<SnapshotInfo, StoreError> {
        Ok(self.locate(cloud, at).await?.0)
    }

    async fn locate(&self, cloud: Cloud, at: &SnapRef) -> Result<(SnapshotInfo, i64), StoreError> {
        let row: Option<SnapshotRow> = on_backend!(self, resolve(cloud, at))?;
        row.ok_or(StoreError::NotFound { cloud, at: *at })?.info()
    }

    async fn ord_of(&self, info: &SnapshotInfo) -> Result<i64, StoreError> {
        Ok(self.locate(info.cloud, &SnapRef::Id(info.id)).await?.1)
    }

    /// The content of a snapshot, checked against its recorded content hash.
    pub async fn snapshot(&self, info: &SnapshotInfo) -> Result<Snapshot, StoreError> {
        let ord = self.ord_of(info).await?;
        let versions: Vec<VersionRow> = on_backend!(self, versions_at(info.cloud, ord))?;
        let newest: Option<i64> = on_backend!(self, newest_ord(info.cloud))?;
        let pairs: Vec<(i64, IpNet)> = if newest == Some(ord) {
            // The newest snapshot's prefixes are kept packed per tag: no interval scan.
            let packed: Vec<(i64, Vec<u8>)> = on_backend!(self, head_prefixes(info.cloud))?;
            let mut pairs = Vec::with_capacity(info.prefixes.max(0) as usize);
            for (tag_id, bytes) in packed {
                let list = head::unpack(&bytes)
                    .ok_or_else(|| StoreError::Damaged(format!("head prefixes of tag {tag_id}")))?;
                pairs.extend(list.into_iter().map(|p| (tag_id, p)));
            }
            pairs
        } else {
            on_backend!(self, prefixes_at(info.cloud, ord))?
        };
        let snapshot = assemble(info, versions, pairs)?;
        let actual = canonical::content_sha256(&snapshot);
        if actual != info.content_sha256 {
            return Err(StoreError::Damaged(format!(
                "snapshot {} reassembles to content {actual}, recorded {}",
                info.id, info.content_sha256
            )));
        }
        Ok(snapshot)
    }

    /// The content diff of two snapshots of one cloud, read from the intervals that hold at one
    /// of them but not the other, with the unique-address counts from the address sets recorded
    /// at import: no whole snapshot is read. Snapshots imported before those sets were recorded
    /// are read whole.
    pub async fn diff(
        &self,
        from: &SnapshotInfo,
        to: &SnapshotInfo,
    ) -> Result<crate::core::diff::Diff, StoreError> {
        let (a, b) = (self.ord_of(from).await?, self.ord_of(to).await?);
        let (ua, ub) = (
            on_backend!(self, snapshot_addresses(from.id))?,
            on_backend!(self, snapshot_addresses(to.id))?,
        );
        let (Some(ua), Some(ub)) = (ua, ub) else {
            let (older, newer) = (self.snapshot(from).await?, self.snapshot(to).await?);
            return Ok(crate::core::diff::diff(&older, &newer));
        };
        let sets = |id: i64, (v4, v6): (Vec<u8>, Vec<u8>)| match (
            AddrSet::from_bytes(Family::V4, &v4),
            AddrSet::from_bytes(Family::V6, &v6),
        ) {
            (Some(v4), Some(v6)) => Ok((v4, v6)),
            _ => Err(StoreError::Damaged(format!("addresses of snapshot {id}"))),
        };
        let addresses = crate::core::diff::address_counts(&sets(from.id, ua)?, &sets(to.id, ub)?);
        let cloud = from.cloud;
        let older = assemble(
            from,
            on_backend!(self, versions_only_at(cloud, a, b))?,
            on_backend!(self, prefixes_only_at(cloud, a, b))?,
        )?;
        let newer = assemble(
            to,
            on_backend!(self, versions_only_at(cloud, b, a))?,
            on_backend!(self, prefixes_only_at(cloud, b, a))?,
        )?;
        Ok(crate::core::diff::diff_parts(&older, &newer, addresses))
    }

    /// The original bytes of a snapshot's file, exactly as imported (uncompressed).
    pub async fn original(&self, info: &SnapshotInfo) -> Result<Vec<u8>, StoreError> {
        let snapshot = self.snapshot(info).await?;
        let (blob, render, style): (Vec<u8>, i64, i64) = on_backend!(self, raw_blob(info.id))?;
        if render != RENDER_VERSION {
            return Err(StoreError::Damaged(format!(
                "snapshot {} was stored with rendering {render}, this tagwall knows {RENDER_VERSION}: upgrade tagwall",
                info.id
            )));
        }
        let base = canonical::render(&snapshot, Style::from_bits(style));
        Ok(rawcodec::decode(&blob, &base, &info.sha256)?)
    }

    /// Each tag of a snapshot with its properties and prefix counts, sorted by name, without
    /// reading any prefix.
    pub async fn tag_summaries(&self, info: &SnapshotInfo) -> Result<Vec<TagSummary>, StoreError> {
        let ord = self.ord_of(info).await?;
        let versions: Vec<VersionRow> = on_backend!(self, versions_at(info.cloud, ord))?;
        let mut tags = versions
            .iter()
            .map(|v| {
                Ok(TagSummary {
                    name: v.name.clone(),
                    meta: v.meta()?,
                    ipv4_prefixes: v.ipv4_prefixes,
                    ipv6_prefixes: v.ipv6_prefixes,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tags)
    }

    /// Every interval, over the cloud's whole history, of a prefix that contains `net` or (with
    /// `inside`) lies inside it.
    pub async fn prefix_hits(
        &self,
        cloud: Cloud,
        net: IpNet,
        inside: bool,
    ) -> Result<Vec<PrefixHit>, StoreError> {
        let exact: Vec<Vec<u8>> = (0..=net.prefix_len())
            .filter_map(|len| IpNet::new(net.addr(), len).ok())
            .map(|n| encode_prefix(&n.trunc()))
            .collect();
        let within = (inside && net.prefix_len() < net.max_prefix_len()).then(|| {
            let mut lo = encode_prefix(&net);
            let mut hi = lo.clone();
            let last = lo.len() - 1;
            match net.broadcast() {
                std::net::IpAddr::V4(b) => hi[..last].copy_from_slice(&b.octets()),
                std::net::IpAddr::V6(b) => hi[..last].copy_from_slice(&b.octets()),
            }
            lo[last] = 0;
            hi[last] = u8::MAX;
            (lo, hi)
        });
        let rows: Vec<(String, Vec<u8>, i64, i64)> = on_backend!(
            self,
            prefix_hits(
                cloud,
                &exact,
                within.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice()))
            )
        )?;
        let mut hits = Vec::with_capacity(rows.len());
        for (tag, bytes, from_ord, to_ord) in rows {
            let prefix = decode_prefix(&bytes)
                .ok_or_else(|| StoreError::Damaged(format!("prefix of tag {tag}")))?;
            // The byte range can take in prefixes of the other family: keep only real hits.
            if prefix.contains(&net) || (inside && net.contains(&prefix)) {
                hits.push(PrefixHit {
                    tag,
                    prefix,
                    from_ord,
                    to_ord,
                });
            }
        }
        Ok(hits)
    }

    /// Every snapshot of `cloud` with its ordinal, in history order.
    pub async fn snapshot_ords(
        &self,
        cloud: Cloud,
    ) -> Result<Vec<(SnapshotInfo, i64)>, StoreError> {
        let rows: Vec<SnapshotRow> = on_backend!(self, snapshots(Some(cloud)))?;
        rows.into_iter().map(SnapshotRow::info).collect()
    }

    /// The properties of the named tags in snapshot `info` (tags not in it are left out).
    pub async fn tag_meta(
        &self,
        info: &SnapshotInfo,
        names: &[String],
    ) -> Result<Vec<(String, TagMeta)>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let ord = self.ord_of(info).await?;
        let rows: Vec<VersionRow> = on_backend!(self, versions_of(info.cloud, ord, names))?;
        rows.iter()
            .map(|v| Ok((v.name.clone(), v.meta()?)))
            .collect()
    }

    /// What `url` answered when its bytes were last imported: for a conditional request.
    pub async fn validators(&self, url: &str) -> Result<Option<Validators>, StoreError> {
        on_backend!(self, validators(url))
    }

    /// Records what `url` answered and the snapshot its bytes are stored as.
    pub async fn save_validators(&self, url: &str, v: &Validators) -> Result<(), StoreError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        on_backend!(self, save_validators(url, v, &now))
    }

    /// The reports written for `cloud`'s snapshots: (snapshot id, the id it was compared with).
    pub async fn report_marks(&self, cloud: Cloud) -> Result<Vec<(i64, i64)>, StoreError> {
        on_backend!(self, report_marks(cloud))
    }

    /// Records that the diff report of `snapshot_id`, compared with `before_id`, is written.
    pub async fn mark_report(&self, snapshot_id: i64, before_id: i64) -> Result<(), StoreError> {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        on_backend!(self, mark_report(snapshot_id, before_id, &at))
    }

    /// Records one `tagwall approve`.
    pub async fn record_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        on_backend!(self, record_approval(approval))
    }

    /// Whether the withheld change of `ruleset` built from snapshot `snapshot_id` was rejected.
    pub async fn rejected(&self, ruleset: &str, snapshot_id: i64) -> Result<bool, StoreError> {
        Ok(self.approvals().await?.iter().any(|a| {
            a.decision == Decision::Rejected && a.ruleset == ruleset && a.snapshot_id == snapshot_id
        }))
    }

    /// Every approval and rejection, oldest first.
    pub async fn approvals(&self) -> Result<Vec<Approval>, StoreError> {
        on_backend!(self, approvals())
    }

    /// Records a ruleset's publish, byte for byte, in one transaction (for `serve` with
    /// `[serve] source = "store"`), unless the newest recorded one has the same manifest. True
    /// when it was recorded.
    pub async fn record_publish(&self, publish: &NewPublish<'_>) -> Result<bool, StoreError> {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        on_backend!(self, record_publish(publish, &at))
    }

    /// Every kept publish (the newest [`PUBLISHES_KEPT`] of each ruleset): (ruleset, id,
    /// published at, RFC 3339), by ruleset, the newest first.
    pub async fn kept_publishes(&self) -> Result<Vec<(String, i64, String)>, StoreError> {
        on_backend!(self, kept_publishes())
    }

    /// The files of a recorded publish, in order: (name, bytes); empty when it is gone.
    pub async fn publish_files(&self, id: i64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        on_backend!(self, publish_files(id))
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(self) {
        match self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Creates a new SQLite database file as 0600 whatever the umask (SQLite gives its `-wal` and
/// `-shm` files the database's mode); an existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// Builds a snapshot from the tag versions and prefix pairs that hold at its ordinal.
fn assemble(
    info: &SnapshotInfo,
    versions: Vec<VersionRow>,
    pairs: Vec<(i64, IpNet)>,
) -> Result<Snapshot, StoreError> {
    let mut by_tag: HashMap<i64, Vec<IpNet>> =
        HashMap::with_capacity_and_hasher(versions.len(), Default::default());
    for (tag_id, net) in pairs {
        by_tag.entry(tag_id).or_default().push(net);
    }
    let mut tags = Vec::with_capacity(versions.len());
    for v in versions {
        let mut prefixes = by_tag.remove(&v.tag_id).unwrap_or_default();
        prefixes.sort_unstable();
        tags.push(ServiceTag {
            meta: v.meta()?,
            name: v.name,
            prefixes,
        });
    }
    if !by_tag.is_empty() {
        return Err(StoreError::Damaged(format!(
            "snapshot {} has prefixes of tags it does not hold",
            info.id
        )));
    }
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Snapshot {
        cloud: info.cloud,
        change_number: info.change_number,
        tags,
    })
}

/// The first ordinal of a file date.
fn day_ordinal(date: NaiveDate) -> Result<i64, StoreError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let days = (date - epoch).num_days();
    // The last ordinal of the date must stay below `temporal::OPEN`.
    if days < 0 || (days + 1) * ORDS_PER_DAY > crate::store::temporal::OPEN {
        return Err(StoreError::DateOutOfRange(date));
    }
    Ok(days * ORDS_PER_DAY)
}

/// A digest of a tag's prefix set: equal digests mean equal sets. `buf` is scratch space.
fn prefixes_digest(prefixes: &[IpNet], buf: &mut Vec<u8>) -> Vec<u8> {
    // Hashed in one piece: many small updates cost more than the copy.
    buf.clear();
    for p in prefixes {
        buf.extend_from_slice(crate::core::model::encode_prefix_into(p).as_ref());
    }
    crate::core::digest::sha256(buf)[..16].to_vec()
}

/// A tag's prefix-set digest and version digest: what tells whether a stored version still
/// holds. Computed with the rest of a file's preparation, off the transaction.
#[derive(Debug)]
struct TagDigests {
    /// sha256 (first 16 bytes) of the sorted prefixes.
    prefixes: Vec<u8>,
    /// sha256 (first 16 bytes) of every property and the prefixes digest.
    version: Vec<u8>,
}

impl TagDigests {
    /// A snapshot's tags' digests, in its order.
    fn of_all(tags: &[ServiceTag]) -> Vec<TagDigests> {
        // One buffer for every hashed text: a one-shot hash of the same bytes gives the same
        // digest as updating piece by piece, at a fraction of the cost per tag.
        let mut buf = Vec::new();
        tags.iter().map(|t| TagDigests::of(t, &mut buf)).collect()
    }

    fn of(tag: &ServiceTag, buf: &mut Vec<u8>) -> TagDigests {
        let m = &tag.meta;
        let prefixes = prefixes_digest(&tag.prefixes, buf);
        buf.clear();
        for text in [&m.id, &m.region, &m.platform, &m.system_service] {
            buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
        match features_to_column(&m.network_features) {
            None => buf.push(0),
            Some(f) => {
                buf.push(1);
                buf.extend_from_slice(&(f.len() as u64).to_le_bytes());
                buf.extend_from_slice(f.as_bytes());
            }
        }
        buf.extend_from_slice(&m.change_number.to_le_bytes());
        buf.extend_from_slice(&m.region_id.map_or([0xff; 9], |id| {
            let mut b = [0; 9];
            b[1..].copy_from_slice(&id.to_le_bytes());
            b
        }));
        buf.extend_from_slice(&prefixes);
        TagDigests {
            prefixes,
            version: crate::core::digest::sha256(buf)[..16].to_vec(),
        }
    }
}

fn version_key(tag_id: i64, tag: &ServiceTag, digests: &TagDigests) -> VersionKey {
    let (v4, v6) = tag.family_counts();
    let m = &tag.meta;
    VersionKey {
        tag_id,
        json_id: m.id.clone(),
        change_number: m.change_number,
        region: m.region.clone(),
        region_id: m.region_id,
        platform: m.platform.clone(),
        system_service: m.system_service.clone(),
        network_features: features_to_column(&m.network_features),
        ipv4_prefixes: v4 as i64,
        ipv6_prefixes: v6 as i64,
        prefixes_digest: digests.prefixes.clone(),
        version_digest: digests.version.clone(),
    }
}

/// The tags whose prefix set at the new position differs from that at a neighbour (a tag absent
/// at a snapshot has no set). Only these tags' prefix intervals can change.
fn changed_prefix_sets(
    pos: Position,
    stored: &[StoredVersion],
    present: &HashMap<i64, (&ServiceTag, &TagDigests)>,
) -> Vec<i64> {
    let mut at_prev: HashMap<i64, &[u8]> = HashMap::default();
    let mut at_next: HashMap<i64, &[u8]> = HashMap::default();
    for v in stored {
        let holds = |ord: Option<i64>| ord.is_some_and(|o| v.from_ord <= o && o <= v.to_ord);
        if holds(pos.prev) {
            at_prev.insert(v.tag_id, &v.prefixes_digest);
        }
        if holds(pos.next) {
            at_next.insert(v.tag_id, &v.prefixes_digest);
        }
    }
    let all: HashSet<i64> = at_prev
        .keys()
        .chain(at_next.keys())
        .chain(present.keys())
        .copied()
        .collect();
    let mut changed: Vec<i64> = all
        .into_iter()
        .filter(|id| {
            let here = present.get(id).map(|(_, d)| d.prefixes.as_slice());
            here != at_prev.get(id).copied()
                || (pos.next.is_some() && here != at_next.get(id).copied())
        })
        .collect();
    changed.sort_unstable();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::Sha256;
    use crate::core::model::{NetworkFeatures, TagMeta};

    /// The version digest as every stored row was computed: piece by piece. Hashing one buffer
    /// must give the same bytes, or every stored version would look changed.
    fn piecewise(tag: &ServiceTag) -> Vec<u8> {
        let m = &tag.meta;
        let mut prefixes = Sha256::new();
        for p in &tag.prefixes {
            prefixes.update(crate::core::model::encode_prefix_into(p).as_ref());
        }
        let prefixes = prefixes.finish()[..16].to_vec();
        let mut h = Sha256::new();
        for text in [&m.id, &m.region, &m.platform, &m.system_service] {
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        match features_to_column(&m.network_features) {
            None => h.update([0]),
            Some(f) => {
                h.update([1]);
                h.update((f.len() as u64).to_le_bytes());
                h.update(f.as_bytes());
            }
        }
        h.update(m.change_number.to_le_bytes());
        h.update(m.region_id.map_or([0xff; 9], |id| {
            let mut b = [0; 9];
            b[1..].copy_from_slice(&id.to_le_bytes());
            b
        }));
        h.update(&prefixes);
        h.finish()[..16].to_vec()
    }

    #[test]
    fn tag_digests_are_the_stored_ones() {
        let tag = |features, region_id| ServiceTag {
            name: "AzureCloud.westeurope".into(),
            meta: TagMeta {
                id: "AzureCloud.westeurope".into(),
                change_number: 42,
                region: "westeurope".into(),
                region_id,
                platform: "Azure".into(),
                system_service: String::new(),
                network_features: features,
            },
            prefixes: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2603:1000::/40".parse().unwrap(),
            ],
        };
        let tags = [
            tag(NetworkFeatures::Absent, None),
            tag(NetworkFeatures::Null, Some(18)),
            tag(
                NetworkFeatures::List(vec!["API".into(), "NSG".into()]),
                Some(0),
            ),
        ];
        let digests = TagDigests::of_all(&tags);
        for (t, d) in tags.iter().zip(&digests) {
            assert_eq!(d.version, piecewise(t));
        }
        assert_ne!(digests[0].version, digests[1].version);
    }
}
