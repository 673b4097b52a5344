//! The review site of `tagwall serve`, through the real binary and curl: two real weeks (2025-03-31
//! then 2025-07-28) under a 1% guard withhold both rulesets; an approve token logs in, approves
//! one change and the served list becomes the file on disk, recorded in the store as the command
//! line records it; a token limited to the other ruleset rejects it; a read token, a forged
//! form, a form from another site and a missing comment are refused; failed logins are limited
//! per client; logging in over plain HTTP beyond loopback is refused unless allowed. Hostile tag
//! names, regions, services and comments reach every page escaped.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::job::Job;
use common::serve::{start_logging, Server};

const ALICE: &str = "alice-approves-0123456789abcdef";
const BOB: &str = "bob-only-reads-0123456789abcdef";
const CAROL: &str = "carol-approves-entra-0123456789";

const RULESETS: &str = r#"
[guard]
max_added_percent = 1
max_removed_percent = 1

[[ruleset]]
name = "entra-connector"
cloud = "Public"
tags = ["AzureCloud.WestEurope", "AzureActiveDirectory"]
formats = ["txt", "nft"]

[[ruleset]]
name = "storage"
cloud = "Public"
tags = ["Storage.NorthEurope"]
formats = ["txt"]
"#;

/// A job with both rulesets withheld between two real weeks, and its tokens file.
fn withheld_job(shared: &Path, serve: &str) -> Job {
    let job = Job::new(
        None,
        &format!("[serve]\ntokens_file = \"tokens\"\n{serve}\n{RULESETS}",),
    );
    std::fs::write(
        job.path().join("tokens"),
        format!(
            "{ALICE} name=alice role=approve\n{BOB} name=bob\n{CAROL} entra-connector name=carol role=approve\n"
        ),
    )
    .unwrap();
    job.add_week(shared, "20250331");
    assert_eq!(job.sync(&[]).0, 0);
    job.add_week(shared, "20250728");
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    job
}

/// What curl got: status, headers (lower-case names), body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A browser: curl with a cookie jar of its own.
struct Browser {
    port: u16,
    jar: tempfile::NamedTempFile,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            port: server.port,
            jar: tempfile::NamedTempFile::new().unwrap(),
        }
    }

    fn curl(&self, path: &str, args: &[&str]) -> Got {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "60", "-b"])
            .arg(self.jar.path())
            .arg("-c")
            .arg(self.jar.path())
            .args(args)
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Got {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Got {
        self.curl(path, &[])
    }

    fn post(&self, path: &str, form: &[(&str, &str)], extra: &[&str]) -> Got {
        let mut args: Vec<String> = Vec::new();
        for (k, v) in form {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(path, &args)
    }

    fn login(&self, token: &str) -> Got {
        self.post("/login", &[("token", token)], &[])
    }

    /// The CSRF token of the page at `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path).body;
        let at = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page[at..at + 64].to_string()
    }
}

fn serve(job: &Job, listen_args: &[&str]) -> Server {
    start_logging(job, None, listen_args, std::process::Stdio::null())
}

#[test]
fn an_approve_token_decides_in_the_browser_as_the_command_line_does() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let job = withheld_job(&shared, "");
    let server = serve(&job, &[]);
    let anonymous = Browser::new(&server);
    let home = anonymous.get("/");
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/login"));
    assert_eq!(anonymous.get("/pending/storage").status, 303);

    // Bearer still opens pages and lists (firewalls, scripts).
    let bearer = anonymous.curl("/", &["-H", &format!("Authorization: Bearer {BOB}")]);
    assert_eq!(bearer.status, 200);
    assert!(
        bearer.body.contains("2 changes wait for review"),
        "{}",
        bearer.body
    );

    // A read token: pages, no forms, 403 on a decision even with its own session's CSRF token.
    let bob = Browser::new(&server);
    let login = bob.login(BOB);
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        cookie.contains("Max-Age=") && !cookie.contains("Secure"),
        "{cookie}"
    );
    let pending = bob.get("/pending/storage");
    assert_eq!(pending.status, 200);
    let packed = bob.curl("/pending/storage", &["--compressed"]);
    assert_eq!(packed.header("content-encoding"), Some("gzip"));
    assert_eq!(packed.body, pending.body, "gzip gives the same page");
    assert!(
        pending.body.contains("Withheld by the guard"),
        "{}",
        pending.body
    );
    assert!(pending.body.contains("Storage.NorthEurope"));
    assert!(!pending.body.contains("/pending/storage/approve"));
    let csrf = bob.csrf("/");
    let refused = bob.post(
        "/pending/storage/approve",
        &[("csrf", &csrf), ("comment", "bob wants it")],
        &[],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    // An approve token: forged and cross-site forms and an empty comment are refused.
    let alice = Browser::new(&server);
    assert_eq!(alice.login(ALICE).status, 303);
    let csrf = alice.csrf("/pending/storage");
    let approve = "/pending/storage/approve";
    let forged = alice.post(approve, &[("csrf", &"0".repeat(64)), ("comment", "x")], &[]);
    assert_eq!(forged.status, 403);
    assert_eq!(alice.post(approve, &[("comment", "x")], &[]).status, 403);
    let cross = alice.post(
        approve,
        &[("csrf", &csrf), ("comment", "x")],
        &["-H", "Origin: https://evil.example"],
    );
    assert_eq!(cross.status, 403);
    let empty = alice.post(approve, &[("csrf", &csrf), ("comment", "  ")], &[]);
    assert_eq!(empty.status, 400);
    assert!(job.out().join(".tagwall/withheld-storage.json").exists());

    // Approved: the served list is the new file on disk, recorded as alice with her comment.
    let before = std::fs::read_to_string(job.out().join("storage/storage.txt")).unwrap();
    let done = alice.post(
        approve,
        &[
            ("csrf", &csrf),
            ("comment", "checked with the network team"),
        ],
        &[],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/rulesets/storage/"));
    let after = std::fs::read_to_string(job.out().join("storage/storage.txt")).unwrap();
    assert_ne!(before, after);
    let served = alice.curl(
        "/rulesets/storage/storage.txt",
        &["-H", &format!("Authorization: Bearer {BOB}")],
    );
    assert_eq!(served.body, after);
    let (code, approvals) = job.run(&["approvals", "--json"]);
    assert_eq!(code, 0);
    let a: serde_json::Value = serde_json::from_str(approvals.lines().next().unwrap()).unwrap();
    assert_eq!(a["decision"], "approved");
    assert_eq!(a["approved_by"], "alice");
    assert_eq!(a["comment"], "checked with the network team");
    let page = alice.get("/rulesets/storage/");
    assert!(page.body.contains("checked with the network team") && page.body.contains(">alice<"));
    assert!(!page.body.contains("A change waits for review"));
    // The page's links to the files open with the session too.
    let linked = alice.get("/rulesets/storage/storage.txt");
    assert_eq!((linked.status, linked.body.as_str()), (200, after.as_str()));

    // Carol may decide entra-connector only: storage is not hers to see; she rejects hers.
    let carol = Browser::new(&server);
    assert_eq!(carol.login(CAROL).status, 303);
    assert_eq!(carol.get("/pending/storage").status, 404);
    assert_eq!(carol.get("/rulesets/storage/").status, 404);
    let csrf = carol.csrf("/pending/entra-connector");
    let rejected = carol.post(
        "/pending/entra-connector/reject",
        &[("csrf", &csrf), ("comment", "too wide for us")],
        &[],
    );
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    assert!(!job
        .out()
        .join(".tagwall/withheld-entra-connector.json")
        .exists());
    let (_, approvals) = job.run(&["approvals"]);
    assert!(
        approvals.contains("rejected  entra-connector")
            && approvals.contains("by carol: too wide for us"),
        "{approvals}"
    );
    assert_eq!(carol.get("/pending/entra-connector").status, 404);

    // Logout ends the session.
    let out = carol.post("/logout", &[("csrf", &csrf)], &[]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(carol.get("/").status, 303);
}

#[test]
fn failed_logins_are_limited_per_client_and_plain_http_logins_beyond_loopback_refused() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let job = withheld_job(&shared, "");
    let server = serve(&job, &[]);
    let b = Browser::new(&server);
    for _ in 0..5 {
        assert_eq!(b.login("wrong-token-0123456789abcdef").status, 401);
    }
    let blocked = b.login(ALICE);
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(blocked.header("retry-after").is_some());
    drop(server);

    // Listening on every address over plain HTTP: the login form is refused.
    let port = common::free_port();
    let listen = format!("0.0.0.0:{port}");
    let args = ["--listen", listen.as_str()];
    let wide = start_wide(&job, &args, port);
    let b = Browser::new(&wide);
    let refused = b.login(ALICE);
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("allow_insecure_login"),
        "{}",
        refused.body
    );
    drop(wide);
    let open = Job::new(
        None,
        &format!(
            "[serve]\ntokens_file = \"{}\"\nallow_insecure_login = true\n{RULESETS}",
            job.path().join("tokens").display()
        ),
    );
    let wide = start_wide(&open, &args, port);
    assert_eq!(Browser::new(&wide).login(ALICE).status, 303);
}

/// `serve --listen` on a given port (the default helper listens on loopback).
fn start_wide(job: &Job, args: &[&str], port: u16) -> Server {
    let mut cmd = common::tagwall_process(job.path());
    cmd.args(["serve"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let server = Server {
        child: cmd.spawn().unwrap(),
        port,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

/// Markup an attacker would put in a tag's name, region or service, or a comment.
const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
    "'><svg onload=alert(3)>",
    "</textarea><b>bold</b>",
];

#[test]
fn hostile_names_regions_services_and_comments_reach_every_page_escaped() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let job = Job::new(
        None,
        "[serve]\ntokens_file = \"tokens\"\n[guard]\nmax_added_percent = 1\n\n[[ruleset]]\nname = \"hostile\"\ncloud = \"Public\"\ntags = [\"Storage.X*\"]\nformats = [\"txt\"]\n",
    );
    std::fs::write(
        job.path().join("tokens"),
        format!("{ALICE} name=alice role=approve\n"),
    )
    .unwrap();
    let add = |doc: &mut serde_json::Value, prefixes: &[&str]| {
        let values = doc["values"].as_array_mut().unwrap();
        for (i, h) in HOSTILE.iter().enumerate() {
            values.push(serde_json::json!({
                "name": format!("Storage.X{i}{h}"),
                "id": format!("Storage.X{i}{h}"),
                "properties": {
                    "changeNumber": 1, "region": h, "regionId": 0, "platform": "Azure",
                    "systemService": h, "addressPrefixes": prefixes, "networkFeatures": [h],
                }
            }));
        }
    };
    job.add_edited_week(&shared, "20250721", "20250721", |doc| {
        add(doc, &["52.239.100.0/24"])
    });
    assert_eq!(job.sync(&[]).0, 0);
    job.add_edited_week(&shared, "20250721", "20250728", |doc| {
        add(doc, &["52.239.100.0/24", "52.239.101.0/24"]);
    });
    let (code, text) = job.sync(&[]);
    assert_eq!(code, 3, "{text}");
    // A comment and a name from the command line, recorded in the store.
    let (code, text) = job.run(&[
        "reject",
        "hostile",
        "--by",
        HOSTILE[1],
        "--comment",
        HOSTILE[0],
    ]);
    assert_eq!(code, 0, "{text}");
    job.add_edited_week(&shared, "20250721", "20250804", |doc| {
        add(
            doc,
            &["52.239.100.0/24", "52.239.101.0/24", "52.239.102.0/24"],
        );
    });
    assert_eq!(job.sync(&[]).0, 3);

    let server = serve(&job, &[]);
    let b = Browser::new(&server);
    assert_eq!(b.login(ALICE).status, 303);
    let pages = [
        "/",
        "/rulesets/hostile/",
        "/pending/hostile",
        "/reports/",
        "/reports/Public/",
        "/reports/Public/2025-08-04",
        "/reports/Public/2025-07-28",
        "/lookup?q=52.239.100.7",
        "/lookup?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/login",
    ];
    for path in pages {
        let got = b.get(path);
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert_escaped(path, &got.body);
    }
    let pending = b.get("/pending/hostile").body;
    assert!(
        pending.contains("Storage.X0&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{pending}"
    );
    let history = b.get("/rulesets/hostile/").body;
    assert!(
        history.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{history}"
    );
    // A comment with markup, through the site itself.
    let csrf = b.csrf("/pending/hostile");
    let done = b.post(
        "/pending/hostile/approve",
        &[("csrf", &csrf), ("comment", HOSTILE[3])],
        &[],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_escaped("/rulesets/hostile/", &b.get("/rulesets/hostile/").body);
    // Paths outside the routes.
    for (path, status) in [
        ("/pending/%3Cscript%3E", 400),
        ("/reports/Public/..%2f..%2fetc", 400),
        ("/reports/Public/2025-13-01", 404),
        ("/reports/Nowhere/", 404),
        ("/rulesets/nosuch/", 404),
        ("/pending/nosuch", 404),
        ("/nosuch", 404),
        ("/rulesets/nosuch/x.txt", 404),
    ] {
        assert_eq!(b.get(path).status, status, "{path}");
    }
}

/// No hostile text survives as markup: each payload appears only escaped.
fn assert_escaped(path: &str, body: &str) {
    for h in HOSTILE {
        assert!(!body.contains(h), "{path} holds {h} unescaped");
    }
    for bad in ["<script>alert", "<img src=x", "<svg onload", "<b>bold"] {
        assert!(!body.contains(bad), "{path} holds {bad}");
    }
}

/// Selenium and Debian's chromium-driver, else the skip (a failure under
/// `TAGWALL_TEST_CHROMIUM=1`).
fn selenium() -> bool {
    let found = Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    if !found {
        common::skip::skip(common::skip::Needs {
            what: "Selenium or chromium-driver is missing",
            required_by: "TAGWALL_TEST_CHROMIUM",
            how: "apt-get install chromium chromium-driver; python3 -m pip install selenium",
        });
    }
    found
}

#[test]
fn a_firewall_team_reviews_and_approves_in_a_real_browser() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    if !selenium() {
        return;
    }
    let job = withheld_job(&shared, "");
    let server = serve(&job, &[]);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site-screenshots");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/review_site.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}", server.port))
        .args([ALICE, BOB])
        .arg(job.out().join("storage/storage.txt"))
        .arg(&shots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "home", "ruleset", "pending", "reports", "report", "lookup", "login",
    ] {
        for width in [1400, 400] {
            let shot = shots.join(format!("{page}-{width}.png"));
            let bytes = std::fs::read(&shot).unwrap_or_default();
            assert!(
                bytes.starts_with(b"\x89PNG"),
                "{} is not a screenshot",
                shot.display()
            );
        }
    }
    eprintln!("screenshots of every page: {}", shots.display());
}
