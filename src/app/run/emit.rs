//! `tagwall emit`: each ruleset's files, built from a stored snapshot. Into the settings'
//! output directory — what `sync` publishes, `serve` serves and the firewalls load — it goes
//! through the same guard as `sync` (withheld → exit 3, then `approve` or `reject`), unless
//! `--force`, which is recorded with the approvals; `--out DIR` elsewhere writes without it.

use std::io::{self, Write};

use anyhow::bail;
use chrono::Utc;

use super::{EXIT_FAILURE, EXIT_OK};
use crate::app::cli::EmitArgs;
use crate::app::config::Config;
use crate::core::snapref::SnapRef;
use crate::job::emit::{emit_one, Snapshots};
use crate::job::sync::{self, Options};
use crate::publish::artifacts::DirOutcome;
use crate::publish::Layout;
use crate::rules::ruleset::Ruleset;
use crate::rules::summary::{changes_line, RulesetRun, RulesetStatus, EXIT_WITHHELD};
use crate::store::{Approval, Store};

/// Whether two paths name the same directory (as written, or once resolved).
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

pub(super) async fn emit(store: &Store, config: &Config, args: EmitArgs) -> anyhow::Result<u8> {
    let rulesets = config.pick(&args.rulesets).map_err(anyhow::Error::msg)?;
    if rulesets.is_empty() {
        bail!(
            "{} defines no [[ruleset]]: add one (see `tagwall config example`)",
            config.source_name()
        );
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| config.output_dir.clone());
    // Only the settings' output directory is published (guarded, recorded for `serve`).
    let guarded = same_dir(&out_dir, &config.output_dir);
    if !guarded && (args.force || args.by.is_some()) {
        bail!("--force and --by apply to the settings' output directory, where the guard reads what is published: --out {} is written without the guard", out_dir.display());
    }
    let by = match (guarded && args.force).then(|| super::sync::approver(args.by.as_deref())) {
        Some(by) => Some(by?),
        None => None,
    };
    // One writer of the output directory at a time: emit takes turns with sync, approve and
    // the daemon.
    let lock = store.lock_run(config.lock_wait).await?;
    let result = if guarded {
        emit_guarded(store, config, &rulesets, &args, by).await
    } else {
        emit_elsewhere(store, config, &rulesets, args.at, &out_dir).await
    };
    lock.release().await;
    result
}

/// Into the published directory: each ruleset as one `sync` would handle it.
async fn emit_guarded(
    store: &Store,
    config: &Config,
    rulesets: &[&Ruleset],
    args: &EmitArgs,
    by: Option<String>,
) -> anyhow::Result<u8> {
    let layout = Layout::new(&config.output_dir);
    let opts = Options {
        clouds: Vec::new(),
        force: args.force,
        dry_run: false,
        today: super::fetch::today(),
    };
    let settings = config.for_sync();
    let ctx = sync::ruleset::Ctx {
        store,
        settings: &settings,
        layout: &layout,
        opts: &opts,
    };
    let mut snapshots = Snapshots::new(store, args.at);
    let mut out = io::stdout().lock();
    let (mut failed, mut withheld) = (0, 0);
    for ruleset in rulesets {
        let run = match sync::ruleset::run(&ctx, ruleset, &mut snapshots).await {
            Ok(run) => run,
            Err(e) => {
                failed += 1;
                writeln!(out, "failed    ruleset {}: {e:#}", ruleset.name)?;
                continue;
            }
        };
        if run.status == RulesetStatus::Withheld {
            withheld += 1;
        }
        if let (Some(by), false) = (&by, run.reasons.is_empty()) {
            if run.status != RulesetStatus::Withheld {
                record_forced(store, &mut snapshots, ruleset, &run, by).await?;
            }
        }
        print(&mut out, &layout, &run)?;
    }
    Ok(if failed > 0 {
        EXIT_FAILURE
    } else if withheld > 0 {
        EXIT_WITHHELD
    } else {
        EXIT_OK
    })
}

/// A forced emit over the guard's reasons, recorded like an approval.
async fn record_forced(
    store: &Store,
    snapshots: &mut Snapshots<'_>,
    ruleset: &Ruleset,
    run: &RulesetRun,
    by: &str,
) -> anyhow::Result<()> {
    let (info, _) = snapshots.get(ruleset.cloud).await?;
    store
        .record_approval(&Approval {
            decision: crate::store::Decision::Approved,
            ruleset: ruleset.name.clone(),
            snapshot: run.snapshot.clone().unwrap_or_default(),
            snapshot_id: info.id,
            approved_by: by.to_string(),
            comment: "tagwall emit --force".into(),
            reasons: run.reasons.clone(),
            approved_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .await?;
    tracing::warn!(
        "ruleset {}: published by emit --force despite: {} (recorded as approved by {by})",
        ruleset.name,
        run.reasons.join("; ")
    );
    Ok(())
}

/// One line per ruleset, and for a withheld one why and the commands that decide it.
fn print(out: &mut impl Write, layout: &Layout, run: &RulesetRun) -> io::Result<()> {
    let dir = layout.ruleset(&run.ruleset);
    let what = match run.status {
        RulesetStatus::Published => "wrote    ",
        RulesetStatus::Unchanged => "unchanged",
        RulesetStatus::Withheld => "withheld ",
        _ => "failed   ",
    };
    let mut line = format!(
        "{what} {}: {}",
        dir.display(),
        run.snapshot.as_deref().unwrap_or("-")
    );
    for (key, counts) in &run.families {
        let family = crate::core::ranges::Family::from_key(key);
        line.push_str(&format!(
            "; {}: {} entries, {}",
            family.label(),
            counts.entries,
            family.amount_text(&counts.addresses)
        ));
    }
    if crate::rules::summary::any_change(&run.changes) {
        line.push_str(&format!("; change: {}", changes_line(&run.changes)));
    }
    if let Some(checked) = run.checked_text() {
        line.push_str(&format!("; checked by {checked}"));
    }
    writeln!(out, "{line}")?;
    for reason in &run.reasons {
        writeln!(
            out,
            "          why: {}",
            crate::core::text::terminal(reason)
        )?;
    }
    if run.status == RulesetStatus::Withheld {
        let [show, approve] =
            crate::render::report::rulesets_section::approve_commands(&run.ruleset);
        writeln!(out, "          the published files stay; review: {show}")?;
        writeln!(
            out,
            "          publish: {approve}   (or: tagwall emit --force)"
        )?;
    }
    for w in &run.warnings {
        tracing::warn!("ruleset {}: {w}", run.ruleset);
    }
    Ok(())
}

/// Into another directory (`--out`): no guard, nothing recorded.
async fn emit_elsewhere(
    store: &Store,
    config: &Config,
    rulesets: &[&Ruleset],
    at: SnapRef,
    out_dir: &std::path::Path,
) -> anyhow::Result<u8> {
    let mut snapshots = Snapshots::new(store, at);
    let mut out = io::stdout().lock();
    let mut failed = 0;
    for ruleset in rulesets {
        match emit_one(&mut snapshots, ruleset, out_dir, config.validate).await {
            Ok(e) => {
                let what = match e.outcome {
                    DirOutcome::Written => "wrote    ",
                    DirOutcome::Unchanged => "unchanged",
                };
                writeln!(
                    out,
                    "{what} {}: {} {} (id:{}); {}; checked by {}",
                    e.dir.display(),
                    e.snapshot.cloud,
                    e.snapshot.file_date,
                    e.snapshot.id,
                    e.families.join("; "),
                    e.checked.describe()
                )?;
                for w in &e.warnings {
                    tracing::warn!("ruleset {}: {w}", e.ruleset);
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "failed    ruleset {}: {e:#}", ruleset.name)?;
            }
        }
    }
    Ok(if failed > 0 { EXIT_FAILURE } else { EXIT_OK })
}
