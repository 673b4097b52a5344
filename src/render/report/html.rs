//! Self-contained HTML pages (no external assets): the diff report and a tag's history.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::core::diff::{Diff, TagStatus};
use crate::core::history::Entry;
use crate::core::model::SnapshotInfo;
use crate::core::ranges::Family::{V4, V6};
use crate::core::ranges::{AddrSet, Family};
use crate::render::report::diff_json::anomaly_text;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:1.5em 2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse}\
td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.anomaly{background:#fff4ce;border-left:4px solid #e8a800;padding:.4em .8em;margin:.3em 0}\
.bar{display:inline-block;height:.8em}.add{background:#2da44e}.rem{background:#cf222e}\
details{margin:.2em 0}summary{cursor:pointer}code,pre{font:12px ui-monospace,monospace}\
pre{background:#f6f8fa;padding:.5em;margin:.3em 0 .6em 1.2em;white-space:pre-wrap}.plus{color:#116329}.minus{color:#a40e26}\
.meta td{border:0;padding:.1em .7em .1em 0;color:#555}.tagmeta{color:#555;font-size:.92em}svg{max-width:100%;height:auto}\
@media print{body{margin:0;font-size:11px}.noprint{display:none}details::details-content{content-visibility:visible;display:block}\
summary{list-style:none}pre{background:none;border-left:2px solid #ccc}h2{break-after:avoid}}";

/// Opens every `<details>` for "Expand all" and before printing (the print stylesheet shows
/// their content too, for browsers without the `beforeprint` event).
const SCRIPT: &str =
    "function tw(o){document.querySelectorAll('details').forEach(function(d){d.open=o})}\
window.addEventListener('beforeprint',function(){tw(true)});";

/// The buttons a page with collapsible parts opens with.
const BUTTONS: &str =
    "<p class=\"noprint\"><button type=\"button\" onclick=\"tw(true)\">Expand all</button> \
     <button type=\"button\" onclick=\"tw(false)\">Collapse all</button></p>\n";

/// A page of [`page`] without its script and the buttons that use it: mail gateways quarantine
/// HTML with scripts, and mail clients do not run them (`<details>` still open by a click).
pub fn for_mail(html: &str) -> String {
    html.replacen(BUTTONS, "", 1)
        .replacen(&format!("<script>{SCRIPT}</script>\n"), "", 1)
}

/// When the page was generated: `SOURCE_DATE_EPOCH` (seconds, for reproducible output) when
/// set, else now; UTC.
fn generated_at() -> String {
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now);
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

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

/// A whole page: the body, with "Expand all" / "Collapse all" when it has collapsible parts, and
/// a footer saying when and by which tagwall it was generated.
pub(crate) fn page(out: &mut impl Write, title: &str, body: &str) -> io::Result<()> {
    let buttons = if body.contains("<details") {
        BUTTONS
    } else {
        ""
    };
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{buttons}{body}\
         <footer class=\"tagmeta\"><p>Generated at {} by tagwall {}.</p></footer>\n\
         <script>{SCRIPT}</script>\n</body></html>\n",
        escape(title),
        generated_at(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The two snapshots' records: file date, id, changeNumber, source, sha256 of the file.
fn sources(b: &mut String, from: &SnapshotInfo, to: &SnapshotInfo) {
    b.push_str("<table class=\"meta\">\n");
    for (side, s) in [("from", from), ("to", to)] {
        let _ = writeln!(
            b,
            "<tr><td>{side}</td><td>{} {} (id:{}, changeNumber {})</td><td>source <code>{}</code></td><td>sha256 <code>{}</code></td></tr>",
            s.cloud,
            s.file_date,
            s.id,
            s.change_number,
            escape(&s.source),
            escape(&s.sha256)
        );
    }
    b.push_str("</table>\n");
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
    sources(&mut b, from, to);
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
        ("IPv4", V4.amount(v4a), V4.amount(v4r)),
        ("IPv6", V6.amount(v6a), V6.amount(v6r)),
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
            "<details><summary><code>{}</code> {mark}: +{} −{} prefixes <span class=\"tagmeta\">{}</span></summary>",
            escape(&t.name),
            t.prefixes_added.len(),
            t.prefixes_removed.len(),
            tag_facts(t)
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

/// A tag's region, systemService and the addresses its change adds and removes, per family.
fn tag_facts(t: &crate::core::diff::TagChange) -> String {
    let mut facts = Vec::new();
    if let Some(m) = t.after.as_ref().or(t.before.as_ref()) {
        let region = if m.region.is_empty() {
            "(global)"
        } else {
            &m.region
        };
        facts.push(format!("region {}", escape(region)));
        if !m.system_service.is_empty() {
            facts.push(format!("systemService {}", escape(&m.system_service)));
        }
    }
    for family in [V4, V6] {
        let count = |list: &[ipnet::IpNet]| {
            let of: Vec<&ipnet::IpNet> = list.iter().filter(|p| Family::of(p) == family).collect();
            (!of.is_empty()).then(|| AddrSet::from_prefixes(family, of).count())
        };
        match (count(&t.prefixes_added), count(&t.prefixes_removed)) {
            (None, None) => {}
            (a, r) => facts.push(format!(
                "{} +{} −{}",
                family.label(),
                family.amount(a.unwrap_or(0)),
                family.amount(r.unwrap_or(0))
            )),
        }
    }
    facts.join(" · ")
}

/// Regions shown before the rest are folded away.
const TOP_REGIONS: usize = 10;

/// The regions with the most changed pairs as bars, the others folded.
fn region_bars(b: &mut String, diff: &Diff) {
    if diff.regions.is_empty() {
        return;
    }
    let mut regions: Vec<(&String, &crate::core::diff::RegionChange)> =
        diff.regions.iter().collect();
    regions.sort_by(|x, y| {
        let size = |r: &crate::core::diff::RegionChange| r.prefixes_added + r.prefixes_removed;
        size(y.1).cmp(&size(x.1)).then(x.0.cmp(y.0))
    });
    let max = regions
        .iter()
        .map(|(_, r)| r.prefixes_added.max(r.prefixes_removed))
        .max()
        .unwrap_or(1)
        .max(1);
    let width = |n: u64| n * 200 / max;
    let row = |b: &mut String, name: &str, r: &crate::core::diff::RegionChange| {
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
    };
    let head = "<table><tr><th>region</th><th>pairs added / removed</th></tr>\n";
    let _ = write!(
        b,
        "<h2>Regions ({} changed{})</h2>\n{head}",
        regions.len(),
        if regions.len() > TOP_REGIONS {
            ", the 10 with most changes first"
        } else {
            ""
        }
    );
    for (name, r) in regions.iter().take(TOP_REGIONS) {
        row(b, name, r);
    }
    b.push_str("</table>\n");
    if regions.len() > TOP_REGIONS {
        let _ = write!(
            b,
            "<details><summary>{} more regions</summary>{head}",
            regions.len() - TOP_REGIONS
        );
        for (name, r) in regions.iter().skip(TOP_REGIONS) {
            row(b, name, r);
        }
        b.push_str("</table></details>\n");
    }
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

/// An inline SVG line chart of the IPv4 (green) and IPv6 (blue) prefix counts per snapshot, on a
/// time axis: snapshots sit at their file dates (a quarter without files is a quarter wide), with
/// labelled ticks (years, or months for a short history) and a dot per snapshot.
pub fn chart(entries: &[Entry]) -> String {
    use chrono::Datelike;
    let (w, h, pad) = (960.0f64, 260.0f64, 48.0f64);
    let max = entries
        .iter()
        .map(|e| e.ipv4_prefixes.max(e.ipv6_prefixes))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let day = |d: chrono::NaiveDate| f64::from(d.num_days_from_ce());
    let first = entries.first().map_or(0.0, |e| day(e.snapshot.file_date));
    let last = entries.last().map_or(0.0, |e| day(e.snapshot.file_date));
    let span = (last - first).max(1.0);
    let x = |d: chrono::NaiveDate| {
        if entries.len() < 2 {
            w / 2.0
        } else {
            pad + (w - 2.0 * pad) * (day(d) - first) / span
        }
    };
    let y = |v: i64| h - pad - (h - 2.0 * pad) * v as f64 / max;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"prefix counts over time\" font-size=\"11\">\n"
    );
    // The value axis: 0, half and the maximum, with grid lines.
    for v in [0.0, max / 2.0, max] {
        let yy = h - pad - (h - 2.0 * pad) * v / max;
        let _ = writeln!(
            s,
            "<line x1=\"{pad}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - pad,
            pad - 6.0,
            yy + 4.0,
            v.round()
        );
    }
    // The time axis: a tick per year, or per month when the history is shorter than two years.
    if let (Some(a), Some(b)) = (entries.first(), entries.last()) {
        let (start, end) = (a.snapshot.file_date, b.snapshot.file_date);
        let monthly = end.signed_duration_since(start).num_days() < 730;
        let mut tick = chrono::NaiveDate::from_ymd_opt(
            start.year(),
            if monthly { start.month() } else { 1 },
            1,
        )
        .unwrap_or(start);
        let mut drawn = 0;
        while tick <= end {
            if tick >= start {
                drawn += 1;
                let tx = x(tick);
                let label = if monthly {
                    tick.format("%Y-%m").to_string()
                } else {
                    tick.year().to_string()
                };
                let _ = writeln!(
                    s,
                    "<line x1=\"{tx:.1}\" y1=\"{pad}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                    h - pad + 5.0,
                    h - pad + 18.0
                );
            }
            tick = if monthly {
                tick.checked_add_months(chrono::Months::new(1))
            } else {
                tick.with_year(tick.year() + 1)
            }
            .unwrap_or(chrono::NaiveDate::MAX);
        }
        // Within one month no tick falls inside: the ends are labelled instead.
        if drawn == 0 {
            for (d, anchor) in [(start, "start"), (end, "end")] {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{d}</text>",
                    x(d),
                    h - pad + 18.0
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        h - pad,
        w - pad,
        h - pad
    );
    for (colour, value) in [
        (
            "#2da44e",
            (|e: &Entry| e.ipv4_prefixes) as fn(&Entry) -> i64,
        ),
        ("#0969da", |e: &Entry| e.ipv6_prefixes),
    ] {
        let points: Vec<String> = entries
            .iter()
            .map(|e| format!("{:.1},{:.1}", x(e.snapshot.file_date), y(value(e))))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for e in entries {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"><title>{} (id:{}): {}</title></circle>",
                x(e.snapshot.file_date),
                y(value(e)),
                e.snapshot.file_date,
                e.snapshot.id,
                value(e)
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"14\" fill=\"#2da44e\">IPv4 prefixes</text><text x=\"{}\" y=\"14\" fill=\"#0969da\">IPv6 prefixes</text>",
        w - 220.0,
        w - 110.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(date: &str, v4: i64) -> Entry {
        let mut info = crate::core::model::fixtures::info(1, 1);
        info.file_date = date.parse().unwrap();
        Entry {
            snapshot: info,
            first: false,
            present: true,
            ipv4_prefixes: v4,
            ipv6_prefixes: 1,
            prefixes_added: Vec::new(),
            prefixes_removed: Vec::new(),
        }
    }

    /// The x coordinates of the IPv4 line's dots.
    fn dots(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|l| l.starts_with("<circle") && l.contains("#2da44e"))
            .map(|l| {
                let from = l.find("cx=\"").unwrap() + 4;
                let to = from + l[from..].find('"').unwrap();
                l[from..to].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn the_history_chart_spaces_snapshots_by_date_with_year_ticks() {
        let entries = [
            entry("2019-07-22", 10),
            entry("2024-07-22", 20),
            entry("2024-07-29", 30),
            entry("2025-07-28", 40),
        ];
        let svg = chart(&entries);
        for year in 2020..=2025 {
            assert!(svg.contains(&format!(">{year}</text>")), "{year}");
        }
        let x = dots(&svg);
        // Five years before the second point, one week between the second and third.
        assert!(x[1] - x[0] > 30.0 * (x[2] - x[1]), "{x:?}");
        assert!((x[3] - x[0] - (960.0 - 96.0)).abs() < 0.5, "{x:?}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
