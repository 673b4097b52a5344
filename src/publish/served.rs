//! What `serve` checks of a publish before serving it — a directory, or with `[serve] source =
//! "store"` a row a shared database holds, which whoever can write that database could have made
//! — as the publisher checked the files: exactly the files the ruleset's formats name, every
//! line of every firewall file against its loader's grammar (`render::firewall::loadable`), every list
//! file holding exactly the entries whose digest the manifest records, and the files the kernel
//! loads (`.nft`, `.ipset`, `.iptables`, `.ip6tables`) holding, besides comments, exactly what
//! tagwall writes for those entries and the ruleset as the serving settings define it (no rule,
//! set or element of anyone else's). A publish that fails is not served.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::baseline::{check_entries, list_entries, Files};
use crate::core::model::SnapshotInfo;
use crate::core::ranges::Family;
use crate::core::text::quoted;
use crate::rules::allowlist::{Allowlist, Entry, FamilySet};
use crate::rules::format::Format;
use crate::rules::ruleset::Ruleset;

/// Checks `files`, a publish of `ruleset` (as the settings that serve it define it).
pub fn check(ruleset: &Ruleset, files: &Files) -> Result<(), String> {
    check_names(ruleset, files)?;
    for (name, bytes) in &files.files {
        crate::render::firewall::loadable::check(ruleset, name, bytes)
            .map_err(|u| format!("{} line {}: {}", u.file, u.line, u.reason))?;
    }
    let entries = check_lists(ruleset, files)?;
    check_loaded(ruleset, files, &entries)
}

/// The files the ruleset's formats name, each once, and nothing else (`.txt` parts as
/// `split_entries` makes them).
fn check_names(ruleset: &Ruleset, files: &Files) -> Result<(), String> {
    let n = &ruleset.name;
    let expected: BTreeSet<String> = ruleset
        .formats
        .iter()
        .flat_map(|f| f.suffixes(&ruleset.families))
        .map(|suffix| format!("{n}.{suffix}"))
        .collect();
    let mut seen = BTreeSet::new();
    for (name, _) in &files.files {
        if !seen.insert(name.as_str()) {
            return Err(format!("it holds {} twice", quoted(name, 80)));
        }
        if !expected.contains(name) && part_of(ruleset, name).is_none() {
            return Err(format!(
                "it holds {}, which the ruleset's formats do not name",
                quoted(name, 80)
            ));
        }
    }
    match expected.iter().find(|e| !seen.contains(e.as_str())) {
        Some(missing) => Err(format!("{missing} is missing")),
        None => Ok(()),
    }
}

/// The family of `<name>.<family>.part-<k>.txt` when `split_entries` makes parts.
fn part_of(ruleset: &Ruleset, file: &str) -> Option<Family> {
    ruleset.delivery.split_entries?;
    let suffix = file
        .strip_prefix(ruleset.name.as_str())?
        .strip_prefix('.')?;
    Format::Txt.part_family(suffix).filter(|&f| ruleset.has(f))
}

/// Every list file against the manifest's digest: the whole lists hold all entries, a family's
/// list that family's, a family's parts together that family's. The entries.
fn check_lists(ruleset: &Ruleset, files: &Files) -> Result<Vec<IpNet>, String> {
    let whole = format!("{}.txt", ruleset.name);
    let mut all: Option<Vec<IpNet>> = None;
    let mut parts: [Vec<IpNet>; 2] = [Vec::new(), Vec::new()];
    let mut lists: Vec<(&str, Option<Family>, Vec<IpNet>)> = Vec::new();
    for (name, bytes) in &files.files {
        let Some(entries) = list_entries(name, bytes) else {
            continue;
        };
        let entries = entries?;
        if let Some(f) = part_of(ruleset, name) {
            parts[usize::from(f == Family::V6)].extend(entries);
            continue;
        }
        let family = [Family::V4, Family::V6]
            .into_iter()
            .find(|f| *name == format!("{}.{}.txt", ruleset.name, f.key()));
        if *name == whole || all.is_none() && family.is_none() {
            all = Some(entries.clone());
        }
        lists.push((name, family, entries));
    }
    let Some(all) = all else {
        return Err("it holds no list file to check the entries against".into());
    };
    check_entries(&files.manifest, &all)?;
    let of =
        |f: Family| -> Vec<IpNet> { all.iter().filter(|e| Family::of(e) == f).copied().collect() };
    for (name, family, entries) in lists {
        let want = family.map_or_else(|| all.clone(), of);
        if entries != want {
            return Err(format!(
                "{name} holds other entries than the manifest's digest records"
            ));
        }
    }
    for (i, mut got) in parts.into_iter().enumerate() {
        if got.is_empty() {
            continue;
        }
        got.sort();
        got.dedup();
        let family = if i == 0 { Family::V4 } else { Family::V6 };
        if got != of(family) {
            return Err(format!(
                "its {} parts hold other entries than the manifest's digest records",
                family.label()
            ));
        }
    }
    Ok(all)
}

/// The files the kernel loads, line for line (comments aside) against what tagwall writes for
/// `entries` and `ruleset`.
fn check_loaded(ruleset: &Ruleset, files: &Files, entries: &[IpNet]) -> Result<(), String> {
    let a = skeleton(ruleset, entries);
    // The formats the kernel loads: each of their files re-rendered by the format's writer.
    let loaded = [Format::Nft, Format::Ipset, Format::Iptables];
    let kinds = ruleset
        .formats
        .iter()
        .filter(|f| loaded.contains(f))
        .flat_map(|&f| f.files(&ruleset.families).map(move |k| (f, k)));
    for (format, kind) in kinds {
        let name = format!("{}.{}", ruleset.name, kind.suffix);
        let Some((_, bytes)) = files.files.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let mut want = Vec::new();
        let written = crate::render::firewall::files::write(format, kind.family, &a, &mut want);
        written.map_err(|e| format!("{name} cannot be rendered to compare with: {e}"))?;
        let got = String::from_utf8_lossy(bytes);
        let want = String::from_utf8_lossy(&want);
        let mut got = commands(&got);
        let mut want = commands(&want);
        loop {
            match (got.next(), want.next()) {
                (None, None) => break,
                (Some((at, line)), w) if w.map(|(_, l)| l) != Some(line) => {
                    return Err(format!(
                        "{name} line {at}: {} is not what tagwall writes for this ruleset",
                        quoted(line, 120)
                    ))
                }
                (None, Some(_)) => return Err(format!("{name} ends early")),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The lines a loader executes: (1-based number, line), comments and empty lines left out.
fn commands(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// An allowlist of `entries` for `ruleset`: enough for the files the kernel loads, whose lines
/// (comments aside) depend on nothing else.
fn skeleton<'r>(ruleset: &'r Ruleset, entries: &[IpNet]) -> Allowlist<'r> {
    let sets = ruleset
        .families
        .iter()
        .map(|&family| FamilySet {
            family,
            entries: entries
                .iter()
                .filter(|e| Family::of(e) == family)
                .map(|&net| Entry {
                    net,
                    tags: Vec::new(),
                    retiring: None,
                })
                .collect(),
            prefixes: 0,
            addresses: 0,
            extra: None,
            sources: Vec::new(),
        })
        .collect();
    Allowlist {
        ruleset,
        snapshot: SnapshotInfo {
            id: 0,
            cloud: ruleset.cloud,
            file_date: chrono::NaiveDate::default(),
            change_number: 0,
            tags: 0,
            prefixes: 0,
            content_sha256: String::new(),
            sha256: String::new(),
            size: 0,
            source: String::new(),
        },
        tags: Vec::new(),
        sets,
        warnings: Vec::new(),
        missing: Vec::new(),
    }
}
