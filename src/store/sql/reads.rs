//! The store's read queries, written once for both backends: a module of `mod sqlite` and
//! `mod postgres` like `ops.rs`, whose rules apply here too.

use ipnet::IpNet;
use sqlx::Pool;

use super::{Db, HEX_PREFIX};
use crate::core::history::VersionSpan;
use crate::core::model::Cloud;
use crate::store::rows::{
    unpack_tag_prefixes, SnapshotRow, VersionRow, SNAPSHOT_COLUMNS, VERSION_COLUMNS,
};
use crate::store::{SnapRef, StoreError};

/// Every snapshot, of one cloud or all, in history order.
pub(in crate::store) async fn snapshots(
    pool: &Pool<Db>,
    cloud: Option<Cloud>,
) -> Result<Vec<SnapshotRow>, StoreError> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE ($1 = 0 OR cloud = $1) ORDER BY cloud, ord"
    );
    Ok(sqlx::query_as(&sql)
        .bind(cloud.map_or(0, Cloud::code))
        .fetch_all(pool)
        .await?)
}

/// The snapshot a [`SnapRef`] names.
pub(in crate::store) async fn resolve(
    pool: &Pool<Db>,
    cloud: Cloud,
    at: &SnapRef,
) -> Result<Option<SnapshotRow>, StoreError> {
    let select = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots");
    let row = match at {
        SnapRef::Latest(back) => {
            sqlx::query_as(&format!(
                "{select} WHERE cloud = $1 ORDER BY ord DESC LIMIT 1 OFFSET $2"
            ))
            .bind(cloud.code())
            .bind(i64::from(*back))
            .fetch_optional(pool)
            .await?
        }
        SnapRef::OnOrBefore(date) => {
            sqlx::query_as(&format!(
                "{select} WHERE cloud = $1 AND file_date <= $2 ORDER BY ord DESC LIMIT 1"
            ))
            .bind(cloud.code())
            .bind(date.format("%Y-%m-%d").to_string())
            .fetch_optional(pool)
            .await?
        }
        SnapRef::Id(id) => {
            sqlx::query_as(&format!("{select} WHERE id = $1"))
                .bind(*id)
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(row)
}

/// The tag versions that hold at ordinal `ord`.
pub(in crate::store) async fn versions_at(
    pool: &Pool<Db>,
    cloud: Cloud,
    ord: i64,
) -> Result<Vec<VersionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM tag_versions v JOIN tags t ON t.id = v.tag_id \
         WHERE v.cloud = $1 AND v.to_ord >= $2 AND v.from_ord <= $2"
    ))
    .bind(cloud.code())
    .bind(ord)
    .fetch_all(pool)
    .await?)
}

/// The (tag id, encoded prefix) pairs that hold at ordinal `ord`, packed per tag.
pub(in crate::store) async fn prefixes_at(
    pool: &Pool<Db>,
    cloud: Cloud,
    ord: i64,
) -> Result<Vec<(i64, IpNet)>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT tag_id, string_agg({HEX_PREFIX}, ',') FROM prefix_intervals \
         WHERE cloud = $1 AND to_ord >= $2 AND from_ord <= $2 GROUP BY tag_id"
    ))
    .bind(cloud.code())
    .bind(ord)
    .fetch_all(pool)
    .await?;
    unpack_tag_prefixes(rows)
}

/// The stored original: (compressed bytes, rendering version, style bits).
pub(in crate::store) async fn raw_blob(
    pool: &Pool<Db>,
    id: i64,
) -> Result<(Vec<u8>, i64, i64), StoreError> {
    Ok(
        sqlx::query_as("SELECT raw_blob, raw_render, raw_style FROM snapshots WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// The newest snapshot's ordinal, if the cloud has any.
pub(in crate::store) async fn newest_ord(
    pool: &Pool<Db>,
    cloud: Cloud,
) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT MAX(ord) FROM snapshots WHERE cloud = $1")
            .bind(cloud.code())
            .fetch_one(pool)
            .await?,
    )
}

/// The newest snapshot's prefixes, packed per tag (see `head_prefixes` in the migrations).
pub(in crate::store) async fn head_prefixes(
    pool: &Pool<Db>,
    cloud: Cloud,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT tag_id, prefixes FROM head_prefixes WHERE cloud = $1")
            .bind(cloud.code())
            .fetch_all(pool)
            .await?,
    )
}

/// A tag's id in a cloud, if the cloud ever had it.
pub(in crate::store) async fn tag_id(
    pool: &Pool<Db>,
    cloud: Cloud,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tags WHERE cloud = $1 AND name = $2")
            .bind(cloud.code())
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

/// Every prefix interval of a tag, packed as `from,to,hexprefix;…` (`None` if it has none).
pub(in crate::store) async fn tag_prefix_spans(
    pool: &Pool<Db>,
    tag_id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT string_agg(from_ord || ',' || to_ord || ',' || {HEX_PREFIX}, ';') FROM prefix_intervals WHERE tag_id = $1"
    ))
    .bind(tag_id)
    .fetch_one(pool)
    .await?)
}

/// Every version interval of a tag with its prefix counts.
pub(in crate::store) async fn tag_version_spans(
    pool: &Pool<Db>,
    tag_id: i64,
) -> Result<Vec<VersionSpan>, StoreError> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT from_ord, to_ord, ipv4_prefixes, ipv6_prefixes FROM tag_versions WHERE tag_id = $1",
    )
    .bind(tag_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(from, to, ipv4_prefixes, ipv6_prefixes)| VersionSpan {
            from,
            to,
            ipv4_prefixes,
            ipv6_prefixes,
        })
        .collect())
}

/// Every interval, in any snapshot of `cloud`, of a prefix equal to one of `exact` or (when
/// `within` is given) whose encoding lies in `within` (first, last): (tag name, encoded prefix,
/// from, to).
pub(in crate::store) async fn prefix_hits(
    pool: &Pool<Db>,
    cloud: Cloud,
    exact: &[Vec<u8>],
    within: Option<(&[u8], &[u8])>,
) -> Result<Vec<(String, Vec<u8>, i64, i64)>, StoreError> {
    let list: Vec<String> = (0..exact.len()).map(|i| format!("${}", i + 2)).collect();
    let n = exact.len();
    let range = if within.is_some() {
        format!(" OR (i.prefix >= ${} AND i.prefix <= ${})", n + 2, n + 3)
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT t.name, i.prefix, i.from_ord, i.to_ord FROM prefix_intervals i \
         JOIN tags t ON t.id = i.tag_id \
         WHERE i.cloud = $1 AND (i.prefix IN ({}){range})",
        list.join(",")
    );
    let mut query = sqlx::query_as(&sql).bind(cloud.code());
    for p in exact {
        query = query.bind(p.as_slice());
    }
    if let Some((lo, hi)) = within {
        query = query.bind(lo).bind(hi);
    }
    Ok(query.fetch_all(pool).await?)
}

/// The versions of the named tags that hold at ordinal `ord`.
pub(in crate::store) async fn versions_of(
    pool: &Pool<Db>,
    cloud: Cloud,
    ord: i64,
    names: &[String],
) -> Result<Vec<VersionRow>, StoreError> {
    let list: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM tag_versions v JOIN tags t ON t.id = v.tag_id \
         WHERE v.cloud = $1 AND v.to_ord >= $2 AND v.from_ord <= $2 AND t.name IN ({})",
        list.join(",")
    );
    let mut query = sqlx::query_as(&sql).bind(cloud.code()).bind(ord);
    for n in names {
        query = query.bind(n.as_str());
    }
    Ok(query.fetch_all(pool).await?)
}

/// The condition "valid at `$2` but not at `$3`" on an interval table (alias `t`), for `x` and
/// `y` the values bound to `$2` and `$3`: index-friendly in both directions.
fn only_at(alias: &str, x: i64, y: i64) -> String {
    if x < y {
        format!("{alias}.to_ord >= $2 AND {alias}.to_ord < $3 AND {alias}.from_ord <= $2")
    } else {
        format!("{alias}.from_ord > $3 AND {alias}.from_ord <= $2 AND {alias}.to_ord >= $2")
    }
}

/// The tag versions that hold at ordinal `x` but not at `y`.
pub(in crate::store) async fn versions_only_at(
    pool: &Pool<Db>,
    cloud: Cloud,
    x: i64,
    y: i64,
) -> Result<Vec<VersionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM tag_versions v JOIN tags t ON t.id = v.tag_id \
         WHERE v.cloud = $1 AND {}",
        only_at("v", x, y)
    ))
    .bind(cloud.code())
    .bind(x)
    .bind(y)
    .fetch_all(pool)
    .await?)
}

/// The (tag id, prefix) pairs that hold at ordinal `x` but not at `y`, read packed per tag.
pub(in crate::store) async fn prefixes_only_at(
    pool: &Pool<Db>,
    cloud: Cloud,
    x: i64,
    y: i64,
) -> Result<Vec<(i64, IpNet)>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT i.tag_id, string_agg({HEX_PREFIX}, ',') FROM prefix_intervals i \
         WHERE i.cloud = $1 AND {} GROUP BY i.tag_id",
        only_at("i", x, y)
    ))
    .bind(cloud.code())
    .bind(x)
    .bind(y)
    .fetch_all(pool)
    .await?;
    unpack_tag_prefixes(rows)
}

/// A snapshot's addresses as stored at import: (IPv4 ranges, IPv6 ranges), if recorded.
pub(in crate::store) async fn snapshot_addresses(
    pool: &Pool<Db>,
    id: i64,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT ipv4, ipv6 FROM snapshot_addresses WHERE snapshot_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}
