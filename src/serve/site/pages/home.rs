//! `/`: every ruleset the viewer may read — whether it is served, the snapshot it is published
//! from and when, the last change in addresses, and whether a change waits for review.

use std::fmt::Write as _;

use super::super::html::{badge, esc, when, when_time};
use super::View;
use crate::core::ranges::Family;

/// The page body.
pub fn body(v: &View<'_>) -> String {
    let mut b = String::from("<h1>Firewall allowlists</h1>");
    let waiting: Vec<&str> = v
        .rulesets()
        .filter(|r| v.model.waits(&r.name))
        .map(|r| r.name.as_str())
        .collect();
    if waiting.is_empty() {
        b.push_str("<p class=\"banner ok\">No change waits for review: every ruleset is published as the guard allowed.</p>");
    } else {
        let _ = write!(
            b,
            "<p class=\"banner\"><strong>{} change{} wait{} for review</strong>: {}. The firewalls keep the published lists until someone approves.</p>",
            waiting.len(),
            if waiting.len() == 1 { "" } else { "s" },
            if waiting.len() == 1 { "s" } else { "" },
            waiting
                .iter()
                .map(|n| format!("<a href=\"/pending/{0}\">{0}</a>", esc(n)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for p in &v.model.problems {
        let _ = write!(b, "<p class=\"banner bad\">{}</p>", esc(p));
    }
    if let Some(at) = &v.model.last_run {
        let _ = write!(
            b,
            "<p class=\"muted\">Last sync finished {}.</p>",
            esc(&when(at))
        );
    }
    b.push_str("<div class=\"cards\">");
    for r in v.rulesets() {
        card(&mut b, v, &r.name, r.cloud.name());
    }
    b.push_str("</div>");
    b
}

fn card(b: &mut String, v: &View<'_>, name: &str, cloud: &str) {
    let served = v.index.rulesets.get(name);
    let status = if v.model.waits(name) {
        badge("warn", "change pending")
    } else if let Some(why) = v.index.problems.get(name) {
        format!(
            "{} <span class=\"muted\">{}</span>",
            badge("bad", "problem"),
            esc(why)
        )
    } else if served.is_some() {
        badge("ok", "served")
    } else {
        badge("bad", "not published")
    };
    let _ = write!(
        b,
        "<section class=\"card\"><h2><a href=\"/rulesets/{0}/\">{0}</a> {status}</h2><p class=\"muted\">{1}</p>",
        esc(name),
        esc(cloud)
    );
    if let Some(s) = served {
        let _ = write!(
            b,
            "<p>Published from <strong>{}</strong> at {}.</p>",
            esc(&s.snapshot),
            when_time(s.published)
        );
    }
    if let Some(run) = v.model.runs.get(name) {
        for (key, c) in &run.families {
            let f = Family::from_key(key);
            let _ = write!(
                b,
                "<p>{}: {} entries, {}.</p>",
                f.label(),
                c.entries,
                esc(&f.amount_text(&c.addresses))
            );
        }
        let _ = write!(
            b,
            "<p>Last run: <strong>{}</strong>.</p>",
            esc(&run.status.to_string())
        );
        if !crate::rules::summary::any_change(&run.changes) {
            b.push_str("<p>No change in addresses in the last run.</p>");
        } else if run.status.is_withheld() {
            b.push_str("<p>Withheld; if approved, the list changes by:</p>");
            b.push_str(&super::change_words(&run.changes));
        } else {
            b.push_str("<p>The last change:</p>");
            b.push_str(&super::change_words(&run.changes));
        }
    }
    if v.model.waits(name) {
        let _ = write!(
            b,
            "<p><a href=\"/pending/{0}\"><strong>Review the pending change of {0}</strong></a></p>",
            esc(name)
        );
    }
    b.push_str("</section>");
}
