//! `<name>.ipv4.txt`, `<name>.ipv6.txt`, `<name>.txt`: one CIDR per line, the external dynamic
//! list format that Palo Alto, Fortinet and Check Point firewalls poll.

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
