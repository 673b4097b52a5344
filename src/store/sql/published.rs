//! What the store keeps of published state (migrations 0005 and 0006), written once for both
//! backends: a module of `mod sqlite` and `mod postgres` like `ops.rs`, whose rules apply here too.

use sqlx::Pool;

use super::ops::{write_tx, Decision, Tx};
use super::Db;
use crate::core::model::Cloud;
use crate::store::StoreError;

/// The reports written for `cloud`'s snapshots: (snapshot id, the id it was compared with).
pub(in crate::store) async fn report_marks(
    pool: &Pool<Db>,
    cloud: Cloud,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT r.snapshot_id, r.before_id FROM reports r \
         JOIN snapshots s ON s.id = r.snapshot_id WHERE s.cloud = $1",
    )
    .bind(cloud.code())
    .fetch_all(pool)
    .await?)
}

/// Records that the report of `snapshot_id` (compared with `before_id`) is written.
pub(in crate::store) async fn mark_report(
    pool: &Pool<Db>,
    snapshot_id: i64,
    before_id: i64,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO reports (snapshot_id, before_id, written_at) VALUES ($1, $2, $3)
         ON CONFLICT (snapshot_id) DO UPDATE SET before_id = excluded.before_id,
             written_at = excluded.written_at",
    )
    .bind(snapshot_id)
    .bind(before_id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records one approval.
pub(in crate::store) async fn record_approval(
    pool: &Pool<Db>,
    a: &crate::store::Approval,
) -> Result<(), StoreError> {
    let reasons = serde_json::to_string(&a.reasons)
        .map_err(|e| StoreError::Damaged(format!("approval reasons: {e}")))?;
    sqlx::query(
        "INSERT INTO approvals (ruleset, snapshot, snapshot_id, approved_by, comment, reasons, \
         approved_at, decision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.ruleset)
    .bind(&a.snapshot)
    .bind(a.snapshot_id)
    .bind(&a.approved_by)
    .bind(&a.comment)
    .bind(reasons)
    .bind(&a.approved_at)
    .bind(a.decision.name())
    .execute(pool)
    .await?;
    Ok(())
}

/// A row of `approvals`.
#[derive(sqlx::FromRow)]
struct ApprovalRow {
    ruleset: String,
    snapshot: String,
    snapshot_id: i64,
    approved_by: String,
    comment: String,
    reasons: String,
    approved_at: String,
    decision: String,
}

/// Every approval and rejection, oldest first.
pub(in crate::store) async fn approvals(
    pool: &Pool<Db>,
) -> Result<Vec<crate::store::Approval>, StoreError> {
    let rows: Vec<ApprovalRow> = sqlx::query_as(
        "SELECT ruleset, snapshot, snapshot_id, approved_by, comment, reasons, approved_at, \
         decision FROM approvals ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(
            |ApprovalRow {
                 ruleset,
                 snapshot,
                 snapshot_id,
                 approved_by,
                 comment,
                 reasons,
                 approved_at,
                 decision,
             }| {
                let reasons = serde_json::from_str(&reasons).map_err(|e| {
                    StoreError::Damaged(format!("approval of {ruleset}: reasons: {e}"))
                })?;
                let decision = crate::store::Decision::parse(&decision).ok_or_else(|| {
                    StoreError::Damaged(format!("approval of {ruleset}: decision {decision:?}"))
                })?;
                Ok(crate::store::Approval {
                    decision,
                    ruleset,
                    snapshot,
                    snapshot_id,
                    approved_by,
                    comment,
                    reasons,
                    approved_at,
                })
            },
        )
        .collect()
}

/// Records a publish of `ruleset` (its files, `manifest.json` included, in order) in one
/// transaction, unless the newest recorded one has the same manifest; keeps the newest
/// [`crate::store::PUBLISHES_KEPT`]. True when it was recorded.
pub(in crate::store) async fn record_publish(
    pool: &Pool<Db>,
    p: &crate::store::NewPublish<'_>,
    at: &str,
) -> Result<bool, StoreError> {
    write_tx!(pool, |tx| record_publish_in(tx, p, at))
}

async fn record_publish_in(
    tx: &mut Tx<'_>,
    p: &crate::store::NewPublish<'_>,
    at: &str,
) -> Result<Decision<bool>, StoreError> {
    let newest: Option<String> = sqlx::query_scalar(
        "SELECT manifest_sha256 FROM publishes WHERE ruleset = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(p.ruleset)
    .fetch_optional(&mut **tx)
    .await?;
    if newest.as_deref() == Some(p.manifest_sha256) {
        return Ok(Decision::RollBack(false));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO publishes (ruleset, manifest_sha256, published_at) VALUES ($1, $2, $3) \
         RETURNING id",
    )
    .bind(p.ruleset)
    .bind(p.manifest_sha256)
    .bind(at)
    .fetch_one(&mut **tx)
    .await?;
    for (position, (name, body)) in p.files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO publish_files (publish_id, position, name, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(position as i32)
        .bind(name)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    }
    // The oldest kept: the newest `PUBLISHES_KEPT`th; older ones go.
    let cutoff: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM publishes WHERE ruleset = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
    )
    .bind(p.ruleset)
    .bind(crate::store::PUBLISHES_KEPT - 1)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(cutoff) = cutoff {
        for sql in [
            "DELETE FROM publish_files WHERE publish_id IN \
             (SELECT id FROM publishes WHERE ruleset = $1 AND id < $2)",
            "DELETE FROM publishes WHERE ruleset = $1 AND id < $2",
        ] {
            sqlx::query(sql)
                .bind(p.ruleset)
                .bind(cutoff)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(Decision::Commit(true))
}

/// Every kept publish: (ruleset, id, published at), by ruleset, the newest first.
pub(in crate::store) async fn kept_publishes(
    pool: &Pool<Db>,
) -> Result<Vec<(String, i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT ruleset, id, published_at FROM publishes ORDER BY ruleset, id DESC")
            .fetch_all(pool)
            .await?,
    )
}

/// The files of publish `id`, in order: (name, bytes).
pub(in crate::store) async fn publish_files(
    pool: &Pool<Db>,
    id: i64,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT name, body FROM publish_files WHERE publish_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}
