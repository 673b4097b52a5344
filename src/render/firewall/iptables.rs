//! `<name>.iptables` and `<name>.ip6tables`: `iptables-restore --noflush` input with a chain of
//! the ruleset's own that accepts its protocol and ports to (or from) the ipset sets.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::{Direction, PortRange, Protocol};

use super::comment::header;

/// `multiport` takes at most 15 ports, a range counting as two.
const MULTIPORT_SLOTS: usize = 15;

/// Writes the file for one family (the set must be in the allowlist).
pub fn write(out: &mut impl Write, a: &Allowlist, family: Family) -> io::Result<()> {
    let r = a.ruleset;
    let chain = r.iptables_chain();
    let (tool, file) = match family {
        Family::V4 => ("iptables-restore", "iptables"),
        Family::V6 => ("ip6tables-restore", "ip6tables"),
    };
    header(out, a, "#")?;
    super::comment::write(
        out,
        "#",
        &format!(
            "Load: ipset restore < {0}.ipset && {tool} --noflush < {0}.{file}",
            r.name
        ),
    )?;
    super::comment::write(
        out,
        "#",
        &format!(
            "The chain is not referenced: add `-j {chain}` to your own chain (e.g. OUTPUT or FORWARD)."
        ),
    )?;
    writeln!(out, "*filter")?;
    writeln!(out, ":{chain} - [0:0]")?;
    writeln!(out, "-F {chain}")?;
    let dir = match r.direction {
        Direction::Egress => "dst",
        Direction::Ingress => "src",
    };
    let set = format!("-m set --match-set {} {dir}", r.ipset_name(family));
    for ports in port_groups(&r.ports) {
        let l4 = match r.protocol {
            Protocol::Any => String::new(),
            p if ports.is_empty() => format!("-p {} ", p.name()),
            p if ports.len() == 1 && ports[0].low == ports[0].high => {
                format!("-p {0} -m {0} --dport {1} ", p.name(), ports[0].low)
            }
            p => format!(
                "-p {} -m multiport --dports {} ",
                p.name(),
                ports
                    .iter()
                    .map(|x| if x.low == x.high {
                        x.low.to_string()
                    } else {
                        format!("{}:{}", x.low, x.high)
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        writeln!(out, "-A {chain} {l4}{set} -j ACCEPT")?;
    }
    writeln!(out, "COMMIT")?;
    Ok(())
}

/// The ports cut into groups that fit one `multiport` match (one empty group for all ports).
fn port_groups(ports: &[PortRange]) -> Vec<Vec<PortRange>> {
    let mut groups: Vec<Vec<PortRange>> = vec![Vec::new()];
    let mut used = 0;
    for p in ports {
        let cost = if p.low == p.high { 1 } else { 2 };
        if used + cost > MULTIPORT_SLOTS {
            groups.push(Vec::new());
            used = 0;
        }
        used += cost;
        groups.last_mut().expect("one group").push(*p);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_grouped_for_multiport() {
        let ports: Vec<PortRange> = (1..=20)
            .map(|p| PortRange { low: p, high: p })
            .chain([PortRange {
                low: 100,
                high: 200,
            }])
            .collect();
        let groups = port_groups(&ports);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [15, 6]);
        assert_eq!(port_groups(&[]), vec![Vec::<PortRange>::new()]);
    }
}
