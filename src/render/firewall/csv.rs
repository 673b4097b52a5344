//! `<name>.csv`: one row per entry with its tags, regions and addresses, safe to open in a
//! spreadsheet: no cell can start a formula.

use std::io::{self, Write};

use crate::core::ranges::bounds;
use crate::rules::allowlist::Allowlist;

/// The header row.
pub const COLUMNS: [&str; 11] = [
    "ruleset",
    "service_tags",
    "region",
    "system_service",
    "family",
    "cidr",
    "first_address",
    "last_address",
    "address_count",
    "protocol",
    "ports",
];

/// A CSV cell: quoted when needed, and prefixed with `'` when a spreadsheet would read it as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return).
pub fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes the CSV file.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    writeln!(out, "{}", COLUMNS.join(","))?;
    let ports = r.ports_text();
    for set in &a.sets {
        let family = set.family.key();
        for e in &set.entries {
            let tags: Vec<&crate::rules::allowlist::TagRef> =
                e.tags.iter().map(|&i| &a.tags[i as usize]).collect();
            let regions = per_tag(tags.iter().map(|t| t.region.as_str()).collect());
            let services = per_tag(tags.iter().map(|t| t.system_service.as_str()).collect());
            let join = |v: Vec<&str>| {
                v.into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (lo, hi) = bounds(&e.net);
            // 2^128 addresses (an IPv6 /0) do not fit a u128.
            let count = match (hi - lo).checked_add(1) {
                Some(n) => n.to_string(),
                None => "340282366920938463463374607431768211456".to_string(),
            };
            let row = [
                cell(&r.name),
                cell(&join(tags.iter().map(|t| t.name.as_str()).collect())),
                cell(&regions),
                cell(&services),
                family.to_string(),
                cell(&e.net.to_string()),
                cell(&e.net.network().to_string()),
                cell(&e.net.broadcast().to_string()),
                count,
                r.protocol.name().to_string(),
                cell(&ports),
            ];
            writeln!(out, "{}", row.join(","))?;
        }
    }
    Ok(())
}

/// A property of an entry's tags (in the order of `service_tags`): the value when every tag
/// has the same one, else one value per tag with `-` for a tag without one — so a row never
/// gives one tag's system service to another.
fn per_tag(values: Vec<&str>) -> String {
    if values.windows(2).all(|w| w[0] == w[1]) {
        return values.first().copied().unwrap_or_default().to_string();
    }
    values
        .iter()
        .map(|v| if v.is_empty() { "-" } else { v })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_of_mixed_tags_stay_with_their_tag() {
        assert_eq!(per_tag(vec!["AzureAD", ""]), "AzureAD -");
        assert_eq!(per_tag(vec!["", ""]), "");
        assert_eq!(
            per_tag(vec!["AzureStorage", "AzureStorage"]),
            "AzureStorage"
        );
        assert_eq!(per_tag(vec![]), "");
    }

    #[test]
    fn cells_never_start_a_formula() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@A1"), "'@A1");
        assert_eq!(cell("443,80"), "\"443,80\"");
        assert_eq!(cell("AzureCloud"), "AzureCloud");
    }
}
