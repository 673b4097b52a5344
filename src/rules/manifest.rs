//! `manifest.json`, the last file of every published ruleset directory, as one typed struct for
//! writing and reading: what was published (ruleset, snapshot, tags), every other file's size
//! and sha256, each family's counts, and the digest of the entries themselves, so that the
//! guard can compare a new week against exactly what is published. Pure.

use crate::core::digest::{sha256_hex, Sha256};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::core::ranges::Family;
use crate::rules::allowlist::{Allowlist, FamilySet};
use crate::rules::format::Format;
use crate::rules::ruleset::Ruleset;

/// Schema of `manifest.json`.
pub const SCHEMA: &str = "tagwall.manifest/1";
/// The manifest's file name.
pub const FILE: &str = "manifest.json";

/// `manifest.json`. Fields are in name order, as the file has always had them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// sha256 of the published entries, one CIDR per line in address order (IPv4 first).
    /// Missing in manifests of tagwall before 0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_sha256: Option<String>,
    /// Every other file of the directory.
    pub files: Vec<ManifestFile>,
    /// IPv4 counts, when the ruleset has the family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<FamilyCounts>,
    /// IPv6 counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FamilyCounts>,
    /// The ruleset as configured.
    pub ruleset: RulesetInfo,
    /// [`SCHEMA`].
    pub schema: String,
    /// The snapshot the files were built from.
    pub snapshot: SnapshotRef,
    /// The tags the ruleset selected.
    pub tags: Vec<String>,
    /// `tags` entries that matched nothing and were published without (approved or forced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_missing: Vec<String>,
    /// tagwall's version.
    pub tagwall: String,
    /// Warnings for the people loading the files.
    pub warnings: Vec<String>,
}

/// One file of the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its size.
    pub bytes: u64,
    /// Its name.
    pub name: String,
    /// Its sha256, hex.
    pub sha256: String,
}

/// One family's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyCounts {
    /// Addresses of the selected tags (a number, or a string beyond 2^53).
    pub addresses: serde_json::Value,
    /// CIDRs published.
    pub entries: usize,
    /// Addresses covered beyond the tags (budgeted rulesets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_addresses: Option<serde_json::Value>,
    /// The ipset name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipset: Option<String>,
    /// The nftables set name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft_set: Option<String>,
    /// (tag, prefix) pairs before aggregation.
    pub prefixes: usize,
}

/// The ruleset as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesetInfo {
    /// Exact aggregation.
    pub aggregate: bool,
    /// The cloud.
    pub cloud: String,
    /// `ingress` / `egress`.
    pub direction: String,
    /// Local exceptions cut out of the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_cidrs: Vec<String>,
    /// Local exceptions added to the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_cidrs: Vec<String>,
    /// The grace period for removals, in days (absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keep_removed_days: u32,
    /// The budget.
    pub max_entries: Option<usize>,
    /// The name.
    pub name: String,
    /// Ports and ranges.
    pub ports: Vec<String>,
    /// `tcp`, `udp`, `any`.
    pub protocol: String,
}

/// The snapshot the files were built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The top-level `changeNumber`.
    pub change_number: i64,
    /// The cloud.
    pub cloud: String,
    /// sha256 of its canonical content.
    pub content_sha256: String,
    /// Microsoft's file date.
    pub file_date: String,
    /// The store's id.
    pub id: i64,
    /// The cloud file's (tag, prefix) pairs: the guard's truncation check. Missing before 0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes: Option<i64>,
    /// sha256 of the original file.
    pub sha256: String,
}

/// An address count as JSON: a number while exact in a double, else a string.
pub fn json_count(n: u128) -> serde_json::Value {
    if n <= 1 << 53 {
        serde_json::json!(n as u64)
    } else {
        serde_json::json!(n.to_string())
    }
}

/// sha256 of `nets`, one per line in address order (IPv4 before IPv6), duplicates once.
pub fn entries_digest<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> String {
    let mut nets: Vec<&IpNet> = nets.into_iter().collect();
    nets.sort();
    nets.dedup();
    let mut h = Sha256::new();
    for n in nets {
        h.update(n.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finish_hex()
}

impl Manifest {
    /// The manifest of `allowlist`'s directory holding `files` (name, bytes).
    pub fn of(a: &Allowlist, files: &[(String, Vec<u8>)]) -> Manifest {
        let r = a.ruleset;
        let s = &a.snapshot;
        let family = |f: Family| a.set(f).map(|set| family_counts(r, set));
        Manifest {
            entries_sha256: Some(entries_digest(
                a.sets.iter().flat_map(|s| s.entries.iter().map(|e| &e.net)),
            )),
            files: files
                .iter()
                .map(|(name, bytes)| ManifestFile {
                    bytes: bytes.len() as u64,
                    name: name.clone(),
                    sha256: sha256_hex(bytes),
                })
                .collect(),
            ipv4: family(Family::V4),
            ipv6: family(Family::V6),
            ruleset: RulesetInfo::of(r),
            schema: SCHEMA.into(),
            snapshot: SnapshotRef {
                change_number: s.change_number,
                cloud: s.cloud.name().into(),
                content_sha256: s.content_sha256.clone(),
                file_date: s.file_date.to_string(),
                id: s.id,
                prefixes: Some(s.prefixes),
                sha256: s.sha256.clone(),
            },
            tags: a.tags.iter().map(|t| t.name.clone()).collect(),
            tags_missing: a.missing.clone(),
            tagwall: env!("CARGO_PKG_VERSION").into(),
            warnings: a.warnings.clone(),
        }
    }

    /// Reads a manifest; the error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.schema != SCHEMA {
            return Err(format!("schema {:?}, expected {SCHEMA:?}", m.schema));
        }
        Ok(m)
    }

    /// The counts of one family.
    pub fn family(&self, family: Family) -> Option<&FamilyCounts> {
        match family {
            Family::V4 => self.ipv4.as_ref(),
            Family::V6 => self.ipv6.as_ref(),
        }
    }

    /// The snapshot for people: "Public 2025-07-14 (id:3)".
    pub fn snapshot_label(&self) -> String {
        let s = &self.snapshot;
        format!("{} {} (id:{})", s.cloud, s.file_date, s.id)
    }
}

impl RulesetInfo {
    /// The ruleset's settings as the manifest and `<name>.json` record them.
    pub fn of(r: &Ruleset) -> RulesetInfo {
        RulesetInfo {
            aggregate: r.aggregate,
            cloud: r.cloud.name().into(),
            direction: r.direction.name().into(),
            exclude_cidrs: r.exclude_cidrs.iter().map(ToString::to_string).collect(),
            include_cidrs: r.include_cidrs.iter().map(ToString::to_string).collect(),
            keep_removed_days: r.keep_removed_days,
            max_entries: r.max_entries,
            name: r.name.clone(),
            ports: r.ports.iter().map(ToString::to_string).collect(),
            protocol: r.protocol.name().into(),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One family's counts, with its set names where those formats are configured.
pub fn family_counts(r: &Ruleset, set: &FamilySet) -> FamilyCounts {
    FamilyCounts {
        addresses: json_count(set.addresses),
        entries: set.entries.len(),
        extra_addresses: set.extra.map(json_count),
        ipset: r
            .formats
            .contains(&Format::Ipset)
            .then(|| r.ipset_name(set.family)),
        nft_set: r
            .formats
            .contains(&Format::Nft)
            .then(|| r.nft_set(set.family)),
        prefixes: set.prefixes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entries_digest_ignores_order_and_duplicates() {
        let nets: Vec<IpNet> = ["2603::/40", "10.0.0.0/8", "10.0.0.0/8", "9.0.0.0/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let sorted: Vec<IpNet> = ["9.0.0.0/8", "10.0.0.0/8", "2603::/40"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(entries_digest(&nets), entries_digest(&sorted));
        assert_ne!(entries_digest(&nets), entries_digest(&sorted[..2]));
        assert!(Manifest::parse(b"{}").is_err());
    }
}
