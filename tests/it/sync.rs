//! `tagwall sync`, `approve` and `daemon` end to end on the real files: publishing, reports,
//! the guard, crash safety under SIGKILL, one run at a time per store, metrics and webhook.

use crate::common;

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use common::https::{Reply, TestServer};
use common::job::{consistent, prefixes_of, Job};
use common::{shared_data, tagwall, tagwall_process};

const RULESETS: &str = r#"
[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud"]
protocol = "tcp"
ports = [443, 80]

[[ruleset]]
name = "storage-eu"
tags = ["Storage.WestEurope", "Storage.NorthEurope"]
protocol = "tcp"
ports = [443]
max_entries = 200
formats = ["txt", "csv", "json", "nft"]

[[ruleset]]
name = "frontdoor"
tags = ["AzureFrontDoor.*"]
max_removed_percent = 50
formats = ["ipset", "iptables", "json"]
"#;

/// A job with the three rulesets and `extra` settings.
fn job(db: Option<&str>, extra: &str) -> Job {
    Job::new(db, &format!("{extra}\n{RULESETS}"))
}

/// Every file of the named ruleset directories with its bytes and its directory's inode.
fn published(out: &Path, names: &[&str]) -> Vec<(String, Vec<u8>, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    for name in names {
        let dir = out.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            files.push((
                path.display().to_string(),
                std::fs::read(&path).unwrap(),
                std::fs::metadata(&dir).unwrap().ino(),
            ));
        }
    }
    files.sort();
    files
}

/// Week 3: the real 2025-07-28 file with most of AzureCloud cut away, dated 2025-08-04.
fn truncated_week(job: &Job, shared: &Path) {
    job.add_edited_week(shared, "20250728", "20250804", |doc| {
        let prefixes = prefixes_of(doc, "AzureCloud");
        prefixes.truncate(prefixes.len() / 5);
    });
}

#[test]
fn weeks_publish_report_and_a_dangerous_week_is_withheld_until_forced() {
    let Some(shared) = shared_data() else { return };
    let job = job(None, "");
    // Week 1: artifacts, no diff report (nothing to compare with).
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ruleset  entra-connector  published Public 2025-07-21"),
        "{text}"
    );
    assert!(
        text.contains("warning: AzureCloud is multi-tenant"),
        "{text}"
    );
    assert!(!job.out().join("reports").exists());
    for r in ["entra-connector", "storage-eu", "frontdoor"] {
        assert_eq!(consistent(&job.out().join(r)).unwrap(), "2025-07-21");
    }
    // Week 2: the report and updated artifacts.
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    for ext in ["md", "json", "html"] {
        assert!(
            job.out()
                .join(format!("reports/Public/2025-07-28.{ext}"))
                .is_file(),
            "{ext}"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(job.out().join("reports/Public/2025-07-28.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["schema"], "tagwall.diff/1");
    assert_eq!(
        consistent(&job.out().join("entra-connector")).unwrap(),
        "2025-07-28"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["clouds"][0]["status"], "new");
    let metrics = std::fs::read_to_string(job.out().join("metrics.prom")).unwrap();
    assert!(
        metrics
            .contains("tagwall_ruleset_entries{ruleset=\"entra-connector\",family=\"ipv4\"} 1844"),
        "{metrics}"
    );
    assert!(metrics.contains("tagwall_ruleset_withheld{ruleset=\"entra-connector\"} 0"));
    assert!(metrics
        .contains("tagwall_snapshot_file_date_timestamp_seconds{cloud=\"Public\"} 1753660800"));

    // The same week again: nothing rewritten.
    let all = ["entra-connector", "storage-eu", "frontdoor"];
    let before = published(&job.out(), &all);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ruleset  entra-connector  unchanged"),
        "{text}"
    );
    assert_eq!(published(&job.out(), &all), before);
    let before = published(&job.out(), &["entra-connector"]);

    // Week 3 loses most of AzureCloud: withheld, previous files byte-identical, exit 3.
    truncated_week(&job, &shared);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("ruleset  entra-connector  withheld  Public 2025-07-28"),
        "{text}"
    );
    assert!(text.contains("why: IPv4 would lose"), "{text}");
    assert!(text.contains("would change IPv4: 1844 →"), "{text}");
    assert!(text.contains("tagwall approve entra-connector"), "{text}");
    assert_eq!(
        published(&job.out(), &["entra-connector"]),
        before,
        "the previous artifacts stay untouched"
    );
    let metrics = std::fs::read_to_string(job.out().join("metrics.prom")).unwrap();
    assert!(metrics.contains("tagwall_ruleset_withheld{ruleset=\"entra-connector\"} 1"));
    let md = std::fs::read_to_string(job.out().join("last-run.md")).unwrap();
    assert!(
        md.contains("## Ruleset `entra-connector`: withheld"),
        "{md}"
    );
    assert!(md.contains("- IPv4 would lose"), "{md}");
    assert!(
        md.contains("The published files stay. Review, then publish:\n\n    tagwall approve entra-connector --show\n"),
        "{md}"
    );
    assert!(
        md.contains("> **Warning:** AzureCloud is multi-tenant"),
        "{md}"
    );
    // Unaffected rulesets of the same cloud were published.
    assert_eq!(
        consistent(&job.out().join("storage-eu")).unwrap(),
        "2025-08-04"
    );
    // Still withheld on the next run.
    let (code, _) = job.sync(&[]);
    assert_eq!(code, 3);
    // --force publishes it.
    let (code, text) = job.sync(&["--force"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ruleset  entra-connector  published Public 2025-08-04"),
        "{text}"
    );
    assert_eq!(
        consistent(&job.out().join("entra-connector")).unwrap(),
        "2025-08-04"
    );
    assert!(!job
        .out()
        .join(".tagwall/withheld-entra-connector.json")
        .exists());
}

#[test]
fn approve_publishes_exactly_the_withheld_change() {
    let Some(shared) = shared_data() else { return };
    let job = job(None, "[guard]\nmax_removed_percent = 5");
    job.add_week(&shared, "20250728");
    assert_eq!(job.sync(&[]).0, 0);
    truncated_week(&job, &shared);
    let (code, _) = job.sync(&[]);
    assert_eq!(code, 3);
    // A dry run says the same and writes nothing.
    let summary = std::fs::read(job.out().join("last-run.json")).unwrap();
    let (code, text) = job.sync(&["--dry-run"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("would-withhold"), "{text}");
    assert_eq!(
        std::fs::read(job.out().join("last-run.json")).unwrap(),
        summary
    );
    let out = tagwall(job.path())
        .args(["approve", "entra-connector"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("approved entra-connector: published Public 2025-08-04"),
        "{text}"
    );
    assert_eq!(
        consistent(&job.out().join("entra-connector")).unwrap(),
        "2025-08-04"
    );
    let out = tagwall(job.path())
        .args(["approve", "entra-connector"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no withheld change to approve"));
    // The next run agrees: nothing withheld.
    assert_eq!(job.sync(&[]).0, 0);
}

#[test]
fn a_sync_killed_anywhere_leaves_old_or_new_and_the_next_run_completes() {
    let Some(shared) = shared_data() else { return };
    let job = job(None, "");
    job.add_week(&shared, "20250609");
    assert_eq!(job.sync(&[]).0, 0);
    // How long a run with a new week takes here (debug or release, fast or slow machine): the
    // kills are spread over it.
    job.add_week(&shared, "20250616");
    let started = std::time::Instant::now();
    assert_eq!(job.sync(&[]).0, 0);
    let full = started.elapsed().as_millis() as u64;
    let weeks = ["20250707", "20250714", "20250721", "20250728"];
    let mut kills = 0;
    for i in 0..16u64 {
        if i % 4 == 0 {
            job.add_week(&shared, weeks[(i / 4) as usize]);
        }
        let delay_ms = full * (i % 4 * 4 + i / 4) / 16;
        let mut child = tagwall_process(job.path())
            .args(["sync", "--source"])
            .arg(&job.mirror)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for r in ["entra-connector", "storage-eu", "frontdoor"] {
            let dir = job.out().join(r);
            if dir.exists() {
                consistent(&dir)
                    .unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms, {r}: {e}"));
            }
        }
    }
    assert!(kills >= 8, "most runs were killed mid-way ({kills} of 16)");
    // The store is whole: every snapshot reads back, and a normal run completes.
    let (code, text) = job.sync(&[]);
    assert!(code == 0 || code == 3, "{text}");
    let (code, text) =
        common::run_text(tagwall(job.path()).args(["export", "--raw", "--at", "latest"]));
    assert_eq!(code, 0, "{text}");
    for r in ["entra-connector", "storage-eu", "frontdoor"] {
        consistent(&job.out().join(r)).unwrap();
    }
}

/// Two syncs at once: exactly one imports and publishes; the other waits and finds it done.
fn two_at_once(db: Option<&str>) {
    let Some(shared) = shared_data() else { return };
    let job = job(db, "");
    job.add_week(&shared, "20250728");
    let spawn = || {
        tagwall_process(job.path())
            .args(["sync", "--source"])
            .arg(&job.mirror)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let text: String = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    let errors: String = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(outs.iter().all(|o| o.status.success()), "{text}{errors}");
    assert_eq!(text.matches(" new ").count(), 1, "{text}");
    assert_eq!(
        text.matches("ruleset  entra-connector  published").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("ruleset  entra-connector  unchanged").count(),
        1,
        "{text}"
    );
}

/// A held lock makes a sync wait the bounded time, then exit 1 with a clear message.
async fn bounded_wait(url: tagwall::store::DbUrl, db: Option<&str>) {
    let store = tagwall::store::Store::open(&url).await.unwrap();
    let lock = store.lock_run(Duration::from_secs(1)).await.unwrap();
    let job = job(db, "");
    let started = std::time::Instant::now();
    let (code, text) = job.sync(&["--lock-wait", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("another tagwall run holds the lock"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    lock.release().await;
}

#[test]
fn one_run_at_a_time_on_sqlite() {
    two_at_once(None);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("held.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bounded_wait(
        tagwall::store::DbUrl::parse(&db).unwrap(),
        Some(&db),
    ));
}

#[test]
fn one_run_at_a_time_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(t) = rt.block_on(common::postgres()) else {
        return;
    };
    let url = t.url.expose().to_string();
    two_at_once(Some(&url));
    rt.block_on(bounded_wait(t.url.clone(), Some(&url)));
}

#[test]
fn the_daemon_finishes_the_run_in_progress_on_sigterm() {
    let Some(shared) = shared_data() else { return };
    let job = job(None, "[schedule]\ncron = \"0 7 * * *\"");
    for week in ["20250714", "20250721", "20250728"] {
        job.add_week(&shared, week);
    }
    let child = tagwall_process(job.path())
        .args(["--log-format", "json", "daemon", "--run-now", "--source"])
        .arg(&job.mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let pid = child.id().to_string();
    assert!(StdCommand::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The run in progress finished: summary and artifacts written; then it stopped.
    assert!(job.out().join("last-run.json").is_file(), "{stderr}");
    consistent(&job.out().join("entra-connector")).unwrap();
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(
        stderr.contains("stop requested during a run: it has 5 s to finish")
            && stderr.contains("the run finished; exiting"),
        "it stopped after the run: {stderr}"
    );
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn the_run_summary_is_posted_to_the_webhook_without_showing_its_token() {
    let Some(shared) = shared_data() else { return };
    let server = TestServer::start();
    server.route("/hooks/T0K3N", Reply::page("ok"));
    let extra = format!(
        "ca_bundle = \"{}\"\n[notify]\nwebhook_url = \"{}\"",
        server.ca_pem.display(),
        server.url("/hooks/T0K3N")
    );
    let job = job(None, &extra);
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&["-v"]);
    assert_eq!(code, 0, "{text}");
    let post = server
        .log()
        .into_iter()
        .find(|l| l.method == "POST")
        .expect("posted");
    let body: serde_json::Value = serde_json::from_slice(&post.request_body).unwrap();
    assert_eq!(body["schema"], "tagwall.run/1");
    assert_eq!(body["rulesets"][0]["ruleset"], "entra-connector");
    assert!(
        text.contains("posted the run summary to https://127.0.0.1/***"),
        "{text}"
    );
    // A failing webhook is reported, not fatal, and does not show the token.
    server.route("/hooks/T0K3N", Reply::Status(500));
    let (code, text) = job.sync(&["--log-format", "json"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("could not post the run summary"), "{text}");
    // JSON logs carry the one summary line per ruleset.
    let summary = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["target"] == "tagwall::summary" && v["fields"]["ruleset"] == "entra-connector")
        .unwrap_or_else(|| panic!("no summary event: {text}"));
    assert_eq!(summary["fields"]["status"], "unchanged");
    assert!(!text.contains("T0K3N"), "{text}");
}
