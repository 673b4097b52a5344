//! A publish is applied, or it is not published: the intent of a ruleset's publish with `apply`
//! commands is recorded (`.tagwall/applying-<name>.json`) before its directory is swapped in and
//! cleared once its commands succeeded (or the previous directory is back and applied). A run
//! killed in between — SIGKILL, or SIGTERM from systemd, Docker or Kubernetes — leaves the
//! marker; the next run that reaches the ruleset runs its commands again before anything else
//! ([`finish_interrupted`]), and `serve` does not serve a directory while its marker exists.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::artifacts::write_atomic;
use super::Layout;
use crate::rules::ruleset::Ruleset;
use crate::store::Store;

/// What the marker records, for people reading it.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    ruleset: String,
    /// When the publish began (RFC 3339, UTC).
    started_at: String,
}

/// Records that `ruleset`'s publish is about to be applied.
pub fn mark(layout: &Layout, ruleset: &str) -> anyhow::Result<()> {
    let path = layout.applying(ruleset);
    let marker = Marker {
        ruleset: ruleset.to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let bytes = serde_json::to_vec_pretty(&marker)?;
    super::artifacts::create_owned_dir(layout.root(), &layout.state())
        .and_then(|()| write_atomic(&path, &bytes))
        .with_context(|| format!("could not write {}", path.display()))
}

/// Clears the marker: the ruleset's published directory is applied.
pub fn clear(layout: &Layout, ruleset: &str) -> anyhow::Result<()> {
    let path = layout.applying(ruleset);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Whether a publish of `ruleset` into `root` has apply commands that have not finished.
pub fn pending(root: &Path, ruleset: &str) -> bool {
    Layout::new(root)
        .applying(ruleset)
        .symlink_metadata()
        .is_ok()
}

/// When a killed run left `ruleset`'s publish unapplied: runs its apply commands on what is
/// published now, then records it in the store and clears the marker. `Ok(true)` when it did;
/// an error (the marker stays, the next run tries again) when the commands fail.
pub async fn finish_interrupted(
    layout: &Layout,
    store: &Store,
    ruleset: &Ruleset,
) -> anyhow::Result<bool> {
    let name = &ruleset.name;
    if !pending(layout.root(), name) {
        return Ok(false);
    }
    let dir = layout.ruleset(name);
    if ruleset.delivery.apply.is_empty() || !dir.is_dir() {
        // Nothing to apply (the settings dropped `apply`), or nothing published.
        clear(layout, name)?;
        return Ok(false);
    }
    tracing::warn!(
        "ruleset {name}: the apply commands of its last publish did not finish (the run was stopped): running them again"
    );
    super::apply::run(ruleset, &dir).await.map_err(|why| {
        anyhow::anyhow!(
            "the apply commands of the last publish did not finish (the run was stopped), and running them again failed: {why}; {} stays unapplied and unserved, and the next run tries again",
            dir.display()
        )
    })?;
    let files = super::baseline::read_files(&dir, name)
        .map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?;
    let mut all = files.files;
    all.push((
        crate::rules::manifest::FILE.to_string(),
        files.manifest_bytes,
    ));
    super::record::record(store, name, &all).await?;
    clear(layout, name)?;
    tracing::info!("ruleset {name}: the interrupted publish is applied now");
    Ok(true)
}
