//! Hostile text never reaches a firewall loader. Tag names, regions and services made to inject
//! (restore keywords after newlines, lines longer than the loaders' buffers, Unicode, quotes),
//! and arbitrary `nft_table` settings, are put straight into a snapshot (past the parser, which
//! refuses most of them) and through emit; the files are loaded with the real `nft`, `ipset`,
//! `iptables-restore` and `ip6tables-restore` into a network namespace that already holds a
//! victim table, set and rules. Afterwards the namespace holds exactly tagwall's objects added,
//! with the expected addresses, and the victim's objects unchanged.
//!
//! The names the attack reports used go through the real binary too: the parser refuses a
//! 1,037-byte name with a clear error and imports nothing.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use common::netns::Netns;
use ipnet::IpNet;
use proptest::prelude::*;
use tagwall::core::model::{Cloud, NetworkFeatures, ServiceTag, Snapshot, SnapshotInfo, TagMeta};
use tagwall::render::firewall::files;
use tagwall::rules::allowlist::Allowlist;
use tagwall::rules::ruleset::{Ruleset, RulesetSpec};

/// Text that would act on a loader if it reached a line of its own.
const PAYLOADS: &[&str] = &[
    "\nflush victim-blocklist",
    "\ndestroy victim-blocklist",
    "\n-A INPUT -m comment --comment injected -j ACCEPT\nCOMMIT",
    "\n*filter\n-F victim\nCOMMIT",
    "\nflush ruleset",
    "\r\ndelete table inet victim",
    "\u{2028}flush ruleset",
    "; flush ruleset",
    "\" ; flush ruleset ; \"",
    "# } flush ruleset",
    "\u{0}flush victim-blocklist",
    "\u{1b}[2J",
];

fn payload() -> impl Strategy<Value = String> {
    prop::sample::select(PAYLOADS).prop_map(str::to_string)
}

/// A name that tries to inject: a payload after padding that pushes it past a loader's buffer,
/// or arbitrary Unicode.
fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        payload().prop_map(|p| format!("Storage.X{p}")),
        (
            prop::sample::select(vec![
                1000usize, 1013, 1020, 1021, 1022, 1023, 10_230, 30_700
            ]),
            payload()
        )
            .prop_map(|(n, p)| format!("Storage.X{}{p}", "A".repeat(n))),
        "\\PC{1,40}",
        "[A-Za-z0-9._-]{60,80}",
        any::<String>().prop_filter("a name", |s| !s.is_empty()),
        Just("Storage.West Europe".to_string()),
        Just("<script>alert(1)</script>".to_string()),
    ]
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 8u8..=32).prop_map(|(a, l)| IpNet::new(
            std::net::Ipv4Addr::from(a).into(),
            l
        )
        .unwrap()
        .trunc()),
        (any::<u128>(), 16u8..=128).prop_map(|(a, l)| IpNet::new(
            std::net::Ipv6Addr::from(a).into(),
            l
        )
        .unwrap()
        .trunc()),
    ]
}

fn tag() -> impl Strategy<Value = ServiceTag> {
    (
        hostile_name(),
        prop_oneof![Just(String::new()), hostile_name()],
        prop_oneof![Just(String::new()), hostile_name()],
        prop::collection::vec(prefix(), 1..6),
    )
        .prop_map(|(name, region, service, mut prefixes)| {
            prefixes.sort();
            prefixes.dedup();
            ServiceTag {
                meta: TagMeta {
                    id: name.clone(),
                    change_number: 1,
                    region,
                    region_id: None,
                    platform: "Azure".into(),
                    system_service: service,
                    network_features: NetworkFeatures::Absent,
                },
                name,
                prefixes,
            }
        })
}

fn snapshot(mut tags: Vec<ServiceTag>) -> (Snapshot, SnapshotInfo) {
    let mut seen = BTreeSet::new();
    tags.retain(|t| seen.insert(t.name.clone()));
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let info = SnapshotInfo {
        id: 1,
        cloud: Cloud::Public,
        file_date: NaiveDate::from_ymd_opt(2025, 7, 28).unwrap(),
        change_number: 1,
        tags: tags.len() as i64,
        prefixes: tags.iter().map(|t| t.prefixes.len() as i64).sum(),
        content_sha256: "0".repeat(64),
        sha256: "0".repeat(64),
        size: 0,
        source: "made up".into(),
    };
    let s = Snapshot {
        cloud: Cloud::Public,
        change_number: 1,
        tags,
    };
    (s, info)
}

/// The ruleset under test: every tag, TCP 443, in `nft_table` when the setting is accepted.
fn ruleset(nft_table: &str) -> Ruleset {
    let toml = format!(
        "name = \"hostile\"\ntags = [\"*\"]\nprotocol = \"tcp\"\nports = [443]\nnft_table = {}\n",
        toml::Value::String(nft_table.to_string())
    );
    let spec: RulesetSpec = toml::from_str(&toml).unwrap();
    match spec.clone().validate() {
        Ok(r) => r,
        Err(e) => {
            assert!(e.contains("nft_table"), "{e}");
            let mut spec = spec;
            spec.nft_table = None;
            spec.validate().unwrap()
        }
    }
}

/// The victim: a table, set and rules that are not tagwall's.
fn victim(ns: &Netns, dir: &Path) -> [String; 3] {
    ns.run(&["ipset", "create", "victim-blocklist", "hash:ip"], None);
    ns.run(&["ipset", "add", "victim-blocklist", "192.0.2.1"], None);
    ns.run(&["iptables", "-N", "victim"], None);
    ns.run(&["iptables", "-A", "INPUT", "-j", "victim"], None);
    ns.run(
        &[
            "iptables",
            "-A",
            "victim",
            "-m",
            "set",
            "--match-set",
            "victim-blocklist",
            "src",
            "-j",
            "DROP",
        ],
        None,
    );
    let nft = dir.join("victim.nft");
    std::fs::write(
        &nft,
        "table inet victim {\n\tset blocked { type ipv4_addr; elements = { 198.51.100.7 } }\n\tchain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }\n}\n",
    )
    .unwrap();
    ns.run(&["nft", "-f", nft.to_str().unwrap()], None);
    state(ns)
}

fn state(ns: &Netns) -> [String; 3] {
    [
        ns.run(&["ipset", "list", "victim-blocklist"], None),
        ns.run(&["iptables", "-S"], None)
            .lines()
            .filter(|l| !l.contains("tw-hostile"))
            .collect::<Vec<_>>()
            .join("\n"),
        ns.run(&["nft", "list", "table", "inet", "victim"], None),
    ]
}

/// Loads every firewall file of the ruleset into `ns`.
fn load(ns: &Netns, dir: &Path) {
    let f = |ext: &str| dir.join(format!("hostile.{ext}"));
    ns.run(&["nft", "-f", f("nft").to_str().unwrap()], None);
    ns.run(&["ipset", "restore"], Some(&f("ipset")));
    ns.run(&["iptables-restore", "--noflush"], Some(&f("iptables")));
    ns.run(&["ip6tables-restore", "--noflush"], Some(&f("ip6tables")));
}

/// The addresses the lists must hold: every prefix of the family, special-purpose ranges left
/// out (`core::special`).
fn expected(tags: &[ServiceTag], v6: bool) -> Vec<(u128, u128)> {
    let all: Vec<String> = tags
        .iter()
        .flat_map(|t| &t.prefixes)
        .filter(|p| matches!(p, IpNet::V6(_)) == v6)
        .filter(|p| tagwall::core::special::kind(p).is_none())
        .map(ToString::to_string)
        .collect();
    common::merged(&all, v6)
}

fn ipset_ranges(ns: &Netns, set: &str, v6: bool) -> Vec<(u128, u128)> {
    let text = ns.run(&["ipset", "list", set], None);
    let members: Vec<String> = text
        .split("Members:\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim();
            if l.contains('/') {
                l.to_string()
            } else if v6 {
                format!("{l}/128")
            } else {
                format!("{l}/32")
            }
        })
        .collect();
    common::merged(&members, v6)
}

fn check_case(tags: Vec<ServiceTag>, nft_table: &str) -> Result<(), TestCaseError> {
    let Some(ns) = Netns::new() else {
        return Ok(());
    };
    let dir = tempfile::tempdir().unwrap();
    let before = victim(&ns, dir.path());
    let (snap, info) = snapshot(tags);
    let r = ruleset(nft_table);
    let allowlist =
        Allowlist::build(&r, &snap, &info, &tagwall::rules::grace::Retained::none()).unwrap();
    let files = files::files(&allowlist).expect("hostile names must be rendered safely");
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    load(&ns, dir.path());
    prop_assert_eq!(&state(&ns), &before, "the victim's objects changed");
    let sets: BTreeSet<String> = ns
        .run(&["ipset", "list", "-n"], None)
        .lines()
        .map(str::to_string)
        .collect();
    let want: BTreeSet<String> = ["victim-blocklist", "tw-hostile-v4", "tw-hostile-v6"]
        .map(String::from)
        .into();
    prop_assert_eq!(sets, want);
    for (fam, v6) in [("v4", false), ("v6", true)] {
        prop_assert_eq!(
            ipset_ranges(&ns, &format!("tw-hostile-{fam}"), v6),
            expected(&snap.tags, v6)
        );
    }
    let rules = ns.run(&["iptables", "-S", "tw-hostile"], None);
    prop_assert_eq!(
        rules,
        "-N tw-hostile\n-A tw-hostile -p tcp -m tcp --dport 443 -m set --match-set tw-hostile-v4 dst -j ACCEPT\n"
    );
    let (fam, table) = &r.nft_table;
    let tables = ns.run(&["nft", "list", "tables"], None);
    for line in tables.lines() {
        let ok = line == "table inet victim"
            || line == format!("table {fam} {table}")
            || line == "table ip filter"
            || line == "table ip6 filter";
        prop_assert!(ok, "unexpected nft table {line:?} in\n{tables}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn hostile_names_and_settings_never_change_what_the_loaders_do(
        tags in prop::collection::vec(tag(), 1..6),
        nft_table in prop_oneof![
            Just("inet tagwall".to_string()),
            Just("inet filter".to_string()),
            Just("ip6 x".to_string()),
            Just("inet table".to_string()),
            Just("inet counter".to_string()),
            Just("inet x;flush ruleset".to_string()),
            Just("inet x\nflush ruleset".to_string()),
            "[a-z]{1,8} [a-z;{} -]{1,12}",
            any::<String>(),
        ],
    ) {
        check_case(tags, &nft_table)?;
    }
}

/// The two names of the attack report, in a file given to the real binary: refused by name and
/// length, nothing imported.
#[test]
fn the_reported_injection_names_are_refused_at_import() {
    let dir = tempfile::tempdir().unwrap();
    let long_ipset = format!("Storage.X{}flush victim-blocklist", "A".repeat(1006));
    assert_eq!(long_ipset.len(), 1037);
    let long_iptables = format!(
        "Storage.X{}-A INPUT -m comment --comment injected-by-tag-name -j ACCEPT",
        "A".repeat(30_640)
    );
    for name in [long_ipset, long_iptables] {
        let file = dir.path().join("ServiceTags_Public_20250728.json");
        let text = common::service_tags(
            "Public",
            1,
            &[
                common::Tag(&name, "", &["10.0.0.0/8"]),
                common::Tag("AzureCloud", "", &["20.0.0.0/16"]),
            ],
        );
        std::fs::write(&file, text).unwrap();
        let out = common::tagwall(dir.path())
            .args(["import"])
            .arg(&file)
            .assert()
            .failure();
        let o = out.get_output();
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            err.contains(&format!(
                "tag name of {} bytes: names must hold 1 to 256 bytes",
                name.len()
            )),
            "{err}"
        );
        assert!(err.len() < 2000, "the error repeats the name: {err}");
        let listed = common::tagwall(dir.path())
            .args(["snapshots"])
            .assert()
            .success();
        let listed = String::from_utf8_lossy(&listed.get_output().stdout).into_owned();
        assert!(!listed.contains("2025-07-28"), "{listed}");
    }
}
