//! `<name>.ipset`: `ipset restore` input that fills a temporary set and swaps it in, so the set an
//! iptables rule matches changes in one step. `maxelem` is sized to fit.

use std::io::{self, Write};

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;

use super::comment::header;

/// ipset's `hash:net` default `maxelem`; larger sets get the next power of two that fits.
pub const DEFAULT_MAXELEM: usize = 65_536;

/// The `maxelem` for a set of `n` entries. Stable across weeks unless the set outgrows it, since
/// `create -exist` only accepts an existing set with the same `maxelem`.
pub fn maxelem(n: usize) -> usize {
    n.next_power_of_two().max(DEFAULT_MAXELEM)
}

/// Writes the ipset file.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    header(out, a, "#")?;
    super::comment::write(
        out,
        "#",
        &format!(
            "Load: ipset restore < {0}.ipset (before {0}.iptables / {0}.ip6tables)",
            r.name
        ),
    )?;
    for set in &a.sets {
        let name = r.ipset_name(set.family);
        let tmp = format!("{name}-t");
        let family = match set.family {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        };
        // hash:net cannot hold a /0: two halves cover the same addresses.
        let nets: Vec<IpNet> = set
            .entries
            .iter()
            .flat_map(|e| {
                if e.net.prefix_len() == 0 {
                    e.net.subnets(1).map(|s| s.collect()).unwrap_or_default()
                } else {
                    vec![e.net]
                }
            })
            .collect();
        let max = maxelem(nets.len());
        let hashsize = (nets.len() / 4).next_power_of_two().clamp(1024, 1 << 20);
        let params = format!("hash:net family {family} hashsize {hashsize} maxelem {max}");
        writeln!(out, "create {name} {params} -exist")?;
        writeln!(out, "create {tmp} {params} -exist")?;
        writeln!(out, "flush {tmp}")?;
        for n in &nets {
            writeln!(out, "add {tmp} {n}")?;
        }
        writeln!(out, "swap {tmp} {name}")?;
        writeln!(out, "destroy {tmp}")?;
    }
    Ok(())
}
