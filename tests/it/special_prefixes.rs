//! Unusual prefixes in Microsoft's file — an IPv4-mapped IPv6 prefix (which failed the
//! cisco-asa and fortios formats every week), loopback, link-local, multicast, unspecified,
//! documentation — are kept in the history as published, left out of every ruleset with a
//! warning, and every format publishes (checked by the real tools where they run). Against the
//! release binary, on the real Public week of 2025-07-28 with those prefixes added to
//! AzureCloud.

use crate::common;

use common::job::{prefixes_of, Job};
use common::shared_data;
use serde_json::Value;

const SPECIAL: [&str; 10] = [
    "::ffff:1.2.3.4/128",
    "::ffff:20.0.0.0/104",
    "127.0.0.1/32",
    "::1/128",
    "169.254.169.254/32",
    "fe80::/64",
    "224.0.0.251/32",
    "ff02::1/128",
    "192.0.2.0/24",
    "2001:db8::/48",
];

const SETTINGS: &str = r#"
[[ruleset]]
name = "entra"
tags = ["AzureCloud"]
protocol = "tcp"
ports = [443]
formats = ["txt", "nft", "ipset", "iptables", "csv", "json", "squid", "junos", "routeros", "cisco-asa", "fortios", "checkpoint", "powershell", "terraform-azure", "terraform-aws"]
"#;

#[test]
fn special_prefixes_are_left_out_of_every_format_with_a_warning() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, SETTINGS);
    job.add_edited_week(&shared, "20250728", "20250728", |doc| {
        prefixes_of(doc, "AzureCloud").extend(SPECIAL.iter().map(|p| Value::from(*p)));
    });
    // The import says what it found.
    let file = job.mirror.join("ServiceTags_Public_20250728.json");
    let (code, text) = job.run(&["import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("special-purpose prefix(es), such as"),
        "{text}"
    );
    // The history holds them as Microsoft published them.
    let (code, text) = job.run(&["lookup", "::ffff:1.2.3.4"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("AzureCloud"), "{text}");

    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "every format publishes: {text}");
    assert!(
        text.contains("left out 10 special-purpose prefix(es)"),
        "{text}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(job.out().join("last-run.json")).unwrap()).unwrap();
    let warnings = summary["rulesets"][0]["warnings"].to_string();
    assert!(warnings.contains("127.0.0.1/32 (loopback)"), "{warnings}");
    assert!(warnings.contains("and 5 more"), "{warnings}");
    let dir = job.out().join("entra");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        // Every line but comments and the warning itself (manifest.json, entra.json) names no
        // special prefix.
        for line in text.lines().filter(|l| {
            !l.starts_with('#') && !l.starts_with('!') && !l.contains("special-purpose prefix")
        }) {
            for bad in [
                "::ffff:",
                "127.0.0.1",
                "169.254.",
                "fe80::",
                "224.0.0.251",
                "ff02::",
                "192.0.2.",
                "2001:db8:",
            ] {
                assert!(!line.contains(bad), "{}: {line}", path.display());
            }
        }
    }
    assert!(files >= 17, "{files} files");
}
