//! Faults an operator meets: a full disk under the store, an obstacle where the reports go,
//! leftovers of killed runs. Nothing is lost, and the next run completes the work.

use crate::common;

use std::path::{Path, PathBuf};

use common::job::Job;
use common::{service_tags, shared_data, Tag};

/// A small Public file dated `date`.
fn small(dir: &Path, date: &str, net: &str) -> PathBuf {
    let path = dir.join(format!("ServiceTags_Public_{date}.json"));
    let text = service_tags(
        "Public",
        1,
        &[Tag("AzureCloud", "", &[net, "2603:1000::/40"])],
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// On a full disk one file fails with the store's error, and the files after it import: the
/// failed transaction does not poison the next. Needs root (a private tmpfs of 2 MiB).
#[test]
fn a_full_disk_fails_one_file_and_the_next_files_import() {
    if !common::skip::required("TAGWALL_TEST_NETNS") {
        common::skip::skip(common::skip::Needs {
            what: "a private tmpfs needs root",
            required_by: "TAGWALL_TEST_NETNS",
            how: "run as root with TAGWALL_TEST_NETNS=1",
        });
        return;
    }
    let Some(shared) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let first = small(dir.path(), "20250106", "20.0.0.0/16");
    let big = shared.join("Public/ServiceTags_Public_20250609.json.gz");
    let last = small(dir.path(), "20250707", "20.1.0.0/16");
    let mnt = dir.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tagwall");
    let script = format!(
        "mount -t tmpfs -o size=2M tmpfs {m} && cd {m} && \
         {bin} --db sqlite://{m}/t.db import {first} {big} {last}; echo rc=$?; \
         {bin} --db sqlite://{m}/t.db snapshots",
        m = mnt.display(),
        bin = bin.display(),
        first = first.display(),
        big = big.display(),
        last = last.display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("database or disk is full") && text.contains("rc=1"),
        "{text}"
    );
    assert!(
        text.contains("2 imported, 0 already stored, 1 failed"),
        "{text}"
    );
    assert!(!text.contains("transaction depth"), "{text}");
    assert!(text.contains("2025-07-07"), "{text}");
}

/// A report that cannot be written (a file where its folder goes) fails the run with a clear
/// error; the week stays stored, and the next run writes the missing report. Stale temporaries
/// of killed runs are cleared.
fn report_recovery(db: Option<&str>) {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(
        db,
        "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n",
    );
    let out = job.out();
    job.add_week(&shared, "20250707");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    std::fs::create_dir_all(out.join("reports")).unwrap();
    std::fs::write(out.join("reports/Public"), b"an obstacle").unwrap();
    job.add_week(&shared, "20250714");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the diff report of Public 2025-07-14")
            && text.contains("the next run tries again"),
        "{text}"
    );
    assert!(
        text.contains("imported as id:"),
        "the week is stored: {text}"
    );
    std::fs::remove_file(out.join("reports/Public")).unwrap();
    std::fs::create_dir(out.join("reports/Public")).unwrap();
    let stale = [
        out.join("reports/Public/.tmpAbCdEf"),
        out.join("reports/Public/.tagwall-tmp-killed"),
        out.join(".tagwall-tmp-x"),
    ];
    for p in &stale {
        std::fs::write(p, b"half a file").unwrap();
    }
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let base = out.join("reports/Public/2025-07-14");
    for ext in ["md", "json", "html"] {
        assert!(base.with_extension(ext).is_file(), "{ext}: {text}");
    }
    for p in &stale {
        assert!(!p.exists(), "{} was left", p.display());
    }
    // Written once: the next run has nothing to catch up.
    let before = std::fs::metadata(base.with_extension("md"))
        .unwrap()
        .modified()
        .unwrap();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let after = std::fs::metadata(base.with_extension("md"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_report_that_could_not_be_written_is_written_next_run_on_sqlite() {
    report_recovery(None);
}

#[test]
fn a_report_that_could_not_be_written_is_written_next_run_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(t) = rt.block_on(common::postgres()) else {
        return;
    };
    report_recovery(Some(t.url.expose()));
}
