//! Orchestration of the ruleset commands over the store: `emit` applies rulesets to stored
//! snapshots and writes each ruleset's directory atomically; `lookup_in` gathers what
//! `lookup::report` needs from the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::publish::artifacts::DirOutcome;
use crate::publish::Layout;
use crate::rules::allowlist::Allowlist;
use ipnet::IpNet;

use crate::core::model::{Cloud, Snapshot, SnapshotInfo};
use crate::core::ranges::{AddrSet, Family};
use crate::core::snapref::SnapRef;
use crate::publish::validate::{Checked, Validate};
use crate::rules::lookup::{self, Report};
use crate::rules::ruleset::Ruleset;
use crate::store::Store;

/// What happened to one ruleset.
#[derive(Debug)]
pub struct Emitted {
    /// The ruleset's name.
    pub ruleset: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The snapshot it was built from.
    pub snapshot: SnapshotInfo,
    /// Written, or already up to date.
    pub outcome: DirOutcome,
    /// One line per family ("IPv4: N entries, M addresses").
    pub families: Vec<String>,
    /// Warnings for the people loading the files.
    pub warnings: Vec<String>,
    /// Which tools checked the files.
    pub checked: Checked,
}

/// Snapshots read once per cloud for every ruleset of that cloud.
pub struct Snapshots<'s> {
    store: &'s Store,
    at: SnapRef,
    loaded: BTreeMap<Cloud, (SnapshotInfo, Snapshot)>,
}

impl<'s> Snapshots<'s> {
    /// Snapshots named by `at` (for `id:N`, only rulesets of that snapshot's cloud can use it).
    pub fn new(store: &'s Store, at: SnapRef) -> Snapshots<'s> {
        Snapshots {
            store,
            at,
            loaded: BTreeMap::new(),
        }
    }

    /// Uses `snapshot` for its cloud instead of the store's (a dry run's unstored file).
    pub fn insert(&mut self, info: SnapshotInfo, snapshot: Snapshot) {
        self.loaded.insert(info.cloud, (info, snapshot));
    }

    /// The snapshot of `cloud`, read from the store the first time.
    pub async fn get(&mut self, cloud: Cloud) -> anyhow::Result<&(SnapshotInfo, Snapshot)> {
        if !self.loaded.contains_key(&cloud) {
            let info = self.store.resolve(cloud, &self.at).await.with_context(|| {
                format!("no {cloud} snapshot to build from: import or fetch one first")
            })?;
            if info.cloud != cloud {
                bail!(
                    "{} is a {} snapshot, not {cloud}: pick one of the ruleset's cloud",
                    self.at,
                    info.cloud
                );
            }
            let snapshot = self.store.snapshot(&info).await?;
            self.loaded.insert(cloud, (info, snapshot));
        }
        Ok(&self.loaded[&cloud])
    }
}

/// Builds one ruleset from its cloud's snapshot and publishes it into `out/<name>/`, a directory
/// other than the settings' output directory (`emit --out`), through the one publish path
/// (`publish::ruleset::publish`): no guard, no `apply` commands, nothing recorded in the store.
/// Into the settings' output directory a ruleset goes through `job::sync::ruleset`, guarded.
pub async fn emit_one(
    snapshots: &mut Snapshots<'_>,
    ruleset: &Ruleset,
    out: &Path,
    validate: Validate,
) -> anyhow::Result<Emitted> {
    let store = snapshots.store;
    let (info, snapshot) = snapshots.get(ruleset.cloud).await?;
    let kept = store.retained(ruleset, snapshot, info).await?;
    let allowlist = Allowlist::build(ruleset, snapshot, info, &kept)?;
    let done =
        crate::publish::ruleset::publish(&Layout::new(out), None, &allowlist, validate).await?;
    Ok(Emitted {
        ruleset: ruleset.name.clone(),
        dir: out.join(&ruleset.name),
        snapshot: info.clone(),
        outcome: done.outcome,
        families: allowlist
            .sets
            .iter()
            .map(crate::render::firewall::family_line)
            .collect(),
        warnings: allowlist.warnings,
        checked: done.checked,
    })
}

/// Looks `query` up in the snapshot of `cloud` that `at` names. `None` when the cloud has no
/// such snapshot and `lenient` (looking in every cloud) is set.
pub async fn lookup_in(
    store: &Store,
    cloud: Cloud,
    at: &SnapRef,
    query: IpNet,
    rulesets: &[&Ruleset],
    lenient: bool,
) -> anyhow::Result<Option<Report>> {
    let info = match store.resolve(cloud, at).await {
        Ok(info) if info.cloud == cloud => info,
        // `id:N` names one snapshot of one cloud: the other clouds have nothing to show.
        Ok(_) if lenient => return Ok(None),
        Ok(info) => bail!("{at} is a {} snapshot, not {cloud}", info.cloud),
        Err(_) if lenient => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Read after resolving: an import running beside this lookup only adds snapshots, so the
    // one resolved is in the list (read first, a newer "latest" could be missing from it).
    let snapshots = store.snapshot_ords(cloud).await?;
    let at = snapshots
        .iter()
        .find(|(s, _)| s.id == info.id)
        .cloned()
        .context("the snapshot vanished while reading")?;
    let emitted = budgeted_lists(store, &at.0, Family::of(&query), rulesets).await?;
    lookup_at(store, query, &snapshots, &at, rulesets, &emitted)
        .await
        .map(Some)
}

/// Looks `query` up in the snapshot `at` of `snapshots` (its cloud's, in history order), with
/// `emitted` the budgeted rulesets' lists there ([`budgeted_lists`] for the query's family):
/// the two queries of a lookup that depend on the query.
pub async fn lookup_at(
    store: &Store,
    query: IpNet,
    snapshots: &[(SnapshotInfo, i64)],
    at: &(SnapshotInfo, i64),
    rulesets: &[&Ruleset],
    emitted: &BTreeMap<String, AddrSet>,
) -> anyhow::Result<Report> {
    let hits = store.prefix_hits(at.0.cloud, query).await?;
    let mut names: Vec<String> = hits.iter().map(|h| h.tag.clone()).collect();
    names.sort();
    names.dedup();
    let meta = store.tag_meta(&at.0, &names).await?;
    Ok(lookup::report(
        query, snapshots, at, &hits, &meta, rulesets, emitted,
    ))
}

/// Each ruleset's verdict from its published list, the newest snapshot's verdict pending.
pub fn published_verdicts(output_dir: &std::path::Path, report: &mut Report) {
    use crate::publish::baseline::{read, Published as Dir};
    use crate::rules::lookup::{as_published, Published};
    let layout = crate::publish::Layout::new(output_dir);
    let query = report.query;
    let id = report.snapshot.id;
    report.verdicts = std::mem::take(&mut report.verdicts)
        .into_iter()
        .map(|v| {
            let published = match read(&layout.ruleset(&v.ruleset), &v.ruleset) {
                Dir::Nothing => Published::Nothing,
                Dir::Damaged(why) => Published::Unreadable(why),
                Dir::Valid(b) => Published::List {
                    covers: {
                        let (v4, v6) = AddrSet::of_all(&b.entries);
                        match Family::of(&query) {
                            Family::V4 => v4.covers(&query),
                            Family::V6 => v6.covers(&query),
                        }
                    },
                    snapshot: b.manifest.snapshot_label(),
                    current: b.manifest.snapshot.id == id,
                    withheld: layout.withheld(&v.ruleset).exists(),
                },
            };
            as_published(v, published)
        })
        .collect();
}

/// The entries of `family` that each budgeted ruleset of the snapshot's cloud emits there:
/// `max_entries` may widen them beyond the selected tags, so lookup checks the list itself.
/// Reads the snapshot only when such a ruleset exists.
pub async fn budgeted_lists(
    store: &Store,
    info: &SnapshotInfo,
    family: Family,
    rulesets: &[&Ruleset],
) -> anyhow::Result<BTreeMap<String, AddrSet>> {
    let budgeted: Vec<&&Ruleset> = rulesets
        .iter()
        .filter(|r| r.cloud == info.cloud && r.list_differs() && r.has(family))
        .collect();
    let mut lists = BTreeMap::new();
    if budgeted.is_empty() {
        return Ok(lists);
    }
    let snapshot = store.snapshot(info).await?;
    for r in budgeted {
        // A selection that matches nothing here allows nothing: no list.
        let kept = store.retained(r, &snapshot, info).await?;
        if let Ok(a) = Allowlist::build(r, &snapshot, info, &kept) {
            if let Some(set) = a.set(family) {
                let nets: Vec<IpNet> = set.entries.iter().map(|e| e.net).collect();
                lists.insert(r.name.clone(), AddrSet::from_prefixes(family, &nets));
            }
        }
    }
    Ok(lists)
}
