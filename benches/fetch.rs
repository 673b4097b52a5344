//! Fetch benchmarks: the real 4 MB Public file of 2025-07-28 from a local HTTPS server (test CA),
//! directly and through a real tinyproxy, into a store that holds the week before.
//!
//! `cargo bench --bench fetch`. The `transfer` group is the bare transfer (a reqwest GET of the
//! bytes, same TLS and proxy); `fetch` is `tagwall::fetch::fetch_cloud` (page, download, hash,
//! validation, import). tagwall's overhead beyond the transfer is `fetch − transfer`, and the
//! part of it that is the import is measured alone by `cargo bench --bench store -- import/following`.

#[path = "../tests/common/https.rs"]
#[allow(dead_code)]
mod https;
#[path = "../tests/common/skip.rs"]
#[allow(dead_code)]
mod skip;
#[path = "../tests/common/tinyproxy.rs"]
#[allow(dead_code)]
mod tinyproxy;

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use https::{Reply, TestServer};
use tagwall::core::model::Cloud;
use tagwall::core::parse;
use tagwall::fetch::proxy::{ProxyChoice, ProxyUrl, Route};
use tagwall::fetch::{fetch_cloud, Client, FetchSettings, FetchSpec, Mode, Outcome};
use tagwall::store::import::import_bytes;
use tagwall::store::{DbUrl, Store};
use tinyproxy::Tinyproxy;
use tokio::runtime::Runtime;

fn raw(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/servicetags/Public")
        .join(name);
    parse::decompress(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn settings(server: &TestServer) -> FetchSettings {
    let text = format!(
        "allowed_hosts = [\"127.0.0.1\"]\nca_bundle = \"{}\"\npages = {{ Public = \"{}\" }}\nfolders = {{ Public = \"{}\" }}\n",
        server.ca_pem.display(),
        server.url("/details"),
        server.url("/files/")
    );
    toml::from_str::<FetchSpec>(&text)
        .unwrap()
        .validate()
        .unwrap()
}

fn fetch(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let server = TestServer::start();
    let file = raw("ServiceTags_Public_20250728.json.gz");
    server.route(
        "/details",
        Reply::page("<a href=\"ServiceTags_Public_20250728.json\">x</a>"),
    );
    server.route(
        "/files/ServiceTags_Public_20250728.json",
        Reply::file(file.clone()),
    );
    let proxy = Tinyproxy::start(None, &[]).expect("the fetch benchmark needs tinyproxy");
    // A store holding the week before, copied for each iteration.
    let template = tempfile::tempdir().unwrap();
    let template_db = template.path().join("t.db");
    rt.block_on(async {
        let store =
            Store::open(&DbUrl::parse(&format!("sqlite://{}", template_db.display())).unwrap())
                .await
                .unwrap();
        let previous = raw("ServiceTags_Public_20250721.json.gz");
        let date = NaiveDate::from_ymd_opt(2025, 7, 21).unwrap();
        import_bytes(
            &store,
            previous,
            "ServiceTags_Public_20250721.json",
            date,
            None,
        )
        .await
        .unwrap();
        store.close().await;
    });
    let today = NaiveDate::from_ymd_opt(2025, 7, 30).unwrap();
    let base = settings(&server);
    for (label, route) in [
        ("direct", Route::default()),
        (
            "tinyproxy",
            Route::resolve(
                &ProxyChoice::Url(ProxyUrl::parse(&proxy.url()).unwrap()),
                &[],
                &base.credentials,
                &|_| None,
            )
            .unwrap(),
        ),
    ] {
        let client = Client::new(&base, route).unwrap();
        let mut g = c.benchmark_group(format!("fetch/{label}"));
        g.sample_size(20).measurement_time(Duration::from_secs(15));
        let url = server.url("/files/ServiceTags_Public_20250728.json");
        g.bench_function("transfer", |b| {
            b.iter(|| {
                let tagwall::fetch::Download::Body(body) =
                    rt.block_on(client.download(&url, None)).unwrap()
                else {
                    panic!("no body")
                };
                assert_eq!(body.bytes.len(), file.len());
            })
        });
        g.bench_function("fetch_and_import", |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let db = dir.path().join("t.db");
                    std::fs::copy(&template_db, &db).unwrap();
                    let url = DbUrl::parse(&format!("sqlite://{}", db.display())).unwrap();
                    (rt.block_on(Store::open(&url)).unwrap(), dir)
                },
                |(store, dir)| {
                    let f = rt
                        .block_on(fetch_cloud(
                            &store,
                            &client,
                            &base,
                            Cloud::Public,
                            today,
                            Mode::Import,
                        ))
                        .unwrap();
                    assert!(matches!(f.outcome, Outcome::Imported { .. }));
                    (store, dir)
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, fetch);
criterion_main!(benches);
