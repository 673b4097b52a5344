//! `tagwall.toml`: settings read once, validated, then passed down as typed values.
//!
//! Found at `--config FILE`, else `$TAGWALL_CONFIG`, else `./tagwall.toml` if it exists. Unknown
//! keys are refused, so a misspelt setting is never silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::model::Cloud;
use crate::fetch::{FetchSettings, FetchSpec};
use crate::rules::ruleset::{Ruleset, RulesetSpec};
use crate::store::{BadUrl, DbUrl};

/// The default store: an embedded SQLite file in the working directory.
pub const DEFAULT_DB: &str = "sqlite://tagwall.db";

/// The file read when neither `--config` nor `TAGWALL_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "tagwall.toml";

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file could not be read.
    #[error("could not read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML of tagwall's shape.
    #[error("config file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// `[fetch]` is not valid.
    #[error("config file {path}: [fetch] {message}")]
    Fetch {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The store URL is not usable.
    #[error("{0}")]
    Url(#[from] BadUrl),
    /// A ruleset is not valid.
    #[error("config file {path}: ruleset {which}: {message}")]
    Ruleset {
        /// The file.
        path: PathBuf,
        /// `#N` and the name.
        which: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    output: OutputSection,
    #[serde(default)]
    ruleset: Vec<RulesetSpec>,
    #[serde(default)]
    fetch: FetchSpec,
    #[serde(default)]
    guard: GuardSection,
    #[serde(default)]
    schedule: ScheduleSection,
    #[serde(default)]
    notify: crate::notify::settings::NotifySection,
    #[serde(default)]
    serve: crate::serve::settings::ServeSection,
    #[serde(default)]
    sync: SyncSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardSection {
    max_removed_percent: Option<f64>,
    max_prefix_drop_percent: Option<f64>,
    max_added_percent: Option<f64>,
    #[serde(default)]
    min_prefix_length: MinPrefixSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MinPrefixSection {
    ipv4: Option<u8>,
    ipv6: Option<u8>,
}

/// `[guard]` as typed limits; the error names the key and the range it takes.
fn guard_limits(g: &GuardSection) -> Result<crate::rules::guard::Limits, String> {
    use crate::rules::guard;
    let percent = |key: &str, v: Option<f64>, default: f64| {
        match v {
        Some(p) if !(0.0..=100.0).contains(&p) && key != "max_added_percent" => Err(format!(
            "[guard] {key} = {p}: use a share between 0 and 100"
        )),
        Some(p) if !(p >= 0.0 && p.is_finite()) => Err(format!(
            "[guard] {key} = {p}: use a share of 0 or more (percent of the addresses allowed before)"
        )),
        v => Ok(v.unwrap_or(default)),
    }
    };
    let length = |key: &str, v: Option<u8>, default: u8, max: u8| match v {
        Some(l) if l > max => Err(format!(
            "[guard] min_prefix_length.{key} = {l}: use 0 to {max}"
        )),
        v => Ok(v.unwrap_or(default)),
    };
    Ok(guard::Limits {
        max_removed_percent: percent(
            "max_removed_percent",
            g.max_removed_percent,
            guard::MAX_REMOVED_PERCENT,
        )?,
        max_prefix_drop_percent: percent(
            "max_prefix_drop_percent",
            g.max_prefix_drop_percent,
            guard::MAX_PREFIX_DROP_PERCENT,
        )?,
        max_added_percent: percent(
            "max_added_percent",
            g.max_added_percent,
            guard::MAX_ADDED_PERCENT,
        )?,
        min_prefix_length: (
            length("ipv4", g.min_prefix_length.ipv4, guard::MIN_PREFIX_V4, 32)?,
            length("ipv6", g.min_prefix_length.ipv6, guard::MIN_PREFIX_V6, 128)?,
        ),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleSection {
    cron: Option<String>,
    random_delay_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncSection {
    lock_wait_seconds: Option<u64>,
}

/// `[schedule]`: when `tagwall daemon` runs `sync`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The crontab schedule (UTC).
    pub cron: crate::job::schedule::CronSchedule,
    /// Up to this much random delay after each scheduled time.
    pub random_delay: std::time::Duration,
}

/// The default schedule: daily at 07:00 UTC (files appear on irregular days; an unchanged day
/// costs one conditional request per cloud).
pub const DEFAULT_CRON: &str = "0 7 * * *";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputSection {
    dir: Option<PathBuf>,
    validate: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<String>,
}

/// The longest wait for another run's lock (`[sync] lock_wait_seconds`, `--lock-wait`): a day.
pub const MAX_LOCK_WAIT_SECONDS: u64 = 86_400;

/// The default output directory (`[output] dir`).
pub const DEFAULT_OUT: &str = "out";

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    /// The history store.
    pub db: DbUrl,
    /// The file the settings came from, if any.
    pub source: Option<PathBuf>,
    /// Where rulesets are written (`[output] dir`), relative to the working directory.
    pub output_dir: PathBuf,
    /// Whether the firewall tools check files before they are published (`[output] validate`).
    pub validate: crate::publish::validate::Validate,
    /// The rulesets, in file order.
    pub rulesets: Vec<Ruleset>,
    /// How files are fetched (`[fetch]`).
    pub fetch: FetchSettings,
    /// The guard's default limits (`[guard]`).
    pub guard: crate::rules::guard::Limits,
    /// When the daemon runs (`[schedule]`).
    pub schedule: Schedule,
    /// Where run summaries go (`[notify]`, `[notify.email]`).
    pub notify: crate::notify::settings::Settings,
    /// How `tagwall serve` serves (`[serve]`).
    pub serve: crate::serve::settings::Settings,
    /// How long a run waits for another run's lock (`[sync] lock_wait_seconds`).
    pub lock_wait: std::time::Duration,
}

impl Config {
    /// What a `sync` run (and `emit` into the output directory) reads of the settings.
    pub fn for_sync(&self) -> crate::job::sync::Settings<'_> {
        crate::job::sync::Settings {
            output_dir: &self.output_dir,
            validate: self.validate,
            rulesets: &self.rulesets,
            fetch: &self.fetch,
            guard: self.guard,
            remind_days: self.notify.remind_days,
        }
    }

    /// What approving and rejecting a withheld change read of the settings.
    pub fn desk(&self) -> crate::job::approve::Desk {
        crate::job::approve::Desk {
            output_dir: self.output_dir.clone(),
            validate: self.validate,
            rulesets: self.rulesets.clone(),
            fetch: self.fetch.clone(),
            guard: self.guard,
            notify: self.notify.clone(),
            lock_wait: self.lock_wait,
        }
    }

    /// Loads the settings. `file` is `--config`/`TAGWALL_CONFIG` (must exist when given);
    /// `db` is `--db`/`TAGWALL_DB`, which wins over the file.
    pub fn load(file: Option<&Path>, db: Option<&str>) -> Result<Config, ConfigError> {
        let (parsed, source) = match file {
            Some(path) => (read(path)?, Some(path.to_path_buf())),
            None if Path::new(DEFAULT_CONFIG).is_file() => (
                read(Path::new(DEFAULT_CONFIG))?,
                Some(PathBuf::from(DEFAULT_CONFIG)),
            ),
            None => (File::default(), None),
        };
        let url = db
            .map(str::to_string)
            .or(parsed.store.url)
            .unwrap_or_else(|| DEFAULT_DB.to_string());
        let path = source.clone().unwrap_or_default();
        let rulesets = rulesets(&path, parsed.ruleset)?;
        let fetch = parsed
            .fetch
            .validate()
            .map_err(|message| ConfigError::Fetch {
                path: path.clone(),
                message,
            })?;
        let section = |message: String| ConfigError::Invalid {
            path: path.clone(),
            message,
        };
        let guard = guard_limits(&parsed.guard).map_err(section)?;
        let schedule = schedule(&parsed.schedule).map_err(section)?;
        let mut notify = parsed
            .notify
            .validate(|name| std::env::var(name).ok())
            .map_err(section)?;
        let serve = parsed.serve.validate().map_err(section)?;
        notify.site = serve.public_url.clone();
        let validate = match parsed.output.validate.as_deref() {
            None => crate::publish::validate::Validate::default(),
            Some(v) => crate::publish::validate::Validate::parse(v).map_err(section)?,
        };
        let lock_wait = lock_wait(parsed.sync.lock_wait_seconds).map_err(section)?;
        Ok(Config {
            guard,
            schedule,
            notify,
            serve,
            lock_wait,
            fetch,
            db: DbUrl::parse(&url)?,
            source,
            validate,
            output_dir: parsed
                .output
                .dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)),
            rulesets,
        })
    }

    /// The rulesets named (all when `names` is empty); an unknown name is an error.
    pub fn pick(&self, names: &[String]) -> Result<Vec<&Ruleset>, String> {
        if names.is_empty() {
            return Ok(self.rulesets.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.rulesets.iter().find(|r| &r.name == n).ok_or_else(|| {
                    let known: Vec<&str> = self.rulesets.iter().map(|r| r.name.as_str()).collect();
                    format!(
                        "no ruleset named {n:?} in {}: {}",
                        self.source_name(),
                        if known.is_empty() {
                            "it defines none (see `tagwall config example`)".to_string()
                        } else {
                            format!("it defines {}", known.join(", "))
                        }
                    )
                })
            })
            .collect()
    }

    /// The clouds `fetch` gets by default: `[fetch] clouds`, else the clouds the rulesets use,
    /// else Public.
    pub fn fetch_clouds(&self) -> Vec<Cloud> {
        if let Some(clouds) = &self.fetch.clouds {
            return clouds.clone();
        }
        let mut clouds: Vec<Cloud> = Cloud::ALL
            .into_iter()
            .filter(|c| self.rulesets.iter().any(|r| r.cloud == *c))
            .collect();
        if clouds.is_empty() {
            clouds.push(Cloud::Public);
        }
        clouds
    }

    /// The settings file's name for messages.
    pub fn source_name(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => format!("the settings (no {DEFAULT_CONFIG} found)"),
        }
    }
}

fn read(path: &Path) -> Result<File, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The `[[ruleset]]` tables, each validated, names unique and not reserved.
fn rulesets(path: &Path, specs: Vec<RulesetSpec>) -> Result<Vec<Ruleset>, ConfigError> {
    let mut rulesets: Vec<Ruleset> = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let which = format!("#{} ({:?})", i + 1, spec.name);
        let fail = |message: String| ConfigError::Ruleset {
            path: path.to_path_buf(),
            which: which.clone(),
            message,
        };
        let ruleset = spec.validate().map_err(fail)?;
        if rulesets.iter().any(|r| r.name == ruleset.name) {
            return Err(fail(format!(
                "the name {:?} is used twice: names become directories and set names, so each must be unique",
                ruleset.name
            )));
        }
        let terraform = |r: &Ruleset| {
            r.formats.iter().any(|f| {
                matches!(
                    f,
                    crate::rules::format::Format::TerraformAzure
                        | crate::rules::format::Format::TerraformAws
                )
            })
        };
        let tf_id = crate::render::firewall::terraform::ident;
        if let Some(other) = rulesets
            .iter()
            .find(|r| (terraform(r) || terraform(&ruleset)) && tf_id(r) == tf_id(&ruleset))
        {
            return Err(fail(format!(
                "the names {:?} and {:?} give the same Terraform variable and output names (tw_{}_…): rename one",
                other.name,
                ruleset.name,
                tf_id(&ruleset)
            )));
        }
        if crate::publish::is_reserved(&ruleset.name) {
            return Err(fail(format!(
                "the name {:?} is taken by the output directory itself (out/{}/ holds the diff reports): pick another name",
                ruleset.name, ruleset.name
            )));
        }
        rulesets.push(ruleset);
    }
    Ok(rulesets)
}

/// `[schedule]`.
fn schedule(section: &ScheduleSection) -> Result<Schedule, String> {
    let cron = section.cron.as_deref().unwrap_or(DEFAULT_CRON);
    Ok(Schedule {
        cron: crate::job::schedule::CronSchedule::parse(cron)
            .map_err(|e| format!("[schedule] {e}"))?,
        random_delay: std::time::Duration::from_secs(section.random_delay_seconds.unwrap_or(0)),
    })
}

/// `[sync] lock_wait_seconds`: at most a day.
fn lock_wait(seconds: Option<u64>) -> Result<std::time::Duration, String> {
    match seconds.unwrap_or(600) {
        s if s <= MAX_LOCK_WAIT_SECONDS => Ok(std::time::Duration::from_secs(s)),
        s => Err(format!(
            "[sync] lock_wait_seconds = {s}: use at most {MAX_LOCK_WAIT_SECONDS} (one day)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[store]\nurl = \"postgres://u@h/db\"\n").unwrap();
        assert_eq!(
            Config::load(Some(&path), None).unwrap().db.expose(),
            "postgres://u@h/db"
        );
        assert_eq!(
            Config::load(Some(&path), Some("sqlite://x.db"))
                .unwrap()
                .db
                .expose(),
            "sqlite://x.db"
        );
    }

    #[test]
    fn rulesets_are_validated_with_their_number_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let ruleset = "[[ruleset]]\nname = \"a\"\ntags = [\"AzureCloud\"]\n";
        std::fs::write(&path, format!("[output]\ndir = \"o\"\n{ruleset}")).unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        assert_eq!(config.output_dir, PathBuf::from("o"));
        assert_eq!(config.rulesets[0].name, "a");
        assert!(config
            .pick(&["b".into()])
            .unwrap_err()
            .contains("it defines a"));
        std::fs::write(&path, format!("{ruleset}{ruleset}")).unwrap();
        let err = Config::load(Some(&path), None).unwrap_err().to_string();
        assert!(
            err.contains("ruleset #2 (\"a\"): the name \"a\" is used twice"),
            "{err}"
        );
        std::fs::write(
            &path,
            "[[ruleset]]\nname = \"a\"\ntags = [\"X\"]\nport = [1]\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), None).unwrap_err().to_string();
        assert!(err.contains("unknown field `port`"), "{err}");
        std::fs::write(&path, "[[ruleset]]\nname = \"reports\"\ntags = [\"X\"]\n").unwrap();
        let err = Config::load(Some(&path), None).unwrap_err().to_string();
        assert!(
            err.contains("the name \"reports\" is taken by the output directory itself"),
            "{err}"
        );
    }

    #[test]
    fn guard_schedule_and_notify_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), None)
        };
        let c = load("[guard]\nmax_removed_percent = 2.5\n[schedule]\ncron = \"30 6 * * 1\"\nrandom_delay_seconds = 60\n[sync]\nlock_wait_seconds = 5\n[notify]\nwebhook_url = \"https://h.example/hook/SECRET\"\n").unwrap();
        assert_eq!(c.guard.max_removed_percent, 2.5);
        assert_eq!(c.guard.max_prefix_drop_percent, 20.0);
        assert_eq!(c.guard.max_added_percent, 25.0);
        assert_eq!(c.guard.min_prefix_length, (8, 16));
        assert_eq!(c.schedule.random_delay.as_secs(), 60);
        assert_eq!(c.lock_wait.as_secs(), 5);
        assert_eq!(
            format!("{:?}", c.notify.webhook.unwrap()),
            "https://h.example/***"
        );
        let d = Config::load(None, None).unwrap();
        assert_eq!(d.schedule.cron.text(), DEFAULT_CRON);
        for (text, wanted) in [
            ("[guard]\nmax_removed_percent = 120\n", "between 0 and 100"),
            ("[schedule]\ncron = \"7 * *\"\n", "write crontab's 5 fields"),
            (
                "[schedule]\ncron = \"0 25 * * *\"\n",
                "not a valid crontab schedule",
            ),
            ("[notify]\nwebhook_url = \"http://h/x\"\n", "https://"),
            ("[guard]\nmax_removed = 1\n", "unknown field `max_removed`"),
            (
                "[guard]\nmax_added_percent = -1\n",
                "max_added_percent = -1",
            ),
            (
                "[guard]\nmin_prefix_length = { ipv4 = 33 }\n",
                "min_prefix_length.ipv4 = 33: use 0 to 32",
            ),
            (
                "[guard]\nmin_prefix_length = { ipv5 = 3 }\n",
                "unknown field `ipv5`",
            ),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[store]\nulr = \"sqlite://x.db\"\n").unwrap();
        let err = Config::load(Some(&path), None).unwrap_err().to_string();
        assert!(err.contains("unknown field `ulr`"), "{err}");
        let missing = dir.path().join("missing.toml");
        let err = Config::load(Some(&missing), None).unwrap_err().to_string();
        assert!(err.starts_with("could not read config file"), "{err}");
    }
}
