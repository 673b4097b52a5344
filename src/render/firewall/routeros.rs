//! `<name>.rsc`: the ruleset as a MikroTik RouterOS script: the entries of the address list
//! `tw-<name>` marked `comment=tagwall-<name>` are removed, then the new ones added, for IPv4
//! (`/ip firewall address-list`) and IPv6 (`/ipv6 firewall address-list`). Entries others added
//! to the list (without that comment) are left alone.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;

use crate::render::firewall::comment::header;

/// The address list.
pub fn list(r: &Ruleset) -> String {
    format!("tw-{}", r.name)
}

/// The comment that marks tagwall's entries.
pub fn mark(r: &Ruleset) -> String {
    format!("tagwall-{}", r.name)
}

/// The menu of a family.
pub fn menu(family: Family) -> &'static str {
    match family {
        Family::V4 => "/ip firewall address-list",
        Family::V6 => "/ipv6 firewall address-list",
    }
}

/// Writes the RouterOS script.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let (list, mark) = (list(r), mark(r));
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        &format!("Load: upload, then `/import file-name={}.rsc`.", r.name),
    )?;
    super::note(
        out,
        "#",
        "Use: a filter rule with dst-address-list={list}. Between the removal and the last add the",
    )?;
    super::note(out, "#", "list is incomplete: import in a quiet moment.")?;
    writeln!(out)?;
    for set in &a.sets {
        let menu = menu(set.family);
        writeln!(
            out,
            "{menu} remove [find where list=\"{list}\" comment=\"{mark}\"]"
        )?;
        for e in &set.entries {
            writeln!(
                out,
                "{menu} add list={list} address={} comment={mark}",
                e.net
            )?;
        }
    }
    Ok(())
}
