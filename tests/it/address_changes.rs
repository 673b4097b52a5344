//! The change in addresses on real consecutive weeks, against an independent computation: the
//! addresses newly allowed (after − before) and no longer allowed (before − after) of the
//! selected tags' prefixes, read from the raw files with serde_json and cut into the fewest CIDRs
//! here (`common::merged`, `common::minimal_cover`), each with the tags whose prefixes overlap
//! it. `last-run.json` (`tagwall.run/1`) and `diff --ruleset --format json` must both say exactly
//! that; the text and Markdown lead with it.

use crate::common;

use std::path::Path;

use serde_json::Value;

/// Consecutive weeks: the split of 20.150.0.0/15 (2025-07-14 → 2025-07-21) among them.
const WEEKS: [(&str, &str); 3] = [
    ("20250714", "20250721"),
    ("20250721", "20250728"),
    ("20250609", "20250616"),
];

const SETTINGS: &str = r#"
[output]
dir = "out"
validate = "never"

[guard]
max_removed_percent = 100
max_added_percent = 1000

[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud", "AzureActiveDirectory"]
formats = ["txt", "json"]

[[ruleset]]
name = "storage"
tags = ["Storage.*"]
families = ["ipv4"]
formats = ["txt"]
"#;

fn file(data: &Path, date: &str) -> std::path::PathBuf {
    data.join(format!("Public/ServiceTags_Public_{date}.json.gz"))
}

/// Ranges of `a` outside `b` (both merged and sorted).
fn minus(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for &(lo, hi) in a {
        let mut start = lo;
        let mut open = true;
        for &(blo, bhi) in b.iter().filter(|(blo, bhi)| *bhi >= lo && *blo <= hi) {
            if blo > start {
                out.push((start, blo - 1));
            }
            if bhi >= hi {
                open = false;
                break;
            }
            start = bhi + 1;
        }
        if open {
            out.push((start, hi));
        }
    }
    out
}

fn bounds(cidr: &str) -> (u128, u128) {
    let v6 = cidr.contains(':');
    common::merged([&cidr.to_string()], v6)[0]
}

/// The expected `allowed` (or `disallowed`) list: CIDR → (addresses, tags holding it on `side`).
fn expected(
    side: &common::Tags,
    other: &common::Tags,
    selected: &dyn Fn(&str) -> bool,
    v6: bool,
) -> Vec<(String, String, Vec<String>)> {
    let pick = |tags: &common::Tags| -> Vec<String> {
        tags.iter()
            .filter(|(n, _)| selected(n))
            .flat_map(|(_, (_, set))| set.iter().cloned())
            .collect()
    };
    let diff = minus(
        &common::merged(&pick(side), v6),
        &common::merged(&pick(other), v6),
    );
    let bits = if v6 { 128 } else { 32 };
    let mut cover: Vec<(u128, String)> = common::minimal_cover(&diff, bits)
        .into_iter()
        .map(|c| (bounds(&c).0, c))
        .collect();
    cover.sort();
    cover
        .into_iter()
        .map(|(_, cidr)| {
            let (lo, hi) = bounds(&cidr);
            let tags: Vec<String> = side
                .iter()
                .filter(|(n, _)| selected(n))
                .filter(|(_, (_, set))| {
                    set.iter().filter(|p| p.contains(':') == v6).any(|p| {
                        let (plo, phi) = bounds(p);
                        plo <= hi && lo <= phi
                    })
                })
                .map(|(n, _)| n.clone())
                .collect();
            let size = hi - lo + 1;
            (cidr, size.to_string(), tags)
        })
        .collect()
}

fn listed(v: &Value) -> Vec<(String, String, Vec<String>)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let tags = r["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (
                r["cidr"].as_str().unwrap().to_string(),
                r["addresses"].as_str().unwrap().to_string(),
                tags,
            )
        })
        .collect()
}

fn total(list: &[(String, String, Vec<String>)]) -> String {
    list.iter()
        .map(|(_, n, _)| n.parse::<u128>().unwrap())
        .sum::<u128>()
        .to_string()
}

fn check_family(
    got: &Value,
    before: &common::Tags,
    after: &common::Tags,
    selected: &dyn Fn(&str) -> bool,
    v6: bool,
    what: &str,
) {
    let allowed = expected(after, before, selected, v6);
    let disallowed = expected(before, after, selected, v6);
    assert_eq!(listed(&got["allowed"]), allowed, "{what}: allowed");
    assert_eq!(listed(&got["disallowed"]), disallowed, "{what}: disallowed");
    assert_eq!(got["allowed_addresses"], total(&allowed).as_str(), "{what}");
    assert_eq!(
        got["disallowed_addresses"],
        total(&disallowed).as_str(),
        "{what}"
    );
    // The entry mechanics stay beside them.
    assert!(
        got["added"].is_array() && got["removed"].is_array(),
        "{what}"
    );
}

/// A ruleset checked: its name, which tags it selects, its families (IPv6 or not).
type Checked<'a> = (&'a str, &'a dyn Fn(&str) -> bool, &'a [bool]);

#[test]
fn address_changes_equal_an_independent_set_difference_on_real_weeks() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let rulesets: [Checked; 2] = [
        (
            "entra-connector",
            &|n: &str| n == "AzureCloud" || n == "AzureActiveDirectory",
            &[false, true],
        ),
        ("storage", &|n: &str| n.starts_with("Storage."), &[false]),
    ];
    let mut split_seen = false;
    for (from, to) in WEEKS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tagwall.toml"), SETTINGS).unwrap();
        let tagwall = || common::tagwall(dir.path());
        tagwall()
            .arg("import")
            .arg(file(&data, from))
            .assert()
            .success();
        tagwall().arg("emit").assert().success();
        let source = dir.path().join("source/Public");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::copy(
            file(&data, to),
            source.join(format!("ServiceTags_Public_{to}.json.gz")),
        )
        .unwrap();
        let (code, sync) = common::run_text(tagwall().args(["sync", "--source", "source"]));
        assert!(code == 0 || code == 3, "{sync}");
        let summary: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/last-run.json")).unwrap())
                .unwrap();
        let before = common::raw_tags(&file(&data, from)).1;
        let after = common::raw_tags(&file(&data, to)).1;
        for (name, selected, families) in rulesets {
            let run = summary["rulesets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["ruleset"] == name)
                .unwrap();
            let diff: Value = serde_json::from_str(&common::stdout(tagwall().args([
                "diff",
                "--ruleset",
                name,
                "--format",
                "json",
            ])))
            .unwrap();
            for &v6 in families {
                let key = if v6 { "ipv6" } else { "ipv4" };
                let what = format!("{name} {from}->{to} {key}");
                check_family(&run["changes"][key], &before, &after, selected, v6, &what);
                check_family(&diff["families"][key], &before, &after, selected, v6, &what);
            }
            // The sync line leads with the addresses, then the entries.
            let line = sync
                .lines()
                .find(|l| l.starts_with("ruleset") && l.contains(&format!(" {name} ")))
                .unwrap_or_else(|| panic!("{name} in {sync}"));
            // A list that does not change says nothing of changes.
            let changed = run["changes"]["ipv4"]["allowed_addresses"] != "0"
                || run["changes"]["ipv4"]["disallowed_addresses"] != "0";
            if changed {
                let addresses = line.find("IPv4: ").unwrap_or_else(|| panic!("{line}"));
                let entries = line.find("firewall entries").unwrap();
                assert!(addresses < entries, "{line}");
            }
        }
        if from == "20250714" {
            // The split week: 20.150.0.0/15 went and came back in pieces; the entries moved
            // far more addresses than the firewall's change in addresses.
            let v4 = &summary["rulesets"][0]["changes"]["ipv4"];
            let moved: u128 = v4["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["addresses"].as_u64().unwrap() as u128)
                .sum();
            let lost: u128 = v4["disallowed_addresses"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                moved > 10 * lost,
                "entries moved {moved}, addresses lost {lost}"
            );
            split_seen = true;
            let md = std::fs::read_to_string(dir.path().join("out/last-run.md")).unwrap();
            let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} in {md}"));
            assert!(
                at("**IPv4**: newly allowed") < at("IPv4 firewall entries"),
                "{md}"
            );
        }
    }
    assert!(split_seen);
}

#[test]
fn a_ruleset_diff_in_text_and_markdown_leads_with_addresses() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tagwall.toml"), SETTINGS).unwrap();
    let tagwall = || common::tagwall(dir.path());
    tagwall()
        .arg("import")
        .arg(file(&data, "20250714"))
        .arg(file(&data, "20250721"))
        .assert()
        .success();
    let text = common::stdout(tagwall().args(["diff", "--ruleset", "storage"]));
    let first: Vec<&str> = text.lines().take(2).collect();
    assert!(first[0].contains(": IPv4: newly allowed"), "{text}");
    assert!(first[1].starts_with("IPv4: newly allowed"), "{text}");
    let md =
        common::stdout(tagwall().args(["diff", "--ruleset", "storage", "--format", "markdown"]));
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} in {md}"));
    assert!(at("## Addresses") < at("## IPv4 firewall entries"), "{md}");
    let html = common::stdout(tagwall().args(["diff", "--ruleset", "storage", "--format", "html"]));
    assert!(html.contains("<h2>Addresses</h2>"), "{html}");
}
