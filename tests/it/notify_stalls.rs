//! Notifications never hang a run, against the release binary: an SMTP server that never
//! greets, one that greets and then says nothing, and a webhook that accepts the connection and
//! never answers. `sync` ends within the documented bound with the reason logged, and `daemon`
//! stops on SIGTERM within its documented grace whatever the notification is doing.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::job::Job;
use common::{run_text, shared_data, tagwall, tagwall_process};

const RULESET: &str =
    "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n";

/// How a stalling server behaves once a client connects.
#[derive(Clone, Copy)]
enum Stall {
    /// Accepts and never writes a byte.
    Silent,
    /// Sends the SMTP greeting, then reads and never answers.
    AfterGreeting,
}

/// A server on loopback that stalls every connection; its port.
fn stalling_server(stall: Stall) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                if let Stall::AfterGreeting = stall {
                    let _ = conn.write_all(b"220 stall.example.test ESMTP\r\n");
                }
                // Read whatever comes, answer nothing, until the client goes.
                let mut buf = [0u8; 4096];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                drop::<TcpStream>(conn);
            });
        }
    });
    port
}

fn email(port: u16, timeout: u64) -> String {
    format!(
        "[notify.email]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"tagwall@example.test\"\nto = [\"fw@example.test\"]\ntimeout_seconds = {timeout}\n{RULESET}"
    )
}

/// `sync` on a real week: exit code, output, how long it took.
fn timed_sync(job: &Job) -> (i32, String, Duration) {
    let started = Instant::now();
    let (code, text) = run_text(
        tagwall(job.path())
            .args(["sync", "--source"])
            .arg(&job.mirror),
    );
    (code, text, started.elapsed())
}

#[test]
fn a_stalled_smtp_server_costs_a_run_at_most_its_timeout() {
    let Some(shared) = shared_data() else { return };
    for stall in [Stall::Silent, Stall::AfterGreeting] {
        let job = Job::new(None, &email(stalling_server(stall), 2));
        job.add_week(&shared, "20250728");
        let (code, text, took) = timed_sync(&job);
        // The run itself succeeded; the notification failed and said why.
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(
                "did not finish the delivery within 2 s ([notify.email] timeout_seconds)"
            ),
            "{text}"
        );
        assert!(took < Duration::from_secs(60), "{took:?}");
        // The next run is not blocked either.
        let (code, text, _) = timed_sync(&job);
        assert_eq!(code, 0, "{text}");
    }
}

#[test]
fn a_webhook_that_never_answers_costs_a_run_at_most_its_timeout() {
    let Some(shared) = shared_data() else { return };
    let port = stalling_server(Stall::Silent);
    let job = Job::new(
        None,
        &format!(
            "[notify]\nwebhook_url = \"https://127.0.0.1:{port}/hook\"\ntimeout_seconds = 2\n{RULESET}"
        ),
    );
    job.add_week(&shared, "20250728");
    let (code, text, took) = timed_sync(&job);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("no answer within 2 s ([notify] timeout_seconds)"),
        "{text}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn the_daemon_stops_on_sigterm_while_a_notification_hangs() {
    let Some(shared) = shared_data() else { return };
    // The longest timeout there is: only the stop grace ends the wait.
    let job = Job::new(None, &email(stalling_server(Stall::AfterGreeting), 600));
    job.add_week(&shared, "20250728");
    let log = job.path().join("daemon.log");
    let mut child = tagwall_process(job.path())
        .args(["daemon", "--run-now", "--source"])
        .arg(&job.mirror)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait until the run has published and is sending the mail.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !job.out().join("last-run.json").exists() {
        assert!(Instant::now() < deadline, "the daemon's run did not finish");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "the daemon still runs 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "{exit}: {text}");
    // The documented grace (5 s) and the time to write the last log lines.
    assert!(took < Duration::from_secs(8), "{took:?}: {text}");
    assert!(
        text.contains("the run did not finish within 5 s of the stop: abandoned"),
        "{text}"
    );
}
