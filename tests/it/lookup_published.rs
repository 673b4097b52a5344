//! `lookup` answers for what is published: while a change is withheld, a ruleset's verdict comes
//! from its published list, and the newest snapshot's different verdict is what is pending; and
//! `--at` names the real cause of an entry the list holds beyond the selected tags (the grace
//! period, not `max_entries`). Against the release binary, on the real Public week of
//! 2025-07-21 and an edited next week that adds `44.0.0.0/7` (withheld) and removes one prefix.

use crate::common;

use common::job::{prefixes_of, Job};
use common::shared_data;
use ipnet::IpNet;

const SETTINGS: &str = r#"
[output]
validate = "never"

[[ruleset]]
name = "entra"
tags = ["AzureCloud"]
formats = ["txt"]

[[ruleset]]
name = "grace"
tags = ["AzureCloud"]
keep_removed_days = 14
formats = ["txt"]
"#;

/// An IPv4 prefix of AzureCloud in `doc` that no other of its prefixes overlaps.
fn lone_prefix(doc: &mut serde_json::Value) -> IpNet {
    let all: Vec<IpNet> = prefixes_of(doc, "AzureCloud")
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect();
    *all.iter()
        .filter(|p| matches!(p, IpNet::V4(_)))
        .find(|p| {
            all.iter()
                .filter(|q| q != p)
                .all(|q| !q.contains(*p) && !p.contains(q))
        })
        .unwrap()
}

/// The verdict line of `ruleset` in `tagwall lookup` output.
fn verdict<'t>(text: &'t str, ruleset: &str) -> &'t str {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{ruleset} ")))
        .unwrap_or_else(|| panic!("no verdict of {ruleset}: {text}"))
        .trim()
}

#[test]
fn lookup_answers_for_what_is_published_and_names_the_real_cause() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, SETTINGS);
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let mut removed = None;
    job.add_edited_week(&shared, "20250721", "20250728", |doc| {
        let lone = lone_prefix(doc);
        prefixes_of(doc, "AzureCloud").retain(|p| p.as_str() != Some(&lone.to_string()));
        prefixes_of(doc, "AzureCloud").push("44.0.0.0/7".into());
        removed = Some(lone);
    });
    let removed = removed.unwrap();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "the week is withheld: {text}");

    // An address only the withheld week adds: not allowed by what the firewall loads.
    let (code, text) = job.run(&["lookup", "44.1.2.3"]);
    assert_eq!(code, 0, "{text}");
    let line = verdict(&text, "entra");
    assert!(line.starts_with("entra does not allow it"), "{line}");
    assert!(
        line.contains("as published (Public 2025-07-21")
            && line.contains("pending: would allow it after approval"),
        "{line}"
    );
    // An address the withheld week removes: still allowed by what is published.
    let address = removed.network().to_string();
    let (code, text) = job.run(&["lookup", &address]);
    assert_eq!(code, 0, "{text}");
    let line = verdict(&text, "entra");
    assert!(line.starts_with("entra allows it"), "{line}");
    assert!(
        line.contains("pending: would deny it after approval"),
        "{line}"
    );

    // The newest snapshot itself (--at): the grace period keeps the removed prefix, and says so.
    let (code, text) = job.run(&["lookup", &address, "--at", "2025-07-28"]);
    assert_eq!(code, 0, "{text}");
    let line = verdict(&text, "grace");
    assert!(line.starts_with("grace allows it"), "{line}");
    assert!(
        line.contains("keep_removed_days = 14 keeps prefixes Microsoft removed"),
        "{line}"
    );
    assert!(!line.contains("max_entries"), "{line}");
    let line = verdict(&text, "entra");
    assert!(line.starts_with("entra does not allow it"), "{line}");
}
