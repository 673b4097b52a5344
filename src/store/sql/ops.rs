//! The store's writes, written once for both backends.
//!
//! `store/mod.rs` makes this file (like every file of `store/sql/`) a module of both `mod sqlite`
//! and `mod postgres`, each of which declares `type Db` (the sqlx database), `BEGIN_WRITE` (how
//! a writing transaction starts) and the hex functions of its SQL. Every statement here must
//! therefore run unchanged on SQLite and PostgreSQL: `$N` placeholders, BIGINT-compatible
//! integers, `RETURNING`, no backend-specific functions.

// Fx hashing: keys are tag ids and names from the store and a checked file, and SipHash
// was a visible share of an import.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use ipnet::IpNet;

use sqlx::pool::PoolConnection;
use sqlx::query_builder::Separated;
use sqlx::{Connection, Pool, QueryBuilder, Transaction};

use super::{Db, HEX_PREFIX, HEX_PREFIXES, HEX_VERSION};
use crate::core::model::ServiceTag;
use crate::store::rows::{
    unpack_intervals, unpack_versions, SnapshotRow, VersionKey, SNAPSHOT_COLUMNS,
};
use crate::store::temporal::{plan_insert, Interval, Plan, Position};
use crate::store::{head, ImportOutcome, NewSnapshot, StoreError, ORDS_PER_DAY};

pub(super) type Tx<'c> = Transaction<'c, Db>;

/// Rows per multi-row `INSERT` or `IN (…)` list: well under both backends' parameter limits.
const CHUNK: usize = 1000;

/// What a writing transaction's body decided.
pub(super) enum Decision<T> {
    /// Keep what it wrote.
    Commit(T),
    /// It wrote nothing worth keeping.
    RollBack(T),
}

/// Ends a writing transaction as its body decided; a body that failed is rolled back.
pub(super) async fn finish<T>(
    tx: Tx<'_>,
    body: Result<Decision<T>, StoreError>,
) -> Result<T, StoreError> {
    match body {
        Ok(Decision::Commit(value)) => {
            tx.commit().await?;
            Ok(value)
        }
        Ok(Decision::RollBack(value)) => {
            tx.rollback().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Hands a writing transaction's connection back to the pool only when the transaction ended
/// cleanly. After some errors (SQLite's disk full) the database has already ended the
/// transaction and sqlx's `ROLLBACK` fails too, which would leave a pooled connection that
/// refuses every later `BEGIN` ("begin_with at non-zero transaction depth"): it is closed.
pub(super) async fn release<T>(conn: PoolConnection<Db>, result: &Result<T, StoreError>) {
    if result.is_err() {
        let _ = conn.detach().close().await;
    }
}

/// Runs `$body` (with `$tx`, the open transaction) as one writing transaction on a connection
/// of its own (used by every module of a backend, so its paths start at the backend): committed or rolled back as the body decides ([`finish`]), and the connection
/// closed when anything failed ([`release`]).
macro_rules! write_tx {
    ($pool:expr, |$tx:ident| $body:expr) => {{
        let mut conn = $pool.acquire().await?;
        let result = async {
            let mut open = sqlx::Connection::begin_with(&mut *conn, super::BEGIN_WRITE).await?;
            let body = {
                let $tx = &mut open;
                $body.await
            };
            super::ops::finish(open, body).await
        }
        .await;
        super::ops::release(conn, &result).await;
        result
    }};
}
pub(super) use write_tx;

/// Imports one snapshot in one transaction.
pub(in crate::store) async fn import(
    pool: &Pool<Db>,
    new: NewSnapshot<'_>,
    prefetch: crate::store::Prefetch,
) -> Result<ImportOutcome, StoreError> {
    write_tx!(pool, |tx| import_in(tx, new, prefetch.0))
}

/// Reads what importing a file after the newest snapshot of `cloud` reads first, in a read
/// transaction of its own. The generation is read first: a write that commits after it, even
/// before the rest is read (PostgreSQL reads each statement at its own time), changes it.
pub(in crate::store) async fn prefetch_append(
    pool: &Pool<Db>,
    cloud: i64,
) -> Result<crate::store::Prefetch, StoreError> {
    let mut tx = pool.begin().await?;
    let generation: i64 = sqlx::query_scalar("SELECT generation FROM import_lock WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(ord) FROM snapshots WHERE cloud = $1")
        .bind(cloud)
        .fetch_one(&mut *tx)
        .await?;
    let prefetched = match newest {
        None => None,
        Some(newest) => Some(crate::store::Prefetched {
            cloud,
            generation,
            newest,
            tag_ids: cloud_tag_ids(&mut tx, cloud).await?,
            versions: touching_versions(&mut tx, cloud, newest, newest).await?,
        }),
    };
    tx.rollback().await?;
    Ok(crate::store::Prefetch(prefetched))
}

async fn import_in(
    tx: &mut Tx<'_>,
    mut new: NewSnapshot<'_>,
    prefetched: Option<crate::store::Prefetched>,
) -> Result<Decision<ImportOutcome>, StoreError> {
    let generation: i64 = sqlx::query_scalar(
        "UPDATE import_lock SET generation = generation + 1 WHERE id = 1 RETURNING generation",
    )
    .fetch_one(&mut **tx)
    .await?;
    let cloud = new.snapshot.cloud.code();
    if let Some(known) = new.content_sha256.as_deref() {
        if let Some(info) = stored_content(tx, cloud, known).await? {
            return Ok(Decision::RollBack(ImportOutcome::AlreadyStored(info)));
        }
    }
    let started = std::time::Instant::now();
    let mut job = crate::store::content::ContentJob::start(&mut new);
    let new = &new;
    let pos = place(tx, cloud, new, &mut job).await?;
    let id = insert_snapshot(tx, cloud, pos.at, new).await?;
    let (known_ids, known_versions) = match prefetched.filter(|p| p.holds(cloud, generation, pos)) {
        Some(p) => (Some(p.tag_ids), Some(p.versions)),
        None => (None, None),
    };
    let prefetched = known_ids.is_some();
    let tag_ids = tag_ids(tx, cloud, new, known_ids).await?;
    tracing::debug!(elapsed = ?started.elapsed(), ?pos, prefetched, "snapshot row and tag ids written");
    let changed = write_versions(tx, cloud, pos, new, &tag_ids, known_versions).await?;
    tracing::debug!(elapsed = ?started.elapsed(), changed = changed.len(), "tag versions written");
    write_prefixes(tx, cloud, pos, new, &tag_ids, changed).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "prefix intervals written");
    let finished = job.wait().await?;
    if new.content_sha256.is_none() {
        // Hashed beside the transaction: the same content may be stored already (the new row
        // holds a placeholder, so it is not the one found). Nothing of this file is kept.
        if let Some(info) = stored_content(tx, cloud, &finished.content_sha256).await? {
            return Ok(Decision::RollBack(ImportOutcome::AlreadyStored(info)));
        }
    }
    let info = finish_snapshot(tx, id, finished).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "import written");
    Ok(Decision::Commit(ImportOutcome::Imported(info)))
}

/// The snapshot of `cloud` whose content hash is `content_sha256`, if one is stored.
pub(super) async fn stored_content(
    tx: &mut Tx<'_>,
    cloud: i64,
    content_sha256: &str,
) -> Result<Option<crate::core::model::SnapshotInfo>, StoreError> {
    let existing: Option<SnapshotRow> = sqlx::query_as(&format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE cloud = $1 AND content_sha256 = $2"
    ))
    .bind(cloud)
    .bind(content_sha256)
    .fetch_optional(&mut **tx)
    .await?;
    existing.map(|row| Ok(row.info()?.0)).transpose()
}

/// What `content_sha256` holds in a new snapshot's row until its content hash is known (made
/// beside the transaction): never a hash, and replaced before the transaction commits.
const CONTENT_PENDING: &str = "(being imported)";

/// Stores snapshot `id`'s content hash, its compressed original and its merged addresses, and
/// reads the snapshot back.
pub(super) async fn finish_snapshot(
    tx: &mut Tx<'_>,
    id: i64,
    finished: crate::store::content::Finished,
) -> Result<crate::core::model::SnapshotInfo, StoreError> {
    let crate::store::content::Finished {
        content_sha256,
        addresses,
        original,
    } = finished;
    sqlx::query(
        "UPDATE snapshots SET content_sha256 = $1, raw_blob = $2, raw_sha256 = $3 WHERE id = $4",
    )
    .bind(content_sha256)
    .bind(original.blob)
    .bind(original.sha256)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO snapshot_addresses (snapshot_id, ipv4, ipv6) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(addresses.0)
        .bind(addresses.1)
        .execute(&mut **tx)
        .await?;
    let row: SnapshotRow = sqlx::query_as(&format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.info()?.0)
}

/// Every column holding an ordinal: what moves when a date's snapshots are renumbered.
pub(super) const ORD_COLUMNS: [(&str, &str); 5] = [
    ("snapshots", "ord"),
    ("tag_versions", "from_ord"),
    ("tag_versions", "to_ord"),
    ("prefix_intervals", "from_ord"),
    ("prefix_intervals", "to_ord"),
];

/// Finds the new snapshot's ordinal and neighbours, making room among same-date snapshots
/// (ranked by change number and content hash: only then is the content hash waited for when
/// `job` makes it).
async fn place(
    tx: &mut Tx<'_>,
    cloud: i64,
    new: &NewSnapshot<'_>,
    job: &mut crate::store::content::ContentJob,
) -> Result<Position, StoreError> {
    let base = crate::store::day_ordinal(new.file_date)?;
    let same: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT ord, change_number, content_sha256 FROM snapshots \
         WHERE cloud = $1 AND ord >= $2 AND ord < $3 ORDER BY ord",
    )
    .bind(cloud)
    .bind(base)
    .bind(base + ORDS_PER_DAY)
    .fetch_all(&mut **tx)
    .await?;
    let rank = if same.is_empty() {
        0
    } else {
        let content_sha256 = match &new.content_sha256 {
            Some(known) => known.clone(),
            None => job.content_sha256().await?,
        };
        // A content stored already (found when hashed beside the transaction) is no new file:
        // the transaction ends saying so.
        let full = same.len() as i64 >= ORDS_PER_DAY - 1;
        if full && !same.iter().any(|(_, _, h)| *h == content_sha256) {
            return Err(StoreError::TooManyForDate(new.file_date));
        }
        let key = (new.snapshot.change_number, content_sha256.as_str());
        same.iter()
            .filter(|(_, cn, h)| (*cn, h.as_str()) < key)
            .count()
    };
    let at = base + rank as i64;
    if rank < same.len() {
        for (table, column) in ORD_COLUMNS {
            sqlx::query(&format!(
                "UPDATE {table} SET {column} = {column} + 1 \
                 WHERE cloud = $1 AND {column} >= $2 AND {column} < $3"
            ))
            .bind(cloud)
            .bind(at)
            .bind(base + ORDS_PER_DAY)
            .execute(&mut **tx)
            .await?;
        }
    }
    let prev: Option<i64> =
        sqlx::query_scalar("SELECT MAX(ord) FROM snapshots WHERE cloud = $1 AND ord < $2")
            .bind(cloud)
            .bind(at)
            .fetch_one(&mut **tx)
            .await?;
    let next: Option<i64> =
        sqlx::query_scalar("SELECT MIN(ord) FROM snapshots WHERE cloud = $1 AND ord > $2")
            .bind(cloud)
            .bind(at)
            .fetch_one(&mut **tx)
            .await?;
    Ok(Position { prev, at, next })
}

pub(super) async fn insert_snapshot(
    tx: &mut Tx<'_>,
    cloud: i64,
    ord: i64,
    new: &NewSnapshot<'_>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO snapshots (cloud, ord, file_date, change_number, content_sha256, tag_count, \
         prefix_count, raw_sha256, raw_size, raw_render, raw_style, raw_blob, source_name, imported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(cloud)
    .bind(ord)
    .bind(new.file_date.format("%Y-%m-%d").to_string())
    .bind(new.snapshot.change_number)
    .bind(new.content_sha256.as_deref().unwrap_or(CONTENT_PENDING))
    .bind(new.snapshot.tags.len() as i64)
    .bind(new.snapshot.prefix_count() as i64)
    .bind(String::new()) // set with the blob, once compressed
    .bind(new.raw_size)
    .bind(crate::core::canonical::RENDER_VERSION)
    .bind(new.raw_style.bits())
    .bind(Vec::<u8>::new())
    .bind(new.source_name)
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .fetch_one(&mut **tx)
    .await?)
}

/// The id of every tag of the new snapshot, creating the names the cloud has not had before;
/// the cloud's ids are read unless `known`.
async fn tag_ids(
    tx: &mut Tx<'_>,
    cloud: i64,
    new: &NewSnapshot<'_>,
    known: Option<HashMap<String, i64>>,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut ids = match known {
        Some(ids) => ids,
        None => cloud_tag_ids(tx, cloud).await?,
    };
    add_missing_tags(tx, cloud, new, &mut ids).await?;
    Ok(ids)
}

/// The id of every tag name the cloud has had.
pub(super) async fn cloud_tag_ids(
    tx: &mut Tx<'_>,
    cloud: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    // One row, `id name` lines (names never hold control characters: `parse` refuses them).
    let packed: Option<String> =
        sqlx::query_scalar("SELECT string_agg(id || ' ' || name, '\n') FROM tags WHERE cloud = $1")
            .bind(cloud)
            .fetch_one(&mut **tx)
            .await?;
    let mut ids: HashMap<String, i64> = HashMap::default();
    for line in packed.as_deref().unwrap_or("").lines() {
        let (id, name) = line
            .split_once(' ')
            .and_then(|(id, name)| Some((id.parse::<i64>().ok()?, name)))
            .ok_or_else(|| StoreError::Damaged(format!("tag row {line:?}")))?;
        ids.insert(name.to_string(), id);
    }
    Ok(ids)
}

/// Creates the new snapshot's tag names missing from `ids`, in the snapshot's order, and adds
/// their ids.
pub(super) async fn add_missing_tags(
    tx: &mut Tx<'_>,
    cloud: i64,
    new: &NewSnapshot<'_>,
    ids: &mut HashMap<String, i64>,
) -> Result<(), StoreError> {
    let missing: Vec<&str> = new
        .snapshot
        .tags
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !ids.contains_key(*n))
        .collect();
    for chunk in missing.chunks(CHUNK) {
        let mut q = QueryBuilder::<Db>::new("INSERT INTO tags (cloud, name) ");
        q.push_values(chunk, |mut b, name| {
            b.push_bind(cloud).push_bind(name.to_string());
        });
        q.push(" RETURNING id, name");
        let created: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        ids.extend(created.into_iter().map(|(id, name)| (name, id)));
    }
    Ok(())
}

/// The cloud's tag versions whose interval meets `[lo, hi]`.
pub(super) async fn touching_versions(
    tx: &mut Tx<'_>,
    cloud: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<crate::store::rows::StoredVersion>, StoreError> {
    // One row holding every touching version, packed: far fewer rows to transfer.
    let packed: Option<String> = sqlx::query_scalar(&format!(
        "SELECT string_agg(id || ',' || tag_id || ',' || from_ord || ',' || to_ord || ',' || \
         {HEX_VERSION} || ',' || {HEX_PREFIXES}, ';') \
         FROM tag_versions WHERE cloud = $1 AND to_ord >= $2 AND from_ord <= $3"
    ))
    .bind(cloud)
    .bind(lo)
    .bind(hi)
    .fetch_one(&mut **tx)
    .await?;
    packed.as_deref().map_or(Ok(Vec::new()), unpack_versions)
}

/// Writes the tag versions and returns the tags whose prefix set differs from a neighbour's.
/// The versions touching the new position are read unless `known`.
async fn write_versions(
    tx: &mut Tx<'_>,
    cloud: i64,
    pos: Position,
    new: &NewSnapshot<'_>,
    tag_ids: &HashMap<String, i64>,
    known: Option<Vec<crate::store::rows::StoredVersion>>,
) -> Result<Vec<i64>, StoreError> {
    let (lo, hi) = pos.window();
    let stored = match known {
        Some(versions) => versions,
        None => touching_versions(tx, cloud, lo, hi).await?,
    };
    // Each present tag by id; a full version key is built only for the versions inserted.
    let present: HashMap<i64, (&ServiceTag, &crate::store::TagDigests)> = new
        .snapshot
        .tags
        .iter()
        .zip(&new.digests)
        .map(|(t, digests)| (tag_ids[&t.name], (t, digests)))
        .collect();
    let (plan, changed) = match append_versions(pos, &stored, &present) {
        Some(planned) => planned,
        None => plan_versions(pos, stored, &present),
    };
    apply_plan(tx, cloud, plan, VERSIONS).await?;
    Ok(changed)
}

/// The versions of a tag present in the new snapshot, by tag id.
type Present<'n> = HashMap<i64, (&'n ServiceTag, &'n crate::store::TagDigests)>;

/// The weekly case: the new snapshot follows the newest, `pos.prev`, whose versions are all open.
/// A tag's open version goes on when its digest is unchanged; otherwise it ends at `prev` and a
/// new open version begins; the open version of a tag no longer listed ends at `prev`. This is
/// what [`plan_insert`] plans there, without its general bookkeeping (a tenth of a weekly
/// import). Also the tags whose prefix set changed. `None` when it is not that case.
fn append_versions(
    pos: Position,
    stored: &[crate::store::rows::StoredVersion],
    present: &Present<'_>,
) -> Option<(Plan<VersionKey>, Vec<i64>)> {
    let prev = pos.prev?;
    let all_open = stored
        .iter()
        .all(|v| v.from_ord <= prev && v.to_ord == crate::store::temporal::OPEN);
    if pos.next.is_some() || !all_open {
        return None;
    }
    let mut open: HashMap<i64, &crate::store::rows::StoredVersion> =
        HashMap::with_capacity_and_hasher(stored.len(), Default::default());
    for v in stored {
        if open.insert(v.tag_id, v).is_some() {
            return None; // two open versions of one tag: the general plan decides
        }
    }
    let mut plan = Plan::default();
    let mut changed = Vec::new();
    for (&id, &(tag, digests)) in present {
        let before = open.remove(&id);
        if before.map(|v| &v.prefixes_digest) != Some(&digests.prefixes) {
            changed.push(id);
        }
        if before.is_some_and(|v| v.version_digest == digests.version) {
            continue;
        }
        if let Some(v) = before {
            plan.set_to.push((v.id, prev));
        }
        let key = crate::store::version_key(id, tag, digests);
        plan.insert
            .push((key, pos.at, crate::store::temporal::OPEN));
    }
    for (id, v) in open {
        plan.set_to.push((v.id, prev));
        changed.push(id);
    }
    changed.sort_unstable();
    Some((plan, changed))
}

/// Any other position: [`plan_insert`] over the versions touching it.
fn plan_versions(
    pos: Position,
    stored: Vec<crate::store::rows::StoredVersion>,
    present: &Present<'_>,
) -> (Plan<VersionKey>, Vec<i64>) {
    let changed = crate::store::changed_prefix_sets(pos, &stored, present);
    let touching = stored
        .into_iter()
        .map(|v| Interval {
            id: v.id,
            key: (v.tag_id, v.version_digest),
            from: v.from_ord,
            to: v.to_ord,
        })
        .collect();
    let plan = plan_insert(
        pos,
        touching,
        present.iter().map(|(id, (_, d))| (*id, d.version.clone())),
    );
    let plan = Plan {
        insert: plan
            .insert
            .into_iter()
            .map(|((tag_id, _), from, to)| {
                let (tag, digests) = present[&tag_id];
                (crate::store::version_key(tag_id, tag, digests), from, to)
            })
            .collect(),
        set_to: plan.set_to,
        set_from: plan.set_from,
        delete: plan.delete,
        copy: plan.copy,
    };
    (plan, changed)
}

/// Writes the prefix intervals of the tags whose prefix set differs from a neighbour's: for every
/// other tag, the intervals already span the new snapshot or end before it, as they should.
async fn write_prefixes(
    tx: &mut Tx<'_>,
    cloud: i64,
    pos: Position,
    new: &NewSnapshot<'_>,
    tag_ids: &HashMap<String, i64>,
    changed: Vec<i64>,
) -> Result<(), StoreError> {
    if pos.next.is_none() {
        return append_prefixes(tx, cloud, pos, new, tag_ids, changed).await;
    }
    let (lo, hi) = pos.window();
    let mut touching = Vec::new();
    for chunk in changed.chunks(CHUNK) {
        // One row per tag with its intervals packed into text: far fewer rows to transfer.
        let mut q = QueryBuilder::<Db>::new(format!(
            "SELECT tag_id, string_agg(id || ',' || from_ord || ',' || to_ord || ',' || {HEX_PREFIX}, ';') \
             FROM prefix_intervals WHERE to_ord >= "
        ));
        q.push_bind(lo)
            .push(" AND from_ord <= ")
            .push_bind(hi)
            .push(" AND tag_id IN (");
        push_ids(&mut q, chunk);
        q.push(") GROUP BY tag_id");
        let rows: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        for (tag_id, packed) in rows {
            for r in unpack_intervals(tag_id, &packed)? {
                touching.push(Interval {
                    id: r.id,
                    key: (r.tag_id, r.prefix),
                    from: r.from_ord,
                    to: r.to_ord,
                });
            }
        }
    }
    let changed: HashSet<i64> = changed.into_iter().collect();
    let present = new.snapshot.tags.iter().flat_map(|t| {
        let id = tag_ids[&t.name];
        let prefixes = if changed.contains(&id) {
            t.prefixes.as_slice()
        } else {
            &[]
        };
        prefixes.iter().map(move |p| (id, *p))
    });
    let plan = plan_insert(pos, touching, present);
    apply_plan(tx, cloud, plan, PREFIXES).await
}

/// The weekly case: the new snapshot is the newest. The open intervals are then exactly the
/// previous newest snapshot's pairs, kept per tag in `head_prefixes`, so the change is a set
/// difference: removed pairs have their open interval closed at `prev`, added pairs get a new
/// open interval. This is what `plan_insert` would plan, without reading any interval.
async fn append_prefixes(
    tx: &mut Tx<'_>,
    cloud: i64,
    pos: Position,
    new: &NewSnapshot<'_>,
    tag_ids: &HashMap<String, i64>,
    changed: Vec<i64>,
) -> Result<(), StoreError> {
    let mut heads: HashMap<i64, Vec<IpNet>> = HashMap::default();
    for chunk in changed.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<Db>::new("SELECT tag_id, prefixes FROM head_prefixes WHERE tag_id IN (");
        push_ids(&mut q, chunk);
        q.push(")");
        let rows: Vec<(i64, Vec<u8>)> = q.build_query_as().fetch_all(&mut **tx).await?;
        for (tag_id, packed) in rows {
            let list = head::unpack(&packed)
                .ok_or_else(|| StoreError::Damaged(format!("head prefixes of tag {tag_id}")))?;
            heads.insert(tag_id, list);
        }
    }
    let now: HashMap<i64, &[IpNet]> = new
        .snapshot
        .tags
        .iter()
        .map(|t| (tag_ids[&t.name], t.prefixes.as_slice()))
        .collect();
    let mut plan = Plan::default();
    let mut closed: Vec<(i64, IpNet)> = Vec::new();
    for id in &changed {
        let before = heads.remove(id).unwrap_or_default();
        let after = now.get(id).copied().unwrap_or(&[]);
        let (removed, added) = head::difference(&before, after);
        closed.extend(removed.into_iter().map(|p| (*id, p)));
        plan.insert.extend(
            added
                .into_iter()
                .map(|p| ((*id, p), pos.at, crate::store::temporal::OPEN)),
        );
    }
    if !closed.is_empty() {
        let prev = pos
            .prev
            .ok_or_else(|| StoreError::Damaged("head prefixes without a snapshot".into()))?;
        close_open_intervals(tx, prev, &closed).await?;
    }
    apply_plan(tx, cloud, plan, PREFIXES).await?;
    // Rewrite the head rows of the changed tags: upsert the present ones, drop the vanished.
    let gone: Vec<i64> = changed
        .iter()
        .copied()
        .filter(|id| !now.contains_key(id))
        .collect();
    let rows: Vec<(i64, &[IpNet])> = changed
        .iter()
        .filter_map(|id| now.get(id).map(|p| (*id, *p)))
        .collect();
    write_heads(tx, cloud, &gone, &rows).await
}

/// Rewrites `head_prefixes`: the tags `gone` lose their row, each of `rows` gets its prefixes.
pub(super) async fn write_heads(
    tx: &mut Tx<'_>,
    cloud: i64,
    gone: &[i64],
    rows: &[(i64, &[IpNet])],
) -> Result<(), StoreError> {
    for chunk in gone.chunks(CHUNK) {
        let mut q = QueryBuilder::<Db>::new("DELETE FROM head_prefixes WHERE tag_id IN (");
        push_ids(&mut q, chunk);
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    for chunk in rows.chunks(CHUNK) {
        let mut q = QueryBuilder::<Db>::new("INSERT INTO head_prefixes (tag_id, cloud, prefixes) ");
        q.push_values(chunk, |mut b, (id, prefixes)| {
            b.push_bind(*id)
                .push_bind(cloud)
                .push_bind(head::pack(prefixes));
        });
        q.push(" ON CONFLICT (tag_id) DO UPDATE SET prefixes = excluded.prefixes");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Ends the open intervals of these (tag, prefix) pairs at `prev`, in as few statements as the
/// parameter limits allow: `(tag_id = … AND prefix IN (…)) OR …`, each term an index lookup.
pub(super) async fn close_open_intervals(
    tx: &mut Tx<'_>,
    prev: i64,
    pairs: &[(i64, IpNet)],
) -> Result<(), StoreError> {
    for chunk in pairs.chunks(CHUNK) {
        let mut q = QueryBuilder::<Db>::new("UPDATE prefix_intervals SET to_ord = ");
        q.push_bind(prev)
            .push(" WHERE to_ord = ")
            .push_bind(crate::store::temporal::OPEN)
            .push(" AND (");
        for (i, group) in chunk.chunk_by(|a, b| a.0 == b.0).enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push("(tag_id = ")
                .push_bind(group[0].0)
                .push(" AND prefix IN (");
            let mut list = q.separated(", ");
            for (_, p) in group {
                list.push_bind(crate::core::model::encode_prefix(p));
            }
            q.push("))");
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn push_ids(q: &mut QueryBuilder<'_, Db>, ids: &[i64]) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
}

/// How to write one kind of interval row.
pub(super) struct Table<K> {
    name: &'static str,
    columns: &'static str,
    bind: for<'qb> fn(&mut Separated<'qb, 'static, Db, &'static str>, K),
}

pub(super) const VERSIONS: Table<VersionKey> = Table {
    name: "tag_versions",
    columns: "tag_id, json_id, change_number, region, region_id, platform, system_service, \
              network_features, ipv4_prefixes, ipv6_prefixes, prefixes_digest, version_digest",
    bind: |b, k| {
        b.push_bind(k.tag_id)
            .push_bind(k.json_id)
            .push_bind(k.change_number)
            .push_bind(k.region)
            .push_bind(k.region_id)
            .push_bind(k.platform)
            .push_bind(k.system_service)
            .push_bind(k.network_features)
            .push_bind(k.ipv4_prefixes)
            .push_bind(k.ipv6_prefixes)
            .push_bind(k.prefixes_digest)
            .push_bind(k.version_digest);
    },
};

pub(super) const PREFIXES: Table<(i64, IpNet)> = Table {
    name: "prefix_intervals",
    columns: "tag_id, prefix",
    bind: |b, (tag_id, prefix)| {
        b.push_bind(tag_id)
            .push_bind(crate::core::model::encode_prefix(&prefix));
    },
};

pub(super) async fn apply_plan<K>(
    tx: &mut Tx<'_>,
    cloud: i64,
    plan: Plan<K>,
    table: Table<K>,
) -> Result<(), StoreError> {
    let name = table.name;
    for (column, moves) in [("to_ord", plan.set_to), ("from_ord", plan.set_from)] {
        // One statement per new value: an append closes all its intervals at one ordinal.
        let mut by_value: HashMap<i64, Vec<i64>> = HashMap::default();
        for (id, value) in moves {
            by_value.entry(value).or_default().push(id);
        }
        for (value, ids) in by_value {
            for chunk in ids.chunks(CHUNK) {
                let mut q = QueryBuilder::<Db>::new(format!("UPDATE {name} SET {column} = "));
                q.push_bind(value).push(" WHERE id IN (");
                push_ids(&mut q, chunk);
                q.push(")");
                q.build().execute(&mut **tx).await?;
            }
        }
    }
    for (source, from, to) in plan.copy {
        let columns = table.columns;
        sqlx::query(&format!(
            "INSERT INTO {name} (cloud, from_ord, to_ord, {columns}) \
             SELECT cloud, $1, $2, {columns} FROM {name} WHERE id = $3"
        ))
        .bind(from)
        .bind(to)
        .bind(source)
        .execute(&mut **tx)
        .await?;
    }
    for chunk in plan.delete.chunks(CHUNK) {
        let mut q = QueryBuilder::<Db>::new(format!("DELETE FROM {name} WHERE id IN ("));
        push_ids(&mut q, chunk);
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    let mut rows = plan.insert.into_iter().peekable();
    while rows.peek().is_some() {
        let mut q = QueryBuilder::<Db>::new(format!(
            "INSERT INTO {name} (cloud, from_ord, to_ord, {}) ",
            table.columns
        ));
        q.push_values(rows.by_ref().take(CHUNK), |mut b, (key, from, to)| {
            b.push_bind(cloud).push_bind(from).push_bind(to);
            (table.bind)(&mut b, key);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
