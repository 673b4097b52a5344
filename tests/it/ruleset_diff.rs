//! `tagwall diff --ruleset` on real consecutive weeks: the entries added and removed equal the
//! difference of the lists `emit` writes at each snapshot (exact and budgeted rulesets), and for
//! an exact ruleset the difference of an independent minimal CIDR cover of the selection.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::job::Job;
use common::shared_data;
use serde_json::Value;

const RULESETS: &str = r#"
[[ruleset]]
name = "entra"
tags = ["AzureCloud", "AzureActiveDirectory"]
formats = ["txt"]

[[ruleset]]
name = "eu"
tags = ["Storage.*Europe"]
families = ["ipv4"]
max_entries = 30
formats = ["txt"]
"#;

/// The CIDR lines of a ruleset's `.txt` file.
fn listed(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn cidrs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["cidr"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ruleset_diffs_equal_the_emitted_lists_difference() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, RULESETS);
    let weeks = ["20250609", "20250616", "20250721", "20250728"];
    for w in weeks {
        let (code, text) = job.run(&[
            "import",
            shared
                .join(format!("Public/ServiceTags_Public_{w}.json.gz"))
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(code, 0, "{text}");
    }
    let dashed = |d: &str| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]);
    for pair in [
        ("20250609", "20250616"),
        ("20250721", "20250728"),
        ("20250609", "20250728"),
    ] {
        let (from, to) = (dashed(pair.0), dashed(pair.1));
        for (at, dir) in [(&from, "a"), (&to, "b")] {
            let (code, text) = job.run(&["emit", "--at", at, "--out", dir]);
            assert_eq!(code, 0, "{text}");
        }
        for (ruleset, families) in [("entra", &["ipv4", "ipv6"][..]), ("eu", &["ipv4"][..])] {
            let (code, text) =
                job.run(&["diff", "--ruleset", ruleset, &from, &to, "--format", "json"]);
            assert_eq!(code, 0, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["schema"], "tagwall.ruleset-diff/1");
            assert_eq!(
                (&v["from"]["file_date"], &v["to"]["file_date"]),
                (&from.clone().into(), &to.clone().into())
            );
            for family in families {
                let file = format!("{ruleset}/{ruleset}.{family}.txt");
                let a = listed(&job.path().join("a").join(&file));
                let b = listed(&job.path().join("b").join(&file));
                let want_added: BTreeSet<String> = b.difference(&a).cloned().collect();
                let want_removed: BTreeSet<String> = a.difference(&b).cloned().collect();
                let f = &v["families"][family];
                assert_eq!(
                    cidrs(&f["added"]),
                    want_added,
                    "{ruleset} {family} {from}→{to} added"
                );
                assert_eq!(
                    cidrs(&f["removed"]),
                    want_removed,
                    "{ruleset} {family} {from}→{to} removed"
                );
                for c in f["added"].as_array().unwrap() {
                    assert!(!c["tags"].as_array().unwrap().is_empty(), "{c}");
                }
            }
            if ruleset == "entra" {
                // An independent cover of the selection at each side.
                for (date, week) in [(&from, pair.0), (&to, pair.1)] {
                    let raw = common::raw_tags(
                        &shared.join(format!("Public/ServiceTags_Public_{week}.json.gz")),
                    )
                    .1;
                    let prefixes: Vec<&String> = ["AzureCloud", "AzureActiveDirectory"]
                        .iter()
                        .flat_map(|t| raw[*t].1.iter())
                        .collect();
                    let cover4 =
                        common::minimal_cover(&common::merged(prefixes.iter().copied(), false), 32);
                    let dir = if *date == from { "a" } else { "b" };
                    assert_eq!(
                        listed(&job.path().join(dir).join("entra/entra.ipv4.txt")),
                        cover4,
                        "{date}"
                    );
                    let cover6 =
                        common::minimal_cover(&common::merged(prefixes.iter().copied(), true), 128);
                    assert_eq!(
                        listed(&job.path().join(dir).join("entra/entra.ipv6.txt")),
                        cover6,
                        "{date}"
                    );
                }
            }
        }
    }
    // The other formats say the same, and --exit-code reports a change.
    let (code, text) = job.run(&["diff", "--ruleset", "entra", "2025-07-21", "2025-07-28"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("ruleset entra: Public 2025-07-21"),
        "{text}"
    );
    assert!(text.contains("  + ") && text.contains("  - "), "{text}");
    for format in ["markdown", "html"] {
        let (code, text) = job.run(&[
            "diff",
            "--ruleset",
            "entra",
            "2025-07-21",
            "2025-07-28",
            "--format",
            format,
        ]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("entra") && text.contains("AzureCloud"),
            "{format}"
        );
    }
    let (code, _) = job.run(&[
        "diff",
        "--ruleset",
        "entra",
        "2025-07-21",
        "2025-07-28",
        "--exit-code",
    ]);
    assert_eq!(code, 1);
    let (code, text) = job.run(&["diff", "--ruleset", "nope"]);
    assert_eq!(code, 1);
    assert!(text.contains("nope"), "{text}");
}

/// `sync` reports the same changes per ruleset in `last-run.json`, on its summary lines and in
/// `last-run.md`.
#[test]
fn sync_reports_each_rulesets_changes_as_diff_does() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, RULESETS);
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("ruleset  entra")
            && l.contains("; IPv4: newly allowed ")
            && l.contains("; firewall entries +")),
        "{text}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    let (code, diff) = job.run(&[
        "diff",
        "--ruleset",
        "entra",
        "2025-07-21",
        "2025-07-28",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{diff}");
    let diff: Value = serde_json::from_str(&diff).unwrap();
    let entra = summary["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleset"] == "entra")
        .unwrap();
    assert_eq!(entra["changes"], diff["families"]);
    assert!(!entra["changes"]["ipv4"]["added"]
        .as_array()
        .unwrap()
        .is_empty());
    let md = std::fs::read_to_string(job.out().join("last-run.md")).unwrap();
    assert!(md.contains("Changes: IPv4: newly allowed"), "{md}");
}
