//! The grace period for removals (`keep_removed_days`) on four real consecutive weeks: the list
//! `emit` writes at each week equals an independent computation from the raw files (the week's
//! prefixes plus every prefix removed less than N days before, counted from the file date of
//! the first week without it), `diff --ruleset` shows the kept ones as retiring until that day
//! instead of removed, and `sync` publishes and reports the same.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use common::job::Job;
use common::shared_data;
use serde_json::Value;

const WEEKS: [&str; 4] = ["20250707", "20250714", "20250721", "20250728"];

const RULESETS: &str = r#"
[[ruleset]]
name = "now"
tags = ["AzureCloud"]
aggregate = false
formats = ["txt"]

[[ruleset]]
name = "week"
tags = ["AzureCloud"]
aggregate = false
keep_removed_days = 7
formats = ["txt"]

[[ruleset]]
name = "fortnight"
tags = ["AzureCloud"]
aggregate = false
keep_removed_days = 14
formats = ["txt"]

[[ruleset]]
name = "merged"
tags = ["AzureCloud"]
keep_removed_days = 14
formats = ["txt"]
"#;

fn date(week: &str) -> NaiveDate {
    NaiveDate::parse_from_str(week, "%Y%m%d").unwrap()
}

fn dashed(week: &str) -> String {
    date(week).to_string()
}

/// Every CIDR line of a ruleset's lists (both families).
fn listed(dir: &std::path::Path, name: &str) -> BTreeSet<String> {
    ["ipv4", "ipv6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(format!("{name}/{name}.{f}.txt")))
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What a ruleset with `days` of grace lists at week `k`, from the raw files alone: the week's
/// prefixes, and each prefix last present at week j < k whose removal (week j + 1) is less than
/// `days` days before week k — with the day it leaves.
fn expected(
    weeks: &[BTreeSet<String>],
    k: usize,
    days: u64,
) -> (BTreeSet<String>, BTreeMap<String, NaiveDate>) {
    let mut kept = BTreeMap::new();
    for j in 0..k {
        for p in weeks[j].difference(&weeks[k]) {
            let removed_on = date(WEEKS[j + 1]);
            let until = removed_on.checked_add_days(Days::new(days)).unwrap();
            // A later week holding it again decides (the last presence).
            if until > date(WEEKS[k]) {
                kept.insert(p.clone(), until);
            } else {
                kept.remove(p);
            }
        }
    }
    let mut list = weeks[k].clone();
    list.extend(kept.keys().cloned());
    (list, kept)
}

#[test]
fn removed_prefixes_stay_until_the_grace_period_ends() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, RULESETS);
    let weeks: Vec<BTreeSet<String>> = WEEKS
        .iter()
        .map(|w| {
            let path = shared.join(format!("Public/ServiceTags_Public_{w}.json.gz"));
            common::raw_tags(&path).1["AzureCloud"].1.clone()
        })
        .collect();
    for (j, w) in WEEKS.iter().enumerate().skip(1) {
        assert!(
            weeks[j - 1].difference(&weeks[j]).next().is_some(),
            "week {w} removes nothing from AzureCloud: pick other weeks"
        );
    }
    for w in WEEKS {
        let path = shared.join(format!("Public/ServiceTags_Public_{w}.json.gz"));
        let (code, text) = job.run(&["import", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{text}");
    }
    for (k, week) in WEEKS.iter().enumerate() {
        let out = job.path().join(format!("out-{week}"));
        let (code, text) = job.run(&[
            "emit",
            "--at",
            &dashed(week),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(listed(&out, "now"), weeks[k], "no grace at {week}");
        for (name, days) in [("week", 7), ("fortnight", 14)] {
            let (want, _) = expected(&weeks, k, days);
            assert_eq!(listed(&out, name), want, "{name} at {week}");
        }
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("fortnight/manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["ruleset"]["keep_removed_days"], 14);
    }
    // A week of grace keeps the last week's removals only; a fortnight keeps two weeks' worth.
    let (week_list, _) = expected(&weeks, 3, 7);
    let (fortnight_list, _) = expected(&weeks, 3, 14);
    assert!(week_list.len() > weeks[3].len() && fortnight_list.len() > week_list.len());

    // diff --ruleset: the kept prefixes are retiring (with their day), not removed.
    let (from, to) = (dashed(WEEKS[2]), dashed(WEEKS[3]));
    let (code, text) = job.run(&[
        "diff",
        "--ruleset",
        "fortnight",
        &from,
        &to,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let (_, kept) = expected(&weeks, 3, 14);
    let mut retiring = BTreeMap::new();
    let mut removed = BTreeSet::new();
    for family in ["ipv4", "ipv6"] {
        for c in v["families"][family]["retiring"].as_array().unwrap() {
            assert_eq!(c["tags"], serde_json::json!(["AzureCloud"]), "{c}");
            retiring.insert(
                c["cidr"].as_str().unwrap().to_string(),
                NaiveDate::parse_from_str(c["until"].as_str().unwrap(), "%Y-%m-%d").unwrap(),
            );
        }
        for c in v["families"][family]["removed"].as_array().unwrap() {
            removed.insert(c["cidr"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(retiring, kept);
    // Removed: what left the list, i.e. what the week-before-last's grace no longer covers.
    let (before, _) = expected(&weeks, 2, 14);
    let want_removed: BTreeSet<String> = before.difference(&fortnight_list).cloned().collect();
    assert_eq!(removed, want_removed);
    let (code, text) = job.run(&["diff", "--ruleset", "fortnight", &from, &to]);
    assert_eq!(code, 0, "{text}");
    let until = kept.values().next().unwrap();
    assert!(
        text.contains(&format!("retiring until {until}")) && text.contains("retiring"),
        "{text}"
    );

    // An aggregated ruleset keeps the same addresses: its entries cover exactly the list.
    let out = job.path().join(format!("out-{}", WEEKS[3]));
    let merged: Vec<String> = listed(&out, "merged").into_iter().collect();
    let fortnight: Vec<String> = fortnight_list.into_iter().collect();
    for v6 in [false, true] {
        assert_eq!(
            common::merged(merged.iter(), v6),
            common::merged(fortnight.iter(), v6),
            "merged ruleset, ipv6 = {v6}"
        );
    }
}

#[test]
fn sync_publishes_and_reports_retiring_entries() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(
        None,
        r#"
[[ruleset]]
name = "fortnight"
tags = ["AzureCloud"]
aggregate = false
keep_removed_days = 14
formats = ["txt"]
"#,
    );
    job.add_week(&shared, WEEKS[2]);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    job.add_week(&shared, WEEKS[3]);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("retiring"),
        "the summary line counts them: {text}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(job.out().join("last-run.json")).unwrap())
            .unwrap();
    let ruleset = summary["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleset"] == "fortnight")
        .unwrap()
        .clone();
    let retiring: usize = ["ipv4", "ipv6"]
        .iter()
        .map(|f| ruleset["changes"][f]["retiring"].as_array().unwrap().len())
        .sum();
    let prefixes = |w: &str| {
        common::raw_tags(&shared.join(format!("Public/ServiceTags_Public_{w}.json.gz"))).1
            ["AzureCloud"]
            .1
            .clone()
    };
    let gone = prefixes(WEEKS[2]).difference(&prefixes(WEEKS[3])).count();
    assert_eq!(retiring, gone, "{ruleset}");
    let md = std::fs::read_to_string(job.out().join("last-run.md")).unwrap();
    assert!(md.contains("retiring until"), "{md}");
    let report = std::fs::read_to_string(
        job.out()
            .join(format!("reports/Public/{}.md", dashed(WEEKS[3]))),
    )
    .unwrap();
    assert!(report.contains("retiring until"), "{report}");
}
