// What the store keeps of published state (migration 0005), written once for both backends:
// included in `mod sqlite` and `mod postgres` after `ops.rs`, whose imports and `type Db` apply
// here too.

/// The reports written for `cloud`'s snapshots: (snapshot id, the id it was compared with).
pub(super) async fn report_marks(
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
pub(super) async fn mark_report(
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
pub(super) async fn record_approval(
    pool: &Pool<Db>,
    a: &super::Approval,
) -> Result<(), StoreError> {
    let reasons = serde_json::to_string(&a.reasons)
        .map_err(|e| StoreError::Damaged(format!("approval reasons: {e}")))?;
    sqlx::query(
        "INSERT INTO approvals (ruleset, snapshot, snapshot_id, approved_by, comment, reasons, \
         approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.ruleset)
    .bind(&a.snapshot)
    .bind(a.snapshot_id)
    .bind(&a.approved_by)
    .bind(&a.comment)
    .bind(reasons)
    .bind(&a.approved_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every approval, oldest first.
pub(super) async fn approvals(pool: &Pool<Db>) -> Result<Vec<super::Approval>, StoreError> {
    let rows: Vec<(String, String, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT ruleset, snapshot, snapshot_id, approved_by, comment, reasons, approved_at \
         FROM approvals ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(
            |(ruleset, snapshot, snapshot_id, approved_by, comment, reasons, approved_at)| {
                let reasons = serde_json::from_str(&reasons).map_err(|e| {
                    StoreError::Damaged(format!("approval of {ruleset}: reasons: {e}"))
                })?;
                Ok(super::Approval {
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
