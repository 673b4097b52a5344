//! `/pending/<name>`: a withheld change. First the guard's reason and the change in addresses
//! in words and numbers, then the forms that decide it (for an approve token), then the ranges
//! and the firewall entries, each with its tags.

use std::fmt::Write as _;

use super::super::html::esc;
use super::View;
use crate::publish::baseline::Published;

/// The most firewall entries listed on the page; the counts are always whole.
const MAX_ENTRIES: usize = 20_000;

/// The page body; `None` when the viewer may not read `name` or nothing is pending.
/// `decide`: the session's CSRF token when the viewer may approve.
pub fn body(v: &View<'_>, name: &str, decide: Option<&str>) -> Option<String> {
    v.rulesets().find(|r| r.name == name)?;
    if let Some(why) = v.model.pending_errors.get(name) {
        return Some(format!(
            "<h1>Pending change of {}</h1><p class=\"banner bad\">The withheld change cannot be shown: {}</p>",
            esc(name),
            esc(why)
        ));
    }
    let p = v.model.pending.get(name)?;
    let r = &p.review;
    let mut b = format!(
        "<h1>Pending change of {}</h1><p class=\"banner\"><strong>Withheld by the guard</strong> for {}: {}</p>",
        esc(name),
        esc(&r.marker.snapshot),
        esc(&r.marker.reasons.join("; "))
    );
    b.push_str("<p>The firewalls keep the published list until this is approved. If approved, the list changes by:</p>");
    b.push_str(&super::change_words(&r.changes));
    if let Published::Damaged(why) = &r.published {
        let _ = write!(
            b,
            "<p class=\"banner bad\">The published directory is damaged ({}): every entry below would be written.</p>",
            esc(why)
        );
    }
    match decide {
        Some(csrf) => forms(&mut b, name, csrf),
        None => b.push_str("<p class=\"muted noprint\">Log in with a token of role approve to approve or reject this change.</p>"),
    }
    b.push_str("<h2>Addresses</h2>");
    b.push_str(&super::range_tables(&r.changes));
    entries(&mut b, r);
    Some(b)
}

fn forms(b: &mut String, name: &str, csrf: &str) {
    for (action, verb, what) in [
        (
            "approve",
            "Approve and publish",
            "Why it is safe (recorded with your name)",
        ),
        (
            "reject",
            "Reject",
            "Why not (recorded with your name); the published list stays",
        ),
    ] {
        let _ = write!(
            b,
            "<form class=\"decide\" method=\"post\" action=\"/pending/{0}/{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{1}\">\
             <label for=\"comment-{action}\">{what}</label><br>\
             <textarea id=\"comment-{action}\" name=\"comment\" rows=\"2\" maxlength=\"500\" required></textarea><br>\
             <button class=\"primary\" type=\"submit\" id=\"{action}\">{verb}</button></form>",
            esc(name),
            esc(csrf)
        );
    }
}

fn entries(b: &mut String, r: &crate::job::approve::Review) {
    let (added, removed): (usize, usize) = r
        .changes
        .values()
        .fold((0, 0), |(a, d), f| (a + f.added.len(), d + f.removed.len()));
    let _ = write!(
        b,
        "<h2>Firewall entries: +{added} / −{removed}</h2><table><tr><th></th><th>entry</th><th>tags</th></tr>"
    );
    let mut shown = 0;
    for (mark, class, pick) in [("+", "plus", true), ("−", "minus", false)] {
        for f in r.changes.values() {
            for c in if pick { &f.added } else { &f.removed } {
                if shown == MAX_ENTRIES {
                    break;
                }
                shown += 1;
                let _ = write!(
                    b,
                    "<tr><td class=\"{class}\">{mark}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                    esc(&c.cidr),
                    esc(&c.tags.join(", "))
                );
            }
        }
    }
    b.push_str("</table>");
    if shown < added + removed {
        let _ = write!(
            b,
            "<p>{} more entries are not listed here.</p>",
            added + removed - shown
        );
    }
}
