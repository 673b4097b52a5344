//! Rulesets on real Microsoft files: the aggregated sets equal an independent computation from
//! the raw JSON (serde_json values and a range sweep written here), budgets are kept with the
//! exact extra-address count, and `lookup` names the same tags as a scan of the raw file.

use crate::common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tagwall::core::model::{Cloud, SnapshotInfo};
use tagwall::core::ranges::Family;
use tagwall::rules::allowlist::Allowlist;
use tagwall::rules::ruleset::{Ruleset, RulesetSpec};

const NEWEST: &str = "Public/ServiceTags_Public_20250728.json.gz";

fn ruleset(extra: &str) -> Ruleset {
    toml::from_str::<RulesetSpec>(&format!("name = \"r\"\n{extra}"))
        .unwrap()
        .validate()
        .unwrap()
}

fn info() -> SnapshotInfo {
    SnapshotInfo {
        id: 1,
        cloud: Cloud::Public,
        file_date: chrono::NaiveDate::from_ymd_opt(2025, 7, 28).unwrap(),
        change_number: 0,
        tags: 0,
        prefixes: 0,
        content_sha256: String::new(),
        sha256: String::new(),
        size: 0,
        source: String::new(),
    }
}

fn snapshot(path: &Path) -> tagwall::core::model::Snapshot {
    let bytes = tagwall::core::parse::decompress(std::fs::read(path).unwrap()).unwrap();
    tagwall::core::parse::parse(&bytes, None).unwrap().snapshot
}

/// The fewest CIDRs for merged ranges, counted from a greedy cut written in the tests.
fn minimal_count(ranges: &[(u128, u128)], bits: u32) -> usize {
    common::minimal_cover(ranges, bits).len()
}

fn entries(a: &Allowlist, family: Family) -> Vec<String> {
    a.set(family)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.net.to_string())
        .collect()
}

fn size(ranges: &[(u128, u128)]) -> u128 {
    ranges.iter().map(|(a, b)| b - a + 1).sum()
}

fn shared(file: &str) -> Option<PathBuf> {
    common::shared_data().map(|d| d.join(file))
}

#[test]
fn exact_aggregation_equals_an_independent_computation() {
    let Some(path) = shared(NEWEST) else { return };
    let snap = snapshot(&path);
    let raw = common::raw_tags(&path).1;
    let has_fw = |props: &Value| {
        props["networkFeatures"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f == "FW"))
    };
    let cases: Vec<(&str, Vec<&String>)> = vec![
        (
            "tags = [\"AzureCloud\"]",
            raw.keys().filter(|n| *n == "AzureCloud").collect(),
        ),
        (
            "tags = [\"Storage.*\"]",
            raw.keys().filter(|n| n.starts_with("Storage.")).collect(),
        ),
        (
            "tags = [\"AzureCloud.westeurope\", \"AzureFrontDoor.*\"]",
            raw.keys()
                .filter(|n| *n == "AzureCloud.westeurope" || n.starts_with("AzureFrontDoor."))
                .collect(),
        ),
        (
            "tags = [\"*\"]\nnetwork_features = [\"FW\"]\nexclude_tags = [\"AzureCloud*\"]",
            raw.iter()
                .filter(|(n, (p, _))| has_fw(p) && !n.starts_with("AzureCloud"))
                .map(|(n, _)| n)
                .collect(),
        ),
        ("tags = [\"*\"]", raw.keys().collect()),
    ];
    for (spec, names) in cases {
        let r = ruleset(spec);
        let a =
            Allowlist::build(&r, &snap, &info(), &tagwall::rules::grace::Retained::none()).unwrap();
        let got: Vec<&str> = a.tags.iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, want, "{spec}: selected tags");
        for (family, v6, bits) in [(Family::V4, false, 32), (Family::V6, true, 128)] {
            let expect = common::merged(names.iter().flat_map(|n| &raw[*n].1), v6);
            let list = entries(&a, family);
            assert_eq!(
                common::merged(&list, v6),
                expect,
                "{spec} {family:?}: addresses"
            );
            assert_eq!(
                list.len(),
                minimal_count(&expect, bits),
                "{spec} {family:?}: entry count"
            );
            let set = a.set(family).unwrap();
            assert_eq!(set.addresses, size(&expect));
            let pairs: usize = names
                .iter()
                .map(|n| raw[*n].1.iter().filter(|p| p.contains(':') == v6).count())
                .sum();
            assert_eq!(
                set.prefixes, pairs,
                "{spec} {family:?}: (tag, prefix) pairs"
            );
        }
    }
}

#[test]
fn budgets_hold_and_the_extra_count_is_exact_on_real_tags() {
    let Some(path) = shared(NEWEST) else { return };
    let snap = snapshot(&path);
    let raw = common::raw_tags(&path).1;
    let union = common::merged(&raw["AzureCloud"].1, false);
    let mut last_extra = 0;
    for budget in [1000, 300, 100, 10] {
        let r = ruleset(&format!(
            "tags = [\"AzureCloud\"]\nfamilies = [\"ipv4\"]\nmax_entries = {budget}"
        ));
        let a =
            Allowlist::build(&r, &snap, &info(), &tagwall::rules::grace::Retained::none()).unwrap();
        let list = entries(&a, Family::V4);
        assert!(list.len() <= budget, "{budget}: {} entries", list.len());
        let cover = common::merged(&list, false);
        for &(lo, hi) in &union {
            assert!(
                cover.iter().any(|&(a, b)| a <= lo && hi <= b),
                "{budget}: {lo}-{hi} uncovered"
            );
        }
        let extra = a.set(Family::V4).unwrap().extra.unwrap();
        assert_eq!(
            size(&cover) - size(&union),
            extra,
            "{budget}: extra addresses"
        );
        // Entries never overlap: their sizes add up to the cover.
        let sum: u128 = list
            .iter()
            .map(|c| 1u128 << (32 - c.split_once('/').unwrap().1.parse::<u32>().unwrap()))
            .sum();
        assert_eq!(sum, size(&cover), "{budget}: overlapping entries");
        assert!(
            extra >= last_extra,
            "a smaller budget cannot cost fewer extra addresses"
        );
        last_extra = extra;
    }
}

#[test]
fn the_aggregate_command_matches_on_every_ipv4_prefix_of_a_file() {
    let Some(path) = shared(NEWEST) else { return };
    let raw = common::raw_tags(&path).1;
    let all: Vec<&String> = raw
        .values()
        .flat_map(|(_, s)| s)
        .filter(|p| !p.contains(':'))
        .collect();
    let input: String = all.iter().map(|p| format!("{p}\n")).collect();
    let out = Command::cargo_bin("tagwall")
        .unwrap()
        .arg("aggregate")
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expect = common::merged(all.iter().copied(), false);
    assert_eq!(common::merged(&lines, false), expect);
    assert_eq!(lines.len(), minimal_count(&expect, 32));
}

#[test]
fn lookup_names_the_tags_a_scan_of_the_raw_file_finds() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = data.join(NEWEST);
    let tagwall = || common::tagwall(dir.path());
    tagwall().arg("import").arg(&path).assert().success();
    let raw = common::raw_tags(&path).1;
    // The first address of a few prefixes of different tags, and one address of no tag.
    let picks = [
        raw["AzureCloud.westeurope"]
            .1
            .iter()
            .next()
            .unwrap()
            .clone(),
        raw["Storage"]
            .1
            .iter()
            .find(|p| p.contains(':'))
            .unwrap()
            .clone(),
        raw["AzureFrontDoor.Frontend"]
            .1
            .iter()
            .next()
            .unwrap()
            .clone(),
    ];
    for prefix in picks.iter().map(String::as_str).chain(["192.0.2.1/32"]) {
        let addr = prefix.split_once('/').unwrap().0;
        let v6 = addr.contains(':');
        let point = common::merged([&format!("{addr}/{}", if v6 { 128 } else { 32 })], v6)[0];
        let want: Vec<&String> = raw
            .iter()
            .filter(|(_, (_, set))| {
                common::merged(set, v6)
                    .iter()
                    .any(|&(a, b)| a <= point.0 && point.1 <= b)
            })
            .map(|(n, _)| n)
            .collect();
        let v = lookup_json(dir.path(), addr);
        let mut got: Vec<String> = v["clouds"][0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "lookup {addr}");
    }
}

/// Whether `(lo, hi)` lies inside one of the merged `ranges`.
fn inside(ranges: &[(u128, u128)], (lo, hi): (u128, u128)) -> bool {
    ranges.iter().any(|&(a, b)| a <= lo && hi <= b)
}

/// lookup's verdicts on real data: for networks taken from the emitted entra-connector list and
/// for random networks, a ruleset allows a network exactly when the network lies inside the union
/// of its selected tags' prefixes (computed here from the raw file); a budgeted ruleset also
/// when its emitted list covers it.
#[test]
fn lookup_verdicts_equal_the_union_of_the_selected_tags() {
    use rand::{Rng, SeedableRng};
    let Some(path) = shared(NEWEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tagwall.toml"),
        "[[ruleset]]\nname = \"entra-connector\"\ntags = [\"AzureCloud\", \"AzureActiveDirectory\"]\n\n\
         [[ruleset]]\nname = \"eu-storage\"\ntags = [\"Storage.*Europe\"]\nfamilies = [\"ipv4\"]\nmax_entries = 20\n",
    )
    .unwrap();
    let tagwall = || common::tagwall(dir.path());
    tagwall().arg("import").arg(&path).assert().success();
    tagwall().arg("emit").assert().success();
    let raw = common::raw_tags(&path).1;
    let union = |pred: &dyn Fn(&str) -> bool, v6: bool| {
        common::merged(
            raw.iter().filter(|(n, _)| pred(n)).flat_map(|(_, t)| &t.1),
            v6,
        )
    };
    let entra = |n: &str| n == "AzureCloud" || n == "AzureActiveDirectory";
    let storage_eu = |n: &str| n.starts_with("Storage.") && n.ends_with("Europe");
    let (entra4, entra6) = (union(&entra, false), union(&entra, true));
    let eu_list = common::merged(
        &std::fs::read_to_string(dir.path().join("out/eu-storage/eu-storage.ipv4.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>(),
        false,
    );
    let emitted: Vec<String> =
        std::fs::read_to_string(dir.path().join("out/entra-connector/entra-connector.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut queries: Vec<String> = (0..40)
        .map(|_| emitted[rng.gen_range(0..emitted.len())].clone())
        .collect();
    // Random networks near Azure's space (20.0.0.0/8, 40.0.0.0/8, 52.0.0.0/8), of any length.
    for _ in 0..40 {
        let first = [20u32, 40, 52][rng.gen_range(0..3)];
        let len = rng.gen_range(12..=32u8);
        let addr = std::net::Ipv4Addr::from((first << 24) | (rng.gen::<u32>() >> 8));
        let net = ipnet::Ipv4Net::new(addr, len).unwrap().trunc();
        queries.push(net.to_string());
    }
    let mut allowed = 0;
    for q in &queries {
        let v6 = q.contains(':');
        let span = common::merged([q], v6)[0];
        let v = lookup_json(dir.path(), q);
        let verdict = |name: &str| {
            v["clouds"][0]["rulesets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap()["allows"]
                .as_bool()
                .unwrap()
        };
        let want = inside(if v6 { &entra6 } else { &entra4 }, span);
        assert_eq!(
            verdict("entra-connector"),
            want,
            "entra-connector, lookup {q}"
        );
        allowed += usize::from(want);
        if !v6 {
            let eu = inside(&union(&storage_eu, false), span) || inside(&eu_list, span);
            assert_eq!(verdict("eu-storage"), eu, "eu-storage, lookup {q}");
        }
    }
    assert!(allowed >= 40, "every emitted entry is allowed ({allowed})");
}

/// The seed scenario: the example's entra-connector allows where the connector signs in, also
/// the AzureActiveDirectory ranges outside AzureCloud.
#[test]
fn the_example_allows_the_connectors_sign_in_addresses() {
    let Some(path) = shared(NEWEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tagwall = || common::tagwall(dir.path());
    let example = tagwall()
        .args(["config", "example"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(dir.path().join("tagwall.toml"), example).unwrap();
    tagwall().arg("import").arg(&path).assert().success();
    let raw = common::raw_tags(&path).1;
    let cloud = common::merged(&raw["AzureCloud"].1, false);
    for q in ["20.231.152.1", "48.213.129.1"] {
        let span = common::merged([&format!("{q}/32")], false)[0];
        assert!(!inside(&cloud, span), "{q} is outside AzureCloud");
        let v = lookup_json(dir.path(), q);
        let entra = v["clouds"][0]["rulesets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "entra-connector")
            .unwrap()
            .clone();
        assert_eq!(entra["allows"], true, "lookup {q}: {v}");
    }
}

/// Local exceptions on real data: `include_cidrs` adds, `exclude_cidrs` cuts, and both the
/// emitted files and `lookup` agree.
#[test]
fn local_exceptions_reach_the_files_and_lookup() {
    let Some(path) = shared(NEWEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tagwall.toml"),
        "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureActiveDirectory\"]\nformats = [\"txt\"]\n\
         include_cidrs = [\"203.0.113.0/24\"]\nexclude_cidrs = [\"20.231.152.0/24\"]\n",
    )
    .unwrap();
    let tagwall = || common::tagwall(dir.path());
    tagwall().arg("import").arg(&path).assert().success();
    tagwall().arg("emit").assert().success();
    let list = std::fs::read_to_string(dir.path().join("out/entra/entra.ipv4.txt")).unwrap();
    let ranges = common::merged(
        &list
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>(),
        false,
    );
    let at = |q: &str| common::merged([&format!("{q}/32")], false)[0];
    assert!(inside(&ranges, at("203.0.113.7")));
    assert!(!inside(&ranges, at("20.231.152.1")));
    assert!(inside(&ranges, at("20.231.153.1")));
    for (q, want) in [
        ("203.0.113.7", true),
        ("20.231.152.1", false),
        ("20.231.153.1", true),
    ] {
        let v = lookup_json(dir.path(), q);
        assert_eq!(
            v["clouds"][0]["rulesets"][0]["allows"], want,
            "lookup {q}: {v}"
        );
    }
}

/// `tagwall lookup Q --cloud Public --format json` in `dir`.
fn lookup_json(dir: &Path, q: &str) -> Value {
    let out = common::tagwall(dir)
        .args(["lookup", q, "--cloud", "Public", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}
