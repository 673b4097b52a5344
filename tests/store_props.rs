//! Property: random histories imported into a real store in random order reproduce every
//! snapshot exactly, list in history order, and diff from the store as the whole snapshots do. Covers appends, backfills before, between and on
//! the same date as stored snapshots, tags appearing and vanishing, and metadata changes.

mod common;

use chrono::NaiveDate;
use common::{service_tags, Tag};
use proptest::prelude::*;
use tagwall::canonical::{self, Style};
use tagwall::diff;
use tagwall::import::{import_bytes, FileOutcome};
use tagwall::model::Cloud;
use tagwall::parse;

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
