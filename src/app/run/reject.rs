//! `tagwall reject RULESET`: a withheld change someone decided not to publish. The published
//! files stay; the decision is recorded with the approvals (who, when, why), the withheld
//! marker goes, and later runs on the same file report the ruleset as `rejected` without
//! withholding and notifying it again. A later file is judged afresh.

use std::time::Duration;

use chrono::Utc;

use super::sync::{approver, checked_text, withheld_change};
use super::EXIT_OK;
use crate::app::cli::RejectArgs;
use crate::app::config::Config;
use crate::publish::Layout;
use crate::store::{Approval, Decision, Store};

/// Records the rejection under the run lock.
pub async fn reject(store: &Store, config: &Config, args: RejectArgs) -> anyhow::Result<u8> {
    let ruleset = config
        .pick(std::slice::from_ref(&args.ruleset))
        .map_err(anyhow::Error::msg)?[0];
    let by = approver(args.by.as_deref())?;
    let comment = checked_text("--comment", &args.comment)?;
    let wait = args.lock_wait.map_or(config.lock_wait, Duration::from_secs);
    let lock = store.lock_run(wait).await?;
    let result = async {
        let layout = Layout::new(&config.output_dir);
        let (marker, info) = withheld_change(store, &layout, ruleset, "reject").await?;
        store
            .record_approval(&Approval {
                decision: Decision::Rejected,
                ruleset: ruleset.name.clone(),
                snapshot: marker.snapshot.clone(),
                snapshot_id: info.id,
                approved_by: by.clone(),
                comment,
                reasons: marker.reasons.clone(),
                approved_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
            .await?;
        crate::publish::ruleset::clear_withheld(&layout, &ruleset.name)?;
        println!(
            "rejected {}: the change of {} will not be published; the published files stay ({}); a later file is judged afresh",
            ruleset.name,
            marker.snapshot,
            marker.reasons.join("; ")
        );
        Ok(EXIT_OK)
    }
    .await;
    lock.release().await;
    result
}
