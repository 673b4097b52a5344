//! `<name>.fortios.conf`: the ruleset as FortiOS CLI: one address object per entry
//! (`tw-<name>-4-<n>` in `firewall address`, `tw-<name>-6-<n>` in `firewall address6`), grouped
//! into groups of at most [`GROUP_MEMBERS`] (`tw-<name>-v4-<n>`), which one group per family
//! (`tw-<name>-v4`, `tw-<name>-v6`) holds: use that one in policies.

use std::io::{self, Write};

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::format::Format;
use crate::rules::ruleset::Ruleset;

use super::nets;
use crate::render::firewall::comment::header;

/// The most members tagwall puts in one address group ([`Format::object_limit`]).
pub const GROUP_MEMBERS: usize = Format::FortiOs.object_limit_of();
/// Names per `set member` / `append member` line.
const PER_LINE: usize = 20;

/// The group of a family that policies use.
pub fn group(r: &Ruleset, family: Family) -> String {
    r.list_name(family)
}

/// The address object of entry `n` (1-based) of a family.
pub fn address(r: &Ruleset, family: Family, n: usize) -> String {
    let f = match family {
        Family::V4 => 4,
        Family::V6 => 6,
    };
    format!("tw-{}-{f}-{n}", r.name)
}

/// (address table, group table, the `set` of an entry).
fn tables(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("firewall address", "firewall addrgrp"),
        Family::V6 => ("firewall address6", "firewall addrgrp6"),
    }
}

fn set_line(net: &IpNet) -> String {
    match net {
        IpNet::V4(n) => format!("set subnet {} {}", n.network(), n.netmask()),
        IpNet::V6(n) => format!("set ip6 {n}"),
    }
}

/// Writes `set member` then `append member` lines for `names`.
fn members(out: &mut impl Write, names: &[String]) -> io::Result<()> {
    for (i, chunk) in names.chunks(PER_LINE).enumerate() {
        let verb = if i == 0 { "set" } else { "append" };
        let quoted: Vec<String> = chunk.iter().map(|n| format!("\"{n}\"")).collect();
        writeln!(out, "        {verb} member {}", quoted.join(" "))?;
    }
    Ok(())
}

/// Writes the FortiOS CLI script.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        "Load: System > Settings > Scripts (or `execute batch`), or paste into the CLI.",
    )?;
    super::note(
        out,
        "#",
        &format!(
            "Use the groups {} in policies. Groups hold at most {GROUP_MEMBERS} members each.",
            families_text(r)
        ),
    )?;
    super::note(
        out,
        "#",
        "Objects of a longer earlier list stay defined but in no group.",
    )?;
    for family in super::families(a) {
        let entries = nets(a, family);
        if entries.is_empty() {
            continue;
        }
        let (addresses, groups) = tables(family);
        writeln!(out, "config {addresses}")?;
        for (i, net) in entries.iter().enumerate() {
            writeln!(out, "    edit \"{}\"", address(r, family, i + 1))?;
            writeln!(out, "        {}", set_line(net))?;
            writeln!(out, "    next")?;
        }
        writeln!(out, "end")?;
        let names: Vec<String> = (1..=entries.len()).map(|n| address(r, family, n)).collect();
        let parts: Vec<&[String]> = names.chunks(GROUP_MEMBERS).collect();
        writeln!(out, "config {groups}")?;
        let mut part_names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let name = format!("{}-{}", group(r, family), i + 1);
            writeln!(out, "    edit \"{name}\"")?;
            members(out, part)?;
            writeln!(out, "    next")?;
            part_names.push(name);
        }
        writeln!(out, "    edit \"{}\"", group(r, family))?;
        members(out, &part_names)?;
        writeln!(out, "    next")?;
        writeln!(out, "end")?;
    }
    Ok(())
}

fn families_text(r: &Ruleset) -> String {
    r.families
        .iter()
        .map(|&f| group(r, f))
        .collect::<Vec<_>>()
        .join(" and ")
}
