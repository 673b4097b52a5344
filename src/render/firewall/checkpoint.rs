//! `<name>.checkpoint.json`: the ruleset as a Check Point Generic Data Center file, one object
//! per family (`tw-<name>-v4`, `tw-<name>-v6`) with a UUID that stays the same for the ruleset
//! and family across publishes, so the gateway keeps its references.

use std::io::{self, Write};

use serde_json::json;

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;

use super::{nets, snapshot_label};

/// The object of a family.
pub fn object_name(r: &Ruleset, family: Family) -> String {
    r.list_name(family)
}

/// A name-based UUID (the version 5 layout over SHA-256) for a ruleset's family: stable across
/// publishes and machines.
pub fn object_id(r: &Ruleset, family: Family) -> String {
    let digest = crate::core::digest::sha256_hex(
        format!("tagwall checkpoint {} {}", r.name, family.key()).as_bytes(),
    );
    let mut b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Writes the Generic Data Center JSON.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let objects: Vec<serde_json::Value> = super::families(a)
        .map(|family| {
            json!({
                "name": object_name(r, family),
                "id": object_id(r, family),
                "description": format!(
                    "tagwall ruleset {} {}: {}",
                    r.name,
                    family.label(),
                    snapshot_label(a)
                ),
                "ranges": nets(a, family).iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "version": "1.0",
        "description": format!(
            "tagwall {} ruleset {}: {}",
            env!("CARGO_PKG_VERSION"),
            r.name,
            snapshot_label(a)
        ),
        "objects": objects,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
