//! `<name>.ipv4.txt`, `<name>.ipv6.txt`, `<name>.txt`: one CIDR per line, the external dynamic
//! list format that Palo Alto, Fortinet and Check Point firewalls poll; with `split_entries`,
//! also `<name>.ipv4.part-<n>.txt`, the list in parts of at most that many entries.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;

/// Writes the CIDRs of `family`, or of every family when `None`.
pub fn write(out: &mut impl Write, a: &Allowlist, family: Option<Family>) -> io::Result<()> {
    for set in a
        .sets
        .iter()
        .filter(|s| family.is_none_or(|f| f == s.family))
    {
        for e in &set.entries {
            writeln!(out, "{}", e.net)?;
        }
    }
    Ok(())
}

/// Writes part `part` (1-based) of `family`'s CIDRs, `split_entries` to a part.
pub fn write_part(
    out: &mut impl Write,
    a: &Allowlist,
    family: Family,
    part: usize,
) -> io::Result<()> {
    let size = a
        .ruleset
        .delivery
        .split_entries
        .unwrap_or(usize::MAX)
        .max(1);
    for set in a.sets.iter().filter(|s| s.family == family) {
        for e in set
            .entries
            .iter()
            .skip((part - 1).saturating_mul(size))
            .take(size)
        {
            writeln!(out, "{}", e.net)?;
        }
    }
    Ok(())
}
