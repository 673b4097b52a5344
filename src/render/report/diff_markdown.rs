//! The diff as Markdown, for e-mail and tickets.

use std::io::{self, Write};

use crate::core::diff::{Diff, TagStatus};
use crate::core::model::SnapshotInfo;
use crate::core::text::markdown;
use crate::render::report::diff_json::anomaly_text;

/// Writes a title, a summary table, anomalies, per-region counts and each tag's changes.
pub fn write(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> io::Result<()> {
    title(out, from, to)?;
    body(out, diff, from, to)
}

/// The report's H1: "# Public service tags: 2025-07-21 → 2025-07-28".
pub fn title(out: &mut impl Write, from: &SnapshotInfo, to: &SnapshotInfo) -> io::Result<()> {
    writeln!(
        out,
        "# {} service tags: {} → {}\n",
        from.cloud, from.file_date, to.file_date
    )
}

/// Everything after the title: the summary table, anomalies, regions, each tag's changes.
pub fn body(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> io::Result<()> {
    writeln!(out, "| | from | to |\n|---|---|---|")?;
    writeln!(out, "| snapshot | id:{} | id:{} |", from.id, to.id)?;
    writeln!(
        out,
        "| changeNumber | {} | {} |",
        from.change_number, to.change_number
    )?;
    writeln!(
        out,
        "| sha256 | `{}` | `{}` |\n",
        &from.sha256[..12],
        &to.sha256[..12]
    )?;
    if diff.is_empty() {
        writeln!(out, "**No content change.**")?;
    } else {
        let (added, removed) = diff.pairs();
        let (v4a, v4r, v6a, v6r) = diff.addresses;
        writeln!(out, "| change | added | removed |\n|---|---:|---:|")?;
        writeln!(
            out,
            "| tags ({} changed) | {} | {} |",
            diff.count(TagStatus::Changed),
            diff.count(TagStatus::Added),
            diff.count(TagStatus::Removed)
        )?;
        writeln!(out, "| (tag, prefix) pairs | {added} | {removed} |")?;
        let (v4, v6) = (
            crate::core::ranges::Family::V4,
            crate::core::ranges::Family::V6,
        );
        writeln!(out, "| IPv4 | {} | {} |", v4.amount(v4a), v4.amount(v4r))?;
        writeln!(out, "| IPv6 | {} | {} |", v6.amount(v6a), v6.amount(v6r))?;
    }
    if !diff.anomalies.is_empty() {
        writeln!(out, "\n## Change-number anomalies\n")?;
        for a in &diff.anomalies {
            writeln!(out, "- {}", anomaly_text(a).1)?;
        }
    }
    if !diff.regions.is_empty() {
        writeln!(
            out,
            "\n## Regions\n\n| region | pairs added | pairs removed |\n|---|---:|---:|"
        )?;
        for (name, r) in &diff.regions {
            let name = if name.is_empty() {
                "(global)".to_string()
            } else {
                markdown(name)
            };
            writeln!(
                out,
                "| {name} | {} | {} |",
                r.prefixes_added, r.prefixes_removed
            )?;
        }
    }
    if !diff.tags.is_empty() {
        writeln!(out, "\n## Tags")?;
    }
    for t in &diff.tags {
        let status = match t.status {
            TagStatus::Added => "added",
            TagStatus::Removed => "removed",
            TagStatus::Changed => "changed",
        };
        writeln!(
            out,
            "\n### {} ({status}: +{} −{})",
            markdown(&t.name),
            t.prefixes_added.len(),
            t.prefixes_removed.len()
        )?;
        let changes = t.metadata_changes();
        if !changes.is_empty() {
            writeln!(out)?;
        }
        for c in changes {
            writeln!(
                out,
                "- `{}`: {} → {}",
                c.field,
                markdown(&c.from),
                markdown(&c.to)
            )?;
        }
        if !t.prefixes_added.is_empty() || !t.prefixes_removed.is_empty() {
            writeln!(out, "\n```diff")?;
            for p in &t.prefixes_added {
                writeln!(out, "+ {p}")?;
            }
            for p in &t.prefixes_removed {
                writeln!(out, "- {p}")?;
            }
            writeln!(out, "```")?;
        }
    }
    Ok(())
}
