//! The guard against what is really published, on real files: a rebuilt store (so a snapshot id
//! names another week), a deleted manifest, a flood of additions, a tag gone from Microsoft's
//! file — and the ways out of each withheld state (`approve`, `--force`), with `--dry-run`
//! giving the real run's exit code.

use crate::common;

use common::job::{consistent, prefixes_of, Job};
use common::shared_data;

const RULESETS: &str = r#"
[[ruleset]]
name = "entra"
tags = ["AzureCloud"]
formats = ["nft", "txt"]

[[ruleset]]
name = "frontdoor"
tags = ["AzureFrontDoor.Frontend", "AzureFrontDoor.Backend"]
formats = ["ipset", "csv"]
"#;

fn job() -> Job {
    Job::new(None, RULESETS)
}

fn snapshots_of(job: &Job) -> usize {
    let (code, text) = job.run(&["snapshots", "--cloud", "Public"]);
    assert_eq!(code, 0, "{text}");
    text.lines().filter(|l| l.contains("Public")).count()
}

#[test]
fn a_rebuilt_store_is_compared_with_the_published_files() {
    let Some(shared) = shared_data() else { return };
    let job = job();
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    // The store is rebuilt; out/ stays. The new store's first snapshot gets the id the
    // published manifest names: a week with AzureCloud cut to one prefix.
    for f in ["t.db", "t.db-wal", "t.db-shm"] {
        let _ = std::fs::remove_file(job.path().join(f));
    }
    job.clear_mirror();
    job.add_edited_week(&shared, "20250728", "20250804", |doc| {
        prefixes_of(doc, "AzureCloud").truncate(1);
    });
    // A dry run reads the new file and says what the real run will do.
    let (code, text) = job.sync(&["--dry-run"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("would-withhold"), "{text}");
    assert!(text.contains("would import: new"), "{text}");
    assert_eq!(snapshots_of(&job), 0, "a dry run stores nothing");
    assert!(!job.out().join(".tagwall/withheld-entra.json").exists());

    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("ruleset  entra            withheld"),
        "{text}"
    );
    assert!(text.contains("why: IPv4 would lose"), "{text}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job.out().join("entra/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["snapshot"]["id"], 1,
        "the id names another week now"
    );
    assert_eq!(consistent(&job.out().join("entra")).unwrap(), "2025-07-28");
}

#[test]
fn a_deleted_manifest_withholds_until_approved() {
    let Some(shared) = shared_data() else { return };
    let job = job();
    job.add_week(&shared, "20250721");
    assert_eq!(job.sync(&[]).0, 0);
    std::fs::remove_file(job.out().join("entra/manifest.json")).unwrap();
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("why: the published directory cannot be compared with")
            && text.contains("manifest.json cannot be read"),
        "{text}"
    );
    // --show: what approving would write, and nothing changes.
    let (code, text) = job.run(&["approve", "entra", "--show"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("damaged"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("  + ")), "{text}");
    assert!(!job.out().join("entra/manifest.json").exists());
    let (code, text) = job.run(&[
        "approve",
        "entra",
        "--by",
        "alice",
        "--comment",
        "rebuilt by hand",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("approved entra: published Public 2025-07-28"),
        "{text}"
    );
    assert_eq!(consistent(&job.out().join("entra")).unwrap(), "2025-07-28");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0);
    let entra = summary["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleset"] == "entra")
        .unwrap();
    assert_eq!(
        (&entra["status"], &entra["approved_by"]),
        (&"published".into(), &"alice".into())
    );
    let metrics = std::fs::read_to_string(job.out().join("metrics.prom")).unwrap();
    assert!(
        metrics.contains("tagwall_ruleset_withheld{ruleset=\"entra\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tagwall_last_run_exit_code 0"),
        "{metrics}"
    );
    let (code, text) = job.run(&["approvals"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("entra  Public 2025-07-28 (id:2)  by alice: rebuilt by hand")
            && text.contains("why withheld: the published directory cannot be compared with"),
        "{text}"
    );
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn additions_and_too_wide_entries_are_withheld() {
    let Some(shared) = shared_data() else { return };
    let job = job();
    job.add_week(&shared, "20250728");
    assert_eq!(job.sync(&[]).0, 0);
    job.add_edited_week(&shared, "20250728", "20250804", |doc| {
        let prefixes = prefixes_of(doc, "AzureCloud");
        prefixes.push("0.0.0.0/0".into());
        prefixes.push("::/0".into());
    });
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    for why in [
        "why: IPv4 would gain",
        "why: IPv6 would gain",
        "why: the entry 0.0.0.0/0 is wider than /8",
        "why: the entry ::/0 is wider than /16",
    ] {
        assert!(text.contains(why), "{why}: {text}");
    }
    assert_eq!(consistent(&job.out().join("entra")).unwrap(), "2025-07-28");
    // The week's report opens with what changes in each ruleset, and the withheld banner.
    let report = job.out().join("reports/Public/2025-08-04");
    let md = std::fs::read_to_string(report.with_extension("md")).unwrap();
    assert!(
        md.starts_with("# Public service tags: 2025-07-28 → 2025-08-04\n\n## Your rulesets"),
        "{md}"
    );
    assert!(
        md.contains("### `entra`: IPv4: newly allowed ")
            && md.contains("firewall entries +2 / -")
            && md.contains("**Withheld**")
            && md.contains("    tagwall approve entra --show\n"),
        "{md}"
    );
    // The reason before any list; the change in addresses before the entries.
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} in {md}"));
    assert!(at("**Withheld**") < at("**IPv4**: newly allowed"), "{md}");
    assert!(
        at("**IPv4**: newly allowed") < at("- + `0.0.0.0/0` AzureCloud"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.with_extension("json")).unwrap()).unwrap();
    let entra = json["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "entra")
        .unwrap();
    assert_eq!(entra["withheld"], true);
    assert_eq!(entra["changes"]["ipv4"]["added"][0]["cidr"], "0.0.0.0/0");
    let html = std::fs::read_to_string(report.with_extension("html")).unwrap();
    assert!(html.contains("<h2>Your rulesets</h2>") && html.contains("Withheld"));
    // The other ruleset is unaffected.
    assert!(
        text.contains("ruleset  frontdoor        published"),
        "{text}"
    );
    // A first publish is checked too.
    let fresh = self::job();
    fresh.add_edited_week(&shared, "20250728", "20250804", |doc| {
        prefixes_of(doc, "AzureCloud").push("0.0.0.0/0".into());
    });
    let (code, text) = fresh.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("why: the entry 0.0.0.0/0 is wider than /8"),
        "{text}"
    );
    assert!(!fresh.out().join("entra").exists());
}

/// The week after 2025-07-28 without AzureFrontDoor.Backend.
fn without_backend(job: &Job, shared: &std::path::Path) {
    job.add_edited_week(shared, "20250728", "20250804", |doc| {
        doc["values"]
            .as_array_mut()
            .unwrap()
            .retain(|v| v["name"] != "AzureFrontDoor.Backend");
    });
}

#[test]
fn a_vanished_tag_is_withheld_then_approved_or_forced() {
    let Some(shared) = shared_data() else { return };
    let approved = job();
    let forced = job();
    for job in [&approved, &forced] {
        job.add_week(&shared, "20250728");
        assert_eq!(job.sync(&[]).0, 0);
        without_backend(job, &shared);
    }
    let (code, text) = approved.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("why: the selected tag AzureFrontDoor.Backend is not in Public 2025-08-04 (last seen 2025-07-28)"),
        "{text}"
    );
    // Every run withholds it again until someone decides.
    assert_eq!(approved.sync(&[]).0, 3);
    let (code, text) = approved.run(&["approve", "frontdoor", "--by", "bob"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("without the tags entries that match nothing: AzureFrontDoor.Backend"),
        "{text}"
    );
    let (code, text) = forced.sync(&["--force"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ruleset  frontdoor        published"),
        "{text}"
    );
    for job in [&approved, &forced] {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(job.out().join("frontdoor/manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest["tags"],
            serde_json::json!(["AzureFrontDoor.Frontend"])
        );
        assert_eq!(
            manifest["tags_missing"],
            serde_json::json!(["AzureFrontDoor.Backend"])
        );
        // Decided once: later runs publish without it and warn.
        let (code, text) = job.sync(&[]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("warning: published without the tags entries"),
            "{text}"
        );
    }
}

#[test]
fn a_reserved_ruleset_name_is_refused() {
    let job = Job::new(
        None,
        "[[ruleset]]\nname = \"reports\"\ntags = [\"AzureCloud\"]\n",
    );
    let (code, text) = job.run(&["config", "check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the name \"reports\" is taken by the output directory itself"),
        "{text}"
    );
}

#[test]
fn approval_names_and_comments_are_plain_and_bounded() {
    let job = job();
    for (args, want) in [
        (
            &["--by", "eve\n# forged line"][..],
            "holds control characters",
        ),
        (
            &["--by", "bob", "--comment", "ok\u{1b}[2J"][..],
            "holds control characters",
        ),
        (&["--by", "   "][..], "--by is empty"),
    ] {
        let mut all = vec!["approve", "entra"];
        all.extend_from_slice(args);
        let (code, text) = job.run(&all);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(want), "{want}: {text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
    let long = "x".repeat(501);
    let (code, text) = job.run(&["approve", "entra", "--by", "bob", "--comment", &long]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--comment is 501 bytes: use at most 500"),
        "{text}"
    );
}
