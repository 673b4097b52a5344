//! The history store on Microsoft's real files (`../shared/data/servicetags`, required in CI):
//! every file imports, every snapshot exports back exactly, importing again changes nothing, and
//! the import order does not change the history.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tagwall::core::canonical::{self, Style};
use tagwall::core::digest::sha256_hex;
use tagwall::core::model::{Cloud, SnapshotInfo};
use tagwall::core::parse;
use tagwall::store::import::{
    collect_files, file_date_from_name, import_file, FileOutcome, ImportOptions,
};
use tagwall::store::Store;

/// One row of a MANIFEST.tsv.
#[derive(Debug)]
struct Expected {
    cloud: Cloud,
    change_number: i64,
    tags: i64,
    prefixes: i64,
    sha256: String,
}

fn manifest(root: &Path) -> BTreeMap<String, Expected> {
    let mut rows = BTreeMap::new();
    for cloud in Cloud::ALL {
        let text = std::fs::read_to_string(root.join(cloud.name()).join("MANIFEST.tsv")).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            rows.insert(
                f[0].to_string(),
                Expected {
                    cloud,
                    change_number: f[1].parse().unwrap(),
                    tags: f[2].parse().unwrap(),
                    prefixes: f[3].parse().unwrap(),
                    sha256: f[5].to_string(),
                },
            );
        }
    }
    rows
}

async fn import_all(store: &Store, files: &[PathBuf]) -> Vec<FileOutcome> {
    let mut out = Vec::new();
    for f in files {
        let outcome = import_file(store, f, ImportOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        out.push(outcome);
    }
    out
}

/// The source file names of every stored snapshot, in history order.
async fn sources(store: &Store) -> Vec<String> {
    store
        .snapshots(None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.source)
        .collect()
}

fn by_source(list: Vec<SnapshotInfo>) -> BTreeMap<String, SnapshotInfo> {
    list.into_iter().map(|s| (s.source.clone(), s)).collect()
}

/// Checks every stored snapshot against its file: counts, hashes, canonical content, original.
async fn check_exports(store: &Store, root: &Path, expected: &BTreeMap<String, Expected>) {
    let stored = by_source(store.snapshots(None).await.unwrap());
    assert_eq!(stored.len(), expected.len(), "one snapshot per file");
    for (name, want) in expected {
        let info = &stored[name];
        assert_eq!(
            (
                info.cloud,
                info.change_number,
                info.tags,
                info.prefixes,
                info.sha256.as_str()
            ),
            (
                want.cloud,
                want.change_number,
                want.tags,
                want.prefixes,
                want.sha256.as_str()
            ),
            "{name}"
        );
        assert_eq!(Some(info.file_date), file_date_from_name(Path::new(name)));
        let file = root.join(want.cloud.name()).join(name);
        let original = parse::decompress(std::fs::read(&file).unwrap()).unwrap();
        let exported = canonical::render(&store.snapshot(info).await.unwrap(), Style::default());
        let reparsed = canonical::render(
            &parse::parse(&original, None).unwrap().snapshot,
            Style::default(),
        );
        assert!(
            exported == reparsed,
            "{name}: export differs from the file's content"
        );
        let raw = store.original(info).await.unwrap();
        assert_eq!(
            sha256_hex(&raw),
            want.sha256,
            "{name}: --raw differs from the original"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_real_file_imports_exports_exactly_and_reimports_as_nothing() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let expected = manifest(&root);
    let files = collect_files(std::slice::from_ref(&root)).unwrap();
    assert_eq!(files.len(), 74);
    let t = common::sqlite().await;
    let outcomes = import_all(&t.store, &files).await;
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, FileOutcome::Imported { .. })));
    check_exports(&t.store, &root, &expected).await;

    let before = t.store.snapshots(None).await.unwrap();
    let again = import_all(&t.store, &files).await;
    assert!(again
        .iter()
        .all(|o| matches!(o, FileOutcome::AlreadyStored { .. })));
    assert_eq!(t.store.snapshots(None).await.unwrap(), before);
}

/// Imports `files` in date order into one store and shuffled into another, and compares every
/// snapshot's content and original bytes.
async fn shuffled_matches_in_order(
    first: common::TestStore,
    second: common::TestStore,
    files: Vec<PathBuf>,
    seed: u64,
) {
    let (in_order, shuffled) = (&first.store, &second.store);
    let mut mixed = files.clone();
    mixed.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    import_all(in_order, &files).await;
    import_all(shuffled, &mixed).await;
    let a = by_source(in_order.snapshots(None).await.unwrap());
    let b = by_source(shuffled.snapshots(None).await.unwrap());
    assert_eq!(a.len(), files.len());
    for (name, x) in &a {
        let y = &b[name];
        assert_eq!(
            (x.file_date, &x.content_sha256, &x.sha256),
            (y.file_date, &y.content_sha256, &y.sha256)
        );
        let (sx, sy) = (
            in_order.snapshot(x).await.unwrap(),
            shuffled.snapshot(y).await.unwrap(),
        );
        assert!(
            sx == sy,
            "seed {seed}: {name} differs between import orders"
        );
        assert_eq!(
            shuffled.original(y).await.unwrap(),
            in_order.original(x).await.unwrap()
        );
    }
    // Listing order (history order) is the same too.
    assert_eq!(sources(in_order).await, sources(shuffled).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn shuffled_import_order_gives_the_same_history() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(std::slice::from_ref(&root)).unwrap();
    let seed = rand::random();
    eprintln!("shuffle seed {seed}");
    shuffled_matches_in_order(common::sqlite().await, common::sqlite().await, files, seed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_files_on_postgres_match_sqlite() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let Some(pg) = common::postgres().await else {
        return;
    };
    let files: Vec<PathBuf> = ["China", "AzureGermany", "AzureGovernment"]
        .iter()
        .flat_map(|c| collect_files(&[root.join(c)]).unwrap())
        .collect();
    let seed = rand::random();
    eprintln!("shuffle seed {seed}");
    shuffled_matches_in_order(common::sqlite().await, pg, files, seed).await;
}
