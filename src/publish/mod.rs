//! The output directory's one owner: where everything lives (`Layout`), which ruleset names
//! would collide with it, the diff reports as durable work ([`reports`]), and the leftovers of
//! killed runs. Everything here runs under the store's run lock.

pub mod apply;
pub mod applying;
pub mod artifacts;
pub mod baseline;
pub mod record;
pub mod reports;
pub mod ruleset;
pub mod served;
pub mod validate;

use std::io;
use std::path::{Path, PathBuf};

use crate::core::model::Cloud;

/// Names in the output directory that are not ruleset directories: a ruleset may not take them
/// (`config check` refuses them).
pub const RESERVED_NAMES: [&str; 1] = [REPORTS];

/// The reports folder.
const REPORTS: &str = "reports";
/// tagwall's own state (withheld markers).
const STATE: &str = ".tagwall";

/// Whether a ruleset name would collide with the output directory's own files and folders.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// The layout of one output directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root` (`[output] dir`).
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    /// The output directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A ruleset's published directory.
    pub fn ruleset(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The folder of a cloud's diff reports.
    pub fn reports(&self, cloud: Cloud) -> PathBuf {
        self.root.join(REPORTS).join(cloud.name())
    }

    /// tagwall's own state folder.
    pub fn state(&self) -> PathBuf {
        self.root.join(STATE)
    }

    /// The marker of a ruleset's withheld change.
    pub fn withheld(&self, ruleset: &str) -> PathBuf {
        self.state().join(format!("withheld-{ruleset}.json"))
    }

    /// The marker of a ruleset's publish whose apply commands have not finished.
    pub fn applying(&self, ruleset: &str) -> PathBuf {
        self.state().join(format!("applying-{ruleset}.json"))
    }

    /// The run summary, JSON.
    pub fn last_run_json(&self) -> PathBuf {
        self.root.join("last-run.json")
    }

    /// The run summary, Markdown.
    pub fn last_run_md(&self) -> PathBuf {
        self.root.join("last-run.md")
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.prom")
    }

    /// Removes the temporary files killed runs left in the folders tagwall writes files into
    /// (the output directory, its state folder, each cloud's reports); returns how many.
    /// Temporary ruleset directories are cleared by `artifacts::write_dir_atomic` itself.
    pub fn clean_temporaries(&self) -> io::Result<usize> {
        let mut dirs = vec![self.root.clone(), self.state()];
        for cloud in Cloud::ALL {
            dirs.push(self.reports(cloud));
        }
        let mut removed = 0;
        for dir in dirs {
            removed += clean_dir(&dir)?;
        }
        Ok(removed)
    }
}

/// Removes `dir`'s temporary files: tagwall's own prefix, and `.tmp` (tempfile's default, used
/// by earlier versions).
fn clean_dir(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let temporary =
            name.starts_with(crate::publish::artifacts::TEMP_PREFIX) || name.starts_with(".tmp");
        if temporary && entry.file_type()?.is_file() {
            tracing::info!(
                "removing {} (left by a run that was stopped)",
                entry.path().display()
            );
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_of_killed_runs_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let reports = layout.reports(Cloud::Public);
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::create_dir_all(layout.state()).unwrap();
        for p in [
            reports.join(".tmpAbC123"),
            reports.join(".tagwall-tmp-x1"),
            dir.path().join(".tagwall-tmp-y"),
            layout.state().join(".tmpQ"),
        ] {
            std::fs::write(p, b"half").unwrap();
        }
        std::fs::write(reports.join("2025-01-06.md"), b"kept").unwrap();
        std::fs::create_dir(dir.path().join(".tmpdir-of-a-user")).unwrap();
        assert_eq!(layout.clean_temporaries().unwrap(), 4);
        assert!(reports.join("2025-01-06.md").exists());
        assert!(dir.path().join(".tmpdir-of-a-user").exists());
        assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 1);
        assert!(is_reserved("reports") && !is_reserved("entra"));
    }
}
