//! Rulesets: what a firewall team asks tagwall to emit, validated into typed values. Pure.
//!
//! A ruleset names a cloud, the service tags to allow (exact names or globs), optional filters,
//! the address families, aggregation and an entry budget, the traffic the firewall rule accepts
//! (direction, protocol, ports) and the output formats. `config` reads them from `[[ruleset]]`
//! tables; [`RulesetSpec::validate`] turns each into a [`Ruleset`] or says what to fix.

use std::fmt;

use globset::{Glob, GlobBuilder, GlobMatcher};
use ipnet::IpNet;
use serde::Deserialize;

use crate::core::model::Cloud;
use crate::core::ranges::Family;
use crate::rules::delivery::{Delivery, DeliverySpec};
use crate::rules::format::Format;

/// One `[[ruleset]]` table as written (unknown keys refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetSpec {
    /// `[a-z0-9][a-z0-9_-]{0,30}`.
    pub name: String,
    /// Cloud name, default Public.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Tag names or globs.
    pub tags: Vec<String>,
    /// Tag names or globs to leave out.
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    /// Only tags of these regions (`region` field; "" for global tags).
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// Only tags of these `systemService` values.
    #[serde(default)]
    pub system_services: Option<Vec<String>>,
    /// Only tags whose `networkFeatures` lists every one of these (e.g. `FW`).
    #[serde(default)]
    pub network_features: Vec<String>,
    /// `ipv4`, `ipv6` (default both).
    #[serde(default)]
    pub families: Option<Vec<String>>,
    /// Merge into the fewest CIDRs (default true).
    #[serde(default)]
    pub aggregate: Option<bool>,
    /// At most this many entries per family (implies aggregation).
    #[serde(default)]
    pub max_entries: Option<usize>,
    /// `egress` (match destination, default) or `ingress` (match source).
    #[serde(default)]
    pub direction: Option<String>,
    /// `tcp`, `udp` or `any` (default).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Destination ports: numbers or "low-high" ranges; needs tcp or udp.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Formats to write (default all).
    #[serde(default)]
    pub formats: Option<Vec<String>>,
    /// nftables table for the sets and chain, "FAMILY NAME" (default "inet tagwall").
    #[serde(default)]
    pub nft_table: Option<String>,
    /// `sync` withholds a change losing more than this share (percent) of a family's addresses
    /// (default `[guard] max_removed_percent`, 10).
    #[serde(default)]
    pub max_removed_percent: Option<f64>,
    /// Local exceptions: CIDRs added to the list after selection (e.g. a partner's range).
    #[serde(default)]
    pub include_cidrs: Vec<String>,
    /// Local exceptions: CIDRs cut out of the list after selection and inclusion.
    #[serde(default)]
    pub exclude_cidrs: Vec<String>,
    /// Grace period: a prefix Microsoft removes stays in the list until this many days after
    /// the first snapshot without it (default 0: removed at once).
    #[serde(default)]
    pub keep_removed_days: Option<u32>,
    /// Also write each family's list in numbered parts of at most this many entries.
    #[serde(default)]
    pub split_entries: Option<usize>,
    /// The most entries a list file may hold where the firewall reads it.
    #[serde(default)]
    pub vendor_limit: Option<usize>,
    /// Commands run after a publish: argv lists with placeholders for the published files.
    #[serde(default)]
    pub apply: Vec<Vec<String>>,
    /// How long each apply command may take (default 60).
    #[serde(default)]
    pub apply_timeout_seconds: Option<u64>,
    /// Environment variables the apply commands get besides PATH, the locale, TZ and HOME.
    #[serde(default)]
    pub apply_env: Vec<String>,
}

/// The longest grace period `keep_removed_days` may give: a quarter.
pub const MAX_KEEP_REMOVED_DAYS: u32 = 92;

/// The most CIDRs `include_cidrs` or `exclude_cidrs` may hold.
pub const MAX_EXCEPTION_CIDRS: usize = 10_000;

/// `include_cidrs` / `exclude_cidrs`: CIDRs without host bits, at most [`MAX_EXCEPTION_CIDRS`].
fn exception_cidrs(key: &str, list: &[String]) -> Result<Vec<IpNet>, String> {
    if list.len() > MAX_EXCEPTION_CIDRS {
        return Err(format!(
            "{key} holds {} CIDRs: at most {MAX_EXCEPTION_CIDRS}",
            list.len()
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for text in list {
        let net: IpNet = text.trim().parse().map_err(|_| {
            format!(
                "{key}: {} is not a CIDR (e.g. \"203.0.113.0/24\")",
                crate::core::text::quoted(text, 64)
            )
        })?;
        if net.trunc() != net {
            return Err(format!(
                "{key}: {net} has host bits set: write {}",
                net.trunc()
            ));
        }
        out.push(net);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A port as written: a number or a "low-high" string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    /// `443`.
    One(i64),
    /// `"8000-8100"` (or `"443"`).
    Text(String),
}

/// Traffic direction the rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Outbound to the tag's addresses: match the destination.
    Egress,
    /// Inbound from the tag's addresses: match the source.
    Ingress,
}

/// Layer-4 protocol the rule accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Any protocol (no port match).
    Any,
}

impl Protocol {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Any => "any",
        }
    }
}

impl Direction {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

/// The vendor formats that only fit some rulesets: Squid proxies outbound TCP; Azure IP Groups
/// hold IPv4 only.
fn check_vendor_formats(
    formats: &[Format],
    direction: Direction,
    protocol: Protocol,
    families: &[Family],
) -> Result<(), String> {
    if formats.contains(&Format::Squid) {
        if protocol == Protocol::Udp {
            return Err("format \"squid\" allows TCP through a proxy: it needs protocol \"tcp\" (or none), not \"udp\"".into());
        }
        if direction == Direction::Ingress {
            return Err("format \"squid\" allows outbound requests through a proxy: it needs direction \"egress\"".into());
        }
    }
    if formats.contains(&Format::TerraformAzure) && !families.contains(&Family::V4) {
        return Err("format \"terraform-azure\" writes Azure IP Groups, which hold IPv4 only: add \"ipv4\" to families".into());
    }
    Ok(())
}

/// An inclusive port range (`low == high` for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub low: u16,
    /// Last port.
    pub high: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// A glob over tag names, case-insensitive, remembering how it was written.
#[derive(Debug, Clone)]
pub struct TagPattern {
    /// As written.
    pub text: String,
    matcher: GlobMatcher,
}

/// The longest tag pattern accepted: the longest tag name ([`crate::core::parse::MAX_TAG_NAME_BYTES`]).
pub const MAX_PATTERN_LEN: usize = crate::core::parse::MAX_TAG_NAME_BYTES;

impl TagPattern {
    /// Compiles a tag name or glob (case-insensitive; at most [`MAX_PATTERN_LEN`] bytes, since
    /// no tag name is longer).
    pub fn new(text: &str) -> Result<TagPattern, String> {
        if text.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "{} is {} bytes long: tag names and globs hold at most {MAX_PATTERN_LEN}",
                crate::core::text::quoted(text, 40),
                text.len()
            ));
        }
        let glob: Glob = GlobBuilder::new(text)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| {
                format!(
                    "{} is not a valid glob: {e}",
                    crate::core::text::quoted(text, 60)
                )
            })?;
        Ok(TagPattern {
            text: text.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// Which tags a ruleset takes from a snapshot.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Tags to take; each must match at least one tag.
    pub tags: Vec<TagPattern>,
    /// Tags to leave out.
    pub exclude_tags: Vec<TagPattern>,
    /// Allowed regions (lower-case), if restricted.
    pub regions: Option<Vec<String>>,
    /// Allowed system services (lower-case), if restricted.
    pub system_services: Option<Vec<String>>,
    /// Network features every taken tag must list.
    pub network_features: Vec<String>,
}

/// A validated ruleset.
#[derive(Debug, Clone)]
pub struct Ruleset {
    /// File and set name.
    pub name: String,
    /// The cloud its tags come from.
    pub cloud: Cloud,
    /// Which tags.
    pub selector: Selector,
    /// Families emitted, IPv4 first.
    pub families: Vec<Family>,
    /// Whether prefixes are merged into the fewest CIDRs.
    pub aggregate: bool,
    /// Entry budget per family.
    pub max_entries: Option<usize>,
    /// Rule direction.
    pub direction: Direction,
    /// Rule protocol.
    pub protocol: Protocol,
    /// Destination ports (empty: all).
    pub ports: Vec<PortRange>,
    /// Formats written.
    pub formats: Vec<Format>,
    /// nftables table family and name.
    pub nft_table: (String, String),
    /// The guard's removal limit for this ruleset, if set (else `[guard]`'s).
    pub max_removed_percent: Option<f64>,
    /// CIDRs added after selection.
    pub include_cidrs: Vec<IpNet>,
    /// CIDRs cut out after selection and inclusion.
    pub exclude_cidrs: Vec<IpNet>,
    /// Days a removed prefix stays allowed after the first snapshot without it (0: none).
    pub keep_removed_days: u32,
    /// Parts, limits and apply commands.
    pub delivery: Delivery,
}

/// Tags shared by every Azure customer that rulesets should not take lightly.
pub fn is_broad_tag(name: &str) -> bool {
    name == "AzureCloud" || name.starts_with("AzureCloud.")
}

/// The warning given for a ruleset that takes broad multi-tenant tags.
pub fn broad_warning(tags: &[&str]) -> String {
    format!(
        "{} {} multi-tenant: these addresses are shared by all Azure customers, so allowing them \
         is not a security boundary; prefer FQDN rules or narrower tags where the firewall can",
        crate::core::text::name_list(tags.iter().copied(), 12),
        if tags.len() == 1 { "is" } else { "are" }
    )
}

fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 31
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn one_of<T: Copy>(field: &str, value: &str, options: &[(&str, T)]) -> Result<T, String> {
    options
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(value))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            format!("{field} = {value:?} is not one of {}", names.join(", "))
        })
}

fn parse_port(p: &PortSpec) -> Result<PortRange, String> {
    let bad = |s: &str| format!("port {s:?} is not a port (1-65535) or a range \"low-high\"");
    let num = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(s))
    };
    match p {
        PortSpec::One(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| PortRange { low: n, high: n })
            .ok_or_else(|| bad(&n.to_string())),
        PortSpec::Text(s) => {
            let (low, high) = match s.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => (num(s)?, num(s)?),
            };
            if low > high {
                return Err(format!(
                    "port range {s:?} runs backwards: write \"{high}-{low}\""
                ));
            }
            Ok(PortRange { low, high })
        }
    }
}

fn patterns(field: &str, list: &[String]) -> Result<Vec<TagPattern>, String> {
    list.iter()
        .map(|t| TagPattern::new(t).map_err(|e| format!("{field}: {e}")))
        .collect()
}

fn lower(list: Option<Vec<String>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|s| s.to_ascii_lowercase()).collect())
}

impl RulesetSpec {
    /// Checks every field; the error names the field and what to write instead.
    pub fn validate(self) -> Result<Ruleset, String> {
        if !is_valid_name(&self.name) {
            return Err(format!(
                "name {:?} is not valid: use 1-31 of a-z, 0-9, '_' and '-', starting with a letter or digit (it becomes file and set names)",
                self.name
            ));
        }
        let cloud: Cloud = match &self.cloud {
            Some(c) => c.parse().map_err(|e| format!("cloud: {e}"))?,
            None => Cloud::Public,
        };
        if self.tags.is_empty() {
            return Err("tags is empty: name at least one service tag or glob, e.g. tags = [\"AzureCloud\"]".into());
        }
        let families = self.families()?;
        let (direction, protocol, ports) = self.traffic()?;
        let formats = self.formats()?;
        let aggregate = self.aggregate.unwrap_or(true);
        self.check_budget(aggregate)?;
        if !aggregate && formats.contains(&Format::Nft) {
            return Err("aggregate = false keeps prefixes that lie inside others, which an nft interval set refuses: keep aggregation for the nft format (publish the unaggregated list from a ruleset without nft)".into());
        }
        let nft_table = parse_table(self.nft_table.as_deref().unwrap_or("inet tagwall"))?;
        check_nft_table(&nft_table, &formats, &families)?;
        check_vendor_formats(&formats, direction, protocol, &families)?;
        let delivery = DeliverySpec {
            split_entries: self.split_entries,
            vendor_limit: self.vendor_limit,
            apply: &self.apply,
            apply_timeout_seconds: self.apply_timeout_seconds,
            apply_env: &self.apply_env,
        }
        .validate(&formats, &families)?;
        let include_cidrs = exception_cidrs("include_cidrs", &self.include_cidrs)?;
        let exclude_cidrs = exception_cidrs("exclude_cidrs", &self.exclude_cidrs)?;
        if !aggregate && !exclude_cidrs.is_empty() {
            return Err(
                "exclude_cidrs needs aggregation (it cuts entries apart): remove aggregate = false"
                    .into(),
            );
        }
        let keep_removed_days = match self.keep_removed_days {
            Some(d) if d > MAX_KEEP_REMOVED_DAYS => {
                return Err(format!(
                    "keep_removed_days = {d}: at most {MAX_KEEP_REMOVED_DAYS} (removed ranges can be reassigned to other customers; 7 to 28 is usual)"
                ))
            }
            d => d.unwrap_or(0),
        };
        let max_removed_percent = match self.max_removed_percent {
            Some(p) if !(0.0..=100.0).contains(&p) => {
                return Err(format!(
                    "max_removed_percent = {p}: use a share between 0 and 100"
                ))
            }
            p => p,
        };
        Ok(Ruleset {
            selector: Selector {
                tags: patterns("tags", &self.tags)?,
                exclude_tags: patterns("exclude_tags", &self.exclude_tags)?,
                regions: lower(self.regions),
                system_services: lower(self.system_services),
                network_features: self.network_features,
            },
            name: self.name,
            cloud,
            families,
            aggregate,
            max_entries: self.max_entries,
            max_removed_percent,
            include_cidrs,
            exclude_cidrs,
            keep_removed_days,
            direction,
            protocol,
            ports,
            formats,
            nft_table,
            delivery,
        })
    }

    /// `families`: IPv4 and IPv6 unless narrowed; each once, in order.
    fn families(&self) -> Result<Vec<Family>, String> {
        let Some(list) = &self.families else {
            return Ok(vec![Family::V4, Family::V6]);
        };
        let mut out = Vec::new();
        for f in list {
            let fam = one_of("families", f, &[("ipv4", Family::V4), ("ipv6", Family::V6)])?;
            if !out.contains(&fam) {
                out.push(fam);
            }
        }
        if out.is_empty() {
            return Err("families is empty: use [\"ipv4\"], [\"ipv6\"] or both".into());
        }
        out.sort();
        Ok(out)
    }

    /// `direction`, `protocol` and `ports` (ports need a protocol).
    fn traffic(&self) -> Result<(Direction, Protocol, Vec<PortRange>), String> {
        let direction = match &self.direction {
            None => Direction::Egress,
            Some(d) => one_of(
                "direction",
                d,
                &[
                    ("egress", Direction::Egress),
                    ("ingress", Direction::Ingress),
                ],
            )?,
        };
        let protocol = match &self.protocol {
            None => Protocol::Any,
            Some(p) => one_of(
                "protocol",
                p,
                &[
                    ("tcp", Protocol::Tcp),
                    ("udp", Protocol::Udp),
                    ("any", Protocol::Any),
                ],
            )?,
        };
        let ports = self
            .ports
            .iter()
            .map(parse_port)
            .collect::<Result<Vec<_>, _>>()?;
        if ports.len() > MAX_PORTS {
            return Err(format!(
                "ports lists {} ports or ranges: at most {MAX_PORTS} (write a range such as \"8000-8999\" for many)",
                ports.len()
            ));
        }
        if !ports.is_empty() && protocol == Protocol::Any {
            return Err("ports need a protocol: add protocol = \"tcp\" or \"udp\"".into());
        }
        Ok((direction, protocol, ports))
    }

    /// `formats`: the default formats unless named; iptables needs ipset.
    fn formats(&self) -> Result<Vec<Format>, String> {
        let formats = match &self.formats {
            None => Format::DEFAULT.to_vec(),
            Some(list) => {
                let options: Vec<(&str, Format)> =
                    Format::ALL.iter().map(|f| (f.name(), *f)).collect();
                let mut out = Vec::new();
                for f in list {
                    let fmt = one_of("formats", f, &options)?;
                    if !out.contains(&fmt) {
                        out.push(fmt);
                    }
                }
                if out.is_empty() {
                    return Err("formats is empty: leave it out for the default formats".into());
                }
                out.sort();
                out
            }
        };
        if formats.contains(&Format::Iptables) && !formats.contains(&Format::Ipset) {
            return Err("format \"iptables\" matches ipset sets: add \"ipset\" to formats".into());
        }
        Ok(formats)
    }

    /// `max_entries`: at least 1, and only with aggregation.
    fn check_budget(&self, aggregate: bool) -> Result<(), String> {
        if self.max_entries == Some(0) {
            return Err("max_entries = 0 allows nothing: leave it out, or set the firewall's limit (e.g. 1000)".into());
        }
        if !aggregate && self.max_entries.is_some() {
            return Err("max_entries needs aggregation: remove aggregate = false".into());
        }
        Ok(())
    }
}

/// An `ip` or `ip6` nft table holds one address family only.
fn check_nft_table(
    nft_table: &(String, String),
    formats: &[Format],
    families: &[Family],
) -> Result<(), String> {
    if !formats.contains(&Format::Nft) {
        return Ok(());
    }
    let needs = match nft_table.0.as_str() {
        "ip" => Some(Family::V4),
        "ip6" => Some(Family::V6),
        _ => None,
    };
    if needs.is_some_and(|f| families != [f]) {
        return Err(format!(
            "nft_table family {} holds one address family: set families = [\"{}\"] or use an inet table",
            nft_table.0,
            needs.map_or("", Family::key)
        ));
    }
    Ok(())
}

fn parse_table(text: &str) -> Result<(String, String), String> {
    let mut words = text.split_whitespace();
    let (Some(family), Some(name), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "nft_table = {text:?}: write \"FAMILY NAME\", e.g. \"inet tagwall\""
        ));
    };
    if !["inet", "ip", "ip6"].contains(&family) {
        return Err(format!(
            "nft_table = {text:?}: the family must be inet, ip or ip6 (sets of both families need inet)"
        ));
    }
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "nft_table = {text:?}: the table name must start with a letter and hold only letters, digits, '_' and '-'"
        ));
    }
    if name.len() > MAX_NFT_TABLE {
        return Err(format!(
            "nft_table: the table name has {} characters: nft takes at most {MAX_NFT_TABLE}",
            name.len()
        ));
    }
    if NFT_RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "nft_table = {text:?}: {name:?} is an nft keyword, which nft refuses as a table name: pick another name, e.g. \"{family} tagwall\""
        ));
    }
    Ok((family.to_string(), name.to_string()))
}

/// The most ports and port ranges a ruleset lists: every format's line holds them.
pub const MAX_PORTS: usize = 100;
/// The longest nft table name (nft's `NFT_NAME_MAXLEN` is 256 with the final NUL).
pub const MAX_NFT_TABLE: usize = 255;

/// Words nft reads as keywords where a table name stands (nftables' scanner, and what `nft -c`
/// 1.0.6 refuses): a table cannot be named so, and nft has no quoting for table names.
pub const NFT_RESERVED: &[&str] = &[
    "accept",
    "add",
    "ah",
    "all",
    "and",
    "arp",
    "auto-merge",
    "bridge",
    "cgroup",
    "chain",
    "comment",
    "comp",
    "constant",
    "continue",
    "counter",
    "cpu",
    "create",
    "ct",
    "day",
    "dccp",
    "define",
    "delete",
    "describe",
    "destroy",
    "device",
    "devices",
    "dnat",
    "drop",
    "dst",
    "dup",
    "dynamic",
    "ecn",
    "element",
    "elements",
    "eq",
    "esp",
    "ether",
    "exists",
    "expires",
    "export",
    "exthdr",
    "fib",
    "flags",
    "flow",
    "flowtable",
    "flush",
    "frag",
    "fwd",
    "gc-interval",
    "ge",
    "geneve",
    "get",
    "goto",
    "gre",
    "gretap",
    "gt",
    "handle",
    "hbh",
    "hook",
    "hour",
    "ibriport",
    "ibrname",
    "icmp",
    "icmpv6",
    "igmp",
    "iif",
    "iifgroup",
    "iifname",
    "iiftype",
    "import",
    "include",
    "index",
    "inet",
    "insert",
    "interval",
    "ip",
    "ip6",
    "ipsec",
    "jhash",
    "jump",
    "last",
    "le",
    "limit",
    "list",
    "log",
    "lshift",
    "lt",
    "map",
    "mark",
    "masquerade",
    "meta",
    "meter",
    "mh",
    "missing",
    "monitor",
    "ne",
    "netdev",
    "nftrace",
    "not",
    "notrack",
    "numgen",
    "obriport",
    "obrname",
    "offload",
    "oif",
    "oifgroup",
    "oifname",
    "oiftype",
    "or",
    "osf",
    "pkttype",
    "policy",
    "position",
    "priority",
    "queue",
    "quota",
    "random",
    "redefine",
    "redirect",
    "reject",
    "rename",
    "replace",
    "reset",
    "return",
    "rshift",
    "rt",
    "rt0",
    "rt2",
    "rtclassid",
    "rule",
    "ruleset",
    "sctp",
    "secmark",
    "set",
    "size",
    "skgid",
    "skuid",
    "snat",
    "socket",
    "srh",
    "symhash",
    "synproxy",
    "table",
    "tcp",
    "th",
    "time",
    "timeout",
    "tproxy",
    "tunnel",
    "type",
    "typeof",
    "udp",
    "udplite",
    "undefine",
    "update",
    "vlan",
    "vmap",
    "vni",
    "vxlan",
    "xor",
    "xt",
];

/// `base` cut to at most `max` characters, ending in a short hash of `base` when cut, so that
/// distinct long names stay distinct.
pub fn fit(base: &str, max: usize) -> String {
    if base.len() <= max {
        return base.to_string();
    }
    let hash = crate::core::digest::sha256_hex(base.as_bytes());
    format!("{}-{}", &base[..max - 5], &hash[..4])
}

impl Ruleset {
    /// The nftables chain: `tw-<name>` (nft names must start with a letter; the prefix also
    /// keeps tagwall's objects apart from others in a shared table).
    pub fn nft_chain(&self) -> String {
        format!("tw-{}", self.name)
    }

    /// The name of a family's list in the firewall: `tw-<name>-v4` / `-v6` (the nftables set,
    /// the Junos prefix list, the FortiOS group, the Check Point object).
    pub fn list_name(&self, family: Family) -> String {
        format!("tw-{}-{}", self.name, family_suffix(family))
    }

    /// The nftables set of a family.
    pub fn nft_set(&self, family: Family) -> String {
        self.list_name(family)
    }

    /// The ipset set of a family (ipset names hold at most 31 characters, with room for the
    /// temporary set's `-t`).
    pub fn ipset_name(&self, family: Family) -> String {
        format!(
            "{}-{}",
            fit(&format!("tw-{}", self.name), 26),
            family_suffix(family)
        )
    }

    /// The iptables/ip6tables chain (at most 28 characters).
    pub fn iptables_chain(&self) -> String {
        fit(&format!("tw-{}", self.name), 28)
    }

    /// Whether the ruleset emits this family.
    pub fn has(&self, family: Family) -> bool {
        self.families.contains(&family)
    }

    /// Whether the list can differ from the selected tags' addresses: a budget, local
    /// exceptions or a grace period (lookup then checks the list itself).
    pub fn list_differs(&self) -> bool {
        self.max_entries.is_some()
            || !self.include_cidrs.is_empty()
            || !self.exclude_cidrs.is_empty()
            || self.keep_removed_days > 0
    }

    /// The ports as written in rules ("443,80"), empty for all ports.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `v4` or `v6`.
pub fn family_suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_fit_the_tools_limits() {
        let long = spec("").map(|mut r| {
            r.name = "a".repeat(31);
            r
        });
        let r = long.unwrap();
        assert_eq!(r.ipset_name(Family::V4).len(), 29);
        assert!(r.iptables_chain().len() <= 28);
        let short = spec("").unwrap();
        assert_eq!(short.ipset_name(Family::V6), "tw-entra-connector-v6");
        assert_eq!(short.iptables_chain(), "tw-entra-connector");
        assert_eq!(short.nft_set(Family::V4), "tw-entra-connector-v4");
        assert_ne!(
            fit(&"b".repeat(40), 26),
            fit(&format!("{}c", "b".repeat(39)), 26)
        );
    }

    fn spec(extra: &str) -> Result<Ruleset, String> {
        let text = format!("name = \"entra-connector\"\ntags = [\"AzureCloud\"]\n{extra}");
        let spec: RulesetSpec = toml::from_str(&text).map_err(|e| e.to_string())?;
        spec.validate()
    }

    #[test]
    fn defaults_are_both_families_every_format_egress_any() {
        let r = spec("").unwrap();
        assert_eq!(r.cloud, Cloud::Public);
        assert_eq!(r.families, [Family::V4, Family::V6]);
        assert_eq!(r.formats, Format::DEFAULT);
        assert_eq!(r.direction, Direction::Egress);
        assert_eq!(r.protocol, Protocol::Any);
        assert!(r.aggregate);
        assert_eq!(r.nft_table, ("inet".into(), "tagwall".into()));
    }

    #[test]
    fn ports_accept_numbers_and_ranges() {
        let r = spec("protocol = \"tcp\"\nports = [443, 80, \"8000-8100\"]").unwrap();
        assert_eq!(r.ports_text(), "443,80,8000-8100");
    }

    #[test]
    fn every_bad_field_is_named() {
        for (extra, needle) in [
            ("ports = [443]", "ports need a protocol"),
            (
                "protocol = \"icmp\"",
                "protocol = \"icmp\" is not one of tcp, udp, any",
            ),
            ("protocol = \"tcp\"\nports = [70000]", "port \"70000\""),
            ("protocol = \"tcp\"\nports = [\"90-80\"]", "runs backwards"),
            ("families = [\"ipv5\"]", "families = \"ipv5\""),
            ("formats = [\"iptables\"]", "add \"ipset\""),
            ("formats = [\"pdf\"]", "formats = \"pdf\""),
            ("max_entries = 0", "max_entries = 0"),
            (
                "aggregate = false\nmax_entries = 10",
                "max_entries needs aggregation",
            ),
            ("cloud = \"Mars\"", "unknown cloud"),
            ("nft_table = \"bridge x\"", "inet, ip or ip6"),
            ("nft_table = \"inet table\"", "is an nft keyword"),
            ("nft_table = \"inet counter\"", "is an nft keyword"),
            ("nft_table = \"ip accept\"", "is an nft keyword"),
            ("direction = \"up\"", "direction"),
        ] {
            let err = spec(extra).unwrap_err();
            assert!(err.contains(needle), "{extra}: {err}");
        }
        for name in ["", "Entra", "-x", "a.b", &"x".repeat(32)] {
            let spec: RulesetSpec =
                toml::from_str(&format!("name = {name:?}\ntags = [\"X\"]")).unwrap();
            assert!(
                spec.validate().unwrap_err().contains("is not valid"),
                "{name}"
            );
        }
        assert!(spec("colour = 1")
            .unwrap_err()
            .contains("unknown field `colour`"));
    }

    #[test]
    fn tag_patterns_are_case_insensitive_globs() {
        let p = TagPattern::new("Storage.*").unwrap();
        assert!(p.matches("Storage.WestEurope"));
        assert!(p.matches("storage.westeurope"));
        assert!(!p.matches("Storage"));
        assert!(!p.matches("StorageSyncService"));
    }

    #[test]
    fn huge_patterns_are_refused_without_compiling_them() {
        let huge = "A*".repeat(100_000);
        let e = spec(&format!("exclude_tags = [\"{huge}\"]")).unwrap_err();
        assert!(e.starts_with("exclude_tags: \"A*A*"), "{e}");
        assert!(
            e.contains("is 200000 bytes long: tag names and globs hold at most 256"),
            "{e}"
        );
        assert!(e.len() < 300, "{e}");
    }
}
