//! `tagwall serve` under idle-connection floods, against the release binary: 5,000 sockets that
//! send nothing, half a request head, half the HTTP/2 preface, or the whole preface and no
//! stream — over HTTP and HTTPS — while curl with a token must get its list within 2 s. And
//! every such connection is closed by the server once it has been inactive for 10 s.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::job::Job;
use common::serve::{start, Server};
use common::shared_data;

const TOKEN: &str = "0123456789abcdef-firewall-token";
const FLOOD: usize = 5_000;
/// What the server promises: closed after 10 s without activity.
const IDLE: Duration = Duration::from_secs(10);
const LIST: &str = "/rulesets/entra/entra.txt";

const RULESETS: &str = r#"
[[ruleset]]
name = "entra"
tags = ["AzureCloud"]
formats = ["txt"]
"#;

/// How an attacking socket behaves after its connect.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Silent,
    PartialHead,
    PartialPreface,
    IdleHttp2,
}

const MODES: [Mode; 4] = [
    Mode::Silent,
    Mode::PartialHead,
    Mode::PartialPreface,
    Mode::IdleHttp2,
];

impl Mode {
    fn bytes(self) -> &'static [u8] {
        match self {
            Mode::Silent => b"",
            Mode::PartialHead => b"GET /rulesets/ HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            Mode::PartialPreface => b"PRI * HTTP/2.0\r\n",
            // The client preface and an empty SETTINGS frame: a connection with no stream.
            Mode::IdleHttp2 => {
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            }
        }
    }
}

/// Raises this process's open-files limit to its hard limit: how many sockets it may hold.
fn raise_open_files() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut files = getrlimit(Resource::Nofile);
    if files.maximum.is_some() {
        files.current = files.maximum;
        let _ = setrlimit(Resource::Nofile, files);
    }
    getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// `count` sockets to `port`, each having sent what `mode` sends.
fn flood(port: u16, mode: Mode, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connect {i} of {count}: {e}"));
            s.write_all(mode.bytes()).unwrap();
            s
        })
        .collect()
}

/// curl with the token, given 2 s: the status and how long it took.
fn poll(port: u16, scheme: &str, ca: Option<&Path>) -> (String, Duration) {
    let started = Instant::now();
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd
        .arg(format!("{scheme}://127.0.0.1:{port}{LIST}"))
        .output()
        .expect("curl runs");
    (
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        started.elapsed(),
    )
}

fn metric(port: u16, scheme: &str, ca: Option<&Path>, name: &str) -> u64 {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "5"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd
        .arg(format!("{scheme}://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

fn published(shared: &Path, extra: &str) -> Job {
    let job = Job::new(None, &format!("{extra}\n{RULESETS}"));
    job.add_week(shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 0, "{text}");
    job
}

/// Each mode in turn: the flood held open while curl polls.
fn polls_through_floods(server: &Server, scheme: &str, ca: Option<&Path>) {
    let room = raise_open_files().saturating_sub(200);
    let count = FLOOD.min(room);
    if count < FLOOD {
        eprintln!("note: this process may open {room} more files: flooding with {count} sockets, not {FLOOD}");
    }
    let accepted = |s: &Server| {
        metric(
            s.port,
            scheme,
            ca,
            "tagwall_serve_connections_accepted_total",
        )
    };
    for mode in MODES {
        let before = accepted(server);
        let held = flood(server.port, mode, count);
        // The server has taken every socket of the flood (the /metrics request is one more).
        let deadline = Instant::now() + Duration::from_secs(30);
        while accepted(server) < before + 1 + count as u64 {
            assert!(
                Instant::now() < deadline,
                "{mode:?}: the server did not accept the flood"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, took) = poll(server.port, scheme, ca);
        assert_eq!(
            status, "200",
            "{scheme}, {mode:?}, {count} sockets held: curl got {status} after {took:?}"
        );
        assert!(took < Duration::from_secs(2), "{mode:?}: {took:?}");
        let evicted = metric(
            server.port,
            scheme,
            ca,
            "tagwall_serve_connections_closed_total{reason=\"evicted\"}",
        );
        let open = metric(server.port, scheme, ca, "tagwall_serve_connections_open");
        eprintln!(
            "{scheme}, {count} sockets {mode:?}: 200 in {took:?} ({open} open, {evicted} evicted so far)"
        );
        drop(held);
    }
    let closed = |reason: &str| {
        metric(
            server.port,
            scheme,
            ca,
            &format!("tagwall_serve_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    let limit = metric(server.port, scheme, ca, "tagwall_serve_connections_limit");
    if count > usize::try_from(limit).unwrap() {
        // Room was made: the longest-inactive sockets evicted, or (when the flood took longer
        // than the idle time to open) closed as idle.
        assert!(
            closed("evicted") + closed("idle") > 0,
            "{count} sockets over a limit of {limit}, none closed"
        );
    }
}

/// A few sockets of each mode, none of them evicted: each is closed by the server after about
/// the idle time.
fn idle_sockets_are_closed(server: &Server) {
    let mut held: Vec<(Mode, TcpStream)> = MODES
        .into_iter()
        .flat_map(|mode| {
            flood(server.port, mode, 3)
                .into_iter()
                .map(move |s| (mode, s))
        })
        .collect();
    let started = Instant::now();
    for (mode, s) in &mut held {
        s.set_read_timeout(Some(IDLE * 3)).unwrap();
        let mut rest = Vec::new();
        // EOF or a reset from the server, not our read timeout.
        let got = s.read_to_end(&mut rest);
        if let Err(e) = &got {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{mode:?}: still open after {:?}",
                started.elapsed()
            );
        }
    }
    let took = started.elapsed();
    assert!(
        took >= IDLE - Duration::from_secs(1) && took < IDLE + Duration::from_secs(5),
        "closed after {took:?}"
    );
}

#[test]
fn a_poll_gets_its_list_through_idle_connection_floods() {
    let Some(shared) = shared_data() else { return };
    let job = published(&shared, "");
    let server = start(&job, Some(TOKEN));
    polls_through_floods(&server, "http", None);
    idle_sockets_are_closed(&server);
}

#[test]
fn a_poll_gets_its_list_through_idle_connection_floods_over_https() {
    let Some(shared) = shared_data() else { return };
    let pki = common::https::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("cert.pem", &pki.chain_pem),
        ("key.pem", &pki.key_pem),
        ("ca.pem", &pki.ca_pem),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let job = published(
        &shared,
        &format!(
            "[serve]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display()
        ),
    );
    let server = start(&job, Some(TOKEN));
    polls_through_floods(&server, "https", Some(&dir.path().join("ca.pem")));
    idle_sockets_are_closed(&server);
}
