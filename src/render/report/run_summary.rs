//! `out/last-run.md`: the run summary for people — what each cloud and ruleset did, why a change
//! was withheld and what it would have changed, and the warnings for the firewall team.

use std::io::{self, Write};

use crate::core::text::markdown;
use crate::rules::summary::Summary;

/// Writes the summary as Markdown.
pub fn write(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "# tagwall sync {}: {}\n", s.finished, s.verdict())?;
    if let Some(e) = &s.error {
        writeln!(out, "Error: {}\n", markdown(e))?;
    }
    if s.forced {
        writeln!(
            out,
            "Run with `--force`: the guard's reasons were reported, not enforced.\n"
        )?;
    }
    writeln!(
        out,
        "| cloud | status | file date | detail |\n|---|---|---|---|"
    )?;
    for c in &s.clouds {
        let detail = match (s.report_url(c), &c.report) {
            (Some(url), _) => format!("{} — report: <{url}>", cell(&c.detail)),
            (None, Some(r)) => format!("{} — report: `{r}.md`", cell(&c.detail)),
            (None, None) => cell(&c.detail),
        };
        writeln!(
            out,
            "| {} | {} | {} | {detail} |",
            c.cloud,
            c.status,
            c.file_date.as_deref().unwrap_or("-")
        )?;
    }
    for text in s.clouds.iter().filter_map(|c| c.notice_text()) {
        writeln!(out, "\n> **Notice:** {}", markdown(&text))?;
    }
    for r in &s.rulesets {
        writeln!(out, "\n## Ruleset `{}`: {}\n", r.ruleset, r.status)?;
        if let Some(snap) = &r.snapshot {
            writeln!(out, "Published: {snap}.\n")?;
        }
        for (family, c) in &r.families {
            let amount = crate::core::ranges::Family::from_key(family).amount_text(&c.addresses);
            writeln!(out, "- {family}: {} entries, {amount}", c.entries)?;
        }
        if let Some(by) = &r.approved_by {
            let when = r.approved_at.as_deref().unwrap_or("-");
            let why = r
                .approval_comment
                .as_deref()
                .map(|c| format!(": {}", markdown(c)))
                .unwrap_or_default();
            writeln!(out, "\nApproved by {} at {when}{why}.", markdown(by))?;
        }
        // The reason and what to do come before any list.
        if !r.reasons.is_empty() {
            writeln!(
                out,
                "\nWhy it was {}:\n",
                if r.status.is_withheld() {
                    "withheld"
                } else if r.approved_by.is_some() {
                    "withheld until approved"
                } else {
                    "flagged"
                }
            )?;
            for reason in &r.reasons {
                writeln!(out, "- {}", markdown(reason))?;
            }
        }
        if r.status.is_withheld() {
            match s.pending_url(&r.ruleset) {
                Some(url) => writeln!(
                    out,
                    "\nThe published files stay. Review it, then approve or reject it: <{url}>"
                )?,
                None => {
                    let [show, approve] = super::rulesets_section::approve_commands(&r.ruleset);
                    writeln!(
                        out,
                        "\nThe published files stay. Review, then publish:\n\n    {show}\n    {approve}"
                    )?;
                }
            }
        }
        if !r.would_change.is_empty() {
            writeln!(out, "\nWhat the change would do:\n")?;
            for c in &r.would_change {
                writeln!(out, "- {}", markdown(c))?;
            }
        }
        changes(out, r)?;
        if let Some(checked) = r.checked_text() {
            writeln!(out, "\nChecked by: {}.", markdown(&checked))?;
        }
        if let Some(e) = &r.error {
            writeln!(out, "\nError: {}", markdown(e))?;
        }
        for w in &r.warnings {
            writeln!(out, "\n> **Warning:** {}", markdown(w))?;
        }
    }
    Ok(())
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The most entries listed per family and direction; the counts are always whole.
const MAX_LISTED: usize = 50;

/// "Changes: …" in addresses first, the ranges newly allowed and no longer allowed, then the
/// firewall entries added and removed (tags escaped).
fn changes(out: &mut impl Write, r: &crate::rules::summary::RulesetRun) -> io::Result<()> {
    if r.changes.is_empty() {
        return Ok(());
    }
    let verb = if r.status.is_withheld() {
        "Changes withheld"
    } else {
        "Changes"
    };
    writeln!(
        out,
        "\n{verb}: {}\n",
        crate::rules::summary::changes_line(&r.changes)
    )?;
    super::address_changes::write_markdown(out, &r.changes, MAX_LISTED, "last-run.json")?;
    super::rulesets_section::markdown_entries(out, &r.changes, MAX_LISTED, "last-run.json")
}
