//! `emit` into the settings' output directory — what `sync` publishes and `serve` serves — goes
//! through the guard: a dangerous change is withheld (exit 3, the published files stay, the
//! withheld marker for `approve`), `--force` publishes it and records who did with the
//! approvals; `emit --out DIR` elsewhere writes without the guard. Real weeks, with one edited
//! to gain 0.0.0.0/0.

use crate::common;

use common::job::{prefixes_of, Job};
use serde_json::Value;

const SETTINGS: &str =
    "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n";

#[test]
fn emit_into_the_published_directory_is_guarded_and_force_is_recorded() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let job = Job::new(None, SETTINGS);
    job.add_week(&shared, "20250721");
    assert_eq!(job.sync(&[]).0, 0);
    let list = job.out().join("entra/entra.txt");
    let published = std::fs::read_to_string(&list).unwrap();
    job.add_edited_week(&shared, "20250721", "20250728", |doc| {
        prefixes_of(doc, "AzureCloud").push("0.0.0.0/0".into());
    });
    let (code, text) = job.run(&["import", "mirror"]);
    assert_eq!(code, 0, "{text}");

    let (code, text) = job.run(&["emit"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("withheld"), "{text}");
    assert!(text.contains("tagwall approve entra --show"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        published,
        "the list stays"
    );
    assert!(job.out().join(".tagwall/withheld-entra.json").is_file());

    // Elsewhere, no guard.
    let (code, text) = job.run(&["emit", "--out", "elsewhere"]);
    assert_eq!(code, 0, "{text}");
    let elsewhere = std::fs::read_to_string(job.path().join("elsewhere/entra/entra.txt")).unwrap();
    assert!(elsewhere.starts_with("0.0.0.0/0"), "{elsewhere}");
    let (code, text) = job.run(&["emit", "--out", "elsewhere", "--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--force and --by apply to the settings' output directory"),
        "{text}"
    );

    // Forced, and recorded.
    let (code, text) = job.run(&["emit", "--force", "--by", "alice"]);
    assert_eq!(code, 0, "{text}");
    assert!(std::fs::read_to_string(&list)
        .unwrap()
        .starts_with("0.0.0.0/0"));
    let (code, text) = job.run(&["approvals", "--json"]);
    assert_eq!(code, 0, "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{text}"));
    let approval: Value = serde_json::from_str(line).unwrap();
    assert_eq!(approval["approved_by"], "alice", "{approval}");
    assert_eq!(approval["comment"], "tagwall emit --force", "{approval}");
    assert!(
        approval["reasons"][0].as_str().unwrap().contains("IPv4"),
        "{approval}"
    );
    // Nothing new: the next emit and sync are unchanged.
    let (code, text) = job.run(&["emit"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("unchanged"), "{text}");
}
