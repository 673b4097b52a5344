//! The one way files reach a ruleset's directory (`emit`, `sync` and `approve` all come here,
//! under the run lock): the files are rendered and checked (`emit::checked_files`: the loaders'
//! line rules, then the real tools), the directory is swapped in whole, and any withheld marker
//! of the ruleset goes. Also the withheld markers themselves, `.tagwall/withheld-<name>.json`.

use std::io;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Layout;
use crate::publish::artifacts::{write_atomic, write_dir_atomic, DirOutcome};
use crate::publish::validate::Validate;
use crate::render::ruleset_files;
use crate::rules::allowlist::Allowlist;
use crate::store::{NewPublish, Store};

/// Publishes `allowlist` into its ruleset's directory, then, when `record` gives the store (the
/// directory is the settings' output directory), records the same files there (for `serve`
/// with `[serve] source = "store"`). A directory already published but not yet recorded (a
/// failed record, or an older tagwall) is recorded by the next publish.
pub async fn publish(
    layout: &Layout,
    record_in: Option<&Store>,
    allowlist: &Allowlist<'_>,
    validate: Validate,
) -> anyhow::Result<DirOutcome> {
    let name = &allowlist.ruleset.name;
    let files = checked_files(allowlist, validate, layout.root()).await?;
    let outcome = write_dir_atomic(layout.root(), name, &files)
        .with_context(|| format!("could not write {}", layout.ruleset(name).display()))?;
    clear_withheld(layout, name)?;
    let Some(store) = record_in else {
        return Ok(outcome);
    };
    record(store, name, &files).await.with_context(|| {
        format!(
            "{} is published, but the store could not record it for `tagwall serve` (the next run records it)",
            layout.ruleset(name).display()
        )
    })?;
    Ok(outcome)
}

/// Records the files of a ruleset's directory (the manifest last) in the store.
async fn record(store: &Store, name: &str, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let Some((_, manifest)) = files
        .iter()
        .find(|(n, _)| n == crate::rules::manifest::FILE)
    else {
        anyhow::bail!("ruleset {name}: no {}", crate::rules::manifest::FILE);
    };
    let manifest_sha256 = crate::core::digest::sha256_hex(manifest);
    let recorded = store
        .record_publish(&NewPublish {
            ruleset: name,
            manifest_sha256: &manifest_sha256,
            files,
        })
        .await?;
    if recorded {
        tracing::debug!("ruleset {name}: publish recorded in the store");
    }
    Ok(())
}

/// The files of a ruleset's directory, each firewall file checked line by line against its
/// loader (always) and by the real tools (as `validate` says): the only way to files that may
/// be published. Files identical to those published in `out/<name>/` passed the tools when they
/// were published, so an unchanged week does not run them again.
pub async fn checked_files(
    allowlist: &Allowlist<'_>,
    validate: Validate,
    out: &Path,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let name = &allowlist.ruleset.name;
    let files = ruleset_files::files(allowlist)
        .with_context(|| format!("ruleset {name}: the files failed tagwall's checks"))?;
    if !crate::publish::artifacts::holds_exactly(&out.join(name), &files) {
        crate::publish::validate::check(allowlist.ruleset, &files, validate)
            .await
            .with_context(|| format!("ruleset {name}: the firewall tools refused the files"))?;
    }
    Ok(files)
}

/// A change the guard held back, remembered for `tagwall approve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withheld {
    /// The ruleset.
    pub ruleset: String,
    /// The snapshot id the withheld change is built from.
    pub snapshot_id: i64,
    /// Its content hash: `approve` refuses a store where that id now names other content.
    #[serde(default)]
    pub content_sha256: Option<String>,
    /// Its cloud and date, for people.
    pub snapshot: String,
    /// Why.
    pub reasons: Vec<String>,
}

/// Records a withheld change.
pub fn write_withheld(layout: &Layout, marker: &Withheld) -> anyhow::Result<()> {
    let path = layout.withheld(&marker.ruleset);
    let mut json = serde_json::to_vec_pretty(marker)?;
    json.push(b'\n');
    std::fs::create_dir_all(layout.state())
        .with_context(|| format!("could not create {}", layout.state().display()))?;
    write_atomic(&path, &json).with_context(|| format!("could not write {}", path.display()))
}

/// The withheld change of `ruleset`, if there is one.
pub fn read_withheld(layout: &Layout, ruleset: &str) -> anyhow::Result<Option<Withheld>> {
    let path = layout.withheld(ruleset);
    let bytes = match crate::store::import::read_bounded(&path) {
        Ok(b) => b,
        Err(crate::store::import::ImportError::Read(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let marker: Withheld = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a withheld-change record: delete it and run sync again",
            path.display()
        )
    })?;
    if marker.ruleset != ruleset {
        anyhow::bail!(
            "{} records ruleset {}: delete it and run sync again",
            path.display(),
            crate::core::text::quoted(&marker.ruleset, 64)
        );
    }
    Ok(Some(marker))
}

/// Removes the withheld marker of `ruleset`, if any.
pub fn clear_withheld(layout: &Layout, ruleset: &str) -> anyhow::Result<()> {
    let path = layout.withheld(ruleset);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}
