//! Deleting one snapshot, written once for both backends (a module of both backends like `ops.rs`).
//!
//! The intervals are a function of the set of snapshots (ARCHITECTURE.md), so deleting the
//! snapshot at ordinal `at` between neighbours `prev` and `next` must leave exactly the rows an
//! import of the other snapshots gives:
//! 1. a fact held only at `at` disappears;
//! 2. an interval starting at `at` starts at `next`; one ending at `at` ends at `prev`;
//! 3. when `at` was the newest, facts that ended at `prev` reach the newest again (`OPEN`), and
//!    `head_prefixes` is rebuilt from the open intervals;
//! 4. a fact absent only at `at` ([a, prev] and [next, b]) becomes one interval [a, b];
//! 5. later snapshots of the same date move down one ordinal (undoing `place`);
//! 6. the snapshot's own rows go, and tag names no version refers to any more.

use ipnet::IpNet;
use sqlx::Pool;

use super::ops::{write_tx, Decision, Tx, ORD_COLUMNS};
use super::Db;
use crate::store::{head, StoreError, ORDS_PER_DAY};

/// The tables of facts over runs of snapshots, with the column that, beside `tag_id`, names a
/// fact.
const FACT_TABLES: [(&str, &str); 2] = [
    ("tag_versions", "version_digest"),
    ("prefix_intervals", "prefix"),
];

/// Deletes snapshot `id` in one transaction; `false` when there is no such snapshot.
pub(in crate::store) async fn delete_snapshot(
    pool: &Pool<Db>,
    id: i64,
) -> Result<bool, StoreError> {
    write_tx!(pool, |tx| delete_in(tx, id))
}

async fn delete_in(tx: &mut Tx<'_>, id: i64) -> Result<Decision<bool>, StoreError> {
    sqlx::query("UPDATE import_lock SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    let Some((cloud, at)): Option<(i64, i64)> =
        sqlx::query_as("SELECT cloud, ord FROM snapshots WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Ok(Decision::RollBack(false));
    };
    let neighbour = |sql: &'static str| {
        sqlx::query_scalar::<_, Option<i64>>(sql)
            .bind(cloud)
            .bind(at)
    };
    let prev = neighbour("SELECT MAX(ord) FROM snapshots WHERE cloud = $1 AND ord < $2")
        .fetch_one(&mut **tx)
        .await?;
    let next = neighbour("SELECT MIN(ord) FROM snapshots WHERE cloud = $1 AND ord > $2")
        .fetch_one(&mut **tx)
        .await?;
    for (table, key) in FACT_TABLES {
        cut_out(tx, table, key, cloud, at, prev, next).await?;
    }
    for sql in [
        "DELETE FROM fetch_validators WHERE snapshot_id = $1",
        "DELETE FROM reports WHERE snapshot_id = $1 OR before_id = $1",
        "DELETE FROM snapshot_addresses WHERE snapshot_id = $1",
        "DELETE FROM snapshots WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    }
    renumber_same_date(tx, cloud, at).await?;
    sqlx::query(
        "DELETE FROM head_prefixes WHERE cloud = $1 AND tag_id NOT IN \
         (SELECT tag_id FROM tag_versions WHERE cloud = $1)",
    )
    .bind(cloud)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM tags WHERE cloud = $1 AND id NOT IN \
         (SELECT tag_id FROM tag_versions WHERE cloud = $1)",
    )
    .bind(cloud)
    .execute(&mut **tx)
    .await?;
    if next.is_none() {
        rebuild_head(tx, cloud).await?;
    }
    Ok(Decision::Commit(true))
}

/// Steps 1-4 for one table.
async fn cut_out(
    tx: &mut Tx<'_>,
    table: &str,
    key: &str,
    cloud: i64,
    at: i64,
    prev: Option<i64>,
    next: Option<i64>,
) -> Result<(), StoreError> {
    let open = crate::store::temporal::OPEN;
    // 1. Held only at `at` (an open interval from `at` is only `at` when it is the newest).
    let only_at = if next.is_none() {
        "from_ord = $2 AND (to_ord = $2 OR to_ord = $3)"
    } else {
        "from_ord = $2 AND to_ord = $2"
    };
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE cloud = $1 AND {only_at}"
    ))
    .bind(cloud)
    .bind(at)
    .bind(open)
    .execute(&mut **tx)
    .await?;
    // 2. The ends that stood on `at`.
    if let Some(next) = next {
        move_ends(tx, table, "from_ord", cloud, at, next).await?;
    }
    if let Some(prev) = prev {
        move_ends(tx, table, "to_ord", cloud, at, prev).await?;
    }
    match (prev, next) {
        // 3. `prev` is the newest now.
        (Some(prev), None) => move_ends(tx, table, "to_ord", cloud, prev, open).await?,
        // 4. Join the two halves of a fact that was absent only at `at`: the half ending at
        //    `prev` takes the end of the half starting at `next`, which then goes.
        (Some(prev), Some(next)) => {
            let second = format!(
                "SELECT o.to_ord FROM {table} o WHERE o.cloud = $1 AND o.from_ord = $3 \
                 AND o.tag_id = t.tag_id AND o.{key} = t.{key}"
            );
            sqlx::query(&format!(
                "UPDATE {table} AS t SET to_ord = ({second}) \
                 WHERE t.cloud = $1 AND t.to_ord = $2 AND EXISTS ({second})"
            ))
            .bind(cloud)
            .bind(prev)
            .bind(next)
            .execute(&mut **tx)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM {table} AS t WHERE t.cloud = $1 AND t.from_ord = $2 AND EXISTS \
                 (SELECT 1 FROM {table} o WHERE o.cloud = $1 AND o.from_ord < $2 \
                   AND o.to_ord = t.to_ord AND o.tag_id = t.tag_id AND o.{key} = t.{key})"
            ))
            .bind(cloud)
            .bind(next)
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Sets `column` (an interval end) from `from` to `to` for every fact of the cloud.
async fn move_ends(
    tx: &mut Tx<'_>,
    table: &str,
    column: &str,
    cloud: i64,
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE {table} SET {column} = $3 WHERE cloud = $1 AND {column} = $2"
    ))
    .bind(cloud)
    .bind(from)
    .bind(to)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Step 5: the snapshots after `at` on its date move down one ordinal, with their intervals.
async fn renumber_same_date(tx: &mut Tx<'_>, cloud: i64, at: i64) -> Result<(), StoreError> {
    let day_end = at - at.rem_euclid(ORDS_PER_DAY) + ORDS_PER_DAY;
    for (table, column) in ORD_COLUMNS {
        sqlx::query(&format!(
            "UPDATE {table} SET {column} = {column} - 1 \
             WHERE cloud = $1 AND {column} > $2 AND {column} < $3"
        ))
        .bind(cloud)
        .bind(at)
        .bind(day_end)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// `head_prefixes` of the cloud from its open intervals (the newest snapshot's prefixes).
async fn rebuild_head(tx: &mut Tx<'_>, cloud: i64) -> Result<(), StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT tag_id, prefix FROM prefix_intervals WHERE cloud = $1 AND to_ord = $2",
    )
    .bind(cloud)
    .bind(crate::store::temporal::OPEN)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_tag: std::collections::BTreeMap<i64, Vec<IpNet>> = Default::default();
    for (tag, bytes) in rows {
        let prefix = crate::core::model::decode_prefix(&bytes).ok_or_else(|| {
            StoreError::Damaged(format!("prefix of tag id {tag} is not readable"))
        })?;
        by_tag.entry(tag).or_default().push(prefix);
    }
    // Tags of the newest snapshot with no prefix have an open version but no open interval.
    let open_tags: Vec<i64> =
        sqlx::query_scalar("SELECT tag_id FROM tag_versions WHERE cloud = $1 AND to_ord = $2")
            .bind(cloud)
            .bind(crate::store::temporal::OPEN)
            .fetch_all(&mut **tx)
            .await?;
    for tag in open_tags {
        by_tag.entry(tag).or_default();
    }
    sqlx::query("DELETE FROM head_prefixes WHERE cloud = $1")
        .bind(cloud)
        .execute(&mut **tx)
        .await?;
    for (tag, mut prefixes) in by_tag {
        prefixes.sort_unstable();
        sqlx::query("INSERT INTO head_prefixes (tag_id, cloud, prefixes) VALUES ($1, $2, $3)")
            .bind(tag)
            .bind(cloud)
            .bind(head::pack(&prefixes))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
