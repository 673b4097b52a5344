//! Many tagwall processes on one store at once, with the real binary: rounds of concurrent
//! `sync`, `import` and `lookup` on one SQLite file and on PostgreSQL. Every process must exit 0
//! (or 1 saying another run holds the lock), the store must stay sound, and every week must end
//! up with its diff report.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::{shared_data, tagwall, tagwall_process};

/// The weeks of the rounds: the seed, then one new week per round.
const WEEKS: [&str; 4] = ["20250609", "20250616", "20250707", "20250714"];
/// A week backfilled in the last round, between the seed and the first round's week.
const BACKFILL: &str = "20250414";

const SYNCS: usize = 4;
const LOOKUPS: usize = 3;

fn file(shared: &Path, date: &str) -> PathBuf {
    shared
        .join("Public")
        .join(format!("ServiceTags_Public_{date}.json.gz"))
}

struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new(db: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tagwall.toml"),
            format!(
                "[store]\nurl = \"{db}\"\n[fetch]\nclouds = [\"Public\"]\n[sync]\nlock_wait_seconds = 900\n\
                 [[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"nft\", \"txt\"]\n"
            ),
        )
        .unwrap();
        Job { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&self, args: &[&str], extra: &[&Path]) -> Child {
        tagwall_process(self.path())
            .args(args)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Every process exited 0, or 1 only because another run held the lock too long.
fn all_fine(outs: Vec<(String, Output)>) {
    for (what, out) in outs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let code = out.status.code();
        let lock_timeout = code == Some(1) && text.contains("another tagwall run holds the lock");
        assert!(
            code == Some(0) || lock_timeout,
            "{what} exited {code:?}:\n{text}"
        );
    }
}

fn stress(db: &str) -> Job {
    let shared = shared_data().expect("checked by the caller");
    let job = Job::new(db);
    let seed = file(&shared, WEEKS[0]);
    let (code, text) = common::run_text(tagwall(job.path()).arg("import").arg(&seed));
    assert_eq!(code, 0, "{text}");
    for round in 1..WEEKS.len() {
        let mirror = job.path().join(format!("mirror{round}"));
        std::fs::create_dir(&mirror).unwrap();
        let week = file(&shared, WEEKS[round]);
        std::fs::copy(&week, mirror.join(week.file_name().unwrap())).unwrap();
        let mut procs: Vec<(String, Child)> = Vec::new();
        for i in 0..SYNCS {
            let child = job.spawn(&["sync", "--source"], &[&mirror]);
            procs.push((format!("round {round} sync {i}"), child));
        }
        let mut imports = vec![file(&shared, WEEKS[round - 1]), week.clone()];
        if round == WEEKS.len() - 1 {
            imports.push(file(&shared, BACKFILL));
        }
        for f in &imports {
            let child = job.spawn(&["import"], &[f]);
            procs.push((format!("round {round} import {}", f.display()), child));
        }
        for i in 0..LOOKUPS {
            let child = job.spawn(&["lookup", "13.64.0.1"], &[]);
            procs.push((format!("round {round} lookup {i}"), child));
        }
        all_fine(
            procs
                .into_iter()
                .map(|(what, c)| (what, c.wait_with_output().unwrap()))
                .collect(),
        );
    }
    // The backfill came last: the next run rewrites the report it made stale.
    let (code, text) = common::run_text(
        tagwall(job.path())
            .args(["sync", "--source"])
            .arg(job.path().join(format!("mirror{}", WEEKS.len() - 1))),
    );
    assert_eq!(code, 0, "{text}");
    every_week_has_its_report(&job.path().join("out/reports/Public"));
    let (code, text) =
        common::run_text(tagwall(job.path()).args(["snapshots", "--cloud", "Public"]));
    assert_eq!(code, 0, "{text}");
    for date in WEEKS.iter().chain([&BACKFILL]) {
        let dashed = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]);
        assert_eq!(text.matches(&dashed).count(), 1, "{dashed} once:\n{text}");
    }
    job
}

/// Each week after the first has its report in every format, comparing it with the week before.
fn every_week_has_its_report(reports: &Path) {
    let mut dates: Vec<&str> = WEEKS.iter().chain([&BACKFILL]).copied().collect();
    dates.sort();
    for pair in dates.windows(2) {
        let dashed = |d: &str| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]);
        let base = reports.join(dashed(pair[1]));
        for ext in ["md", "html"] {
            assert!(
                base.with_extension(ext).is_file(),
                "{}.{ext}",
                base.display()
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.with_extension("json")).unwrap()).unwrap();
        assert_eq!(
            json["from"]["file_date"],
            dashed(pair[0]),
            "the report of {} compares with the week before",
            pair[1]
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_runs_take_turns_on_sqlite() {
    if shared_data().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("t.db");
    let job = stress(&format!("sqlite://{}", db_path.display()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let verdict: String = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(verdict, "ok");
    drop(job);
}

#[test]
fn concurrent_runs_take_turns_on_postgres() {
    if shared_data().is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(t) = rt.block_on(common::postgres()) else {
        return;
    };
    stress(t.url.expose());
}
