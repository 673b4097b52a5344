//! Deciding a withheld change: approve it (publish it) or reject it (keep what is published).
//! One path for `tagwall approve` / `tagwall reject` and the review site of `tagwall serve`:
//! under the store's run lock, through the one publish path, recorded in the store with who
//! decided and why, and told to every `[notify]` channel.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use chrono::Utc;

use crate::core::model::SnapshotInfo;
use crate::fetch::settings::FetchSettings;
use crate::fetch::Client;
use crate::publish::baseline::{self, Published};
use crate::publish::ruleset::{publish, read_withheld, Withheld};
use crate::publish::validate::{Checked, Validate};
use crate::publish::Layout;
use crate::rules::allowlist::Allowlist;
use crate::rules::guard::Limits;
use crate::rules::ruleset::Ruleset;
use crate::rules::summary::{Changes, RulesetRun, RulesetStatus, Summary};
use crate::store::{Approval, Decision, SnapRef, Store};

use super::sync;

/// What deciding reads of the settings, owned: the server keeps it for its whole life.
#[derive(Debug, Clone)]
pub struct Desk {
    /// Where rulesets are written (`[output] dir`).
    pub output_dir: PathBuf,
    /// Whether the firewall tools check files before they are published.
    pub validate: Validate,
    /// The rulesets, in file order.
    pub rulesets: Vec<Ruleset>,
    /// How files are fetched (the notifications' client).
    pub fetch: FetchSettings,
    /// The guard's default limits.
    pub guard: Limits,
    /// Where decisions are told.
    pub notify: crate::notify::settings::Settings,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
}

/// Who decides and why: checked text, recorded in the store.
#[derive(Debug, Clone)]
pub struct Decider {
    /// Who: at most 500 bytes, no control characters, not empty.
    pub by: String,
    /// Why: at most 500 bytes, no control characters.
    pub comment: String,
}

impl Decider {
    /// `by` and `comment` checked; `what` names where each came from in errors
    /// (`("--by", "--comment")`).
    pub fn new(by: &str, comment: &str, what: (&str, &str)) -> anyhow::Result<Decider> {
        if by.trim().is_empty() {
            bail!("{} is empty: name who decides", what.0);
        }
        Ok(Decider {
            by: checked_text(what.0, by)?,
            comment: checked_text(what.1, comment)?,
        })
    }
}

impl Decider {
    /// What the store records of this decision on the change `marker` names (snapshot `id`).
    fn record(self, decision: Decision, marker: &Withheld, id: i64) -> Approval {
        Approval {
            decision,
            ruleset: marker.ruleset.clone(),
            snapshot: marker.snapshot.clone(),
            snapshot_id: id,
            approved_by: self.by,
            comment: self.comment,
            reasons: marker.reasons.clone(),
            approved_at: now(),
        }
    }
}

/// Text recorded in the store and shown in reports: at most 500 bytes, no control characters.
pub fn checked_text(flag: &str, text: &str) -> anyhow::Result<String> {
    const MAX: usize = 500;
    if text.len() > MAX {
        bail!("{flag} is {} bytes: use at most {MAX}", text.len());
    }
    if text.chars().any(char::is_control) {
        bail!(
            "{flag} {} holds control characters: use plain text",
            crate::core::text::quoted(text, 64)
        );
    }
    Ok(text.to_string())
}

/// A withheld change as it would be published now.
#[derive(Debug)]
pub struct Review {
    /// The withheld marker: the snapshot and the guard's reasons.
    pub marker: Withheld,
    /// The snapshot it is built from.
    pub info: SnapshotInfo,
    /// What is published now.
    pub published: Published,
    /// What publishing it would change, per family, entry by entry with tags.
    pub changes: Changes,
}

/// An approved change, published.
#[derive(Debug)]
pub struct Approved {
    /// What was recorded.
    pub approval: Approval,
    /// One line for people: what was published, the counts, who approved.
    pub line: String,
}

impl Desk {
    /// The ruleset named `name`.
    pub fn ruleset(&self, name: &str) -> anyhow::Result<&Ruleset> {
        self.rulesets
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no ruleset is named {}",
                    crate::core::text::quoted(name, 64)
                )
            })
    }

    fn layout(&self) -> Layout {
        Layout::new(&self.output_dir)
    }

    /// The withheld change of `ruleset` and what it would do; no lock taken.
    pub async fn review(&self, store: &Store, ruleset: &Ruleset) -> anyhow::Result<Review> {
        let layout = self.layout();
        let (marker, info) = withheld_change(store, &layout, ruleset, "review").await?;
        let snapshot = store.snapshot(&info).await?;
        let kept = store.retained(ruleset, &snapshot, &info).await?;
        let (allowlist, _) = Allowlist::build_without_missing(ruleset, &snapshot, &info, &kept)?;
        let published = baseline::read(&layout.ruleset(&ruleset.name), &ruleset.name);
        let changes = sync::ruleset::changes_since(store, ruleset, &published, &allowlist).await;
        Ok(Review {
            marker,
            info,
            published,
            changes,
        })
    }

    /// Publishes the withheld change of `ruleset` under the run lock (`wait`: how long to wait
    /// for it), records the approval, rewrites `last-run.*`, `metrics.prom` and the week's
    /// report, and notifies.
    pub async fn approve(
        &self,
        store: &Store,
        ruleset: &Ruleset,
        decider: Decider,
        allow_empty: bool,
        wait: Duration,
    ) -> anyhow::Result<Approved> {
        let lock = store.lock_run(wait).await?;
        let result = self
            .approve_locked(store, ruleset, decider, allow_empty)
            .await;
        lock.release().await;
        result
    }

    async fn approve_locked(
        &self,
        store: &Store,
        ruleset: &Ruleset,
        decider: Decider,
        allow_empty: bool,
    ) -> anyhow::Result<Approved> {
        let layout = self.layout();
        let (marker, info) = withheld_change(store, &layout, ruleset, "approve").await?;
        let snapshot = store.snapshot(&info).await?;
        let kept = store.retained(ruleset, &snapshot, &info).await?;
        let (allowlist, missing) =
            Allowlist::build_without_missing(ruleset, &snapshot, &info, &kept)?;
        let published = baseline::read(&layout.ruleset(&ruleset.name), &ruleset.name);
        let changes = sync::ruleset::changes_since(store, ruleset, &published, &allowlist).await;
        if allowlist.sets.iter().all(|s| s.entries.is_empty()) && !allow_empty {
            bail!(
                "ruleset {}: the selection gives an empty list at {} (every selected tag is gone: {}); publishing it would allow nothing. Publish it anyway with `tagwall approve {} --allow-empty`, or change the ruleset's tags in the settings",
                ruleset.name,
                marker.snapshot,
                crate::core::text::terminal(&missing.join(", ")),
                ruleset.name
            );
        }
        let done = publish(&layout, Some(store), &allowlist, self.validate).await?;
        let approval = decider.record(Decision::Approved, &marker, info.id);
        store.record_approval(&approval).await?;
        let run = update_run_files(
            store,
            &layout,
            &allowlist,
            &approval,
            changes,
            &done.checked,
        )
        .await?;
        let cloud_rulesets: Vec<&Ruleset> = self
            .rulesets
            .iter()
            .filter(|r| r.cloud == ruleset.cloud)
            .collect();
        if let Err(e) = crate::publish::reports::rewrite(
            store,
            &layout,
            ruleset.cloud,
            &cloud_rulesets,
            info.id,
        )
        .await
        {
            tracing::warn!("the week's report still shows the change as withheld: {e:#}");
        }
        self.notify_approval(run).await;
        let line = approved_line(&marker, &allowlist, &missing, &approval);
        Ok(Approved { approval, line })
    }

    /// Records that the withheld change of `ruleset` will not be published, under the run
    /// lock; the published files stay and the withheld marker goes. Returns one line for
    /// people.
    pub async fn reject(
        &self,
        store: &Store,
        ruleset: &Ruleset,
        decider: Decider,
        wait: Duration,
    ) -> anyhow::Result<String> {
        let lock = store.lock_run(wait).await?;
        let result = async {
            let layout = self.layout();
            let (marker, info) = withheld_change(store, &layout, ruleset, "reject").await?;
            store
                .record_approval(&decider.record(Decision::Rejected, &marker, info.id))
                .await?;
            crate::publish::ruleset::clear_withheld(&layout, &ruleset.name)?;
            Ok(format!(
                "rejected {}: the change of {} will not be published; the published files stay ({}); a later file is judged afresh",
                ruleset.name,
                marker.snapshot,
                marker.reasons.join("; ")
            ))
        }
        .await;
        lock.release().await;
        result
    }

    /// Tells every `[notify]` channel that a withheld change was approved and published, as a
    /// run publishing that one ruleset (an approval is a change for `when`).
    async fn notify_approval(&self, run: RulesetRun) {
        let client = match client(&self.fetch) {
            Ok(c) => c,
            Err(e) => return tracing::error!("could not notify the approval: {e:#}"),
        };
        let at = now();
        let mut summary = Summary::failed(at.clone(), String::new());
        summary.error = None;
        summary.finished = at;
        summary.rulesets = vec![run];
        summary.exit_code = summary.code();
        crate::notify::send(&self.notify, &client, &summary).await;
    }
}

/// The HTTP client for `[fetch]`, with the route read from the environment.
pub fn client(s: &FetchSettings) -> anyhow::Result<Client> {
    let route = crate::fetch::proxy::Route::resolve(&s.proxy, &s.no_proxy, &s.credentials, &|k| {
        std::env::var(k).ok()
    })
    .map_err(|e| anyhow::anyhow!("[fetch] proxy: {e}"))?;
    Ok(Client::new(s, route)?)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn approved_line(
    marker: &Withheld,
    allowlist: &Allowlist<'_>,
    missing: &[String],
    approval: &Approval,
) -> String {
    let mut line = format!(
        "approved {}: published {} ({}); {}",
        approval.ruleset,
        marker.snapshot,
        marker.reasons.join("; "),
        allowlist
            .sets
            .iter()
            .map(crate::render::firewall::family_line)
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !missing.is_empty() {
        line.push_str(&format!(
            "; without the tags entries that match nothing: {} (remove them from the ruleset)",
            missing.join(", ")
        ));
    }
    line.push_str(&format!(
        "; approved by {}",
        crate::core::text::terminal(&approval.approved_by)
    ));
    line
}

/// The ruleset's withheld change (its marker) and the snapshot it was built from, for `verb`
/// (approve, reject, review): an error when there is none.
pub async fn withheld_change(
    store: &Store,
    layout: &Layout,
    ruleset: &Ruleset,
    verb: &str,
) -> anyhow::Result<(Withheld, SnapshotInfo)> {
    let Some(marker) = read_withheld(layout, &ruleset.name)? else {
        bail!(
            "ruleset {} has no withheld change to {verb} ({} does not exist): the last sync published it, or it was decided already",
            ruleset.name,
            layout.withheld(&ruleset.name).display()
        );
    };
    let info = withheld_snapshot(store, ruleset, &marker).await?;
    Ok((marker, info))
}

/// The snapshot a withheld marker names, refused when the store no longer holds it or the id
/// now names other content (a rebuilt store).
async fn withheld_snapshot(
    store: &Store,
    ruleset: &Ruleset,
    marker: &Withheld,
) -> anyhow::Result<SnapshotInfo> {
    let gone = || {
        anyhow::anyhow!(
            "the withheld change of {} was built from {}, which the store no longer holds: run `tagwall sync` again",
            ruleset.name,
            marker.snapshot
        )
    };
    let info = store
        .resolve(ruleset.cloud, &SnapRef::Id(marker.snapshot_id))
        .await
        .map_err(|_| gone())?;
    let same = info.cloud == ruleset.cloud
        && marker
            .content_sha256
            .as_ref()
            .is_none_or(|h| *h == info.content_sha256);
    if !same {
        return Err(gone());
    }
    Ok(info)
}

/// Rewrites `last-run.*` and `metrics.prom` with the approved ruleset published; returns that
/// ruleset's part of the summary.
async fn update_run_files(
    store: &Store,
    layout: &Layout,
    allowlist: &Allowlist<'_>,
    approval: &Approval,
    changes: Changes,
    checked: &Checked,
) -> anyhow::Result<RulesetRun> {
    let run = RulesetRun {
        ruleset: approval.ruleset.clone(),
        status: RulesetStatus::Published,
        snapshot: Some(approval.snapshot.clone()),
        families: sync::ruleset::counts(allowlist),
        reasons: approval.reasons.clone(),
        would_change: Vec::new(),
        warnings: allowlist.warnings.clone(),
        error: None,
        approved_by: Some(approval.approved_by.clone()),
        approved_at: Some(approval.approved_at.clone()),
        approval_comment: Some(approval.comment.clone()).filter(|c| !c.is_empty()),
        already_notified: false,
        changes,
        validated_by: checked.validated_by(),
        validation_note: checked.note(),
    };
    let Some(mut summary) = sync::read_run_summary(layout)? else {
        return Ok(run);
    };
    match summary
        .rulesets
        .iter_mut()
        .find(|r| r.ruleset == approval.ruleset)
    {
        Some(r) => *r = run.clone(),
        None => summary.rulesets.push(run.clone()),
    }
    summary.exit_code = summary.code();
    sync::write_run_files(store, layout, &summary).await?;
    Ok(run)
}
