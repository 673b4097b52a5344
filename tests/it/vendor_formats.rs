//! The vendor formats (squid, junos, routeros, cisco-asa, fortios, checkpoint, terraform-azure,
//! terraform-aws): golden files on made-up weeks, and on a real Public week each file parsed
//! back (Squid by `squid -k parse` itself, HCL with hcl-rs, JSON, the CLI formats with small
//! parsers written here) must hold exactly the entries of `.ipv4.txt` and `.ipv6.txt`, within
//! each vendor's limits.
//!
//! `TAGWALL_TEST_SQUID=1` (set by `.ci/run`) makes a missing `squid` a failure.

use crate::common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use common::job::Job;
use common::{golden, imported, shared_data, stdout, tagwall};
use ipnet::{IpNet, Ipv4Net};

const VENDORS: [&str; 9] = [
    "squid",
    "powershell",
    "junos",
    "routeros",
    "cisco-asa",
    "fortios",
    "checkpoint",
    "terraform-azure",
    "terraform-aws",
];

fn ruleset(name: &str) -> String {
    let formats: Vec<String> = std::iter::once("txt")
        .chain(VENDORS)
        .map(|f| format!("\"{f}\""))
        .collect();
    format!(
        "[[ruleset]]\nname = \"{name}\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443, 80]\nformats = [{}]\n",
        formats.join(", ")
    )
}

/// Every file name a ruleset with all vendor formats writes, but the lists and the manifest.
fn vendor_files(name: &str) -> Vec<String> {
    [
        "squid.conf",
        "junos.txt",
        "rsc",
        "asa.txt",
        "fortios.conf",
        "checkpoint.json",
        "ps1",
        "azure.tf",
        "aws.tf",
    ]
    .iter()
    .map(|ext| format!("{name}.{ext}"))
    .collect()
}

#[test]
fn every_vendor_format_matches_its_golden_file() {
    let dir = imported(&ruleset("vendors"), 2);
    let out = stdout(tagwall(dir.path()).arg("emit"));
    assert!(out.starts_with("wrote     out/vendors"), "{out}");
    for name in vendor_files("vendors") {
        let text = std::fs::read_to_string(dir.path().join("out/vendors").join(&name)).unwrap();
        golden(&format!("rules/vendors/{name}"), &text);
    }
}

#[test]
fn a_vendor_format_that_cannot_hold_the_ruleset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (settings, error) in [
        (
            "[[ruleset]]\nname = \"a\"\ntags = [\"AzureCloud\"]\nprotocol = \"udp\"\nports = [53]\nformats = [\"squid\"]\n",
            "format \"squid\" allows TCP through a proxy",
        ),
        (
            "[[ruleset]]\nname = \"a\"\ntags = [\"AzureCloud\"]\ndirection = \"ingress\"\nformats = [\"squid\"]\n",
            "it needs direction \"egress\"",
        ),
        (
            "[[ruleset]]\nname = \"a\"\ntags = [\"AzureCloud\"]\nfamilies = [\"ipv6\"]\nformats = [\"terraform-azure\"]\n",
            "IPv4 only",
        ),
    ] {
        std::fs::write(dir.path().join("tagwall.toml"), settings).unwrap();
        let out = tagwall(dir.path()).args(["config", "check"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(error), "{err}");
    }
}

/// The entries of the ruleset's two lists.
fn lists(dir: &Path, name: &str) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
    let read = |family: &str| -> BTreeSet<IpNet> {
        std::fs::read_to_string(dir.join(format!("{name}.{family}.txt")))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    (read("ipv4"), read("ipv6"))
}

fn content(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// The lines that are not comments or empty.
fn commands<'a>(text: &'a str, comment: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(comment))
        .collect()
}

fn v4_mask(addr: &str, mask: &str) -> IpNet {
    let mask: Ipv4Addr = mask.parse().unwrap();
    let len = u32::from(mask).leading_ones();
    assert_eq!(u32::from(mask).count_ones(), len, "a contiguous mask");
    IpNet::V4(Ipv4Net::new(addr.parse().unwrap(), len as u8).unwrap())
}

fn union(a: &BTreeSet<IpNet>, b: &BTreeSet<IpNet>) -> BTreeSet<IpNet> {
    a.union(b).copied().collect()
}

fn check_squid(dir: &Path, name: &str, all: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.squid.conf"));
    let mut got = BTreeSet::new();
    for line in commands(&text, "#") {
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["acl", acl, "dst", cidr] if *acl == format!("tw-{name}") => {
                assert!(got.insert(cidr.parse().unwrap()), "{cidr} twice");
            }
            ["acl", acl, "port", "443", "80"] if *acl == format!("tw-{name}-ports") => {}
            _ => panic!("unexpected squid line {line}"),
        }
    }
    assert_eq!(&got, all);
    // Squid itself reads it, with the http_access lines its header suggests.
    let Some(squid) = ["/usr/sbin/squid", "/usr/bin/squid"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        common::skip::skip(common::skip::Needs {
            what: "squid is not installed",
            required_by: "TAGWALL_TEST_SQUID",
            how: "apt-get install squid",
        });
        return;
    };
    let conf = dir.join("squid-test.conf");
    std::fs::write(
        &conf,
        format!(
            "http_port 127.0.0.1:3199\ninclude {}\nhttp_access allow CONNECT tw-{name}-ports tw-{name}\n\
             http_access allow !CONNECT tw-{name}-ports tw-{name}\nhttp_access deny all\n",
            dir.join(format!("{name}.squid.conf")).display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(squid)
        .args(["-k", "parse", "-f"])
        .arg(&conf)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "squid -k parse: {log}");
    assert!(!log.contains("FATAL") && !log.contains("ERROR"), "{log}");
    assert!(
        log.contains(&format!("Processing: acl tw-{name} dst")),
        "{log}"
    );
    std::fs::remove_file(conf).unwrap();
}

fn check_junos(dir: &Path, name: &str, v4: &BTreeSet<IpNet>, v6: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.junos.txt"));
    let mut got = [BTreeSet::new(), BTreeSet::new()];
    let mut deleted = [false, false];
    for line in commands(&text, "#") {
        let w: Vec<&str> = line.split(' ').collect();
        let family = |list: &str| match list.strip_prefix(&format!("tw-{name}-")) {
            Some("v4") => 0,
            Some("v6") => 1,
            _ => panic!("not the ruleset's list: {line}"),
        };
        match w.as_slice() {
            ["delete", "policy-options", "prefix-list", list] => deleted[family(list)] = true,
            ["set", "policy-options", "prefix-list", list, cidr] => {
                let f = family(list);
                assert!(deleted[f], "deleted before it is set: {line}");
                got[f].insert(cidr.parse::<IpNet>().unwrap());
            }
            _ => panic!("unexpected junos line {line}"),
        }
    }
    assert_eq!((&got[0], &got[1]), (v4, v6));
}

fn check_routeros(dir: &Path, name: &str, v4: &BTreeSet<IpNet>, v6: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.rsc"));
    let mut got = [BTreeSet::new(), BTreeSet::new()];
    let mut removed = [false, false];
    for line in commands(&text, "#") {
        let (f, rest) = if let Some(r) = line.strip_prefix("/ip firewall address-list ") {
            (0, r)
        } else if let Some(r) = line.strip_prefix("/ipv6 firewall address-list ") {
            (1, r)
        } else {
            panic!("unexpected routeros line {line}");
        };
        if rest == format!("remove [find where list=\"tw-{name}\" comment=\"tagwall-{name}\"]") {
            removed[f] = true;
            continue;
        }
        let w: Vec<&str> = rest.split(' ').collect();
        let ["add", list, address, comment] = w.as_slice() else {
            panic!("unexpected routeros line {line}");
        };
        assert_eq!(*list, format!("list=tw-{name}"));
        assert_eq!(*comment, format!("comment=tagwall-{name}"));
        assert!(removed[f], "the old entries go first: {line}");
        got[f].insert(
            address
                .strip_prefix("address=")
                .unwrap()
                .parse::<IpNet>()
                .unwrap(),
        );
    }
    assert_eq!((&got[0], &got[1]), (v4, v6));
}

fn check_asa(dir: &Path, name: &str, all: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.asa.txt"));
    let lines = commands(&text, "!");
    let group = lines[0].strip_prefix("object-group network ").unwrap();
    assert!(group.starts_with(&format!("tw-{name}-")), "{group}");
    assert_eq!(*lines.last().unwrap(), "exit");
    let mut got = BTreeSet::new();
    for line in &lines[1..lines.len() - 1] {
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["", "description", ..] => assert!(line.len() <= 212),
            ["", "network-object", addr, mask] => {
                got.insert(v4_mask(addr, mask));
            }
            ["", "network-object", prefix] => {
                got.insert(prefix.parse::<IpNet>().unwrap());
            }
            _ => panic!("unexpected asa line {line}"),
        }
    }
    assert_eq!(&got, all);
}

fn check_fortios(dir: &Path, name: &str, v4: &BTreeSet<IpNet>, v6: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.fortios.conf"));
    let mut table = "";
    let mut edit = String::new();
    let mut addresses: std::collections::BTreeMap<String, IpNet> = Default::default();
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in commands(&text, "#") {
        let t = line.trim();
        if let Some(tb) = t.strip_prefix("config firewall ") {
            table = match tb {
                "address" | "address6" | "addrgrp" | "addrgrp6" => tb,
                _ => panic!("{line}"),
            };
        } else if let Some(n) = t.strip_prefix("edit ") {
            edit = n.trim_matches('"').to_string();
        } else if let Some(rest) = t.strip_prefix("set subnet ") {
            assert_eq!(table, "address");
            let (a, m) = rest.split_once(' ').unwrap();
            addresses.insert(edit.clone(), v4_mask(a, m));
        } else if let Some(p) = t.strip_prefix("set ip6 ") {
            assert_eq!(table, "address6");
            addresses.insert(edit.clone(), p.parse().unwrap());
        } else if let Some(m) = t
            .strip_prefix("set member ")
            .or(t.strip_prefix("append member "))
        {
            assert!(table.starts_with("addrgrp"));
            let members = groups.entry(edit.clone()).or_default();
            if t.starts_with("set ") {
                assert!(members.is_empty());
            }
            members.extend(m.split(' ').map(|n| n.trim_matches('"').to_string()));
        } else {
            assert!(t == "next" || t == "end", "unexpected fortios line {line}");
        }
    }
    for (family, want) in [("v4", v4), ("v6", v6)] {
        let top = &groups[&format!("tw-{name}-{family}")];
        let mut got = BTreeSet::new();
        for part in top {
            let members = &groups[part];
            assert!(members.len() <= 600, "{part}: {} members", members.len());
            got.extend(members.iter().map(|m| addresses[m]));
        }
        assert_eq!(&got, want, "{family}");
    }
}

fn check_checkpoint(
    dir: &Path,
    name: &str,
    v4: &BTreeSet<IpNet>,
    v6: &BTreeSet<IpNet>,
) -> Vec<String> {
    let doc: serde_json::Value =
        serde_json::from_str(&content(dir, &format!("{name}.checkpoint.json"))).unwrap();
    assert_eq!(doc["version"], "1.0");
    let objects = doc["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2);
    let mut ids = Vec::new();
    for (o, (family, want)) in objects.iter().zip([("v4", v4), ("v6", v6)]) {
        assert_eq!(o["name"], format!("tw-{name}-{family}"));
        let id = o["id"].as_str().unwrap();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert!(o["description"].as_str().unwrap().contains(name));
        let got: BTreeSet<IpNet> = o["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(&got, want, "{family}");
        ids.push(id.to_string());
    }
    ids
}

fn check_powershell(dir: &Path, name: &str, all: &BTreeSet<IpNet>) {
    let text = content(dir, &format!("{name}.ps1"));
    let mut chunks: Vec<Vec<IpNet>> = Vec::new();
    let mut open = false;
    for line in commands(&text, "#") {
        if line == "$Chunks.Add([string[]]@(" {
            assert!(!open);
            open = true;
            chunks.push(Vec::new());
        } else if line == "))" {
            open = false;
        } else if open {
            let cidr = line.trim().trim_end_matches(',').trim_matches('\'');
            chunks.last_mut().unwrap().push(cidr.parse().unwrap());
        }
    }
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 1000));
    let got: BTreeSet<IpNet> = chunks.iter().flatten().copied().collect();
    assert_eq!(
        got.len(),
        chunks.iter().map(Vec::len).sum::<usize>(),
        "no entry twice"
    );
    assert_eq!(&got, all);
    for needed in [
        "[CmdletBinding(SupportsShouldProcess = $true)]",
        &format!("$Group = 'tagwall-{name}'"),
        "-Direction Outbound -Action Allow -Protocol TCP -RemotePort '443','80' -RemoteAddress $chunk",
        "$PSCmdlet.ShouldProcess($_.Name, 'Remove-NetFirewallRule')",
    ] {
        assert!(text.contains(needed), "{needed}");
    }
    // The new rules are made before the old ones go.
    assert!(
        text.find("New-NetFirewallRule").unwrap() < text.find("Remove-NetFirewallRule").unwrap()
    );
}

/// The resources of a Terraform file: (type, label, body).
fn resources(text: &str) -> Vec<(String, String, hcl::Body)> {
    let body: hcl::Body = hcl::from_str(text).unwrap_or_else(|e| panic!("not HCL: {e}"));
    body.blocks()
        .filter(|b| b.identifier() == "resource")
        .map(|b| {
            let labels: Vec<String> = b.labels().iter().map(|l| l.as_str().to_string()).collect();
            (labels[0].clone(), labels[1].clone(), b.body().clone())
        })
        .collect()
}

fn attr<'b>(body: &'b hcl::Body, key: &str) -> &'b hcl::Expression {
    body.attributes()
        .find(|a| a.key() == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .expr()
}

fn string(e: &hcl::Expression) -> String {
    match e {
        hcl::Expression::String(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn check_terraform(dir: &Path, name: &str, v4: &BTreeSet<IpNet>, v6: &BTreeSet<IpNet>) {
    let mut azure = BTreeSet::new();
    for (kind, _, body) in resources(&content(dir, &format!("{name}.azure.tf"))) {
        assert_eq!(kind, "azurerm_ip_group");
        let hcl::Expression::Array(cidrs) = attr(&body, "cidrs") else {
            panic!("cidrs is not a list");
        };
        assert!(!cidrs.is_empty() && cidrs.len() <= 5000, "{}", cidrs.len());
        for c in cidrs {
            let net: IpNet = string(c).parse().unwrap();
            assert!(matches!(net, IpNet::V4(_)), "IPv4 only: {net}");
            assert!(azure.insert(net));
        }
    }
    assert_eq!(&azure, v4);
    let mut aws = [BTreeSet::new(), BTreeSet::new()];
    for (kind, _, body) in resources(&content(dir, &format!("{name}.aws.tf"))) {
        assert_eq!(kind, "aws_ec2_managed_prefix_list");
        let family = string(attr(&body, "address_family"));
        let entries: Vec<IpNet> = body
            .blocks()
            .filter(|b| b.identifier() == "entry")
            .map(|b| string(attr(b.body(), "cidr")).parse().unwrap())
            .collect();
        let hcl::Expression::Number(max) = attr(&body, "max_entries") else {
            panic!("max_entries is not a number");
        };
        assert_eq!(max.as_u64(), Some(entries.len() as u64));
        assert!(
            !entries.is_empty() && entries.len() <= 1000,
            "{}",
            entries.len()
        );
        let f = match family.as_str() {
            "IPv4" => 0,
            "IPv6" => 1,
            other => panic!("{other}"),
        };
        for e in entries {
            assert_eq!(
                matches!(e, IpNet::V4(_)),
                f == 0,
                "one family per list: {e}"
            );
            assert!(aws[f].insert(e));
        }
    }
    assert_eq!((&aws[0], &aws[1]), (v4, v6));
}

#[test]
fn on_a_real_week_every_vendor_file_holds_exactly_the_lists() {
    let Some(shared) = shared_data() else { return };
    let name = "entra-connector";
    let job = Job::new(None, &ruleset(name));
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let dir = job.out().join(name);
    let (v4, v6) = lists(&dir, name);
    assert!(v4.len() > 1000 && v6.len() > 1000, "a real AzureCloud week");
    let all = union(&v4, &v6);
    check_squid(&dir, name, &all);
    check_junos(&dir, name, &v4, &v6);
    check_routeros(&dir, name, &v4, &v6);
    check_asa(&dir, name, &all);
    check_powershell(&dir, name, &all);
    check_fortios(&dir, name, &v4, &v6);
    let ids = check_checkpoint(&dir, name, &v4, &v6);
    check_terraform(&dir, name, &v4, &v6);
    let manifest: serde_json::Value =
        serde_json::from_str(&content(&dir, "manifest.json")).unwrap();
    let listed: BTreeSet<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for f in vendor_files(name) {
        assert!(listed.contains(f.as_str()), "{f} in the manifest");
    }
    // The next week: other entries, the same Check Point ids, a new ASA group.
    let group = |d: &Path| {
        content(d, &format!("{name}.asa.txt"))
            .lines()
            .find(|l| l.starts_with("object-group"))
            .unwrap()
            .to_string()
    };
    let first_group = group(&dir);
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let (v4, v6) = lists(&dir, name);
    assert_eq!(check_checkpoint(&dir, name, &v4, &v6), ids);
    assert_ne!(group(&dir), first_group, "a new list is a new group");
    check_fortios(&dir, name, &v4, &v6);
    check_terraform(&dir, name, &v4, &v6);
}

#[test]
fn the_longest_ruleset_name_fits_every_format() {
    let name = "a234567890-b234567890_c23456789";
    assert_eq!(name.len(), 31);
    let dir = imported(&ruleset(name), 1);
    tagwall(dir.path()).arg("emit").assert().success();
    for file in vendor_files(name) {
        let text = std::fs::read_to_string(dir.path().join("out").join(name).join(&file)).unwrap();
        assert!(text.lines().all(|l| l.len() <= 512), "{file}");
        assert!(
            text.contains(&name.replace('-', "_")) || text.contains(name),
            "{file}"
        );
    }
}

#[test]
fn split_entries_writes_parts_and_vendor_limit_refuses_a_list_too_long() {
    let Some(shared) = shared_data() else { return };
    let name = "entra";
    let job = Job::new(
        None,
        &format!("[[ruleset]]\nname = \"{name}\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\nsplit_entries = 500\nvendor_limit = 500\n"),
    );
    job.add_week(&shared, "20250721");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let dir = job.out().join(name);
    let (v4, v6) = lists(&dir, name);
    let manifest: serde_json::Value =
        serde_json::from_str(&content(&dir, "manifest.json")).unwrap();
    let listed: BTreeSet<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    for (family, want) in [("ipv4", &v4), ("ipv6", &v6)] {
        let parts = want.len().div_ceil(500);
        let mut got = Vec::new();
        for part in 1..=parts {
            let file = format!("{name}.{family}.part-{part}.txt");
            assert!(listed.contains(&file), "{file} in the manifest");
            let lines: Vec<IpNet> = content(&dir, &file)
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
            assert!(!lines.is_empty() && lines.len() <= 500, "{file}");
            got.extend(lines);
        }
        assert!(!dir
            .join(format!("{name}.{family}.part-{}.txt", parts + 1))
            .exists());
        assert_eq!(got.len(), want.len());
        assert_eq!(&got.into_iter().collect::<BTreeSet<_>>(), want, "{family}");
    }
    // Without parts, a limit the lists exceed fails the ruleset and keeps what is published.
    std::fs::write(
        job.path().join("tagwall.toml"),
        std::fs::read_to_string(job.path().join("tagwall.toml"))
            .unwrap()
            .replace("split_entries = 500\n", ""),
    )
    .unwrap();
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("over vendor_limit = 500: the firewall would cut it off"),
        "{text}"
    );
    assert_eq!(lists(&dir, name), (v4, v6), "the previous lists stay");
}

#[test]
fn the_placeholder_names_are_the_files_written() {
    use tagwall::core::ranges::Family;
    use tagwall::rules::format::Format;
    let all: Vec<String> = Format::ALL
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let settings = format!(
        "[[ruleset]]\nname = \"every\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443]\nformats = [{}]\n",
        all.join(", ")
    );
    let dir = imported(&settings, 1);
    tagwall(dir.path()).arg("emit").assert().success();
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("out/every"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut expected: Vec<String> = Format::ALL
        .iter()
        .flat_map(|f| f.suffixes(&[Family::V4, Family::V6]))
        .map(|s| format!("every.{s}"))
        .chain(["manifest.json".to_string()])
        .collect();
    expected.sort();
    assert_eq!(written, expected);
}
