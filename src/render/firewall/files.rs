//! The files of one ruleset's output directory, in memory: every configured format, then
//! `<name>.json` and `manifest.json` (last, with the sha256 of every other file).

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::core::ranges::Family;
use crate::rules::allowlist::{Allowlist, FamilySet};
use crate::rules::format::Format;
use crate::rules::manifest::{family_counts, Manifest, RulesetInfo};
use crate::rules::ruleset::Ruleset;

use crate::core::parse::MAX_FILE_BYTES;

/// Schema of `<name>.json`.
pub const RULESET_SCHEMA: &str = "tagwall.ruleset/1";
/// The manifest's file name.
pub const MANIFEST: &str = crate::rules::manifest::FILE;

fn snapshot_json(a: &Allowlist) -> Value {
    let s = &a.snapshot;
    json!({
        "id": s.id,
        "cloud": s.cloud.name(),
        "file_date": s.file_date.to_string(),
        "change_number": s.change_number,
        "content_sha256": s.content_sha256,
        "sha256": s.sha256,
    })
}

fn family_summary(r: &Ruleset, set: &FamilySet) -> Value {
    serde_json::to_value(family_counts(r, set)).expect("plain data")
}

fn ruleset_json(r: &Ruleset) -> Value {
    serde_json::to_value(RulesetInfo::of(r)).expect("plain data")
}

/// `<name>.json`: the ruleset, its snapshot, its tags and every entry with its tags.
pub fn write_json(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let mut doc = json!({
        "schema": RULESET_SCHEMA,
        "tagwall": env!("CARGO_PKG_VERSION"),
        "ruleset": ruleset_json(r),
        "snapshot": snapshot_json(a),
        "tags": a.tags.iter().map(|t| json!({
            "name": t.name,
            "region": t.region,
            "system_service": t.system_service,
        })).collect::<Vec<_>>(),
        "warnings": a.warnings,
    });
    for set in &a.sets {
        let mut v = family_summary(r, set);
        v["cidrs"] = set
            .entries
            .iter()
            .map(|e| json!({ "cidr": e.net.to_string(), "tags": a.tag_names(e) }))
            .collect();
        doc[set.family.key()] = v;
    }
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// A list longer than `vendor_limit` (or, with `split_entries`, a part: never, as parts are no
/// larger than the limit) would be cut off by the firewall: the ruleset fails instead.
fn check_vendor_limit(a: &Allowlist) -> Result<(), String> {
    let r = a.ruleset;
    let Some(limit) = r.delivery.vendor_limit else {
        return Ok(());
    };
    if r.delivery.split_entries.is_some() {
        return Ok(());
    }
    for set in &a.sets {
        if set.entries.len() > limit {
            return Err(format!(
                "ruleset {}: the {} list has {} entries, over vendor_limit = {limit}: the firewall would cut it off. Aggregate it (max_entries = {limit}) or split it (split_entries = {limit}); nothing was published",
                r.name,
                set.family.label(),
                set.entries.len()
            ));
        }
    }
    Ok(())
}

/// A published file must be readable back whole: by the guard (its baseline), by `serve` and by
/// replicas, which all read at most [`MAX_FILE_BYTES`] (64 MiB), the one limit on every file
/// tagwall reads. A larger file fails the ruleset here, before anything is written.
fn check_size(r: &Ruleset, name: &str, len: usize) -> Result<(), String> {
    if len as u64 <= MAX_FILE_BYTES {
        return Ok(());
    }
    Err(format!(
        "ruleset {}: {name} would be {:.1} MiB, over the {} MiB that tagwall reads back (the guard, serve, replicas); nothing was published. Aggregate the list (max_entries), split it (split_entries with the txt format) or leave out the largest formats",
        r.name,
        len as f64 / 1_048_576.0,
        MAX_FILE_BYTES / 1_048_576
    ))
}

/// Every file of the ruleset's directory, `manifest.json` last. Each firewall file is checked
/// line by line against what its loader accepts ([`super::loadable`]); a file that fails is an
/// error, so nothing unchecked is ever published.
pub fn files(a: &Allowlist) -> io::Result<Vec<(String, Vec<u8>)>> {
    let r = a.ruleset;
    check_vendor_limit(a).map_err(io::Error::other)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, f: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
        let mut bytes = Vec::new();
        f(&mut bytes).map(|()| files.push((name, bytes)))
    };
    for &format in &r.formats {
        for kind in format.files(&r.families) {
            let name = format!("{}.{}", r.name, kind.suffix);
            add(name, &|b| write(format, kind.family, a, b))?;
            let Some(family) = kind.family.filter(|_| format == Format::Txt) else {
                continue;
            };
            let entries = a.set(family).map_or(0, |s| s.entries.len());
            let parts = r
                .delivery
                .split_entries
                .map_or(0, |size| entries.div_ceil(size));
            for part in 1..=parts {
                add(
                    format!("{}.{}.part-{part}.txt", r.name, family.key()),
                    &|b| super::plain::write_part(b, a, family, part),
                )?;
            }
        }
    }
    for (name, bytes) in &files {
        check_size(r, name, bytes.len()).map_err(io::Error::other)?;
        super::loadable::check(r, name, bytes).map_err(io::Error::other)?;
    }
    let manifest = Manifest::of(a, &files);
    let mut bytes = serde_json::to_vec_pretty(&manifest)?;
    bytes.push(b'\n');
    files.push((MANIFEST.to_string(), bytes));
    Ok(files)
}

/// Writes one file of `format` (of `family` for a per-family file) by the format's writer:
/// the one place each format meets its writer.
pub fn write(
    format: Format,
    family: Option<Family>,
    a: &Allowlist,
    b: &mut Vec<u8>,
) -> io::Result<()> {
    use super::{asa, checkpoint, csv, fortios, junos, nft, plain, powershell, routeros, squid};
    use super::{ipset, iptables, terraform};
    match format {
        Format::Nft => nft::write(b, a),
        Format::Ipset => ipset::write(b, a),
        Format::Iptables => match family {
            Some(f) => iptables::write(b, a, f),
            None => Err(io::Error::other("iptables files are written per family")),
        },
        Format::Csv => csv::write(b, a),
        Format::Txt => plain::write(b, a, family),
        Format::Squid => squid::write(b, a),
        Format::Junos => junos::write(b, a),
        Format::RouterOs => routeros::write(b, a),
        Format::CiscoAsa => asa::write(b, a),
        Format::FortiOs => fortios::write(b, a),
        Format::Checkpoint => checkpoint::write(b, a),
        Format::PowerShell => powershell::write(b, a),
        Format::TerraformAzure => terraform::write_azure(b, a),
        Format::TerraformAws => terraform::write_aws(b, a),
        Format::Json => write_json(b, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_tagwall_could_not_read_back_is_refused() {
        let spec: crate::rules::ruleset::RulesetSpec =
            toml::from_str("name = \"web\"\ntags = [\"AzureCloud\"]").unwrap();
        let r = spec.validate().unwrap();
        let limit = MAX_FILE_BYTES as usize;
        assert_eq!(check_size(&r, "web.json", limit), Ok(()));
        let e = check_size(&r, "web.json", limit + 1).unwrap_err();
        assert!(
            e.contains("web.json would be 64.0 MiB, over the 64 MiB"),
            "{e}"
        );
        assert!(e.contains("nothing was published"), "{e}");
    }
}
