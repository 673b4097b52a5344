//! The real firewall tools check a ruleset's files before they are published (`[output]
//! validate`): `nft -c -f` for `.nft`; `ipset restore` followed by `iptables-restore --test` and
//! `ip6tables-restore --test` for `.ipset`/`.iptables`/`.ip6tables`. Each runs in a private,
//! throw-away network namespace (`unshare -n`, or `unshare -r -n` without root), so a check never
//! touches the host's firewall and ipset's sets really are created and swapped. As an
//! unprivileged user a large `.nft` file is checked in parts ([`nft_parts`]): the kernel takes
//! only a small netlink batch from a user who cannot raise its socket buffer. [`Checked`] says
//! which tools read the files (`validated_by` in `last-run.json`).
//!
//! Every file is also checked line by line by [`crate::render::firewall::loadable`] whatever this setting
//! says; the tools add what only the loader knows (nft keywords, kernel limits).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::rules::ruleset::Ruleset;

mod nft_parts;

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

/// What checked a ruleset's files: the real tools that read them, and why any did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The tools that accepted the files, in order: `nft`, `ipset`, `iptables-restore`,
    /// `ip6tables-restore`.
    pub tools: Vec<&'static str>,
    /// Why a file had tagwall's line checks only (a tool missing, `validate = "never"`, no
    /// format a tool reads).
    pub skipped: Vec<String>,
}

impl Checked {
    /// What `last-run.json` lists as `validated_by`: the tools, or `line checks` alone.
    pub fn validated_by(&self) -> Vec<String> {
        if self.tools.is_empty() {
            return vec![LINE_CHECKS.to_string()];
        }
        self.tools.iter().map(|t| t.to_string()).collect()
    }

    /// "nft, ipset, iptables-restore" or "line checks only (validate = \"never\")", for people.
    pub fn describe(&self) -> String {
        let mut text = if self.tools.is_empty() {
            format!("{LINE_CHECKS} only")
        } else {
            self.tools.join(", ")
        };
        if !self.skipped.is_empty() {
            text.push_str(&format!(" ({})", self.skipped.join("; ")));
        }
        text
    }

    /// Why a file had line checks only, when one did.
    pub fn note(&self) -> Option<String> {
        (!self.skipped.is_empty()).then(|| self.skipped.join("; "))
    }

    fn skip(&mut self, why: impl Into<String>) {
        self.skipped.push(why.into());
    }
}

/// tagwall's own checks of every line against its loader's grammar, which always run.
pub const LINE_CHECKS: &str = "line checks";

/// Checks `files` (name, bytes) of `ruleset` with the real tools as `mode` says, and says which
/// tools did.
pub async fn check(
    ruleset: &Ruleset,
    files: &[(String, Vec<u8>)],
    mode: Validate,
) -> Result<Checked, ValidateError> {
    let mut checked = Checked::default();
    if mode == Validate::Never {
        checked.skip("validate = \"never\"");
        return Ok(checked);
    }
    let n = &ruleset.name;
    let named = |ext: &str| files.iter().find(|(f, _)| *f == format!("{n}.{ext}"));
    let (nft, ipset) = (named("nft"), named("ipset"));
    if nft.is_none() && ipset.is_none() {
        checked.skip("no nft or ipset format: no firewall tool loads these files");
        return Ok(checked);
    }
    let Some(ns) = namespace().await else {
        unavailable(
            mode,
            &mut checked,
            "no private network namespace can be made (unshare -n, unshare -r -n)",
        )?;
        return Ok(checked);
    };
    let dir = tempfile::tempdir()?;
    let write = |name: &str, bytes: &[u8]| -> std::io::Result<PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).map(|()| path)
    };
    let nft_files = match nft {
        Some((name, bytes)) => Some(nft_files(name, bytes, &write)?),
        None => None,
    };
    let ipset_files = match ipset {
        Some((name, bytes)) => {
            let other = |ext| named(ext).map(|(f, b)| write(f, b)).transpose();
            Some((write(name, bytes)?, other("iptables")?, other("ip6tables")?))
        }
        None => None,
    };
    // The two checks are independent processes: run them side by side.
    let mut nft_checked = Checked::default();
    let mut ipset_checked = Checked::default();
    let nft_check = async {
        let Some(paths) = &nft_files else {
            return Ok(());
        };
        let Some(nft) = tool("nft") else {
            return unavailable(
                mode,
                &mut nft_checked,
                "nft is not installed (apt-get install nftables)",
            );
        };
        nft_check(ns, &nft, paths).await?;
        nft_checked.tools.push("nft");
        Ok(())
    };
    let ipset_check = async {
        let Some((set_file, v4, v6)) = &ipset_files else {
            return Ok(());
        };
        ipset_and_iptables(
            ns,
            mode,
            &mut ipset_checked,
            set_file,
            v4.as_deref(),
            v6.as_deref(),
        )
        .await
    };
    let (a, b) = tokio::join!(nft_check, ipset_check);
    a?;
    b?;
    for c in [nft_checked, ipset_checked] {
        checked.tools.extend(c.tools);
        checked.skipped.extend(c.skipped);
    }
    Ok(checked)
}

/// The `.nft` file to check, written whole, or as parts an unprivileged `nft` can send
/// ([`nft_parts`]).
fn nft_files(
    name: &str,
    bytes: &[u8],
    write: &dyn Fn(&str, &[u8]) -> std::io::Result<PathBuf>,
) -> Result<Vec<PathBuf>, ValidateError> {
    let refused = |message: String| ValidateError::Refused {
        tool: "nft -c -f",
        files: name.to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| refused("not UTF-8".into()))?;
    let parts = nft_parts::parts(text, nft_parts::ELEMENTS_PER_PART).map_err(refused)?;
    if parts.len() == 1 {
        return Ok(vec![write(name, bytes)?]);
    }
    let count = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            Ok(write(
                &format!("{name}.part-{}-of-{count}", i + 1),
                part.as_bytes(),
            )?)
        })
        .collect()
}

/// `nft -c -f` on each file, one after the other, in one namespace.
async fn nft_check(
    ns: &'static [&'static str],
    nft: &Path,
    paths: &[PathBuf],
) -> Result<(), ValidateError> {
    // A fixed script; every path is an argument, never part of the script.
    const SCRIPT: &str = r#"nft=$1; shift
for f in "$@"; do "$nft" -c -f "$f" || exit 1; done"#;
    let mut args: Vec<&OsStr> = vec![
        "/bin/sh".as_ref(),
        "-c".as_ref(),
        SCRIPT.as_ref(),
        "tagwall-check".as_ref(),
        nft.as_os_str(),
    ];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    run(ns, "nft -c -f", &path_list(&files), &args).await
}

fn unavailable(mode: Validate, checked: &mut Checked, what: &str) -> Result<(), ValidateError> {
    if mode == Validate::Always {
        return Err(ValidateError::Unavailable(what.to_string()));
    }
    tracing::debug!("firewall-tool check skipped: {what}");
    checked.skip(what);
    Ok(())
}

/// `ipset restore`, then the iptables files against the sets it made, in one namespace.
async fn ipset_and_iptables(
    ns: &'static [&'static str],
    mode: Validate,
    checked: &mut Checked,
    set_file: &Path,
    v4: Option<&Path>,
    v6: Option<&Path>,
) -> Result<(), ValidateError> {
    let Some(ipset) = tool("ipset") else {
        return unavailable(
            mode,
            checked,
            "ipset is not installed (apt-get install ipset)",
        );
    };
    // The (tool, file) pair of each iptables file; an empty pair skips that check.
    let mut pairs = Vec::new();
    let mut tools = vec!["ipset"];
    for (file, name) in [(v4, "iptables-restore"), (v6, "ip6tables-restore")] {
        let pair = match (file, file.and_then(|_| tool(name))) {
            (Some(f), Some(t)) => {
                tools.push(name);
                (t.into_os_string(), f.as_os_str().to_owned())
            }
            (Some(_), None) => {
                unavailable(
                    mode,
                    checked,
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
    run(ns, name, &path_list(&files), &args).await?;
    checked.tools.extend(tools);
    Ok(())
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
