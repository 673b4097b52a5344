//! The history store: every imported ServiceTags file, exactly and compactly, in SQLite (the
//! default, embedded) or PostgreSQL (shared by several runners).
//!
//! Layout (see ARCHITECTURE.md for the reasoning):
//! - `snapshots`: one row per distinct file content per cloud, with the original bytes stored as a
//!   zstd delta against the snapshot's canonical rendering (`crate::store::rawcodec`);
//! - `tag_versions` and `prefix_intervals`: each tag's properties and each (tag, prefix) pair
//!   stored once per run of snapshots in which it holds (`crate::store::temporal`).
//!
//! The backend is chosen once from the URL. Both run the same SQL: each file of `store/sql/` is
//! a module of `store::sqlite` and of `store::postgres`, which give it the backend's `Db`
//! (`on_backend!` calls the right one). Each applies its own embedded migrations on connect.
//!
//! Files enter through `import_paths` (one at a time, the reference; a lone file with a
//! prefetch; runs of appended weeks); `open` connects, `digests` tells changed tags, and the
//! rest of this module reads.

/// Calls the backend's function of the same name (`store/sql/`) on the store's pool. Defined
/// before the submodules, which use it too.
macro_rules! on_backend {
    ($store:expr, $f:ident($($arg:expr),*)) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(p) => $crate::store::sqlite::$f(p, $($arg),*).await,
            $crate::store::Pool::Postgres(p) => $crate::store::postgres::$f(p, $($arg),*).await,
        }
    };
}

mod content;
mod digests;
mod error;
mod head;
pub mod import;
mod import_paths;
mod lock;
mod open;
pub mod rawcodec;
mod rawdelta;
mod rows;
pub mod temporal;
mod url;
mod window;
pub use window::Earlier;

// Fx hashing: keys are tag ids and names from the store and a checked file, and SipHash
// was a visible share of an import.
use rustc_hash::FxHashMap as HashMap;

use chrono::NaiveDate;
use ipnet::IpNet;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

pub use self::content::ContentParts;
use self::digests::{changed_prefix_sets, version_key, TagDigests};
pub use self::error::StoreError;
use self::import_paths::{CarriedRun, Prefetched};
pub use self::import_paths::{ImportOutcome, NewSnapshot, Prefetch, RunCarry};
pub use self::lock::RunLock;
use self::rows::{SnapshotRow, VersionRow};
pub use self::url::{Backend, BadUrl, DbUrl};
use crate::core::canonical::{self, Style, RENDER_VERSION};
use crate::core::history;
use crate::core::model::{
    decode_prefix, encode_prefix, Cloud, ServiceTag, Snapshot, SnapshotInfo, TagMeta,
};
use crate::core::ranges::{AddrSet, Family};
pub use crate::core::snapref::SnapRef;
use crate::rules::lookup::PrefixHit;

mod postgres;
mod sqlite;

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

impl Store {
    /// The store's URL (its `Display` hides any password).
    pub fn url(&self) -> &DbUrl {
        &self.url
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
            spans.push(history::PrefixSpan { prefix, from, to });
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
            .find(|(_, ord)| versions.iter().any(|v| v.holds_at(*ord)))
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

    /// Every interval, over the cloud's whole history, of a prefix that contains `net` or lies
    /// inside it: what a lookup of `net` reads.
    pub async fn prefix_hits(
        &self,
        cloud: Cloud,
        net: IpNet,
    ) -> Result<Vec<PrefixHit>, StoreError> {
        let exact: Vec<Vec<u8>> = (0..=net.prefix_len())
            .filter_map(|len| IpNet::new(net.addr(), len).ok())
            .map(|n| encode_prefix(&n.trunc()))
            .collect();
        let within = (net.prefix_len() < net.max_prefix_len()).then(|| {
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
            if prefix.contains(&net) || net.contains(&prefix) {
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
