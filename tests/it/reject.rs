//! `tagwall reject`: a withheld change someone declines. The published list stays, the decision
//! is recorded with the approvals, later runs on the same file say `rejected` (exit 0, nothing
//! to notify with `when = "changes"`) instead of withholding it again, and a later file is
//! judged afresh. Real weeks, with one edited to gain 0.0.0.0/0; notifications received by a
//! real HTTPS server.

use crate::common;

use common::https::TestServer;
use common::job::{hook_posts, notified_job, prefixes_of, Job};
use serde_json::Value;

fn status(job: &Job) -> Value {
    let run: Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    run["rulesets"][0].clone()
}

#[test]
fn a_rejected_change_stays_out_and_is_not_withheld_again() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let server = TestServer::start();
    let job = notified_job(&server);
    job.add_week(&shared, "20250721");
    assert_eq!(job.sync(&[]).0, 0);
    let list = job.out().join("entra/entra.txt");
    let published = std::fs::read_to_string(&list).unwrap();
    job.add_edited_week(&shared, "20250721", "20250728", |doc| {
        prefixes_of(doc, "AzureCloud").push("0.0.0.0/0".into());
    });
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(hook_posts(&server).len(), 2);

    // Still withheld: notified once, then reminded after [notify] remind_days (7), not daily.
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(
        hook_posts(&server).len(),
        2,
        "the same withheld change is not notified again at once"
    );
    let marker_path = job.out().join(".tagwall/withheld-entra.json");
    let mut marker: Value = serde_json::from_slice(&std::fs::read(&marker_path).unwrap()).unwrap();
    let eight_days_ago = chrono::Utc::now() - chrono::Duration::days(8);
    marker["notified_at"] = eight_days_ago
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .into();
    std::fs::write(&marker_path, serde_json::to_vec(&marker).unwrap()).unwrap();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(hook_posts(&server).len(), 3, "reminded after remind_days");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(hook_posts(&server).len(), 3);

    let (code, text) = job.run(&["reject", "entra", "--by", "bob", "--comment", "not ours"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("rejected entra: the change of Public 2025-07-28"),
        "{text}"
    );
    assert!(!job.out().join(".tagwall/withheld-entra.json").exists());
    assert_eq!(std::fs::read_to_string(&list).unwrap(), published);

    // The same file again: decided, so not withheld, not notified.
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let run = status(&job);
    assert_eq!(run["status"], "rejected", "{run}");
    assert!(
        run["reasons"][0].as_str().unwrap().contains("IPv4"),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&list).unwrap(), published);
    assert_eq!(
        hook_posts(&server).len(),
        3,
        "a rejected change is not notified again"
    );
    let (code, text) = job.run(&["approve", "entra"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no withheld change"), "{text}");

    let (code, text) = job.run(&["approvals"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("  rejected  entra  Public 2025-07-28")
                && l.ends_with("by bob: not ours")),
        "{text}"
    );

    // A later file is judged afresh.
    job.add_edited_week(&shared, "20250728", "20250804", |doc| {
        prefixes_of(doc, "AzureCloud").push("0.0.0.0/0".into());
    });
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(status(&job)["status"], "withheld");
    assert_eq!(hook_posts(&server).len(), 4);
}
