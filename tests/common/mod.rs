//! Helpers shared by the integration tests: stores on both backends, the real data folder, and
//! small ServiceTags files made on the spot.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};
use sqlx::Connection;
use tagwall::store::{DbUrl, Store};

pub mod https;
pub mod job;
pub mod netns;
pub mod serve;
pub mod skip;
pub mod smtp;
pub mod tinyproxy;

/// A port free on 127.0.0.1 now (a server started next binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real Microsoft files, when present. `TAGWALL_REQUIRE_SHARED=1` (set by `.ci/run`) turns
/// their absence into a failure instead of a skip.
pub fn shared_data() -> Option<PathBuf> {
    // `.ci/run` points a test binary run as another user at a copy it can read.
    let dir = std::env::var_os("TAGWALL_SHARED_SERVICETAGS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/servicetags"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    skip::skip(skip::Needs {
        what: &format!("the real data {} does not exist", dir.display()),
        required_by: "TAGWALL_REQUIRE_SHARED",
        how: "put the shared data beside the repository, or set TAGWALL_SHARED_SERVICETAGS",
    });
    None
}

/// A store and whatever keeps it isolated (a temporary directory or a PostgreSQL schema).
pub struct TestStore {
    pub store: Store,
    pub url: DbUrl,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("test.db").display()
    ))
    .unwrap();
    let store = Store::open(&url).await.unwrap();
    TestStore {
        store,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL store in a schema of its own, when `TAGWALL_TEST_POSTGRES_URL` is set.
/// Panics (never skips) when the variable is set but the server cannot be used.
pub async fn postgres() -> Option<TestStore> {
    let Ok(base) = std::env::var("TAGWALL_TEST_POSTGRES_URL") else {
        skip::skip(skip::Needs {
            what: "PostgreSQL: TAGWALL_TEST_POSTGRES_URL is not set",
            required_by: "TAGWALL_TEST_POSTGRES",
            how: "set TAGWALL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test",
        });
        return None;
    };
    let schema = format!("tagwall_test_{}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("TAGWALL_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}")
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = DbUrl::parse(&format!("{base}{sep}options=-c%20search_path%3D{schema}")).unwrap();
    let store = Store::open(&url).await.unwrap();
    Some(TestStore {
        store,
        url,
        _dir: None,
    })
}

/// One tag of a made-up file: name, region, prefixes.
pub struct Tag<'a>(pub &'a str, pub &'a str, pub &'a [&'a str]);

/// A ServiceTags file in Microsoft's layout with the given tags (in the given order).
pub fn service_tags(cloud: &str, change_number: i64, tags: &[Tag]) -> String {
    let values: Vec<_> = tags
        .iter()
        .map(|Tag(name, region, prefixes)| {
            json!({
                "name": name,
                "id": name,
                "properties": {
                    "changeNumber": 1,
                    "region": region,
                    "regionId": if region.is_empty() { 0 } else { 7 },
                    "platform": "Azure",
                    "systemService": name.split('.').next().unwrap(),
                    "addressPrefixes": prefixes,
                    "networkFeatures": ["API", "NSG", "UDR", "FW"],
                }
            })
        })
        .collect();
    let doc = json!({ "changeNumber": change_number, "cloud": cloud, "values": values });
    serde_json::to_string_pretty(&doc).unwrap()
}

/// Three weeks of a small made-up Public cloud, each different from the last.
pub fn three_weeks() -> [(String, String); 3] {
    let w1 = service_tags(
        "Public",
        10,
        &[
            Tag(
                "AzureCloud",
                "",
                &["20.0.0.0/16", "20.1.0.0/16", "2603:1000::/40"],
            ),
            Tag("AzureCloud.westeurope", "westeurope", &["20.0.0.0/16"]),
            Tag("Storage", "", &["52.0.0.0/24", "52.0.1.0/24"]),
        ],
    );
    let w2 = service_tags(
        "Public",
        11,
        &[
            Tag("Storage", "", &["52.0.1.0/24", "52.0.2.0/24"]),
            Tag(
                "AzureCloud",
                "",
                &[
                    "20.0.0.0/16",
                    "20.1.0.0/16",
                    "20.2.0.0/16",
                    "2603:1000::/40",
                ],
            ),
            Tag(
                "AzureCloud.westeurope",
                "westeurope",
                &["20.0.0.0/16", "20.2.0.0/16"],
            ),
        ],
    );
    let w3 = service_tags(
        "Public",
        11,
        &[
            Tag("AzureCloud", "", &["20.0.0.0/16", "2603:1000::/40"]),
            Tag("Storage", "", &["52.0.0.0/24", "52.0.1.0/24"]),
        ],
    );
    [
        ("ServiceTags_Public_20250106.json".to_string(), w1),
        ("ServiceTags_Public_20250113.json".to_string(), w2),
        ("ServiceTags_Public_20250120.json".to_string(), w3),
    ]
}

/// The tags of a real file, read with serde_json alone: name -> (properties without the
/// prefixes, prefixes as written).
pub type Tags = BTreeMap<String, (Value, BTreeSet<String>)>;

pub fn raw_tags(path: &Path) -> (i64, Tags) {
    let bytes = tagwall::core::parse::decompress(std::fs::read(path).unwrap()).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let doc: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
    let mut tags = Tags::new();
    for v in doc["values"].as_array().unwrap() {
        let mut props = v["properties"].clone();
        let prefixes = props
            .as_object_mut()
            .unwrap()
            .remove("addressPrefixes")
            .unwrap();
        let set = prefixes
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        tags.insert(v["name"].as_str().unwrap().to_string(), (props, set));
    }
    (doc["changeNumber"].as_i64().unwrap(), tags)
}

/// Inclusive integer ranges of every prefix of one family of every tag, merged.
pub fn merged_tags(tags: &Tags, v6: bool) -> Vec<(u128, u128)> {
    merged(tags.values().flat_map(|(_, set)| set), v6)
}

/// Inclusive integer ranges of the prefixes of one family, merged (written here, apart from
/// tagwall's own `ranges` module, so tests have an independent computation).
pub fn merged<'a>(prefixes: impl IntoIterator<Item = &'a String>, v6: bool) -> Vec<(u128, u128)> {
    let mut ranges: Vec<(u128, u128)> = Vec::new();
    {
        for p in prefixes {
            let (addr, len) = p.split_once('/').unwrap();
            let len: u32 = len.parse().unwrap();
            let (start, bits) = match addr.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) if !v6 => (u128::from(u32::from(a)), 32),
                std::net::IpAddr::V6(a) if v6 => (u128::from(a), 128),
                _ => continue,
            };
            let size_minus_one = if bits - len == 128 {
                u128::MAX
            } else {
                (1u128 << (bits - len)) - 1
            };
            ranges.push((start, start + size_minus_one));
        }
    }
    merge_ranges(ranges)
}

/// Sorts and merges overlapping or adjacent inclusive ranges.
pub fn merge_ranges(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.sort();
    let mut out: Vec<(u128, u128)> = Vec::new();
    for (s, e) in ranges {
        if let Some(last) = out.last_mut() {
            if s <= last.1.saturating_add(1) {
                last.1 = last.1.max(e);
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

/// Compares `actual` with the committed file `tests/golden/NAME`; `TAGWALL_BLESS=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    if std::env::var("TAGWALL_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        actual, expected,
        "{name} differs from the golden file (TAGWALL_BLESS=1 rewrites it)"
    );
}

/// A directory with the settings `settings` and the first `weeks` of [`three_weeks`] imported.
pub fn imported(settings: &str, weeks: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tagwall.toml"), settings).unwrap();
    for (name, text) in three_weeks().into_iter().take(weeks) {
        let path = dir.path().join(&name);
        std::fs::write(&path, text).unwrap();
        tagwall(dir.path())
            .arg("import")
            .arg(&path)
            .assert()
            .success();
    }
    dir
}

/// `tagwall` run in `dir`, with the environment cleared of tagwall's own variables.
pub fn tagwall(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tagwall").unwrap();
    cmd.current_dir(dir);
    // Reports say when they were generated: a fixed time keeps them comparable with golden files.
    cmd.env("SOURCE_DATE_EPOCH", "1767225600");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The built binary as a plain process (to kill or signal), with the same environment as
/// [`tagwall`].
pub fn tagwall_process(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tagwall"));
    cmd.current_dir(dir);
    // Reports say when they were generated: a fixed time keeps them comparable with golden files.
    cmd.env("SOURCE_DATE_EPOCH", "1767225600");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Variables removed for every run of the binary: tagwall's own, and the machine's proxy
/// settings (only what a test sets reaches the network settings).
const CLEARED_ENV: &[&str] = &[
    "TAGWALL_DB",
    "TAGWALL_CONFIG",
    "RUST_LOG",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "TAGWALL_PROXY_USER",
    "TAGWALL_PROXY_PASSWORD",
    "TAGWALL_SMTP_USERNAME",
    "TAGWALL_SMTP_PASSWORD",
    "TAGWALL_SERVE_TOKENS",
];

/// Runs the command; its exit code, and its stdout then stderr as one text.
pub fn run_text(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs the command, expects success, returns its stdout.
pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// Runs one SQL statement on the store behind `url` (for tests that need a state tagwall would
/// not write).
pub async fn execute(url: &DbUrl, sql: &str) {
    let url = url.expose();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

/// The ids a query returns (one BIGINT column), on either backend.
pub async fn query_ids(url: &DbUrl, sql: &str) -> Vec<i64> {
    let url = url.expose();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    }
}

/// The fewest CIDRs covering inclusive ranges of one family, by a greedy cut written here
/// (apart from tagwall's aggregation).
pub fn minimal_cover(ranges: &[(u128, u128)], bits: u32) -> BTreeSet<String> {
    let size = |log: u32| {
        if log == 128 {
            u128::MAX
        } else {
            (1u128 << log) - 1
        }
    };
    let mut out = BTreeSet::new();
    for &(lo, hi) in ranges {
        let mut start = lo;
        loop {
            let mut log = if start == 0 {
                bits
            } else {
                start.trailing_zeros().min(bits)
            };
            while log > 0 && start.checked_add(size(log)).is_none_or(|end| end > hi) {
                log -= 1;
            }
            let net = if bits == 32 {
                format!("{}/{}", std::net::Ipv4Addr::from(start as u32), 32 - log)
            } else {
                format!("{}/{}", std::net::Ipv6Addr::from(start), 128 - log)
            };
            out.insert(net.parse::<ipnet::IpNet>().unwrap().to_string());
            let end = start + size(log);
            if end >= hi {
                break;
            }
            start = end + 1;
        }
    }
    out
}
