//! `tagwall emit`, `lookup`, `config check|example` and `aggregate`, run as users run them on the
//! three made-up weeks of `common::three_weeks`. Firewall files are compared with golden files.

use crate::common;

use common::{golden, stdout, tagwall};
use predicates::prelude::*;

const CONFIG: &str = r#"
[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud"]
protocol = "tcp"
ports = [443, 80]

[[ruleset]]
name = "storage"
tags = ["Storage*"]
families = ["ipv4"]
max_entries = 1
direction = "ingress"
formats = ["txt", "csv", "json"]
"#;

/// A directory with the settings above and the first `weeks` made-up weeks imported.
fn store_with(weeks: usize) -> tempfile::TempDir {
    common::imported(CONFIG, weeks)
}

#[test]
fn emit_writes_every_format_then_leaves_an_unchanged_set_alone() {
    let dir = store_with(2);
    let out = stdout(tagwall(dir.path()).arg("emit"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("wrote     out/entra-connector: Public 2025-01-13 (id:2); IPv4: 2 entries, 196608 addresses; IPv6: 1 entries, 16777216 /64s; change: IPv4: newly allowed 196608 addresses in 2 ranges"),
        "{out}"
    );
    assert!(
        lines[0].contains("; firewall entries +3 / -0; checked by "),
        "{out}"
    );
    assert!(
        lines[1].starts_with("wrote     out/storage: Public 2025-01-13 (id:2); IPv4: 1 entries, 1024 addresses; change: IPv4: newly allowed 1024 addresses in 1 range"),
        "{out}"
    );
    assert!(
        lines[1].ends_with(
            "checked by line checks (no nft or ipset format: no firewall tool loads these files)"
        ),
        "{out}"
    );
    let dir_of = |name: &str| dir.path().join("out").join(name);
    let mut names: Vec<String> = std::fs::read_dir(dir_of("entra-connector"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "entra-connector.csv",
            "entra-connector.ip6tables",
            "entra-connector.ipset",
            "entra-connector.iptables",
            "entra-connector.ipv4.txt",
            "entra-connector.ipv6.txt",
            "entra-connector.json",
            "entra-connector.nft",
            "entra-connector.txt",
            "manifest.json"
        ]
    );
    for name in &names {
        let text = std::fs::read_to_string(dir_of("entra-connector").join(name)).unwrap();
        golden(&format!("rules/{name}"), &text);
    }
    for name in ["storage.csv", "storage.txt", "manifest.json"] {
        let text = std::fs::read_to_string(dir_of("storage").join(name)).unwrap();
        golden(&format!("rules/storage/{name}"), &text);
    }
    // The manifest lists every other file with its sha256.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir_of("storage").join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["ipv4"]["extra_addresses"], 512);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 4);

    let again = stdout(tagwall(dir.path()).args(["emit", "--ruleset", "storage"]));
    assert!(
        again.starts_with("unchanged out/storage: Public 2025-01-13 (id:2)"),
        "{again}"
    );
    let older = stdout(tagwall(dir.path()).args(["emit", "--at", "2025-01-06", "--out", "o2"]));
    assert!(
        older.starts_with("wrote     o2/entra-connector: Public 2025-01-06 (id:1)"),
        "{older}"
    );
}

#[test]
fn emit_refuses_a_selector_that_matches_nothing_and_writes_nothing_for_it() {
    let dir = store_with(1);
    std::fs::write(
        dir.path().join("tagwall.toml"),
        "[[ruleset]]\nname = \"a\"\ntags = [\"AzureCloud\", \"AzureClod\"]\n",
    )
    .unwrap();
    tagwall(dir.path())
        .arg("emit")
        .assert()
        .code(1)
        .stdout("failed    ruleset a: tags entry \"AzureClod\" matches no tag of the Public snapshot of 2025-01-06: check the spelling with `tagwall tags --cloud Public` (a renamed or retired tag must be removed from the ruleset)\n");
    assert!(!dir.path().join("out/a").exists());
    tagwall(dir.path())
        .args(["emit", "--ruleset", "b"])
        .assert()
        .code(1)
        .stderr("error: no ruleset named \"b\" in tagwall.toml: it defines a\n");
}

#[test]
fn bad_settings_name_the_file_the_ruleset_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (text, message) in [
        (
            "[[ruleset]]\nname = \"a\"\ntags = [\"X\"]\nport = [443]\n",
            "unknown field `port`",
        ),
        (
            "[[ruleset]]\nname = \"Entra Connector\"\ntags = [\"X\"]\n",
            "ruleset #1 (\"Entra Connector\"): name \"Entra Connector\" is not valid: use 1-31 of a-z, 0-9, '_' and '-'",
        ),
        (
            "[[ruleset]]\nname = \"a\"\ntags = [\"X\"]\nports = [443]\n",
            "ruleset #1 (\"a\"): ports need a protocol: add protocol = \"tcp\" or \"udp\"",
        ),
        ("[outptu]\ndir = \"x\"\n", "unknown field `outptu`"),
        (
            "[[ruleset]]\nname = \"a-b\"\ntags = [\"X\"]\n[[ruleset]]\nname = \"a_b\"\ntags = [\"X\"]\nformats = [\"terraform-aws\"]\n",
            "the names \"a-b\" and \"a_b\" give the same Terraform variable and output names (tw_a_b_…): rename one",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        tagwall(dir.path())
            .args(["config", "check"])
            .arg(&path)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(message).and(predicate::str::contains("bad.toml")));
    }
    tagwall(dir.path())
        .args(["config", "check"])
        .assert()
        .code(1)
        .stderr("error: no settings file to check: name one, or create ./tagwall.toml (`tagwall config example > tagwall.toml`)\n");

    // A valid file with no store yet: checked, and no store is created by checking.
    std::fs::write(dir.path().join("tagwall.toml"), CONFIG).unwrap();
    let out = stdout(tagwall(dir.path()).args(["config", "check"]));
    assert!(out.contains("entra-connector: not checked against data: the store sqlite://tagwall.db does not exist yet"), "{out}");
    assert!(!dir.path().join("tagwall.db").exists());
}

#[test]
fn config_check_shows_each_selection_and_the_example_is_valid() {
    let dir = store_with(2);
    let out = stdout(tagwall(dir.path()).args(["config", "check"]));
    // The tools that check the files are the machine's: the golden file has all of them (CI).
    let tools = "  checked by: nft, ipset, iptables-restore, ip6tables-restore\n";
    let out = match out
        .lines()
        .find(|l| l.starts_with("  checked by: ") && l.contains("nft"))
    {
        Some(line) if !out.contains(tools) => {
            eprintln!("note: this machine lacks some firewall tools: {line}");
            out.replacen(&format!("{line}\n"), tools, 1)
        }
        _ => out,
    };
    golden("rules/config-check.txt", &out);

    // The example, checked against the made-up store, whose weeks lack AzureActiveDirectory
    // and the storage tags: both rulesets are reported, each entry that matches nothing named.
    let example = stdout(tagwall(dir.path()).args(["config", "example"]));
    assert!(example.contains("name = \"entra-connector\""));
    std::fs::write(dir.path().join("example.toml"), &example).unwrap();
    let check = tagwall(dir.path())
        .args(["config", "check", "example.toml"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let check = String::from_utf8(check).unwrap();
    assert!(
        check
            .contains("entra-connector: error: tags entry \"AzureActiveDirectory\" matches no tag"),
        "{check}"
    );
    assert!(
        check.contains("storage-eu: error: tags entry \"Storage.WestEurope\" matches no tag"),
        "{check}"
    );
}

#[test]
fn lookup_names_tags_rulesets_and_history() {
    let dir = store_with(3);
    let out = stdout(tagwall(dir.path()).args(["lookup", "20.0.0.5", "--history"]));
    golden("rules/lookup.txt", &out);
    // The budgeted ruleset covers 52.0.0.0/22 for two /24s of Storage in the second week: the
    // list it emits at the snapshot looked at decides, computed from the store (no `emit`).
    let latest = stdout(tagwall(dir.path()).args(["lookup", "52.0.3.1"]));
    assert!(
        latest.contains("storage does not allow it: none of its selected tags holds it"),
        "{latest}"
    );
    let second = stdout(tagwall(dir.path()).args(["lookup", "52.0.3.1", "--at", "2025-01-13"]));
    assert!(second.contains("storage allows it: its emitted list covers it: max_entries widened the entries beyond the selected tags"), "{second}");
    // Gone since the third week: in no tag now, with its history.
    let gone =
        stdout(tagwall(dir.path()).args(["lookup", "20.2.0.1", "--cloud", "public", "--history"]));
    assert!(
        gone.starts_with("20.2.0.1 in Public 2025-01-20 (id:3): in no tag\n"),
        "{gone}"
    );
    assert!(gone.contains("  AzureCloud: 2025-01-13\n"), "{gone}");
    // A network partly in a tag; JSON; an older snapshot.
    let json = stdout(tagwall(dir.path()).args([
        "lookup",
        "52.0.0.0/22",
        "--at",
        "2025-01-13",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["clouds"][0]["tags"][0]["name"], "Storage");
    assert_eq!(v["clouds"][0]["tags"][0]["holds"], "part");
    assert_eq!(
        v["clouds"][0]["tags"][0]["prefixes"],
        serde_json::json!(["52.0.1.0/24", "52.0.2.0/24"])
    );
    tagwall(dir.path())
        .args(["lookup", "20.0.0.5/24"])
        .assert()
        .code(1)
        .stderr("error: \"20.0.0.5/24\" has host bits set: did you mean 20.0.0.0/24?\n");
}

#[test]
fn aggregate_merges_stdin_and_reports_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let input = "# a list\n10.0.0.0/25\n10.0.0.128/25  # neighbour\n\n10.0.2.0/24\n2603:1000::/40\n2603:1000:100::/40\n192.168.1.1\n";
    tagwall(dir.path())
        .arg("aggregate")
        .write_stdin(input)
        .assert()
        .success()
        .stdout("10.0.0.0/24\n10.0.2.0/24\n192.168.1.1/32\n2603:1000::/39\n");
    tagwall(dir.path())
        .args(["aggregate", "--max-entries", "1"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout("0.0.0.0/0\n2603:1000::/39\n")
        .stderr(predicate::str::contains("IPv4: 1 CIDRs cover"));
    tagwall(dir.path())
        .arg("aggregate")
        .write_stdin("10.0.0.0/24\n10.0.0.1/24\n")
        .assert()
        .code(1)
        .stderr(
            "error: stdin line 2: \"10.0.0.1/24\" has host bits set: did you mean 10.0.0.0/24?\n",
        );
}
