//! The snapshots a grace period looks back on (`keep_removed_days`).

use chrono::{Days, NaiveDate};

use super::{Store, StoreError};
use crate::core::model::{Snapshot, SnapshotInfo};
use crate::rules::grace::Retained;
use crate::rules::ruleset::Ruleset;

/// A snapshot before the one being built, with the date of the snapshot that followed it.
#[derive(Debug)]
pub struct Earlier {
    /// The earlier snapshot's record.
    pub info: SnapshotInfo,
    /// Its content.
    pub snapshot: Snapshot,
    /// The file date of the snapshot right after it (the first one a prefix it held last was
    /// missing from).
    pub next_date: NaiveDate,
}

impl Store {
    /// The snapshots of `info`'s cloud before `info` whose successor is dated less than `days`
    /// days before `info`, oldest first: every snapshot whose prefixes a grace period of `days`
    /// still keeps at `info`. Empty when `days` is 0. `info` need not be stored (a dry run's
    /// candidate): it is then placed after every snapshot of its date or earlier.
    pub async fn earlier_within(
        &self,
        info: &SnapshotInfo,
        days: u32,
    ) -> Result<Vec<Earlier>, StoreError> {
        if days == 0 {
            return Ok(Vec::new());
        }
        let all = self.snapshots(Some(info.cloud)).await?;
        let before: Vec<SnapshotInfo> = match all.iter().position(|s| s.id == info.id) {
            Some(i) => all[..i].to_vec(),
            None => all
                .into_iter()
                .filter(|s| {
                    s.file_date <= info.file_date && s.content_sha256 != info.content_sha256
                })
                .collect(),
        };
        let oldest_kept = info
            .file_date
            .checked_sub_days(Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MIN);
        let mut out = Vec::new();
        for (i, s) in before.iter().enumerate() {
            let next_date = before.get(i + 1).map_or(info.file_date, |n| n.file_date);
            if next_date > oldest_kept {
                out.push(Earlier {
                    snapshot: self.snapshot(s).await?,
                    info: s.clone(),
                    next_date,
                });
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The removed prefixes `ruleset`'s grace period keeps at `snapshot` (described by `info`),
    /// from the earlier snapshots of the store ([`Store::earlier_within`]).
    pub async fn retained(
        &self,
        ruleset: &Ruleset,
        snapshot: &Snapshot,
        info: &SnapshotInfo,
    ) -> Result<Retained, StoreError> {
        let earlier = self.earlier_within(info, ruleset.keep_removed_days).await?;
        Ok(Retained::compute(
            ruleset,
            snapshot,
            info.file_date,
            earlier.iter().map(|e| (&e.snapshot, e.next_date)),
        ))
    }
}
