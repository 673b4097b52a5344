//! What the review site's pages show, gathered in memory: each ruleset's last run, its pending
//! change as it would be published (built once per withheld change), its kept publishes with
//! the change in addresses between them, every approval and rejection, and the weekly reports
//! there are. Rebuilt by [`Model::build`] every few seconds and after each decision; a request
//! reads only this (and the published lists' index), so a page costs no store query.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::core::ranges::{AddrSet, Family};
use crate::job::approve::{Desk, Review};
use crate::publish::Layout;
use crate::rules::summary::RulesetRun;
use crate::store::{Approval, Store};

/// One kept publish of a ruleset.
#[derive(Debug, Clone)]
pub struct PublishRow {
    /// The store's id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `Public 2025-07-28 (id:4)`.
    pub snapshot: String,
    /// Per family: (label, newly allowed, no longer allowed) against the publish before it;
    /// `None` for the oldest kept.
    pub change: Option<Vec<(Family, u128, u128)>>,
    /// Per family: (label, entries, addresses).
    pub counts: Vec<(Family, usize, u128)>,
}

/// A kept publish as read: what lookups check "as published" against.
#[derive(Debug)]
pub struct Parsed {
    /// `Public 2025-07-28 (id:4)`.
    pub label: String,
    /// The snapshot's id.
    pub snapshot_id: i64,
    /// Its entries.
    pub entries: Vec<ipnet::IpNet>,
    /// Its addresses: IPv4, IPv6.
    pub sets: (AddrSet, AddrSet),
}

impl Parsed {
    /// Whether the list holds every address of `query`.
    pub fn covers(&self, query: &ipnet::IpNet) -> bool {
        match Family::of(query) {
            Family::V4 => self.sets.0.covers(query),
            Family::V6 => self.sets.1.covers(query),
        }
    }
}

/// What a lookup in a cloud reads besides the query's own rows and the budgeted rulesets'
/// lists (`Site::emitted`, read at the first lookup).
#[derive(Debug)]
pub struct LookupBase {
    /// The cloud's snapshots with their ordinals, in history order.
    pub snapshots: Vec<(crate::core::model::SnapshotInfo, i64)>,
}

/// A withheld change as the pending page shows it.
#[derive(Debug)]
pub struct Pending {
    /// The change as it would be published now.
    pub review: Review,
    /// The marker's bytes it was built for: a new marker, a new review.
    key: String,
}

impl Pending {
    /// `review`, built for the marker whose digest is `key`.
    pub fn new(review: Review, key: String) -> Pending {
        Pending { review, key }
    }
}

/// Everything the pages read.
#[derive(Debug, Default)]
pub struct Model {
    /// Each ruleset's part of the last run summary (`last-run.json`), by name.
    pub runs: BTreeMap<String, RulesetRun>,
    /// When that run finished.
    pub last_run: Option<String>,
    /// Pending changes by ruleset.
    pub pending: BTreeMap<String, Arc<Pending>>,
    /// Rulesets with a withheld change that cannot be shown, and why.
    pub pending_errors: BTreeMap<String, String>,
    /// Every approval and rejection, oldest first.
    pub approvals: Vec<Approval>,
    /// Kept publishes by ruleset, newest first.
    pub publishes: BTreeMap<String, Vec<PublishRow>>,
    /// Report dates (YYYY-MM-DD) by cloud, newest first.
    pub reports: BTreeMap<String, Vec<String>>,
    /// What could not be read (the store, the output directory).
    pub problems: Vec<String>,
    /// Each ruleset's newest recorded publish.
    pub published: BTreeMap<String, Arc<Parsed>>,
    /// Lookups' base by cloud.
    pub lookups: BTreeMap<crate::core::model::Cloud, Arc<LookupBase>>,
    /// Parsed publishes by id, kept between builds.
    parsed: BTreeMap<i64, Arc<Parsed>>,
}

/// Where the weekly reports are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reports {
    /// `<output>/reports/<cloud>/<date>.html`.
    Output,
    /// Rendered from the store's history (replicas without the output directory).
    Store,
}

impl Model {
    /// Whether a withheld change of `ruleset` waits for review (shown, or not showable).
    pub fn waits(&self, ruleset: &str) -> bool {
        self.pending.contains_key(ruleset) || self.pending_errors.contains_key(ruleset)
    }

    /// Reads everything again; what did not change is taken from `old`.
    pub async fn build(store: Option<&Store>, desk: &Desk, reports: Reports, old: &Model) -> Model {
        let mut m = Model::default();
        let layout = Layout::new(&desk.output_dir);
        match crate::job::sync::read_run_summary(&layout) {
            Ok(Some(s)) => {
                m.last_run = Some(s.finished.clone());
                m.runs = s
                    .rulesets
                    .into_iter()
                    .map(|r| (r.ruleset.clone(), r))
                    .collect();
            }
            Ok(None) => {}
            Err(e) => m.problems.push(format!("{e:#}")),
        }
        let Some(store) = store else {
            m.problems.push(
                "the store is not open: history, pending changes and lookups are not shown".into(),
            );
            return m;
        };
        m.pending_from(store, desk, &layout, old).await;
        match store.approvals().await {
            Ok(a) => m.approvals = a,
            Err(e) => m
                .problems
                .push(format!("the approvals cannot be read: {e}")),
        }
        m.publishes_from(store, old).await;
        m.clouds_from(store, &layout, desk, reports).await;
        m
    }

    async fn pending_from(&mut self, store: &Store, desk: &Desk, layout: &Layout, old: &Model) {
        for r in &desk.rulesets {
            let marker = layout.withheld(&r.name);
            let key = match crate::localfs::read_bounded(&marker) {
                Ok(bytes) => crate::core::digest::sha256_hex(&bytes),
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    self.pending_errors.insert(
                        r.name.clone(),
                        format!("{} cannot be read: {e}", marker.display()),
                    );
                    continue;
                }
            };
            if let Some(p) = old.pending.get(&r.name).filter(|p| p.key == key) {
                self.pending.insert(r.name.clone(), p.clone());
                continue;
            }
            match desk.review(store, r).await {
                Ok(review) => {
                    self.pending
                        .insert(r.name.clone(), Arc::new(Pending::new(review, key)));
                }
                Err(e) => {
                    self.pending_errors.insert(r.name.clone(), format!("{e:#}"));
                }
            }
        }
    }

    async fn publishes_from(&mut self, store: &Store, old: &Model) {
        let kept = match store.kept_publishes().await {
            Ok(k) => k,
            Err(e) => {
                return self
                    .problems
                    .push(format!("the publishes cannot be read: {e}"))
            }
        };
        for (name, id, at) in kept {
            let parsed = match old.parsed.get(&id) {
                Some(p) => p.clone(),
                None => match parse_publish(store, &name, id).await {
                    Ok(p) => Arc::new(p),
                    Err(e) => {
                        self.problems.push(format!("publish {id} of {name}: {e}"));
                        continue;
                    }
                },
            };
            self.parsed.insert(id, parsed.clone());
            let counts = [(Family::V4, &parsed.sets.0), (Family::V6, &parsed.sets.1)]
                .into_iter()
                .map(|(f, set)| {
                    let n = parsed.entries.iter().filter(|e| Family::of(e) == f).count();
                    (f, n, set.count())
                })
                .collect();
            // Newest first: the first of a ruleset is what it serves.
            self.published
                .entry(name.clone())
                .or_insert_with(|| parsed.clone());
            self.publishes.entry(name).or_default().push(PublishRow {
                id,
                at,
                snapshot: parsed.label.clone(),
                change: None,
                counts,
            });
        }
        // Newest first: each row's change is against the next.
        for rows in self.publishes.values_mut() {
            for i in 0..rows.len().saturating_sub(1) {
                let (now, before) = (&self.parsed[&rows[i].id], &self.parsed[&rows[i + 1].id]);
                rows[i].change = Some(change(before, now));
            }
        }
    }

    /// Per cloud of the rulesets: its snapshots (for lookups, read once) and its report dates
    /// (from the output directory, or with `Reports::Store` the snapshots that have one).
    async fn clouds_from(&mut self, store: &Store, layout: &Layout, desk: &Desk, from: Reports) {
        let mut clouds: Vec<crate::core::model::Cloud> =
            desk.rulesets.iter().map(|r| r.cloud).collect();
        clouds.sort();
        clouds.dedup();
        for cloud in clouds {
            let snapshots = match store.snapshot_ords(cloud).await {
                Ok(s) => Some(s),
                Err(e) => {
                    self.problems
                        .push(format!("the snapshots of {cloud} cannot be read: {e}"));
                    None
                }
            };
            let dates = match (from, &snapshots) {
                (Reports::Output, _) => Some(report_files(&layout.reports(cloud))),
                (Reports::Store, Some(s)) => Some(report_dates(s)),
                (Reports::Store, None) => None,
            };
            if let Some(dates) = dates {
                self.reports.insert(cloud.name().to_string(), dates);
            }
            if let Some(snapshots) = snapshots {
                self.lookups
                    .insert(cloud, Arc::new(LookupBase { snapshots }));
            }
        }
    }
}

/// Newly allowed and no longer allowed addresses per family, from `before` to `now`.
fn change(before: &Parsed, now: &Parsed) -> Vec<(Family, u128, u128)> {
    let (b4, b6) = &before.sets;
    let (n4, n6) = &now.sets;
    vec![
        (Family::V4, n4.minus(b4).count(), b4.minus(n4).count()),
        (Family::V6, n6.minus(b6).count(), b6.minus(n6).count()),
    ]
}

/// A kept publish, checked against its manifest.
async fn parse_publish(store: &Store, name: &str, id: i64) -> Result<Parsed, String> {
    let mut stored = store.publish_files(id).await.map_err(|e| e.to_string())?;
    let manifest = crate::rules::manifest::FILE;
    let at = stored
        .iter()
        .position(|(n, _)| n == manifest)
        .ok_or_else(|| format!("it has no {manifest}"))?;
    let (_, bytes) = stored.swap_remove(at);
    let mut stored: BTreeMap<String, Vec<u8>> = stored.into_iter().collect();
    let files = crate::publish::baseline::check_files(name, bytes, |file| {
        stored
            .remove(file)
            .ok_or_else(|| format!("{file} is missing"))
    })?;
    let entries = files.entries(name)?;
    Ok(Parsed {
        label: files.manifest.snapshot_label(),
        snapshot_id: files.manifest.snapshot.id,
        sets: AddrSet::of_all(&entries),
        entries,
    })
}

/// The dates of `<dir>/<date>.html`, newest first.
fn report_files(dir: &std::path::Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dates: Vec<String> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let date = name.strip_suffix(".html")?;
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            Some(date.to_string())
        })
        .collect();
    dates.sort_unstable_by(|a, b| b.cmp(a));
    dates
}

/// The dates of the snapshots `ords` (a cloud's, in history order) that have a report (every
/// one after the first), newest first.
fn report_dates(ords: &[(crate::core::model::SnapshotInfo, i64)]) -> Vec<String> {
    let mut dates: Vec<String> = ords
        .iter()
        .skip(1)
        .map(|(s, _)| s.file_date.to_string())
        .collect();
    dates.dedup();
    dates.reverse();
    dates
}
