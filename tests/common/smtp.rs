//! A real SMTP server for the email tests: `tests/servers/smtp_sink.py` (Python's aiosmtpd) on
//! 127.0.0.1, optionally with STARTTLS (a test CA's certificate) and a required login. Each
//! message it receives is one parsed JSON record.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::free_port;
use super::https::TestPki;

/// The running server; killed on drop.
pub struct SmtpSink {
    pub port: u16,
    /// The test CA (PEM file), for `[notify.email] ca_bundle`.
    pub ca_pem: PathBuf,
    out: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server: STARTTLS required when `tls`, a login required when `login` is given.
    pub fn start(tls: bool, login: Option<(&str, &str)>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, &pki.ca_pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &pki.chain_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
        let out = dir.path().join("mail");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out);
        if tls {
            cmd.arg("--cert")
                .arg(dir.path().join("cert.pem"))
                .arg("--key")
                .arg(dir.path().join("key.pem"));
        }
        if let Some((user, password)) = login {
            cmd.args(["--user", user, "--password", password]);
        }
        let child = cmd
            .spawn()
            .expect("python3 with aiosmtpd is required for the email tests (pip install aiosmtpd)");
        let mut sink = SmtpSink {
            port,
            ca_pem,
            out,
            child,
            _dir: dir,
        };
        sink.wait_ready();
        sink
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.out.join("ready").exists() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the SMTP server exited ({status}): is aiosmtpd installed (pip install aiosmtpd)?");
            }
            assert!(Instant::now() < deadline, "the SMTP server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut numbered: Vec<(u64, serde_json::Value)> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| {
                let path = e.unwrap().path();
                let n = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((
                    n,
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap(),
                ))
            })
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        numbered.into_iter().map(|(_, v)| v).collect()
    }

    /// The logins the server refused.
    pub fn refused_logins(&self) -> String {
        std::fs::read_to_string(self.out.join("auth-failures.log")).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
