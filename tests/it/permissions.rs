//! What tagwall creates is never open to other local users, whatever the umask: with umask 000
//! a first `sync` makes the database 0600 (its `-wal`/`-shm` follow it), the lock files 0600
//! (whoever can open one can hold it and stop every run), and the output directory and its
//! folders 0755. `serve` warns about a tokens file others can read. Against the release binary
//! on a real week.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::job::Job;
use common::shared_data;

const RULESET: &str =
    "[[ruleset]]\nname = \"entra\"\ntags = [\"AzureCloud\"]\nformats = [\"txt\"]\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn nothing_is_created_open_to_others_with_umask_000() {
    let Some(shared) = shared_data() else { return };
    let job = Job::new(None, RULESET);
    job.add_week(&shared, "20250728");
    let bin = assert_cmd::cargo::cargo_bin("tagwall");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" sync --source mirror"])
        .arg(&bin)
        .current_dir(job.path())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = job.path();
    assert_eq!(mode(&root.join("t.db")), 0o600, "the database");
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("t.db") {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    assert!(root.join("t.db.lock").exists() || root.join("t.db.open.lock").exists());
    for dir in ["out", "out/.tagwall", "out/reports", "out/entra"] {
        let path = root.join(dir);
        if path.exists() {
            assert_eq!(mode(&path) & 0o022, 0, "{dir} is writable by others");
        }
    }
    assert_eq!(mode(&root.join("out")), 0o755);
}

#[test]
fn serve_warns_about_a_tokens_file_others_can_read() {
    let Some(shared) = shared_data() else { return };
    let tokens = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tokens.path(), "0123456789abcdef-firewall-token\n").unwrap();
    std::fs::set_permissions(tokens.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let job = Job::new(
        None,
        &format!(
            "[serve]\ntokens_file = \"{}\"\n{RULESET}",
            tokens.path().display()
        ),
    );
    job.add_week(&shared, "20250728");
    assert_eq!(job.sync(&[]).0, 0);
    let log = job.path().join("serve.log");
    let server = common::serve::start_logging(
        &job,
        None,
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    // The warning is written within the log's flush interval.
    std::thread::sleep(std::time::Duration::from_millis(600));
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("can be read by other users (mode 644): chmod 600 it"),
        "{text}"
    );
}

#[test]
fn links_for_reports_and_state_are_refused_not_followed() {
    let Some(shared) = shared_data() else { return };
    for link in ["reports", ".tagwall"] {
        let job = Job::new(None, RULESET);
        job.add_week(&shared, "20250728");
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(job.out()).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), job.out().join(link)).unwrap();
        // A withheld marker needs a withheld change: a dangerous week after a first publish.
        let (_, text) = job.sync(&[]);
        job.add_edited_week(&shared, "20250728", "20250804", |doc| {
            common::job::prefixes_of(doc, "AzureCloud").push("0.0.0.0/1".into());
        });
        let (_, more) = job.sync(&[]);
        let all = format!("{text}\n{more}");
        assert!(all.contains("is a symbolic link"), "{link}: {all}");
        assert_eq!(
            std::fs::read_dir(elsewhere.path()).unwrap().count(),
            0,
            "{link}: something was written through the link"
        );
    }
}
