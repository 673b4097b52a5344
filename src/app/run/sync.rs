//! `tagwall sync`, `tagwall approve` and `tagwall daemon`.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::bail;

use chrono::Utc;

use crate::app::cli::{ApprovalsArgs, ApproveArgs, DaemonArgs, SyncArgs};
use crate::app::config::Config;
use crate::core::ranges::Family;
use crate::fetch::{Client, Mirror};
use crate::job::approve::{checked_text, Decider};
use crate::job::schedule::{self, SystemClock};
use crate::job::sync::{self, Options};
use crate::publish::baseline::Published;
use crate::publish::ruleset::Withheld;
use crate::rules::summary::{changes_line, Changes, Summary};
use crate::store::{Approval, Store};

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

/// One sync under the store's run lock; prints one line per cloud and ruleset, then notifies.
/// A run that fails as a whole (no lock, the store unreachable) is notified too.
pub async fn sync(store: &Store, config: &Config, args: &SyncArgs) -> anyhow::Result<u8> {
    let config = run_config(config, args);
    if config.rulesets.is_empty() {
        tracing::warn!(
            "{} defines no [[ruleset]]: sync fetches and reports, but publishes nothing",
            config.source_name()
        );
    }
    let client = client(&config)?;
    let started = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match sync_locked(store, &config, &client, args).await {
        Ok(summary) => {
            print(&summary)?;
            crate::notify::send(&config.notify, &client, &summary).await;
            Ok(summary.exit_code)
        }
        Err(e) => {
            let failed = Summary::failed(started, format!("{e:#}"));
            crate::notify::send(&config.notify, &client, &failed).await;
            Err(e)
        }
    }
}

async fn sync_locked(
    store: &Store,
    config: &Config,
    client: &Client,
    args: &SyncArgs,
) -> anyhow::Result<Summary> {
    let opts = Options {
        clouds: clouds(config, &args.clouds)?,
        force: args.force,
        dry_run: args.dry_run,
        today: today(),
    };
    let wait = args.lock_wait.map_or(config.lock_wait, Duration::from_secs);
    let lock = store.lock_run(wait).await?;
    let summary = sync::run(store, &config.for_sync(), client, &opts).await;
    lock.release().await;
    summary
}

/// The most ranges a sync line lists per family; the counts are always whole.
const SYNC_LISTED: usize = 10;

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
            .map(|(f, c)| {
                format!(
                    "{f}: {} entries, {}",
                    c.entries,
                    Family::from_key(f).amount_text(&c.addresses)
                )
            })
            .collect();
        let changes = if !crate::rules::summary::any_change(&r.changes) {
            String::new()
        } else {
            format!("; {}", changes_line(&r.changes))
        };
        let now = if families.is_empty() {
            String::new()
        } else {
            format!("; now {}", families.join("; "))
        };
        let checked = r
            .checked_text()
            .map(|c| format!("; checked by {c}"))
            .unwrap_or_default();
        let line = format!(
            "ruleset  {:<16} {:<9} {}{changes}{now}{checked}",
            r.ruleset,
            r.status,
            r.snapshot.as_deref().unwrap_or("-"),
        );
        writeln!(out, "{line}")?;
        tracing::info!(target: "tagwall::summary", ruleset = %r.ruleset, status = %r.status, "{line}");
        for reason in &r.reasons {
            writeln!(out, "         why: {reason}")?;
        }
        if r.status.is_withheld() {
            let [show, approve] =
                crate::render::report::rulesets_section::approve_commands(&r.ruleset);
            writeln!(out, "         review: {show}")?;
            writeln!(out, "         publish: {approve}")?;
        }
        for change in &r.would_change {
            writeln!(out, "         would change {change}")?;
        }
        crate::render::report::address_changes::write_text(
            &mut out,
            &r.changes,
            "         ",
            SYNC_LISTED,
            &format!("tagwall diff --ruleset {}", r.ruleset),
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "         error: {e}")?;
        }
        for w in &r.warnings {
            writeln!(out, "         warning: {w}")?;
        }
    }
    Ok(())
}

/// `tagwall approve NAME`: publishes the withheld change of one ruleset, under the run lock,
/// records who approved it, and brings `last-run.*` and `metrics.prom` up to date at once.
pub async fn approve(store: &Store, config: &Config, args: ApproveArgs) -> anyhow::Result<u8> {
    let ruleset = config
        .pick(std::slice::from_ref(&args.ruleset))
        .map_err(anyhow::Error::msg)?[0];
    let decider = Decider::new(&approver(args.by.as_deref())?, &args.comment, FLAGS)?;
    let desk = config.desk();
    if args.show {
        let review = desk.review(store, ruleset).await?;
        show(&review.marker, &review.published, &review.changes)?;
        return Ok(EXIT_OK);
    }
    let wait = args.lock_wait.map_or(config.lock_wait, Duration::from_secs);
    let approved = desk
        .approve(store, ruleset, decider, args.allow_empty, wait)
        .await?;
    // The publish is done: a closed stdout must not turn it into a failure.
    let _ = writeln!(std::io::stdout(), "{}", approved.line);
    Ok(EXIT_OK)
}

/// Where `approve` and `reject` take who decides and why.
pub(super) const FLAGS: (&str, &str) = ("--by", "--comment");

/// `approve --show`: what the change would do, entry by entry, with each entry's tags.
fn show(marker: &Withheld, published: &Published, changes: &Changes) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "withheld: {} for {}", marker.ruleset, marker.snapshot)?;
    for r in &marker.reasons {
        writeln!(out, "why: {}", crate::core::text::terminal(r))?;
    }
    if let Published::Damaged(why) = published {
        writeln!(
            out,
            "published: damaged ({}); every entry below would be written",
            crate::core::text::terminal(why)
        )?;
    }
    writeln!(out, "{}", changes_line(changes))?;
    crate::render::report::address_changes::write_text(&mut out, changes, "", usize::MAX, "")?;
    writeln!(out, "firewall entries:")?;
    for (mark, pick) in [("+", true), ("-", false)] {
        for delta in changes.values() {
            for c in if pick { &delta.added } else { &delta.removed } {
                let tags: Vec<String> = c
                    .tags
                    .iter()
                    .map(|t| crate::core::text::terminal(t))
                    .collect();
                writeln!(out, "  {mark} {} {}", c.cidr, tags.join(", "))?;
            }
        }
    }
    Ok(())
}

/// The approver: `--by`, else `$SUDO_USER`, `$USER` or `$LOGNAME`, else the user id.
pub(super) fn approver(by: Option<&str>) -> anyhow::Result<String> {
    if let Some(by) = by {
        if by.trim().is_empty() {
            bail!("--by is empty: name who approves");
        }
        return Ok(by.to_string());
    }
    let name = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw()));
    checked_text("$USER", &name)
}

/// `tagwall approvals`: every approval and rejection, oldest first.
pub async fn approvals(store: &Store, args: ApprovalsArgs) -> anyhow::Result<u8> {
    let all = store.approvals().await?;
    let all: Vec<&Approval> = all
        .iter()
        .filter(|a| args.ruleset.as_ref().is_none_or(|r| *r == a.ruleset))
        .collect();
    let mut out = io::stdout().lock();
    if args.json {
        for a in all {
            serde_json::to_writer(&mut out, a)?;
            writeln!(out)?;
        }
        return Ok(EXIT_OK);
    }
    if all.is_empty() {
        writeln!(out, "no approvals or rejections recorded")?;
        return Ok(EXIT_OK);
    }
    for a in all {
        writeln!(
            out,
            "{}  {:<8}  {}  {}  by {}{}",
            a.approved_at,
            a.decision.name(),
            a.ruleset,
            a.snapshot,
            crate::core::text::terminal(&a.approved_by),
            if a.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::core::text::terminal(&a.comment))
            }
        )?;
        for r in &a.reasons {
            writeln!(out, "    why withheld: {}", crate::core::text::terminal(r))?;
        }
    }
    Ok(EXIT_OK)
}

/// `tagwall daemon`: sync on the schedule until SIGTERM/SIGINT.
pub async fn daemon(store: &Store, config: &Config, args: DaemonArgs) -> anyhow::Result<u8> {
    let schedule = &config.schedule;
    // One signal stops both the schedule and, with --serve, the server.
    let signal = super::shutdown()?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let server = match args.serve.as_deref() {
        None => None,
        Some(addr) => {
            let listen = crate::serve::settings::parse_listen(addr)
                .map_err(|e| anyhow::anyhow!("--serve: {e}"))?;
            Some(super::serve::prepare(config, listen).await?)
        }
    };
    tracing::info!("daemon started: schedule {:?} (UTC)", schedule.cron.text());
    let sync_args = args.sync.clone();
    let jobs = schedule::run(
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
        super::serve::stopped(stopping.clone()),
    );
    match server {
        None => {
            jobs.await;
        }
        Some(server) => {
            let (_, served) = tokio::join!(jobs, server.run(super::serve::stopped(stopping)));
            served?;
        }
    }
    Ok(EXIT_OK)
}
