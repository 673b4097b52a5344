//! The history store on Microsoft's real files (`../shared/data/servicetags`, required in CI):
//! every file imports, every snapshot exports back exactly, importing again changes nothing, and
//! the import order does not change the history.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tagwall::core::canonical::{self, Style};
use tagwall::core::digest::sha256_hex;
use tagwall::core::model::{Cloud, SnapshotInfo};
use tagwall::core::parse;
use tagwall::store::import::{
    collect_files, file_date_from_name, import_file, import_files, FileOutcome, ImportOptions,
};
use tagwall::store::{NewSnapshot, Prefetch, RunCarry, Store};

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
    assert_same_history(in_order, shuffled, files.len(), &format!("seed {seed}")).await;
}

/// Both stores hold the same snapshots, in the same history order, with the same content and
/// original bytes.
async fn assert_same_history(first: &Store, second: &Store, count: usize, label: &str) {
    let a = by_source(first.snapshots(None).await.unwrap());
    let b = by_source(second.snapshots(None).await.unwrap());
    assert_eq!(a.len(), count);
    assert_eq!(b.len(), count);
    for (name, x) in &a {
        let y = &b[name];
        assert_eq!(
            (x.file_date, &x.content_sha256, &x.sha256),
            (y.file_date, &y.content_sha256, &y.sha256)
        );
        let (sx, sy) = (
            first.snapshot(x).await.unwrap(),
            second.snapshot(y).await.unwrap(),
        );
        assert!(sx == sy, "{label}: {name} differs between the stores");
        assert_eq!(
            second.original(y).await.unwrap(),
            first.original(x).await.unwrap()
        );
    }
    // Listing order (history order) is the same too.
    assert_eq!(sources(first).await, sources(second).await);
}

/// Every row of the history tables of a SQLite store, ids of intervals and versions left out
/// (they number rows in the order written), sorted.
async fn history_rows(url: &tagwall::store::DbUrl) -> Vec<Vec<String>> {
    use sqlx::Row;
    let pool = sqlx::SqlitePool::connect(url.expose()).await.unwrap();
    let queries = [
        "SELECT id, cloud, ord, file_date, change_number, content_sha256, tag_count, \
         prefix_count, raw_sha256, raw_size, raw_render, raw_style, source_name FROM snapshots",
        "SELECT id, cloud, name FROM tags",
        "SELECT cloud, tag_id, from_ord, to_ord, json_id, change_number, region, region_id, \
         platform, system_service, network_features, ipv4_prefixes, ipv6_prefixes, \
         hex(prefixes_digest), hex(version_digest) FROM tag_versions",
        "SELECT cloud, tag_id, hex(prefix), from_ord, to_ord FROM prefix_intervals",
        "SELECT tag_id, cloud, hex(prefixes) FROM head_prefixes",
        "SELECT snapshot_id, hex(ipv4), hex(ipv6) FROM snapshot_addresses",
        // The schema and the indexes' soundness too.
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        "SELECT integrity_check FROM pragma_integrity_check",
    ];
    let mut all = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let mut rows: Vec<Vec<String>> = sqlx::query(q)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let mut row = vec![i.to_string()];
                for c in 0..r.len() {
                    let text: Option<String> = r
                        .try_get::<Option<String>, _>(c)
                        .or_else(|_| {
                            r.try_get::<Option<i64>, _>(c)
                                .map(|v| v.map(|v| v.to_string()))
                        })
                        .unwrap();
                    row.push(text.unwrap_or_else(|| "NULL".into()));
                }
                row
            })
            .collect();
        rows.sort();
        all.extend(rows);
    }
    pool.close().await;
    all
}

/// `tagwall import` of a directory: the files after the first few, stored as runs of appended
/// weeks in one transaction each, must give exactly the rows that importing every file on its own
/// gives, in a new store and on top of stored weeks, on SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn runs_of_weeks_store_what_files_one_by_one_store() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(std::slice::from_ref(&root)).unwrap();
    let one_by_one = common::sqlite().await;
    import_all(&one_by_one.store, &files).await;
    let mut stores = vec![common::sqlite().await, common::sqlite().await];
    stores.extend(common::postgres().await);
    for (k, t) in stores.iter().enumerate() {
        // The second and third stores hold the first 20 files already: the runs then end
        // intervals and versions that were stored before them.
        if k > 0 {
            import_all(&t.store, &files[..20]).await;
        }
        let mut outcomes = Vec::new();
        import_files(&t.store, files.clone(), ImportOptions::default(), |_, o| {
            outcomes.push(o.unwrap());
            Ok(())
        })
        .await
        .unwrap();
        let imported = outcomes
            .iter()
            .filter(|o| matches!(o, FileOutcome::Imported { .. }))
            .count();
        assert_eq!(imported, if k > 0 { files.len() - 20 } else { files.len() });
        assert_same_history(&one_by_one.store, &t.store, files.len(), &t.url.to_string()).await;
        if t.url.backend() == Some(tagwall::store::Backend::Sqlite) {
            assert!(
                history_rows(&t.url).await == history_rows(&one_by_one.url).await,
                "store {k}: rows differ from importing one by one"
            );
        }
    }
}

/// Stores `files` as one run of appended weeks, passing `carry` on.
async fn run_of(store: &Store, files: &[PathBuf], carry: &mut RunCarry) {
    let read: Vec<(parse::Parsed, Vec<u8>, String)> = files
        .iter()
        .map(|f| {
            let raw = parse::decompress(std::fs::read(f).unwrap()).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (parse::parse(&raw, None).unwrap(), raw, name)
        })
        .collect();
    let mut news: Vec<NewSnapshot<'_>> = read
        .iter()
        .zip(files)
        .map(|((parsed, raw, name), f)| {
            let date = file_date_from_name(f).unwrap();
            NewSnapshot::new(&parsed.snapshot, raw.clone(), date, name)
        })
        .collect();
    let outcomes = store.import_appends(&mut news, carry).await.unwrap();
    assert_eq!(outcomes.map(|o| o.len()), Some(files.len()), "not a run");
}

/// What a run of appended weeks leaves for the next run of the same import is used by the next
/// run (on both backends the rows are then those of importing one by one), and only when nothing
/// else wrote in between: after a file imported on its own, the carry of the run before it must
/// not stand in for the store (its prefixes would miss that file's changes).
#[tokio::test(flavor = "multi_thread")]
async fn a_run_reuses_what_the_run_before_left_only_when_nothing_wrote_between() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(&[root.join("Public")]).unwrap();
    let files = &files[..12];
    let one_by_one = common::sqlite().await;
    import_all(&one_by_one.store, files).await;
    let mut stores = vec![common::sqlite().await];
    stores.extend(common::postgres().await);
    for t in &stores {
        let mut carry = RunCarry::default();
        run_of(&t.store, &files[..4], &mut carry).await;
        run_of(&t.store, &files[4..6], &mut carry).await;
        import_all(&t.store, &files[6..7]).await;
        run_of(&t.store, &files[7..], &mut carry).await;
        assert_same_history(&one_by_one.store, &t.store, files.len(), &t.url.to_string()).await;
        if t.url.backend() == Some(tagwall::store::Backend::Sqlite) {
            assert!(
                history_rows(&t.url).await == history_rows(&one_by_one.url).await,
                "rows differ from importing one by one"
            );
        }
    }
}

/// Imports `file` in its own transaction with what `prefetch` read (nothing: the store reads).
async fn import_with(store: &Store, file: &Path, prefetch: Prefetch) {
    let raw = parse::decompress(std::fs::read(file).unwrap()).unwrap();
    let parsed = parse::parse(&raw, None).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let date = file_date_from_name(file).unwrap();
    let new = NewSnapshot::new(&parsed.snapshot, raw.clone(), date, &name);
    store.import_prefetched(new, prefetch).await.unwrap();
}

/// Imports, dated the day after `after`, `file`'s content with every tag's own change number
/// moved: a snapshot unlike its neighbours in every tag, so that it splits every version that
/// spans its date.
async fn import_unlike(store: &Store, file: &Path, after: &Path) {
    let raw = parse::decompress(std::fs::read(file).unwrap()).unwrap();
    let mut snapshot = parse::parse(&raw, None).unwrap().snapshot;
    for tag in &mut snapshot.tags {
        tag.meta.change_number += 1000;
    }
    let date = file_date_from_name(after).unwrap().succ_opt().unwrap();
    let raw = canonical::render(&snapshot, Style::default());
    let new = NewSnapshot::new(&snapshot, raw, date, "unlike.json");
    store.import(new).await.unwrap();
}

/// What a single import reads ahead while its file is parsed stands in for the store when
/// nothing wrote in between (the rows are then those of importing without it), and only then:
/// after a snapshot imported into the middle of the history, which leaves the newest snapshot as
/// it was but splits the versions open in it, the read-ahead of before must not be used (it
/// would end versions by rows that no longer are the open ones). Both backends.
#[tokio::test(flavor = "multi_thread")]
async fn a_prefetch_stands_in_for_the_store_only_when_nothing_wrote_between() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(&[root.join("Public")]).unwrap();
    let files = &files[30..36];
    // The same files in the same order, without reading ahead: the same rows, ids included.
    let reference = common::sqlite().await;
    for k in [0, 2, 3] {
        import_with(&reference.store, &files[k], Prefetch::default()).await;
    }
    import_unlike(&reference.store, &files[1], &files[2]).await;
    for k in [4, 5] {
        import_with(&reference.store, &files[k], Prefetch::default()).await;
    }
    let mut stores = vec![common::sqlite().await];
    stores.extend(common::postgres().await);
    for t in &stores {
        let empty = t.store.prefetch_append(Cloud::Public).await.unwrap();
        assert!(empty.is_empty(), "nothing to read ahead in an empty store");
        import_with(&t.store, &files[0], empty).await;
        import_with(&t.store, &files[2], Prefetch::default()).await;
        let fresh = t.store.prefetch_append(Cloud::Public).await.unwrap();
        assert!(!fresh.is_empty());
        import_with(&t.store, &files[3], fresh).await;
        let stale = t.store.prefetch_append(Cloud::Public).await.unwrap();
        import_unlike(&t.store, &files[1], &files[2]).await;
        import_with(&t.store, &files[4], stale).await;
        let other_cloud = t.store.prefetch_append(Cloud::China).await.unwrap();
        import_with(&t.store, &files[5], other_cloud).await;
        let label = t.url.to_string();
        assert_same_history(&reference.store, &t.store, files.len(), &label).await;
        if t.url.backend() == Some(tagwall::store::Backend::Sqlite) {
            assert!(
                history_rows(&t.url).await == history_rows(&reference.url).await,
                "rows differ from importing without reading ahead"
            );
        }
    }
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

/// Content hashes are snapshots' identities in every existing store: the canonical rendering
/// must give these files exactly the hashes tagwall stored for them before its rendering was
/// rewritten for speed (values recorded by commit 931b2d8's `tagwall import`).
#[test]
fn content_hashes_are_the_ones_earlier_versions_stored() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let pinned = [
        (
            "Public",
            "20190722",
            "f56191861a810d46459899d9ad56ce13cbe22aa626d1cc885ec69eb19fb193ae",
        ),
        (
            "Public",
            "20191209",
            "7f97df8b116073f61b21b76fec29de09e0d1a1c997c1ae3a8c57bacdf422af12",
        ),
        (
            "Public",
            "20200224",
            "2c5890cac41c96802648a11f15e8e2be43d38034dc5e0b5c8d0e1adc44624db3",
        ),
        (
            "AzureGovernment",
            "20191216",
            "3191ad28381d0932b88808207d6d92899766273a5c769bb463aa17b387f1b6a9",
        ),
        (
            "AzureGovernment",
            "20250120",
            "b9ad29c51e1fdd40f4c2207a2d819cf67165d9366d0d289a2193c68fb7d016af",
        ),
        (
            "AzureGovernment",
            "20260323",
            "b40020b87e4877c80d25a22d9148c8fea24c5bd81df390b2d8b5b81158853ccc",
        ),
        (
            "China",
            "20200601",
            "542874f905fd0ab98ba44a35aaf44958cb7d8a1e56e4a8c2f081f56b10c6ae11",
        ),
        (
            "China",
            "20250120",
            "26fee0e17f41f2713281d76923f64ea89bb04a35e8b3308bab2424345b27e286",
        ),
        (
            "China",
            "20260427",
            "82ebc76406fed2344100fe66c6620abb99ae171a61da0ae6882d4b03ffb46501",
        ),
        (
            "AzureGermany",
            "20201102",
            "1afff5feee88e62ea1312c6db4e6e9537175dac2b4f0ac7bb3a1e0347f788c2c",
        ),
        (
            "AzureGermany",
            "20210412",
            "e447f42f1ae735be99b1f0d01ecdcc27c811d64ae057aa76f92d283ac0a9c541",
        ),
        (
            "AzureGermany",
            "20210426",
            "8398277e789fdceb9f6df464cb325ae357c9a913780d4d1c5862a7fa7d1ae83f",
        ),
    ];
    for (cloud, date, want) in pinned {
        let path = root
            .join(cloud)
            .join(format!("ServiceTags_{cloud}_{date}.json.gz"));
        let raw = parse::decompress(std::fs::read(&path).unwrap()).unwrap();
        let snapshot = parse::parse(&raw, None).unwrap().snapshot;
        assert_eq!(
            canonical::content_sha256(&snapshot),
            want,
            "{}",
            path.display()
        );
    }
}

/// The weekly import's parse, which reads the prefixes on a second thread, gives every
/// real file exactly what the parse on one thread gives; and the same error for the file cut
/// short or with a prefix damaged on either side of the split.
#[test]
fn every_real_file_parses_alike_on_two_threads() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(&[root]).unwrap();
    assert!(files.len() >= 74, "{} files", files.len());
    for path in &files {
        let raw = parse::decompress(std::fs::read(path).unwrap()).unwrap();
        let one = parse::parse(&raw, None).unwrap();
        let two = parse::parse_in_two(&raw, None).unwrap();
        assert_eq!(two.snapshot, one.snapshot, "{}", path.display());
        assert_eq!(two.warnings, one.warnings, "{}", path.display());
    }
    let raw = parse::decompress(std::fs::read(&files[files.len() - 1]).unwrap()).unwrap();
    let text = String::from_utf8(raw.clone()).unwrap();
    let first = text.find("/").unwrap();
    let last = text.rfind("/").unwrap();
    for (damaged, says) in [
        (raw[..raw.len() / 3].to_vec(), "EOF while parsing"),
        (
            format!("{}/99{}", &text[..first], &text[first + 1..]).into_bytes(),
            "addressPrefixes[",
        ),
        (
            format!("{}/99{}", &text[..last], &text[last + 1..]).into_bytes(),
            "addressPrefixes[",
        ),
    ] {
        let one = parse::parse(&damaged, None).unwrap_err().to_string();
        let two = parse::parse_in_two(&damaged, None).unwrap_err().to_string();
        assert_eq!(two, one);
        assert!(one.contains(says), "{one}");
    }
}

/// Stores written before the line delta hold each original as a zstd frame with the rendering as
/// its reference prefix: such a blob of a real week still decodes to the original.
#[test]
fn originals_stored_by_earlier_versions_still_decode() {
    use std::io::Write;
    let Some(root) = common::shared_data() else {
        return;
    };
    let path = root.join("Public/ServiceTags_Public_20250728.json.gz");
    let raw = parse::decompress(std::fs::read(&path).unwrap()).unwrap();
    let snapshot = parse::parse(&raw, None).unwrap().snapshot;
    let base = canonical::render(&snapshot, Style::detect(&raw));
    // The encoder exactly as commit 931b2d8 configured it.
    let total = (base.len() + raw.len()).max(1 << 20) as u64;
    let window_log = (64 - (total - 1).leading_zeros()).clamp(20, 30);
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 1, &base).unwrap();
    enc.window_log(window_log).unwrap();
    enc.long_distance_matching(true).unwrap();
    enc.include_checksum(true).unwrap();
    enc.set_pledged_src_size(Some(raw.len() as u64)).unwrap();
    enc.write_all(&raw).unwrap();
    let old = enc.finish().unwrap();
    let back = tagwall::store::rawcodec::decode(&old, &base, &sha256_hex(&raw)).unwrap();
    assert!(back == raw);
    let new = tagwall::store::rawcodec::encode(&raw, &base).unwrap();
    assert!(new.len() < 8_000, "{} bytes", new.len());
    assert!(tagwall::store::rawcodec::decode(&new, &base, &sha256_hex(&raw)).unwrap() == raw);
}

/// A run whose transaction fails stores nothing of it, and its files are then imported one by
/// one, each with its own outcome: here every one fails, since the store is damaged (the newest
/// week's `AzureCloud` head row is cut short), and the store keeps exactly what it held.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_retried_file_by_file_and_stores_nothing() {
    let Some(root) = common::shared_data() else {
        return;
    };
    let files = collect_files(&[root.join("Public")]).unwrap();
    let t = common::sqlite().await;
    import_all(&t.store, &files[..2]).await;
    let before = t.store.snapshots(None).await.unwrap();
    let pool = sqlx::SqlitePool::connect(t.url.expose()).await.unwrap();
    let damaged = sqlx::query(
        "UPDATE head_prefixes SET prefixes = x'05' \
         WHERE tag_id = (SELECT id FROM tags WHERE name = 'AzureCloud')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(damaged.rows_affected(), 1);
    pool.close().await;
    let mut told = Vec::new();
    import_files(
        &t.store,
        files[2..5].to_vec(),
        ImportOptions::default(),
        |path, o| {
            told.push((path.to_path_buf(), o.map(|_| ()).map_err(|e| e.to_string())));
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        told.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        files[2..5].to_vec(),
        "one outcome per file, in order"
    );
    for (path, outcome) in &told {
        let message = outcome.as_ref().unwrap_err();
        assert!(
            message.contains("damaged") && message.contains("head prefixes"),
            "{}: {message}",
            path.display()
        );
    }
    assert_eq!(t.store.snapshots(None).await.unwrap(), before);
}
