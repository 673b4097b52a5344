//! `<name>.junos.txt`: the ruleset as Junos `set` commands, one prefix list per family
//! (`tw-<name>-v4`, `tw-<name>-v6`), each deleted first so that loading replaces it whole.

use std::io::{self, Write};

use crate::core::ranges::Family;
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;

use crate::render::firewall::comment::header;

/// The prefix list of a family.
pub fn prefix_list(r: &Ruleset, family: Family) -> String {
    r.list_name(family)
}

/// Writes the Junos commands.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        "Load: copy to the device, then in configuration mode:",
    )?;
    super::note(
        out,
        "#",
        &format!(
            "  load set /var/tmp/{}.junos.txt; show | compare; commit confirmed 5; commit",
            r.name
        ),
    )?;
    super::note(out, "#", &format!("Use in a firewall filter term: from destination-prefix-list {} (family inet; {} in inet6).",
        prefix_list(r, Family::V4),
        prefix_list(r, Family::V6)))?;
    writeln!(out)?;
    for set in &a.sets {
        let list = prefix_list(r, set.family);
        writeln!(out, "delete policy-options prefix-list {list}")?;
        for e in &set.entries {
            writeln!(out, "set policy-options prefix-list {list} {}", e.net)?;
        }
    }
    Ok(())
}
