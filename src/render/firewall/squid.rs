//! `<name>.squid.conf`: the ruleset as Squid `acl` lines, for a proxy that allows CONNECT tunnels
//! (and plain HTTP) only to these addresses: `acl tw-<name> dst <cidr>`, one per line (Squid
//! joins the values of repeated `acl` lines), and `acl tw-<name>-ports port …` when the ruleset
//! has ports. Squid resolves the host of each request and matches its addresses.

use std::io::{self, Write};

use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;

use crate::render::firewall::comment::header;

/// The address ACL.
pub fn acl(r: &Ruleset) -> String {
    format!("tw-{}", r.name)
}

/// The port ACL (written when the ruleset has ports).
pub fn ports_acl(r: &Ruleset) -> String {
    format!("tw-{}-ports", r.name)
}

/// Writes the Squid include file.
pub fn write(out: &mut impl Write, a: &Allowlist) -> io::Result<()> {
    let r = a.ruleset;
    let (acl, ports) = (acl(r), ports_acl(r));
    header(out, a, "#")?;
    super::note(
        out,
        "#",
        "Load: in squid.conf, after the default ACLs and before `http_access deny all`:",
    )?;
    super::note(
        out,
        "#",
        &format!("  include /etc/squid/{}.squid.conf", r.name),
    )?;
    if r.ports.is_empty() {
        super::note(out, "#", &format!("  http_access allow CONNECT {acl}"))?;
        super::note(out, "#", &format!("  http_access allow !CONNECT {acl}"))?;
    } else {
        super::note(
            out,
            "#",
            &format!("  http_access allow CONNECT {ports} {acl}"),
        )?;
        super::note(
            out,
            "#",
            &format!("  http_access allow !CONNECT {ports} {acl}"),
        )?;
    }
    super::note(out, "#", "then `squid -k parse && squid -k reconfigure`. The default `http_access deny CONNECT !SSL_ports`")?;
    super::note(out, "#", "still refuses tunnels to ports other than 443.")?;
    writeln!(out)?;
    if !r.ports.is_empty() {
        let list: Vec<String> = r.ports.iter().map(ToString::to_string).collect();
        writeln!(out, "acl {ports} port {}", list.join(" "))?;
    }
    for set in &a.sets {
        for e in &set.entries {
            writeln!(out, "acl {acl} dst {}", e.net)?;
        }
    }
    Ok(())
}
