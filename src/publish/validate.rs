//! The real firewall tools check a ruleset's files before they are published (`[output]
//! validate`): `nft -c -f` for `.nft`; `ipset restore` followed by `iptables-restore --test` and
//! `ip6tables-restore --test` for `.ipset`/`.iptables`/`.ip6tables`. Each runs in a private,
//! throw-away network namespace (`unshare -n`, or `unshare -r -n` without root), so a check never
//! touches the host's firewall and ipset's sets really are created and swapped.
//!
//! Every file is also checked line by line by [`crate::render::loadable`] whatever this setting
//! says; the tools add what only the loader knows (nft keywords, kernel limits).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::rules::ruleset::Ruleset;

/// How long one tool may take on one ruleset's files.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of a tool's message an error quotes.
const MESSAGE_BYTES: usize = 2000;

/// `[output] validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validate {
    /// Check with each tool that is installed, in a private namespace if one can be made.
    #[default]
    Auto,
    /// Check with every tool a file needs; a missing tool or namespace is an error.
    Always,
    /// Only tagwall's own line checks.
    Never,
}

impl Validate {
    /// Parses the setting's value.
    pub fn parse(text: &str) -> Result<Validate, String> {
        match text {
            "auto" => Ok(Validate::Auto),
            "always" => Ok(Validate::Always),
            "never" => Ok(Validate::Never),
            other => Err(format!(
                "[output] validate = {}: use \"auto\" (check with the tools that are installed), \"always\" or \"never\"",
                crate::core::text::quoted(other, 40)
            )),
        }
    }
}

/// Why a ruleset's files were not published.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A tool refused a file.
    #[error("{tool} refused {files} - not published: {message}")]
    Refused {
        /// The tool.
        tool: &'static str,
        /// The files it read.
        files: String,
        /// What it said (cut, control characters escaped).
        message: String,
    },
    /// `validate = "always"` and something needed is missing.
    #[error("[output] validate = \"always\" but {0} - not published (install it, or set validate = \"auto\")")]
    Unavailable(String),
    /// The temporary files could not be written or a tool could not be run.
    #[error("could not check the files with the firewall tools: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks `files` (name, bytes) of `ruleset` with the real tools as `mode` says.
pub async fn check(
    ruleset: &Ruleset,
    files: &[(String, Vec<u8>)],
    mode: Validate,
) -> Result<(), ValidateError> {
    if mode == Validate::Never {
        return Ok(());
    }
    let n = &ruleset.name;
    let named = |ext: &str| files.iter().find(|(f, _)| *f == format!("{n}.{ext}"));
    let (nft, ipset) = (named("nft"), named("ipset"));
    if nft.is_none() && ipset.is_none() {
        return Ok(());
    }
    let Some(ns) = namespace().await else {
        return unavailable(
            mode,
            "no private network namespace can be made (unshare -n)",
        );
    };
    let dir = tempfile::tempdir()?;
    let write = |entry: Option<&(String, Vec<u8>)>| -> std::io::Result<Option<PathBuf>> {
        entry
            .map(|(name, bytes)| {
                let path = dir.path().join(name);
                std::fs::write(&path, bytes).map(|()| path)
            })
            .transpose()
    };
    // The two checks are independent processes: run them side by side.
    let nft_file = write(nft)?;
    let ipset_files = match write(ipset)? {
        Some(set_file) => Some((
            set_file,
            write(named("iptables"))?,
            write(named("ip6tables"))?,
        )),
        None => None,
    };
    let nft_check = async {
        let Some(path) = &nft_file else { return Ok(()) };
        let Some(nft) = tool("nft") else {
            return unavailable(mode, "nft is not installed (apt-get install nftables)");
        };
        let args = [
            nft.as_os_str(),
            "-c".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
        ];
        run(ns, "nft -c -f", &path_list(&[path]), &args).await
    };
    let ipset_check = async {
        let Some((set_file, v4, v6)) = &ipset_files else {
            return Ok(());
        };
        ipset_and_iptables(ns, mode, set_file, v4.as_deref(), v6.as_deref()).await
    };
    let (a, b) = tokio::join!(nft_check, ipset_check);
    a?;
    b?;
    Ok(())
}

fn unavailable(mode: Validate, what: &str) -> Result<(), ValidateError> {
    if mode == Validate::Always {
        return Err(ValidateError::Unavailable(what.to_string()));
    }
    tracing::debug!("firewall-tool check skipped: {what}");
    Ok(())
}

/// `ipset restore`, then the iptables files against the sets it made, in one namespace.
async fn ipset_and_iptables(
    ns: &'static [&'static str],
    mode: Validate,
    set_file: &Path,
    v4: Option<&Path>,
    v6: Option<&Path>,
) -> Result<(), ValidateError> {
    let Some(ipset) = tool("ipset") else {
        return unavailable(mode, "ipset is not installed (apt-get install ipset)");
    };
    // The (tool, file) pair of each iptables file; an empty pair skips that check.
    let mut pairs = Vec::new();
    for (file, name) in [(v4, "iptables-restore"), (v6, "ip6tables-restore")] {
        let pair = match (file, file.and_then(|_| tool(name))) {
            (Some(f), Some(t)) => (t.into_os_string(), f.as_os_str().to_owned()),
            (Some(_), None) => {
                unavailable(
                    mode,
                    &format!("{name} is not installed (apt-get install iptables)"),
                )?;
                Default::default()
            }
            (None, _) => Default::default(),
        };
        pairs.push(pair);
    }
    // A fixed script; every path is an argument, never part of the script.
    const SCRIPT: &str = r#"set -e
"$1" restore < "$2"
if [ -n "$4" ]; then "$3" --test < "$4"; fi
if [ -n "$6" ]; then "$5" --test < "$6"; fi"#;
    let mut args: Vec<std::ffi::OsString> = vec![
        "/bin/sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "tagwall-check".into(),
        ipset.into_os_string(),
        set_file.as_os_str().to_owned(),
    ];
    for (t, f) in pairs {
        args.extend([t, f]);
    }
    let files: Vec<&Path> = [Some(set_file), v4, v6].into_iter().flatten().collect();
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let name = if v4.is_some() || v6.is_some() {
        "ipset restore + iptables-restore --test"
    } else {
        "ipset restore"
    };
    run(ns, name, &path_list(&files), &args).await
}

fn path_list(paths: &[&Path]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `args` inside a new network namespace made with `ns`.
async fn run(
    ns: &'static [&'static str],
    tool: &'static str,
    files: &str,
    args: &[&OsStr],
) -> Result<(), ValidateError> {
    let mut cmd = tokio::process::Command::new(ns[0]);
    cmd.args(&ns[1..])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(TOOL_TIMEOUT, cmd.output()).await {
        Ok(out) => out?,
        Err(_) => {
            return Err(ValidateError::Refused {
                tool,
                files: files.to_string(),
                message: format!("no answer within {} s", TOOL_TIMEOUT.as_secs()),
            })
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut said = String::from_utf8_lossy(&output.stderr).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stdout));
    let said: String = said.trim().chars().take(MESSAGE_BYTES).collect();
    Err(ValidateError::Refused {
        tool,
        files: files.to_string(),
        message: crate::core::text::terminal(&said.replace('\n', " | ")),
    })
}

/// The `unshare` command line that makes a private network namespace here, found once.
async fn namespace() -> Option<&'static [&'static str]> {
    static FOUND: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    if let Some(found) = FOUND.get() {
        return *found;
    }
    const CANDIDATES: [&[&str]; 2] = [&["unshare", "-n", "--"], &["unshare", "-r", "-n", "--"]];
    let mut found = None;
    for c in CANDIDATES {
        let ok = tokio::process::Command::new(c[0])
            .args(&c[1..])
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            found = Some(c);
            break;
        }
    }
    *FOUND.get_or_init(|| found)
}

/// A tool on `PATH`, or in `/usr/sbin` and `/sbin` (which cron's and systemd's `PATH` may lack).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses() {
        assert_eq!(Validate::parse("auto"), Ok(Validate::Auto));
        assert_eq!(Validate::parse("always"), Ok(Validate::Always));
        assert_eq!(Validate::parse("never"), Ok(Validate::Never));
        assert!(Validate::parse("yes").unwrap_err().contains("\"auto\""));
    }
}
