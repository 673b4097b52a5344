//! `tagwall diff --ruleset`: what changes in one ruleset's list between two snapshots.

use anyhow::bail;

use super::{EXIT_FAILURE, EXIT_OK};
use crate::rules::allowlist::Allowlist;
use crate::rules::ruleset::Ruleset;
use crate::store::Store;

/// `tagwall diff --ruleset NAME [FROM [TO]]`: the entries of the ruleset's list added and
/// removed between two snapshots of its cloud.
pub(super) async fn ruleset_diff(
    store: &Store,
    ruleset: &Ruleset,
    args: &crate::app::cli::DiffArgs,
) -> anyhow::Result<u8> {
    use crate::app::cli::DiffFormat;
    use crate::render::report::ruleset_diff as render;
    let cloud = ruleset.cloud;
    let from = store.resolve(cloud, &args.from).await?;
    let to = store.resolve(cloud, &args.to).await?;
    for (at, info) in [(&args.from, &from), (&args.to, &to)] {
        if info.cloud != cloud {
            bail!(
                "{at} is a {} snapshot, not {cloud}: ruleset {} is of {cloud}",
                info.cloud,
                ruleset.name
            );
        }
    }
    let (older, newer) = (store.snapshot(&from).await?, store.snapshot(&to).await?);
    let kept_before = store.retained(ruleset, &older, &from).await?;
    let kept_after = store.retained(ruleset, &newer, &to).await?;
    let (before, gone_before) =
        Allowlist::build_without_missing(ruleset, &older, &from, &kept_before)?;
    let (after, gone_after) = Allowlist::build_without_missing(ruleset, &newer, &to, &kept_after)?;
    for (info, gone) in [(&from, gone_before), (&to, gone_after)] {
        if !gone.is_empty() {
            tracing::warn!(
                "ruleset {}: at {} {} these tags entries match nothing and are left out: {}",
                ruleset.name,
                info.cloud,
                info.file_date,
                gone.join(", ")
            );
        }
    }
    let changes = crate::rules::changes::changes(&before, &after);
    let d = render::RulesetDiff {
        ruleset: &ruleset.name,
        from: &from,
        to: &to,
        changes: &changes,
    };
    let mut bytes = Vec::new();
    match args.format {
        DiffFormat::Text => render::write_text(&mut bytes, &d)?,
        DiffFormat::Markdown => render::write_markdown(&mut bytes, &d)?,
        DiffFormat::Json => render::write_json(&mut bytes, &d)?,
        DiffFormat::Html => render::write_html(&mut bytes, &d)?,
    }
    super::write_output(args.output.as_deref(), &bytes)?;
    let changed = changes
        .iter()
        .any(|f| !f.added.is_empty() || !f.removed.is_empty());
    Ok(if args.exit_code && changed {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}
