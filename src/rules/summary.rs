//! The run summary (`out/last-run.json`, schema `tagwall.run/1`, and the webhook body) and the
//! statuses it reports, as enums with their serde names. Plain data, below `render` (which
//! writes it as Markdown and metrics) and `sync` (which fills it); `approve` reads it back.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: something failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a change was withheld by the guard (the previous artifacts stay).
pub const EXIT_WITHHELD: u8 = 3;

/// The schema name of the summary.
pub const SCHEMA: &str = "tagwall.run/1";

/// What happened to one cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloudStatus {
    /// A new file was imported.
    New,
    /// The server said the file is unchanged.
    Unchanged,
    /// The newest file is already stored.
    Stored,
    /// The cloud publishes no more files.
    Retired,
    /// `--dry-run`: nothing fetched.
    DryRun,
    /// Something failed.
    Failed,
}

/// What happened to one ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RulesetStatus {
    /// New files are published.
    Published,
    /// The published files were already up to date.
    Unchanged,
    /// The guard held the change back.
    Withheld,
    /// The guard held the change back and someone rejected it (`tagwall reject`): the
    /// published files stay, and the same file is not withheld again.
    Rejected,
    /// `--dry-run`: the change would be published.
    WouldPublish,
    /// `--dry-run`: the guard would hold the change back.
    WouldWithhold,
    /// Something failed.
    Failed,
}

impl CloudStatus {
    /// The serde name.
    pub fn name(self) -> &'static str {
        match self {
            CloudStatus::New => "new",
            CloudStatus::Unchanged => "unchanged",
            CloudStatus::Stored => "stored",
            CloudStatus::Retired => "retired",
            CloudStatus::DryRun => "dry-run",
            CloudStatus::Failed => "failed",
        }
    }
}

impl RulesetStatus {
    /// The serde name.
    pub fn name(self) -> &'static str {
        match self {
            RulesetStatus::Published => "published",
            RulesetStatus::Unchanged => "unchanged",
            RulesetStatus::Withheld => "withheld",
            RulesetStatus::Rejected => "rejected",
            RulesetStatus::WouldPublish => "would-publish",
            RulesetStatus::WouldWithhold => "would-withhold",
            RulesetStatus::Failed => "failed",
        }
    }

    /// Withheld, or would be.
    pub fn is_withheld(self) -> bool {
        matches!(self, RulesetStatus::Withheld | RulesetStatus::WouldWithhold)
    }
}

impl fmt::Display for CloudStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl fmt::Display for RulesetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What happened to one cloud.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloudRun {
    /// The cloud.
    pub cloud: String,
    /// What happened.
    pub status: CloudStatus,
    /// The newest file's date, when known.
    pub file_date: Option<String>,
    /// The line `tagwall fetch` prints, or the error.
    pub detail: String,
    /// The diff report written for a new snapshot (without extension).
    pub report: Option<String>,
    /// How old the newest file is, when it is overdue (older than `[fetch] overdue_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_days: Option<i64>,
    /// What this run tells about the cloud's files once: it became overdue, or a file came
    /// after it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<CloudNotice>,
}

/// Something told once about a cloud's files (`notice` in `last-run.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloudNotice {
    /// No new file for more than `[fetch] overdue_days`: told by the first run that finds it.
    Overdue,
    /// A new file arrived after the cloud was overdue.
    Arrived,
}

impl CloudRun {
    /// "Public: no new file for 23 days (newest 2025-07-28; Microsoft publishes weekly)", or
    /// "Public: a new file arrived (2025-08-04) after it was overdue"; `None` without a notice.
    pub fn notice_text(&self) -> Option<String> {
        let date = self.file_date.as_deref().unwrap_or("-");
        Some(match self.notice? {
            CloudNotice::Overdue => format!(
                "{}: no new file for {} days (newest {date}; Microsoft publishes weekly): check the page or mirror with `tagwall doctor`",
                self.cloud,
                self.overdue_days.unwrap_or(0)
            ),
            CloudNotice::Arrived => {
                format!("{}: a new file arrived ({date}) after it was overdue", self.cloud)
            }
        })
    }
}

/// What happened to one ruleset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RulesetRun {
    /// The ruleset.
    pub ruleset: String,
    /// What happened.
    pub status: RulesetStatus,
    /// The snapshot now published (or that would be).
    pub snapshot: Option<String>,
    /// Per family: entries and addresses of what is published after the run.
    pub families: BTreeMap<String, FamilyCounts>,
    /// Why it was withheld (or flagged, when published anyway).
    pub reasons: Vec<String>,
    /// What the withheld change would have done, per family.
    pub would_change: Vec<String>,
    /// Warnings for the firewall team (multi-tenant tags, budgets).
    pub warnings: Vec<String>,
    /// The error, if failed.
    pub error: Option<String>,
    /// Who approved the published change (`tagwall approve --by`), when it was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// When it was approved (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// Why, as the approver said (`--comment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_comment: Option<String>,
    /// A withheld change notified already, within `[notify] remind_days`: not notified again
    /// by this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_notified: bool,
    /// What the run changed (or would change, when withheld) in the ruleset's list, per family:
    /// the same entries as `tagwall diff --ruleset` between the published and the new snapshot.
    #[serde(default)]
    pub changes: Changes,
    /// What checked the files this run published (or found already published): the real
    /// tools (`nft`, `ipset`, `iptables-restore`, `ip6tables-restore`), or `line checks` alone;
    /// empty when no files were checked (withheld, failed, a dry run).
    #[serde(default)]
    pub validated_by: Vec<String>,
    /// Why a file had tagwall's line checks only (`validate = "never"`, a tool not installed,
    /// no format a tool reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_note: Option<String>,
}

/// Per family (`ipv4`, `ipv6`), the entries added and removed.
pub type Changes = BTreeMap<String, FamilyDelta>;

/// One family's change: the addresses newly allowed and no longer allowed, then the entries
/// added and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyDelta {
    /// Addresses the list newly allows (after − before), as the fewest CIDRs covering them
    /// exactly, each with the tags that hold it.
    #[serde(default)]
    pub allowed: Vec<RangeChange>,
    /// Addresses the list no longer allows (before − after), each with the tags that held it.
    #[serde(default)]
    pub disallowed: Vec<RangeChange>,
    /// The number of addresses newly allowed (a decimal string).
    #[serde(default = "zero")]
    pub allowed_addresses: String,
    /// The number of addresses no longer allowed (a decimal string).
    #[serde(default = "zero")]
    pub disallowed_addresses: String,
    /// Entries the list gains.
    pub added: Vec<EntryChange>,
    /// Entries the list loses.
    pub removed: Vec<EntryChange>,
    /// Entries Microsoft removed that the grace period (`keep_removed_days`) keeps for now.
    #[serde(default)]
    pub retiring: Vec<EntryChange>,
}

fn zero() -> String {
    "0".into()
}

/// A range of addresses newly allowed or no longer allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeChange {
    /// The CIDR.
    pub cidr: String,
    /// Its address count (a decimal string).
    pub addresses: String,
    /// The tags that hold it (allowed) or held it (no longer allowed); empty when unknown.
    pub tags: Vec<String>,
}

impl FamilyDelta {
    /// Whether the list allows other addresses.
    pub fn addresses_changed(&self) -> bool {
        !self.allowed.is_empty() || !self.disallowed.is_empty()
    }

    /// Whether anything changes: addresses, entries or retiring entries.
    pub fn any(&self) -> bool {
        self.addresses_changed()
            || !self.added.is_empty()
            || !self.removed.is_empty()
            || !self.retiring.is_empty()
    }

    /// "newly allowed 2160 addresses in 1 range, no longer allowed 0 addresses".
    pub fn addresses_line(&self, family: crate::core::ranges::Family) -> String {
        format!(
            "newly allowed {}, no longer allowed {}",
            amount_in_ranges(family, &self.allowed_addresses, self.allowed.len()),
            amount_in_ranges(family, &self.disallowed_addresses, self.disallowed.len()),
        )
    }

    /// "firewall entries +9 / -1" (", 2 retiring").
    pub fn entries_line(&self) -> String {
        format!(
            "firewall entries {}",
            entry_counts(self.added.len(), self.removed.len(), self.retiring.len())
        )
    }
}

/// "2160 addresses in 1 range", "0 addresses".
fn amount_in_ranges(family: crate::core::ranges::Family, count: &str, ranges: usize) -> String {
    match ranges {
        0 => family.amount_text(count),
        1 => format!("{} in 1 range", family.amount_text(count)),
        n => format!("{} in {n} ranges", family.amount_text(count)),
    }
}

/// One entry added or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryChange {
    /// The CIDR.
    pub cidr: String,
    /// The tags with addresses in it (empty for an entry whose tags are no longer known).
    pub tags: Vec<String>,
    /// Its size: a number up to 2^53, else a decimal string.
    pub addresses: serde_json::Value,
    /// For a retiring entry, the first file date at which it leaves the list (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl EntryChange {
    /// Its size for people, as [`crate::core::ranges::Family::amount`] writes it.
    pub fn amount(&self, family: crate::core::ranges::Family) -> String {
        match &self.addresses {
            serde_json::Value::String(n) => family.amount_text(n),
            n => family.amount_text(&n.to_string()),
        }
    }
}

/// The typed form of [`crate::rules::changes::changes`].
pub fn changes_of(families: &[crate::rules::changes::FamilyChanges]) -> Changes {
    let range = |c: &crate::rules::changes::AddressChange| RangeChange {
        cidr: c.cidr.to_string(),
        addresses: c.addresses.to_string(),
        tags: c.tags.clone(),
    };
    let entry = |c: &crate::rules::changes::Change| EntryChange {
        cidr: c.cidr.to_string(),
        tags: c.tags.clone(),
        addresses: crate::rules::manifest::json_count(c.addresses),
        until: c.retiring_until.map(|d| d.to_string()),
    };
    families
        .iter()
        .map(|f| {
            (
                f.family.key().to_string(),
                FamilyDelta {
                    allowed: f.allowed.iter().map(range).collect(),
                    disallowed: f.disallowed.iter().map(range).collect(),
                    allowed_addresses: f.allowed_addresses().to_string(),
                    disallowed_addresses: f.disallowed_addresses().to_string(),
                    added: f.added.iter().map(entry).collect(),
                    removed: f.removed.iter().map(entry).collect(),
                    retiring: f.retiring.iter().map(entry).collect(),
                },
            )
        })
        .collect()
}

/// Whether any family gains or loses addresses, or gains, loses or retires an entry.
pub fn any_change(changes: &Changes) -> bool {
    changes.values().any(FamilyDelta::any)
}

/// The change in one line, addresses first: "IPv4: newly allowed 2160 addresses in 1 range, no
/// longer allowed 0 addresses; IPv6: no change; firewall entries +9 / -1".
pub fn changes_line(changes: &Changes) -> String {
    let mut parts: Vec<String> = changes
        .iter()
        .map(|(key, f)| {
            let family = crate::core::ranges::Family::from_key(key);
            if f.addresses_changed() {
                format!("{}: {}", family.label(), f.addresses_line(family))
            } else {
                format!("{}: no address change", family.label())
            }
        })
        .collect();
    let (added, removed, retiring) = changes.values().fold((0, 0, 0), |(a, r, k), f| {
        (a + f.added.len(), r + f.removed.len(), k + f.retiring.len())
    });
    parts.push(format!(
        "firewall entries {}",
        entry_counts(added, removed, retiring)
    ));
    parts.join("; ")
}

/// "+9 / -1" (", 2 retiring").
pub fn entry_counts(added: usize, removed: usize, retiring: usize) -> String {
    if retiring == 0 {
        format!("+{added} / -{removed}")
    } else {
        format!("+{added} / -{removed}, {retiring} retiring")
    }
}

/// Entries and addresses of one family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyCounts {
    /// CIDRs.
    pub entries: usize,
    /// Addresses covered (a string: IPv6 counts exceed JSON's integers).
    pub addresses: String,
}

/// The run summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA`].
    pub schema: String,
    /// tagwall's version.
    pub tagwall: String,
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
    /// Why the run as a whole failed before it could report per cloud and ruleset (the store
    /// unreachable, the run lock not granted): sent to notifications, never in `last-run.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The review site (`[serve] public_url`), set for notifications: messages link to its
    /// pages instead of naming server paths and commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl Summary {
    /// The review site's page of the withheld change of `ruleset`.
    pub fn pending_url(&self, ruleset: &str) -> Option<String> {
        self.site.as_ref().map(|s| format!("{s}/pending/{ruleset}"))
    }

    /// The review site's page of the week's report of `cloud`.
    pub fn report_url(&self, cloud: &CloudRun) -> Option<String> {
        let (site, date) = (self.site.as_ref()?, cloud.file_date.as_ref()?);
        cloud.report.as_ref()?;
        Some(format!("{site}/reports/{}/{date}", cloud.cloud))
    }

    /// A run that failed as a whole with `error` (exit code 1), started at `started`.
    pub fn failed(started: String, error: String) -> Summary {
        Summary {
            schema: SCHEMA.into(),
            tagwall: env!("CARGO_PKG_VERSION").into(),
            finished: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            started,
            forced: false,
            dry_run: false,
            exit_code: EXIT_FAILED,
            clouds: Vec::new(),
            rulesets: Vec::new(),
            error: Some(error),
            site: None,
        }
    }

    /// The run in a few words, the worst outcome first: failed, withheld (a change waits for
    /// review), published (files changed), or unchanged. Never "up to date" when something
    /// was published.
    pub fn verdict(&self) -> &'static str {
        let published = self
            .rulesets
            .iter()
            .any(|r| r.status == RulesetStatus::Published);
        match self.code() {
            EXIT_FAILED => "failed",
            EXIT_WITHHELD if self.dry_run => "a change would be withheld for review",
            EXIT_WITHHELD => "a change was withheld for review",
            _ if published => "published changes",
            _ if self
                .clouds
                .iter()
                .any(|c| c.notice == Some(CloudNotice::Overdue)) =>
            {
                "unchanged, and a cloud's file is overdue"
            }
            _ if self
                .rulesets
                .iter()
                .any(|r| r.status == RulesetStatus::WouldPublish && any_change(&r.changes)) =>
            {
                "dry run: changes would be published"
            }
            _ => "unchanged: the published rulesets are up to date",
        }
    }

    /// The exit code the statuses add up to: any failure 1, else any withheld 3, else 0.
    pub fn code(&self) -> u8 {
        let failed = self.error.is_some()
            || self.clouds.iter().any(|c| c.status == CloudStatus::Failed)
            || self
                .rulesets
                .iter()
                .any(|r| r.status == RulesetStatus::Failed);
        if failed {
            EXIT_FAILED
        } else if self.rulesets.iter().any(|r| r.status.is_withheld()) {
            EXIT_WITHHELD
        } else {
            EXIT_OK
        }
    }
}

impl RulesetRun {
    /// "nft, ipset, iptables-restore", or "line checks (validate = \"never\")": what checked the
    /// files, for people; `None` when nothing was checked.
    pub fn checked_text(&self) -> Option<String> {
        if self.validated_by.is_empty() {
            return None;
        }
        let tools = self.validated_by.join(", ");
        Some(match &self.validation_note {
            Some(why) => format!("{tools} ({why})"),
            None => tools,
        })
    }

    /// A ruleset that failed with `error`.
    pub fn failed(name: &str, error: String) -> RulesetRun {
        RulesetRun {
            ruleset: name.into(),
            status: RulesetStatus::Failed,
            snapshot: None,
            families: BTreeMap::new(),
            reasons: Vec::new(),
            would_change: Vec::new(),
            warnings: Vec::new(),
            error: Some(error),
            approved_by: None,
            approved_at: None,
            approval_comment: None,
            already_notified: false,
            changes: Changes::new(),
            validated_by: Vec::new(),
            validation_note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_names() {
        for s in [
            RulesetStatus::Published,
            RulesetStatus::Unchanged,
            RulesetStatus::Withheld,
            RulesetStatus::Rejected,
            RulesetStatus::WouldPublish,
            RulesetStatus::WouldWithhold,
            RulesetStatus::Failed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        for s in [
            CloudStatus::New,
            CloudStatus::Unchanged,
            CloudStatus::Stored,
            CloudStatus::Retired,
            CloudStatus::DryRun,
            CloudStatus::Failed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(format!("{:<9}|", RulesetStatus::Withheld), "withheld |");
    }
}
