//! `tagwall diff --ruleset`: what changes in one ruleset's list between two snapshots, as text,
//! Markdown, JSON (schema `tagwall.ruleset-diff/1`, docs/ruleset-diff-json.md) and HTML. Tag
//! names come from Microsoft's file: escaped for each format.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::core::model::SnapshotInfo;
use crate::core::ranges::Family;
use crate::core::text::{markdown, terminal};
use crate::rules::changes::{Change, FamilyChanges};
use crate::rules::summary::{changes_line, changes_of};

use super::html::escape;

/// One ruleset's changes between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct RulesetDiff<'a> {
    /// The ruleset's name.
    pub ruleset: &'a str,
    /// The older snapshot.
    pub from: &'a SnapshotInfo,
    /// The newer snapshot.
    pub to: &'a SnapshotInfo,
    /// Per family, the entries added and removed.
    pub changes: &'a [FamilyChanges],
}

/// The JSON schema name.
pub const SCHEMA: &str = "tagwall.ruleset-diff/1";

fn side(s: &SnapshotInfo) -> Value {
    json!({
        "id": s.id,
        "cloud": s.cloud.name(),
        "file_date": s.file_date.to_string(),
        "change_number": s.change_number,
        "sha256": s.sha256,
    })
}

/// The changes as JSON: `{"ipv4": {"added", "removed"}, …}` (also the `changes` of each
/// ruleset in `last-run.json`).
pub fn families_json(changes: &[FamilyChanges]) -> Value {
    serde_json::to_value(crate::rules::summary::changes_of(changes)).expect("plain data")
}

/// JSON.
pub fn write_json(out: &mut impl Write, d: &RulesetDiff) -> io::Result<()> {
    let RulesetDiff {
        ruleset,
        from,
        to,
        changes,
    } = *d;
    let doc = json!({
        "schema": SCHEMA,
        "ruleset": ruleset,
        "from": side(from),
        "to": side(to),
        "families": families_json(changes),
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

fn line(c: &Change, show: &dyn Fn(&str) -> String) -> String {
    let tags: Vec<String> = c.tags.iter().map(|t| show(t)).collect();
    format!(
        "{} ({}; {}){}",
        c.cidr,
        Family::of(&c.cidr).amount(c.addresses),
        tags.join(", "),
        retiring_note(c)
    )
}

/// " — retiring until 2025-08-11" for an entry only the grace period keeps.
pub fn retiring_note(c: &Change) -> String {
    c.retiring_until
        .map(|d| format!(" — retiring until {d} (removed by Microsoft, kept by keep_removed_days)"))
        .unwrap_or_default()
}

/// The family's heading counts: "firewall entries +3 / -1" (", 2 retiring").
fn family_counts(f: &FamilyChanges) -> String {
    format!(
        "firewall entries {}",
        crate::rules::summary::entry_counts(f.added.len(), f.removed.len(), f.retiring.len())
    )
}

/// Plain text.
pub fn write_text(out: &mut impl Write, d: &RulesetDiff) -> io::Result<()> {
    let RulesetDiff {
        ruleset,
        from,
        to,
        changes,
    } = *d;
    let typed = changes_of(changes);
    writeln!(
        out,
        "ruleset {ruleset}: {} {} (id:{}) → {} (id:{}): {}",
        to.cloud,
        from.file_date,
        from.id,
        to.file_date,
        to.id,
        changes_line(&typed)
    )?;
    super::address_changes::write_text(out, &typed, "", usize::MAX, "")?;
    for f in changes {
        writeln!(out, "{} {}:", f.family.label(), family_counts(f))?;
        for c in &f.added {
            writeln!(out, "  + {}", line(c, &terminal))?;
        }
        for c in &f.removed {
            writeln!(out, "  - {}", line(c, &terminal))?;
        }
        for c in &f.retiring {
            writeln!(out, "  ~ {}", line(c, &terminal))?;
        }
    }
    Ok(())
}

/// Markdown.
pub fn write_markdown(out: &mut impl Write, d: &RulesetDiff) -> io::Result<()> {
    let RulesetDiff {
        ruleset,
        from,
        to,
        changes,
    } = *d;
    let typed = changes_of(changes);
    writeln!(
        out,
        "# Ruleset `{ruleset}`: {} {} → {}\n\n{} (id:{} → id:{}).\n",
        to.cloud,
        from.file_date,
        to.file_date,
        changes_line(&typed),
        from.id,
        to.id
    )?;
    writeln!(out, "## Addresses\n")?;
    super::address_changes::write_markdown(out, &typed, usize::MAX, "")?;
    for f in changes {
        writeln!(out, "\n## {} {}\n", f.family.label(), family_counts(f))?;
        for (mark, list) in [("+", &f.added), ("-", &f.removed), ("~", &f.retiring)] {
            for c in list {
                writeln!(out, "- {mark} `{}`", line(c, &markdown))?;
            }
        }
    }
    Ok(())
}

/// One table row per entry added (`+`) and removed (`−`), tags escaped.
pub fn html_rows(f: &FamilyChanges) -> String {
    let mut rows = String::new();
    for (mark, list) in [("+", &f.added), ("−", &f.removed), ("~", &f.retiring)] {
        for c in list {
            let tags: Vec<String> = c.tags.iter().map(|t| escape(t)).collect();
            rows.push_str(&format!(
                "<tr><td>{mark}</td><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>\n",
                c.cidr,
                Family::of(&c.cidr).amount(c.addresses),
                tags.join(", "),
                escape(&retiring_note(c))
            ));
        }
    }
    rows
}

/// HTML: one table per family, every row visible (printing shows everything).
pub fn write_html(out: &mut impl Write, d: &RulesetDiff) -> io::Result<()> {
    let RulesetDiff {
        ruleset,
        from,
        to,
        changes,
    } = *d;
    let title = format!(
        "Ruleset {ruleset}: {} {} → {}",
        to.cloud, from.file_date, to.file_date
    );
    let typed = changes_of(changes);
    let mut body = format!(
        "<h1>{}</h1>\n<p>{} (id:{} → id:{}).</p>\n<h2>Addresses</h2>\n",
        escape(&title),
        escape(&changes_line(&typed)),
        from.id,
        to.id
    );
    body.push_str(&super::address_changes::html(&typed, usize::MAX, ""));
    for f in changes {
        body.push_str(&format!(
            "<h2>{} {}</h2>\n<table>\n<tr><th></th><th>CIDR</th><th>addresses</th><th>tags</th></tr>\n",
            f.family.label(),
            family_counts(f)
        ));
        body.push_str(&html_rows(f));
        body.push_str("</table>\n");
    }
    super::html::page(out, &title, &body)
}
