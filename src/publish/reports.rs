//! The diff reports, `out/reports/<cloud>/<date>.{md,json,html}`, as durable work: the store
//! records which snapshot each report compares with which ([`Store::mark_report`]), and every
//! run first writes the reports that are missing — a run that imported a week but could not
//! write its report (a full disk, a read-only folder, a kill) leaves it to the next — or stale
//! (a backfilled week now sits between a snapshot and the one its report compared it with).
//! Each report opens with "Your rulesets": what changes in each ruleset of the cloud, and a
//! banner when that change is withheld.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Layout;
use crate::core::model::{Cloud, SnapshotInfo};
use crate::publish::artifacts::write_atomic;
use crate::publish::ruleset::read_withheld;
use crate::rules::allowlist::Allowlist;
use crate::rules::changes::{changes, RulesetReport};
use crate::rules::ruleset::Ruleset;
use crate::store::Store;

/// The formats of each report, by extension.
pub const EXTENSIONS: [&str; 3] = ["md", "json", "html"];

/// A report written by [`catch_up`].
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The snapshot it reports.
    pub snapshot_id: i64,
    /// Its path without extension.
    pub base: PathBuf,
}

/// Writes every missing or stale report of `cloud`, oldest first; a cloud's first snapshot has
/// none. Stops at the first report that cannot be written (the next run tries again).
pub async fn catch_up(
    store: &Store,
    layout: &Layout,
    cloud: Cloud,
    rulesets: &[&Ruleset],
) -> anyhow::Result<Vec<Written>> {
    let history = store.snapshot_ords(cloud).await?;
    let marks: HashMap<i64, i64> = store.report_marks(cloud).await?.into_iter().collect();
    let mut written = Vec::new();
    for pair in history.windows(2) {
        let (before, info) = (&pair[0].0, &pair[1].0);
        let base = layout.reports(cloud).join(info.file_date.to_string());
        if marks.get(&info.id) == Some(&before.id) && complete(&base) {
            continue;
        }
        let sections = sections(store, layout, rulesets, before, info).await?;
        write(store, &base, before, info, &sections).await.with_context(|| {
            format!(
                "the diff report of {cloud} {} (id:{}) could not be written; the next run tries again",
                info.file_date, info.id
            )
        })?;
        store.mark_report(info.id, before.id).await?;
        written.push(Written {
            snapshot_id: info.id,
            base,
        });
    }
    Ok(written)
}

/// Writes the report of the snapshot `id` of `cloud` again (after an approval: its rulesets'
/// banners now say what is published). Nothing when it has no report (a cloud's first).
pub async fn rewrite(
    store: &Store,
    layout: &Layout,
    cloud: Cloud,
    rulesets: &[&Ruleset],
    id: i64,
) -> anyhow::Result<()> {
    let Some((before, info)) = pair(store, cloud, |s| s.id == id).await? else {
        return Ok(());
    };
    let (before, info) = (&before, &info);
    let base = layout.reports(cloud).join(info.file_date.to_string());
    let sections = sections(store, layout, rulesets, before, info).await?;
    write(store, &base, before, info, &sections)
        .await
        .with_context(|| format!("could not write the report {}", base.display()))?;
    store.mark_report(info.id, before.id).await?;
    Ok(())
}

/// The HTML report of the snapshot of `cloud` dated `date` against the one before it, rendered
/// from the store (nothing written): replicas without the output directory show it too.
/// `None` when there is no such report.
pub async fn render_html(
    store: &Store,
    layout: &Layout,
    cloud: Cloud,
    rulesets: &[&Ruleset],
    date: chrono::NaiveDate,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some((before, info)) = pair(store, cloud, |s| s.file_date == date).await? else {
        return Ok(None);
    };
    let sections = sections(store, layout, rulesets, &before, &info).await?;
    let [_, _, html] = render(store, &before, &info, &sections).await?;
    Ok(Some(html))
}

/// The newest snapshot of `cloud` that `pick` takes and the one before it, in history order.
async fn pair(
    store: &Store,
    cloud: Cloud,
    pick: impl Fn(&SnapshotInfo) -> bool,
) -> anyhow::Result<Option<(SnapshotInfo, SnapshotInfo)>> {
    let history = store.snapshot_ords(cloud).await?;
    Ok(history
        .windows(2)
        .rev()
        .find(|p| pick(&p[1].0))
        .map(|p| (p[0].0.clone(), p[1].0.clone())))
}

/// Whether every format of the report at `base` exists.
fn complete(base: &Path) -> bool {
    EXTENSIONS
        .iter()
        .all(|ext| base.with_extension(ext).is_file())
}

/// "Your rulesets" of the report comparing `info` with `before`: each ruleset of the cloud
/// built at both (a `tags` entry that matches nothing at one side is left out there), and the
/// withheld banner when the ruleset's withheld change is this snapshot's. Reads the two
/// snapshots only when the cloud has rulesets.
async fn sections(
    store: &Store,
    layout: &Layout,
    rulesets: &[&Ruleset],
    before: &SnapshotInfo,
    info: &SnapshotInfo,
) -> anyhow::Result<Vec<RulesetReport>> {
    if rulesets.is_empty() {
        return Ok(Vec::new());
    }
    let (older, newer) = (store.snapshot(before).await?, store.snapshot(info).await?);
    let mut out = Vec::new();
    for r in rulesets {
        let kept_before = store.retained(r, &older, before).await?;
        let kept_after = store.retained(r, &newer, info).await?;
        let (Ok((a, _)), Ok((b, _))) = (
            Allowlist::build_without_missing(r, &older, before, &kept_before),
            Allowlist::build_without_missing(r, &newer, info, &kept_after),
        ) else {
            continue;
        };
        let withheld = read_withheld(layout, &r.name)
            .ok()
            .flatten()
            .filter(|m| m.snapshot_id == info.id)
            .map(|m| m.reasons);
        out.push(RulesetReport {
            name: r.name.clone(),
            changes: changes(&a, &b),
            withheld,
        });
    }
    Ok(out)
}

/// Writes the report at `base` comparing `info` with `before`, opening with `sections`.
async fn write(
    store: &Store,
    base: &Path,
    before: &SnapshotInfo,
    info: &SnapshotInfo,
    sections: &[RulesetReport],
) -> anyhow::Result<()> {
    let rendered = render(store, before, info, sections).await?;
    if let Some(dir) = base.parent() {
        // base: <out>/reports/<cloud>/<name>.
        let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
        crate::publish::artifacts::create_owned_dir(root, dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    for (ext, bytes) in EXTENSIONS.iter().zip(rendered) {
        let path = base.with_extension(ext);
        write_atomic(&path, &bytes)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(())
}

/// The report comparing `info` with `before`, opening with `sections`, in each of
/// [`EXTENSIONS`]: Markdown, JSON, HTML.
async fn render(
    store: &Store,
    before: &SnapshotInfo,
    info: &SnapshotInfo,
    sections: &[RulesetReport],
) -> anyhow::Result<[Vec<u8>; 3]> {
    use crate::render::report::rulesets_section as opening;
    let d = store.diff(before, info).await?;
    let mut md = Vec::new();
    crate::render::report::diff_markdown::title(&mut md, before, info)?;
    opening::markdown_section(&mut md, sections)?;
    crate::render::report::diff_markdown::body(&mut md, &d, before, info)?;
    let mut value = crate::render::report::diff_json::to_value(&d, before, info);
    if !sections.is_empty() {
        value["rulesets"] = opening::json_section(sections);
    }
    let mut json = serde_json::to_vec_pretty(&value)?;
    json.push(b'\n');
    let mut html = Vec::new();
    crate::render::report::html::write_report(
        &mut html,
        &d,
        before,
        info,
        &opening::html_section(sections),
    )?;
    Ok([md, json, html])
}
