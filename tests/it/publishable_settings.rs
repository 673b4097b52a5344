//! Every setting `config check` accepts can be published: generated rulesets — names of 1 to 31
//! characters, `nft_table` names up to and past nft's limit, up to 150 ports and ranges, every
//! format, both directions and protocols, budgets, split lists — are either refused by the
//! ruleset's validation with a reason, or, on a real Public week, rendered in every format
//! with every line passing its loader's checks. "This is a bug in tagwall" is never reachable
//! from settings.

use crate::common;

use std::sync::OnceLock;

use proptest::prelude::*;
use tagwall::core::model::{Cloud, Snapshot, SnapshotInfo};
use tagwall::render::firewall::files;
use tagwall::rules::allowlist::Allowlist;
use tagwall::rules::grace::Retained;
use tagwall::rules::ruleset::RulesetSpec;

const WEEK: &str = "Public/ServiceTags_Public_20250728.json.gz";

/// The real week, parsed once.
fn week() -> Option<&'static (Snapshot, SnapshotInfo)> {
    static WEEK_DATA: OnceLock<Option<(Snapshot, SnapshotInfo)>> = OnceLock::new();
    WEEK_DATA
        .get_or_init(|| {
            let data = common::shared_data()?;
            let bytes = std::fs::read(data.join(WEEK)).unwrap();
            let raw = tagwall::core::parse::decompress(bytes).unwrap();
            let parsed = tagwall::core::parse::parse(&raw, None).unwrap();
            let snapshot = parsed.snapshot;
            let info = SnapshotInfo {
                id: 1,
                cloud: Cloud::Public,
                file_date: chrono::NaiveDate::from_ymd_opt(2025, 7, 28).unwrap(),
                change_number: snapshot.change_number,
                tags: snapshot.tags.len() as i64,
                prefixes: snapshot.tags.iter().map(|t| t.prefixes.len() as i64).sum(),
                content_sha256: "0".repeat(64),
                sha256: "0".repeat(64),
                size: 0,
                source: WEEK.into(),
            };
            Some((snapshot, info))
        })
        .as_ref()
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u16..=65535).prop_map(|p| format!("{p}")),
        (1u16..=65000, 0u16..=500).prop_map(|(p, w)| format!("\"{p}-{}\"", p + w)),
    ]
}

fn table() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("inet tagwall".to_string()),
        "[a-z][a-z0-9_-]{0,40}".prop_map(|n| format!("inet {n}")),
        "[a-z][a-z0-9_-]{200,320}".prop_map(|n| format!("inet {n}")),
        "[a-z][a-z0-9_-]{0,20}".prop_map(|n| format!("ip {n}")),
    ]
}

const FORMATS: [&str; 15] = [
    "txt",
    "nft",
    "ipset",
    "iptables",
    "csv",
    "json",
    "squid",
    "junos",
    "routeros",
    "cisco-asa",
    "fortios",
    "checkpoint",
    "powershell",
    "terraform-azure",
    "terraform-aws",
];

prop_compose! {
    /// Settings that are mostly valid (so that publishing is what is tried), some not.
    fn settings()(
        name in "[a-z0-9][a-z0-9_-]{0,30}",
        tag in prop::sample::select(vec!["AzureCloud", "AzureActiveDirectory", "AzureCloud.*", "Storage.WestEurope"]),
        table in table(),
        ports in prop::collection::vec(port(), 0..110),
        udp in prop::bool::weighted(0.15),
        ingress in prop::bool::weighted(0.15),
        formats in prop::sample::subsequence(FORMATS.to_vec(), 10..=15),
        aggregate in prop::bool::weighted(0.9),
        budget in prop::option::weighted(0.3, 1usize..5000),
        split in prop::option::weighted(0.3, 1usize..3000),
        families in prop::sample::select(vec!["[\"ipv4\", \"ipv6\"]", "[\"ipv4\"]", "[\"ipv6\"]"]),
    ) -> String {
        let mut formats: Vec<&str> = formats;
        // What the formats themselves require, so that most cases are accepted.
        if udp || ingress {
            formats.retain(|f| *f != "squid");
        }
        if formats.contains(&"iptables") && !formats.contains(&"ipset") {
            formats.push("ipset");
        }
        if !aggregate {
            formats.retain(|f| *f != "nft");
        }
        let families = if table.starts_with("ip ") { "[\"ipv4\"]" } else { families };
        if !families.contains("ipv4") {
            formats.retain(|f| *f != "terraform-azure");
        }
        let mut text = format!(
            "name = \"{name}\"\ntags = [\"{tag}\"]\nnft_table = \"{table}\"\nprotocol = \"{}\"\ndirection = \"{}\"\nfamilies = {families}\nformats = [{}]\naggregate = {aggregate}\n",
            if udp { "udp" } else { "tcp" },
            if ingress { "ingress" } else { "egress" },
            formats.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
        );
        if !ports.is_empty() {
            text.push_str(&format!("ports = [{}]\n", ports.join(", ")));
        }
        if let (Some(b), true) = (budget, aggregate) {
            text.push_str(&format!("max_entries = {b}\n"));
        }
        if let (Some(s), true) = (split, formats.contains(&"txt")) {
            text.push_str(&format!("split_entries = {s}\n"));
        }
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accepted_settings_publish_in_every_format(text in settings()) {
        let Some((snapshot, info)) = week() else { return Ok(()) };
        let spec: RulesetSpec = toml::from_str(&text).unwrap();
        let ruleset = match spec.validate() {
            // Refused with a reason: config check says so.
            Err(why) => {
                if std::env::var_os("TAGWALL_TEST_COUNT").is_some() {
                    eprintln!("refused: {why}");
                }
                prop_assert!(!why.is_empty());
                prop_assert!(!why.contains("bug in tagwall"), "{why}");
                return Ok(());
            }
            Ok(r) => r,
        };
        let allowlist = match Allowlist::build(&ruleset, snapshot, info, &Retained::none()) {
            Ok(a) => a,
            Err(e) => {
                let why = e.to_string();
                prop_assert!(!why.contains("bug in tagwall"), "{text}\n{why}");
                return Ok(());
            }
        };
        if std::env::var_os("TAGWALL_TEST_COUNT").is_some() {
            eprintln!("accepted: {}", ruleset.name);
        }
        match files::files(&allowlist) {
            Ok(files) => prop_assert!(!files.is_empty()),
            Err(e) => {
                let why = e.to_string();
                // A list longer than vendor_limit is the only refusal a render may give.
                prop_assert!(!why.contains("bug in tagwall"), "accepted settings did not publish:\n{text}\n{why}");
            }
        }
    }
}
