//! The one way files reach a ruleset's directory (`emit`, `sync` and `approve` all come here,
//! under the run lock): the files are rendered and checked (`emit::checked_files`: the loaders'
//! line rules, then the real tools), the directory is swapped in whole, the ruleset's `apply`
//! commands run (on failure the previous directory comes back and is applied again; the intent
//! is recorded first so that a killed run's publish is applied by the next, `publish::applying`), any
//! withheld marker of the ruleset goes, and the files are recorded in the store. Also the withheld markers themselves, `.tagwall/withheld-<name>.json`.

use std::io;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{applying, Layout};
use crate::publish::artifacts::{write_atomic, write_dir_atomic, DirOutcome};
use crate::publish::validate::{Checked, Validate};
use crate::render::firewall::files;
use crate::rules::allowlist::Allowlist;
use crate::store::Store;

/// Publishes `allowlist` into its ruleset's directory. When `record_in` gives the store (the
/// directory is the settings' output directory), the ruleset's `apply` commands run (rolled back
/// on failure) and the same files are recorded there (for `serve` with `[serve] source =
/// "store"`). A directory already published but not yet recorded (a
/// failed record, or an older tagwall) is recorded by the next publish.
pub async fn publish(
    layout: &Layout,
    record_in: Option<&Store>,
    allowlist: &Allowlist<'_>,
    validate: Validate,
) -> anyhow::Result<Publication> {
    let ruleset = allowlist.ruleset;
    let name = &ruleset.name;
    let (files, checked) = checked_files(allowlist, validate).await?;
    let dir = layout.ruleset(name);
    let applies = record_in.is_some() && !ruleset.delivery.apply.is_empty();
    // A killed run's publish that was never applied: applied now even if nothing changed.
    let interrupted = applies && applying::pending(layout.root(), name);
    let previous = if applies {
        previous_files(&dir, name)
    } else {
        None
    };
    if applies {
        applying::mark(layout, name)?;
    }
    let outcome = write_dir_atomic(layout.root(), name, &files)
        .with_context(|| format!("could not write {}", dir.display()));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if applies && !interrupted {
                applying::clear(layout, name)?;
            }
            return Err(e);
        }
    };
    if applies && (outcome == DirOutcome::Written || interrupted) {
        if let Err(why) = crate::publish::apply::run(ruleset, &dir).await {
            let (restored, undo) = roll_back(layout, ruleset, previous).await;
            if restored {
                applying::clear(layout, name)?;
            }
            anyhow::bail!("{why}; {undo}");
        }
    }
    if applies {
        applying::clear(layout, name)?;
    }
    clear_withheld(layout, name)?;
    let done = Publication { outcome, checked };
    let Some(store) = record_in else {
        return Ok(done);
    };
    super::record::record(store, name, &files).await.with_context(|| {
        format!(
            "{} is published, but the store could not record it for `tagwall serve` (the next run records it)",
            dir.display()
        )
    })?;
    Ok(done)
}

/// What a publish did.
#[derive(Debug)]
pub struct Publication {
    /// Written, or already up to date.
    pub outcome: DirOutcome,
    /// Which tools checked the files.
    pub checked: Checked,
}

/// The files of the directory published now, to restore it when the new one's apply commands
/// fail (`None` when nothing is published or it does not check out).
fn previous_files(dir: &Path, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let mut files = crate::publish::baseline::read_files(dir, name).ok()?;
    files.files.push((
        crate::rules::manifest::FILE.to_string(),
        files.manifest_bytes,
    ));
    Some(files.files)
}

/// After a failed apply: the previous directory swapped back in and its commands run again, or,
/// when there was none, the new directory removed (so the next run publishes and applies it
/// again). Whether what is published now is applied, and what happened.
async fn roll_back(
    layout: &Layout,
    ruleset: &crate::rules::ruleset::Ruleset,
    previous: Option<Vec<(String, Vec<u8>)>>,
) -> (bool, String) {
    let dir = layout.ruleset(&ruleset.name);
    let Some(files) = previous else {
        return match std::fs::remove_dir_all(&dir) {
            Ok(()) => (true, "nothing was published before, so the new directory is removed (the next run tries again)".into()),
            Err(e) => (false, format!("the new directory {} could not be removed: {e}", dir.display())),
        };
    };
    if let Err(e) = write_dir_atomic(layout.root(), &ruleset.name, &files) {
        return (
            false,
            format!("the previous directory could not be restored: {e}"),
        );
    }
    match crate::publish::apply::run(ruleset, &dir).await {
        Ok(()) => (
            true,
            "the previous directory is restored and its apply commands ran again".into(),
        ),
        Err(e) => (
            false,
            format!("the previous directory is restored, but applying it again failed too: {e}"),
        ),
    }
}

/// The files of a ruleset's directory, each firewall file checked line by line against its
/// loader (always) and by the real tools (as `validate` says), and which tools did: the only
/// way to files that may be published. The tools run on every publish, an unchanged one
/// included, so what a run reports as checked was checked by that run.
pub async fn checked_files(
    allowlist: &Allowlist<'_>,
    validate: Validate,
) -> anyhow::Result<(Vec<(String, Vec<u8>)>, Checked)> {
    let files = files::files(allowlist).context("the files failed tagwall's checks")?;
    let checked = crate::publish::validate::check(allowlist.ruleset, &files, validate)
        .await
        .context("the firewall tools refused the files")?;
    Ok((files, checked))
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
    /// When this change was last notified (RFC 3339): it is reminded `[notify] remind_days`
    /// later, not on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<String>,
}

/// Records a withheld change.
pub fn write_withheld(layout: &Layout, marker: &Withheld) -> anyhow::Result<()> {
    let path = layout.withheld(&marker.ruleset);
    let mut json = serde_json::to_vec_pretty(marker)?;
    json.push(b'\n');
    crate::publish::artifacts::create_owned_dir(layout.root(), &layout.state())
        .with_context(|| format!("could not create {}", layout.state().display()))?;
    write_atomic(&path, &json).with_context(|| format!("could not write {}", path.display()))
}

/// The withheld change of `ruleset`, if there is one.
pub fn read_withheld(layout: &Layout, ruleset: &str) -> anyhow::Result<Option<Withheld>> {
    let path = layout.withheld(ruleset);
    let bytes = match crate::localfs::read_bounded(&path) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
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
