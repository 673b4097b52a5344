//! `tagwall diff --format json` on real weeks, checked against a computation written here from
//! the raw files alone (serde_json values, string sets and a separate range sweep).

use crate::common;

use std::collections::BTreeSet;

use common::{merged_tags as merged, raw_tags};
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// Addresses in `a` not in `b`, by clipping each range of `a` against every range of `b`.
fn minus(a: &[(u128, u128)], b: &[(u128, u128)]) -> u128 {
    let mut total = 0u128;
    for &(s, e) in a {
        let mut covered = 0u128;
        for &(bs, be) in b {
            let (lo, hi) = (s.max(bs), e.min(be));
            if lo <= hi {
                covered += hi - lo + 1;
            }
        }
        total += (e - s + 1) - covered;
    }
    total
}

fn expected(older: &Path, newer: &Path) -> Value {
    let ((_, a), (_, b)) = (raw_tags(older), raw_tags(newer));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let (mut added, mut removed, mut changed, mut p_add, mut p_rem) = (0, 0, 0, 0, 0);
    for name in names {
        match (a.get(name), b.get(name)) {
            (None, Some((_, set))) => {
                added += 1;
                p_add += set.len();
            }
            (Some((_, set)), None) => {
                removed += 1;
                p_rem += set.len();
            }
            (Some((pa, sa)), Some((pb, sb))) => {
                let (plus, less) = (sb.difference(sa).count(), sa.difference(sb).count());
                if pa != pb || plus + less > 0 {
                    changed += 1;
                }
                p_add += plus;
                p_rem += less;
            }
            (None, None) => unreachable!(),
        }
    }
    let num = |n: u128| {
        if n <= 1 << 53 {
            serde_json::json!(n as u64)
        } else {
            serde_json::json!(n.to_string())
        }
    };
    let (a4, b4, a6, b6) = (
        merged(&a, false),
        merged(&b, false),
        merged(&a, true),
        merged(&b, true),
    );
    serde_json::json!({
        "tags_added": added, "tags_removed": removed, "tags_changed": changed,
        "prefixes_added": p_add, "prefixes_removed": p_rem,
        "ipv4_addresses_added": num(minus(&b4, &a4)), "ipv4_addresses_removed": num(minus(&a4, &b4)),
        "ipv6_addresses_added": num(minus(&b6, &a6)), "ipv6_addresses_removed": num(minus(&a6, &b6)),
    })
}

fn tagwall_diff(dir: &Path, older: &Path, newer: &Path, cloud: &str) -> Value {
    let db = format!("sqlite://{}", dir.join("t.db").display());
    for f in [older, newer] {
        Command::cargo_bin("tagwall")
            .unwrap()
            .args(["--db", &db, "import"])
            .arg(f)
            .assert()
            .success();
    }
    let from = format!(
        "{}",
        tagwall::store::import::file_date_from_name(older).unwrap()
    );
    let to = format!(
        "{}",
        tagwall::store::import::file_date_from_name(newer).unwrap()
    );
    let out = Command::cargo_bin("tagwall")
        .unwrap()
        .args([
            "--db", &db, "diff", "--cloud", cloud, &from, &to, "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn real_week_pairs_match_an_independent_computation() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let pairs = [
        ("Public", "20250721", "20250728"),          // consecutive weeks
        ("Public", "20240701", "20250707"),          // a year apart
        ("Public", "20250217", "20250303"),          // both top-level changeNumber 346
        ("AzureGovernment", "20260323", "20260504"), // every *.USGovIowa tag disappears
        ("China", "20260706", "20260713"),
    ];
    for (cloud, d1, d2) in pairs {
        let dir = tempfile::tempdir().unwrap();
        let older = root
            .join(cloud)
            .join(format!("ServiceTags_{cloud}_{d1}.json.gz"));
        let newer = root
            .join(cloud)
            .join(format!("ServiceTags_{cloud}_{d2}.json.gz"));
        let got = tagwall_diff(dir.path(), &older, &newer, cloud);
        assert_eq!(
            got["summary"],
            expected(&older, &newer),
            "{cloud} {d1} -> {d2}"
        );
        assert_eq!(got["schema"], "tagwall.diff/1");
        if d1 == "20250217" {
            let kinds: Vec<&str> = got["anomalies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["kind"].as_str().unwrap())
                .collect();
            assert!(
                kinds.contains(&"content_changed_number_unchanged"),
                "{kinds:?}"
            );
        }
        if cloud == "AzureGovernment" {
            let iowa_removed = got["tags"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| {
                    t["name"].as_str().unwrap().ends_with(".USGovIowa") && t["status"] == "removed"
                })
                .count();
            assert!(iowa_removed > 0);
            let (_, old) = raw_tags(&older);
            let iowa_before = old.keys().filter(|n| n.ends_with(".USGovIowa")).count();
            assert_eq!(
                iowa_removed, iowa_before,
                "every *.USGovIowa tag is reported removed"
            );
        }
    }
}

#[test]
fn tag_history_matches_the_raw_files_week_by_week() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let public = root.join("Public");
    Command::cargo_bin("tagwall")
        .unwrap()
        .args(["--db", &db, "import"])
        .arg(&public)
        .assert()
        .success();
    let files = tagwall::store::import::collect_files(&[public]).unwrap();
    for tag in ["AzureCloud.westeurope", "Storage", "AzureActiveDirectory"] {
        let out = Command::cargo_bin("tagwall")
            .unwrap()
            .args(["--db", &db, "history", tag, "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let entries = doc["entries"].as_array().unwrap();
        assert_eq!(entries.len(), files.len());
        let mut before: BTreeSet<String> = BTreeSet::new();
        for (entry, file) in entries.iter().zip(&files) {
            let (_, tags) = raw_tags(file);
            let now: BTreeSet<String> = tags.get(tag).map(|(_, s)| s.clone()).unwrap_or_default();
            let list = |key: &str| -> BTreeSet<String> {
                entry[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect()
            };
            assert_eq!(
                entry["present"],
                tags.contains_key(tag),
                "{tag} {}",
                file.display()
            );
            assert_eq!(
                list("prefixes_added"),
                now.difference(&before).cloned().collect(),
                "{tag} {}",
                file.display()
            );
            assert_eq!(
                list("prefixes_removed"),
                before.difference(&now).cloned().collect(),
                "{tag} {}",
                file.display()
            );
            let v4 = now.iter().filter(|p| !p.contains(':')).count() as i64;
            assert_eq!(entry["ipv4_prefixes"], v4);
            assert_eq!(entry["ipv6_prefixes"], now.len() as i64 - v4);
            before = now;
        }
    }
}
