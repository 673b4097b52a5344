//! Runs a ruleset's `apply` commands after a publish: each argv as given (no shell), its
//! placeholders replaced by the published files' paths, in the ruleset's directory, one after
//! the other, each bounded by `apply_timeout_seconds` (killed when it runs over). The first that
//! fails stops the rest; its error names it and quotes the end of its output.

use std::path::Path;
use std::process::Stdio;
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
        run_one(&argv, dir, ruleset.delivery.apply_timeout)
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

async fn run_one(argv: &[String], dir: &Path, timeout: Duration) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("failed: {e}")),
        // Dropping the future kills the child (kill_on_drop).
        Err(_) => {
            return Err(format!(
                "ran over apply_timeout_seconds = {} and was killed",
                timeout.as_secs()
            ))
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = output.stderr;
    text.extend_from_slice(&output.stdout);
    let tail = &text[text.len().saturating_sub(OUTPUT_TAIL)..];
    let tail: String = String::from_utf8_lossy(tail)
        .chars()
        .map(|c| {
            if c == '\n' || c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    Err(format!("failed ({}): {}", output.status, tail.trim()))
}
