//! Helpers shared by the integration tests: stores on both backends, the real data folder, and
//! small ServiceTags files made on the spot.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::json;
use sqlx::Connection;
use tagwall::store::{DbUrl, Store};

/// The real Microsoft files, when present. `TAGWALL_REQUIRE_SHARED=1` (set by `.ci/run`) turns
/// their absence into a failure instead of a skip.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/servicetags");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("TAGWALL_REQUIRE_SHARED").as_deref() != Ok("1"),
        "TAGWALL_REQUIRE_SHARED=1 but {} does not exist",
        dir.display()
    );
    eprintln!("skipping: {} does not exist", dir.display());
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
        eprintln!("skipping PostgreSQL: TAGWALL_TEST_POSTGRES_URL is not set");
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
