//! `tagwall reject RULESET`: a withheld change someone decided not to publish. The published
//! files stay; the decision is recorded with the approvals (who, when, why), the withheld
//! marker goes, and later runs on the same file report the ruleset as `rejected` without
//! withholding and notifying it again. A later file is judged afresh.

use std::time::Duration;

use super::sync::{approver, FLAGS};
use super::EXIT_OK;
use crate::app::cli::RejectArgs;
use crate::app::config::Config;
use crate::job::approve::Decider;
use crate::store::Store;

/// Records the rejection under the run lock.
pub async fn reject(store: &Store, config: &Config, args: RejectArgs) -> anyhow::Result<u8> {
    let ruleset = config
        .pick(std::slice::from_ref(&args.ruleset))
        .map_err(anyhow::Error::msg)?[0];
    let decider = Decider::new(&approver(args.by.as_deref())?, &args.comment, FLAGS)?;
    let wait = args.lock_wait.map_or(config.lock_wait, Duration::from_secs);
    let line = config.desk().reject(store, ruleset, decider, wait).await?;
    println!("{line}");
    Ok(EXIT_OK)
}
