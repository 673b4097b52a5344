//! `tagwall sync`, `tagwall approve` and `tagwall daemon`.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::{ApproveArgs, DaemonArgs, SyncArgs};
use crate::config::Config;
use crate::emit::{emit_one, Snapshots};
use crate::fetch::{Client, Mirror};
use crate::schedule::{self, SystemClock};
use crate::store::{SnapRef, Store};
use crate::sync::{self, withheld_path, Options, Summary, Withheld};

use super::fetch::{client, clouds, today};
use super::EXIT_OK;

/// The settings of one run: `--source` replaces the mirror.
fn run_config(config: &Config, args: &SyncArgs) -> Config {
    let mut config = config.clone();
    if let Some(dir) = &args.source {
        config.fetch.mirror = Some(Mirror::Dir(dir.clone()));
    }
    config
}

/// One sync under the store's run lock; prints one line per cloud and ruleset.
pub async fn sync(store: &Store, config: &Config, args: &SyncArgs) -> anyhow::Result<u8> {
    let config = run_config(config, args);
    if config.rulesets.is_empty() {
        tracing::warn!(
            "{} defines no [[ruleset]]: sync fetches and reports, but publishes nothing",
            config.source_name()
        );
    }
    let client = client(&config)?;
    let opts = Options {
        clouds: clouds(&config, &args.clouds)?,
        force: args.force,
        dry_run: args.dry_run,
        today: today(),
    };
    let wait = args.lock_wait.map_or(config.lock_wait, Duration::from_secs);
    let lock = store.lock_run(wait).await?;
    let summary = sync::run(store, &config, &client, &opts).await;
    lock.release().await;
    let summary = summary?;
    print(&summary)?;
    notify(&config, &client, &summary).await;
    Ok(summary.exit_code)
}

fn print(summary: &Summary) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for c in &summary.clouds {
        writeln!(out, "cloud    {:<16} {:<9} {}", c.cloud, c.status, c.detail)?;
        if let Some(r) = &c.report {
            writeln!(out, "         report {r}.md, .json, .html")?;
        }
    }
    for r in &summary.rulesets {
        let families: Vec<String> = r
            .families
            .iter()
            .map(|(f, c)| format!("{f}: {} entries, {} addresses", c.entries, c.addresses))
            .collect();
        let line = format!(
            "ruleset  {:<16} {:<9} {}{}",
            r.ruleset,
            r.status,
            r.snapshot.as_deref().unwrap_or("-"),
            if families.is_empty() {
                String::new()
            } else {
                format!("; {}", families.join("; "))
            }
        );
        writeln!(out, "{line}")?;
        tracing::info!(target: "tagwall::summary", ruleset = %r.ruleset, status = %r.status, "{line}");
        for reason in &r.reasons {
            writeln!(out, "         why: {reason}")?;
        }
        for change in &r.would_change {
            writeln!(out, "         would change {change}")?;
        }
        if let Some(e) = &r.error {
            writeln!(out, "         error: {e}")?;
        }
        for w in &r.warnings {
            writeln!(out, "         warning: {w}")?;
        }
    }
    Ok(())
}

/// Posts the summary to `[notify] webhook_url`; a failure is logged, never fatal.
async fn notify(config: &Config, client: &Client, summary: &Summary) {
    let Some(hook) = &config.webhook else { return };
    let body = match serde_json::to_vec(summary) {
        Ok(b) => b,
        Err(e) => return tracing::error!("could not encode the run summary: {e}"),
    };
    match client.post_json(&hook.0, body).await {
        Ok(()) => tracing::info!("posted the run summary to {}", hook.redacted()),
        // The URL may hold a token: only its host is named.
        Err(e) => tracing::error!(
            "could not post the run summary to {}: {}",
            hook.redacted(),
            e.to_string().replace(&hook.0, &hook.redacted())
        ),
    }
}

/// `tagwall approve NAME`: publishes the withheld change of one ruleset.
pub async fn approve(store: &Store, config: &Config, args: ApproveArgs) -> anyhow::Result<u8> {
    let ruleset = config
        .pick(std::slice::from_ref(&args.ruleset))
        .map_err(anyhow::Error::msg)?[0];
    let out = &config.output_dir;
    let marker = withheld_path(out, &ruleset.name);
    let text = match std::fs::read(&marker) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!(
                "ruleset {} has no withheld change to approve ({} does not exist)",
                ruleset.name,
                marker.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("could not read {}", marker.display())),
    };
    let withheld: Withheld = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a withheld-change record", marker.display()))?;
    let lock = store.lock_run(config.lock_wait).await?;
    let mut snapshots = Snapshots::new(store, SnapRef::Id(withheld.snapshot_id));
    let emitted = emit_one(&mut snapshots, ruleset, out, config.validate).await;
    let result = match emitted {
        Ok(e) => {
            std::fs::remove_file(&marker)
                .with_context(|| format!("could not remove {}", marker.display()))?;
            // The publish is done: a closed stdout must not turn it into a failure.
            let _ = writeln!(
                std::io::stdout(),
                "approved {}: published {} ({}); {}",
                ruleset.name,
                withheld.snapshot,
                withheld.reasons.join("; "),
                e.families.join("; ")
            );
            Ok(EXIT_OK)
        }
        Err(e) => Err(e),
    };
    lock.release().await;
    result
}

/// `tagwall daemon`: sync on the schedule until SIGTERM/SIGINT.
pub async fn daemon(store: &Store, config: &Config, args: DaemonArgs) -> anyhow::Result<u8> {
    let schedule = &config.schedule;
    tracing::info!("daemon started: schedule {:?} (UTC)", schedule.cron.text());
    let stop = shutdown()?;
    let sync_args = args.sync.clone();
    schedule::run(
        &schedule.cron,
        schedule.random_delay,
        args.run_now,
        &SystemClock,
        || {
            let sync_args = sync_args.clone();
            async move {
                match sync(store, config, &sync_args).await {
                    Ok(code) => tracing::info!("sync finished with exit code {code}"),
                    Err(e) => tracing::error!("sync failed: {e:#}"),
                }
            }
        },
        stop,
    )
    .await;
    Ok(EXIT_OK)
}

/// Completes on SIGTERM or SIGINT. Registered before the first run, so a signal during a run is
/// kept and ends the daemon once that run has finished.
fn shutdown() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
