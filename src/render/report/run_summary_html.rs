//! The run summary as an HTML page (the HTML part of the email notification): the same content
//! as `last-run.md` — each cloud, each ruleset's status and changes, why a change was withheld
//! and the command that publishes it, errors and warnings — with every outside text escaped.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::summary::{RulesetRun, RulesetStatus, Summary};

use super::html::{escape, page};
use super::rulesets_section::approve_html;

/// The most entries listed per family and direction; the counts are always whole.
const MAX_LISTED: usize = 50;

/// Writes the page.
pub fn write(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let title = format!("tagwall sync {}: {}", s.finished, s.verdict());
    let mut b = format!("<h1>{}</h1>\n", escape(&title));
    if s.forced {
        b.push_str("<p>Run with <code>--force</code>: the guard's reasons were reported, not enforced.</p>\n");
    }
    if let Some(e) = &s.error {
        let _ = writeln!(
            b,
            "<p class=\"anomaly\"><strong>Error:</strong> {}</p>",
            escape(e)
        );
    }
    clouds(&mut b, s);
    for r in &s.rulesets {
        ruleset(&mut b, r, s.pending_url(&r.ruleset));
    }
    page(out, &title, &b)
}

fn clouds(b: &mut String, s: &Summary) {
    if s.clouds.is_empty() {
        return;
    }
    b.push_str("<table><tr><th>cloud</th><th>status</th><th>file date</th><th>detail</th></tr>\n");
    for c in &s.clouds {
        let report = match (s.report_url(c), c.report.as_deref()) {
            (Some(url), _) => format!(" — <a href=\"{0}\">report</a>", escape(&url)),
            (None, Some(r)) => format!(" — report <code>{}.html</code>", escape(r)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{report}</td></tr>",
            escape(&c.cloud),
            c.status,
            escape(c.file_date.as_deref().unwrap_or("-")),
            escape(&c.detail)
        );
    }
    b.push_str("</table>\n");
    for text in s.clouds.iter().filter_map(|c| c.notice_text()) {
        let _ = writeln!(
            b,
            "<p class=\"anomaly\"><strong>Notice:</strong> {}</p>",
            escape(&text)
        );
    }
}

fn ruleset(b: &mut String, r: &RulesetRun, review: Option<String>) {
    let _ = writeln!(
        b,
        "<h2>Ruleset <code>{}</code>: {}</h2>",
        escape(&r.ruleset),
        r.status
    );
    if let Some(snap) = &r.snapshot {
        let _ = writeln!(b, "<p>Published: {}.</p>", escape(snap));
    }
    if !r.families.is_empty() {
        b.push_str("<ul>");
        for (family, c) in &r.families {
            let _ = write!(
                b,
                "<li>{}: {} entries, {}</li>",
                escape(family),
                c.entries,
                escape(&Family::from_key(family).amount_text(&c.addresses))
            );
        }
        b.push_str("</ul>\n");
    }
    if r.status.is_withheld() {
        let how = match review {
            Some(url) => format!(
                "<p><a href=\"{0}\">Review and approve or reject it: {0}</a></p>",
                escape(&url)
            ),
            None => approve_html(&r.ruleset),
        };
        let _ = writeln!(
            b,
            "<p class=\"anomaly\"><strong>Withheld</strong>: {}. The published files stay. Review, then publish:</p>\n{how}",
            escape(&r.reasons.join("; ")),
        );
    } else if !r.reasons.is_empty() {
        let _ = writeln!(
            b,
            "<p><strong>Flagged</strong>: {}.</p>",
            escape(&r.reasons.join("; "))
        );
    }
    changes(b, r);
    if let Some(e) = &r.error {
        let _ = writeln!(
            b,
            "<p class=\"anomaly\"><strong>Error:</strong> {}</p>",
            escape(e)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(
            b,
            "<p class=\"anomaly\"><strong>Warning:</strong> {}</p>",
            escape(w)
        );
    }
}

/// The changes as a table: mark, CIDR, size, tags (and the day a retiring entry leaves).
fn changes(b: &mut String, r: &RulesetRun) {
    if r.changes.is_empty() {
        return;
    }
    let verb = if r.status.is_withheld() {
        "Changes withheld"
    } else if r.status == RulesetStatus::WouldPublish {
        "Changes it would publish"
    } else {
        "Changes"
    };
    let _ = writeln!(
        b,
        "<p>{verb}: {}</p>",
        escape(&crate::rules::summary::changes_line(&r.changes))
    );
    b.push_str(&super::address_changes::html(
        &r.changes,
        MAX_LISTED,
        "last-run.json",
    ));
    b.push_str("<p>Firewall entries:</p>\n<table><tr><th></th><th>CIDR</th><th>addresses</th><th>tags</th></tr>\n");
    for (family, delta) in &r.changes {
        let fam = Family::from_key(family);
        for (mark, class, list) in [
            ("+", "plus", &delta.added),
            ("−", "minus", &delta.removed),
            ("~", "", &delta.retiring),
        ] {
            for c in list.iter().take(MAX_LISTED) {
                let amount = c.amount(fam);
                let until = c
                    .until
                    .as_deref()
                    .map(|d| format!(" — retiring until {}", escape(d)))
                    .unwrap_or_default();
                let _ = writeln!(
                    b,
                    "<tr><td class=\"{class}\">{mark}</td><td><code>{}</code></td><td class=\"n\">{}</td><td>{}{until}</td></tr>",
                    escape(&c.cidr),
                    escape(&amount),
                    escape(&c.tags.join(", "))
                );
            }
            if list.len() > MAX_LISTED {
                let _ = writeln!(
                    b,
                    "<tr><td></td><td colspan=\"3\">… {} more {family} entries (all in last-run.json)</td></tr>",
                    list.len() - MAX_LISTED
                );
            }
        }
    }
    b.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::summary::{EntryChange, FamilyDelta};

    #[test]
    fn the_page_names_changes_withheld_rulesets_and_escapes_tags() {
        let mut r = RulesetRun::failed("entra-connector", String::new());
        r.error = None;
        r.status = RulesetStatus::Withheld;
        r.reasons = vec!["IPv4: 12% of the addresses would go".into()];
        r.changes.insert(
            "ipv4".into(),
            FamilyDelta {
                added: vec![EntryChange {
                    cidr: "20.1.0.0/24".into(),
                    tags: vec!["<script>x</script>".into()],
                    addresses: 256.into(),
                    until: None,
                }],
                ..FamilyDelta::default()
            },
        );
        let mut s = Summary::failed("2026-12-01T00:00:00Z".into(), String::new());
        s.error = None;
        s.exit_code = 3;
        s.rulesets = vec![r];
        let mut out = Vec::new();
        write(&mut out, &s).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("<h2>Ruleset <code>entra-connector</code>: withheld</h2>"),
            "{html}"
        );
        assert!(
            html.contains("tagwall approve entra-connector --show"),
            "{html}"
        );
        assert!(
            html.contains("<code>20.1.0.0/24</code></td><td class=\"n\">256 addresses"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script>x"),
            "{html}"
        );
    }
}
