//! One story, run unchanged on SQLite and on PostgreSQL: whatever a user does through the store
//! must give the same answers on both backends.

use crate::common;

use chrono::NaiveDate;
use common::{three_weeks, TestStore};
use tagwall::core::canonical::{self, Style};
use tagwall::core::model::Cloud;
use tagwall::core::parse;
use tagwall::store::import::{
    file_date_from_name, import_bytes, prepare_bytes, store_ready, FileOutcome, Threads,
};
use tagwall::store::{NewPublish, Prefetch, SnapRef, Store, StoreError, Validators};

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

/// Imports `text` as `name` dated `day`, prepared on `threads`: with [`Threads::Spare`] the
/// content hash, the rendering and the compressed original are made beside the transaction.
async fn import_on(
    store: &Store,
    name: &str,
    day: NaiveDate,
    text: &str,
    threads: Threads,
) -> FileOutcome {
    let ready = prepare_bytes(text.as_bytes().to_vec(), name.into(), day, None, threads).unwrap();
    store_ready(store, ready, Prefetch::default())
        .await
        .unwrap()
}

/// A file imported alone has its content hashed beside its transaction: the same content
/// (in other bytes) is still found stored, a second file of the same date is still ranked by
/// its content hash, and every original comes back exactly, on either way of preparing.
async fn content_beside_the_transaction(t: TestStore) {
    let store = &t.store;
    let weeks = three_weeks();
    let day = |i: usize| file_date_from_name(std::path::Path::new(&weeks[i].0)).unwrap();
    for (i, threads) in [(0, Threads::One), (1, Threads::Spare)] {
        let outcome = import_on(store, &weeks[i].0, day(i), &weeks[i].1, threads).await;
        assert!(
            matches!(outcome, FileOutcome::Imported { .. }),
            "{threads:?}"
        );
    }
    let list = store.snapshots(None).await.unwrap();
    assert_eq!(list.len(), 2);
    for (info, (_, text)) in list.iter().zip(&weeks) {
        assert_eq!(store.original(info).await.unwrap(), text.as_bytes());
        assert_eq!(
            info.content_sha256,
            tagwall::core::digest::sha256_hex(&canonical_of(text))
        );
    }
    // The same contents again, in CRLF: found stored whichever way they are prepared, and
    // nothing is written.
    for i in [0, 1] {
        for threads in [Threads::One, Threads::Spare] {
            let crlf = weeks[i].1.replace('\n', "\r\n");
            match import_on(store, &weeks[i].0, day(i), &crlf, threads).await {
                FileOutcome::AlreadyStored { info, .. } => assert_eq!(info.id, list[i].id),
                other => panic!("week {i} on {threads:?}: expected already stored, got {other:?}"),
            }
        }
    }
    assert_eq!(store.snapshots(None).await.unwrap(), list);
    // Another content for the second week's date, prepared alone: ranked among that date's
    // snapshots by change number, then content hash (both are 11 here), which it waits for.
    let (_, third) = &weeks[2];
    let outcome = import_on(store, "other.json", day(1), third, Threads::Spare).await;
    let FileOutcome::Imported { info, .. } = outcome else {
        panic!("expected imported, got {outcome:?}");
    };
    assert_eq!(
        info.content_sha256,
        tagwall::core::digest::sha256_hex(&canonical_of(third))
    );
    let now = store.snapshots(None).await.unwrap();
    assert_eq!(now.len(), 3);
    assert_eq!(now[0], list[0]);
    let same: Vec<_> = now[1..].iter().collect();
    assert!(same.iter().all(|s| s.file_date == day(1)));
    let key = |s: &tagwall::core::model::SnapshotInfo| (s.change_number, s.content_sha256.clone());
    assert!(key(same[0]) < key(same[1]), "{same:?}");
    let mut ids: Vec<i64> = same.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    let mut expected = vec![list[1].id, info.id];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    for s in same {
        let text = if s.id == info.id { third } else { &weeks[1].1 };
        assert_eq!(store.original(s).await.unwrap(), text.as_bytes());
    }
    let latest = store
        .resolve(Cloud::Public, &"latest".parse::<SnapRef>().unwrap())
        .await
        .unwrap();
    assert_eq!(latest, now[2]);
}

/// One date holds at most 63 different files of a cloud: the 64th is refused by name, while
/// any of the 63 imported again is found stored, however it is prepared.
async fn a_date_holds_at_most_63_files(t: TestStore) {
    let store = &t.store;
    let day = date(2025, 1, 6);
    let file = |n: i64| {
        let prefix = format!("20.{n}.0.0/16");
        common::service_tags("Public", n, &[common::Tag("AzureCloud", "", &[&prefix])])
    };
    for n in 0..63 {
        let threads = if n % 2 == 0 {
            Threads::One
        } else {
            Threads::Spare
        };
        let outcome = import_on(store, "f.json", day, &file(n), threads).await;
        assert!(matches!(outcome, FileOutcome::Imported { .. }), "file {n}");
    }
    let list = store.snapshots(None).await.unwrap();
    assert_eq!(list.len(), 63);
    for threads in [Threads::One, Threads::Spare] {
        let ready =
            prepare_bytes(file(63).into_bytes(), "f.json".into(), day, None, threads).unwrap();
        let refused = store_ready(store, ready, Prefetch::default()).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("already has 63 different files")),
            "{threads:?}: {refused:?}"
        );
        match import_on(store, "f.json", day, &file(40), threads).await {
            FileOutcome::AlreadyStored { info, .. } => assert_eq!(info.change_number, 40),
            other => panic!("{threads:?}: expected already stored, got {other:?}"),
        }
    }
    assert_eq!(store.snapshots(None).await.unwrap(), list);
    // Ranked by change number within the date.
    let numbers: Vec<i64> = list.iter().map(|s| s.change_number).collect();
    assert_eq!(numbers, (0..63).collect::<Vec<_>>());
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

/// Recorded publishes: an identical one is not recorded again, `kept_publishes` names them
/// newest first, files come back in order byte for byte, and only the newest
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
    assert!(store.kept_publishes().await.unwrap().is_empty());
    assert!(record("other", 9).await);
    assert!(record("entra", 1).await);
    assert!(
        !record("entra", 1).await,
        "the same manifest again is not recorded"
    );
    for n in 2..=6 {
        assert!(record("entra", n).await);
    }
    let kept_all = store.kept_publishes().await.unwrap();
    let names: Vec<&str> = kept_all.iter().map(|(r, _, _)| r.as_str()).collect();
    let entra = usize::try_from(tagwall::store::PUBLISHES_KEPT).unwrap();
    assert_eq!(names.len(), entra + 1);
    assert!(names[..entra].iter().all(|n| *n == "entra"), "{names:?}");
    assert_eq!(names[entra], "other");
    let ids: Vec<i64> = kept_all[..entra].iter().map(|(_, id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let (_, id, at) = &kept_all[0];
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

/// Each story as two tests: `<story>_on_sqlite`, and `<story>_on_postgres` where the test
/// database is set up (`common::postgres`).
macro_rules! on_both_backends {
    ($($story:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            $story(common::sqlite().await).await;
        }

        #[tokio::test]
        async fn $postgres() {
            if let Some(t) = common::postgres().await {
                $story(t).await;
            }
        }
    )*};
}

on_both_backends! {
    story => story_on_sqlite, story_on_postgres;
    content_beside_the_transaction => content_beside_the_transaction_on_sqlite, content_beside_the_transaction_on_postgres;
    a_date_holds_at_most_63_files => a_date_holds_at_most_63_files_on_sqlite, a_date_holds_at_most_63_files_on_postgres;
    concurrent_imports => concurrent_imports_on_sqlite, concurrent_imports_on_postgres;
    validators => validators_on_sqlite, validators_on_postgres;
    publishes => publishes_on_sqlite, publishes_on_postgres;
}
