//! A running `tagwall serve` for the tests: the real binary on a free loopback port.

use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::job::Job;
use super::{free_port, tagwall_process};

/// A running `tagwall serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` with `tokens`, its stderr discarded.
pub fn start(job: &Job, tokens: Option<&str>) -> Server {
    start_logging(job, tokens, &[], Stdio::null())
}

/// `serve` with more arguments (before the command) and its stderr sent to `log`.
pub fn start_logging(job: &Job, tokens: Option<&str>, args: &[&str], log: Stdio) -> Server {
    let port = free_port();
    let mut cmd = tagwall_process(job.path());
    cmd.args(args)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(t) = tokens {
        cmd.env("TAGWALL_SERVE_TOKENS", t);
    }
    let server = Server {
        child: cmd.spawn().unwrap(),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// curl GET of `path` on `serve` at `port` with `token` (plain HTTP, 5 s at most): (status,
/// body).
pub fn curl_get(port: u16, path: &str, token: &str) -> (u16, Vec<u8>) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[(at + 1).min(body.len())..])
        .parse()
        .unwrap_or(0);
    body.truncate(at);
    (code, body)
}
