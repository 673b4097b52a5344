//! One ruleset in a sync run: build it from the newest snapshot, compare it with what is
//! published (read back from its directory, never trusted from a snapshot id), and publish it
//! through the one publish path — or withhold it, with a marker `approve` can act on.

use std::collections::{BTreeMap, HashSet};

use ipnet::IpNet;

use super::Options;
use crate::core::model::{Snapshot, SnapshotInfo};
use crate::core::ranges::{AddrSet, Family};
use crate::job::emit::Snapshots;
use crate::publish::artifacts::DirOutcome;
use crate::publish::baseline::{self, Baseline, Published};
use crate::publish::ruleset::{publish, write_withheld, Withheld};
use crate::publish::Layout;
use crate::rules::allowlist::Allowlist;
use crate::rules::changes as delta;
use crate::rules::grace::Retained;
use crate::rules::guard::{self, Limits, Reason, Side};
use crate::rules::ruleset::Ruleset;
use crate::rules::summary::{changes_of, Changes, FamilyCounts, RulesetRun, RulesetStatus};

/// What every ruleset of a run shares.
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a crate::store::Store,
    /// What the run reads of the settings.
    pub settings: &'a super::Settings<'a>,
    /// The output directory.
    pub layout: &'a Layout,
    /// The run's options.
    pub opts: &'a Options,
}

/// The guard's verdict on one change.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Why to withhold; empty when the change is safe.
    pub reasons: Vec<String>,
    /// What the change does, per family, for people.
    pub would_change: Vec<String>,
}

/// Builds, checks and publishes (or withholds) one ruleset.
pub async fn run(
    ctx: &Ctx<'_>,
    ruleset: &Ruleset,
    snapshots: &mut Snapshots<'_>,
) -> anyhow::Result<RulesetRun> {
    if !ctx.opts.dry_run {
        // A killed run's publish is applied before anything else is judged.
        crate::publish::applying::finish_interrupted(ctx.layout, ctx.store, ruleset).await?;
    }
    let (info, snapshot) = snapshots.get(ruleset.cloud).await?;
    let published = baseline::read(&ctx.layout.ruleset(&ruleset.name), &ruleset.name);
    let kept = ctx.store.retained(ruleset, snapshot, info).await?;
    let (after, missing) = build(ruleset, snapshot, info, &published, &kept)?;
    let seen = last_seen(ctx.store, ruleset, &published, &missing, snapshot).await;
    let verdict = check(
        &limits(ctx.settings, ruleset),
        &published,
        &after,
        snapshot,
        &missing,
        &seen,
    );
    let changes = changes_since(ctx.store, ruleset, &published, &after).await;
    if !verdict.reasons.is_empty() && !ctx.opts.force {
        if ctx.store.rejected(&ruleset.name, info.id).await? {
            return Ok(rejected(ruleset, info, &published, verdict, changes));
        }
        return withhold(ctx, ruleset, info, &published, verdict, changes);
    }
    if !verdict.reasons.is_empty() {
        tracing::warn!(
            "ruleset {}: published with --force despite: {}",
            ruleset.name,
            verdict.reasons.join("; ")
        );
    }
    let mut run = RulesetRun {
        ruleset: ruleset.name.clone(),
        status: RulesetStatus::WouldPublish,
        snapshot: Some(label(info)),
        families: counts(&after),
        reasons: verdict.reasons,
        would_change: Vec::new(),
        warnings: after.warnings.clone(),
        error: None,
        approved_by: None,
        approved_at: None,
        approval_comment: None,
        already_notified: false,
        changes,
        validated_by: Vec::new(),
        validation_note: None,
    };
    if !ctx.opts.dry_run {
        let done = publish(ctx.layout, Some(ctx.store), &after, ctx.settings.validate).await?;
        run.status = match done.outcome {
            DirOutcome::Written => RulesetStatus::Published,
            DirOutcome::Unchanged => RulesetStatus::Unchanged,
        };
        run.validated_by = done.checked.validated_by();
        run.validation_note = done.checked.note();
    }
    Ok(run)
}

/// "Public 2025-07-14 (id:3)".
pub fn label(info: &SnapshotInfo) -> String {
    match info.id {
        // A dry run's file, read but not stored.
        0 => format!("{} {} (not stored)", info.cloud, info.file_date),
        id => format!("{} {} (id:{id})", info.cloud, info.file_date),
    }
}

/// The guard's limits for `ruleset`.
pub fn limits(settings: &super::Settings<'_>, ruleset: &Ruleset) -> Limits {
    Limits {
        max_removed_percent: ruleset
            .max_removed_percent
            .unwrap_or(settings.guard.max_removed_percent),
        ..settings.guard
    }
}

/// The allowlist of `ruleset` at `snapshot`. Once something is published, a `tags` entry that
/// matches nothing no longer fails the build: the entry is returned, for the guard to withhold
/// (a tag gone from Microsoft's file) and a person to approve. Before the first publish it is
/// an error, most likely a misspelling.
pub fn build<'r>(
    ruleset: &'r Ruleset,
    snapshot: &Snapshot,
    info: &SnapshotInfo,
    published: &Published,
    kept: &Retained,
) -> anyhow::Result<(Allowlist<'r>, Vec<String>)> {
    Ok(match published {
        Published::Nothing => (Allowlist::build(ruleset, snapshot, info, kept)?, Vec::new()),
        _ => Allowlist::build_without_missing(ruleset, snapshot, info, kept)?,
    })
}

/// For each selected tag that is gone (a `tags` entry that matches nothing, a published tag
/// no longer in the file), the file date of the newest stored snapshot that held it.
pub async fn last_seen(
    store: &crate::store::Store,
    ruleset: &Ruleset,
    published: &Published,
    missing: &[String],
    snapshot: &Snapshot,
) -> BTreeMap<String, chrono::NaiveDate> {
    let present: HashSet<&str> = snapshot.tags.iter().map(|t| t.name.as_str()).collect();
    let mut gone: Vec<&str> = missing.iter().map(String::as_str).collect();
    if let Published::Valid(b) = published {
        gone.extend(
            b.manifest
                .tags
                .iter()
                .map(String::as_str)
                .filter(|t| !present.contains(t)),
        );
    }
    let mut seen = BTreeMap::new();
    for name in gone {
        if let Ok(Some(date)) = store.tag_last_seen(ruleset.cloud, name).await {
            seen.insert(name.to_string(), date);
        }
    }
    seen
}

/// "the selected tag X is not in AzureGovernment 2026-05-04 (last seen 2026-03-23)".
fn gone_reason(tag: &str, after: &Allowlist, seen: &BTreeMap<String, chrono::NaiveDate>) -> String {
    let last = seen
        .get(tag)
        .map(|d| format!(" (last seen {d})"))
        .unwrap_or_default();
    format!(
        "the selected tag {} is not in {} {}{last}",
        crate::core::text::quoted(tag, 64).trim_matches('"'),
        after.snapshot.cloud,
        after.snapshot.file_date
    )
}

/// Every reason to withhold `after` given what is `published`; `seen` dates the tags that are
/// gone ([`last_seen`]).
pub fn check(
    limits: &Limits,
    published: &Published,
    after: &Allowlist,
    snapshot: &Snapshot,
    missing: &[String],
    seen: &BTreeMap<String, chrono::NaiveDate>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut found = Vec::new();
    match published {
        Published::Nothing => {}
        Published::Damaged(why) => verdict.reasons.push(format!(
            "the published directory cannot be compared with: {why}"
        )),
        Published::Valid(b) => {
            let present: HashSet<&str> = snapshot.tags.iter().map(|t| t.name.as_str()).collect();
            found = guard::check(limits, &baseline_side(b), &side(after), &|t| {
                present.contains(t)
            });
            verdict.would_change = would_change(b, after);
        }
    }
    // Entries already published without (approved or forced) stay out, with their warning: a
    // tag that vanished was decided then, whatever the grace period still keeps of it.
    let accepted: &[String] = match published {
        Published::Valid(b) => &b.manifest.tags_missing,
        _ => &[],
    };
    found.retain(|r| !matches!(r, Reason::TagVanished { tag } if accepted.contains(tag)));
    for m in missing.iter().filter(|m| !accepted.contains(m)) {
        let named = found
            .iter()
            .any(|r| matches!(r, Reason::TagVanished { tag } if tag == m));
        if !named {
            verdict.reasons.push(gone_reason(m, after, seen));
        }
    }
    // An entry published already (approved, or forced) was decided: only new ones are judged.
    let decided: HashSet<&IpNet> = match published {
        Published::Valid(b) => b.entries.iter().collect(),
        _ => HashSet::new(),
    };
    found.extend(guard::too_wide(
        limits,
        nets(after).filter(|n| !decided.contains(n)),
    ));
    verdict.reasons.extend(found.iter().map(|r| match r {
        Reason::TagVanished { tag } => gone_reason(tag, after, seen),
        other => other.to_string(),
    }));
    verdict
}

fn nets<'a>(a: &'a Allowlist) -> impl Iterator<Item = &'a IpNet> {
    a.sets.iter().flat_map(|s| s.entries.iter().map(|e| &e.net))
}

fn side(a: &Allowlist) -> Side {
    Side {
        sets: AddrSet::of_all(nets(a)),
        tags: a.tags.iter().map(|t| t.name.clone()).collect(),
        cloud_prefixes: a.snapshot.prefixes,
    }
}

fn baseline_side(b: &Baseline) -> Side {
    Side {
        sets: AddrSet::of_all(&b.entries),
        tags: b.manifest.tags.clone(),
        // Manifests before 0.2 do not record it: no truncation check against them.
        cloud_prefixes: b.manifest.snapshot.prefixes.unwrap_or(0),
    }
}

/// "IPv4: 1833 → 1840 entries, 46929494 → 46931000 addresses", per family of the ruleset.
fn would_change(b: &Baseline, after: &Allowlist) -> Vec<String> {
    let before = baseline_counts(b);
    after
        .sets
        .iter()
        .map(|a| {
            let (entries, addresses) = before
                .get(a.family.key())
                .map_or((0, "0".to_string()), |c| (c.entries, c.addresses.clone()));
            format!(
                "{}: {entries} → {} entries, {} → {}",
                a.family.label(),
                a.entries.len(),
                a.family.amount_text(&addresses),
                a.family.amount(a.covered())
            )
        })
        .collect()
}

/// Entries and addresses per family of the published entries.
fn baseline_counts(b: &Baseline) -> BTreeMap<String, FamilyCounts> {
    let (v4, v6) = AddrSet::of_all(&b.entries);
    [(Family::V4, v4), (Family::V6, v6)]
        .into_iter()
        .filter(|(f, _)| b.manifest.family(*f).is_some())
        .map(|(f, set)| {
            let entries = b.entries.iter().filter(|e| Family::of(e) == f).count();
            (
                f.key().to_string(),
                FamilyCounts {
                    entries,
                    addresses: set.count().to_string(),
                },
            )
        })
        .collect()
}

/// Entries and addresses per family of an allowlist.
pub fn counts(a: &Allowlist) -> BTreeMap<String, FamilyCounts> {
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

/// A change someone rejected (`tagwall reject`): the published files stay, no marker, and the
/// run says so without withholding it again; a later file is judged afresh.
fn rejected(
    ruleset: &Ruleset,
    info: &SnapshotInfo,
    published: &Published,
    verdict: Verdict,
    changes: Changes,
) -> RulesetRun {
    tracing::info!(
        "ruleset {}: the change of {} was rejected; the published files stay",
        ruleset.name,
        label(info)
    );
    let mut run = RulesetRun::failed(&ruleset.name, String::new());
    run.error = None;
    run.status = RulesetStatus::Rejected;
    if let Published::Valid(b) = published {
        run.snapshot = Some(b.manifest.snapshot_label());
        run.families = baseline_counts(b);
        run.warnings = b.manifest.warnings.clone();
    }
    run.reasons = verdict.reasons;
    run.changes = changes;
    run
}

/// Holds the change back: the published files stay, a marker records the change for
/// `tagwall approve`, and the run reports what is still published.
fn withhold(
    ctx: &Ctx<'_>,
    ruleset: &Ruleset,
    info: &SnapshotInfo,
    published: &Published,
    verdict: Verdict,
    changes: Changes,
) -> anyhow::Result<RulesetRun> {
    let name = &ruleset.name;
    tracing::warn!(
        "ruleset {name}: withheld {}: {}; the previous files stay in {}; publish with `tagwall approve {name}` or `tagwall sync --force`",
        label(info),
        verdict.reasons.join("; "),
        ctx.layout.ruleset(name).display(),
    );
    let (already_notified, notified_at) = reminder(ctx, name, info);
    if !ctx.opts.dry_run {
        write_withheld(
            ctx.layout,
            &Withheld {
                ruleset: name.clone(),
                snapshot_id: info.id,
                content_sha256: Some(info.content_sha256.clone()),
                snapshot: label(info),
                reasons: verdict.reasons.clone(),
                notified_at,
            },
        )?;
    }
    let baseline = match published {
        Published::Valid(b) => Some(b),
        _ => None,
    };
    Ok(RulesetRun {
        ruleset: name.clone(),
        status: if ctx.opts.dry_run {
            RulesetStatus::WouldWithhold
        } else {
            RulesetStatus::Withheld
        },
        snapshot: baseline.map(|b| b.manifest.snapshot_label()),
        families: baseline.map(|b| baseline_counts(b)).unwrap_or_default(),
        reasons: verdict.reasons,
        would_change: verdict.would_change,
        warnings: baseline
            .map(|b| b.manifest.warnings.clone())
            .unwrap_or_default(),
        error: None,
        approved_by: None,
        approved_at: None,
        approval_comment: None,
        already_notified,
        changes,
        validated_by: Vec::new(),
        validation_note: None,
    })
}

/// Whether the same withheld change was notified less than `[notify] remind_days` ago (then
/// this run does not notify it again), and when it was last notified after this run.
fn reminder(ctx: &Ctx<'_>, name: &str, info: &SnapshotInfo) -> (bool, Option<String>) {
    let now = chrono::Utc::now();
    let stamp = || Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let Ok(Some(previous)) = crate::publish::ruleset::read_withheld(ctx.layout, name) else {
        return (false, stamp());
    };
    let same = previous.snapshot_id == info.id
        && previous.content_sha256.as_deref() == Some(info.content_sha256.as_str());
    let last = previous
        .notified_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let days = chrono::Duration::days(i64::from(ctx.settings.remind_days));
    match last {
        Some(last) if same && now.signed_duration_since(last) < days => {
            (true, previous.notified_at)
        }
        _ => (false, stamp()),
    }
}

/// What `after` changes in the published list: against the published snapshot rebuilt (the
/// same entries `diff --ruleset` gives) when the store still holds it and the rebuilt list is
/// exactly what is published, else against the published entries themselves (removed entries
/// then carry no tags). Before a first publish, every entry is added.
pub async fn changes_since(
    store: &crate::store::Store,
    ruleset: &Ruleset,
    published: &Published,
    after: &Allowlist<'_>,
) -> Changes {
    let Published::Valid(b) = published else {
        return changes_of(&delta::changes_from_entries(&[], after));
    };
    // The usual day: exactly this list is published already, and nothing needs reading.
    let digest = crate::rules::manifest::entries_digest(nets(after));
    if b.manifest.entries_sha256.as_deref() == Some(digest.as_str()) {
        return changes_of(&delta::changes(after, after));
    }
    if let Some(before) = rebuild(store, ruleset, b).await {
        return changes_of(&delta::changes(&before, after));
    }
    changes_of(&delta::changes_from_entries(&b.entries, after))
}

/// The published list rebuilt from the store, when that gives exactly the published entries.
async fn rebuild<'r>(
    store: &crate::store::Store,
    ruleset: &'r Ruleset,
    b: &Baseline,
) -> Option<Allowlist<'r>> {
    let s = &b.manifest.snapshot;
    let info = store
        .resolve(ruleset.cloud, &crate::core::snapref::SnapRef::Id(s.id))
        .await
        .ok()?;
    if info.content_sha256 != s.content_sha256 {
        return None;
    }
    let snapshot = store.snapshot(&info).await.ok()?;
    let kept = store.retained(ruleset, &snapshot, &info).await.ok()?;
    let (before, _) = Allowlist::build_without_missing(ruleset, &snapshot, &info, &kept).ok()?;
    let digest = crate::rules::manifest::entries_digest(nets(&before));
    (b.manifest.entries_sha256.as_deref() == Some(digest.as_str())).then_some(before)
}
