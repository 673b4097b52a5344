//! Self-contained HTML pages (no external assets): the diff report and a tag's history.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::core::diff::{Diff, TagStatus};
use crate::core::history::Entry;
use crate::core::model::SnapshotInfo;
use crate::render::diff_json::anomaly_text;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse}\
td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.anomaly{background:#fff4ce;border-left:4px solid #e8a800;padding:.4em .8em;margin:.3em 0}\
.bar{display:inline-block;height:.8em}.add{background:#2da44e}.rem{background:#cf222e}\
details{margin:.2em 0}summary{cursor:pointer}code,pre{font:12px ui-monospace,monospace}\
pre{background:#f6f8fa;padding:.5em;margin:.3em 0 .6em 1.2em}.plus{color:#116329}.minus{color:#a40e26}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn page(out: &mut impl Write, title: &str, body: &str) -> io::Result<()> {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// The diff report: summary table, anomalies, per-region bars, collapsible per-tag details.
pub fn write_diff(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> io::Result<()> {
    write_report(out, diff, from, to, "")
}

/// The diff report with `opening` (HTML: the weekly report's "Your rulesets") after the title.
pub fn write_report(
    out: &mut impl Write,
    diff: &Diff,
    from: &SnapshotInfo,
    to: &SnapshotInfo,
    opening: &str,
) -> io::Result<()> {
    let title = format!(
        "{} service tags: {} → {}",
        from.cloud, from.file_date, to.file_date
    );
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        b,
        "<p>id:{} (changeNumber {}) → id:{} (changeNumber {})</p>",
        from.id, from.change_number, to.id, to.change_number
    );
    b.push_str(opening);
    let (added, removed) = diff.pairs();
    let (v4a, v4r, v6a, v6r) = diff.addresses;
    if diff.is_empty() {
        b.push_str("<p><strong>No content change.</strong></p>\n");
    }
    b.push_str("<table><tr><th>change</th><th>added</th><th>removed</th></tr>\n");
    let rows = [
        (
            "tags",
            diff.count(TagStatus::Added).to_string(),
            diff.count(TagStatus::Removed).to_string(),
        ),
        (
            "(tag, prefix) pairs",
            added.to_string(),
            removed.to_string(),
        ),
        ("IPv4 addresses", v4a.to_string(), v4r.to_string()),
        ("IPv6 addresses", v6a.to_string(), v6r.to_string()),
    ];
    for (name, a, r) in rows {
        let _ = writeln!(
            b,
            "<tr><td>{name}</td><td class=\"n\">{a}</td><td class=\"n\">{r}</td></tr>"
        );
    }
    let _ = writeln!(
        b,
        "</table>\n<p>{} tags changed.</p>",
        diff.count(TagStatus::Changed)
    );
    for a in &diff.anomalies {
        let _ = writeln!(
            b,
            "<div class=\"anomaly\">⚠ {}</div>",
            escape(&anomaly_text(a).1)
        );
    }
    region_bars(&mut b, diff);
    if !diff.tags.is_empty() {
        b.push_str("<h2>Tags</h2>\n");
    }
    for t in &diff.tags {
        let mark = match t.status {
            TagStatus::Added => "added",
            TagStatus::Removed => "removed",
            TagStatus::Changed => "changed",
        };
        let _ = write!(
            b,
            "<details><summary><code>{}</code> {mark}: +{} −{}</summary>",
            escape(&t.name),
            t.prefixes_added.len(),
            t.prefixes_removed.len()
        );
        for c in t.metadata_changes() {
            let _ = write!(
                b,
                "<div>{}: <code>{}</code> → <code>{}</code></div>",
                c.field,
                escape(&c.from),
                escape(&c.to)
            );
        }
        b.push_str("<pre>");
        prefix_lines(&mut b, &t.prefixes_added, &t.prefixes_removed);
    }
    page(out, &title, &b)
}

fn region_bars(b: &mut String, diff: &Diff) {
    if diff.regions.is_empty() {
        return;
    }
    let max = diff
        .regions
        .values()
        .map(|r| r.prefixes_added.max(r.prefixes_removed))
        .max()
        .unwrap_or(1)
        .max(1);
    let width = |n: u64| n * 200 / max;
    b.push_str("<h2>Regions</h2>\n<table><tr><th>region</th><th>pairs added / removed</th></tr>\n");
    for (name, r) in &diff.regions {
        let name = if name.is_empty() { "(global)" } else { name };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td><span class=\"bar add\" style=\"width:{}px\"></span> +{}<br><span class=\"bar rem\" style=\"width:{}px\"></span> −{}</td></tr>",
            escape(name),
            width(r.prefixes_added),
            r.prefixes_added,
            width(r.prefixes_removed),
            r.prefixes_removed
        );
    }
    b.push_str("</table>\n");
}

/// A tag's history: an SVG chart of its IPv4 and IPv6 prefix counts, then the weekly changes.
pub fn write_history(out: &mut impl Write, tag: &str, entries: &[Entry]) -> io::Result<()> {
    let cloud = entries.first().map_or("", |e| e.snapshot.cloud.name());
    let title = format!("{tag} ({cloud}): history");
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", escape(&title));
    b.push_str(&chart(entries));
    b.push_str("<h2>Changes</h2>\n");
    for e in entries
        .iter()
        .filter(|e| !e.prefixes_added.is_empty() || !e.prefixes_removed.is_empty())
    {
        let _ = write!(
            b,
            "<details><summary>{} (id:{}): +{} −{}</summary><pre>",
            e.snapshot.file_date,
            e.snapshot.id,
            e.prefixes_added.len(),
            e.prefixes_removed.len()
        );
        prefix_lines(&mut b, &e.prefixes_added, &e.prefixes_removed);
    }
    page(out, &title, &b)
}

/// Added and removed prefixes as coloured lines, closing the `<pre>` and `<details>` they sit in.
fn prefix_lines(b: &mut String, added: &[ipnet::IpNet], removed: &[ipnet::IpNet]) {
    for p in added {
        let _ = writeln!(b, "<span class=\"plus\">+ {p}</span>");
    }
    for p in removed {
        let _ = writeln!(b, "<span class=\"minus\">- {p}</span>");
    }
    b.push_str("</pre></details>\n");
}

/// An inline SVG line chart of the IPv4 (green) and IPv6 (blue) prefix counts per snapshot.
pub fn chart(entries: &[Entry]) -> String {
    let (w, h, pad) = (720.0f64, 240.0f64, 40.0f64);
    let max = entries
        .iter()
        .map(|e| e.ipv4_prefixes.max(e.ipv6_prefixes))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = entries.len().max(2) as f64 - 1.0;
    let point = |i: usize, v: i64| {
        let x = pad + (w - 2.0 * pad) * i as f64 / n;
        let y = h - pad - (h - 2.0 * pad) * v as f64 / max;
        format!("{x:.1},{y:.1}")
    };
    let line = |f: fn(&Entry) -> i64| {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| point(i, f(e)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"prefix counts over time\">\n"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        h - pad,
        w - pad,
        h - pad
    );
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">{max}</text>",
        pad + 4.0
    );
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">0</text>",
        h - pad
    );
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#2da44e\" stroke-width=\"2\" points=\"{}\"/>",
        line(|e| e.ipv4_prefixes)
    );
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{}\"/>",
        line(|e| e.ipv6_prefixes)
    );
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        let _ = writeln!(
            s,
            "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text>",
            h - 12.0,
            first.snapshot.file_date
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            w - pad,
            h - 12.0,
            last.snapshot.file_date
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"14\" font-size=\"11\" fill=\"#2da44e\">IPv4 prefixes</text>",
        w - 200.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"14\" font-size=\"11\" fill=\"#0969da\">IPv6 prefixes</text>",
        w - 100.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
