//! One run of the scheduled job: fetch each cloud, write the diff report of each new snapshot,
//! rebuild each ruleset, hold back the dangerous changes (the guard), publish the rest
//! atomically, and leave a summary, Prometheus metrics and an optional webhook post.
//!
//! One run at a time per store ([`Store::lock_run`]). Every write is atomic (store
//! transactions, files by rename, ruleset directories by exchange), so a run killed at any point
//! leaves the previous state or the new one.

pub mod ruleset;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::core::model::{Cloud, SnapshotInfo};
use crate::fetch::settings::FetchSettings;
use crate::fetch::{fetch_cloud, Client, Fetched, Mode, Outcome};
use crate::job::emit::Snapshots;
use crate::publish::artifacts::write_atomic;
use crate::publish::validate::Validate;
use crate::publish::{reports, Layout};
use crate::rules::guard::Limits;
use crate::rules::ruleset::Ruleset;
pub use crate::rules::summary::EXIT_WITHHELD;
use crate::rules::summary::{CloudRun, CloudStatus, RulesetRun, Summary};
use crate::store::{SnapRef, Store};

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

/// Webhooks post with the run's one client: the same proxy and TLS settings as the downloads.
impl crate::notify::PostJson for Client {
    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        Client::post_json(self, url, body)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What a run reads of the settings: `app::config::Config::for_sync` gives it.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Where rulesets are written (`[output] dir`).
    pub output_dir: &'a Path,
    /// Whether the firewall tools check files before they are published.
    pub validate: Validate,
    /// The rulesets, in file order.
    pub rulesets: &'a [Ruleset],
    /// How files are fetched.
    pub fetch: &'a FetchSettings,
    /// The guard's default limits.
    pub guard: Limits,
    /// Days between reminders of a withheld change (`[notify] remind_days`).
    pub remind_days: u32,
}

/// Runs the pipeline once; the caller holds the run lock.
pub async fn run(
    store: &Store,
    settings: &Settings<'_>,
    client: &Client,
    opts: &Options,
) -> anyhow::Result<Summary> {
    let started = Utc::now();
    let out = settings.output_dir;
    let layout = Layout::new(out);
    if !opts.dry_run {
        if let Err(e) = layout.clean_temporaries() {
            tracing::warn!("could not clear temporary files in {}: {e}", out.display());
        }
    }
    let mut clouds = Vec::new();
    let mut news = Vec::new();
    let mut candidates = Vec::new();
    for &cloud in &opts.clouds {
        let fetched = fetch_cloud(
            store,
            client,
            settings.fetch,
            cloud,
            opts.today,
            Mode::dry_run_if(opts.dry_run),
        )
        .await;
        // A dry run checks the rulesets against the file it would import.
        if let Ok(Fetched {
            outcome: Outcome::DryRun { candidate, .. },
            ..
        }) = &fetched
        {
            candidates.extend(candidate.as_deref().cloned());
        }
        let (run, new) = cloud_run(cloud, fetched);
        clouds.push(run);
        news.push(new);
    }
    if !opts.dry_run {
        for run in &mut clouds {
            notice(&layout, run);
        }
    }
    let mut snapshots = Snapshots::new(store, SnapRef::Latest(0));
    for c in candidates {
        snapshots.insert(c.info, c.snapshot);
    }
    let ctx = ruleset::Ctx {
        store,
        settings,
        layout: &layout,
        opts,
    };
    let mut rulesets = Vec::new();
    for r in settings
        .rulesets
        .iter()
        .filter(|r| opts.clouds.contains(&r.cloud))
    {
        let run = match ruleset::run(&ctx, r, &mut snapshots).await {
            Ok(run) => run,
            Err(e) => {
                let error = format!("{e:#}");
                tracing::error!("ruleset {}: {error}", r.name);
                RulesetRun::failed(&r.name, error)
            }
        };
        rulesets.push(run);
    }
    // Reports last: they open with what changed in each ruleset and what the guard withheld.
    if !opts.dry_run {
        for ((run, new), &cloud) in clouds.iter_mut().zip(&news).zip(&opts.clouds) {
            catch_up_reports(store, &layout, settings, cloud, new.as_ref(), run).await;
        }
    }
    let mut summary = Summary {
        schema: crate::rules::summary::SCHEMA.into(),
        tagwall: env!("CARGO_PKG_VERSION").into(),
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        forced: opts.force,
        dry_run: opts.dry_run,
        exit_code: 0,
        clouds,
        rulesets,
        error: None,
        site: None,
    };
    summary.exit_code = summary.code();
    if !opts.dry_run {
        write_run_files(store, &layout, &summary).await?;
    }
    Ok(summary)
}

/// Writes `last-run.json`, `last-run.md` and `metrics.prom` for `summary` (a run's, or one
/// `approve` changed).
pub async fn write_run_files(
    store: &Store,
    layout: &Layout,
    summary: &Summary,
) -> anyhow::Result<()> {
    let out = layout.root();
    crate::publish::artifacts::create_dir(out)
        .with_context(|| format!("could not create {}", out.display()))?;
    let mut json = serde_json::to_vec_pretty(summary)?;
    json.push(b'\n');
    write_atomic(&layout.last_run_json(), &json).context("could not write the run summary")?;
    let mut md = Vec::new();
    crate::render::report::run_summary::write(&mut md, summary)?;
    write_atomic(&layout.last_run_md(), &md).context("could not write last-run.md")?;
    let mut newest = BTreeMap::new();
    for s in store.snapshots(None).await? {
        let d = newest.entry(s.cloud.name()).or_insert(s.file_date);
        *d = (*d).max(s.file_date);
    }
    let metrics =
        crate::render::report::metrics::render(summary, &newest, previous_success(out).as_deref());
    write_atomic(&layout.metrics(), metrics.as_bytes()).context("could not write metrics.prom")
}

/// The run summary `sync` last wrote, if any.
pub fn read_run_summary(layout: &Layout) -> anyhow::Result<Option<Summary>> {
    let path = layout.last_run_json();
    match crate::localfs::read_bounded(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a run summary", path.display())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// The last success time recorded in `metrics.prom`, kept across failed runs.
fn previous_success(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join("metrics.prom")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("tagwall_last_success_timestamp_seconds "))
        .map(str::to_string)
}

/// What happened to one cloud, and the snapshot it imported.
fn cloud_run(
    cloud: Cloud,
    fetched: Result<Fetched, crate::fetch::Error>,
) -> (CloudRun, Option<SnapshotInfo>) {
    let name = cloud.name().to_string();
    let f = match fetched {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("{name}: {e}");
            let run = CloudRun {
                cloud: name,
                status: CloudStatus::Failed,
                file_date: None,
                detail: e.to_string(),
                report: None,
                overdue_days: None,
                notice: None,
            };
            return (run, None);
        }
    };
    let detail = crate::fetch::describe(&f);
    f.warn();
    let (status, new) = match &f.outcome {
        Outcome::Imported { info, .. } => (CloudStatus::New, Some(info.clone())),
        Outcome::NotModified(_) => (CloudStatus::Unchanged, None),
        Outcome::AlreadyStored { .. } => (CloudStatus::Stored, None),
        Outcome::Retired => (CloudStatus::Retired, None),
        Outcome::DryRun { .. } => (CloudStatus::DryRun, None),
    };
    let file_date = match &f.discovery {
        crate::fetch::Discovery::Found { date, .. } => Some(date.to_string()),
        crate::fetch::Discovery::Retired { last } => Some(last.to_string()),
    };
    let run = CloudRun {
        cloud: name,
        status,
        file_date,
        detail,
        report: None,
        overdue_days: f.overdue,
        notice: None,
    };
    (run, new)
}

/// Tells once that a cloud became overdue, and once that a file came again: the state is a
/// marker `out/.tagwall/overdue-<cloud>` kept while the cloud is overdue. A failed fetch
/// changes nothing.
fn notice(layout: &Layout, run: &mut CloudRun) {
    if run.status == CloudStatus::Failed {
        return;
    }
    let marker = layout.state().join(format!("overdue-{}", run.cloud));
    let was = marker.is_file();
    let result = match (run.overdue_days, was) {
        (Some(_), false) => {
            crate::publish::artifacts::create_owned_dir(layout.root(), &layout.state())
                .and_then(|()| {
                    write_atomic(&marker, run.file_date.as_deref().unwrap_or("").as_bytes())
                })
                .map(|()| Some(crate::rules::summary::CloudNotice::Overdue))
        }
        (None, true) => std::fs::remove_file(&marker)
            .map(|()| Some(crate::rules::summary::CloudNotice::Arrived)),
        _ => Ok(None),
    };
    match result {
        Ok(notice) => run.notice = notice,
        Err(e) => tracing::warn!("could not keep {}: {e}", marker.display()),
    }
}

/// Writes the cloud's missing reports (the new snapshot's among them) into `run`.
async fn catch_up_reports(
    store: &Store,
    layout: &Layout,
    settings: &Settings<'_>,
    cloud: Cloud,
    new: Option<&SnapshotInfo>,
    run: &mut CloudRun,
) {
    let rulesets: Vec<&Ruleset> = settings
        .rulesets
        .iter()
        .filter(|r| r.cloud == cloud)
        .collect();
    match reports::catch_up(store, layout, cloud, &rulesets).await {
        Ok(written) => {
            for w in &written {
                if new.is_some_and(|n| n.id == w.snapshot_id) {
                    run.report = Some(w.base.display().to_string());
                } else {
                    tracing::info!("wrote the missing report {}", w.base.display());
                }
            }
        }
        Err(e) => {
            tracing::error!("{cloud}: {e:#}");
            run.status = CloudStatus::Failed;
            run.detail = format!("{}; {e:#}", run.detail);
        }
    }
}
