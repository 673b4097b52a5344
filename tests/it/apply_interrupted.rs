//! A publish is applied, or it is not published — against the release binary. A `sync` killed
//! (SIGKILL of its process group, or SIGTERM) while an `apply` command runs leaves the new
//! directory unapplied: `serve` keeps the last good copy meanwhile, and the next `sync` runs the
//! commands again before anything else, loading the real nftables of a network namespace.
//! Commands get a minimal environment, their output is bounded, a command that leaves a
//! background process holding its output is done, and a timeout kills the whole process group.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::job::Job;
use common::netns::{nft_set, which, Netns};
use common::serve::{curl_get, start};
use common::{shared_data, tagwall_process};

const TOKEN: &str = "0123456789abcdef-firewall-token";

fn settings(apply: &str, extra: &str) -> String {
    format!(
        "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443]\nformats = [\"nft\", \"txt\"]\napply = {apply}\n{extra}"
    )
}

/// `apply` loading the nft file into the namespace, after `before` commands.
fn load_into(ns: &Netns, before: &str) -> String {
    let ip = which("ip").expect("ip (iproute2)");
    format!(
        "[{before}[\"{}\", \"netns\", \"exec\", \"{}\", \"nft\", \"-f\", \"{{nft}}\"]]",
        ip.display(),
        ns.name
    )
}

fn file_date(dir: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["snapshot"]["file_date"].as_str().unwrap().to_string()
}

fn v4(job: &Job) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(job.out().join("entra/entra.ipv4.txt")).unwrap();
    common::merged(&text.lines().map(str::to_string).collect::<Vec<_>>(), false)
}

/// The IPv4 list from `serve`: the body when 200.
fn served_v4(port: u16) -> Option<Vec<u8>> {
    let (code, body) = curl_get(port, "/rulesets/entra/entra.ipv4.txt", TOKEN);
    (code == 200).then_some(body)
}

/// Starts `sync` in a process group of its own, waits until its apply command hangs (the
/// marker exists and the new directory is swapped in), then sends `signal` to the group.
fn stop_during_apply(job: &Job, signal: &str) {
    use std::os::unix::process::CommandExt;
    let mut child = tagwall_process(job.path())
        .args(["sync", "--source"])
        .arg(&job.mirror)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let marker = job.out().join(".tagwall/applying-entra.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(marker.exists() && file_date(&job.out().join("entra")) == "2025-07-28") {
        assert!(Instant::now() < deadline, "the apply command never started");
        assert!(child.try_wait().unwrap().is_none(), "sync ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let group = format!("-{}", child.id());
    let sent = std::process::Command::new("kill")
        .args([signal, "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    let _ = child.wait();
}

#[test]
fn a_publish_stopped_during_apply_is_applied_by_the_next_run() {
    let Some(shared) = shared_data() else { return };
    for signal in ["-KILL", "-TERM"] {
        let Some(ns) = Netns::new() else { return };
        let job = Job::new(None, &settings(&load_into(&ns, ""), ""));
        job.add_week(&shared, "20250721");
        let (code, text) = job.sync(&[]);
        assert_eq!(code, 0, "{text}");
        let week1 = v4(&job);
        assert_eq!(nft_set(&ns, "tagwall", "tw-entra-v4", false), week1);
        // serve reads the output directory; started with week 1 served.
        let server = start(&job, Some(TOKEN));
        let week1_bytes = served_v4(server.port).expect("week 1 is served");

        // The next week, with a command that hangs before the load: stopped there.
        let hang = "[\"sleep\", \"60.5\"], ";
        job.set_rulesets(&settings(&load_into(&ns, hang), ""));
        job.add_week(&shared, "20250728");
        stop_during_apply(&job, signal);
        assert_eq!(file_date(&job.out().join("entra")), "2025-07-28");
        assert!(job.out().join(".tagwall/applying-entra.json").exists());
        // The firewall still holds week 1, and serve keeps serving it, not the unapplied week.
        assert_eq!(
            nft_set(&ns, "tagwall", "tw-entra-v4", false),
            week1,
            "{signal}"
        );
        for _ in 0..8 {
            assert_eq!(
                served_v4(server.port).as_deref(),
                Some(&week1_bytes[..]),
                "{signal}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }

        // A command left running by the stop is tagwall's no more.
        let _ = std::process::Command::new("pkill")
            .args(["-f", "sleep 60.5"])
            .status();
        // The next run applies what is published before anything else.
        job.set_rulesets(&settings(&load_into(&ns, ""), ""));
        let (code, text) = job.sync(&[]);
        assert_eq!(code, 0, "{signal}: {text}");
        assert!(
            text.contains("the apply commands of its last publish did not finish"),
            "{text}"
        );
        assert!(!job.out().join(".tagwall/applying-entra.json").exists());
        let week2 = v4(&job);
        assert_ne!(week2, week1);
        assert_eq!(
            nft_set(&ns, "tagwall", "tw-entra-v4", false),
            week2,
            "{signal}"
        );
        // And serve picks it up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while served_v4(server.port).as_deref() == Some(&week1_bytes[..]) {
            assert!(Instant::now() < deadline, "serve still serves week 1");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            served_v4(server.port).unwrap(),
            std::fs::read(job.out().join("entra/entra.ipv4.txt")).unwrap()
        );
    }
}

/// A job with one real week and `apply`, unprivileged commands only.
fn hook_job(shared: &Path, apply: &str, extra: &str) -> Job {
    let job = Job::new(
        None,
        &format!(
            "[output]\nvalidate = \"never\"\n[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\napply = {apply}\n{extra}"
        ),
    );
    job.add_week(shared, "20250728");
    job
}

#[test]
fn commands_get_a_minimal_environment() {
    let Some(shared) = shared_data() else { return };
    let seen = tempfile::tempdir().unwrap();
    let file = seen.path().join("env.txt");
    let job = hook_job(
        &shared,
        &format!("[[\"sh\", \"-c\", \"env > {}\"]]", file.display()),
        "apply_env = [\"FW_HOST\"]",
    );
    let out = common::tagwall(job.path())
        .env("TAGWALL_SMTP_PASSWORD", "smtp-S3CRET")
        .env("TAGWALL_SERVE_TOKENS", "serve-token-S3CRET-0123456789")
        .env("HTTPS_PROXY", "http://user:proxy-S3CRET@proxy.example:3128")
        .env("FW_HOST", "gw1.example")
        .env("LANG", "C.UTF-8")
        .args(["sync", "--source"])
        .arg(&job.mirror)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&file).unwrap();
    assert!(!env.contains("S3CRET"), "{env}");
    assert!(env.lines().any(|l| l == "FW_HOST=gw1.example"), "{env}");
    assert!(env.lines().any(|l| l == "LANG=C.UTF-8"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

#[test]
fn a_command_that_leaves_a_background_process_is_done() {
    let Some(shared) = shared_data() else { return };
    // The background sleep holds the command's stdout and stderr.
    let job = hook_job(
        &shared,
        "[[\"sh\", \"-c\", \"sleep 20.25 & echo started\"]]",
        "apply_timeout_seconds = 10",
    );
    let started = Instant::now();
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 20.25"])
        .status();
}

#[test]
fn a_command_over_its_timeout_is_killed_with_its_children() {
    let Some(shared) = shared_data() else { return };
    let job = hook_job(
        &shared,
        "[[\"sh\", \"-c\", \"sleep 301.5 & sleep 301.5\"]]",
        "apply_timeout_seconds = 1",
    );
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("killed with its process group"), "{text}");
    std::thread::sleep(Duration::from_millis(300));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 301.5"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "orphaned: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn a_command_output_is_bounded() {
    let Some(shared) = shared_data() else { return };
    // 400 MB of output, then a failure: only the end is kept and quoted.
    let job = hook_job(
        &shared,
        "[[\"sh\", \"-c\", \"head -c 400000000 /dev/zero | tr '\\\\0' x; echo; echo the end; exit 2\"]]",
        "",
    );
    let mut child = tagwall_process(job.path())
        .args(["sync", "--source"])
        .arg(&job.mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let output = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("the end"), "{text}");
    assert!(text.len() < 20_000, "{} bytes of output", text.len());
    // The run itself (a real week) takes some; 400 MB of output must not.
    assert!(peak_kb < 300_000, "peak RSS {peak_kb} kB");
}
