//! A published directory's files recorded in the store's `publishes`, so replicas with
//! `[serve] source = "store"` serve the same bytes: by every publish, and by the next run for a
//! killed run's publish ([`super::applying`]).

use crate::store::{NewPublish, Store};

/// Records the files of a ruleset's directory (the manifest last) in the store.
pub async fn record(store: &Store, name: &str, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
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
