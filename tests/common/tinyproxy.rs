//! A real forward proxy for the fetch tests: Debian's `tinyproxy`, started on a free loopback
//! port. `TAGWALL_TEST_PROXY=1` (set by `.ci/run`) makes a missing tinyproxy a failure.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tinyproxy {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where tinyproxy is, if installed.
fn binary() -> Option<PathBuf> {
    [
        "/usr/bin/tinyproxy",
        "/usr/sbin/tinyproxy",
        "/usr/local/bin/tinyproxy",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl Tinyproxy {
    /// Starts tinyproxy; `auth` requires Basic credentials, `connect_ports` restricts CONNECT.
    /// `None` (a skip) only when tinyproxy is missing and `TAGWALL_TEST_PROXY` is not 1.
    pub fn start(auth: Option<(&str, &str)>, connect_ports: &[u16]) -> Option<Tinyproxy> {
        let Some(bin) = binary() else {
            super::skip::skip(super::skip::Needs {
                what: "tinyproxy is not installed",
                required_by: "TAGWALL_TEST_PROXY",
                how: "apt-get install tinyproxy",
            });
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nLogFile \"{}\"\nMaxClients 20\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
            log.display()
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if nix_is_root() {
            conf.push_str("User nobody\nGroup nogroup\n");
            // The log file must stay writable after tinyproxy drops privileges.
            std::fs::write(&log, "").unwrap();
            let _ = Command::new("chown").arg("nobody").arg(&log).status();
            let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proxy = Tinyproxy {
            port,
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(proxy)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What tinyproxy logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}
