//! The line grammar of each format beyond the Linux loaders, for `render::firewall::loadable`: a
//! line that is not a comment must be exactly one tagwall writes — the ruleset's own names, CIDRs and masks that parse,
//! nothing else.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};

use crate::rules::ruleset::Ruleset;

use super::{csv as csv_file, junos, routeros, squid};

use crate::core::ranges::Family;

fn net(text: &str) -> bool {
    text.parse::<IpNet>().is_ok()
}

/// An IPv4 netmask: an address whose bits are ones then zeros.
fn mask(text: &str) -> bool {
    text.parse::<Ipv4Addr>()
        .is_ok_and(|m| u32::from(m).leading_ones() + u32::from(m).trailing_zeros() == 32)
}

/// `address mask`, the address inside the mask.
fn v4_with_mask(addr: &str, m: &str) -> bool {
    match (addr.parse::<Ipv4Addr>(), m.parse::<Ipv4Addr>()) {
        (Ok(a), Ok(k)) => mask(m) && u32::from(a) & !u32::from(k) == 0,
        _ => false,
    }
}

fn v6(text: &str) -> bool {
    text.parse::<Ipv6Net>().is_ok() && !text.contains('.') && text.parse::<Ipv6Addr>().is_err()
}

/// `csv`: the header row, or a row of the eleven columns: the ruleset's name, the family, a CIDR
/// and its address count where they belong, and no cell a spreadsheet would read as a formula.
pub fn csv(r: &Ruleset, line: &str) -> bool {
    if line == csv_file::COLUMNS.join(",") {
        return true;
    }
    let Some(cells) = csv_cells(line) else {
        return false;
    };
    let formula = |c: &String| c.starts_with(['=', '+', '-', '@', '\t', '\r']);
    cells.len() == csv_file::COLUMNS.len()
        && !cells.iter().any(formula)
        && cells[0] == r.name
        && matches!(cells[4].as_str(), "ipv4" | "ipv6")
        && net(&cells[5])
        && !cells[8].is_empty()
        && cells[8].bytes().all(|b| b.is_ascii_digit())
}

/// The rows of a CSV file with the line each starts on: a line break inside a quoted cell (an
/// odd number of quotes so far) continues the row.
pub fn csv_rows(text: &str) -> Vec<(usize, &str)> {
    let mut rows = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut quotes = 0usize;
    for (line_no, (at, c)) in text.char_indices().scan(1, |n, (at, c)| {
        let here = *n;
        if c == '\n' {
            *n += 1;
        }
        Some((here, (at, c)))
    }) {
        match c {
            '"' => quotes += 1,
            '\n' if quotes.is_multiple_of(2) => {
                rows.push((first_line, &text[start..at]));
                start = at + 1;
                first_line = line_no + 1;
                quotes = 0;
            }
            _ => {}
        }
    }
    if start < text.len() {
        rows.push((first_line, &text[start..]));
    }
    rows
}

/// The cells of one CSV line (RFC 4180 quoting; `None` for a stray or unclosed quote).
fn csv_cells(line: &str) -> Option<Vec<String>> {
    let mut cells = Vec::new();
    let mut rest = line;
    loop {
        let (cell, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted_cell(quoted)?,
            None => {
                let end = rest.find(',').unwrap_or(rest.len());
                let cell = &rest[..end];
                if cell.contains('"') {
                    return None;
                }
                (cell.to_string(), &rest[end..])
            }
        };
        cells.push(cell);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => return Some(cells),
            None => return None,
        }
    }
}

/// A quoted cell's text (`""` is one quote) and what follows its closing quote.
fn quoted_cell(text: &str) -> Option<(String, &str)> {
    let mut cell = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            cell.push(c);
        } else if chars.peek().is_some_and(|&(_, n)| n == '"') {
            cell.push('"');
            chars.next();
        } else {
            return Some((cell, &text[i + 1..]));
        }
    }
    None
}

/// `squid`: `acl tw-<name> dst <cidr>` or `acl tw-<name>-ports port <p>[-<q>] …`.
pub fn squid(r: &Ruleset, line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["acl", name, "dst", cidr] => *name == squid::acl(r) && net(cidr),
        ["acl", name, "port", ports @ ..] => {
            *name == squid::ports_acl(r) && !ports.is_empty() && ports.iter().all(|p| port_range(p))
        }
        _ => false,
    }
}

fn port_range(text: &str) -> bool {
    let ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok();
    match text.split_once('-') {
        Some((a, b)) => ok(a) && ok(b),
        None => ok(text),
    }
}

/// `junos`: `delete policy-options prefix-list <own>`, `set … <own> <cidr>`.
pub fn junos(r: &Ruleset, line: &str) -> bool {
    let own = |s: &str| {
        [Family::V4, Family::V6]
            .iter()
            .any(|&f| junos::prefix_list(r, f) == s)
    };
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["delete", "policy-options", "prefix-list", list] => own(list),
        ["set", "policy-options", "prefix-list", list, cidr] => own(list) && net(cidr),
        _ => false,
    }
}

/// `routeros`: the removal of the ruleset's marked entries, or one marked entry.
pub fn routeros(r: &Ruleset, line: &str) -> bool {
    let (list, mark) = (routeros::list(r), routeros::mark(r));
    [Family::V4, Family::V6].iter().any(|&f| {
        let menu = routeros::menu(f);
        let Some(rest) = line.strip_prefix(menu).and_then(|l| l.strip_prefix(' ')) else {
            return false;
        };
        if rest == format!("remove [find where list=\"{list}\" comment=\"{mark}\"]") {
            return true;
        }
        let words: Vec<&str> = rest.split(' ').collect();
        match words.as_slice() {
            ["add", l, a, c] => {
                *l == format!("list={list}")
                    && *c == format!("comment={mark}")
                    && a.strip_prefix("address=").is_some_and(|cidr| match f {
                        Family::V4 => cidr.parse::<ipnet::Ipv4Net>().is_ok(),
                        Family::V6 => cidr.parse::<Ipv6Net>().is_ok(),
                    })
            }
            _ => false,
        }
    })
}

/// `cisco-asa`: the group, its description, its objects, `exit`.
pub fn asa(r: &Ruleset, line: &str) -> bool {
    let own_group = |g: &str| {
        g.strip_prefix(&format!("tw-{}-", r.name))
            .is_some_and(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if line == "exit" {
        return true;
    }
    if let Some(text) = line.strip_prefix(" description ") {
        return text.len() <= 200
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " .:()-_".contains(c));
    }
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["object-group", "network", g] => own_group(g),
        ["", "network-object", a, m] => v4_with_mask(a, m),
        ["", "network-object", p] => v6(p),
        _ => false,
    }
}

/// `fortios`: the four tables' `config`/`end`, `edit`/`next` of own names, subnets, members.
pub fn fortios(r: &Ruleset, line: &str) -> bool {
    let prefix = format!("tw-{}-", r.name);
    let own = |q: &str| {
        q.strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .and_then(|n| n.strip_prefix(&prefix))
            .is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    match line {
        "config firewall address"
        | "config firewall address6"
        | "config firewall addrgrp"
        | "config firewall addrgrp6"
        | "end"
        | "    next" => return true,
        _ => {}
    }
    if let Some(name) = line.strip_prefix("    edit ") {
        return own(name);
    }
    let Some(rest) = line.strip_prefix("        ") else {
        return false;
    };
    let words: Vec<&str> = rest.split(' ').collect();
    match words.as_slice() {
        ["set", "subnet", a, m] => v4_with_mask(a, m),
        ["set", "ip6", p] => v6(p),
        ["set" | "append", "member", names @ ..] => {
            !names.is_empty() && names.iter().all(|n| own(n))
        }
        _ => false,
    }
}

/// `powershell`: the script's fixed lines for this ruleset, `$Stamp`, and quoted CIDRs.
pub fn powershell(r: &Ruleset, line: &str) -> bool {
    use super::powershell::{body, preamble};
    if line == "$Chunks.Add([string[]]@(" || line == "))" {
        return true;
    }
    if let Some(stamp) = line
        .strip_prefix("$Stamp = '")
        .and_then(|l| l.strip_suffix('\''))
    {
        return stamp.len() == 8 && stamp.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(quoted) = line.strip_prefix("    '") {
        let cidr = quoted.strip_suffix("',").or(quoted.strip_suffix('\''));
        return cidr.is_some_and(net);
    }
    preamble(r).iter().chain(body(r).iter()).any(|l| l == line)
}

/// Terraform: HCL of tagwall's own characters only, quotes balanced — so no string can hold a
/// template (`${`, `%{`), an escape or a heredoc.
pub fn hcl(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_ascii_alphanumeric() || " _.:/,=-\"[]{}()".contains(c))
        && line.matches('"').count().is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ruleset::RulesetSpec;

    fn ruleset() -> Ruleset {
        let spec: RulesetSpec =
            toml::from_str("name = \"web\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443, \"8000-8080\"]")
                .unwrap();
        spec.validate().unwrap()
    }

    #[test]
    fn squid_lines_are_tagwalls_only() {
        let r = ruleset();
        assert!(squid(&r, "acl tw-web dst 10.0.0.0/8"));
        assert!(squid(&r, "acl tw-web dst 2603:1000::/40"));
        assert!(squid(&r, "acl tw-web-ports port 443 8000-8080"));
        for bad in [
            "acl tw-web dst \"/etc/passwd\"",
            "acl tw-web dst 10.0.0.0/8 all",
            "acl other dst 10.0.0.0/8",
            "http_access allow all",
            "acl tw-web-ports port 443 99999",
            "include /etc/squid/evil.conf",
            "acl tw-web dst ${process_number}",
        ] {
            assert!(!squid(&r, bad), "{bad}");
        }
    }

    #[test]
    fn junos_and_routeros_lines_are_tagwalls_only() {
        let r = ruleset();
        assert!(junos(&r, "delete policy-options prefix-list tw-web-v4"));
        assert!(junos(
            &r,
            "set policy-options prefix-list tw-web-v6 2603:1000::/40"
        ));
        for bad in [
            "delete policy-options",
            "set policy-options prefix-list other 10.0.0.0/8",
            "set system root-authentication plain-text-password",
            "set policy-options prefix-list tw-web-v4 10.0.0.0/8; delete system",
        ] {
            assert!(!junos(&r, bad), "{bad}");
        }
        assert!(routeros(
            &r,
            "/ip firewall address-list remove [find where list=\"tw-web\" comment=\"tagwall-web\"]"
        ));
        assert!(routeros(
            &r,
            "/ipv6 firewall address-list add list=tw-web address=2603:1000::/40 comment=tagwall-web"
        ));
        for bad in [
            "/ip firewall address-list remove [find]",
            "/ip firewall address-list add list=tw-web address=2603:1000::/40 comment=tagwall-web",
            "/ip firewall address-list add list=tw-web address=10.0.0.0/8 comment=tagwall-web;/system reset-configuration",
            "/system reset-configuration",
        ] {
            assert!(!routeros(&r, bad), "{bad}");
        }
    }

    #[test]
    fn asa_fortios_and_hcl_lines_are_tagwalls_only() {
        let r = ruleset();
        assert!(asa(&r, "object-group network tw-web-0a1b2c3d"));
        assert!(asa(&r, " network-object 10.0.0.0 255.0.0.0"));
        assert!(asa(&r, " network-object 2603:1000::/40"));
        assert!(asa(&r, " description tagwall web Public 2025-07-28 (id:4)"));
        for bad in [
            " network-object 10.0.0.1 255.0.0.0",
            " network-object 10.0.0.0 255.0.255.0",
            "object-group network other",
            "access-list outside permit ip any any",
            " description x\nno access-list",
        ] {
            assert!(!asa(&r, bad), "{bad}");
        }
        assert!(fortios(&r, "    edit \"tw-web-4-12\""));
        assert!(fortios(&r, "        set subnet 10.0.0.0 255.0.0.0"));
        assert!(fortios(
            &r,
            "        append member \"tw-web-4-1\" \"tw-web-4-2\""
        ));
        for bad in [
            "    edit \"admin\"",
            "        set member \"tw-web-4-1\" \"all\"",
            "config system admin",
            "        set subnet 10.0.0.1 255.0.0.0",
        ] {
            assert!(!fortios(&r, bad), "{bad}");
        }
        assert!(hcl("  cidrs = ["));
        assert!(hcl("    \"10.0.0.0/8\","));
        for bad in [
            "  name = \"${file(\\\"/etc/passwd\\\")}\"",
            "  x = <<EOT",
            "  y = \"%{if}\"",
            "  z = \"a",
        ] {
            assert!(!hcl(bad), "{bad}");
        }
    }

    #[test]
    fn csv_rows_are_exactly_tagwalls() {
        let r: crate::rules::ruleset::RulesetSpec =
            toml::from_str("name = \"web\"\ntags = [\"AzureCloud\"]").unwrap();
        let r = r.validate().unwrap();
        let row =
            "web,AzureCloud,'-,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp,\"443,80\"";
        assert!(csv(&r, row));
        assert!(csv(&r, &csv_file::COLUMNS.join(",")));
        let broken = "web,\"Azure\nCloud\",,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,1,tcp,443";
        let text = format!("{}\n{broken}\n{row}\n", csv_file::COLUMNS.join(","));
        let rows = csv_rows(&text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], (2, broken));
        assert_eq!(rows[2].0, 4);
        assert!(csv(&r, rows[1].1));
        for bad in [
            "web,=HYPERLINK(1),,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp,443",
            "other,AzureCloud,,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp,443",
            "web,AzureCloud,,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp,\"443",
            "web,AzureCloud,,,ipv4,not-a-net,10.0.0.0,10.255.255.255,16777216,tcp,443",
            "web,AzureCloud,,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp",
            "web,Azure\"Cloud,,,ipv4,10.0.0.0/8,10.0.0.0,10.255.255.255,16777216,tcp,443",
        ] {
            assert!(!csv(&r, bad), "{bad}");
        }
    }
}
