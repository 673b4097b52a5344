//! A weekly rhythm without noise: with `when = "changes"`, a cloud whose newest file is older
//! than `[fetch] overdue_days` (default 10) is notified once, by the first run that finds it,
//! and once again when a file arrives — not on every run in between. Real weeks (two years old,
//! so overdue today) and one edited to be dated yesterday; messages received by a real HTTPS
//! server.

use crate::common;

use common::https::TestServer;
use common::job::{hook_posts, notified_job};
use serde_json::Value;

#[test]
fn an_overdue_cloud_is_told_once_and_its_next_file_once() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let server = TestServer::start();
    let job = notified_job(&server);
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let first = hook_posts(&server);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["clouds"][0]["notice"], "overdue", "{}", first[0]);
    assert!(first[0]["clouds"][0]["overdue_days"].as_i64().unwrap() > 10);
    let md = std::fs::read_to_string(job.out().join("last-run.md")).unwrap();
    assert!(
        md.contains("> **Notice:** Public: no new file for "),
        "{md}"
    );

    // Still overdue, nothing new: nothing to tell.
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(hook_posts(&server).len(), 1, "{text}");
    let run: Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    assert!(run["clouds"][0].get("notice").is_none(), "{run}");
    assert!(run["clouds"][0]["overdue_days"].as_i64().is_some(), "{run}");

    // A file arrives: told once.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1))
        .format("%Y%m%d")
        .to_string();
    job.add_edited_week(&shared, "20250728", &yesterday, |doc| {
        doc["changeNumber"] = 999.into();
    });
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let all = hook_posts(&server);
    assert_eq!(all.len(), 2, "{text}");
    assert_eq!(all[1]["clouds"][0]["notice"], "arrived", "{}", all[1]);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(hook_posts(&server).len(), 2, "{text}");
}
