//! The change in addresses, the part every message leads with: per family, the addresses a
//! ruleset's list newly allows and no longer allows, each range with the tags that hold it (or
//! held it), at most a given number of ranges listed with how many more and where all of them
//! are. One writer per markup (terminal text, Markdown, HTML); tag names are escaped for each.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::core::text::{markdown, terminal};
use crate::rules::summary::{Changes, RangeChange};

use super::html::escape;

/// One range newly allowed or no longer allowed.
pub struct Row<'a> {
    /// Its family.
    pub family: Family,
    /// Newly allowed (else no longer allowed).
    pub allowed: bool,
    /// The range.
    pub range: &'a RangeChange,
}

impl Row<'_> {
    /// "+" or "−".
    pub fn mark(&self) -> &'static str {
        if self.allowed {
            "+"
        } else {
            "−"
        }
    }

    /// "256 addresses".
    pub fn amount(&self) -> String {
        self.family.amount_text(&self.range.addresses)
    }
}

/// Per family with a change: the family, its line ("newly allowed …, no longer allowed …") and
/// its ranges newly allowed and no longer allowed, each the largest first (a cut list shows
/// what matters most).
pub fn families<'a>(changes: &'a Changes) -> Vec<(Family, String, [Vec<Row<'a>>; 2])> {
    changes
        .iter()
        .filter(|(_, d)| d.addresses_changed())
        .map(|(key, d)| {
            let family = Family::from_key(key);
            let rows = |list: &'a [RangeChange], allowed: bool| sorted_rows(family, list, allowed);
            let line = d.addresses_line(family);
            (
                family,
                line,
                [rows(&d.allowed, true), rows(&d.disallowed, false)],
            )
        })
        .collect()
}

/// The rows of `list`, the largest first.
fn sorted_rows(family: Family, list: &[RangeChange], allowed: bool) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = list
        .iter()
        .map(|range| Row {
            family,
            allowed,
            range,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.range.addresses.parse::<u128>().unwrap_or(0)));
    rows
}

/// "… 12 more IPv4 ranges newly allowed (all in `whole_in`)".
fn more(n: usize, row: &Row<'_>, whole_in: &str) -> String {
    let what = if row.allowed {
        "newly allowed"
    } else {
        "no longer allowed"
    };
    format!(
        "… {n} more {} ranges {what} (all in {whole_in})",
        row.family.label()
    )
}

/// The rows listed of each direction (at most `most`), each followed by what a cut left out.
fn cut<'a, 'r>(
    sides: &'a [Vec<Row<'r>>; 2],
    most: usize,
    whole_in: &str,
) -> Vec<(Option<&'a Row<'r>>, Option<String>)> {
    let mut out = Vec::new();
    for rows in sides {
        out.extend(rows.iter().take(most).map(|r| (Some(r), None)));
        if rows.len() > most {
            out.push((None, Some(more(rows.len() - most, &rows[0], whole_in))));
        }
    }
    out
}

/// Terminal text, each line indented by `indent`: the family's line, then its ranges.
pub fn write_text(
    out: &mut impl Write,
    changes: &Changes,
    indent: &str,
    most: usize,
    whole_in: &str,
) -> io::Result<()> {
    for (family, line, sides) in families(changes) {
        writeln!(out, "{indent}{}: {line}", family.label())?;
        for (row, more) in cut(&sides, most, whole_in) {
            let Some(row) = row else {
                writeln!(out, "{indent}  {}", more.unwrap_or_default())?;
                continue;
            };
            let tags: Vec<String> = row.range.tags.iter().map(|t| terminal(t)).collect();
            writeln!(
                out,
                "{indent}  {} {} ({}{}{})",
                row.mark(),
                row.range.cidr,
                row.amount(),
                if tags.is_empty() { "" } else { "; " },
                tags.join(", ")
            )?;
        }
    }
    Ok(())
}

/// Markdown: a line per family, then its ranges as a list.
pub fn write_markdown(
    out: &mut impl Write,
    changes: &Changes,
    most: usize,
    whole_in: &str,
) -> io::Result<()> {
    for (family, line, sides) in families(changes) {
        writeln!(out, "**{}**: {line}\n", family.label())?;
        for (row, more) in cut(&sides, most, whole_in) {
            let Some(row) = row else {
                writeln!(out, "- {}", markdown(&more.unwrap_or_default()))?;
                continue;
            };
            let tags: Vec<String> = row.range.tags.iter().map(|t| markdown(t)).collect();
            writeln!(
                out,
                "- {} `{}` {}{}{}",
                row.mark(),
                row.range.cidr,
                row.amount(),
                if tags.is_empty() { "" } else { " — " },
                tags.join(", ")
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// HTML: a paragraph per family, then a table of its ranges.
pub fn html(changes: &Changes, most: usize, whole_in: &str) -> String {
    let mut b = String::new();
    for (family, line, sides) in families(changes) {
        b.push_str(&format!(
            "<p><strong>{}</strong>: {}</p>\n<table><tr><th></th><th>addresses</th><th>range</th><th>tags</th></tr>\n",
            family.label(),
            escape(&line)
        ));
        for (row, more) in cut(&sides, most, whole_in) {
            let Some(row) = row else {
                b.push_str(&format!(
                    "<tr><td></td><td colspan=\"3\">{}</td></tr>\n",
                    escape(&more.unwrap_or_default())
                ));
                continue;
            };
            let class = if row.allowed { "plus" } else { "minus" };
            b.push_str(&format!(
                "<tr><td class=\"{class}\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                row.mark(),
                escape(&row.amount()),
                escape(&row.range.cidr),
                escape(&row.range.tags.join(", "))
            ));
        }
        b.push_str("</table>\n");
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::summary::FamilyDelta;

    fn split_week() -> Changes {
        let mut c = Changes::new();
        c.insert(
            "ipv4".into(),
            FamilyDelta {
                allowed: vec![RangeChange {
                    cidr: "20.150.27.0/24".into(),
                    addresses: "256".into(),
                    tags: vec!["AzureCloud".into(), "<b>x</b>".into()],
                }],
                allowed_addresses: "256".into(),
                disallowed_addresses: "0".into(),
                ..FamilyDelta::default()
            },
        );
        c.insert("ipv6".into(), FamilyDelta::default());
        c
    }

    #[test]
    fn each_markup_leads_with_the_family_line_and_escapes_tags() {
        let c = split_week();
        let mut text = Vec::new();
        write_text(&mut text, &c, "  ", 10, "x").unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "  IPv4: newly allowed 256 addresses in 1 range, no longer allowed 0 addresses\n    + 20.150.27.0/24 (256 addresses; AzureCloud, <b>x</b>)\n"
        );
        let mut md = Vec::new();
        write_markdown(&mut md, &c, 10, "x").unwrap();
        let md = String::from_utf8(md).unwrap();
        assert!(
            md.starts_with("**IPv4**: newly allowed 256 addresses in 1 range"),
            "{md}"
        );
        assert!(
            md.contains("&lt;b&gt;x&lt;/b&gt;") && !md.contains("<b>"),
            "{md}"
        );
        let page = html(&c, 10, "x");
        assert!(
            page.contains("&lt;b&gt;x&lt;/b&gt;") && !page.contains("<b>x"),
            "{page}"
        );
    }

    #[test]
    fn long_lists_are_cut_with_a_count_and_where_the_rest_is() {
        let mut c = split_week();
        let d = c.get_mut("ipv4").unwrap();
        d.disallowed = (0..5)
            .map(|i| RangeChange {
                cidr: format!("10.0.{i}.0/24"),
                addresses: "256".into(),
                tags: Vec::new(),
            })
            .collect();
        let mut text = Vec::new();
        write_text(&mut text, &c, "", 3, "last-run.json").unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.ends_with("  … 2 more IPv4 ranges no longer allowed (all in last-run.json)\n"),
            "{text}"
        );
        // The family line, the one range allowed, three of five no longer allowed, the count.
        assert_eq!(text.lines().count(), 6, "{text}");
    }
}
