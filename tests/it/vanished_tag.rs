//! A selected tag that vanishes from Microsoft's file is withheld (exit 3) with the tag, the
//! file and when it was last seen — whether it was the ruleset's only tag or one of several —
//! never a settings error; `sync --dry-run` agrees; `approve` publishes what the selection gives
//! now (an empty list only with `--allow-empty`). Real AzureGovernment files:
//! `AzureCloud.usgoviowa` is in 2026-03-23 and gone in 2026-05-04.

use crate::common;

use std::path::Path;

use serde_json::Value;

const BEFORE: &str = "ServiceTags_AzureGovernment_20260323.json.gz";
const AFTER: &str = "ServiceTags_AzureGovernment_20260504.json.gz";
const REASON: &str =
    "the selected tag AzureCloud.usgoviowa is not in AzureGovernment 2026-05-04 (last seen 2026-03-23)";

const SETTINGS: &str = r#"
[output]
dir = "out"
validate = "never"

[[ruleset]]
name = "iowa"
cloud = "AzureGovernment"
tags = ["AzureCloud.usgoviowa"]
formats = ["txt"]

[[ruleset]]
name = "iowa-virginia"
cloud = "AzureGovernment"
tags = ["AzureCloud.usgoviowa", "AzureCloud.usgovvirginia"]
formats = ["txt"]
"#;

fn status(dir: &Path, name: &str) -> Value {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/last-run.json")).unwrap()).unwrap();
    summary["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleset"] == name)
        .unwrap()
        .clone()
}

fn lines(dir: &Path, file: &str) -> usize {
    std::fs::read_to_string(dir.join("out").join(file))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_vanished_tag_is_withheld_with_when_it_was_last_seen() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let gov = data.join("AzureGovernment");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("tagwall.toml"), SETTINGS).unwrap();
    let tagwall = || common::tagwall(root);
    tagwall()
        .arg("import")
        .arg(gov.join(BEFORE))
        .assert()
        .success();
    tagwall().arg("emit").assert().success();
    assert!(lines(root, "iowa/iowa.txt") > 0);
    let source = root.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(gov.join(AFTER), source.join(AFTER)).unwrap();
    let sync = |extra: &[&str]| {
        let mut cmd = tagwall();
        cmd.args(["sync", "--cloud", "AzureGovernment", "--source", "source"])
            .args(extra);
        common::run_text(&mut cmd)
    };

    // The dry run says what the run will do.
    let (code, dry) = sync(&["--dry-run"]);
    assert_eq!(code, 3, "{dry}");
    let why = format!("         why: {REASON}");
    assert_eq!(dry.lines().filter(|l| *l == why).count(), 2, "{dry}");
    assert!(!dry.contains("loosen the filters"), "{dry}");

    let (code, text) = sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(!text.contains("loosen the filters"), "{text}");
    for name in ["iowa", "iowa-virginia"] {
        let run = status(root, name);
        assert_eq!(run["status"], "withheld", "{run}");
        assert_eq!(run["reasons"][0], REASON, "{run}");
    }
    // The published list stays until someone decides.
    assert!(lines(root, "iowa/iowa.txt") > 0);

    // One of several: approve publishes the tags that are still there.
    tagwall()
        .args(["approve", "iowa-virginia", "--comment", "Iowa retired"])
        .assert()
        .success();
    let virginia = lines(root, "iowa-virginia/iowa-virginia.txt");
    assert!(virginia > 0);

    // The only tag: an empty list needs --allow-empty.
    let (code, text) = common::run_text(tagwall().args(["approve", "iowa"]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--allow-empty"), "{text}");
    assert!(lines(root, "iowa/iowa.txt") > 0, "nothing published");
    tagwall()
        .args([
            "approve",
            "iowa",
            "--allow-empty",
            "--comment",
            "Iowa retired",
        ])
        .assert()
        .success();
    assert_eq!(lines(root, "iowa/iowa.txt"), 0);

    // Later runs on the same file are settled.
    let (code, text) = sync(&[]);
    assert_eq!(code, 0, "{text}");
    for name in ["iowa", "iowa-virginia"] {
        assert_eq!(status(root, name)["status"], "unchanged", "{name}: {text}");
    }
    assert_eq!(lines(root, "iowa-virginia/iowa-virginia.txt"), virginia);
}
