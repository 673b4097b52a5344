//! Property: random histories imported into a real store in random order reproduce every
//! snapshot exactly, list in history order, and diff from the store as the whole snapshots do. Covers appends, backfills before, between and on
//! the same date as stored snapshots, tags appearing and vanishing, and metadata changes.

use crate::common;

use chrono::NaiveDate;
use common::{service_tags, Tag};
use proptest::prelude::*;
use tagwall::core::canonical::{self, Style};
use tagwall::core::diff;
use tagwall::core::model::Cloud;
use tagwall::core::parse;
use tagwall::store::import::{import_bytes, FileOutcome};

const TAGS: [&str; 4] = ["AzureCloud", "AzureCloud.westeurope", "Storage", "Sql"];
const PREFIXES: [&str; 8] = [
    "20.0.0.0/16",
    "20.1.0.0/16",
    "20.1.0.0/24",
    "52.0.0.0/24",
    "52.0.1.0/24",
    "52.0.2.0/25",
    "2603:1000::/40",
    "2603:1000:4::/47",
];

/// One made-up week: file date offset, and for each present tag its region choice and prefixes.
#[derive(Debug, Clone)]
struct Week {
    day: u8,
    tags: Vec<(usize, bool, Vec<usize>)>,
}

fn week() -> impl Strategy<Value = Week> {
    let tag = (
        any::<bool>(),
        prop::collection::btree_set(0..PREFIXES.len(), 0..5),
    )
        .prop_map(|(r, p)| (r, p.into_iter().collect::<Vec<_>>()));
    (
        0u8..10,
        prop::collection::btree_map(0..TAGS.len(), tag, 1..=TAGS.len()),
    )
        .prop_map(|(day, m)| Week {
            day,
            tags: m.into_iter().map(|(t, (r, p))| (t, r, p)).collect(),
        })
}

/// The file text of week `i` (its changeNumber is `i`, so every week's content is distinct).
fn text(i: usize, w: &Week) -> String {
    let prefixes: Vec<Vec<&str>> = w
        .tags
        .iter()
        .map(|(_, _, p)| p.iter().map(|&j| PREFIXES[j]).collect())
        .collect();
    let tags: Vec<Tag> = w
        .tags
        .iter()
        .zip(&prefixes)
        .map(|((t, r, _), p)| Tag(TAGS[*t], if *r { "westeurope" } else { "" }, p))
        .collect();
    service_tags("Public", i as i64, &tags)
}

fn date(w: &Week) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 6).unwrap() + chrono::Days::new(7 * u64::from(w.day / 2))
}

async fn check(
    t: common::TestStore,
    weeks: Vec<Week>,
    order: Vec<usize>,
) -> Result<(), TestCaseError> {
    let texts: Vec<String> = weeks.iter().enumerate().map(|(i, w)| text(i, w)).collect();
    for &i in &order {
        let out = import_bytes(
            &t.store,
            texts[i].as_bytes().to_vec(),
            "made-up.json",
            date(&weeks[i]),
            None,
        )
        .await
        .unwrap();
        let imported = matches!(out, FileOutcome::Imported { .. });
        prop_assert!(imported, "week {} was not imported", i);
    }
    let stored = t.store.snapshots(Some(Cloud::Public)).await.unwrap();
    prop_assert_eq!(stored.len(), weeks.len());
    let mut expected: Vec<usize> = (0..weeks.len()).collect();
    expected.sort_by_key(|&i| (date(&weeks[i]), i));
    for (info, &i) in stored.iter().zip(&expected) {
        prop_assert_eq!(info.change_number, i as i64);
        prop_assert_eq!(info.file_date, date(&weeks[i]));
        let want = canonical::render(
            &parse::parse(texts[i].as_bytes(), None).unwrap().snapshot,
            Style::default(),
        );
        let got = canonical::render(&t.store.snapshot(info).await.unwrap(), Style::default());
        prop_assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
        prop_assert_eq!(t.store.original(info).await.unwrap(), texts[i].as_bytes());
    }
    // The store's diff, read from the intervals that differ and the recorded address sets,
    // equals the diff of the whole snapshots, for every pair in both directions.
    let mut whole = Vec::new();
    for info in &stored {
        whole.push(t.store.snapshot(info).await.unwrap());
    }
    for (a, sa) in stored.iter().zip(&whole) {
        for (b, sb) in stored.iter().zip(&whole) {
            let fast = t.store.diff(a, b).await.unwrap();
            prop_assert_eq!(fast, diff::diff(sa, sb), "diff id:{} -> id:{}", a.id, b.id);
        }
    }
    Ok(())
}

fn histories() -> impl Strategy<Value = (Vec<Week>, Vec<usize>)> {
    prop::collection::vec(week(), 1..8).prop_flat_map(|weeks| {
        let n = weeks.len();
        (Just(weeks), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_in_random_order_on_sqlite((weeks, order) in histories()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { check(common::sqlite().await, weeks, order).await })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_in_random_order_on_postgres((weeks, order) in histories()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            match common::postgres().await {
                Some(t) => check(t, weeks, order).await,
                None => Ok(()),
            }
        })?;
    }
}

/// Every row of the store that describes history, with row ids replaced by what they name, in
/// a fixed order: two stores with equal dumps hold the same history, row for row.
async fn dump(t: &common::TestStore) -> Vec<String> {
    use sqlx::{Connection, Row};
    const QUERIES: [&str; 6] = [
        "SELECT 'snapshot', cloud, ord, file_date, change_number, content_sha256, tag_count, \
         prefix_count, raw_sha256, raw_size, source_name FROM snapshots",
        "SELECT 'tag', cloud, name FROM tags",
        "SELECT 'version', v.cloud, t.name, v.from_ord, v.to_ord, v.json_id, v.region, \
         v.system_service, v.ipv4_prefixes, v.ipv6_prefixes FROM tag_versions v JOIN tags t ON t.id = v.tag_id",
        "SELECT 'interval', p.cloud, t.name, p.prefix, p.from_ord, p.to_ord FROM prefix_intervals p \
         JOIN tags t ON t.id = p.tag_id",
        "SELECT 'head', h.cloud, t.name, h.prefixes FROM head_prefixes h JOIN tags t ON t.id = h.tag_id",
        "SELECT 'addresses', s.content_sha256, a.ipv4, a.ipv6 FROM snapshot_addresses a \
         JOIN snapshots s ON s.id = a.snapshot_id",
    ];
    let mut out = Vec::new();
    macro_rules! collect {
        ($conn:expr) => {
            for q in QUERIES {
                for row in sqlx::query(q).fetch_all(&mut $conn).await.unwrap() {
                    let cells: Vec<String> = (0..row.len())
                        .map(|i| {
                            row.try_get::<String, _>(i)
                                .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .or_else(|_| row.try_get::<Vec<u8>, _>(i).map(hex::encode))
                                .unwrap_or_else(|_| "NULL".into())
                        })
                        .collect();
                    out.push(cells.join("|"));
                }
            }
        };
    }
    match t.url.sqlite_file() {
        Some(file) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            collect!(c);
        }
        None => {
            let mut c = sqlx::PgConnection::connect(t.url.expose()).await.unwrap();
            collect!(c);
        }
    }
    out.sort();
    out
}

/// Imports the weeks in `order`, skipping `skip`.
async fn import_weeks(
    t: &common::TestStore,
    texts: &[String],
    weeks: &[Week],
    order: &[usize],
    skip: Option<usize>,
) {
    for &i in order.iter().filter(|&&i| Some(i) != skip) {
        import_bytes(
            &t.store,
            texts[i].as_bytes().to_vec(),
            "made-up.json",
            date(&weeks[i]),
            None,
        )
        .await
        .unwrap();
    }
}

/// Deleting week `k` from a store of every week gives, row for row, the store of the other
/// weeks imported in another order; and deleting what was just imported gives the store before.
async fn check_delete(
    stores: [common::TestStore; 2],
    weeks: Vec<Week>,
    orders: [Vec<usize>; 2],
    k: usize,
) -> Result<(), TestCaseError> {
    let [all, rest] = stores;
    let k = k % weeks.len();
    let texts: Vec<String> = weeks.iter().enumerate().map(|(i, w)| text(i, w)).collect();
    import_weeks(&rest, &texts, &weeks, &orders[1], Some(k)).await;
    let before = dump(&rest).await;
    import_weeks(&all, &texts, &weeks, &orders[0], None).await;
    prop_assert_ne!(
        dump(&all).await,
        before.clone(),
        "the dump sees the extra week"
    );
    prop_assert!(
        before.iter().all(|r| !r.contains("NULL|NULL")),
        "every cell is read"
    );
    let id = all
        .store
        .snapshots(Some(Cloud::Public))
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.change_number == k as i64)
        .unwrap()
        .id;
    prop_assert!(all.store.delete_snapshot(id).await.unwrap());
    prop_assert!(
        !all.store.delete_snapshot(id).await.unwrap(),
        "deleted twice"
    );
    prop_assert_eq!(dump(&all).await, before.clone(), "delete of week {}", k);
    // Insert, then delete: the store before.
    let out = import_bytes(
        &rest.store,
        texts[k].as_bytes().to_vec(),
        "made-up.json",
        date(&weeks[k]),
        None,
    )
    .await
    .unwrap();
    let FileOutcome::Imported { info, .. } = out else {
        return Err(TestCaseError::fail("not imported"));
    };
    prop_assert!(rest.store.delete_snapshot(info.id).await.unwrap());
    prop_assert_eq!(dump(&rest).await, before);
    Ok(())
}

fn deletions() -> impl Strategy<Value = (Vec<Week>, [Vec<usize>; 2], usize)> {
    prop::collection::vec(week(), 1..7).prop_flat_map(|weeks| {
        let n = weeks.len();
        let order = || Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        (Just(weeks), [order(), order()], 0..n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn delete_gives_the_store_without_that_snapshot_on_sqlite((weeks, orders, k) in deletions()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            check_delete([common::sqlite().await, common::sqlite().await], weeks, orders, k).await
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn delete_gives_the_store_without_that_snapshot_on_postgres((weeks, orders, k) in deletions()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (Some(a), Some(b)) = (common::postgres().await, common::postgres().await) else {
                return Ok(());
            };
            check_delete([a, b], weeks, orders, k).await
        })?;
    }
}
