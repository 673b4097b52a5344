//! An approval sticks: once a withheld change is approved, later runs on the same week are
//! `unchanged` with exit 0 — the guard compares with what was approved and published. Two real
//! cases on the real Public week of 2025-07-28 edited into a next week: AzureCloud gains
//! `44.0.0.0/7` (too wide), and, with `keep_removed_days = 14`, AzureActiveDirectory vanishes.

use crate::common;

use common::job::{prefixes_of, Job};
use common::shared_data;
use serde_json::Value;

const SETTINGS: &str = r#"
[output]
validate = "never"

[[ruleset]]
name = "entra"
tags = ["AzureCloud", "AzureActiveDirectory"]
formats = ["txt", "nft"]
"#;

fn status(job: &Job) -> Value {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    summary["rulesets"][0].clone()
}

/// Syncs the first week, then the edited one (withheld), approves, and syncs twice more.
fn approved_then_synced(job: &Job) {
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "the edited week is withheld: {text}");
    assert_eq!(status(job)["status"], "withheld");
    let (code, text) = job.run(&["approve", "entra", "--by", "fw-team"]);
    assert_eq!(code, 0, "{text}");
    let published = std::fs::read(job.out().join("entra/entra.txt")).unwrap();
    for run in ["first", "second"] {
        let (code, text) = job.sync(&[]);
        assert_eq!(code, 0, "{run} run after the approval: {text}");
        let s = status(job);
        assert_eq!(s["status"], "unchanged", "{run}: {s}");
        assert!(s["reasons"].as_array().unwrap().is_empty(), "{run}: {s}");
        let (code, text) = job.sync(&["--dry-run"]);
        assert_eq!(code, 0, "{run} dry run: {text}");
    }
    assert_eq!(
        std::fs::read(job.out().join("entra/entra.txt")).unwrap(),
        published
    );
}

fn first_week(shared: &std::path::Path, extra: &str) -> Job {
    // `extra` goes into the ruleset.
    let job = Job::new(None, &format!("{SETTINGS}{extra}\n"));
    job.add_week(shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    job
}

#[test]
fn an_approved_too_wide_entry_is_not_withheld_again() {
    let Some(shared) = shared_data() else { return };
    let job = first_week(&shared, "");
    job.add_edited_week(&shared, "20250728", "20250804", |doc| {
        prefixes_of(doc, "AzureCloud").push("44.0.0.0/7".into());
    });
    approved_then_synced(&job);
}

#[test]
fn an_approved_vanished_tag_in_its_grace_period_is_not_withheld_again() {
    let Some(shared) = shared_data() else { return };
    let job = first_week(&shared, "keep_removed_days = 14");
    job.add_edited_week(&shared, "20250728", "20250804", |doc| {
        doc["values"]
            .as_array_mut()
            .unwrap()
            .retain(|v| v["name"] != "AzureActiveDirectory");
    });
    approved_then_synced(&job);
}
