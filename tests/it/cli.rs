//! The built `tagwall` binary, run as users run it, in a temporary directory.

use crate::common;

use common::{golden, stdout, tagwall};
use predicates::prelude::*;

/// A directory holding the three made-up weeks, the second with CRLF line endings.
fn weeks_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("files")).unwrap();
    for (i, (name, text)) in common::three_weeks().into_iter().enumerate() {
        let text = if i == 1 {
            text.replace('\n', "\r\n")
        } else {
            text
        };
        std::fs::write(dir.path().join("files").join(name), text).unwrap();
    }
    dir
}

#[test]
fn import_then_list_export_and_tags_on_the_default_sqlite_store() {
    let dir = weeks_dir();
    let out = stdout(tagwall(dir.path()).args(["import", "files"]));
    assert_eq!(
        out,
        "imported  files/ServiceTags_Public_20250106.json: Public 2025-01-06 changeNumber 10, 3 tags, 6 prefixes (id:1)\n\
         imported  files/ServiceTags_Public_20250113.json: Public 2025-01-13 changeNumber 11, 3 tags, 8 prefixes (id:2)\n\
         imported  files/ServiceTags_Public_20250120.json: Public 2025-01-20 changeNumber 11, 2 tags, 4 prefixes (id:3)\n\
         3 imported, 0 already stored, 0 failed\n"
    );
    assert!(
        dir.path().join("tagwall.db").is_file(),
        "the default store is ./tagwall.db"
    );

    // Again: nothing new, exit 0.
    let again =
        stdout(tagwall(dir.path()).args(["import", "files/ServiceTags_Public_20250113.json"]));
    assert_eq!(again, "stored    files/ServiceTags_Public_20250113.json: already stored as id:2 (Public 2025-01-13)\n");

    let list = stdout(tagwall(dir.path()).arg("snapshots"));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].starts_with("id  cloud   file date   change  tags  prefixes  sha256"),
        "{list}"
    );
    assert!(
        lines[2].starts_with(" 2  Public  2025-01-13      11     3         8  "),
        "{list}"
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(tagwall(dir.path()).args([
        "snapshots",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json[2]["file_date"], "2025-01-20");
    assert_eq!(json[2]["prefixes"], 4);
    assert_eq!(json[1]["source"], "ServiceTags_Public_20250113.json");

    // --raw gives the original bytes (CRLF and all); the default is the canonical rendering.
    let original =
        std::fs::read(dir.path().join("files/ServiceTags_Public_20250113.json")).unwrap();
    let raw = tagwall(dir.path())
        .args(["export", "--at", "2025-01-15", "--raw"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(raw, original);
    let canonical = stdout(tagwall(dir.path()).args(["export", "--at", "latest~1"]));
    assert!(canonical.starts_with("{\n  \"changeNumber\": 11,\n  \"cloud\": \"Public\",\n  \"values\": [\n    {\n      \"name\": \"AzureCloud\","));
    assert!(!canonical.contains('\r'));

    tagwall(dir.path())
        .args(["export", "--at", "id:1", "-o", "week1.json"])
        .assert()
        .success()
        .stdout("");
    let written = std::fs::read_to_string(dir.path().join("week1.json")).unwrap();
    assert!(written.contains("\"changeNumber\": 10"));

    let tags = stdout(tagwall(dir.path()).args(["tags", "--at", "2025-01-13"]));
    assert_eq!(
        tags,
        "name                   region      systemService  networkFeatures  ipv4  ipv6\n\
         AzureCloud                         AzureCloud     API,NSG,UDR,FW      3     1\n\
         AzureCloud.westeurope  westeurope  AzureCloud     API,NSG,UDR,FW      2     0\n\
         Storage                            Storage        API,NSG,UDR,FW      2     0\n"
    );
    let matched: serde_json::Value = serde_json::from_str(&stdout(tagwall(dir.path()).args([
        "tags",
        "--at",
        "2025-01-13",
        "--match",
        "azurecloud.*",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(matched.as_array().unwrap().len(), 1);
    assert_eq!(matched[0]["name"], "AzureCloud.westeurope");
    assert_eq!(matched[0]["region_id"], 7);
}

#[test]
fn errors_name_the_input_and_what_to_do() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success();
    tagwall(dir.path())
        .args(["tags", "--match", "Nothing*"])
        .assert()
        .code(1)
        .stderr("error: no tag of Public 2025-01-20 matches \"Nothing*\": run `tagwall tags` to list them\n");
    tagwall(dir.path())
        .args(["export", "--cloud", "China"])
        .assert()
        .code(1)
        .stderr("error: no China snapshot matches latest: run `tagwall snapshots --cloud China` to list them\n");
    tagwall(dir.path())
        .args(["export", "--at", "yesterday"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("snapshot \"yesterday\" is not understood: use latest, latest~N, a date YYYY-MM-DD or id:N"));
    tagwall(dir.path())
        .args(["tags", "--cloud", "Mars"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown cloud \"Mars\""));
    tagwall(dir.path())
        .args(["import", "files/missing.json"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "failed    files/missing.json: could not read the file: No such file or directory",
        ));
    tagwall(dir.path())
        .args(["--db", "mysql://root:hunter2@db/x", "snapshots"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("store URL mysql://root:***@db/x is not supported")
                .and(predicate::str::contains("hunter2").not()),
        );
}

#[test]
fn the_store_comes_from_flag_environment_or_config_file() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["--db", "sqlite://flag.db", "import", "files"])
        .assert()
        .success();
    assert!(dir.path().join("flag.db").is_file());
    tagwall(dir.path())
        .env("TAGWALL_DB", "sqlite://env.db")
        .args(["import", "files"])
        .assert()
        .success();
    assert!(dir.path().join("env.db").is_file());
    std::fs::write(
        dir.path().join("tagwall.toml"),
        "[store]\nurl = \"sqlite://conf.db\"\n",
    )
    .unwrap();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success();
    assert!(dir.path().join("conf.db").is_file());
    assert!(!dir.path().join("tagwall.db").exists());
    std::fs::write(
        dir.path().join("other.toml"),
        "[store]\nurl = \"sqlite://other.db\"\nextra = 1\n",
    )
    .unwrap();
    tagwall(dir.path())
        .args(["--config", "other.toml", "snapshots"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("config file other.toml is not valid")
                .and(predicate::str::contains("unknown field `extra`")),
        );
}

#[test]
fn a_pipe_gets_no_progress_bar_and_no_log_noise() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn diff_between_weeks_as_text_and_json_with_exit_code() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success();
    let text = stdout(tagwall(dir.path()).args(["diff", "latest~2", "latest~1"]));
    assert_eq!(
        text,
        "Public 2025-01-06 (id:1, changeNumber 10) -> 2025-01-13 (id:2, changeNumber 11)\n\
         tags: +0 -0 ~3; prefixes: +3 -1; IPv4: +65792 addresses -256 addresses; IPv6: +0 /64s -0 /64s\n\
         note: AzureCloud changed but its changeNumber stayed 1\n\
         note: AzureCloud.westeurope changed but its changeNumber stayed 1\n\
         note: Storage changed but its changeNumber stayed 1\n\
         \n~ AzureCloud (+1 -0)\n    + 20.2.0.0/16\n\
         \n~ AzureCloud.westeurope (+1 -0)\n    + 20.2.0.0/16\n\
         \n~ Storage (+1 -1)\n    + 52.0.2.0/24\n    - 52.0.0.0/24\n"
    );
    tagwall(dir.path())
        .args(["diff", "--exit-code"])
        .assert()
        .code(1);
    tagwall(dir.path())
        .args(["diff", "latest", "latest", "--exit-code"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no content change"));
    let json: serde_json::Value = serde_json::from_str(&stdout(
        tagwall(dir.path()).args(["diff", "--tag", "storage", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(json["schema"], "tagwall.diff/1");
    assert_eq!(json["from"]["file_date"], "2025-01-13");
    assert_eq!(json["summary"]["tags_changed"], 1);
    assert_eq!(json["tags"][0]["name"], "Storage");
    assert_eq!(
        json["tags"][0]["prefixes_added"],
        serde_json::json!(["52.0.0.0/24"])
    );
    assert_eq!(
        json["tags"][0]["prefixes_removed"],
        serde_json::json!(["52.0.2.0/24"])
    );
    tagwall(dir.path())
        .args(["diff", "--tag", "Nothing*"])
        .assert()
        .code(1)
        .stderr("error: no tag of either snapshot matches --tag Nothing*: run `tagwall tags` to list them\n");
}

#[test]
fn diff_renderings_match_the_golden_files() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success();
    for (format, file) in [
        ("text", "diff.txt"),
        ("markdown", "diff.md"),
        ("json", "diff.json"),
        ("html", "diff.html"),
    ] {
        golden(
            file,
            &stdout(tagwall(dir.path()).args(["diff", "latest~2", "latest", "--format", format])),
        );
    }
    for (format, file) in [
        ("text", "history.txt"),
        ("json", "history.json"),
        ("html", "history.html"),
    ] {
        golden(
            file,
            &stdout(tagwall(dir.path()).args(["history", "Storage", "--format", format])),
        );
    }
}

#[test]
fn history_of_an_unknown_tag_says_how_to_find_names() {
    let dir = weeks_dir();
    tagwall(dir.path())
        .args(["import", "files"])
        .assert()
        .success();
    tagwall(dir.path())
        .args(["history", "storage"])
        .assert()
        .code(1)
        .stderr("error: Public has never had a tag named \"storage\" (names are exact and case-sensitive): run `tagwall tags --cloud Public --match '*storage*'`\n");
    let since = stdout(tagwall(dir.path()).args([
        "history",
        "AzureCloud.westeurope",
        "--since",
        "2025-01-13",
    ]));
    assert_eq!(
        since,
        "AzureCloud.westeurope 2025-01-13  id:2    ipv4      2  ipv6      0  +1 -0\n    + 20.2.0.0/16\n\
         AzureCloud.westeurope 2025-01-20  id:3    ipv4      0  ipv6      0  removed (-2)\n    - 20.0.0.0/16\n    - 20.2.0.0/16\n"
    );
}

/// A reader that goes away (`| head`) is not an error: every printing command exits 0 with
/// nothing on stderr when its stdout is closed before it writes.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in common::three_weeks() {
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    common::tagwall(dir.path())
        .args(["import", "."])
        .assert()
        .success();
    let commands: [&[&str]; 9] = [
        &["snapshots"],
        &["snapshots", "--format", "json"],
        &["tags", "--format", "json"],
        &["export"],
        &["export", "--raw"],
        &["diff", "latest~2", "latest", "--format", "json"],
        &["history", "AzureCloud"],
        &["lookup", "20.0.0.0/8", "--format", "json"],
        &["config", "example"],
    ];
    for args in commands {
        let mut child = common::tagwall_process(dir.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// PostgreSQL problems are reported at once and by name; TLS (`sslmode=require`) works.
#[test]
fn postgres_errors_come_at_once_and_tls_works() {
    let Ok(base) = std::env::var("TAGWALL_TEST_POSTGRES_URL") else {
        common::skip::skip(common::skip::Needs {
            what: "PostgreSQL: TAGWALL_TEST_POSTGRES_URL is not set",
            required_by: "TAGWALL_TEST_POSTGRES",
            how: "set TAGWALL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test",
        });
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (url, said) in [
        (
            "postgres://postgres@127.0.0.1:1/test",
            "could not reach PostgreSQL at 127.0.0.1:1: Connection refused",
        ),
        (
            "postgres://postgres@no-such-host.invalid/test",
            "could not reach PostgreSQL at no-such-host.invalid:5432",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = common::tagwall(dir.path())
            .args(["--db", url, "snapshots"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{url} took {:?}",
            started.elapsed()
        );
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    common::tagwall(dir.path())
        .args([
            "--db",
            &format!("{base}{sep}sslmode=require"),
            "snapshots",
            "--format",
            "json",
        ])
        .assert()
        .success();
}
