//! The diff as plain text for terminals and logs.

use std::io::{self, Write};

use crate::diff::{Diff, TagStatus};
use crate::model::SnapshotInfo;
use crate::render::diff_json::anomaly_text;

/// Writes the summary, the anomalies and each tag's changes.
pub fn write(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> io::Result<()> {
    writeln!(
        out,
        "{} {} (id:{}, changeNumber {}) -> {} (id:{}, changeNumber {})",
        from.cloud,
        from.file_date,
        from.id,
        from.change_number,
        to.file_date,
        to.id,
        to.change_number
    )?;
    if diff.is_empty() {
        writeln!(out, "no content change")?;
    } else {
        let (added, removed) = diff.pairs();
        let (v4a, v4r, v6a, v6r) = diff.addresses;
        writeln!(
            out,
            "tags: +{} -{} ~{}; prefixes: +{added} -{removed}; IPv4 addresses: +{v4a} -{v4r}; IPv6 addresses: +{v6a} -{v6r}",
            diff.count(TagStatus::Added),
            diff.count(TagStatus::Removed),
            diff.count(TagStatus::Changed),
        )?;
    }
    for a in &diff.anomalies {
        writeln!(out, "note: {}", anomaly_text(a).1)?;
    }
    for t in &diff.tags {
        let mark = match t.status {
            TagStatus::Added => '+',
            TagStatus::Removed => '-',
            TagStatus::Changed => '~',
        };
        writeln!(
            out,
            "\n{mark} {} (+{} -{})",
            t.name,
            t.prefixes_added.len(),
            t.prefixes_removed.len()
        )?;
        for c in t.metadata_changes() {
            writeln!(out, "    {}: {} -> {}", c.field, c.from, c.to)?;
        }
        for p in &t.prefixes_added {
            writeln!(out, "    + {p}")?;
        }
        for p in &t.prefixes_removed {
            writeln!(out, "    - {p}")?;
        }
    }
    Ok(())
}
