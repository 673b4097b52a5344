//! Files for the firewalls and proxies people run besides Linux: each a pure renderer into
//! `&mut impl Write`, from the allowlist only. Names are the ruleset's own (`tw-<name>…`,
//! `[a-z0-9_-]`), comments go through `render::comment`, and every line is checked against its
//! loader's grammar by `render::loadable` before anything is published.
//!
//! - `squid` — `acl` lines for Squid's `http_access`.
//! - `junos` — Junos `set policy-options prefix-list`.
//! - `routeros` — MikroTik RouterOS address-list script.
//! - `asa` — Cisco ASA/FTD `object-group network`.
//! - `fortios` — FortiOS `firewall address`/`addrgrp` (and the IPv6 tables).
//! - `checkpoint` — Check Point Generic Data Center JSON.
//! - `powershell` — Windows Defender Firewall rules in one group.
//! - `terraform` — `azurerm_ip_group` and `aws_ec2_managed_prefix_list` resources.
//! - `lines` — each format's line grammar, for `render::loadable`.

pub mod asa;
pub mod checkpoint;
pub mod fortios;
pub mod junos;
pub mod lines;
pub mod powershell;
pub mod routeros;
pub mod squid;
pub mod terraform;

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;

/// Writes one comment line of the "how to load" notes, `mark` first: as written when it fits
/// in [`crate::render::comment::MAX_LINE`], else wrapped (names make lines longer).
pub fn note(out: &mut impl std::io::Write, mark: &str, text: &str) -> std::io::Result<()> {
    let line = format!("{mark} {text}");
    if line.len() <= crate::render::comment::MAX_LINE && line.is_ascii() {
        writeln!(out, "{line}")
    } else {
        crate::render::comment::write(out, mark, text)
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
