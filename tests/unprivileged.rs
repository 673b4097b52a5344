//! The headline rulesets publish when tagwall runs as the unprivileged user the deploy files
//! name, checked by the real tools: `entra-connector` (AzureCloud + AzureActiveDirectory),
//! `AzureCloud`, `AzureCloud.*` and every tag of a real Public file, with `validate = "auto"` and
//! `"always"`. As an unprivileged user `nft -c -f` can send only a small netlink batch (the
//! socket buffer stops at `net.core.wmem_max`, 212,992 bytes by default), so a whole
//! `AzureCloud` file was refused with "Message too long". Run as root, the test runs tagwall as
//! `nobody` (`runuser`), then loads each published file as root in a network namespace of its
//! own, each in one transaction; run as another user, it runs tagwall as that user.
//!
//! `.ci/run` sets `wmem_max` to the kernel's default, so the case Debian 12 users hit is the
//! one tested; `TAGWALL_TEST_NETNS=1` makes a machine that cannot reproduce it a failure.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::netns::{nft_set, Netns};
use serde_json::Value;

const WEEK: &str = "Public/ServiceTags_Public_20250728.json.gz";
/// The kernel's default `net.core.wmem_max`.
const DEFAULT_WMEM_MAX: u64 = 212_992;
const TOOLS: [&str; 4] = ["nft", "ipset", "iptables-restore", "ip6tables-restore"];

fn settings(validate: &str) -> String {
    format!(
        r#"
[output]
dir = "out"
validate = "{validate}"

[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud", "AzureActiveDirectory"]
protocol = "tcp"
ports = [443, 80]
formats = ["nft", "ipset", "iptables", "txt"]

[[ruleset]]
name = "azurecloud"
tags = ["AzureCloud"]
formats = ["nft", "ipset", "iptables", "txt"]

[[ruleset]]
name = "regions"
tags = ["AzureCloud.*"]
protocol = "tcp"
ports = [443]
formats = ["nft", "ipset", "iptables", "txt"]

[[ruleset]]
name = "every-tag"
tags = ["*"]
formats = ["nft", "ipset", "iptables", "txt"]
"#
    )
}

const RULESETS: [&str; 4] = ["entra-connector", "azurecloud", "regions", "every-tag"];

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A world-writable working directory with the binary and the week in it, so that `nobody`
/// can reach them wherever the repository is.
fn workdir(data: &Path, validate: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("tagwall.toml"), settings(validate)).unwrap();
    std::fs::create_dir_all(root.join("source/Public")).unwrap();
    let week = root.join("source").join(WEEK);
    std::fs::copy(data.join(WEEK), &week).unwrap();
    let bin = root.join("tagwall");
    std::fs::copy(assert_cmd::cargo::cargo_bin("tagwall"), &bin).unwrap();
    for (path, mode) in [
        (root.to_path_buf(), 0o777),
        (root.join("source"), 0o755),
        (root.join("source/Public"), 0o755),
        (week, 0o644),
        (root.join("tagwall.toml"), 0o644),
        (bin.clone(), 0o755),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    (dir, bin)
}

/// The binary as the unprivileged user: `nobody` when the test runs as root.
fn unprivileged(bin: &Path, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = if is_root() {
        let runuser = common::netns::which("runuser").expect("runuser (util-linux) is installed");
        let mut c = Command::new(runuser);
        c.args(["-u", "nobody", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    // cron's PATH: the tools in /usr/sbin are found all the same.
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir);
    let out = cmd.output().expect("runuser or the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether this machine reproduces what an unprivileged `nft` meets on a stock kernel.
fn wmem_is_default() -> bool {
    let wmem: u64 = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if wmem > DEFAULT_WMEM_MAX {
        let required = std::env::var("TAGWALL_TEST_NETNS").as_deref() == Ok("1");
        assert!(
            !required,
            "net.core.wmem_max is {wmem}, above the kernel's default {DEFAULT_WMEM_MAX}: this machine cannot reproduce the unprivileged nft limit (sysctl -w net.core.wmem_max={DEFAULT_WMEM_MAX})"
        );
        eprintln!("note: net.core.wmem_max is {wmem} here, above the default {DEFAULT_WMEM_MAX}: an unprivileged nft can send larger batches than on a stock machine");
    }
    wmem <= DEFAULT_WMEM_MAX
}

fn tools_installed() -> bool {
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|t| common::netns::which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    common::skip::skip(common::skip::Needs {
        what: &format!("{missing:?} are not installed"),
        required_by: "TAGWALL_TEST_NETNS",
        how: "apt-get install nftables iptables ipset",
    });
    false
}

#[test]
fn the_headline_rulesets_publish_unprivileged_and_load_as_root() {
    let Some(data) = common::shared_data() else {
        return;
    };
    if !tools_installed() {
        return;
    }
    let stock = wmem_is_default();
    for validate in ["auto", "always"] {
        let (dir, bin) = workdir(&data, validate);
        let root = dir.path();
        let (code, stdout, stderr) = unprivileged(&bin, root, &["sync", "--source", "source"]);
        assert_eq!(code, 0, "validate = {validate}:\n{stdout}\n{stderr}");
        let summary: Value =
            serde_json::from_slice(&std::fs::read(root.join("out/last-run.json")).unwrap())
                .unwrap();
        for name in RULESETS {
            let run = summary["rulesets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["ruleset"] == name)
                .unwrap_or_else(|| panic!("{name} in {summary}"));
            assert_eq!(run["status"], "published", "{name}: {run}");
            assert_eq!(run["validated_by"], serde_json::json!(TOOLS), "{name}");
            let line = stdout
                .lines()
                .find(|l| l.starts_with("ruleset") && l.contains(&format!(" {name} ")))
                .unwrap();
            assert!(
                line.ends_with("checked by nft, ipset, iptables-restore, ip6tables-restore"),
                "{line}"
            );
        }
        // config check names the same tools, as the same user.
        let (code, stdout, _) = unprivileged(&bin, root, &["config", "check"]);
        assert_eq!(code, 0, "{stdout}");
        assert_eq!(
            stdout
                .matches("checked by: nft, ipset, iptables-restore, ip6tables-restore")
                .count(),
            RULESETS.len(),
            "{stdout}"
        );
        if validate == "always" {
            load_as_root(root);
        }
    }
    if !stock {
        common::skip::part(
            "the unprivileged checks passed, but not under the stock net.core.wmem_max",
        );
    }
}

/// Each published ruleset loaded by the real tools as root, each file in one transaction, and
/// the nft sets and ipsets holding exactly the addresses of the published lists.
fn load_as_root(root: &Path) {
    if !is_root() {
        common::skip::part(
            "the files were not loaded as root: the test runs as an unprivileged user",
        );
        return;
    }
    let Some(ns) = Netns::new() else {
        return;
    };
    for name in RULESETS {
        let out = root.join("out").join(name);
        let file = |ext: &str| out.join(format!("{name}.{ext}"));
        ns.run(&["nft", "-f", file("nft").to_str().unwrap()], None);
        ns.run(&["ipset", "restore"], Some(&file("ipset")));
        ns.run(&["iptables-restore", "--noflush"], Some(&file("iptables")));
        ns.run(
            &["ip6tables-restore", "--noflush"],
            Some(&file("ip6tables")),
        );
        for (fam, v6) in [("v4", false), ("v6", true)] {
            let list =
                std::fs::read_to_string(out.join(format!("{name}.ipv{}.txt", &fam[1..]))).unwrap();
            let want = common::merged(&list.lines().map(str::to_string).collect::<Vec<_>>(), v6);
            assert!(!want.is_empty(), "{name} {fam}");
            let set = format!("tw-{name}-{fam}");
            assert_eq!(nft_set(&ns, "tagwall", &set, v6), want, "nft {set}");
            let listed = ns.run(&["ipset", "list", &set, "-terse"], None);
            let entries: usize = listed
                .lines()
                .find_map(|l| l.strip_prefix("Number of entries: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(entries, list.lines().count(), "ipset {set}");
        }
    }
}
