//! The emitted firewall files, loaded by the real tools in a network namespace of the test's own:
//! `nft -f`, `ipset restore`, `iptables-restore --noflush`, `ip6tables-restore --noflush`. The
//! state read back (`nft -j list set`, `ipset list`, `iptables -S`) must equal the addresses of
//! the selected tags, computed here from the raw files; loading twice changes nothing; loading a
//! newer week swaps the contents; objects that are not tagwall's are left alone.
//!
//! Needs root and `ip netns`. With `TAGWALL_TEST_NETNS=1` (set by `.ci/run`) a namespace that
//! cannot be made fails the test with the reason; otherwise the test is skipped with a message.

use crate::common;

use common::netns::{nft_set, ranges_of, Netns};

use std::path::{Path, PathBuf};

const OLD: &str = "Public/ServiceTags_Public_20250721.json.gz";
const NEW: &str = "Public/ServiceTags_Public_20250728.json.gz";

const CONFIG: &str = r#"
[output]
dir = "out"

[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud"]
protocol = "tcp"
ports = [443, 80]

[[ruleset]]
name = "storage-eu"
tags = ["Storage.WestEurope", "Storage.NorthEurope"]
direction = "ingress"
protocol = "udp"
ports = [53, "8000-8100", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
nft_table = "inet filter"

[[ruleset]]
name = "westeurope-budget"
tags = ["AzureCloud.westeurope"]
families = ["ipv4"]
max_entries = 40
"#;

/// A working directory with the two real weeks imported and both emitted.
struct Emitted {
    dir: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
    data: PathBuf,
}

fn emitted(data: &Path) -> Emitted {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tagwall.toml"), CONFIG).unwrap();
    let tagwall = || common::tagwall(dir.path());
    tagwall()
        .args(["import"])
        .arg(data.join(OLD))
        .arg(data.join(NEW))
        .assert()
        .success();
    tagwall()
        .args(["emit", "--at", "latest~1", "--out", "old"])
        .assert()
        .success();
    tagwall().args(["emit", "--out", "new"]).assert().success();
    Emitted {
        old: dir.path().join("old"),
        new: dir.path().join("new"),
        dir,
        data: data.to_path_buf(),
    }
}

/// The merged ranges of the named tags' prefixes of one family in a raw file.
fn expected(data: &Path, file: &str, tags: &[&str], v6: bool) -> Vec<(u128, u128)> {
    let raw = common::raw_tags(&data.join(file)).1;
    common::merged(tags.iter().flat_map(|t| &raw[*t].1), v6)
}

fn ipset_members(ns: &Netns, set: &str, v6: bool) -> Vec<(u128, u128)> {
    let text = ns.run(&["ipset", "list", set], None);
    let members = text.split("Members:\n").nth(1).unwrap();
    let items = members
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| (l.trim().to_string(), None))
        .collect();
    ranges_of(items, v6)
}

fn txt_ranges(dir: &Path, file: &str, v6: bool) -> Vec<(u128, u128)> {
    let lines: Vec<String> = std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    common::merged(&lines, v6)
}

#[test]
fn nft_files_load_replace_and_leave_other_objects_alone() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(ns) = Netns::new() else {
        return;
    };
    let e = emitted(&data);
    // The user's own table with a base chain and a chain of theirs.
    let user = e.dir.path().join("user.nft");
    std::fs::write(
        &user,
        "table inet filter {\n\tchain output { type filter hook output priority 0; policy accept; }\n\tchain mine {\n\t\tcounter\n\t}\n}\n",
    )
    .unwrap();
    ns.run(&["nft", "-f", user.to_str().unwrap()], None);
    let before = ns.run(&["nft", "list", "chain", "inet", "filter", "mine"], None);

    let load = |dir: &Path, name: &str| {
        ns.run(
            &[
                "nft",
                "-f",
                dir.join(format!("{name}/{name}.nft")).to_str().unwrap(),
            ],
            None,
        );
    };
    for (week, dir) in [(OLD, &e.old), (OLD, &e.old), (NEW, &e.new)] {
        load(dir, "entra-connector");
        load(dir, "storage-eu");
        for v6 in [false, true] {
            let fam = if v6 { "v6" } else { "v4" };
            assert_eq!(
                nft_set(&ns, "tagwall", &format!("tw-entra-connector-{fam}"), v6),
                expected(&e.data, week, &["AzureCloud"], v6),
                "AzureCloud {fam} after loading {week}"
            );
            assert_eq!(
                nft_set(&ns, "filter", &format!("tw-storage-eu-{fam}"), v6),
                expected(
                    &e.data,
                    week,
                    &["Storage.WestEurope", "Storage.NorthEurope"],
                    v6
                ),
                "Storage {fam} after loading {week}"
            );
        }
        let chain = ns.run(
            &[
                "nft",
                "list",
                "chain",
                "inet",
                "tagwall",
                "tw-entra-connector",
            ],
            None,
        );
        let rules: Vec<&str> = chain
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("accept"))
            .collect();
        assert_eq!(
            rules,
            [
                "ip daddr @tw-entra-connector-v4 tcp dport { 80, 443 } accept",
                "ip6 daddr @tw-entra-connector-v6 tcp dport { 80, 443 } accept"
            ],
            "loading twice must not duplicate rules"
        );
        let storage = ns.run(
            &["nft", "list", "chain", "inet", "filter", "tw-storage-eu"],
            None,
        );
        assert!(
            storage.contains("ip saddr @tw-storage-eu-v4 udp dport { 1-14, 53, 8000-8100 } accept"),
            "{storage}"
        );
    }
    assert_eq!(
        ns.run(&["nft", "list", "chain", "inet", "filter", "mine"], None),
        before
    );
    let output = ns.run(&["nft", "list", "chain", "inet", "filter", "output"], None);
    assert!(output.contains("policy accept"), "{output}");

    // The budgeted ruleset: at most 40 entries, covering every address of its tag.
    load(&e.new, "westeurope-budget");
    let got = nft_set(&ns, "tagwall", "tw-westeurope-budget-v4", false);
    let emitted = txt_ranges(
        &e.new.join("westeurope-budget"),
        "westeurope-budget.ipv4.txt",
        false,
    );
    assert_eq!(got, emitted);
    let lines = std::fs::read_to_string(e.new.join("westeurope-budget/westeurope-budget.ipv4.txt"))
        .unwrap();
    assert!(lines.lines().count() <= 40);
    for (lo, hi) in expected(&e.data, NEW, &["AzureCloud.westeurope"], false) {
        assert!(
            got.iter().any(|&(a, b)| a <= lo && hi <= b),
            "{lo}-{hi} not covered"
        );
    }
}

#[test]
fn ipset_and_iptables_files_load_swap_and_keep_other_rules() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(ns) = Netns::new() else {
        return;
    };
    let e = emitted(&data);
    // The user's own chain and rule, which --noflush must keep.
    ns.run(&["iptables", "-N", "user-chain"], None);
    ns.run(&["iptables", "-A", "OUTPUT", "-j", "user-chain"], None);
    let file = |dir: &Path, ext: &str| dir.join(format!("entra-connector/entra-connector.{ext}"));
    for (i, (week, dir)) in [(OLD, &e.old), (OLD, &e.old), (NEW, &e.new)]
        .into_iter()
        .enumerate()
    {
        ns.run(&["ipset", "restore"], Some(&file(dir, "ipset")));
        ns.run(
            &["iptables-restore", "--noflush"],
            Some(&file(dir, "iptables")),
        );
        ns.run(
            &["ip6tables-restore", "--noflush"],
            Some(&file(dir, "ip6tables")),
        );
        if i == 0 {
            // Reference the chains as a user would, so later loads swap sets that are in use.
            ns.run(
                &["iptables", "-A", "OUTPUT", "-j", "tw-entra-connector"],
                None,
            );
            ns.run(
                &["ip6tables", "-A", "OUTPUT", "-j", "tw-entra-connector"],
                None,
            );
        }
        for v6 in [false, true] {
            let fam = if v6 { "v6" } else { "v4" };
            assert_eq!(
                ipset_members(&ns, &format!("tw-entra-connector-{fam}"), v6),
                expected(&e.data, week, &["AzureCloud"], v6),
                "ipset {fam} after loading {week}"
            );
        }
        assert_eq!(
            ns.run(&["iptables", "-S", "tw-entra-connector"], None),
            "-N tw-entra-connector\n-A tw-entra-connector -p tcp -m multiport --dports 443,80 -m set --match-set tw-entra-connector-v4 dst -j ACCEPT\n"
        );
        assert_eq!(
            ns.run(&["ip6tables", "-S", "tw-entra-connector"], None),
            "-N tw-entra-connector\n-A tw-entra-connector -p tcp -m multiport --dports 443,80 -m set --match-set tw-entra-connector-v6 dst -j ACCEPT\n"
        );
    }
    let output = ns.run(&["iptables", "-S", "OUTPUT"], None);
    assert_eq!(
        output,
        "-P OUTPUT ACCEPT\n-A OUTPUT -j user-chain\n-A OUTPUT -j tw-entra-connector\n"
    );
    // No temporary set is left behind.
    let sets = ns.run(&["ipset", "list", "-n"], None);
    assert_eq!(sets, "tw-entra-connector-v4\ntw-entra-connector-v6\n");

    // More than 15 ports: the rule is split to fit `multiport`; ingress matches the source.
    ns.run(
        &["ipset", "restore"],
        Some(&e.new.join("storage-eu/storage-eu.ipset")),
    );
    ns.run(
        &["iptables-restore", "--noflush"],
        Some(&e.new.join("storage-eu/storage-eu.iptables")),
    );
    let rules = ns.run(&["iptables", "-S", "tw-storage-eu"], None);
    assert_eq!(rules.lines().count(), 3, "{rules}");
    assert!(
        rules.contains("-m set --match-set tw-storage-eu-v4 src -j ACCEPT"),
        "{rules}"
    );
    assert_eq!(
        ipset_members(&ns, "tw-storage-eu-v4", false),
        expected(
            &e.data,
            NEW,
            &["Storage.WestEurope", "Storage.NorthEurope"],
            false
        )
    );
}

/// Every regional AzureCloud tag of the newest shared Public file, in every format, checked by
/// the tools before publishing (`validate = "always"`) and loaded by them.
#[test]
fn every_regional_azurecloud_tag_loads_in_all_formats() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(ns) = Netns::new() else {
        return;
    };
    let newest = std::fs::read_dir(data.join("Public"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .max()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tagwall.toml"),
        "[output]\ndir = \"out\"\nvalidate = \"always\"\n\n[[ruleset]]\nname = \"regions\"\ntags = [\"AzureCloud.*\"]\nprotocol = \"tcp\"\nports = [443, 80]\n",
    )
    .unwrap();
    let tagwall = || common::tagwall(dir.path());
    tagwall().arg("import").arg(&newest).assert().success();
    tagwall().arg("emit").assert().success();
    let raw = common::raw_tags(&newest).1;
    let regional: Vec<&str> = raw
        .keys()
        .map(String::as_str)
        .filter(|t| t.starts_with("AzureCloud."))
        .collect();
    assert!(regional.len() >= 60, "{} regional tags", regional.len());
    let out = dir.path().join("out/regions");
    for f in ["nft", "ipset"] {
        let path = out.join(format!("regions.{f}"));
        match f {
            "nft" => ns.run(&["nft", "-f", path.to_str().unwrap()], None),
            _ => ns.run(&["ipset", "restore"], Some(&path)),
        };
    }
    ns.run(
        &["iptables-restore", "--noflush"],
        Some(&out.join("regions.iptables")),
    );
    ns.run(
        &["ip6tables-restore", "--noflush"],
        Some(&out.join("regions.ip6tables")),
    );
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        let want = common::merged(regional.iter().flat_map(|t| &raw[*t].1), v6);
        assert_eq!(
            ipset_members(&ns, &format!("tw-regions-{fam}"), v6),
            want,
            "ipset {fam}"
        );
        assert_eq!(
            nft_set(&ns, "tagwall", &format!("tw-regions-{fam}"), v6),
            want,
            "nft {fam}"
        );
    }
    for line in std::fs::read_to_string(out.join("regions.ipset"))
        .unwrap()
        .lines()
    {
        assert!(line.len() <= 120 || !line.starts_with('#'), "{line}");
    }
}

/// A file the loader refuses is never published: the tool's own message is the error.
#[tokio::test]
async fn the_tools_refuse_bad_files_before_publishing() {
    use tagwall::publish::validate::{check, Validate, ValidateError};
    if Netns::new().is_none() {
        return;
    }
    let spec: tagwall::rules::ruleset::RulesetSpec =
        toml::from_str("name = \"web\"\ntags = [\"AzureCloud\"]").unwrap();
    let r = spec.validate().unwrap();
    let nft = vec![("web.nft".to_string(), b"table inet table {\n}\n".to_vec())];
    match check(&r, &nft, Validate::Always).await {
        Err(ValidateError::Refused { tool, message, .. }) => {
            assert_eq!(tool, "nft -c -f");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let ipset = vec![(
        "web.ipset".to_string(),
        b"create tw-web-v4 hash:net family inet -exist\nadd tw-web-v4 10.0.0.0/33\n".to_vec(),
    )];
    match check(&r, &ipset, Validate::Always).await {
        Err(ValidateError::Refused { tool, message, .. }) => {
            assert_eq!(tool, "ipset restore");
            assert!(message.contains("out of range"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(check(&r, &ipset, Validate::Never).await.is_ok());
}
