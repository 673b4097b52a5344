//! Conditional-download validators (`tagwall fetch`), written once for both backends: a module of
//! `mod sqlite` and `mod postgres` like `ops.rs`, whose rules apply here too.

use sqlx::Pool;

use super::Db;
use crate::store::StoreError;

/// The validators stored for `url`, if its bytes were imported before.
pub(in crate::store) async fn validators(
    pool: &Pool<Db>,
    url: &str,
) -> Result<Option<crate::store::Validators>, StoreError> {
    let row: Option<(Option<String>, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT etag, last_modified, sha256, snapshot_id FROM fetch_validators WHERE url = $1",
    )
    .bind(url)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(etag, last_modified, sha256, snapshot_id)| crate::store::Validators {
            etag,
            last_modified,
            sha256,
            snapshot_id,
        },
    ))
}

/// Records (or replaces) the validators of `url`.
pub(in crate::store) async fn save_validators(
    pool: &Pool<Db>,
    url: &str,
    v: &crate::store::Validators,
    fetched_at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fetch_validators (url, etag, last_modified, sha256, snapshot_id, fetched_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
             last_modified = excluded.last_modified, sha256 = excluded.sha256,
             snapshot_id = excluded.snapshot_id, fetched_at = excluded.fetched_at",
    )
    .bind(url)
    .bind(v.etag.as_deref())
    .bind(v.last_modified.as_deref())
    .bind(&v.sha256)
    .bind(v.snapshot_id)
    .bind(fetched_at)
    .execute(pool)
    .await?;
    Ok(())
}
