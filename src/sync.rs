//! One run of the scheduled job: fetch each cloud, write the diff report of each new snapshot,
//! rebuild each ruleset, hold back the dangerous changes (the guard), publish the rest
//! atomically, and leave a summary, Prometheus metrics and an optional webhook post.
//!
//! One run at a time per store ([`Store::lock_run`]). Every write is atomic (store
//! transactions, files by rename, ruleset directories by exchange), so a run killed at any point
//! leaves the previous state or the new one.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::allowlist::Allowlist;
use crate::artifacts::{write_atomic, write_dir_atomic, DirOutcome};
use crate::config::Config;
use crate::emit::Snapshots;
use crate::fetch::{fetch_cloud, Client, Fetched, Outcome};
use crate::guard::{self, Limits, Side};
use crate::model::{Cloud, SnapshotInfo};
use crate::ranges::AddrSet;
use crate::render::ruleset_files;
use crate::ruleset::Ruleset;
use crate::store::{SnapRef, Store};

/// Exit code: a change was withheld by the guard (the previous artifacts stay).
pub const EXIT_WITHHELD: u8 = 3;

/// What the run was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clouds to fetch.
    pub clouds: Vec<Cloud>,
    /// Publish even what the guard would withhold.
    pub force: bool,
    /// Fetch nothing new, write nothing: report what would happen.
    pub dry_run: bool,
    /// Today (UTC), for discovery and the overdue rule.
    pub today: NaiveDate,
}

/// What happened to one cloud.
#[derive(Debug, Clone, Serialize)]
pub struct CloudRun {
    /// The cloud.
    pub cloud: String,
    /// `new`, `unchanged`, `stored`, `retired`, `dry-run` or `failed`.
    pub status: String,
    /// The newest file's date, when known.
    pub file_date: Option<String>,
    /// The line `tagwall fetch` prints, or the error.
    pub detail: String,
    /// The diff report written for a new snapshot (without extension).
    pub report: Option<String>,
}

/// What happened to one ruleset.
#[derive(Debug, Clone, Serialize)]
pub struct RulesetRun {
    /// The ruleset.
    pub ruleset: String,
    /// `published`, `unchanged`, `withheld`, `would-publish`, `would-withhold` or `failed`.
    pub status: String,
    /// The snapshot now published (or that would be).
    pub snapshot: Option<String>,
    /// Per family: entries and addresses of what is published after the run.
    pub families: BTreeMap<String, FamilyCounts>,
    /// Why it was withheld.
    pub reasons: Vec<String>,
    /// What the withheld change would have done, per family.
    pub would_change: Vec<String>,
    /// Warnings for the firewall team (multi-tenant tags, budgets).
    pub warnings: Vec<String>,
    /// The error, if failed.
    pub error: Option<String>,
}

/// Entries and addresses of one family.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyCounts {
    /// CIDRs.
    pub entries: usize,
    /// Addresses covered (a string: IPv6 counts exceed JSON's integers).
    pub addresses: String,
}

/// The run summary (`out/last-run.json`, schema `tagwall.run/1`, and the webhook body).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `tagwall.run/1`.
    pub schema: &'static str,
    /// tagwall's version.
    pub tagwall: &'static str,
    /// Start time (RFC 3339).
    pub started: String,
    /// End time.
    pub finished: String,
    /// `--force`.
    pub forced: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The exit code: 0 ok, 1 error, 3 withheld.
    pub exit_code: u8,
    /// Per cloud.
    pub clouds: Vec<CloudRun>,
    /// Per ruleset.
    pub rulesets: Vec<RulesetRun>,
}

/// A change the guard held back, remembered for `tagwall approve`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Withheld {
    /// The ruleset.
    pub ruleset: String,
    /// The snapshot id the withheld artifacts are built from.
    pub snapshot_id: i64,
    /// Its cloud and date, for people.
    pub snapshot: String,
    /// Why.
    pub reasons: Vec<String>,
}

/// Where the withheld marker of a ruleset lives.
pub fn withheld_path(out: &Path, ruleset: &str) -> PathBuf {
    out.join(".tagwall")
        .join(format!("withheld-{ruleset}.json"))
}

/// Runs the pipeline once; the caller holds the run lock.
pub async fn run(
    store: &Store,
    config: &Config,
    client: &Client,
    opts: &Options,
) -> anyhow::Result<Summary> {
    let started = Utc::now();
    let out = &config.output_dir;
    let mut clouds = Vec::new();
    for &cloud in &opts.clouds {
        let fetched = fetch_cloud(
            store,
            client,
            &config.fetch,
            cloud,
            opts.today,
            opts.dry_run,
        )
        .await;
        clouds.push(cloud_run(store, out, cloud, fetched, opts.dry_run).await);
    }
    let mut snapshots = Snapshots::new(store, SnapRef::Latest(0));
    let mut rulesets = Vec::new();
    for ruleset in config
        .rulesets
        .iter()
        .filter(|r| opts.clouds.contains(&r.cloud))
    {
        let run = match ruleset_run(store, config, ruleset, &mut snapshots, opts).await {
            Ok(r) => r,
            Err(e) => RulesetRun::failed(&ruleset.name, format!("{e:#}")),
        };
        rulesets.push(run);
    }
    let failed = clouds.iter().any(|c| c.status == "failed")
        || rulesets.iter().any(|r| r.status == "failed");
    let withheld = rulesets
        .iter()
        .any(|r| r.status == "withheld" || r.status == "would-withhold");
    let exit_code = if failed {
        1
    } else if withheld {
        EXIT_WITHHELD
    } else {
        0
    };
    let summary = Summary {
        schema: "tagwall.run/1",
        tagwall: env!("CARGO_PKG_VERSION"),
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        forced: opts.force,
        dry_run: opts.dry_run,
        exit_code,
        clouds,
        rulesets,
    };
    if !opts.dry_run {
        std::fs::create_dir_all(out)
            .with_context(|| format!("could not create {}", out.display()))?;
        let mut json = serde_json::to_vec_pretty(&summary)?;
        json.push(b'\n');
        write_atomic(&out.join("last-run.json"), &json)
            .context("could not write the run summary")?;
        let mut md = Vec::new();
        crate::render::run_summary::write(&mut md, &summary)?;
        write_atomic(&out.join("last-run.md"), &md).context("could not write last-run.md")?;
        let mut newest = BTreeMap::new();
        for s in store.snapshots(None).await? {
            let d = newest.entry(s.cloud.name()).or_insert(s.file_date);
            *d = (*d).max(s.file_date);
        }
        let metrics =
            crate::render::metrics::render(&summary, &newest, previous_success(out).as_deref());
        write_atomic(&out.join("metrics.prom"), metrics.as_bytes())
            .context("could not write metrics.prom")?;
    }
    Ok(summary)
}

/// The last success time recorded in `metrics.prom`, kept across failed runs.
fn previous_success(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join("metrics.prom")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("tagwall_last_success_timestamp_seconds "))
        .map(str::to_string)
}

async fn cloud_run(
    store: &Store,
    out: &Path,
    cloud: Cloud,
    fetched: Result<Fetched, crate::fetch::Error>,
    dry_run: bool,
) -> CloudRun {
    let name = cloud.name().to_string();
    let f = match fetched {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("{name}: {e}");
            return CloudRun {
                cloud: name,
                status: "failed".into(),
                file_date: None,
                detail: e.to_string(),
                report: None,
            };
        }
    };
    let detail = crate::fetch::describe(&f);
    f.warn();
    let (status, new) = match &f.outcome {
        Outcome::Imported { info, .. } => ("new", Some(info.clone())),
        Outcome::NotModified(_) => ("unchanged", None),
        Outcome::AlreadyStored { .. } => ("stored", None),
        Outcome::Retired => ("retired", None),
        Outcome::DryRun(_) => ("dry-run", None),
    };
    let file_date = match &f.discovery {
        crate::fetch::Discovery::Found { date, .. } => Some(date.to_string()),
        crate::fetch::Discovery::Retired { last } => Some(last.to_string()),
    };
    let mut run = CloudRun {
        cloud: name,
        status: status.into(),
        file_date,
        detail,
        report: None,
    };
    if let (Some(info), false) = (new, dry_run) {
        match write_report(store, out, &info).await {
            Ok(report) => run.report = report,
            Err(e) => {
                run.status = "failed".into();
                run.detail = format!("imported, but the diff report could not be written: {e:#}");
            }
        }
    }
    run
}

/// Writes `out/reports/<cloud>/<date>.{md,json,html}` comparing `info` with the snapshot before
/// it; nothing for a cloud's first snapshot.
async fn write_report(
    store: &Store,
    out: &Path,
    info: &SnapshotInfo,
) -> anyhow::Result<Option<String>> {
    let history = store.snapshot_ords(info.cloud).await?;
    let Some(at) = history.iter().position(|(s, _)| s.id == info.id) else {
        return Ok(None);
    };
    let Some((before, _)) = at.checked_sub(1).map(|i| &history[i]) else {
        return Ok(None);
    };
    let d = store.diff(before, info).await?;
    let base = out
        .join("reports")
        .join(info.cloud.name())
        .join(info.file_date.to_string());
    let mut md = Vec::new();
    crate::render::diff_markdown::write(&mut md, &d, before, info)?;
    let mut json = Vec::new();
    crate::render::diff_json::write(&mut json, &d, before, info)?;
    let mut html = Vec::new();
    crate::render::html::write_diff(&mut html, &d, before, info)?;
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    for (ext, bytes) in [("md", md), ("json", json), ("html", html)] {
        let path = base.with_extension(ext);
        write_atomic(&path, &bytes)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(Some(base.display().to_string()))
}

impl RulesetRun {
    fn failed(name: &str, error: String) -> RulesetRun {
        tracing::error!("ruleset {name}: {error}");
        RulesetRun {
            ruleset: name.into(),
            status: "failed".into(),
            snapshot: None,
            families: BTreeMap::new(),
            reasons: Vec::new(),
            would_change: Vec::new(),
            warnings: Vec::new(),
            error: Some(error),
        }
    }
}

fn counts(a: &Allowlist) -> BTreeMap<String, FamilyCounts> {
    a.sets
        .iter()
        .map(|s| {
            (
                s.family.key().to_string(),
                FamilyCounts {
                    entries: s.entries.len(),
                    addresses: s.covered().to_string(),
                },
            )
        })
        .collect()
}

fn side(a: &Allowlist, cloud_prefixes: i64) -> Side {
    Side {
        sets: AddrSet::of_all(a.sets.iter().flat_map(|s| s.entries.iter().map(|e| &e.net))),
        tags: a.tags.iter().map(|t| t.name.clone()).collect(),
        cloud_prefixes,
    }
}

/// The snapshot the ruleset's published directory was built from (its manifest), if any.
fn published_snapshot(out: &Path, ruleset: &str) -> Option<i64> {
    let text = std::fs::read(out.join(ruleset).join(ruleset_files::MANIFEST)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["snapshot"]["id"].as_i64()
}

async fn ruleset_run(
    store: &Store,
    config: &Config,
    ruleset: &Ruleset,
    snapshots: &mut Snapshots<'_>,
    opts: &Options,
) -> anyhow::Result<RulesetRun> {
    let out = &config.output_dir;
    let (info, snapshot) = snapshots.get(ruleset.cloud).await?;
    let label = format!("{} {} (id:{})", info.cloud, info.file_date, info.id);
    let limits = Limits {
        max_removed_percent: ruleset
            .max_removed_percent
            .unwrap_or(config.guard.max_removed_percent),
        ..config.guard
    };
    let previous = match published_snapshot(out, &ruleset.name) {
        Some(id) if id != info.id => match store.resolve(ruleset.cloud, &SnapRef::Id(id)).await {
            Ok(prev) if prev.cloud == ruleset.cloud => Some(prev),
            _ => None,
        },
        _ => None,
    };
    let present: HashSet<&str> = snapshot.tags.iter().map(|t| t.name.as_str()).collect();
    let built = Allowlist::build(ruleset, snapshot, info);
    let mut reasons: Vec<String> = Vec::new();
    let mut would_change = Vec::new();
    let mut prev_allowlist = None;
    if let Some(prev) = &previous {
        let prev_snapshot = store.snapshot(prev).await?;
        if let Ok(before) = Allowlist::build(ruleset, &prev_snapshot, prev) {
            if let Ok(after) = &built {
                let found = guard::check(
                    &limits,
                    &side(&before, prev.prefixes),
                    &side(after, info.prefixes),
                    &|t| present.contains(t),
                );
                reasons.extend(found.iter().map(ToString::to_string));
                for (b, a) in before.sets.iter().zip(&after.sets) {
                    would_change.push(format!(
                        "{}: {} → {} entries, {} → {} addresses",
                        a.family.label(),
                        b.entries.len(),
                        a.entries.len(),
                        b.covered(),
                        a.covered()
                    ));
                }
            }
            prev_allowlist = Some(before);
        }
    }
    let after = match built {
        Ok(a) => a,
        Err(e) if prev_allowlist.is_some() => {
            // Nothing can be built: keep what is published, even with --force.
            return withhold(
                out,
                ruleset,
                info,
                &label,
                vec![e.to_string()],
                would_change,
                prev_allowlist.as_ref(),
                opts,
                false,
            );
        }
        Err(e) => return Err(e.into()),
    };
    if !reasons.is_empty() && !opts.force {
        return withhold(
            out,
            ruleset,
            info,
            &label,
            reasons,
            would_change,
            prev_allowlist.as_ref(),
            opts,
            true,
        );
    }
    if !reasons.is_empty() {
        tracing::warn!(
            "ruleset {}: published with --force despite: {}",
            ruleset.name,
            reasons.join("; ")
        );
    }
    let mut run = RulesetRun {
        ruleset: ruleset.name.clone(),
        status: String::new(),
        snapshot: Some(label.clone()),
        families: counts(&after),
        reasons,
        would_change: Vec::new(),
        warnings: after.warnings.clone(),
        error: None,
    };
    if opts.dry_run {
        run.status = "would-publish".into();
        return Ok(run);
    }
    let files = crate::emit::checked_files(&after, config.validate, out).await?;
    let outcome = write_dir_atomic(out, &ruleset.name, &files)
        .with_context(|| format!("could not write {}", out.join(&ruleset.name).display()))?;
    let marker = withheld_path(out, &ruleset.name);
    if marker.exists() {
        std::fs::remove_file(&marker)
            .with_context(|| format!("could not remove {}", marker.display()))?;
    }
    run.status = match outcome {
        DirOutcome::Written => "published",
        DirOutcome::Unchanged => "unchanged",
    }
    .into();
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
fn withhold(
    out: &Path,
    ruleset: &Ruleset,
    info: &SnapshotInfo,
    label: &str,
    reasons: Vec<String>,
    would_change: Vec<String>,
    published: Option<&Allowlist>,
    opts: &Options,
    approvable: bool,
) -> anyhow::Result<RulesetRun> {
    tracing::warn!(
        "ruleset {}: withheld {label}: {}; the previous files stay in {}{}",
        ruleset.name,
        reasons.join("; "),
        out.join(&ruleset.name).display(),
        if approvable {
            format!(
                "; publish with `tagwall approve {}` or `tagwall sync --force`",
                ruleset.name
            )
        } else {
            String::new()
        }
    );
    if !opts.dry_run && approvable {
        let marker = Withheld {
            ruleset: ruleset.name.clone(),
            snapshot_id: info.id,
            snapshot: label.to_string(),
            reasons: reasons.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&marker)?;
        json.push(b'\n');
        let path = withheld_path(out, &ruleset.name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(&path, &json)?;
    }
    Ok(RulesetRun {
        ruleset: ruleset.name.clone(),
        status: if opts.dry_run {
            "would-withhold"
        } else {
            "withheld"
        }
        .into(),
        snapshot: published.map(|a| {
            format!(
                "{} {} (id:{})",
                a.snapshot.cloud, a.snapshot.file_date, a.snapshot.id
            )
        }),
        families: published.map(counts).unwrap_or_default(),
        reasons,
        would_change,
        warnings: published.map(|a| a.warnings.clone()).unwrap_or_default(),
        error: None,
    })
}
