//! History-store benchmarks on Microsoft's real files (`../shared/data/servicetags`).
//!
//! `cargo bench --bench store`. Figures and the machine they came from are in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tagwall::core::canonical::{self, Style};
use tagwall::core::parse;
use tagwall::store::import::{
    collect_files, file_date_from_name, import_bytes, import_file, ImportOptions,
};
use tagwall::store::{ContentParts, DbUrl, SnapRef, Store};
use tokio::runtime::Runtime;

const PREVIOUS: &str = "ServiceTags_Public_20250721.json.gz";
const FOLLOWING: &str = "ServiceTags_Public_20250728.json.gz";

fn public_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/servicetags/Public");
    assert!(
        dir.is_dir(),
        "the benchmarks need the real files in {}",
        dir.display()
    );
    dir
}

fn raw(name: &str) -> (Vec<u8>, NaiveDate) {
    let path = public_dir().join(name);
    let bytes = parse::decompress(std::fs::read(&path).unwrap()).unwrap();
    (bytes, file_date_from_name(&path).unwrap())
}

/// A store in a fresh temporary directory, which lives as long as the returned guard.
fn empty_store(rt: &Runtime) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .unwrap();
    (rt.block_on(Store::open(&url)).unwrap(), dir)
}

fn store_with(rt: &Runtime, name: &str) -> (Store, tempfile::TempDir) {
    let (store, dir) = empty_store(rt);
    let (bytes, date) = raw(name);
    rt.block_on(import_bytes(&store, bytes, name, date, None))
        .unwrap();
    (store, dir)
}

fn import(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (previous, _) = raw(PREVIOUS);
    let (following, date) = raw(FOLLOWING);
    let mut g = c.benchmark_group("import");
    g.sample_size(10).measurement_time(Duration::from_secs(10));

    g.bench_function("parse one Public file", |b| {
        b.iter(|| parse::parse(&following, None).unwrap())
    });
    g.bench_function("parse one Public file on two threads", |b| {
        b.iter(|| parse::parse_in_two(&following, None).unwrap())
    });
    let snapshot = parse::parse(&following, None).unwrap().snapshot;
    g.bench_function("render canonical", |b| {
        b.iter(|| canonical::render(&snapshot, Style::default()))
    });
    g.bench_function("hash and compress the original", |b| {
        b.iter(|| {
            let mut parts = ContentParts::new(&snapshot, following.clone());
            parts.compress_now().unwrap();
            parts
        })
    });
    g.bench_function("first import into an empty store", |b| {
        b.iter_batched(
            || (empty_store(&rt), previous.clone()),
            |((store, _dir), bytes)| {
                rt.block_on(import_bytes(&store, bytes, PREVIOUS, date, None))
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("following week into a store with the previous", |b| {
        b.iter_batched(
            || (store_with(&rt, PREVIOUS), following.clone()),
            |((store, _dir), bytes)| {
                rt.block_on(import_bytes(&store, bytes, FOLLOWING, date, None))
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn backfill(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let files = collect_files(&[public_dir()]).unwrap();
    assert_eq!(files.len(), 38);
    let mut g = c.benchmark_group("backfill");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    g.bench_function("all 38 Public files into an empty store", |b| {
        b.iter_batched(
            || empty_store(&rt),
            |(store, _dir)| {
                rt.block_on(async {
                    for f in &files {
                        import_file(&store, f, ImportOptions::default())
                            .await
                            .unwrap();
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A store holding all 38 shared Public files.
fn backfilled_store(rt: &Runtime) -> (Store, tempfile::TempDir) {
    let (store, dir) = empty_store(rt);
    rt.block_on(async {
        for f in collect_files(&[public_dir()]).unwrap() {
            import_file(&store, &f, ImportOptions::default())
                .await
                .unwrap();
        }
    });
    (store, dir)
}

fn export(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (store, _dir) = backfilled_store(&rt);
    let latest = rt
        .block_on(store.resolve(tagwall::core::model::Cloud::Public, &SnapRef::Latest(0)))
        .unwrap();
    let middle = rt
        .block_on(store.resolve(
            tagwall::core::model::Cloud::Public,
            &"2023-01-02".parse().unwrap(),
        ))
        .unwrap();
    let mut g = c.benchmark_group("export");
    g.sample_size(20);
    g.bench_function("latest snapshot as canonical JSON", |b| {
        b.iter(|| {
            rt.block_on(async {
                canonical::render(&store.snapshot(&latest).await.unwrap(), Style::default())
            })
        })
    });
    g.bench_function("2023-01-02 snapshot as canonical JSON", |b| {
        b.iter(|| {
            rt.block_on(async {
                canonical::render(&store.snapshot(&middle).await.unwrap(), Style::default())
            })
        })
    });
    g.bench_function("latest snapshot's original bytes (--raw)", |b| {
        b.iter(|| rt.block_on(store.original(&latest)).unwrap())
    });
    g.finish();
}

fn diff_and_history(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (store, _dir) = backfilled_store(&rt);
    let public = tagwall::core::model::Cloud::Public;
    let from = rt
        .block_on(store.resolve(public, &SnapRef::Latest(1)))
        .unwrap();
    let to = rt
        .block_on(store.resolve(public, &SnapRef::Latest(0)))
        .unwrap();
    let mut g = c.benchmark_group("diff");
    g.sample_size(20);
    // From the store: diffed from the intervals that differ and rendered, as `tagwall diff` does.
    let run = |render: fn(
        &mut Vec<u8>,
        &tagwall::core::diff::Diff,
        &tagwall::core::model::SnapshotInfo,
        &tagwall::core::model::SnapshotInfo,
    ) -> std::io::Result<()>| {
        rt.block_on(async {
            let d = store.diff(&from, &to).await.unwrap();
            let mut out = Vec::new();
            render(&mut out, &d, &from, &to).unwrap();
            out
        })
    };
    g.bench_function("consecutive Public weeks, JSON", |b| {
        b.iter(|| run(tagwall::render::report::diff_json::write))
    });
    g.bench_function("consecutive Public weeks, text", |b| {
        b.iter(|| run(tagwall::render::report::diff_text::write))
    });
    g.bench_function("consecutive Public weeks, Markdown", |b| {
        b.iter(|| run(tagwall::render::report::diff_markdown::write))
    });
    g.bench_function("consecutive Public weeks, HTML", |b| {
        b.iter(|| run(tagwall::render::report::html::write_diff))
    });
    g.bench_function("history of AzureCloud over 38 Public files", |b| {
        b.iter(|| {
            rt.block_on(store.tag_history(public, "AzureCloud"))
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
}

fn rulesets(c: &mut Criterion) {
    use tagwall::core::ranges::{AddrSet, Family};
    let rt = Runtime::new().unwrap();
    // The shared Public file with the most IPv4 prefixes (the 68,933 matches none of them).
    let (largest, _) = raw("ServiceTags_Public_20250714.json.gz");
    let snapshot = parse::parse(&largest, None).unwrap().snapshot;
    let v4: Vec<ipnet::IpNet> = snapshot
        .tags
        .iter()
        .flat_map(|t| t.prefixes.iter().copied())
        .filter(|p| matches!(p, ipnet::IpNet::V4(_)))
        .collect();
    assert_eq!(v4.len(), 67_695, "every IPv4 prefix of the 2025-07-14 file");
    let mut g = c.benchmark_group("rulesets");
    g.sample_size(20);
    g.bench_function(
        "aggregate all 67,695 IPv4 prefixes of a Public file, exact",
        |b| {
            b.iter(|| {
                tagwall::core::aggregate::exact(
                    Family::V4,
                    &AddrSet::from_prefixes(Family::V4, &v4),
                )
            })
        },
    );
    g.bench_function(
        "aggregate all 67,695 IPv4 prefixes, at most 1,000 entries",
        |b| {
            b.iter(|| {
                tagwall::core::aggregate::budgeted(
                    Family::V4,
                    &AddrSet::from_prefixes(Family::V4, &v4),
                    1000,
                )
            })
        },
    );

    let (store, _dir) = backfilled_store(&rt);
    let ruleset: tagwall::rules::ruleset::Ruleset = toml::from_str::<tagwall::rules::ruleset::RulesetSpec>(
        "name = \"entra-connector\"\ntags = [\"AzureCloud\"]\nprotocol = \"tcp\"\nports = [443, 80]",
    )
    .unwrap()
    .validate()
    .unwrap();
    // As `tagwall emit` does it: read the newest snapshot, build, render every format, write the
    // directory atomically (into a fresh output directory, so the files are really written).
    g.bench_function(
        "emit the AzureCloud ruleset in all formats from the store",
        |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |out| {
                    rt.block_on(async {
                        let mut snaps =
                            tagwall::job::emit::Snapshots::new(&store, SnapRef::Latest(0));
                        tagwall::job::emit::emit_one(
                            &mut snaps,
                            &ruleset,
                            out.path(),
                            tagwall::publish::validate::Validate::Never,
                        )
                        .await
                        .unwrap()
                    });
                    out
                },
                BatchSize::PerIteration,
            )
        },
    );
    let query: ipnet::IpNet = "20.38.98.1/32".parse().unwrap();
    g.bench_function("lookup one address in 38 Public snapshots", |b| {
        b.iter(|| {
            rt.block_on(tagwall::job::emit::lookup_in(
                &store,
                tagwall::core::model::Cloud::Public,
                &SnapRef::Latest(0),
                query,
                &[&ruleset],
                false,
            ))
            .unwrap()
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    import,
    backfill,
    export,
    diff_and_history,
    rulesets
);
criterion_main!(benches);
