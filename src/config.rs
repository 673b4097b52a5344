//! `tagwall.toml`: settings read once, validated, then passed down as typed values.
//!
//! Found at `--config FILE`, else `$TAGWALL_CONFIG`, else `./tagwall.toml` if it exists. Unknown
//! keys are refused, so a misspelt setting is never silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// The store URL is not usable.
    #[error("{0}")]
    Url(#[from] BadUrl),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    store: StoreSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<String>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    /// The history store.
    pub db: DbUrl,
    /// The file the settings came from, if any.
    pub source: Option<PathBuf>,
}

impl Config {
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
        Ok(Config {
            db: DbUrl::parse(&url)?,
            source,
        })
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
