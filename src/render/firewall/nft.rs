//! `<name>.nft`: one `nft -f` transaction that creates the ruleset's table, sets and chain when
//! missing, replaces the sets' contents and the chain's rules, and touches nothing else.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::{Direction, Protocol};

use super::comment;
use super::comment::header;

/// Writes the nftables file.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let (fam, table) = (&r.nft_table.0, &r.nft_table.1);
    let chain = r.nft_chain();
    header(out, a, "#")?;
    // Names and the table come from the settings: wrapped like every other comment.
    let note = |out: &mut dyn Write, text: &str| comment::write(out, "#", text);
    note(out, &format!("Load: nft -f {}.nft", r.name))?;
    let hint = if (fam.as_str(), table.as_str()) == ("inet", "tagwall") {
        "(set nft_table in tagwall.toml to your filter table)"
    } else {
        "(nft_table in tagwall.toml puts them in it)"
    };
    note(
        out,
        &format!(
            "The chain has no hook: add `jump {chain}` to your own chain in table {fam} {table} {hint}. Loading again or loading a newer file swaps the contents in one transaction."
        ),
    )?;
    writeln!(out)?;
    writeln!(out, "table {fam} {table} {{")?;
    for set in &a.sets {
        let kind = match set.family {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        };
        writeln!(
            out,
            "\tset {} {{ type {kind}; flags interval; }}",
            r.nft_set(set.family)
        )?;
    }
    writeln!(out, "\tchain {chain} {{ }}")?;
    writeln!(out, "}}")?;
    for set in &a.sets {
        writeln!(out, "flush set {fam} {table} {}", r.nft_set(set.family))?;
    }
    writeln!(out, "flush chain {fam} {table} {chain}")?;
    for set in &a.sets {
        if set.entries.is_empty() {
            continue;
        }
        writeln!(
            out,
            "add element {fam} {table} {} {{",
            r.nft_set(set.family)
        )?;
        let last = set.entries.len() - 1;
        for (i, e) in set.entries.iter().enumerate() {
            writeln!(out, "\t{}{}", e.net, if i == last { "" } else { "," })?;
        }
        writeln!(out, "}}")?;
    }
    let dir = match r.direction {
        Direction::Egress => "daddr",
        Direction::Ingress => "saddr",
    };
    let l4 = match (r.protocol, r.ports.is_empty()) {
        (Protocol::Any, _) => String::new(),
        (p, true) => format!(" meta l4proto {}", p.name()),
        (p, false) if r.ports.len() == 1 => format!(" {} dport {}", p.name(), r.ports[0]),
        (p, false) => format!(
            " {} dport {{ {} }}",
            p.name(),
            r.ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    for set in &a.sets {
        let proto = match set.family {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        writeln!(
            out,
            "add rule {fam} {table} {chain} {proto} {dir} @{}{l4} accept",
            r.nft_set(set.family)
        )?;
    }
    Ok(())
}
