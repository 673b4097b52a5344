//! A run of appended weeks in one transaction: how `tagwall import` backfills a store.
//!
//! A module of `mod sqlite` and `mod postgres` like `ops.rs`, so the same rules apply: SQL that
//! runs unchanged on both backends.
//!
//! Importing weeks one by one reads the newest snapshot's open versions and prefixes back from the
//! store for every file, and closes with an `UPDATE` every interval that a later file of the same
//! run ends. Here the store is read once, each file is compared with the one before it in memory,
//! and each interval is written once, with its final ends. What is stored is exactly what
//! importing the files one by one stores (`tests/it/real_data.rs` compares both, on both backends).

use ipnet::IpNet;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use sqlx::Pool;

use super::ops::{
    add_missing_tags, apply_plan, close_open_intervals, cloud_tag_ids, finish_snapshot,
    insert_snapshot, stored_content, touching_versions, write_heads, write_tx, Decision, Tx,
    PREFIXES, VERSIONS,
};
use super::Db;
use crate::store::rows::VersionKey;
use crate::store::temporal::Plan;
use crate::store::{head, ImportOutcome, NewSnapshot, StoreError};

/// Imports `files`, all of one cloud, with file dates strictly increasing and each later than
/// the cloud's newest stored snapshot, in one transaction. `Ok(None)` when they are not such a
/// run: nothing was stored, and `files` are untouched for importing one by one. On an error
/// nothing was stored, and the files' originals may have been taken out of `files`.
pub(in crate::store) async fn import_appends(
    pool: &Pool<Db>,
    files: &mut [NewSnapshot<'_>],
    carry: &mut crate::store::RunCarry,
) -> Result<Option<Vec<ImportOutcome>>, StoreError> {
    // Used at most once: a carry is only ever good for the run right after the one that left it.
    let carried = carry.0.take();
    let done = write_tx!(pool, |tx| appends_in(tx, files, carried))?;
    Ok(done.map(|(outcomes, next)| {
        carry.0 = next;
        outcomes
    }))
}

/// What a committed run returns: each file's outcome, and what the next run may reuse.
type RunDone = (Vec<ImportOutcome>, Option<crate::store::CarriedRun>);

async fn appends_in(
    tx: &mut Tx<'_>,
    files: &mut [NewSnapshot<'_>],
    carried: Option<crate::store::CarriedRun>,
) -> Result<Decision<Option<RunDone>>, StoreError> {
    let Some(first) = files.first() else {
        return Ok(Decision::RollBack(Some((Vec::new(), None))));
    };
    let cloud = first.snapshot.cloud;
    // A file hashed beside its transaction (imported alone) is not part of a run.
    let a_run = files
        .iter()
        .all(|f| f.snapshot.cloud == cloud && f.content_sha256.is_some())
        && files.windows(2).all(|w| w[0].file_date < w[1].file_date);
    let first_ord = crate::store::day_ordinal(first.file_date)?;
    let code = cloud.code();
    let generation: i64 = sqlx::query_scalar(
        "UPDATE import_lock SET generation = generation + 1 WHERE id = 1 RETURNING generation",
    )
    .fetch_one(&mut **tx)
    .await?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(ord) FROM snapshots WHERE cloud = $1")
        .bind(code)
        .fetch_one(&mut **tx)
        .await?;
    if !a_run || newest.is_some_and(|ord| ord >= first_ord) {
        return Ok(Decision::RollBack(None));
    }
    let jobs: Vec<_> = files
        .iter_mut()
        .map(crate::store::content::ContentJob::start)
        .collect();
    let carried = carried.filter(|c| c.holds(code, generation, newest));
    let mut run = AppendRun::load(tx, code, newest, carried).await?;
    let mut outcomes = Vec::with_capacity(files.len());
    for (new, job) in files.iter().zip(jobs) {
        outcomes.push(run.append(tx, code, new, job).await?);
    }
    let next = run.write(tx, code, generation).await?;
    Ok(Decision::Commit(Some((outcomes, next))))
}

/// Where an open version comes from.
enum Origin {
    /// A stored row (by id): the version began before the run.
    Stored(i64),
    /// The version began during the run; it is written when the run ends.
    New(Box<VersionKey>),
}

/// A tag's open version during a run.
struct OpenVersion {
    origin: Origin,
    /// Its first ordinal.
    from: i64,
    version_digest: Vec<u8>,
    prefixes_digest: Vec<u8>,
}

/// What the run has seen so far: the newest snapshot's open facts, and the rows to write.
struct AppendRun {
    /// The newest snapshot's ordinal.
    prev: Option<i64>,
    tag_ids: HashMap<String, i64>,
    /// Each tag's open version.
    versions: HashMap<i64, OpenVersion>,
    /// Each tag's prefixes in the newest snapshot (what `head_prefixes` holds).
    heads: HashMap<i64, Vec<IpNet>>,
    /// Tags whose head row must be rewritten (or deleted, when absent from `heads`).
    heads_changed: HashSet<i64>,
    /// Pairs opened during the run, with their first ordinal.
    opened: rustc_hash::FxHashMap<(i64, IpNet), i64>,
    /// Stored open pairs ended during the run: (ordinal of their last snapshot, tag, prefix).
    stored_closes: Vec<(i64, i64, IpNet)>,
    /// Stored open versions ended during the run: (row id, ordinal of their last snapshot).
    version_closes: Vec<(i64, i64)>,
    /// Intervals begun and ended during the run.
    prefix_rows: Vec<((i64, IpNet), i64, i64)>,
    version_rows: Vec<(VersionKey, i64, i64)>,
}

impl AppendRun {
    /// Reads the cloud's newest snapshot's open versions and prefixes (none for a new cloud);
    /// the tag ids and prefixes come from `carried` instead when the run before left them.
    async fn load(
        tx: &mut Tx<'_>,
        cloud: i64,
        prev: Option<i64>,
        carried: Option<crate::store::CarriedRun>,
    ) -> Result<AppendRun, StoreError> {
        let (tag_ids, heads) = match carried {
            Some(c) => (c.tag_ids, Some(c.heads)),
            None => (cloud_tag_ids(tx, cloud).await?, None),
        };
        let mut run = AppendRun {
            prev,
            tag_ids,
            versions: HashMap::default(),
            heads: HashMap::default(),
            heads_changed: HashSet::default(),
            opened: rustc_hash::FxHashMap::default(),
            stored_closes: Vec::new(),
            version_closes: Vec::new(),
            prefix_rows: Vec::new(),
            version_rows: Vec::new(),
        };
        let Some(prev) = prev else {
            return Ok(run);
        };
        // The versions holding at the newest snapshot: the open ones.
        for v in touching_versions(tx, cloud, prev, prev).await? {
            let open = OpenVersion {
                origin: Origin::Stored(v.id),
                from: v.from_ord,
                version_digest: v.version_digest,
                prefixes_digest: v.prefixes_digest,
            };
            if run.versions.insert(v.tag_id, open).is_some() {
                return Err(StoreError::Damaged(format!(
                    "tag {} has two open versions",
                    v.tag_id
                )));
            }
        }
        if let Some(heads) = heads {
            run.heads = heads;
            return Ok(run);
        }
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT tag_id, prefixes FROM head_prefixes WHERE cloud = $1")
                .bind(cloud)
                .fetch_all(&mut **tx)
                .await?;
        for (tag_id, packed) in rows {
            let list = head::unpack(&packed)
                .ok_or_else(|| StoreError::Damaged(format!("head prefixes of tag {tag_id}")))?;
            run.heads.insert(tag_id, list);
        }
        Ok(run)
    }

    /// Appends one file: its snapshot row now, its facts compared with the newest snapshot's.
    async fn append(
        &mut self,
        tx: &mut Tx<'_>,
        cloud: i64,
        new: &NewSnapshot<'_>,
        job: crate::store::content::ContentJob,
    ) -> Result<ImportOutcome, StoreError> {
        let content_sha256 = new.content_sha256.as_deref().ok_or_else(|| {
            StoreError::Damaged("a run's file was imported before its content was hashed".into())
        })?;
        if let Some(info) = stored_content(tx, cloud, content_sha256).await? {
            job.abort();
            return Ok(ImportOutcome::AlreadyStored(info));
        }
        let at = crate::store::day_ordinal(new.file_date)?;
        let id = insert_snapshot(tx, cloud, at, new).await?;
        add_missing_tags(tx, cloud, new, &mut self.tag_ids).await?;
        self.compare(new, at)?;
        self.prev = Some(at);
        let finished = job.wait().await?;
        Ok(ImportOutcome::Imported(
            finish_snapshot(tx, id, finished).await?,
        ))
    }

    /// What `write_versions` and `append_prefixes` would do for `new` at ordinal `at`, in memory.
    fn compare(&mut self, new: &NewSnapshot<'_>, at: i64) -> Result<(), StoreError> {
        let ids = new
            .snapshot
            .tags
            .iter()
            .map(|tag| {
                self.tag_ids
                    .get(&tag.name)
                    .copied()
                    .ok_or_else(|| StoreError::Damaged(format!("no id for tag {:?}", tag.name)))
            })
            .collect::<Result<Vec<i64>, _>>()?;
        let present: HashSet<i64> = ids.iter().copied().collect();
        let mut gone: Vec<i64> = self
            .versions
            .keys()
            .copied()
            .filter(|id| !present.contains(id))
            .collect();
        gone.sort_unstable();
        for id in gone {
            self.end_version(id)?;
            self.set_prefixes(id, &[], at)?;
        }
        for ((tag, digests), id) in new.snapshot.tags.iter().zip(&new.digests).zip(ids) {
            let open = self.versions.get(&id);
            if open.is_some_and(|v| v.version_digest == digests.version) {
                continue;
            }
            let same_prefixes = open.is_some_and(|v| v.prefixes_digest == digests.prefixes);
            if open.is_some() {
                self.end_version(id)?;
            }
            let version = OpenVersion {
                origin: Origin::New(Box::new(crate::store::version_key(id, tag, digests))),
                from: at,
                version_digest: digests.version.clone(),
                prefixes_digest: digests.prefixes.clone(),
            };
            self.versions.insert(id, version);
            if !same_prefixes {
                self.set_prefixes(id, &tag.prefixes, at)?;
            }
        }
        Ok(())
    }

    /// Ends tag `id`'s open version at the newest snapshot.
    fn end_version(&mut self, id: i64) -> Result<(), StoreError> {
        let prev = self.prev_ord()?;
        let Some(v) = self.versions.remove(&id) else {
            return Ok(());
        };
        match v.origin {
            Origin::Stored(row) => self.version_closes.push((row, prev)),
            Origin::New(key) => self.version_rows.push((*key, v.from, prev)),
        }
        Ok(())
    }

    /// Tag `id` holds exactly `prefixes` from ordinal `at` on.
    fn set_prefixes(&mut self, id: i64, prefixes: &[IpNet], at: i64) -> Result<(), StoreError> {
        let before = self.heads.remove(&id).unwrap_or_default();
        let (removed, added) = head::difference(&before, prefixes);
        if !removed.is_empty() {
            let prev = self.prev_ord()?;
            for p in removed {
                match self.opened.remove(&(id, p)) {
                    Some(from) => self.prefix_rows.push(((id, p), from, prev)),
                    None => self.stored_closes.push((prev, id, p)),
                }
            }
        }
        for p in added {
            self.opened.insert((id, p), at);
        }
        if !prefixes.is_empty() {
            self.heads.insert(id, prefixes.to_vec());
        }
        self.heads_changed.insert(id);
        Ok(())
    }

    fn prev_ord(&self) -> Result<i64, StoreError> {
        self.prev
            .ok_or_else(|| StoreError::Damaged("open facts without a snapshot".into()))
    }

    /// Writes what the run changed: ends the stored intervals it ended, inserts every interval
    /// it began, and rewrites the head rows of the tags whose prefixes changed. Returns what the
    /// next run of the import may reuse, if this one commits at `generation`.
    async fn write(
        self,
        tx: &mut Tx<'_>,
        cloud: i64,
        generation: i64,
    ) -> Result<Option<crate::store::CarriedRun>, StoreError> {
        let mut closes = self.stored_closes;
        closes.sort_unstable();
        for group in closes.chunk_by(|a, b| a.0 == b.0) {
            let pairs: Vec<(i64, IpNet)> = group.iter().map(|&(_, id, p)| (id, p)).collect();
            close_open_intervals(tx, group[0].0, &pairs).await?;
        }
        let mut version_rows = self.version_rows;
        let mut open_versions: Vec<(i64, OpenVersion)> = self.versions.into_iter().collect();
        open_versions.sort_unstable_by_key(|(id, _)| *id);
        for (_, v) in open_versions {
            if let Origin::New(key) = v.origin {
                version_rows.push((*key, v.from, crate::store::temporal::OPEN));
            }
        }
        let versions = Plan {
            insert: version_rows,
            set_to: self.version_closes,
            ..Plan::default()
        };
        apply_plan(tx, cloud, versions, VERSIONS).await?;
        let mut prefix_rows = self.prefix_rows;
        let mut opened: Vec<((i64, IpNet), i64)> = self.opened.into_iter().collect();
        opened.sort_unstable();
        prefix_rows.extend(
            opened
                .into_iter()
                .map(|(key, from)| (key, from, crate::store::temporal::OPEN)),
        );
        let prefixes = Plan {
            insert: prefix_rows,
            ..Plan::default()
        };
        apply_plan(tx, cloud, prefixes, PREFIXES).await?;
        let mut changed: Vec<i64> = self.heads_changed.into_iter().collect();
        changed.sort_unstable();
        let gone: Vec<i64> = changed
            .iter()
            .copied()
            .filter(|id| !self.heads.contains_key(id))
            .collect();
        let rows: Vec<(i64, &[IpNet])> = changed
            .iter()
            .filter_map(|id| self.heads.get(id).map(|p| (*id, p.as_slice())))
            .collect();
        write_heads(tx, cloud, &gone, &rows).await?;
        Ok(self.prev.map(|newest| crate::store::CarriedRun {
            cloud,
            generation,
            newest,
            tag_ids: self.tag_ids,
            heads: self.heads,
        }))
    }
}
