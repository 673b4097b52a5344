//! `tagwall fetch` and `tagwall doctor` against a local HTTPS server with a test CA and a real
//! tinyproxy: discovery, fallbacks, retries, conditional downloads, proxies and TLS. Every
//! request goes to 127.0.0.1.

use crate::common;

use std::path::Path;
use std::time::Duration;

use chrono::{Days, Utc};
use common::https::{Reply, TestServer};
use common::tinyproxy::Tinyproxy;
use common::{shared_data, stdout, tagwall, three_weeks};

/// A settings file pointing Public's page and folder at the test server.
fn settings(dir: &Path, server: &TestServer, extra: &str) {
    std::fs::write(
        dir.join("tagwall.toml"),
        format!(
            r#"[store]
url = "sqlite://{db}"

[fetch]
clouds = ["Public"]
allowed_hosts = ["127.0.0.1"]
ca_bundle = "{ca}"
retries = 2
retry_delay_ms = 10
timeout_seconds = 3
connect_timeout_seconds = 3
pages = {{ Public = "{page}" }}
folders = {{ Public = "{folder}" }}
{extra}
"#,
            db = dir.join("t.db").display(),
            ca = server.ca_pem.display(),
            page = server.url("/details"),
            folder = server.url("/files/"),
        ),
    )
    .unwrap();
}

/// The real Public file of 2025-07-28, uncompressed, when the shared data is present.
fn real_public() -> Option<Vec<u8>> {
    let gz = shared_data()?.join("Public/ServiceTags_Public_20250728.json.gz");
    Some(tagwall::core::parse::decompress(std::fs::read(gz).unwrap()).unwrap())
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tagwall(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs with extra environment variables; the exit code and stdout then stderr.
fn run_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tagwall(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run_text(&mut cmd)
}

fn snapshot_count(dir: &Path) -> usize {
    stdout(tagwall(dir).args(["snapshots", "--format", "json"]))
        .matches("\"file_date\"")
        .count()
}

#[test]
fn the_newest_of_several_links_is_imported_and_an_unchanged_file_costs_no_body() {
    let Some(real) = real_public() else { return };
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    settings(dir.path(), &server, "");
    let page = format!(
        r#"<html><a href="{0}/files/ServiceTags_Public_20250714.json">old</a>
        <a href="{0}/files/ServiceTags_Public_20250728.json">new</a>
        <a href="{0}/files/ServiceTags_Public_20250721.json">older</a></html>"#,
        server.url("")
    );
    server.route("/details", Reply::page(&page));
    server.route(
        "/files/ServiceTags_Public_20250728.json",
        Reply::file(real.clone()),
    );

    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Public           2025-07-28  new: imported as id:1"),
        "{out}"
    );
    assert!(
        out.contains(&format!("({} bytes, sha256 ", real.len())),
        "{out}"
    );
    assert!(out.contains("(listed on https://127.0.0.1:"), "{out}");
    assert!(
        err.contains("the newest file found is"),
        "overdue warning: {err}"
    );
    let snapshots = stdout(tagwall(dir.path()).args(["snapshots"]));
    assert!(snapshots.contains("2025-07-28"), "{snapshots}");
    let get = server
        .log()
        .into_iter()
        .find(|l| l.method == "GET" && l.path.ends_with("0728.json"))
        .unwrap();
    assert!(get.header("User-Agent").unwrap().starts_with("tagwall/"));

    // Again: one conditional request, answered 304 with no body; nothing imported.
    server.clear_log();
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("unchanged: not modified since it was stored as id:1"),
        "{out}"
    );
    let log = server.log();
    let file: Vec<_> = log
        .iter()
        .filter(|l| l.path.ends_with("0728.json"))
        .collect();
    assert_eq!(file.len(), 1, "{log:?}");
    assert_eq!((file[0].status, file[0].body_bytes), (304, 0));
    assert!(file[0].header("If-None-Match").is_some());
    assert!(file[0].header("If-Modified-Since").is_some());
    assert_eq!(snapshot_count(dir.path()), 1);

    // --dry-run stops after discovery.
    server.clear_log();
    let (code, out, _) = run(dir.path(), &["fetch", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("up to date: the newest file is already stored as id:1 (nothing to download)"),
        "{out}"
    );
    assert!(server.log().iter().all(|l| l.path == "/details"));
}

#[test]
fn pages_in_other_layouts_or_failing_fall_back_to_probing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    settings(dir.path(), &server, "");
    let [(_, w1), (_, w2), _] = three_weeks();
    // A page whose markup changed: the name only inside a script's JSON.
    server.route(
        "/details",
        Reply::page(r#"<script>window.__DLC__={"files":[{"name":"ServiceTags_Public_20250707.json"}]}</script>"#),
    );
    server.route(
        "/files/ServiceTags_Public_20250707.json",
        Reply::file(w1.into_bytes()),
    );
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2025-07-07  new: imported as id:1"), "{out}");

    // The page fails (500 after retries) and then lists nothing: probing finds the file of two
    // days ago, newest first.
    let recent = Utc::now().date_naive() - Days::new(2);
    let name = format!("ServiceTags_Public_{}.json", recent.format("%Y%m%d"));
    server.route(&format!("/files/{name}"), Reply::file(w2.into_bytes()));
    server.route("/details", Reply::Status(500));
    server.clear_log();
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{recent}  new: imported as id:2")),
        "{out}"
    );
    assert!(out.contains("(found by probing the folder)"), "{out}");
    assert!(err.contains("the page failed, probing"), "{err}");
    assert!(!out.contains("overdue"), "{out}");
    let heads: Vec<_> = server
        .log()
        .into_iter()
        .filter(|l| l.method == "HEAD")
        .collect();
    assert_eq!(heads.len(), 3, "today, yesterday, then the file: {heads:?}");
    let pages = server.log().iter().filter(|l| l.path == "/details").count();
    assert_eq!(pages, 3, "the page is tried 1 + retries times");

    server.route("/details", Reply::page("<html>nothing here</html>"));
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0);
    assert!(out.contains("unchanged: not modified"), "{out}");

    // Nothing anywhere: say where was looked.
    server.route(&format!("/files/{name}"), Reply::Status(404));
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("no Public file found: https://127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains("lists no Public file, and probing https://127.0.0.1:"),
        "{out}"
    );
}

#[test]
fn bursts_of_5xx_are_retried_and_cut_short_or_slow_downloads_fail_cleanly() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    settings(dir.path(), &server, "");
    let [(_, w1), (_, w2), (_, w3)] = three_weeks();
    let link = |date: &str| format!("ServiceTags_Public_{date}.json");
    server.route("/details", Reply::page(&link("20250707")));
    server.route(
        "/files/ServiceTags_Public_20250707.json",
        Reply::FailFirst {
            times: 2,
            status: 503,
            then: Box::new(Reply::file(w1.into_bytes())),
        },
    );
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("new: imported as id:1"), "{out}");
    assert_eq!(
        err.matches("answered 503 Service Unavailable").count(),
        2,
        "{err}"
    );
    assert!(err.contains("retry 2 of 2"), "{err}");

    // Always cut short: an error after the retries, nothing stored.
    let w2 = w2.into_bytes();
    server.route("/details", Reply::page(&link("20250714")));
    server.route(
        "/files/ServiceTags_Public_20250714.json",
        Reply::Truncated {
            sent: w2.len() / 2,
            body: w2.clone(),
        },
    );
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "was cut short after {} bytes of {}",
            w2.len() / 2,
            w2.len()
        )),
        "{out}"
    );
    assert_eq!(snapshot_count(dir.path()), 1);

    // A complete answer whose JSON is cut: refused by validation, nothing stored.
    server.route(
        "/files/ServiceTags_Public_20250714.json",
        Reply::file(w2[..w2.len() - 40].to_vec()),
    );
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(out.contains("ServiceTags_Public_20250714.json: "), "{out}");
    assert_eq!(snapshot_count(dir.path()), 1);

    // Slower than the timeout: named as a timeout, with the host and port.
    server.route("/details", Reply::page(&link("20250721")));
    server.route(
        "/files/ServiceTags_Public_20250721.json",
        Reply::Slow {
            delay: Duration::from_secs(5),
            then: Box::new(Reply::file(w3.into_bytes())),
        },
    );
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "timed out after 3 s waiting for 127.0.0.1:{}",
            server.port
        )),
        "{out}"
    );
    assert_eq!(snapshot_count(dir.path()), 1);
}

#[test]
fn only_https_from_allowed_hosts_and_only_trusted_certificates() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let [(_, w1), ..] = three_weeks();
    server.route(
        "/files/ServiceTags_Public_20250707.json",
        Reply::file(w1.into_bytes()),
    );
    // A page linking elsewhere: refused, never contacted (and not replaced by an older file).
    server.route(
        "/details",
        Reply::page(
            "<a href='https://download.example.net/ServiceTags_Public_20250707.json'>x</a>",
        ),
    );
    settings(dir.path(), &server, "");
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(out.contains("refusing https://download.example.net/ServiceTags_Public_20250707.json: host download.example.net is not allowed (allowed: 127.0.0.1)"), "{out}");

    // Without the test CA, the certificate is refused with the inspection hint.
    server.route("/details", Reply::page("ServiceTags_Public_20250707.json"));
    let toml = std::fs::read_to_string(dir.path().join("tagwall.toml")).unwrap();
    let without_ca: String = toml
        .lines()
        .filter(|l| !l.starts_with("ca_bundle"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("tagwall.toml"), &without_ca).unwrap();
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("the certificate of 127.0.0.1 is not trusted"),
        "{out}"
    );
    assert!(
        out.contains("the network may be inspecting TLS; set [fetch] ca_bundle"),
        "{out}"
    );
    let (code, doctor, _) = run(dir.path(), &["doctor"]);
    assert_eq!(code, 1);
    assert!(
        doctor.contains(
            "FAIL  Public           tls      the certificate of 127.0.0.1 is not trusted"
        ),
        "{doctor}"
    );

    // With it, it works.
    settings(dir.path(), &server, "");
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, doctor, _) = run(dir.path(), &["doctor"]);
    assert_eq!(code, 0, "{doctor}");
    for step in ["route", "dns", "tcp", "tls", "page", "file", "age"] {
        assert!(
            doctor
                .lines()
                .any(|l| l.split_whitespace().nth(2) == Some(step)),
            "{step}: {doctor}"
        );
    }
    assert!(
        doctor.contains("warn  Public           age      the newest Public file is"),
        "{doctor}"
    );

    // A bad CA bundle is named.
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    let toml = std::fs::read_to_string(dir.path().join("tagwall.toml")).unwrap();
    let bad = toml.replace(
        &server.ca_pem.display().to_string(),
        &dir.path().join("bad.pem").display().to_string(),
    );
    std::fs::write(dir.path().join("tagwall.toml"), bad).unwrap();
    let (code, _, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.pem holds no"), "{err}");
}

#[test]
fn a_mirror_directory_works_offline_and_retired_germany_is_said_so() {
    let Some(shared) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tagwall.toml"),
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[fetch]\nmirror = \"{}\"\nproxy = \"http://127.0.0.1:9\"\n",
            dir.path().join("t.db").display(),
            shared.display()
        ),
    )
    .unwrap();
    // The proxy would refuse every connection: a directory needs none.
    let (code, out, err) = run(dir.path(), &["fetch", "--cloud", "all"]);
    assert_eq!(code, 0, "{out}{err}");
    for (cloud, date) in [
        ("Public", "2025-07-28"),
        ("AzureGovernment", ""),
        ("China", ""),
        ("AzureGermany", "2022-03-07"),
    ] {
        let line = out.lines().find(|l| l.starts_with(cloud)).unwrap();
        assert!(line.contains("new: imported as id:"), "{line}");
        assert!(line.contains(date), "{line}");
    }
    // From Microsoft (no mirror), AzureGermany is retired: said, not failed, no network.
    let (code, out, _) = run(dir.path(), &["fetch", "--cloud", "AzureGermany"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("already stored"),
        "the mirror still serves it: {out}"
    );
    std::fs::write(
        dir.path().join("tagwall.toml"),
        format!(
            "[store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let (code, out, _) = run(dir.path(), &["fetch", "--cloud", "AzureGermany"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim_end(), "AzureGermany     retired: its last file is dated 2022-03-07; its history stays readable, nothing to fetch");
}

/// The settings plus a proxy setting.
fn proxied(dir: &Path, server: &TestServer, proxy: &str) {
    settings(dir, server, &format!("proxy = \"{proxy}\""));
}

fn serve_week(server: &TestServer) {
    let [(_, w1), ..] = three_weeks();
    server.route("/details", Reply::page("ServiceTags_Public_20250707.json"));
    server.route(
        "/files/ServiceTags_Public_20250707.json",
        Reply::file(w1.into_bytes()),
    );
}

#[test]
fn through_tinyproxy_with_connect_tunnels() {
    let Some(proxy) = Tinyproxy::start(None, &[]) else {
        return;
    };
    let server = TestServer::start();
    serve_week(&server);
    let dir = tempfile::tempdir().unwrap();
    proxied(dir.path(), &server, &proxy.url());
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("new: imported as id:1"), "{out}");
    assert!(
        proxy
            .log_text()
            .contains(&format!("CONNECT 127.0.0.1:{}", server.port))
            || proxy.log_text().contains("CONNECT"),
        "{}",
        proxy.log_text()
    );
    let (code, doctor, _) = run(dir.path(), &["doctor"]);
    assert_eq!(code, 0, "{doctor}");
    assert!(
        doctor.contains(&format!(
            "through the proxy {} (from [fetch] proxy)",
            proxy.url()
        )),
        "{doctor}"
    );
    assert!(
        doctor.contains(&format!(
            "ok    Public           connect  the proxy opened a tunnel to 127.0.0.1:{}",
            server.port
        )),
        "{doctor}"
    );

    // proxy = "none" bypasses the environment's proxy; NO_PROXY bypasses it too.
    let before = proxy.log_text().matches("CONNECT").count();
    let via = proxy.url();
    proxied(dir.path(), &server, "none");
    let (code, text) = run_with(dir.path(), &["fetch"], &[("HTTPS_PROXY", &via)]);
    assert_eq!(code, 0, "{text}");
    proxied(dir.path(), &server, "env");
    let no_proxy = [
        ("HTTPS_PROXY", via.as_str()),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let (code, text) = run_with(dir.path(), &["fetch"], &no_proxy);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        proxy.log_text().matches("CONNECT").count(),
        before,
        "bypassed"
    );
    // And the environment's proxy is used without NO_PROXY.
    let (code, text) = run_with(dir.path(), &["fetch"], &[("HTTPS_PROXY", &via)]);
    assert_eq!(code, 0, "{text}");
    assert!(proxy.log_text().matches("CONNECT").count() > before);
}

#[test]
fn proxy_authentication_and_refused_tunnels_say_what_to_do() {
    let Some(proxy) = Tinyproxy::start(Some(("svc-tagwall", "Pr0xy-S3cret")), &[]) else {
        return;
    };
    let server = TestServer::start();
    serve_week(&server);
    let dir = tempfile::tempdir().unwrap();
    proxied(dir.path(), &server, &proxy.url());

    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "the proxy {} requires authentication (407 Proxy Authentication Required)",
            proxy.url()
        )),
        "{out}"
    );
    assert!(
        out.contains("configure credentials: set TAGWALL_PROXY_USER and TAGWALL_PROXY_PASSWORD"),
        "{out}"
    );

    let (wrong, text) = run_with(
        dir.path(),
        &["-vv", "fetch"],
        &[
            ("TAGWALL_PROXY_USER", "svc-tagwall"),
            ("TAGWALL_PROXY_PASSWORD", "wrong-Secret"),
        ],
    );
    assert_eq!(wrong, 1);
    assert!(
        text.contains("the proxy rejected the credentials sent"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-Secret"),
        "the password leaked: {text}"
    );
    let (code, text) = run_with(
        dir.path(),
        &["doctor"],
        &[
            ("TAGWALL_PROXY_USER", "svc-tagwall"),
            ("TAGWALL_PROXY_PASSWORD", "wrong-Secret"),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("connect  credentials rejected: the proxy answered CONNECT"),
        "{text}"
    );
    assert!(!text.contains("to be allowed"), "{text}");

    let (right, text) = run_with(
        dir.path(),
        &["-vv", "fetch"],
        &[
            ("TAGWALL_PROXY_USER", "svc-tagwall"),
            ("TAGWALL_PROXY_PASSWORD", "Pr0xy-S3cret"),
        ],
    );
    assert_eq!(right, 0, "{text}");
    assert!(text.contains("new: imported as id:1"), "{text}");
    assert!(
        !text.contains("Pr0xy-S3cret"),
        "the password leaked: {text}"
    );

    // From a file, and in the environment's proxy URL: never shown by doctor either.
    std::fs::write(dir.path().join("cred"), "svc-tagwall:Pr0xy-S3cret\n").unwrap();
    settings(
        dir.path(),
        &server,
        &format!(
            "proxy = \"{}\"\nproxy_credentials_file = \"{}\"",
            proxy.url(),
            dir.path().join("cred").display()
        ),
    );
    let (doctor, text) = run_with(dir.path(), &["-vv", "doctor"], &[]);
    assert_eq!(doctor, 0, "{text}");
    assert!(text.contains("credentials from"), "{text}");
    assert!(!text.contains("Pr0xy-S3cret"), "{text}");
    proxied(dir.path(), &server, "env");
    let env_url = format!("http://svc-tagwall:Pr0xy-S3cret@127.0.0.1:{}", proxy.port);
    let (out, text) = run_with(
        dir.path(),
        &["-vv", "doctor"],
        &[("HTTPS_PROXY", env_url.as_str())],
    );
    assert_eq!(out, 0, "{text}");
    assert!(!text.contains("Pr0xy-S3cret"), "{text}");

    // Without credentials, doctor names the 407 at the CONNECT step.
    proxied(dir.path(), &server, &proxy.url());
    let (code, doctor, _) = run(dir.path(), &["doctor"]);
    assert_eq!(code, 1);
    assert!(
        doctor.contains(&format!(
            "FAIL  Public           connect  credentials required: the proxy answered CONNECT 127.0.0.1:{} with 407",
            server.port
        )),
        "{doctor}"
    );

    // A proxy that only tunnels to port 443 refuses ours with its own error page.
    let Some(strict) = Tinyproxy::start(None, &[443]) else {
        return;
    };
    proxied(dir.path(), &server, &strict.url());
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "the proxy {} refused to open a tunnel to 127.0.0.1:{} (CONNECT answered 403 ",
            strict.url(),
            server.port
        )),
        "{out}"
    );
    let (_, doctor, _) = run(dir.path(), &["doctor"]);
    assert!(
        doctor.contains(&format!(
            "FAIL  Public           connect  the proxy refused CONNECT 127.0.0.1:{}: 403",
            server.port
        )),
        "{doctor}"
    );
}

/// Every redirect hop is checked like the first URL (https, the requested host or
/// `allowed_hosts`), and at most 5 are followed.
#[test]
fn redirects_stay_on_allowed_hosts_and_are_bounded() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let [(_, w1), ..] = three_weeks();
    settings(dir.path(), &server, "");
    server.route("/details", Reply::page("ServiceTags_Public_20250707.json"));
    let file = "/files/ServiceTags_Public_20250707.json";
    let elsewhere = format!("https://localhost:{}/real.json", server.port);
    for (to, why) in [
        (
            elsewhere.clone(),
            format!("refusing {elsewhere}: host localhost is not allowed"),
        ),
        (
            server.url("/real.json").replace("https://", "http://"),
            "only https:// downloads are allowed".to_string(),
        ),
    ] {
        server.route(file, Reply::Redirect(to));
        server.clear_log();
        let (code, out, _) = run(dir.path(), &["fetch"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("redirected to a URL that is refused: "),
            "{out}"
        );
        assert!(out.contains(&why), "{out}");
        assert!(
            !server.log().iter().any(|l| l.path == "/real.json"),
            "the refused hop was not requested"
        );
        assert_eq!(snapshot_count(dir.path()), 0);
    }
    // Six hops on the server's own host: too many.
    server.route(file, Reply::Redirect(server.url("/hop1")));
    for i in 1..=5 {
        server.route(
            &format!("/hop{i}"),
            Reply::Redirect(server.url(&format!("/hop{}", i + 1))),
        );
    }
    server.route("/hop6", Reply::file(w1.clone().into_bytes()));
    let (code, out, _) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("more than 5 redirects"), "{out}");
    // Five are followed.
    server.route(file, Reply::Redirect(server.url("/hop2")));
    let (code, out, err) = run(dir.path(), &["fetch"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(snapshot_count(dir.path()), 1);
}
