//! "Your rulesets", the opening of each weekly report: per configured ruleset of the cloud, what
//! changes in its list (entries added and removed, with their tags) and, when the change is
//! withheld, a banner with the command that publishes it. Tag names are escaped per format.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::core::text::markdown;
use crate::rules::changes::RulesetReport;
use crate::rules::summary::{changes_line, Changes};

use super::html::escape;

/// The most entries listed per family and direction; the counts are always whole.
const MAX_LISTED: usize = 20;

/// The two commands that review and publish a withheld change, each ready to paste (also in
/// chat notifications and last-run.md). `--by` defaults to the user who runs it.
pub fn approve_commands(name: &str) -> [String; 2] {
    [
        format!("tagwall approve {name} --show"),
        format!("tagwall approve {name} --comment \"reviewed: why it is safe\""),
    ]
}

/// The two commands as an HTML block, one line each.
pub(crate) fn approve_html(name: &str) -> String {
    let [show, approve] = approve_commands(name);
    format!(
        "<pre><code>{}\n{}</code></pre>\n",
        escape(&show),
        escape(&approve)
    )
}

/// Markdown, before the cloud-wide diff; nothing when there are no rulesets.
pub fn markdown_section(out: &mut impl Write, reports: &[RulesetReport]) -> io::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "## Your rulesets
"
    )?;
    for r in reports {
        let changes = crate::rules::summary::changes_of(&r.changes);
        writeln!(
            out,
            "### `{}`: {}
",
            r.name,
            changes_line(&changes)
        )?;
        if let Some(reasons) = &r.withheld {
            let [show, approve] = approve_commands(&r.name);
            writeln!(
                out,
                "> **Withheld**: {}. The published files stay. Review, then publish:\n>\n>     {show}\n>     {approve}\n",
                markdown(&reasons.join("; ")),
            )?;
        }
        super::address_changes::write_markdown(out, &changes, MAX_LISTED, "the JSON report")?;
        markdown_entries(out, &changes, MAX_LISTED, "the JSON report")?;
        writeln!(out)?;
    }
    Ok(())
}

/// The firewall entries added and removed as a Markdown list, at most `most` per family and
/// direction, then how many more there are and where all of them are (`whole_in`). Tags
/// escaped.
pub fn markdown_entries(
    out: &mut impl Write,
    changes: &Changes,
    most: usize,
    whole_in: &str,
) -> io::Result<()> {
    for (family, delta) in changes {
        if delta.added.is_empty() && delta.removed.is_empty() && delta.retiring.is_empty() {
            continue;
        }
        writeln!(
            out,
            "{} {}:\n",
            crate::core::ranges::Family::from_key(family).label(),
            delta.entries_line()
        )?;
        for (mark, verb, list) in [
            ("+", "added", &delta.added),
            ("−", "removed", &delta.removed),
            ("~", "retiring", &delta.retiring),
        ] {
            for c in list.iter().take(most) {
                let tags: Vec<String> = c.tags.iter().map(|t| markdown(t)).collect();
                let until = c
                    .until
                    .as_deref()
                    .map(|d| format!(" — retiring until {}", markdown(d)))
                    .unwrap_or_default();
                writeln!(out, "- {mark} `{}` {}{until}", c.cidr, tags.join(", "))?;
            }
            if list.len() > most {
                writeln!(
                    out,
                    "- … {} more {family} entries {verb} (all in {whole_in})",
                    list.len() - most
                )?;
            }
        }
    }
    Ok(())
}

/// The `rulesets` key of the JSON report.
pub fn json_section(reports: &[RulesetReport]) -> Value {
    reports
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "changes": super::ruleset_diff::families_json(&r.changes),
                "withheld": r.withheld.is_some(),
                "reasons": r.withheld.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// HTML, before the cloud-wide diff: every entry listed (the page prints whole).
pub fn html_section(reports: &[RulesetReport]) -> String {
    if reports.is_empty() {
        return String::new();
    }
    let mut b = String::from("<h2>Your rulesets</h2>\n");
    for r in reports {
        let changes = crate::rules::summary::changes_of(&r.changes);
        b.push_str(&format!(
            "<h3><code>{}</code>: {}</h3>\n",
            escape(&r.name),
            escape(&changes_line(&changes))
        ));
        if let Some(reasons) = &r.withheld {
            b.push_str(&format!(
                "<p><strong>Withheld</strong>: {}. The published files stay. Review, then publish:</p>\n{}",
                escape(&reasons.join("; ")),
                approve_html(&r.name)
            ));
        }
        b.push_str(&super::address_changes::html(
            &changes,
            usize::MAX,
            "this report",
        ));
        b.push_str("<p>Firewall entries:</p>\n<table><tr><th></th><th>CIDR</th><th>addresses</th><th>tags</th></tr>\n");
        for f in &r.changes {
            b.push_str(&super::ruleset_diff::html_rows(f));
        }
        b.push_str("</table>\n");
    }
    b
}
