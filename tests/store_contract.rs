//! One story, run unchanged on SQLite and on PostgreSQL: whatever a user does through the store
//! must give the same answers on both backends.

mod common;

use chrono::NaiveDate;
use common::{three_weeks, TestStore};
use tagwall::core::canonical::{self, Style};
use tagwall::core::model::Cloud;
use tagwall::core::parse;
use tagwall::store::import::{file_date_from_name, import_bytes, FileOutcome};
use tagwall::store::{NewPublish, SnapRef, Store, StoreError, Validators};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn import(store: &Store, name: &str, text: &str) -> FileOutcome {
    let day = file_date_from_name(std::path::Path::new(name)).unwrap();
    import_bytes(store, text.as_bytes().to_vec(), name, day, None)
        .await
        .unwrap()
}

fn canonical_of(text: &str) -> Vec<u8> {
    canonical::render(
        &parse::parse(text.as_bytes(), None).unwrap().snapshot,
        Style::default(),
    )
}

async fn story(t: TestStore) {
    let store = &t.store;
    let weeks = three_weeks();
    // Backfill out of order: newest, oldest, middle.
    for i in [2, 0, 1] {
        let (name, text) = &weeks[i];
        assert!(
            matches!(
                import(store, name, text).await,
                FileOutcome::Imported { .. }
            ),
            "{name}"
        );
    }
    let list = store.snapshots(Some(Cloud::Public)).await.unwrap();
    let dates: Vec<_> = list.iter().map(|s| s.file_date).collect();
    assert_eq!(
        dates,
        [date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)]
    );
    assert_eq!(
        list.iter().map(|s| s.prefixes).collect::<Vec<_>>(),
        [6, 8, 4]
    );

    // Every snapshot exports exactly: canonical content and original bytes.
    for (info, (_, text)) in list.iter().zip(&weeks) {
        let snap = store.snapshot(info).await.unwrap();
        assert_eq!(
            canonical::render(&snap, Style::default()),
            canonical_of(text)
        );
        assert_eq!(store.original(info).await.unwrap(), text.as_bytes());
    }

    // Importing again changes nothing, whatever the line endings.
    let crlf = weeks[1].1.replace('\n', "\r\n");
    match import(store, &weeks[1].0, &crlf).await {
        FileOutcome::AlreadyStored { info, .. } => assert_eq!(info.id, list[1].id),
        other => panic!("expected already stored, got {other:?}"),
    }
    assert_eq!(store.snapshots(None).await.unwrap(), list);

    // References.
    let at = |r: &str| r.parse::<SnapRef>().unwrap();
    assert_eq!(
        store.resolve(Cloud::Public, &at("latest")).await.unwrap(),
        list[2]
    );
    assert_eq!(
        store.resolve(Cloud::Public, &at("latest~2")).await.unwrap(),
        list[0]
    );
    assert_eq!(
        store
            .resolve(Cloud::Public, &at("2025-01-19"))
            .await
            .unwrap(),
        list[1]
    );
    assert_eq!(
        store
            .resolve(Cloud::Public, &at(&format!("id:{}", list[0].id)))
            .await
            .unwrap(),
        list[0]
    );
    let missing = store
        .resolve(Cloud::Public, &at("latest~3"))
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }));
    assert_eq!(
        missing.to_string(),
        "no Public snapshot matches latest~3: run `tagwall snapshots --cloud Public` to list them"
    );
    assert!(store.resolve(Cloud::China, &at("latest")).await.is_err());

    // Tag summaries come from the tag versions alone.
    let tags = store.tag_summaries(&list[1]).await.unwrap();
    let names: Vec<_> = tags
        .iter()
        .map(|t| (t.name.as_str(), t.ipv4_prefixes, t.ipv6_prefixes))
        .collect();
    assert_eq!(
        names,
        [
            ("AzureCloud", 3, 1),
            ("AzureCloud.westeurope", 2, 0),
            ("Storage", 2, 0)
        ]
    );
    assert_eq!(tags[1].meta.region, "westeurope");

    // Two different files with one date are both kept, ordered by changeNumber.
    let same_day_low = weeks[0]
        .1
        .replace("\"changeNumber\": 10", "\"changeNumber\": 9");
    import(store, "ServiceTags_Public_20250120.json", &same_day_low).await;
    let list2 = store.snapshots(Some(Cloud::Public)).await.unwrap();
    assert_eq!(list2.len(), 4);
    assert_eq!(list2[2].change_number, 9);
    assert_eq!(list2[3], list[2]);
    for (info, text) in [(&list2[2], &same_day_low), (&list2[3], &weeks[2].1)] {
        assert_eq!(store.original(info).await.unwrap(), text.as_bytes());
    }
    // Earlier snapshots are untouched by the insertion.
    for (info, (_, text)) in list2.iter().take(2).zip(&weeks) {
        assert_eq!(store.original(info).await.unwrap(), text.as_bytes());
    }

    // The store's diff (from the intervals that differ) equals the diff of the whole snapshots,
    // and snapshots without recorded address sets (stored before migration 0003) fall back to
    // reading them whole.
    let (a, b) = (&list2[0], &list2[3]);
    let whole = tagwall::core::diff::diff(
        &store.snapshot(a).await.unwrap(),
        &store.snapshot(b).await.unwrap(),
    );
    assert_eq!(store.diff(a, b).await.unwrap(), whole);
    assert_eq!(whole.addresses, (0, 65536, 0, 0));
    common::execute(&t.url, "DELETE FROM snapshot_addresses").await;
    assert_eq!(store.diff(a, b).await.unwrap(), whole);
}

#[tokio::test]
async fn story_on_sqlite() {
    story(common::sqlite().await).await;
}

#[tokio::test]
async fn story_on_postgres() {
    if let Some(t) = common::postgres().await {
        story(t).await;
    }
}

/// Two imports of different weeks racing on one store both land, one after the other.
async fn concurrent_imports(t: TestStore) {
    let weeks = three_weeks();
    let second = Store::open(&t.url).await.unwrap();
    let (a, b) = tokio::join!(
        import(&t.store, &weeks[0].0, &weeks[0].1),
        import(&second, &weeks[1].0, &weeks[1].1)
    );
    assert!(matches!(a, FileOutcome::Imported { .. }) && matches!(b, FileOutcome::Imported { .. }));
    let list = t.store.snapshots(None).await.unwrap();
    assert_eq!(list.len(), 2);
    for (info, (_, text)) in list.iter().zip(&weeks) {
        assert_eq!(t.store.original(info).await.unwrap(), text.as_bytes());
    }
}

#[tokio::test]
async fn concurrent_imports_on_sqlite() {
    concurrent_imports(common::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_imports_on_postgres() {
    if let Some(t) = common::postgres().await {
        concurrent_imports(t).await;
    }
}

/// The validators of conditional downloads: stored, replaced, read back alike on both backends.
async fn validators(t: TestStore) {
    let store = &t.store;
    let weeks = three_weeks();
    let FileOutcome::Imported { info, .. } = import(store, &weeks[0].0, &weeks[0].1).await else {
        panic!("not imported");
    };
    let url = "https://download.microsoft.com/x/ServiceTags_Public_20250707.json";
    assert_eq!(store.validators(url).await.unwrap(), None);
    let mut v = Validators {
        etag: Some("\"0x8DD\"".into()),
        last_modified: None,
        sha256: "ab".repeat(32),
        snapshot_id: info.id,
    };
    store.save_validators(url, &v).await.unwrap();
    assert_eq!(store.validators(url).await.unwrap().as_ref(), Some(&v));
    v.etag = None;
    v.last_modified = Some("Mon, 07 Jul 2025 10:00:00 GMT".into());
    store.save_validators(url, &v).await.unwrap();
    assert_eq!(store.validators(url).await.unwrap(), Some(v));
}

#[tokio::test]
async fn validators_on_sqlite() {
    validators(common::sqlite().await).await;
}

#[tokio::test]
async fn validators_on_postgres() {
    if let Some(t) = common::postgres().await {
        validators(t).await;
    }
}

/// Recorded publishes: an identical one is not recorded again, the newest is what
/// `newest_publishes` names, files come back in order byte for byte, and only the newest
/// `PUBLISHES_KEPT` per ruleset are kept (other rulesets untouched).
async fn publishes(t: TestStore) {
    let store = &t.store;
    let files = |n: u8| -> Vec<(String, Vec<u8>)> {
        vec![
            ("a.txt".into(), vec![b'0' + n, b'\n', 0, 255]),
            (
                "manifest.json".into(),
                format!("{{\"n\":{n}}}").into_bytes(),
            ),
        ]
    };
    let record = |ruleset: &'static str, n: u8| {
        let f = files(n);
        async move {
            let sha = format!("{n:064}");
            store
                .record_publish(&NewPublish {
                    ruleset,
                    manifest_sha256: &sha,
                    files: &f,
                })
                .await
                .unwrap()
        }
    };
    assert!(store.newest_publishes().await.unwrap().is_empty());
    assert!(record("other", 9).await);
    assert!(record("entra", 1).await);
    assert!(
        !record("entra", 1).await,
        "the same manifest again is not recorded"
    );
    for n in 2..=6 {
        assert!(record("entra", n).await);
    }
    let newest = store.newest_publishes().await.unwrap();
    let names: Vec<&str> = newest.iter().map(|(r, _, _)| r.as_str()).collect();
    assert_eq!(names, ["entra", "other"]);
    let (_, id, at) = &newest[0];
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert_eq!(store.publish_files(*id).await.unwrap(), files(6));
    let kept: Vec<i64> = sqlx_ids(&t, "entra").await;
    assert_eq!(kept.len() as i64, tagwall::store::PUBLISHES_KEPT);
    assert_eq!(*kept.last().unwrap(), *id);
    assert!(
        store.publish_files(kept[0] - 1).await.unwrap().is_empty(),
        "older ones go"
    );
    assert_eq!(sqlx_ids(&t, "other").await.len(), 1);
    assert!(
        record("entra", 1).await,
        "an older manifest again is a new publish"
    );
}

async fn sqlx_ids(t: &TestStore, ruleset: &str) -> Vec<i64> {
    common::query_ids(
        &t.url,
        &format!("SELECT id FROM publishes WHERE ruleset = '{ruleset}' ORDER BY id"),
    )
    .await
}

#[tokio::test]
async fn publishes_on_sqlite() {
    publishes(common::sqlite().await).await;
}

#[tokio::test]
async fn publishes_on_postgres() {
    if let Some(t) = common::postgres().await {
        publishes(t).await;
    }
}
