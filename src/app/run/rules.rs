//! The ruleset commands: `lookup`, `config check|example` and `aggregate`.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use ipnet::IpNet;
use serde_json::json;

use super::{write_json, EXIT_FAILURE, EXIT_OK};
use crate::app::cli::{AggregateArgs, ListFormat, LookupArgs};
use crate::app::config::Config;
use crate::core::aggregate;
use crate::core::model::Cloud;
use crate::core::ranges::{AddrSet, Family};
use crate::core::snapref::SnapRef;
use crate::job::emit::{lookup_in, Snapshots};
use crate::render::firewall::family_line;
use crate::render::report::table::Table;
use crate::rules::allowlist::Allowlist;
use crate::rules::grace::Retained;
use crate::rules::lookup::{Relation, Report};
use crate::rules::ruleset::Ruleset;
use crate::store::Store;

/// The annotated example settings file.
pub const EXAMPLE: &str = include_str!("../../example.toml");

/// Parses `20.1.2.3` (a /32), `2603::1` (a /128) or a CIDR without host bits.
pub fn parse_target(text: &str) -> anyhow::Result<IpNet> {
    crate::core::ranges::parse_target(text).map_err(anyhow::Error::msg)
}

pub(super) async fn lookup(store: &Store, config: &Config, args: LookupArgs) -> anyhow::Result<u8> {
    let query = parse_target(&args.target)?;
    let clouds = Cloud::parse_list(&[&args.cloud]).map_err(|e| anyhow::anyhow!("--cloud: {e}"))?;
    let rulesets: Vec<&Ruleset> = config.rulesets.iter().collect();
    let all = clouds.len() > 1;
    let mut reports = Vec::new();
    for cloud in clouds {
        let Some(mut report) = lookup_in(store, cloud, &args.at, query, &rulesets, all).await?
        else {
            continue;
        };
        // Without --at, the question is what the firewalls load now: the published lists.
        if args.at == SnapRef::Latest(0) {
            crate::job::emit::published_verdicts(&config.output_dir, &mut report);
        }
        reports.push(report);
    }
    if reports.is_empty() {
        bail!(
            "no snapshots stored yet in {}: run `tagwall import PATH`",
            store.url()
        );
    }
    let mut out = io::stdout().lock();
    match args.format {
        ListFormat::Json => write_json(&mut out, &lookup_json(&reports, args.history))?,
        ListFormat::Table => {
            for (i, r) in reports.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                write_lookup(&mut out, r, args.history)?;
            }
        }
    }
    Ok(EXIT_OK)
}

fn write_lookup(out: &mut impl Write, r: &Report, history: bool) -> io::Result<()> {
    let s = &r.snapshot;
    let query = if r.query.prefix_len() == r.query.max_prefix_len() {
        r.query.addr().to_string()
    } else {
        r.query.to_string()
    };
    let head = format!("{query} in {} {} (id:{})", s.cloud, s.file_date, s.id);
    if r.found.is_empty() {
        writeln!(out, "{head}: in no tag")?;
    } else {
        writeln!(out, "{head}:")?;
        let mut t = Table::new(&["tag", "region", "systemService", "holds", "prefix"]);
        for f in &r.found {
            t.row(vec![
                f.tag.clone(),
                f.region.clone(),
                f.system_service.clone(),
                match f.relation {
                    Relation::Contains => "all".into(),
                    Relation::Inside => "part".into(),
                },
                f.prefixes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
        t.write(out)?;
    }
    if !r.verdicts.is_empty() {
        writeln!(out, "rulesets:")?;
        for v in &r.verdicts {
            let via = if v.via.is_empty() {
                String::new()
            } else {
                format!(" via {}", v.via.join(", "))
            };
            let note = v.note.as_ref().map_or(String::new(), |n| format!(": {n}"));
            let verb = if v.allows {
                "allows it"
            } else {
                "does not allow it"
            };
            writeln!(out, "  {} {verb}{via}{note}", v.ruleset)?;
        }
    }
    if history {
        writeln!(out, "history (snapshots in which the tag contained it):")?;
        if r.history.is_empty() {
            writeln!(out, "  no stored snapshot of {} had it in a tag", s.cloud)?;
        }
        for (tag, spans) in &r.history {
            let runs: Vec<String> = spans
                .iter()
                .map(|sp| match sp.to {
                    Some(to) if to == sp.from => sp.from.to_string(),
                    Some(to) => format!("{} - {to}", sp.from),
                    None => format!("{} - now", sp.from),
                })
                .collect();
            writeln!(out, "  {tag}: {}", runs.join(", "))?;
        }
    }
    Ok(())
}

fn lookup_json(reports: &[Report], history: bool) -> serde_json::Value {
    let clouds: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let mut v = json!({
                "cloud": r.snapshot.cloud.name(),
                "snapshot": {
                    "id": r.snapshot.id,
                    "file_date": r.snapshot.file_date.to_string(),
                    "change_number": r.snapshot.change_number,
                },
                "tags": r.found.iter().map(|f| json!({
                    "name": f.tag,
                    "region": f.region,
                    "system_service": f.system_service,
                    "holds": if f.relation == Relation::Contains { "all" } else { "part" },
                    "prefixes": f.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "rulesets": r.verdicts.iter().map(|v| json!({
                    "name": v.ruleset,
                    "allows": v.allows,
                    "via": v.via,
                    "note": v.note,
                })).collect::<Vec<_>>(),
            });
            if history {
                v["history"] = r
                    .history
                    .iter()
                    .map(|(tag, spans)| {
                        json!({
                            "tag": tag,
                            "spans": spans.iter().map(|s| json!({
                                "from": s.from.to_string(),
                                "to": s.to.map(|d| d.to_string()),
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
            }
            v
        })
        .collect();
    json!({ "query": reports[0].query.to_string(), "clouds": clouds })
}

/// Validated settings and, with a store, what each ruleset selects in its cloud's newest snapshot.
pub(super) async fn config_check(store: Option<&Store>, config: &Config) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{}: valid; store {}, output {}, {} ruleset(s)",
        config.source_name(),
        config.db,
        config.output_dir.display(),
        config.rulesets.len()
    )?;
    let Some(store) = store else {
        for r in &config.rulesets {
            writeln!(
                out,
                "{}: not checked against data: the store {} does not exist yet (run `tagwall import` or `tagwall fetch`)",
                r.name, config.db
            )?;
        }
        return Ok(EXIT_OK);
    };
    let mut snapshots = Snapshots::new(store, SnapRef::Latest(0));
    let mut failed = 0;
    for r in &config.rulesets {
        let (info, snapshot) = match snapshots.get(r.cloud).await {
            Ok(pair) => pair,
            Err(_) => {
                writeln!(
                    out,
                    "{}: not checked against data: no {} snapshot stored yet (run `tagwall import` or `tagwall fetch`)",
                    r.name, r.cloud
                )?;
                continue;
            }
        };
        match Allowlist::build(r, snapshot, info, &Retained::none()) {
            Ok(a) => {
                let names: Vec<&str> = a.tags.iter().map(|t| t.name.as_str()).collect();
                let shown = if names.len() > 8 {
                    format!("{}, ... ({} more)", names[..8].join(", "), names.len() - 8)
                } else {
                    names.join(", ")
                };
                let prefixes: usize = a.sets.iter().map(|s| s.prefixes).sum();
                writeln!(
                    out,
                    "{}: {} {} (id:{}): {} tag(s) ({}), {prefixes} prefixes",
                    r.name,
                    info.cloud,
                    info.file_date,
                    info.id,
                    a.tags.len(),
                    crate::core::text::terminal(&shown)
                )?;
                for set in &a.sets {
                    writeln!(out, "  {}", family_line(set))?;
                }
                for w in &a.warnings {
                    writeln!(out, "  warning: {}", crate::core::text::terminal(w))?;
                }
                // The same checks as emit and sync: the loaders' line rules and the tools.
                match crate::publish::ruleset::checked_files(&a, config.validate).await {
                    Ok((_, checked)) => writeln!(out, "  checked by: {}", checked.describe())?,
                    Err(e) => {
                        failed += 1;
                        writeln!(
                            out,
                            "  error: {}",
                            crate::core::text::terminal(&format!("{e:#}"))
                        )?;
                    }
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{}: error: {e}", r.name)?;
            }
        }
    }
    Ok(if failed > 0 { EXIT_FAILURE } else { EXIT_OK })
}

/// The addresses read by `aggregate`: IPv4 ranges packed as `first << 32 | last`, IPv6 ranges.
#[derive(Default)]
struct Input {
    v4: Vec<u64>,
    v6: Vec<(u128, u128)>,
}

/// Reads addresses and CIDRs, one per line; `#` starts a comment.
fn read_prefixes(name: &str, text: &str, into: &mut Input) -> anyhow::Result<()> {
    into.v4.reserve(text.len() / 14);
    for (i, line) in text.lines().enumerate() {
        // The common case first, in one pass over the bytes: an IPv4 CIDR without host bits.
        if let Some(packed) = fast_v4(line.as_bytes()) {
            into.v4.push(packed);
            continue;
        }
        let text = match line.find('#') {
            Some(at) => &line[..at],
            None => line,
        }
        .trim();
        if text.is_empty() {
            continue;
        }
        let net = parse_target(text).with_context(|| format!("{name} line {}", i + 1))?;
        let (lo, hi) = crate::core::ranges::bounds(&net);
        match net {
            IpNet::V4(_) => into.v4.push((lo as u64) << 32 | hi as u64),
            IpNet::V6(_) => into.v6.push((lo, hi)),
        }
    }
    Ok(())
}

/// A line holding just `a.b.c.d/n` (surrounding blanks allowed) without host bits, as the packed
/// range `first << 32 | last`; `None` for anything else, which the general parser then takes or
/// explains.
fn fast_v4(line: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < line.len() && line[i].is_ascii_whitespace() {
        i += 1;
    }
    // Reads a decimal number of 1..=max_digits digits without a leading zero.
    let number = |i: &mut usize, max_digits: usize| -> Option<u32> {
        let start = *i;
        let mut n: u32 = 0;
        while *i < line.len() && line[*i].is_ascii_digit() && *i - start < max_digits {
            n = n * 10 + u32::from(line[*i] - b'0');
            *i += 1;
        }
        let len = *i - start;
        (len > 0 && !(len > 1 && line[start] == b'0')).then_some(n)
    };
    let mut addr: u32 = 0;
    for k in 0..4 {
        let octet = number(&mut i, 3)?;
        if octet > 255 {
            return None;
        }
        addr = addr << 8 | octet;
        let sep = if k < 3 { b'.' } else { b'/' };
        if line.get(i) != Some(&sep) {
            return None;
        }
        i += 1;
    }
    let len = number(&mut i, 2)?;
    while i < line.len() && line[i].is_ascii_whitespace() {
        i += 1;
    }
    if i != line.len() || len > 32 {
        return None;
    }
    // The host bits: all for /0, none for /32 (a shift by 32 would overflow).
    let host = u32::MAX.checked_shr(len).unwrap_or(0);
    if addr & host != 0 {
        return None;
    }
    Some(u64::from(addr) << 32 | u64::from(addr | host))
}

pub fn aggregate(args: AggregateArgs) -> anyhow::Result<u8> {
    let mut prefixes = Input::default();
    let stdin_only = args.files.is_empty() || args.files == [PathBuf::from("-")];
    if stdin_only {
        let mut text = String::new();
        io::stdin()
            .lock()
            .read_to_string(&mut text)
            .context("could not read stdin")?;
        read_prefixes("stdin", &text, &mut prefixes)?;
    } else {
        for file in &args.files {
            let name = file.display().to_string();
            let text =
                std::fs::read_to_string(file).with_context(|| format!("could not read {name}"))?;
            read_prefixes(&name, &text, &mut prefixes)?;
        }
    }
    let mut text = String::new();
    let sets = [
        (Family::V4, AddrSet::from_packed_v4(prefixes.v4)),
        (Family::V6, AddrSet::from_ranges(prefixes.v6)),
    ];
    for (family, set) in sets {
        let nets = match args.max_entries {
            Some(n) => {
                let b = aggregate::budgeted(family, &set, usize::try_from(n).unwrap_or(usize::MAX));
                if b.extra > 0 {
                    eprintln!(
                        "{}: {} CIDRs cover {} beyond the input",
                        family.label(),
                        b.entries.len(),
                        family.amount(b.extra)
                    );
                }
                b.entries
            }
            None => aggregate::exact(family, &set),
        };
        for n in nets {
            use std::fmt::Write as _;
            let _ = writeln!(text, "{n}");
        }
    }
    io::stdout().lock().write_all(text.as_bytes())?;
    Ok(EXIT_OK)
}

/// Prints the example settings.
pub fn config_example() -> anyhow::Result<u8> {
    io::stdout().lock().write_all(EXAMPLE.as_bytes())?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_parser_agrees_with_the_general_one() {
        for text in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "1.2.3.4/32",
            "10.0.0.1/8",
            "01.2.3.0/24",
            "1.2.3/24",
            "1.2.3.4.5/32",
            "256.0.0.0/8",
            "1.2.3.0/33",
            "1.2.3.0/",
            "/24",
            "a.b.c.d/8",
            "2603::/16",
            "1.2.3.0/024",
            "1.2.3.0/+8",
            " 10.0.0.0/8\r",
            "10.0.0.0/8 # x",
            "1.2.3.0/24x",
            "1.2.3.4",
        ] {
            // Whatever the fast path takes, the general parser takes the same way; the rest
            // falls through to it.
            let general = text
                .trim()
                .parse::<IpNet>()
                .ok()
                .filter(|n| n.trunc() == *n);
            if let Some(fast) = fast_v4(text.as_bytes()) {
                let net = general.unwrap_or_else(|| panic!("{text}"));
                let (lo, hi) = crate::core::ranges::bounds(&net);
                assert_eq!(fast, (lo as u64) << 32 | hi as u64, "{text}");
            }
        }
        assert!(fast_v4(b"10.0.0.0/8").is_some());
        assert!(fast_v4(b"0.0.0.0/0").is_some());
    }
}
