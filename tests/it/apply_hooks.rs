//! `apply` commands after a publish, loading the real nftables of a network namespace of the
//! test's own (`ip netns exec <ns> nft -f {nft}`): a publish loads the new sets; a failing
//! command brings the previous directory back and loads it again (the namespace holds the
//! previous week); a command that runs over its timeout is killed and rolled back the same way;
//! the next run applies the change once the command works; a first publish that fails to apply
//! leaves nothing published.
//!
//! Needs root and `ip netns` (see tests/common/netns.rs); real Public weeks from ../shared.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::job::Job;
use common::netns::{nft_set, which, Netns};
use common::shared_data;

/// The ruleset, with `apply` and more settings.
fn settings(apply: &str, extra: &str) -> String {
    format!(
        "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443]\nformats = [\"nft\", \"txt\"]\napply = {apply}\n{extra}"
    )
}

/// `apply` loading the nft file into the namespace, then `more` commands.
fn load_into(ns: &Netns, more: &str) -> String {
    let ip = which("ip").expect("ip (iproute2)");
    format!(
        "[[\"{}\", \"netns\", \"exec\", \"{}\", \"nft\", \"-f\", \"{{nft}}\"]{more}]",
        ip.display(),
        ns.name
    )
}

/// The IPv4 list published, as merged ranges.
fn published_v4(job: &Job) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(job.out().join("entra/entra.ipv4.txt")).unwrap();
    let nets: Vec<String> = text.lines().map(str::to_string).collect();
    common::merged(&nets, false)
}

fn file_date(dir: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["snapshot"]["file_date"].as_str().unwrap().to_string()
}

#[test]
fn apply_loads_rolls_back_on_failure_and_timeout_and_retries() {
    let Some(shared) = shared_data() else { return };
    let Some(ns) = Netns::new() else { return };
    let job = Job::new(None, &settings(&load_into(&ns, ""), ""));
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let week1 = published_v4(&job);
    assert_eq!(
        nft_set(&ns, "tagwall", "tw-entra-v4", false),
        week1,
        "loaded"
    );

    // A failing second command: the new week was loaded by the first, then rolled back.
    // The firewall refuses the new week only (its manifest names 2025-07-28).
    let refuse = ", [\"sh\", \"-c\", 'if grep -q 2025-07-28 \"$0\"; then echo refused by the firewall >&2; exit 3; fi', \"{dir}/manifest.json\"]";
    job.set_rulesets(&settings(&load_into(&ns, refuse), ""));
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("apply command 2 of 2"), "{text}");
    assert!(
        text.contains("refused by the firewall"),
        "the command's output: {text}"
    );
    assert!(
        text.contains("the previous directory is restored and its apply commands ran again"),
        "{text}"
    );
    assert_eq!(file_date(&job.out().join("entra")), "2025-07-21");
    assert_eq!(published_v4(&job), week1);
    assert_eq!(
        nft_set(&ns, "tagwall", "tw-entra-v4", false),
        week1,
        "rolled back"
    );

    // A command that hangs is killed at the timeout and rolled back the same way.
    job.set_rulesets(&settings(
        &load_into(&ns, ", [\"sleep\", \"30\"]"),
        "apply_timeout_seconds = 1\n",
    ));
    let started = Instant::now();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "killed at the timeout"
    );
    assert!(
        text.contains("ran over apply_timeout_seconds = 1 and was killed"),
        "{text}"
    );
    assert_eq!(file_date(&job.out().join("entra")), "2025-07-21");
    assert_eq!(nft_set(&ns, "tagwall", "tw-entra-v4", false), week1);

    // Fixed: the next run publishes the waiting week and applies it.
    job.set_rulesets(&settings(&load_into(&ns, ""), ""));
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(file_date(&job.out().join("entra")), "2025-07-28");
    let week2 = published_v4(&job);
    assert_ne!(week2, week1);
    assert_eq!(
        nft_set(&ns, "tagwall", "tw-entra-v4", false),
        week2,
        "applied"
    );
}

#[test]
fn a_first_publish_that_fails_to_apply_leaves_nothing_published() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, &settings("[[\"false\"]]", ""));
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("apply command 1 of 1"), "{text}");
    assert!(text.contains("nothing was published before"), "{text}");
    assert!(!job.out().join("entra").exists());
    // A missing program says so.
    job.set_rulesets(&settings("[[\"/nonexistent/loader\", \"{nft}\"]]", ""));
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("could not start"), "{text}");
}

#[test]
fn bad_apply_settings_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (apply, error) in [
        (
            "[[\"nft\", \"-f\", \"{ipset}\"]]",
            "unknown placeholder {ipset}",
        ),
        ("[[]]", "apply command 1 is empty"),
        ("[\"nft\"]", "invalid type"),
    ] {
        std::fs::write(dir.path().join("tagwall.toml"), settings(apply, "")).unwrap();
        let out = common::tagwall(dir.path())
            .args(["config", "check"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(error), "{apply}: {err}");
    }
}
