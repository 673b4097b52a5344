//! `<name>.asa.txt`: the ruleset as one Cisco ASA/FTD `object-group network` of both families
//! (`network-object <address> <mask>` for IPv4, `network-object <prefix>` for IPv6). Its name
//! ends in a digest of the entries, so a new list is a new group: create it, point the access
//! lists at it, then remove the old one — the firewall never sees a half-replaced group.

use std::io::{self, Write};

use ipnet::IpNet;

use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;

use super::snapshot_label;
use crate::render::firewall::comment::header;

/// The object group for these entries: `tw-<name>-<first 8 hex digits of the entries' digest>`.
pub fn group(r: &Ruleset, a: &Allowlist) -> String {
    format!("tw-{}-{}", r.name, super::entries_stamp(a))
}

/// The `network-object` of one entry.
pub fn object(net: &IpNet) -> String {
    match net {
        IpNet::V4(n) => format!("network-object {} {}", n.network(), n.netmask()),
        IpNet::V6(n) => format!("network-object {n}"),
    }
}

/// Writes the ASA commands.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let group = group(r, a);
    header(out, a, "!")?;
    super::note(
        out,
        "!",
        "Load: paste in configuration mode (or `copy` the file to running-config).",
    )?;
    super::note(
        out,
        "!",
        &format!(
            "This creates object-group {group}; to replace the previous tw-{}-* group:",
            r.name
        ),
    )?;
    super::note(
        out,
        "!",
        "  1. add each access-list line that uses the old group again with {group},",
    )?;
    super::note(
        out,
        "!",
        "  2. remove the old lines, 3. `no object-group network <old group>`.",
    )?;
    super::note(
        out,
        "!",
        &format!(
            "The entries are the same as {}.ipv4.txt and {}.ipv6.txt.",
            r.name, r.name
        ),
    )?;
    writeln!(out)?;
    writeln!(out, "object-group network {group}")?;
    writeln!(out, " description tagwall {} {}", r.name, snapshot_label(a))?;
    for set in &a.sets {
        for e in &set.entries {
            writeln!(out, " {}", object(&e.net))?;
        }
    }
    writeln!(out, "exit")
}
