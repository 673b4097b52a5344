//! `/lookup?q=ADDR`: which tags hold an address or network, which rulesets allow it, and
//! since when — per cloud of the rulesets the viewer may read.

use std::fmt::Write as _;

use super::super::html::esc;
use super::View;
use crate::rules::lookup::{Relation, Report};

/// The page body: the form, then `result` (none before a query).
pub fn body(v: &View<'_>, q: &str, result: Option<Result<Vec<Report>, String>>) -> String {
    let mut b = format!(
        "<h1>Look up an address</h1><form method=\"get\" action=\"/lookup\" class=\"noprint\">\
         <label for=\"q\">IP address or network</label><br>\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" placeholder=\"20.38.98.1 or 2603:1000::/40\"> \
         <button class=\"primary\" type=\"submit\">Look up</button></form>",
        esc(q)
    );
    match result {
        None => {}
        Some(Err(e)) => {
            let _ = write!(b, "<p class=\"banner bad\">{}</p>", esc(&e));
        }
        Some(Ok(reports)) if reports.is_empty() => {
            b.push_str("<p>No snapshot is stored yet for the clouds of your rulesets.</p>");
        }
        Some(Ok(reports)) => {
            for r in &reports {
                report(&mut b, v, r);
            }
        }
    }
    b
}

fn report(b: &mut String, v: &View<'_>, r: &Report) {
    let allowed: Vec<_> = r
        .verdicts
        .iter()
        .filter(|x| v.access.allows(&x.ruleset))
        .collect();
    let yes: Vec<&str> = allowed
        .iter()
        .filter(|x| x.allows)
        .map(|x| x.ruleset.as_str())
        .collect();
    let _ = write!(
        b,
        "<h2>{} in {} {}</h2><p class=\"big\">{}</p>",
        esc(&r.query.to_string()),
        esc(r.snapshot.cloud.name()),
        esc(&r.snapshot.file_date.to_string()),
        if r.found.is_empty() {
            "No tag holds it.".to_string()
        } else if yes.is_empty() {
            format!(
                "{} tags hold it; none of your rulesets allows all of it.",
                r.found.len()
            )
        } else {
            format!(
                "{} tags hold it; allowed by {}.",
                r.found.len(),
                esc(&yes.join(", "))
            )
        }
    );
    if !allowed.is_empty() {
        b.push_str("<table><tr><th>ruleset</th><th>allows it</th><th>through</th></tr>");
        for x in allowed {
            // The note under the answer: a column of its own would be squeezed at 400 px.
            let _ = write!(
                b,
                "<tr><td><a href=\"/rulesets/{0}/\">{0}</a></td><td><strong>{1}</strong><br><span class=\"muted\">{3}</span></td><td>{2}</td></tr>",
                esc(&x.ruleset),
                if x.allows { "yes" } else { "no" },
                esc(&x.via.join(", ")),
                esc(x.note.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</table>");
    }
    if !r.found.is_empty() {
        b.push_str("<table><tr><th>tag</th><th>region</th><th>service</th><th>holds</th><th>prefixes</th><th>since</th></tr>");
        for f in &r.found {
            let since = r
                .history
                .iter()
                .find(|(t, _)| *t == f.tag)
                .and_then(|(_, spans)| spans.last())
                .map(|s| s.from.to_string())
                .unwrap_or_default();
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                esc(&f.tag),
                esc(&f.region),
                esc(&f.system_service),
                if f.relation == Relation::Contains { "all" } else { "part" },
                esc(&f.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")),
                esc(&since)
            );
        }
        b.push_str("</table>");
    }
}
