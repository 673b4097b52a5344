//! What each firewall loader accepts, line by line, checked on every rendered file before it can
//! be published (fail closed: a file that breaks a rule is an error, never written).
//!
//! | file | loader | line limit | what a line may be |
//! |---|---|---|---|
//! | `.ipset` | `ipset restore` reads lines into a 1,024-byte buffer (the rest of a longer line is read as a new command) | 1,022 bytes | a comment, or exactly `create`/`flush`/`add`/`swap`/`destroy` of the ruleset's own two set names |
//! | `.iptables`, `.ip6tables` | `iptables-restore` reads lines into a 10,240-byte buffer | 10,238 bytes | a comment, `*filter`, `COMMIT`, or `:`/`-F`/`-A` of the ruleset's own chain |
//! | `.nft` | `nft -f` (no line buffer; names ≤ 255 bytes) | 4,096 bytes | a comment, or nft syntax made of tagwall's own characters (letters, digits, spaces, tabs and `-_.:/,{}@;`: no quotes, no `#` after the start, no `$` variables) |
//! | `.txt` lists | firewalls polling a URL | 64 bytes | one CIDR |
//! | `.squid.conf` | Squid's configuration parser | 4,096 bytes | `acl tw-<name> dst <cidr>`, `acl tw-<name>-ports port <ports>` (no quotes: a quoted value names a file Squid would read) |
//! | `.junos.txt` | Junos `load set` | 1,024 bytes | `delete`/`set policy-options prefix-list` of the ruleset's own lists, one CIDR |
//! | `.rsc` | RouterOS `/import` | 1,024 bytes | `remove [find …]` and `add list=… address=<cidr> comment=…` of the ruleset's own list and mark |
//! | `.asa.txt` | the ASA CLI (512-byte lines) | 512 bytes | `object-group network tw-<name>-<hex>`, ` description` (≤ 200 bytes of `[A-Za-z0-9 .:()-]`), ` network-object`, `exit`; comments `!` |
//! | `.fortios.conf` | the FortiOS CLI | 1,022 bytes | `config`/`end` of the four address tables, `edit "tw-<name>-…"`, `set subnet`/`set ip6`, `set`/`append member` of own names, `next` |
//! | `.ps1` | PowerShell | 4,096 bytes | the script's fixed lines for the ruleset, `$Stamp = '<hex>'`, and `'<cidr>'` lines |
//! | `.azure.tf`, `.aws.tf` | Terraform (HCL) | 4,096 bytes | HCL made of `[A-Za-z0-9 _.:/,=-]`, `"`, `[]{}()` with balanced quotes: no `${`/`%{` templates, no escapes, no heredocs |
//!
//! Comments are `#` (`!` for the ASA) + printable ASCII within [`super::comment::MAX_LINE`] bytes.
//! The new line-based formats may also hold empty lines.

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::ruleset::Ruleset;

use super::comment;

/// Why a rendered file may not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file} line {line}: {reason} - not published (this is a bug in tagwall: please report it)"
)]
pub struct Unloadable {
    /// The file's name.
    pub file: String,
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Checks one rendered file of `ruleset` by its name; files of no firewall loader pass.
pub fn check(ruleset: &Ruleset, file: &str, bytes: &[u8]) -> Result<(), Unloadable> {
    let fail = |line: usize, reason: String| Unloadable {
        file: file.to_string(),
        line,
        reason,
    };
    let Some(kind) = Kind::of(ruleset, file) else {
        return Ok(());
    };
    let limit = kind.limit();
    let text = std::str::from_utf8(bytes).map_err(|_| fail(0, "not UTF-8".into()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(fail(text.lines().count(), "no final newline".into()));
    }
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if line.len() > limit {
            return Err(fail(
                at,
                format!("{} bytes, over the loader's {limit}", line.len()),
            ));
        }
        if let Some(c) = line
            .chars()
            .find(|&c| c != '\t' && !(' '..='~').contains(&c))
        {
            return Err(fail(at, format!("holds the character U+{:04X}", c as u32)));
        }
        if line.starts_with(kind.comment()) {
            if line.len() > comment::MAX_LINE {
                return Err(fail(at, format!("a comment of {} bytes", line.len())));
            }
        } else if !kind.allows(ruleset, line) {
            return Err(fail(at, format!("unexpected line {:?}", cut(line))));
        }
    }
    Ok(())
}

/// The loaders tagwall writes for.
#[derive(Clone, Copy)]
enum Kind {
    Ipset,
    Iptables,
    Nft,
    List,
    Squid,
    Junos,
    RouterOs,
    Asa,
    FortiOs,
    Terraform,
    PowerShell,
}

impl Kind {
    fn of(ruleset: &Ruleset, file: &str) -> Option<Kind> {
        let stem = file
            .strip_prefix(ruleset.name.as_str())?
            .strip_prefix('.')?;
        match stem {
            "squid.conf" => Some(Kind::Squid),
            "junos.txt" => Some(Kind::Junos),
            "rsc" => Some(Kind::RouterOs),
            "asa.txt" => Some(Kind::Asa),
            "fortios.conf" => Some(Kind::FortiOs),
            "azure.tf" | "aws.tf" => Some(Kind::Terraform),
            "ps1" => Some(Kind::PowerShell),
            "ipset" => Some(Kind::Ipset),
            "iptables" | "ip6tables" => Some(Kind::Iptables),
            "nft" => Some(Kind::Nft),
            s if s.ends_with("txt") => Some(Kind::List),
            _ => None,
        }
    }

    /// The longest line the loader reads whole.
    fn limit(self) -> usize {
        match self {
            Kind::Ipset => 1022,
            Kind::Iptables => 10_238,
            Kind::Nft => 4096,
            Kind::List => 64,
            Kind::Squid | Kind::Terraform | Kind::PowerShell => 4096,
            Kind::Junos | Kind::RouterOs => 1024,
            Kind::Asa => 512,
            Kind::FortiOs => 1022,
        }
    }

    /// What starts a comment line.
    fn comment(self) -> char {
        match self {
            Kind::Asa => '!',
            _ => '#',
        }
    }

    /// Whether a line that is not a comment is one tagwall writes for this loader.
    fn allows(self, ruleset: &Ruleset, line: &str) -> bool {
        match self {
            Kind::Ipset => ipset_line(ruleset, line),
            Kind::Iptables => iptables_line(ruleset, line),
            Kind::Nft => nft_line(line),
            Kind::List => line.parse::<IpNet>().is_ok(),
            _ if line.is_empty() => true,
            Kind::Squid => super::vendor::lines::squid(ruleset, line),
            Kind::Junos => super::vendor::lines::junos(ruleset, line),
            Kind::RouterOs => super::vendor::lines::routeros(ruleset, line),
            Kind::Asa => super::vendor::lines::asa(ruleset, line),
            Kind::FortiOs => super::vendor::lines::fortios(ruleset, line),
            Kind::Terraform => super::vendor::lines::hcl(line),
            Kind::PowerShell => super::vendor::lines::powershell(ruleset, line),
        }
    }
}

fn cut(line: &str) -> &str {
    &line[..line.len().min(80)]
}

fn ipset_line(r: &Ruleset, line: &str) -> bool {
    let names: Vec<String> = r.families.iter().map(|&f| r.ipset_name(f)).collect();
    let own = |s: &str| names.iter().any(|n| n == s);
    let tmp = |s: &str| s.strip_suffix("-t").is_some_and(own);
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["create", name, "hash:net", "family", fam, "hashsize", h, "maxelem", m, "-exist"] => {
            (own(name) || tmp(name)) && matches!(*fam, "inet" | "inet6") && number(h) && number(m)
        }
        ["flush" | "destroy", name] => tmp(name),
        ["add", name, net] => tmp(name) && net.parse::<IpNet>().is_ok(),
        ["swap", a, b] => tmp(a) && own(b),
        _ => false,
    }
}

fn iptables_line(r: &Ruleset, line: &str) -> bool {
    let chain = r.iptables_chain();
    if line == "*filter" || line == "COMMIT" || line == format!(":{chain} - [0:0]") {
        return true;
    }
    if line == format!("-F {chain}") {
        return true;
    }
    let Some(rest) = line.strip_prefix(&format!("-A {chain} ")) else {
        return false;
    };
    let sets: Vec<String> = [Family::V4, Family::V6]
        .iter()
        .map(|&f| r.ipset_name(f))
        .collect();
    let matches_own_set = sets
        .iter()
        .any(|s| rest.contains(&format!("--match-set {s} ")));
    matches_own_set
        && rest.ends_with(" -j ACCEPT")
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -:,_".contains(c))
}

fn nft_line(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_ascii_alphanumeric() || " \t-_.:/,{}@;".contains(c))
}

fn number(text: &str) -> bool {
    !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ruleset::RulesetSpec;

    fn ruleset() -> Ruleset {
        let spec: RulesetSpec = toml::from_str("name = \"web\"\ntags = [\"AzureCloud\"]").unwrap();
        spec.validate().unwrap()
    }

    #[test]
    fn ipset_lines_are_exactly_tagwalls() {
        let r = ruleset();
        let good =
            "# c\ncreate tw-web-v4 hash:net family inet hashsize 1024 maxelem 65536 -exist\n\
                    create tw-web-v4-t hash:net family inet hashsize 1024 maxelem 65536 -exist\n\
                    flush tw-web-v4-t\nadd tw-web-v4-t 10.0.0.0/8\nswap tw-web-v4-t tw-web-v4\n\
                    destroy tw-web-v4-t\n";
        assert_eq!(check(&r, "web.ipset", good.as_bytes()), Ok(()));
        for bad in [
            "flush victim-blocklist\n",
            "destroy tw-web-v4\n",
            "add tw-web-v4-t 10.0.0.0/8 nomatch\n",
            "swap tw-web-v4-t victim\n",
            "# fine\n-A INPUT -j ACCEPT\n",
        ] {
            assert!(check(&r, "web.ipset", bad.as_bytes()).is_err(), "{bad}");
        }
        let long = format!("# {}\n", "A".repeat(200));
        let e = check(&r, "web.ipset", long.as_bytes()).unwrap_err();
        assert_eq!(e.reason, "a comment of 202 bytes");
    }

    #[test]
    fn iptables_lines_are_exactly_tagwalls() {
        let r = ruleset();
        let good = "*filter\n:tw-web - [0:0]\n-F tw-web\n\
                    -A tw-web -p tcp -m multiport --dports 443,80 -m set --match-set tw-web-v4 dst -j ACCEPT\nCOMMIT\n";
        assert_eq!(check(&r, "web.iptables", good.as_bytes()), Ok(()));
        for bad in [
            "-A INPUT -m comment --comment injected -j ACCEPT\n",
            "-F INPUT\n",
            "*nat\n",
            "-A tw-web -m set --match-set tw-web-v4 dst -j ACCEPT ; x\n",
        ] {
            assert!(check(&r, "web.iptables", bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn nft_and_lists() {
        let r = ruleset();
        assert!(check(
            &r,
            "web.nft",
            b"table inet tagwall {\n\tchain tw-web { }\n}\n"
        )
        .is_ok());
        assert!(check(&r, "web.nft", b"add rule inet filter input \"x\" accept\n").is_err());
        assert!(check(&r, "web.ipv4.txt", b"10.0.0.0/8\n").is_ok());
        assert!(check(&r, "web.txt", b"10.0.0.0/8\nflush\n").is_err());
        assert!(check(&r, "web.txt", b"10.0.0.0/8").is_err());
        assert!(check(&r, "web.csv", b"anything, \"quoted\"\n").is_ok());
        assert!(check(&r, "web.nft", "# é\n".as_bytes()).is_err());
    }
}
