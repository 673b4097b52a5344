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
//! | `.csv` | spreadsheets | none | rows (a quoted cell may hold a line break): the header row, or the eleven columns with the ruleset's name, the family, a CIDR and its address count, no cell starting a formula |
//! | `.json`, `.checkpoint.json` | JSON readers | none | one JSON document (parsed whole) |
//!
//! Comments are `#` (`!` for the ASA) + printable ASCII within [`super::comment::MAX_LINE`] bytes.
//! The new line-based formats may also hold empty lines. Each file's grammar is the one its
//! format names in [`crate::rules::format`]; a file no format of the ruleset names fails.

use ipnet::IpNet;

use crate::core::ranges::Family;
use crate::rules::format::{grammar_of, Grammar};
use crate::rules::ruleset::Ruleset;

use super::{comment, lines};

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

/// Checks one rendered file of `ruleset` by its name: by the grammar of the format that writes
/// it ([`crate::rules::format`]). A file that none of the ruleset's formats names fails: nothing
/// is published unchecked.
pub fn check(ruleset: &Ruleset, file: &str, bytes: &[u8]) -> Result<(), Unloadable> {
    let fail = |line: usize, reason: String| Unloadable {
        file: file.to_string(),
        line,
        reason,
    };
    let Some(grammar) = grammar_of(&ruleset.name, &ruleset.formats, &ruleset.families, file) else {
        return Err(fail(
            0,
            "no format of the ruleset writes a file of this name".into(),
        ));
    };
    let text = std::str::from_utf8(bytes).map_err(|_| fail(0, "not UTF-8".into()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(fail(text.lines().count(), "no final newline".into()));
    }
    if grammar == Grammar::Json {
        return serde_json::from_str::<serde_json::Value>(text)
            .map(drop)
            .map_err(|e| fail(e.line(), format!("not JSON: {e}")));
    }
    if grammar == Grammar::Csv {
        // A quoted cell may hold a line break: rows, not lines.
        for (at, row) in lines::csv_rows(text) {
            if !lines::csv(ruleset, row) {
                return Err(fail(at, format!("unexpected row {:?}", cut(row))));
            }
        }
        return Ok(());
    }
    for (i, line) in text.lines().enumerate() {
        check_line(ruleset, grammar, line).map_err(|reason| fail(i + 1, reason))?;
    }
    Ok(())
}

/// One line of a line-based file: within the loader's limit, printable ASCII, and a comment or
/// a line the grammar allows.
fn check_line(ruleset: &Ruleset, grammar: Grammar, line: &str) -> Result<(), String> {
    if let Some(limit) = grammar.line_limit().filter(|&l| line.len() > l) {
        return Err(format!("{} bytes, over the loader's {limit}", line.len()));
    }
    if let Some(c) = line
        .chars()
        .find(|&c| c != '\t' && !(' '..='~').contains(&c))
    {
        return Err(format!("holds the character U+{:04X}", c as u32));
    }
    match grammar.comment() {
        Some(mark) if line.starts_with(mark) => {
            if line.len() > comment::MAX_LINE {
                return Err(format!("a comment of {} bytes", line.len()));
            }
            Ok(())
        }
        _ if allows(grammar, ruleset, line) => Ok(()),
        _ => Err(format!("unexpected line {:?}", cut(line))),
    }
}

/// Whether a line that is not a comment is one tagwall writes for this loader.
fn allows(grammar: Grammar, ruleset: &Ruleset, line: &str) -> bool {
    match grammar {
        Grammar::Ipset => ipset_line(ruleset, line),
        Grammar::Iptables => iptables_line(ruleset, line),
        Grammar::Nft => nft_line(line),
        Grammar::List => line.parse::<IpNet>().is_ok(),
        // Checked whole by `check`.
        Grammar::Csv | Grammar::Json => false,
        _ if line.is_empty() => true,
        Grammar::Squid => lines::squid(ruleset, line),
        Grammar::Junos => lines::junos(ruleset, line),
        Grammar::RouterOs => lines::routeros(ruleset, line),
        Grammar::Asa => lines::asa(ruleset, line),
        Grammar::FortiOs => lines::fortios(ruleset, line),
        Grammar::Terraform => lines::hcl(line),
        Grammar::PowerShell => lines::powershell(ruleset, line),
    }
}

/// The first 80 bytes of `line`, cut at a character boundary.
fn cut(line: &str) -> &str {
    let mut end = line.len().min(80);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
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
        // A file no format of the ruleset writes fails (the ruleset writes every format).
        assert!(check(&r, "web.conf", b"10.0.0.0/8\n").is_err());
        assert!(check(&r, "web.json", b"{\"a\": 1}\n").is_ok());
        assert!(check(&r, "web.checkpoint.json", b"{}\n").is_err());
        assert!(check(&r, "web.json", b"{\"a\": \n").is_err());
        assert!(check(&r, "web.nft", "# é\n".as_bytes()).is_err());
    }
}
