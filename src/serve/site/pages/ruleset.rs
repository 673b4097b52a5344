//! `/rulesets/<name>/`: one ruleset — its status, the files firewalls load (links), and its
//! history: every kept publish with the change in addresses, every approval and rejection.

use std::fmt::Write as _;

use super::super::html::{badge, esc, when, when_time};
use super::View;

/// The page body; `None` when the viewer may not read `name` or it is not configured.
pub fn body(v: &View<'_>, name: &str) -> Option<String> {
    let r = v.rulesets().find(|r| r.name == name)?;
    let tags: Vec<&str> = r.selector.tags.iter().map(|t| t.text.as_str()).collect();
    let mut b = format!(
        "<h1>Ruleset {}</h1><p class=\"muted\">{} · tags {}</p>",
        esc(name),
        esc(r.cloud.name()),
        esc(&tags.join(", "))
    );
    if v.model.waits(name) {
        let _ = write!(
            b,
            "<p class=\"banner\"><strong>A change waits for review.</strong> <a href=\"/pending/{}\">Review it</a>; the firewalls keep the list below until it is approved.</p>",
            esc(name)
        );
    }
    match v.index.rulesets.get(name) {
        Some(s) => {
            let _ = write!(
                b,
                "<p>{} Published from <strong>{}</strong> at {}.</p>",
                badge("ok", "served"),
                esc(&s.snapshot),
                when_time(s.published)
            );
            if let Some(why) = v.index.problems.get(name) {
                let _ = write!(b, "<p class=\"banner bad\">{}</p>", esc(why));
            }
            b.push_str("<h2>Files</h2><table><tr><th>file</th><th class=\"n\">bytes</th><th>sha256</th></tr>");
            for (f, file) in &s.files {
                let _ = write!(
                    b,
                    "<tr><td><a href=\"/rulesets/{0}/{1}\">{1}</a></td><td class=\"n\">{2}</td><td class=\"mono\">{3}</td></tr>",
                    esc(name),
                    esc(f),
                    file.body.len(),
                    esc(&file.sha256)
                );
            }
            b.push_str("</table>");
        }
        None => {
            let why = v
                .index
                .problems
                .get(name)
                .map_or("nothing is published yet", String::as_str);
            let _ = write!(b, "<p>{} {}</p>", badge("bad", "not served"), esc(why));
        }
    }
    if let Some(run) = v.model.runs.get(name) {
        let _ = write!(b, "<h2>Last run: {}</h2>", esc(&run.status.to_string()));
        b.push_str(&super::change_words(&run.changes));
        for reason in &run.reasons {
            let _ = write!(b, "<p>Why: {}</p>", esc(reason));
        }
    }
    history(&mut b, v, name);
    Some(b)
}

fn history(b: &mut String, v: &View<'_>, name: &str) {
    b.push_str("<h2>History</h2>");
    let publishes = v
        .model
        .publishes
        .get(name)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let decisions: Vec<_> = v
        .model
        .approvals
        .iter()
        .filter(|a| a.ruleset == name)
        .rev()
        .collect();
    if publishes.is_empty() && decisions.is_empty() {
        b.push_str("<p>No publish or decision recorded yet.</p>");
        return;
    }
    if !decisions.is_empty() {
        b.push_str("<h3>Approvals and rejections</h3><table><tr><th>when</th><th>decision</th><th>who</th><th>snapshot</th><th>why</th><th>withheld because</th></tr>");
        for a in decisions {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&when(&a.approved_at)),
                a.decision.name(),
                esc(&a.approved_by),
                esc(&a.snapshot),
                esc(&a.comment),
                esc(&a.reasons.join("; "))
            );
        }
        b.push_str("</table>");
    }
    if !publishes.is_empty() {
        let _ = write!(
            b,
            "<h3>Publishes (the {} the store keeps)</h3><table><tr><th>when</th><th>snapshot</th><th>entries · addresses</th><th>change in addresses</th></tr>",
            publishes.len()
        );
        for p in publishes {
            let counts: Vec<String> = p
                .counts
                .iter()
                .filter(|(_, n, _)| *n > 0)
                .map(|(f, n, a)| format!("{}: {n} · {}", f.label(), f.amount(*a)))
                .collect();
            let change = match &p.change {
                None => "—".to_string(),
                Some(c) => c
                    .iter()
                    .filter(|(_, plus, minus)| plus + minus > 0)
                    .map(|(f, plus, minus)| {
                        format!(
                            "{}: <span class=\"plus\">+{}</span> <span class=\"minus\">−{}</span>",
                            f.label(),
                            f.amount(*plus),
                            f.amount(*minus)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>"),
            };
            let change = if change.is_empty() {
                "none".to_string()
            } else {
                change
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{change}</td></tr>",
                esc(&when(&p.at)),
                esc(&p.snapshot),
                esc(&counts.join("; "))
            );
        }
        b.push_str("</table>");
    }
}
