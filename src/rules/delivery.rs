//! How a ruleset's published files reach the firewall, checked: lists split into parts
//! (`split_entries`), the most entries a firewall's list takes (`vendor_limit`), and the commands
//! run after a publish (`apply`, argv lists with placeholders for the published files, bounded by
//! `apply_timeout_seconds`). Pure: `publish::apply` runs the commands.

use std::time::Duration;

use crate::core::ranges::Family;

use super::format::Format;

/// The default time an apply command may take.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest time an apply command may be given.
pub const MAX_APPLY_TIMEOUT_SECONDS: u64 = 3600;
/// The longest argument of an apply command.
const MAX_ARG: usize = 4096;
/// The most apply commands of a ruleset.
const MAX_COMMANDS: usize = 32;

/// `split_entries`, `vendor_limit` and `apply` of a ruleset, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Also write each family's list in numbered parts of at most this many entries.
    pub split_entries: Option<usize>,
    /// The most entries one list file may hold: a longer list fails the ruleset.
    pub vendor_limit: Option<usize>,
    /// Commands run in order after a publish, placeholders still in.
    pub apply: Vec<Vec<String>>,
    /// How long each command may take.
    pub apply_timeout: Duration,
    /// The environment variables the commands get besides PATH, the locale, TZ and HOME.
    pub apply_env: Vec<String>,
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            split_entries: None,
            vendor_limit: None,
            apply: Vec::new(),
            apply_timeout: DEFAULT_APPLY_TIMEOUT,
            apply_env: Vec::new(),
        }
    }
}

/// The fields as written in `[[ruleset]]`.
pub struct DeliverySpec<'a> {
    /// `split_entries`.
    pub split_entries: Option<usize>,
    /// `vendor_limit`.
    pub vendor_limit: Option<usize>,
    /// `apply`.
    pub apply: &'a [Vec<String>],
    /// `apply_timeout_seconds`.
    pub apply_timeout_seconds: Option<u64>,
    /// `apply_env`.
    pub apply_env: &'a [String],
}

impl DeliverySpec<'_> {
    /// Checks the fields against the ruleset's formats and families.
    pub fn validate(&self, formats: &[Format], families: &[Family]) -> Result<Delivery, String> {
        let positive = |field: &str, v: Option<usize>| match v {
            Some(0) => Err(format!("{field} = 0: give at least 1")),
            v => Ok(v),
        };
        let split_entries = positive("split_entries", self.split_entries)?;
        let vendor_limit = positive("vendor_limit", self.vendor_limit)?;
        if split_entries.is_some() && !formats.contains(&Format::Txt) {
            return Err("split_entries splits the .txt lists: add \"txt\" to formats".into());
        }
        if let (Some(s), Some(l)) = (split_entries, vendor_limit) {
            if s > l {
                return Err(format!(
                    "split_entries = {s} is over vendor_limit = {l}: each part must fit the firewall's limit"
                ));
            }
        }
        let apply_timeout = match self.apply_timeout_seconds {
            None => DEFAULT_APPLY_TIMEOUT,
            Some(s) if (1..=MAX_APPLY_TIMEOUT_SECONDS).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(format!(
                    "apply_timeout_seconds = {s}: give 1 to {MAX_APPLY_TIMEOUT_SECONDS}"
                ))
            }
        };
        let keys = placeholders(formats, families);
        if self.apply.len() > MAX_COMMANDS {
            return Err(format!(
                "apply has {} commands: at most {MAX_COMMANDS}",
                self.apply.len()
            ));
        }
        for (i, argv) in self.apply.iter().enumerate() {
            check_command(i + 1, argv, &keys)?;
        }
        check_env(self.apply_env)?;
        if !self.apply_env.is_empty() && self.apply.is_empty() {
            return Err(
                "apply_env is set but apply is not: it names what apply commands get".into(),
            );
        }
        Ok(Delivery {
            split_entries,
            vendor_limit,
            apply: self.apply.to_vec(),
            apply_timeout,
            apply_env: self.apply_env.to_vec(),
        })
    }
}

/// The most variables `apply_env` may name.
const MAX_ENV: usize = 32;

/// `apply_env`: environment variable names (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes each).
fn check_env(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_ENV {
        return Err(format!(
            "apply_env names {} variables: at most {MAX_ENV}",
            names.len()
        ));
    }
    for name in names {
        let ok = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "apply_env: {} is not an environment variable name (letters, digits and _, not starting with a digit)",
                crate::core::text::quoted(name, 64)
            ));
        }
    }
    Ok(())
}

/// The placeholders an apply command may use: `{dir}`, `{name}`, and each published file by what
/// follows `<name>.` in its name (`{nft}`, `{ipset}`, `{iptables}`, `{ipv4.txt}`, …).
pub fn placeholders(formats: &[Format], families: &[Family]) -> Vec<String> {
    let mut keys = vec!["dir".to_string(), "name".to_string()];
    for f in formats {
        keys.extend(f.suffixes(families).into_iter().map(str::to_string));
    }
    keys
}

fn check_command(n: usize, argv: &[String], keys: &[String]) -> Result<(), String> {
    let Some(program) = argv.first() else {
        return Err(format!(
            "apply command {n} is empty: give [\"program\", \"argument\", …]"
        ));
    };
    if program.is_empty() {
        return Err(format!("apply command {n}: the program is empty"));
    }
    for arg in argv {
        if arg.len() > MAX_ARG || arg.contains('\0') {
            return Err(format!(
                "apply command {n}: an argument is over {MAX_ARG} bytes or holds NUL"
            ));
        }
        for key in keys_in(arg).map_err(|e| format!("apply command {n}: {e}"))? {
            if !keys.iter().any(|k| k == key) {
                return Err(format!(
                    "apply command {n}: unknown placeholder {{{key}}}: use one of {}",
                    keys.iter()
                        .map(|k| format!("{{{k}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The placeholder keys in `arg`; an unclosed `{` or a stray `}` is an error.
fn keys_in(arg: &str) -> Result<Vec<&str>, String> {
    let mut keys = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("{arg:?} has a '}}' without '{{'"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{arg:?} has a '{{' without '}}'"));
        };
        keys.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(keys)
}

/// `arg` with each placeholder replaced by `value(key)` (keys were checked by `validate`).
pub fn expand(arg: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(apply: &'a [Vec<String>]) -> DeliverySpec<'a> {
        DeliverySpec {
            split_entries: None,
            vendor_limit: None,
            apply,
            apply_timeout_seconds: None,
            apply_env: &[],
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn placeholders_are_checked_and_expanded() {
        let formats = [Format::Nft, Format::Txt];
        let families = [Family::V4, Family::V6];
        let ok = [
            argv(&["nft", "-f", "{nft}"]),
            argv(&["cp", "{ipv4.txt}", "/srv/{name}.txt"]),
        ];
        let d = spec(&ok).validate(&formats, &families).unwrap();
        assert_eq!(d.apply_timeout, DEFAULT_APPLY_TIMEOUT);
        for (bad, error) in [
            (
                argv(&["ipset", "restore", "-f", "{ipset}"]),
                "unknown placeholder {ipset}",
            ),
            (argv(&[]), "is empty"),
            (argv(&["echo", "{nft"]), "without '}'"),
            (argv(&["echo", "x}"]), "without '{'"),
        ] {
            let e = spec(std::slice::from_ref(&bad))
                .validate(&formats, &families)
                .unwrap_err();
            assert!(e.contains(error), "{e}");
        }
        let value = |k: &str| format!("<{k}>");
        assert_eq!(expand("/srv/{name}.{nft}", value), "/srv/<name>.<nft>");
        assert_eq!(expand("plain", value), "plain");
    }

    #[test]
    fn split_and_limits_are_checked() {
        let mut s = spec(&[]);
        s.split_entries = Some(5000);
        s.vendor_limit = Some(1000);
        let e = s.validate(&[Format::Txt], &[Family::V4]).unwrap_err();
        assert!(e.contains("over vendor_limit"), "{e}");
        s.vendor_limit = None;
        let e = s.validate(&[Format::Nft], &[Family::V4]).unwrap_err();
        assert!(e.contains("add \"txt\""), "{e}");
        s.split_entries = Some(0);
        assert!(s.validate(&[Format::Txt], &[Family::V4]).is_err());
        let mut t = spec(&[]);
        t.apply_timeout_seconds = Some(0);
        assert!(t.validate(&[Format::Txt], &[Family::V4]).is_err());
    }
}
