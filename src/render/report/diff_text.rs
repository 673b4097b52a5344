//! The diff as plain text for terminals and logs.

use std::io::{self, Write};

use crate::core::diff::{Diff, TagStatus};
use crate::core::model::SnapshotInfo;
use crate::core::text::terminal;
use crate::render::report::diff_json::anomaly_text;

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
        let (v4, v6) = (
            crate::core::ranges::Family::V4,
            crate::core::ranges::Family::V6,
        );
        writeln!(
            out,
            "tags: +{} -{} ~{}; prefixes: +{added} -{removed}; IPv4: +{} -{}; IPv6: +{} -{}",
            diff.count(TagStatus::Added),
            diff.count(TagStatus::Removed),
            diff.count(TagStatus::Changed),
            v4.amount(v4a),
            v4.amount(v4r),
            v6.amount(v6a),
            v6.amount(v6r),
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
            terminal(&t.name),
            t.prefixes_added.len(),
            t.prefixes_removed.len()
        )?;
        for c in t.metadata_changes() {
            writeln!(
                out,
                "    {}: {} -> {}",
                c.field,
                terminal(&c.from),
                terminal(&c.to)
            )?;
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

/// ANSI colours for a terminal: added prefixes green, removed red, tag headings bold, notes
/// yellow. Applied to [`write`]'s output line by line, so pipes and files get plain text.
pub fn colourize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, eol) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        let code = if body.starts_with("    + ") {
            "32"
        } else if body.starts_with("    - ") {
            "31"
        } else if body.starts_with("note: ") {
            "33"
        } else if ["+ ", "- ", "~ "].iter().any(|m| body.starts_with(m)) {
            "1"
        } else {
            ""
        };
        if code.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{eol}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_the_change_lines() {
        let text = "Public a -> b\nnote: odd\n\n~ Tag (+1 -1)\n    + 1.0.0.0/8\n    - 2.0.0.0/8\n";
        assert_eq!(
            colourize(text),
            "Public a -> b\n\x1b[33mnote: odd\x1b[0m\n\n\x1b[1m~ Tag (+1 -1)\x1b[0m\n\x1b[32m    + 1.0.0.0/8\x1b[0m\n\x1b[31m    - 2.0.0.0/8\x1b[0m\n"
        );
    }
}
