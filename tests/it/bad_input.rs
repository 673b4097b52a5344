//! Every kind of bad input named in the foundation issue: the message names the file and the
//! JSON path, the file is refused, the other files of the run still import, and nothing of the
//! bad file reaches the store.

use crate::common;

use std::path::Path;

use assert_cmd::Command;

fn tagwall(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tagwall").unwrap();
    cmd.current_dir(dir)
        .env_remove("TAGWALL_DB")
        .env_remove("TAGWALL_CONFIG");
    cmd
}

/// What the store holds: the snapshot list and the newest export.
fn state(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let list = tagwall(dir)
        .args(["snapshots", "--format", "json"])
        .output()
        .unwrap()
        .stdout;
    let export = tagwall(dir)
        .args(["export", "--raw"])
        .output()
        .unwrap()
        .stdout;
    (list, export)
}

/// Imports `bad` (named `name`) beside a good new week into a store holding week 1, and checks
/// the line printed for it, the exit code, and that only the good week was added.
fn refused(name: &str, bad: &[u8], args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let weeks = common::three_weeks();
    std::fs::write(dir.path().join(&weeks[0].0), &weeks[0].1).unwrap();
    tagwall(dir.path())
        .args(["import", &weeks[0].0])
        .assert()
        .success();
    let before = state(dir.path());

    std::fs::write(dir.path().join(name), bad).unwrap();
    let out = tagwall(dir.path())
        .arg("import")
        .args(args)
        .arg(name)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{name}: exit code");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim_end(),
        format!("failed    {name}: {expected}"),
        "{name}"
    );
    assert_eq!(state(dir.path()), before, "{name}: the store changed");

    // The same run with a good file too: the good one lands, the bad one does not. (A flag
    // applies to every file of a run, so this part is for flagless cases.)
    if !args.is_empty() {
        return;
    }
    std::fs::write(dir.path().join(&weeks[1].0), &weeks[1].1).unwrap();
    let out = tagwall(dir.path())
        .arg("import")
        .args(args)
        .args([name, weeks[1].0.as_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("1 imported, 0 already stored, 1 failed"),
        "{stdout}"
    );
    let list: serde_json::Value = serde_json::from_slice(&state(dir.path()).0).unwrap();
    let dates: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2025-01-06", "2025-01-13"], "{name}");
}

fn good() -> String {
    common::three_weeks()[2].1.clone()
}

const NAME: &str = "ServiceTags_Public_20250203.json";

#[test]
fn not_json() {
    refused(
        NAME,
        b"<html><body>Access denied by policy</body></html>",
        &[],
        "(top level): expected value at line 1 column 1",
    );
}

#[test]
fn truncated() {
    let text = good();
    let cut = &text[..text.find("52.0.1.0/24").unwrap()];
    refused(
        NAME,
        cut.as_bytes(),
        &[],
        "values[1].properties.addressPrefixes[1]: EOF while parsing a string at line 32 column 11",
    );
}

#[test]
fn empty_values() {
    refused(
        NAME,
        br#"{"changeNumber": 12, "cloud": "Public", "values": []}"#,
        &[],
        "values: the file lists no service tags: it is empty or truncated, download it again",
    );
}

#[test]
fn unknown_cloud() {
    refused(
        NAME,
        good().replace("\"cloud\": \"Public\"", "\"cloud\": \"AzureMars\"").as_bytes(),
        &[],
        "cloud: unknown cloud \"AzureMars\": expected one of Public, AzureGovernment, China, AzureGermany",
    );
}

#[test]
fn cloud_contradicting_the_flag() {
    refused(
        NAME,
        good().as_bytes(),
        &["--cloud", "china"],
        "cloud: the file is for cloud Public, not China: drop --cloud or pick the right file",
    );
}

#[test]
fn duplicate_tag_names() {
    let text = good().replace("\"name\": \"Storage\"", "\"name\": \"AzureCloud\"");
    refused(
        NAME,
        text.as_bytes(),
        &[],
        "values[1].name: tag \"AzureCloud\" appears twice (also at values[0]): the file is corrupt",
    );
}

#[test]
fn invalid_cidr() {
    let text = good().replace("52.0.1.0/24", "10.0.0.300/24");
    refused(
        NAME,
        text.as_bytes(),
        &[],
        "values[1].properties.addressPrefixes[1]: \"10.0.0.300/24\" is not a CIDR (expected an address and a length, such as 20.38.64.0/19)",
    );
}

#[test]
fn cidr_with_host_bits() {
    let text = good().replace("52.0.1.0/24", "52.0.1.7/24");
    refused(
        NAME,
        text.as_bytes(),
        &[],
        "values[1].properties.addressPrefixes[1]: \"52.0.1.7/24\" has host bits set (the network would be 52.0.1.0/24): the file is damaged",
    );
}

#[test]
fn file_over_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(65 * 1024 * 1024).unwrap();
    drop(file);
    refused(
        NAME,
        &std::fs::read(&path).unwrap(),
        &[],
        "the file is larger than the 64 MiB limit (Microsoft's files are about 4 MiB): check that it is a ServiceTags file",
    );
}

#[test]
fn gzip_that_does_not_decompress() {
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00];
    bytes.extend_from_slice(&[0xAB; 64]);
    refused(
        "ServiceTags_Public_20250203.json.gz",
        &bytes,
        &[],
        "the file looks gzip-compressed but does not decompress (incomplete deflate stream): download it again",
    );
}

#[test]
fn no_date_in_the_name_and_no_flag() {
    refused(
        "weekly.json",
        good().as_bytes(),
        &[],
        "no file date: name the file ServiceTags_<Cloud>_<YYYYMMDD>.json or pass --date YYYY-MM-DD",
    );
}

#[test]
fn trailing_bytes_leading_zeros_control_characters_and_long_names() {
    refused(
        NAME,
        format!("{}\n<script>", good()).as_bytes(),
        &[],
        "(after the top level): unexpected bytes after the JSON document (trailing characters at line 49 column 1): the file is damaged or not a ServiceTags file",
    );
    refused(
        NAME,
        good().replace("52.0.1.0/24", "052.0.1.0/24").as_bytes(),
        &[],
        "values[1].properties.addressPrefixes[1]: \"052.0.1.0/24\" has a leading zero in an octet or the prefix length (octal readers would see another network): the file is damaged",
    );
    refused(
        NAME,
        good().replace("\"region\": \"\"", "\"region\": \"\\u001b[2J\"").as_bytes(),
        &[],
        "values[0].properties.region: \"\\u{1b}[2J\" holds the control or invisible character U+001B: the file is corrupt",
    );
    let long = "X".repeat(300);
    refused(
        NAME,
        good().replace("\"name\": \"Storage\"", &format!("\"name\": \"{long}\"")).as_bytes(),
        &[],
        "values[1].name: tag name of 300 bytes: names must hold 1 to 256 bytes, the file is corrupt",
    );
}

#[test]
fn a_file_dated_in_the_future() {
    refused(
        "ServiceTags_Public_20991231.json",
        good().as_bytes(),
        &[],
        &format!(
            "file date 2099-12-31 is more than 2 days after today ({}, UTC): a future date would make this file the newest for every later run; check the file name or --date (delete a mistaken snapshot with `tagwall snapshots delete`)",
            chrono::Utc::now().date_naive()
        ),
    );
    refused(
        NAME,
        good().as_bytes(),
        &["--date", "+100000-01-01"],
        &format!(
            "file date +100000-01-01 is more than 2 days after today ({}, UTC): a future date would make this file the newest for every later run; check the file name or --date (delete a mistaken snapshot with `tagwall snapshots delete`)",
            chrono::Utc::now().date_naive()
        ),
    );
}

/// Devices and FIFOs are refused by name and at once (no read of /dev/zero, no hang on a FIFO);
/// a directory's links are followed once, loops included.
#[test]
fn devices_fifos_and_link_loops() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tagwall(dir.path())
            .timeout(std::time::Duration::from_secs(20))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["import", "--date", "2025-08-04", "/dev/zero"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        out.trim_end(),
        "failed    /dev/zero: it is a character device, not a regular file"
    );
    let fifo = dir.path().join("ServiceTags_Public_20250804.json");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (code, out) = run(&["import", "ServiceTags_Public_20250804.json"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("it is a FIFO, not a regular file"), "{out}");

    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let weeks = common::three_weeks();
    std::fs::write(tree.join(&weeks[0].0), &weeks[0].1).unwrap();
    std::os::unix::fs::symlink("..", tree.join("loop")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", tree.join("ServiceTags_Public_20250811.json")).unwrap();
    std::os::unix::fs::symlink(&weeks[0].0, tree.join("ServiceTags_Public_20250107.json")).unwrap();
    let (code, out) = run(&["import", "tree"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("imported").count(), 1, "{out}");
    assert!(
        out.contains(&weeks[0].0),
        "the real name, with the earliest date: {out}"
    );
    assert!(!out.contains("failed"), "{out}");
}

/// `snapshots delete`: asks for --yes, then removes the snapshot in one transaction; the next
/// import of the same file is new again.
#[test]
fn a_mistaken_snapshot_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let weeks = common::three_weeks();
    for (name, text) in &weeks {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    tagwall(dir.path())
        .args(["import", &weeks[0].0, &weeks[2].0])
        .assert()
        .success();
    let before = state(dir.path());
    tagwall(dir.path())
        .args(["import", &weeks[1].0])
        .assert()
        .success();
    let out = tagwall(dir.path())
        .args(["snapshots", "delete", "2025-01-13"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --yes to delete it"));
    let out = tagwall(dir.path())
        .args(["snapshots", "delete", "id:3", "--yes"])
        .assert()
        .success();
    let said = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        said.starts_with("deleted the Public snapshot id:3 of 2025-01-13"),
        "{said}"
    );
    assert_eq!(state(dir.path()), before);
    tagwall(dir.path())
        .args(["snapshots", "delete", "id:3", "--yes"])
        .assert()
        .failure();
}
