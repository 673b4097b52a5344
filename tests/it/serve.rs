//! `tagwall serve` as firewalls poll it: the real binary on loopback, real published
//! directories from real weeks, raw HTTP/1.1 requests (paths sent exactly as written) and curl
//! for gzip and HTTP/2. Every route and status, Bearer and Basic tokens, traversal attempts,
//! republishing under a polling client, and SIGTERM.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::job::Job;
use common::serve::{start, start_logging, Server};
use common::{free_port, shared_data, tagwall_process};
use tagwall::core::digest::sha256_hex;

const TOKEN: &str = "0123456789abcdef-firewall-token";
const LIMITED: &str = "fedcba9876543210-frontdoor-only";

const RULESETS: &str = r#"
[[ruleset]]
name = "entra"
tags = ["AzureCloud"]
formats = ["txt", "csv", "nft"]

[[ruleset]]
name = "frontdoor"
tags = ["AzureFrontDoor.Frontend"]
formats = ["txt"]
"#;

/// Sends SIGTERM to `child` and waits for it to exit (at most 15 s): its exit status.
fn terminate(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what} did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A response: status, headers (lower-case names), body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One raw HTTP/1.1 request, the path sent byte for byte.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(port: u16, path: &str, token: Option<&str>) -> Got {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    request(port, "GET", path, &headers)
}

fn manifest(job: &Job, ruleset: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(job.out().join(ruleset).join("manifest.json")).unwrap())
        .unwrap()
}

fn sha_of(manifest: &serde_json::Value, file: &str) -> String {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == file)
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

fn published_job(shared: &std::path::Path, week: &str, extra: &str) -> Job {
    let job = Job::new(None, &format!("{extra}\n{RULESETS}"));
    job.add_week(shared, week);
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    job
}

#[test]
fn every_route_answers_as_documented() {
    let Some(shared) = shared_data() else { return };
    let tokens_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        tokens_file.path(),
        format!("# limited\n{LIMITED} frontdoor\n"),
    )
    .unwrap();
    let job = published_job(
        &shared,
        "20250728",
        &format!(
            "[serve]\ntokens_file = \"{}\"",
            tokens_file.path().display()
        ),
    );
    let server = start(&job, Some(TOKEN));
    let port = server.port;

    // Health needs no token, and then names nothing; everything else needs one.
    let health = get(port, "/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&health.body).trim(),
        "{\"ok\":true}"
    );
    let health = get(port, "/healthz", Some(TOKEN));
    assert!(String::from_utf8_lossy(&health.body).contains("\"entra\""));
    let health = String::from_utf8(get(port, "/healthz", Some(LIMITED)).body).unwrap();
    assert!(
        health.contains("\"frontdoor\"") && !health.contains("entra"),
        "{health}"
    );
    for path in ["/rulesets/", "/rulesets/entra/entra.txt", "/metrics"] {
        let denied = get(port, path, None);
        assert_eq!(denied.status, 401, "{path}");
        let challenges: Vec<&str> = denied
            .headers
            .iter()
            .filter(|(k, _)| k == "www-authenticate")
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{challenges:?}"
        );
        assert_eq!(
            get(port, path, Some("0123456789abcdef-wrong-token")).status,
            401
        );
    }
    // Basic with any user name and the token as password (what PAN-OS and FortiGate send).
    let basic = format!(
        "Basic {}",
        base64_encode(format!("panos:{TOKEN}").as_bytes())
    );
    assert_eq!(
        request(
            port,
            "GET",
            "/rulesets/entra/entra.txt",
            &[("Authorization", &basic)]
        )
        .status,
        200
    );

    // Every file of the manifest, byte for byte, with its validators.
    let m = manifest(&job, "entra");
    let mut names: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    names.push("manifest.json".into());
    for name in &names {
        let got = get(port, &format!("/rulesets/entra/{name}"), Some(TOKEN));
        assert_eq!(got.status, 200, "{name}");
        let on_disk = std::fs::read(job.out().join("entra").join(name)).unwrap();
        assert_eq!(got.body, on_disk, "{name} is served byte for byte");
        assert_eq!(
            got.header("etag").unwrap(),
            format!("\"{}\"", sha256_hex(&on_disk))
        );
        assert_eq!(got.header("cache-control"), Some("no-cache"));
        assert!(got.header("last-modified").is_some());
        let wanted = if name.ends_with(".json") {
            "application/json"
        } else if name.ends_with(".csv") {
            "text/csv; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        assert_eq!(got.header("content-type"), Some(wanted), "{name}");
    }
    let txt = get(port, "/rulesets/entra/entra.txt", Some(TOKEN));
    let etag = txt.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha_of(&m, "entra.txt")));
    let auth = format!("Bearer {TOKEN}");
    let conditional = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        request(port, "GET", "/rulesets/entra/entra.txt", &all)
    };
    let not_modified = conditional(&[("If-None-Match", &etag)]);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(conditional(&[("If-None-Match", "\"other\"")]).status, 200);
    let lm = txt.header("last-modified").unwrap().to_string();
    assert_eq!(conditional(&[("If-Modified-Since", &lm)]).status, 304);
    assert_eq!(
        conditional(&[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]).status,
        200
    );
    // HEAD: the headers of GET, no body.
    let head = request(
        port,
        "HEAD",
        "/rulesets/entra/entra.txt",
        &[("Authorization", &auth)],
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        txt.body.len().to_string()
    );
    assert!(head.body.is_empty());
    // gzip for clients that accept it (curl decodes it back).
    let gz = curl(
        port,
        &["--compressed", "-D", "-"],
        "/rulesets/entra/entra.txt",
    );
    assert!(
        gz.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{gz}"
    );
    assert!(gz.ends_with(std::str::from_utf8(&txt.body).unwrap()));
    // HTTP/2 (prior knowledge) serves the same bytes.
    let h2 = curl(
        port,
        &["--http2-prior-knowledge", "-D", "-"],
        "/rulesets/entra/entra.txt",
    );
    assert!(h2.starts_with("HTTP/2 200"), "{h2}");
    assert!(h2.ends_with(std::str::from_utf8(&txt.body).unwrap()));

    // The index: names, files, snapshot, published at.
    let index: serde_json::Value =
        serde_json::from_slice(&get(port, "/rulesets/", Some(TOKEN)).body).unwrap();
    let entra = index["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "entra")
        .unwrap();
    assert_eq!(entra["snapshot"], "Public 2025-07-28 (id:1)");
    assert!(entra["published_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entra["files"].as_array().unwrap().len(), names.len());

    // A limited token reads its rulesets only.
    assert_eq!(
        get(port, "/rulesets/frontdoor/frontdoor.txt", Some(LIMITED)).status,
        200
    );
    assert_eq!(
        get(port, "/rulesets/entra/entra.txt", Some(LIMITED)).status,
        404
    );
    let limited: serde_json::Value =
        serde_json::from_slice(&get(port, "/rulesets/", Some(LIMITED)).body).unwrap();
    assert_eq!(limited["rulesets"].as_array().unwrap().len(), 1);

    // Nothing else, and no path reaches the file system.
    for (path, statuses) in [
        ("/rulesets/nosuch/x.txt", &[404][..]),
        ("/rulesets/entra/nosuch.txt", &[404]),
        ("/", &[200]),
        ("/out/entra/entra.txt", &[404]),
        ("/rulesets/../tagwall.toml", &[400]),
        ("/rulesets/entra/../../tagwall.toml", &[400]),
        ("/rulesets/entra/%2e%2e/%2e%2e/tagwall.toml", &[400]),
        ("/rulesets/entra%2fentra.txt", &[400]),
        ("/rulesets/entra\\entra.txt", &[400]),
        ("/rulesets/entra/.tagwall", &[404]),
        ("//etc/passwd", &[400]),
        ("/rulesets/entra/entra.txt%00", &[400]),
        ("/rulesets/entra//entra.txt", &[400]),
        ("http://127.0.0.1/rulesets/../t.db", &[400]),
    ] {
        let got = get(port, path, Some(TOKEN));
        assert!(statuses.contains(&got.status), "{path}: {}", got.status);
    }
    let post = request(
        port,
        "POST",
        "/rulesets/entra/entra.txt",
        &[("Authorization", &auth)],
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Metrics count what was served.
    let metrics = String::from_utf8(get(port, "/metrics", Some(TOKEN)).body).unwrap();
    assert!(
        metrics.contains(
            "tagwall_serve_requests_total{ruleset=\"entra\",file=\"entra.txt\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "tagwall_serve_requests_total{ruleset=\"entra\",file=\"entra.txt\",status=\"304\"}"
    ));
    assert!(metrics.contains("tagwall_serve_publish_age_seconds{ruleset=\"entra\"}"));
    assert!(
        !metrics.contains("tagwall.toml"),
        "request paths never become labels"
    );
    // A token limited to frontdoor sees frontdoor's figures only, not the server's.
    let limited = String::from_utf8(get(port, "/metrics", Some(LIMITED)).body).unwrap();
    assert!(limited.contains("ruleset=\"frontdoor\""), "{limited}");
    assert!(!limited.contains("entra"), "{limited}");
    assert!(
        !limited.contains("tagwall_serve_connections_open"),
        "{limited}"
    );
    assert!(
        metrics.contains("tagwall_serve_connections_open"),
        "{metrics}"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// curl with the token, the response (headers with `-D -`, then the body) as text.
fn curl(port: u16, args: &[&str], path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl is required");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_polling_client_never_sees_a_mixed_list_while_weeks_are_published() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250707", "");
    let server = start(&job, None);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let poller = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let got = get(port, "/rulesets/entra/entra.txt", None);
                assert_eq!(got.status, 200, "never an error while publishing");
                assert!(!got.body.is_empty(), "never an empty list");
                seen.lock().unwrap().push((
                    sha256_hex(&got.body),
                    got.header("etag").unwrap().to_string(),
                ));
            }
        })
    };
    let mut published = vec![sha_of(&manifest(&job, "entra"), "entra.txt")];
    for week in ["20250714", "20250721", "20250728"] {
        job.add_week(&shared, week);
        let (code, text) = job.sync(&[]);
        assert_eq!(code, 0, "{text}");
        let sha = sha_of(&manifest(&job, "entra"), "entra.txt");
        published.push(sha.clone());
        // Served within a second of the publish.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let etag = get(port, "/rulesets/entra/entra.txt", None)
                .header("etag")
                .unwrap()
                .to_string();
            if etag == format!("\"{sha}\"") {
                break;
            }
            assert!(Instant::now() < deadline, "{week} not served within 1 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() > 20,
        "the client polled throughout: {}",
        seen.len()
    );
    for (body, etag) in seen.iter() {
        assert!(published.contains(body), "a body that was never published");
        assert_eq!(*etag, format!("\"{body}\""), "the ETag names the body sent");
    }
}

#[test]
fn sigterm_stops_accepting_and_exits_cleanly() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250728", "");
    let mut server = start(&job, None);
    // A keep-alive connection that is idle when the signal comes.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let exit = terminate(&mut server.child, "serve");
    assert!(exit.success(), "{exit}");
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[test]
fn each_request_is_one_json_access_log_line_without_secrets() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250728", "");
    let log_path = job.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = start_logging(&job, Some(TOKEN), &["--log-format", "json"], log.into());
    let port = server.port;
    let auth = format!("Bearer {TOKEN}");
    let ok = request(
        port,
        "GET",
        "/rulesets/entra/entra.txt",
        &[("Authorization", &auth), ("User-Agent", "PAN-OS/11.1 test")],
    );
    assert_eq!(ok.status, 200);
    let etag = ok.header("etag").unwrap().to_string();
    let not_modified = request(
        port,
        "GET",
        "/rulesets/entra/entra.txt",
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!(not_modified.status, 304);
    let wrong = format!("Bearer {LIMITED}-wrong");
    assert_eq!(
        request(port, "GET", "/rulesets/", &[("Authorization", &wrong)]).status,
        401
    );
    assert_eq!(get(port, "/rulesets/%2e%2e/etc/passwd", None).status, 400);
    let evil_agent = "x\"}{\"status\":200";
    assert_eq!(
        request(
            port,
            "HEAD",
            "/healthz?token=not-logged",
            &[("User-Agent", evil_agent)]
        )
        .status,
        200
    );
    // The lines are written before the answers are sent; stop and read them.
    terminate(&mut server.child, "serve");
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(LIMITED), "{text}");
    assert!(
        !text.contains("not-logged"),
        "the query string is not logged: {text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "tagwall::access")
        .collect();
    let got: Vec<(String, String, u64)> = lines
        .iter()
        .map(|v| {
            let f = &v["fields"];
            (
                f["method"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("GET", "/rulesets/entra/entra.txt", 200),
        ("GET", "/rulesets/entra/entra.txt", 304),
        ("GET", "/rulesets/", 401),
        ("GET", "/rulesets/%2e%2e/etc/passwd", 400),
        ("HEAD", "/healthz", 200),
    ];
    let want: Vec<(String, String, u64)> = want
        .iter()
        .map(|(m, p, s)| (m.to_string(), p.to_string(), *s))
        .collect();
    assert_eq!(got, want, "{text}");
    let first = &lines[0]["fields"];
    assert_eq!(first["bytes"].as_u64().unwrap() as usize, ok.body.len());
    assert_eq!(first["agent"], "PAN-OS/11.1 test");
    assert_eq!(first["http"], "1.1");
    assert!(first["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(first["ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[1]["fields"]["bytes"], 0);
    assert_eq!(
        lines[4]["fields"]["agent"], evil_agent,
        "kept whole, as a JSON string"
    );
    assert_eq!(lines[4]["fields"]["bytes"], 0, "HEAD sends no body");
    assert!(lines.iter().all(|l| l["level"] == "INFO"));
}

#[test]
fn the_access_log_can_be_turned_off() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250728", "[serve]\naccess_log = false\n");
    let log_path = job.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = start_logging(&job, None, &["--log-format", "json"], log.into());
    assert_eq!(
        get(server.port, "/rulesets/entra/entra.txt", None).status,
        200
    );
    terminate(&mut server.child, "serve");
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("serving"), "the other logs stay: {text}");
    assert!(!text.contains("tagwall::access"), "{text}");
}

/// With stderr blocked (a pipe nobody reads), requests are answered at full rate: access log
/// lines past what waits in memory are dropped and counted in `/metrics`. (Before, the log's
/// writes stalled every request: 71 requests/s.)
#[test]
fn a_blocked_stderr_never_slows_serving() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250728", "");
    // The pipe's read end is kept and never read: once its 64 KiB are full, writes block.
    let mut server = start_logging(&job, None, &[], Stdio::piped());
    let unread = server.child.stderr.take().unwrap();
    const REQUESTS: usize = 12_000;
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let got = get(server.port, "/rulesets/entra/entra.txt", None);
        assert_eq!(got.status, 200);
    }
    let took = started.elapsed();
    let metrics = String::from_utf8(get(server.port, "/metrics", None).body).unwrap();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tagwall_serve_access_log_dropped_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(dropped > 0, "{metrics}");
    // 12,000 lines of about 150 bytes do not fit the pipe and the 1 MiB in memory: at 71
    // requests/s, as before, this took nearly three minutes.
    assert!(
        took < Duration::from_secs(60),
        "{REQUESTS} requests took {took:?}"
    );
    // The other logs go through the same buffer: SIGTERM still stops the server while stderr
    // stays blocked (terminate waits at most 15 s).
    let status = terminate(&mut server.child, "serve");
    assert!(status.success(), "{status:?}");
    let mut unread = unread;
    let written = std::io::copy(&mut unread, &mut std::io::sink()).unwrap();
    // The pipe was full: its 64 KiB less the part of a line that no longer fitted.
    assert!(written >= 48 * 1024, "{written}");
}

#[test]
fn settings_and_tokens_are_checked_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tagwall.toml"),
        format!("[serve]\nlisten = \"nowhere\"\n{RULESETS}"),
    )
    .unwrap();
    let out = tagwall_process(dir.path()).arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[serve] listen = \"nowhere\""));
    std::fs::write(dir.path().join("tagwall.toml"), RULESETS).unwrap();
    let out = tagwall_process(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TAGWALL_SERVE_TOKENS", "short-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TAGWALL_SERVE_TOKENS: a token must be 16"),
        "{err}"
    );
    assert!(!err.contains("short-secret"), "{err}");
}

/// Tokens over plain HTTP beyond loopback are readable on the way: `serve` says so at start.
#[test]
fn tokens_over_plain_http_beyond_loopback_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tagwall.toml"), RULESETS).unwrap();
    let port = free_port();
    let mut child = tagwall_process(dir.path())
        .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
        .env("TAGWALL_SERVE_TOKENS", "0123456789abcdef0123456789abcdef")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(&mut child, "serve");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("over plain HTTP with tokens: a token sent in clear can be read on the way"),
        "{err}"
    );
    assert!(!err.contains("0123456789abcdef"), "{err}");
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250728", "");
    let server = start(&job, None);
    // A request head that never ends, and a keep-alive connection that sends nothing more.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let started = Instant::now();
    for mut s in [slow, idle] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        // Closed by the server (EOF), not by our timeout.
        let n = s.read_to_end(&mut rest).unwrap();
        assert!(n < 1024, "no answer to a head that never ended");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The server still answers.
    assert_eq!(get(server.port, "/healthz", None).status, 200);
}

/// A TLS client that trusts only `ca_pem`: one connection, kept open across requests.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(port: u16, ca_pem: &str) -> Result<TlsClient, std::io::Error> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = rustls::ClientConnection::new(Arc::new(config), "127.0.0.1".try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut client = TlsClient {
            stream: rustls::StreamOwned::new(conn, tcp),
        };
        // Complete the handshake now, so a refused certificate fails here.
        client.stream.conn.complete_io(&mut client.stream.sock)?;
        Ok(client)
    }

    /// GET `path` on the kept connection: the status and body.
    fn get(&mut self, path: &str) -> (u16, String) {
        write!(
            self.stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

/// Writes a new pair into `dir` (by rename: never half a file) and returns its CA.
/// A published real week served over HTTPS with `dir`'s `cert.pem` and `key.pem`.
fn tls_job(shared: &std::path::Path, dir: &std::path::Path) -> Job {
    published_job(
        shared,
        "20250728",
        &format!(
            "[serve]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
    )
}

fn new_pair(dir: &std::path::Path) -> String {
    let pki = common::https::TestPki::new();
    for (name, text) in [("cert.pem", &pki.chain_pem), ("key.pem", &pki.key_pem)] {
        std::fs::write(dir.join(format!(".{name}")), text).unwrap();
        std::fs::rename(dir.join(format!(".{name}")), dir.join(name)).unwrap();
    }
    pki.ca_pem
}

/// A certificate out of its dates is loaded (a renewal may be on its way) but never silently:
/// the log names its dates at start and on reload, and `/metrics` shows them and that it is not
/// valid now.
#[test]
fn an_expired_certificate_is_warned_about_and_shown_in_metrics() {
    let Some(shared) = shared_data() else { return };
    let pki = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(pki.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(pki.path().join("key.pem"), key.serialize_pem()).unwrap();
    let job = tls_job(&shared, pki.path());
    let log = job.path().join("serve.log");
    let mut server = start_logging(
        &job,
        Some(TOKEN),
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let out = std::process::Command::new("curl")
        .args(["-sSk", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(format!("https://127.0.0.1:{}/metrics", server.port))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        metrics.contains("tagwall_serve_tls_certificate_valid 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tagwall_serve_tls_certificate_not_after_seconds 1609459200\n"),
        "{metrics}"
    );
    let status = terminate(&mut server.child, "serve");
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(
            "has expired (valid from 2020-01-01 00:00:00 UTC to 2021-01-01 00:00:00 UTC)"
        ),
        "{text}"
    );
}

#[test]
fn https_with_a_verifying_client_and_certificates_reloaded_without_dropping_connections() {
    let Some(shared) = shared_data() else { return };
    let pki = tempfile::tempdir().unwrap();
    let first_ca = new_pair(pki.path());
    let job = tls_job(&shared, pki.path());
    let server = start(&job, Some(TOKEN));
    let port = server.port;
    let mut kept = TlsClient::connect(port, &first_ca).unwrap();
    let (status, body) = kept.get("/rulesets/entra/entra.txt");
    assert_eq!(status, 200);
    assert_eq!(
        body.as_bytes(),
        std::fs::read(job.out().join("entra/entra.txt")).unwrap()
    );
    // curl verifies the chain too, and gets HTTP/2 by ALPN.
    std::fs::write(pki.path().join("ca1.pem"), &first_ca).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(pki.path().join("ca1.pem"))
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
    // A client that does not trust the CA is refused.
    let untrusted = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!untrusted.success());

    // A new pair and SIGHUP: new handshakes get it at once, the open connection goes on.
    let second_ca = new_pair(pki.path());
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(3);
    while TlsClient::connect(port, &second_ca).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not loaded on SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        TlsClient::connect(port, &first_ca).is_err(),
        "the old certificate is gone"
    );
    assert_eq!(kept.get("/healthz").0, 200, "the open connection was kept");

    // A key that does not match: the pair in use stays.
    let third = common::https::TestPki::new();
    std::fs::write(pki.path().join("key.pem"), &third.key_pem).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        TlsClient::connect(port, &second_ca)
            .unwrap()
            .get("/healthz")
            .0,
        200
    );
    // A changed file is picked up without a signal.
    let fourth_ca = new_pair(pki.path());
    let deadline = Instant::now() + Duration::from_secs(4);
    while TlsClient::connect(port, &fourth_ca).is_err() {
        assert!(
            Instant::now() < deadline,
            "the changed files were not loaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(kept.get("/healthz").0, 200);
}

#[test]
fn the_daemon_runs_the_schedule_and_the_server_in_one_process() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, RULESETS);
    job.add_week(&shared, "20250728");
    let port = free_port();
    let mut child = tagwall_process(job.path())
        .args([
            "daemon",
            "--run-now",
            "--serve",
            &format!("127.0.0.1:{port}"),
            "--source",
        ])
        .arg(&job.mirror)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run publishes; the server picks it up without a restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(port, "/healthz", None).status == 200
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "nothing was served");
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = get(port, "/rulesets/entra/entra.txt", None);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body,
        std::fs::read(job.out().join("entra/entra.txt")).unwrap()
    );
    // One SIGTERM stops both.
    let exit = terminate(&mut child, "the daemon");
    assert!(exit.success(), "{exit}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// `serve` replicas reading the store, each in a directory of its own (no shared disk).
fn replica(db: &str, tokens: Option<&str>) -> (Job, Server) {
    let job = Job::new(
        Some(db),
        &format!("[serve]\nsource = \"store\"\n{RULESETS}"),
    );
    let server = start(&job, tokens);
    (job, server)
}

/// Waits until every server answers `path` with `body`; returns their responses.
fn all_serve(servers: &[&Server], path: &str, body: &[u8], within: Duration) -> Vec<Got> {
    let deadline = Instant::now() + within;
    loop {
        let got: Vec<Got> = servers
            .iter()
            .map(|s| get(s.port, path, Some(TOKEN)))
            .collect();
        if got.iter().all(|g| g.status == 200 && g.body == body) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "not served by every replica within {within:?}: {:?}",
            got.iter().map(|g| g.status).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two replicas serve what one sync publishes: the same bytes, ETag and Last-Modified.
fn replicas_serve_what_one_sync_publishes(shared: &std::path::Path, db: Option<&str>) {
    let publisher = Job::new(db, RULESETS);
    let db = db.map_or_else(
        || format!("sqlite://{}", publisher.path().join("t.db").display()),
        str::to_string,
    );
    publisher.add_week(shared, "20250721");
    let (code, text) = publisher.sync(&[]);
    assert_eq!(code, 0, "{text}");
    let (job_a, a) = replica(&db, Some(TOKEN));
    let (job_b, b) = replica(&db, Some(TOKEN));
    for week in ["20250721", "20250728"] {
        if week != "20250721" {
            publisher.add_week(shared, week);
            let (code, text) = publisher.sync(&[]);
            assert_eq!(code, 0, "{text}");
        }
        let path = "/rulesets/entra/entra.txt";
        let body = std::fs::read(publisher.out().join("entra/entra.txt")).unwrap();
        let got = all_serve(&[&a, &b], path, &body, Duration::from_secs(2));
        let sha = sha_of(&manifest(&publisher, "entra"), "entra.txt");
        for g in &got {
            assert_eq!(
                g.header("etag"),
                Some(format!("\"{sha}\"").as_str()),
                "{week}"
            );
            assert_eq!(g.header("last-modified"), got[0].header("last-modified"));
        }
        let manifests: Vec<Vec<u8>> = [&a, &b]
            .iter()
            .map(|s| get(s.port, "/rulesets/entra/manifest.json", Some(TOKEN)).body)
            .collect();
        let on_disk = std::fs::read(publisher.out().join("entra/manifest.json")).unwrap();
        assert!(manifests.iter().all(|m| *m == on_disk), "{week}");
        // Every ruleset of the run is recorded a moment apart, and replicas refresh within a
        // second: the indexes agree once both have seen the last one.
        let deadline = Instant::now() + Duration::from_secs(3);
        let index = loop {
            let index: Vec<Vec<u8>> = [&a, &b]
                .iter()
                .map(|s| get(s.port, "/rulesets/", Some(TOKEN)).body)
                .collect();
            if index[0] == index[1] || Instant::now() > deadline {
                break index;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(index[0], index[1], "the same index, published_at included");
        for s in [&a, &b] {
            assert_eq!(get(s.port, "/healthz", None).status, 200);
        }
    }
    assert!(
        !job_a.out().exists() && !job_b.out().exists(),
        "nothing on their disks"
    );
}

#[test]
fn two_replicas_on_postgresql_serve_the_same_bytes_and_etags() {
    let Some(shared) = shared_data() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(t) = rt.block_on(common::postgres()) else {
        return;
    };
    replicas_serve_what_one_sync_publishes(&shared, Some(t.url.expose()));
}

#[test]
fn two_replicas_on_sqlite_serve_the_same_bytes_and_etags() {
    let Some(shared) = shared_data() else { return };
    replicas_serve_what_one_sync_publishes(&shared, None);
}

#[test]
fn a_tampered_publish_in_the_store_is_not_served() {
    let Some(shared) = shared_data() else { return };
    let publisher = published_job(&shared, "20250728", "");
    let db = format!("sqlite://{}", publisher.path().join("t.db").display());
    let (_job, server) = replica(&db, None);
    let good = std::fs::read(publisher.out().join("entra/entra.txt")).unwrap();
    all_serve(
        &[&server],
        "/rulesets/entra/entra.txt",
        &good,
        Duration::from_secs(2),
    );
    // A newer publish whose list is not what its manifest records: one more address.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO publishes (ruleset, manifest_sha256, published_at) \
             SELECT ruleset, 'x', published_at FROM publishes WHERE ruleset = 'entra' \
             ORDER BY id DESC LIMIT 1 RETURNING id",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO publish_files (publish_id, position, name, body) \
             SELECT $1, position, name, CASE WHEN name = 'entra.txt' \
               THEN body || CAST('0.0.0.0/0' || char(10) AS BLOB) ELSE body END \
             FROM publish_files WHERE publish_id = (SELECT MAX(id) FROM publishes \
               WHERE ruleset = 'entra' AND id < $1)",
        )
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    let health = loop {
        let h = get(server.port, "/healthz", None);
        if h.status == 503 || Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(health.status, 503);
    let why = String::from_utf8_lossy(&health.body);
    assert!(
        why.contains("entra.txt differs from what its manifest.json records"),
        "{why}"
    );
    let got = get(server.port, "/rulesets/entra/entra.txt", None);
    assert_eq!(got.body, good, "the last good copy stays served");
}

#[test]
fn serving_from_the_store_before_anything_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("empty.db").display());
    let (_job, server) = replica(&db, None);
    let h = get(server.port, "/healthz", None);
    assert_eq!(h.status, 503, "nothing published: not ready");
    assert_eq!(
        get(server.port, "/rulesets/entra/entra.txt", None).status,
        404
    );
}

#[test]
fn emit_records_only_what_it_publishes_into_the_settings_output_directory() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250721", "");
    let db =
        tagwall::store::DbUrl::parse(&format!("sqlite://{}", job.path().join("t.db").display()))
            .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let recorded = || {
        rt.block_on(common::query_ids(
            &db,
            "SELECT id FROM publishes WHERE ruleset = 'entra'",
        ))
        .len()
    };
    assert_eq!(recorded(), 1, "sync recorded its publish");
    let next = shared.join("Public/ServiceTags_Public_20250728.json.gz");
    let (code, text) = job.run(&["import", next.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let elsewhere = job.path().join("elsewhere");
    let (code, text) = job.run(&["emit", "--out", elsewhere.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(elsewhere.join("entra/entra.txt").exists());
    assert_eq!(recorded(), 1, "emit --out elsewhere is not served");
    let (code, text) = job.run(&["emit"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recorded(), 2, "emit into the output directory is");
    let (code, text) = job.run(&["emit"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recorded(), 2, "an unchanged publish is not recorded again");
}

#[test]
fn two_publishes_in_one_second_never_share_last_modified() {
    let Some(shared) = shared_data() else { return };
    let job = published_job(&shared, "20250721", "");
    let server = start(&job, None);
    let port = server.port;
    let first = get(port, "/rulesets/entra/entra.txt", None);
    let first_lm = first.header("last-modified").unwrap().to_string();
    let manifest = job.out().join("entra/manifest.json");
    let first_mtime = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    // The next week, its manifest dated within the same second as the first publish.
    job.add_week(&shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    std::fs::File::options()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_modified(first_mtime)
        .unwrap();
    let new_body = std::fs::read(job.out().join("entra/entra.txt")).unwrap();
    assert_ne!(new_body, first.body);
    let deadline = Instant::now() + Duration::from_secs(3);
    let got = loop {
        let got = request(
            port,
            "GET",
            "/rulesets/entra/entra.txt",
            &[("If-Modified-Since", &first_lm)],
        );
        if got.status == 200 && got.body == new_body || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(got.status, 200, "a changed body is never 304");
    assert_eq!(got.body, new_body);
    assert_ne!(got.header("last-modified").unwrap(), first_lm);
}
