//! Runs a ruleset's `apply` commands after a publish: each argv as given (no shell), its
//! placeholders replaced by the published files' paths, in the ruleset's directory, one after
//! the other, each bounded by `apply_timeout_seconds` (killed with its whole process group when
//! it runs over). The first that fails stops the rest; its error names it and quotes the end of
//! its output (only the last 2,000 bytes are ever kept). A command gets a minimal environment
//! ([`environment`]); one that exits 0 while a process it started holds its output is done.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::rules::delivery::expand;
use crate::rules::ruleset::Ruleset;

/// The most bytes of a failed command's output quoted in its error.
const OUTPUT_TAIL: usize = 2000;

/// Runs every apply command of `ruleset` against its published directory `dir`.
pub async fn run(ruleset: &Ruleset, dir: &Path) -> Result<(), String> {
    // Placeholders are absolute paths: the commands run in the directory, but may change it.
    let dir = &std::fs::canonicalize(dir)
        .map_err(|e| format!("{} cannot be resolved: {e}", dir.display()))?;
    let total = ruleset.delivery.apply.len();
    for (i, argv) in ruleset.delivery.apply.iter().enumerate() {
        let argv: Vec<String> = argv
            .iter()
            .map(|a| expand(a, |k| value(ruleset, dir, k)))
            .collect();
        run_one(
            &argv,
            dir,
            ruleset.delivery.apply_timeout,
            &ruleset.delivery.apply_env,
        )
        .await
        .map_err(|why| {
            format!(
                "apply command {} of {total} ({}) {why}",
                i + 1,
                shown(&argv)
            )
        })?;
    }
    Ok(())
}

/// What a placeholder stands for.
fn value(ruleset: &Ruleset, dir: &Path, key: &str) -> String {
    match key {
        "dir" => dir.display().to_string(),
        "name" => ruleset.name.clone(),
        suffix => dir
            .join(format!("{}.{suffix}", ruleset.name))
            .display()
            .to_string(),
    }
}

/// The command for people: its words, printable, cut.
fn shown(argv: &[String]) -> String {
    let text = argv.join(" ");
    crate::core::text::quoted(&text, 200)
}

async fn run_one(
    argv: &[String],
    dir: &Path,
    timeout: Duration,
    pass: &[String],
) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(dir)
        .env_clear()
        .envs(environment(pass, |k| std::env::var_os(k)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the command and whatever it started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    // Killed with its group if this run is abandoned (the daemon's stop) while it runs.
    let mut group = GroupGuard(child.id());
    let tail = Arc::new(Mutex::new(Tail::default()));
    let readers = [
        child.stdout.take().map(|o| read_into(o, tail.clone())),
        child.stderr.take().map(|e| read_into(e, tail.clone())),
    ];
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let status = match waited {
        Ok(Ok(status)) => {
            // What it left running in the background is its own.
            group.0 = None;
            status
        }
        Ok(Err(e)) => return Err(format!("failed: {e}")),
        Err(_) => {
            drop(group);
            return Err(format!(
                "ran over apply_timeout_seconds = {} and was killed with its process group",
                timeout.as_secs()
            ));
        }
    };
    // The command is done: what it wrote is read within a moment; a background process it left
    // holding the output is not waited for.
    for mut reader in readers.into_iter().flatten() {
        if tokio::time::timeout(OUTPUT_GRACE, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
            tracing::debug!(
                "an apply command left a process holding its output; not waiting for it"
            );
        }
    }
    if status.success() {
        return Ok(());
    }
    let text = tail.lock().unwrap_or_else(|e| e.into_inner()).text();
    Err(format!("failed ({status}): {}", text.trim()))
}

/// How long the output of a finished command is still read.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// The environment of an apply command: `PATH` (a standard one when tagwall has none), the
/// locale (`LANG`, `LC_*`), `TZ`, `HOME`, and the variables the ruleset's `apply_env` names —
/// nothing else of tagwall's (no proxy or SMTP password, no serve token).
pub fn environment(
    pass: &[String],
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(String, std::ffi::OsString)> {
    const STANDARD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let mut env = vec![(
        "PATH".to_string(),
        get("PATH").unwrap_or_else(|| STANDARD_PATH.into()),
    )];
    let locale = [
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "LC_MESSAGES",
        "LC_NUMERIC",
        "LC_TIME",
        "LC_COLLATE",
        "TZ",
        "HOME",
    ];
    for name in locale
        .iter()
        .copied()
        .chain(pass.iter().map(String::as_str))
    {
        if env.iter().any(|(k, _)| k == name) {
            continue;
        }
        if let Some(value) = get(name) {
            env.push((name.to_string(), value));
        }
    }
    env
}

/// A running command's process group (it leads it), killed whole when dropped: on a timeout, a
/// failure to wait, or a run abandoned while the command runs.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let pid = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The end of a command's output: at most [`OUTPUT_TAIL`] bytes kept, whatever it writes.
#[derive(Debug, Default)]
struct Tail {
    bytes: std::collections::VecDeque<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        let keep = chunk.len().min(OUTPUT_TAIL);
        self.bytes.extend(&chunk[chunk.len() - keep..]);
        let over = self.bytes.len().saturating_sub(OUTPUT_TAIL);
        self.bytes.drain(..over);
    }

    /// Printable text: other characters shown as `?`.
    fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        String::from_utf8_lossy(&bytes)
            .chars()
            .map(|c| {
                if c == '\n' || c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// Reads `from` to its end, keeping only the tail.
fn read_into(
    mut from: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tail: Arc<Mutex<Tail>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            tail.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_only_the_end() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; 5000]);
        t.push(b"the end\x01");
        let text = t.text();
        assert_eq!(text.len(), OUTPUT_TAIL);
        assert!(text.ends_with("the end?"), "{text}");
    }

    #[test]
    fn commands_get_path_locale_and_what_the_settings_name_only() {
        let outer = |k: &str| match k {
            "PATH" => Some("/usr/bin".into()),
            "LANG" => Some("C.UTF-8".into()),
            "TAGWALL_SMTP_PASSWORD" => Some("secret".into()),
            "TAGWALL_SERVE_TOKENS" => Some("token".into()),
            "HTTPS_PROXY" => Some("http://u:p@proxy:3128".into()),
            "FW_HOST" => Some("gw1".into()),
            _ => None,
        };
        let env = environment(&["FW_HOST".into()], outer);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "LANG", "FW_HOST"]);
        let none = environment(&[], |_| None);
        assert_eq!(
            none[0].1,
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
    }
}
