//! A network namespace of the test's own for the real firewall tools (`ip netns add`), deleted
//! on drop. `TAGWALL_TEST_NETNS=1` (set by `.ci/run`) turns a namespace that cannot be made into
//! a failure instead of a skip.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;

/// A network namespace that is deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Option<Netns> {
        let fail = |why: String| -> Option<Netns> {
            super::skip::skip(super::skip::Needs {
                what: &why,
                required_by: "TAGWALL_TEST_NETNS",
                how: "run as root with nftables, iptables, ipset and iproute2 installed",
            });
            None
        };
        for tool in ["nft", "ipset", "iptables-restore", "ip6tables-restore"] {
            if which(tool).is_none() {
                return fail(format!(
                    "{tool} is not installed (apt-get install nftables iptables ipset)"
                ));
            }
        }
        let name = format!("tagwall-test-{}", rand::random::<u32>());
        match Process::new("ip").args(["netns", "add", &name]).output() {
            Ok(o) if o.status.success() => Some(Netns { name }),
            Ok(o) => fail(format!(
                "`ip netns add` failed (root and CAP_SYS_ADMIN are needed): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => fail(format!(
                "`ip` could not be run (apt-get install iproute2): {e}"
            )),
        }
    }

    /// Runs a command in the namespace, optionally feeding a file on stdin: its stdout, or its
    /// stderr as the error.
    pub fn try_run(&self, args: &[&str], stdin: Option<&Path>) -> Result<String, String> {
        let mut cmd = Process::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        let out = cmd.output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs a command in the namespace, optionally feeding a file on stdin; panics on failure.
    pub fn run(&self, args: &[&str], stdin: Option<&Path>) -> String {
        self.try_run(args, stdin)
            .unwrap_or_else(|e| panic!("{args:?} < {stdin:?} failed: {e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Process::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Merges ranges given as text: a CIDR, one address, or a first and last address.
pub fn ranges_of(items: Vec<(String, Option<String>)>, v6: bool) -> Vec<(u128, u128)> {
    let int = |a: &str| match a.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    let mut ranges = Vec::new();
    for (a, b) in items {
        match b {
            Some(b) => ranges.push((int(&a), int(&b))),
            None if a.contains('/') => ranges.extend(super::merged([&a], v6)),
            None => ranges.push((int(&a), int(&a))),
        }
    }
    super::merge_ranges(ranges)
}

pub fn nft_set(ns: &Netns, table: &str, set: &str, v6: bool) -> Vec<(u128, u128)> {
    let json: Value =
        serde_json::from_str(&ns.run(&["nft", "-j", "list", "set", "inet", table, set], None))
            .unwrap();
    let set = json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("set"))
        .unwrap();
    let items = set["elem"]
        .as_array()
        .map(|elems| {
            elems
                .iter()
                .map(|e| match e {
                    Value::String(a) => (a.clone(), None),
                    Value::Object(o) if o.contains_key("prefix") => (
                        format!(
                            "{}/{}",
                            o["prefix"]["addr"].as_str().unwrap(),
                            o["prefix"]["len"]
                        ),
                        None,
                    ),
                    Value::Object(o) if o.contains_key("range") => (
                        o["range"][0].as_str().unwrap().to_string(),
                        Some(o["range"][1].as_str().unwrap().to_string()),
                    ),
                    other => panic!("unexpected nft element {other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    ranges_of(items, v6)
}

/// Where `tool` is installed (PATH, then /usr/sbin and /sbin).
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
