//! The ruleset files firewalls, proxies and tools load: each a pure renderer into
//! `&mut impl Write`, from the allowlist only. What each format writes (its files per family and
//! the grammar of each) is described once, in [`crate::rules::format`]; [`files`] runs the
//! writers by an exhaustive `match` and [`loadable`] checks every line against the grammar, so
//! a format without a grammar does not compile and a file of no known grammar is not published.
//! Names are the ruleset's own (`tw-<name>…`, `[a-z0-9_-]`); comments go through [`comment`].
//!
//! - `nft`, `ipset`, `iptables` — the Linux loaders, each loading in one transaction.
//! - `plain` — one CIDR a line, for firewalls polling a URL; `csv` — a spreadsheet row an entry.
//! - `squid` — `acl` lines for Squid's `http_access`.
//! - `junos` — Junos `set policy-options prefix-list`.
//! - `routeros` — MikroTik RouterOS address-list script.
//! - `asa` — Cisco ASA/FTD `object-group network`.
//! - `fortios` — FortiOS `firewall address`/`addrgrp` (and the IPv6 tables).
//! - `checkpoint` — Check Point Generic Data Center JSON.
//! - `powershell` — Windows Defender Firewall rules in one group.
//! - `terraform` — `azurerm_ip_group` and `aws_ec2_managed_prefix_list` resources.
//! - `files` — one ruleset's directory in memory; `loadable` and `lines` — the grammars;
//!   `comment` — outside text made safe for a comment line.

pub mod asa;
pub mod checkpoint;
pub mod comment;
pub mod csv;
pub mod files;
pub mod fortios;
pub mod ipset;
pub mod iptables;
pub mod junos;
pub mod lines;
pub mod loadable;
pub mod nft;
pub mod plain;
pub mod powershell;
pub mod routeros;
pub mod squid;
pub mod terraform;

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::allowlist::{Allowlist, FamilySet};

/// Writes one comment line of the "how to load" notes, `mark` first: as written when it fits
/// in [`comment::MAX_LINE`], else wrapped (names make lines longer).
pub fn note(out: &mut impl std::io::Write, mark: &str, text: &str) -> std::io::Result<()> {
    let line = format!("{mark} {text}");
    if line.len() <= comment::MAX_LINE && line.is_ascii() {
        writeln!(out, "{line}")
    } else {
        comment::write(out, mark, text)
    }
}

/// The entries of one family, in address order (empty when the ruleset has none of it).
pub fn nets(a: &Allowlist, family: Family) -> Vec<IpNet> {
    a.sets
        .iter()
        .filter(|s| s.family == family)
        .flat_map(|s| s.entries.iter().map(|e| e.net))
        .collect()
}

/// The families the ruleset emits, in order.
pub fn families<'a>(a: &'a Allowlist<'_>) -> impl Iterator<Item = Family> + 'a {
    a.sets.iter().map(|s| s.family)
}

/// The first 8 hex digits of the digest of every entry: names objects that change with the list
/// (the ASA group, the PowerShell rules), so a new list never overwrites the one in use.
pub fn entries_stamp(a: &Allowlist) -> String {
    let nets = a.sets.iter().flat_map(|s| s.entries.iter().map(|e| &e.net));
    crate::rules::manifest::entries_digest(nets)[..8].to_string()
}

/// "Public 2025-07-28 (id:4)": the snapshot, for descriptions.
pub fn snapshot_label(a: &Allowlist) -> String {
    let s = &a.snapshot;
    format!("{} {} (id:{})", s.cloud, s.file_date, s.id)
}

/// "IPv4: 12 entries, 3072 addresses (+256 extra from max_entries)".
pub fn family_line(set: &FamilySet) -> String {
    let name = set.family.label();
    let extra = match set.extra {
        Some(x) if x > 0 => format!(" (+{} extra from max_entries)", set.family.amount(x)),
        _ => String::new(),
    };
    format!(
        "{name}: {} entries, {}{extra}",
        set.entries.len(),
        set.family.amount(set.addresses)
    )
}
