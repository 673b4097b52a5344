//! `/reports/`, `/reports/<cloud>/` and `/reports/<cloud>/<date>`: the weekly reports, each
//! opening with what changes in each ruleset of the cloud.

use std::fmt::Write as _;

use super::super::html::esc;
use super::View;

/// The clouds whose reports the viewer may read: those of the rulesets it may read.
pub fn clouds<'v>(v: &'v View<'_>) -> Vec<&'v str> {
    let mut c: Vec<&str> = v.rulesets().map(|r| r.cloud.name()).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// `/reports/`.
pub fn index(v: &View<'_>) -> String {
    let mut b = String::from("<h1>Weekly reports</h1><ul>");
    for cloud in clouds(v) {
        let n = v.model.reports.get(cloud).map_or(0, Vec::len);
        let _ = write!(
            b,
            "<li><a href=\"/reports/{0}/\">{0}</a>: {n} reports</li>",
            esc(cloud)
        );
    }
    b.push_str("</ul>");
    b
}

/// `/reports/<cloud>/`; `None` when the viewer may not read it.
pub fn cloud(v: &View<'_>, cloud: &str) -> Option<String> {
    if !clouds(v).contains(&cloud) {
        return None;
    }
    let dates = v
        .model
        .reports
        .get(cloud)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut b = format!("<h1>Weekly reports of {}</h1>", esc(cloud));
    if dates.is_empty() {
        b.push_str("<p>No report yet: a report compares a week's file with the one before it.</p>");
    }
    b.push_str("<ul>");
    for d in dates {
        let _ = write!(
            b,
            "<li><a href=\"/reports/{0}/{1}\">{1}</a></li>",
            esc(cloud),
            esc(d)
        );
    }
    b.push_str("</ul>");
    Some(b)
}

/// A generated report page (`render::report::html`) as a part of a site page: its stylesheet
/// kept to the report, its body inside a `div`.
pub fn embed(report: &str) -> String {
    let style = between(report, "<style>", "</style>").unwrap_or_default();
    let body = between(report, "<body>", "</body>").unwrap_or_default();
    format!(
        "<style>{}</style><div class=\"report\">{body}</div>",
        style.replace("body{", ".report{")
    )
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find(close)?;
    Some(&text[start..end])
}
