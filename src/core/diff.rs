//! The content diff of two snapshots of one cloud. Pure: no I/O.
//!
//! Diffs content, never `changeNumber`: Microsoft's numbers have repeated across different weeks
//! and gone down, so number movements are reported as anomalies beside the content diff.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::core::model::{NetworkFeatures, ServiceTag, Snapshot, TagMeta};
use crate::core::ranges::AddrSet;

/// What happened to a tag between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TagStatus {
    /// Only in the newer snapshot.
    Added,
    /// Only in the older snapshot.
    Removed,
    /// In both, with other prefixes or properties.
    Changed,
}

/// One tag's change. `before`/`after` are the tag's properties in each snapshot, where present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The tag's name.
    pub name: String,
    /// Added, removed or changed.
    pub status: TagStatus,
    /// Prefixes only in the newer snapshot, sorted.
    pub prefixes_added: Vec<IpNet>,
    /// Prefixes only in the older snapshot, sorted.
    pub prefixes_removed: Vec<IpNet>,
    /// The properties before, if the tag existed.
    pub before: Option<TagMeta>,
    /// The properties after, if the tag exists.
    pub after: Option<TagMeta>,
}

/// A property that differs between `before` and `after`, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The JSON name of the property, e.g. `region` or `changeNumber`.
    pub field: &'static str,
    /// The old value as JSON text.
    pub from: String,
    /// The new value as JSON text.
    pub to: String,
}

impl TagChange {
    /// The properties that differ (for a changed tag; empty for added and removed ones).
    pub fn metadata_changes(&self) -> Vec<FieldChange> {
        let (Some(a), Some(b)) = (&self.before, &self.after) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut field = |field: &'static str, from: String, to: String| {
            if from != to {
                out.push(FieldChange { field, from, to });
            }
        };
        let json = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let id = |v: Option<i64>| v.map_or_else(|| "(absent)".to_string(), |v| v.to_string());
        field("id", json(&a.id), json(&b.id));
        field(
            "changeNumber",
            a.change_number.to_string(),
            b.change_number.to_string(),
        );
        field("region", json(&a.region), json(&b.region));
        field("regionId", id(a.region_id), id(b.region_id));
        field("platform", json(&a.platform), json(&b.platform));
        field(
            "systemService",
            json(&a.system_service),
            json(&b.system_service),
        );
        field(
            "networkFeatures",
            features(&a.network_features),
            features(&b.network_features),
        );
        out
    }
}

fn features(f: &NetworkFeatures) -> String {
    match f {
        NetworkFeatures::Absent => "(absent)".to_string(),
        NetworkFeatures::Null => "null".to_string(),
        NetworkFeatures::List(l) => serde_json::to_string(l).expect("strings serialize"),
    }
}

/// Something odd about Microsoft's change numbers, reported beside the content diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// The content changed but the top-level changeNumber did not.
    ContentChangedNumberUnchanged {
        /// The shared number.
        number: i64,
    },
    /// The top-level changeNumber went down.
    NumberWentDown {
        /// The older snapshot's number.
        from: i64,
        /// The newer snapshot's number.
        to: i64,
    },
    /// The top-level changeNumber moved but the content did not change.
    NumberMovedWithoutContentChange {
        /// The older snapshot's number.
        from: i64,
        /// The newer snapshot's number.
        to: i64,
    },
    /// A tag's prefixes or properties changed but its own changeNumber did not.
    TagChangedNumberUnchanged {
        /// The tag.
        tag: String,
        /// Its unchanged number.
        number: i64,
    },
}

/// Per-region counts of (tag, prefix) pairs added and removed. Global tags are region `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionChange {
    /// Pairs added in tags of this region.
    pub prefixes_added: u64,
    /// Pairs removed in tags of this region.
    pub prefixes_removed: u64,
}

/// The whole diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Top-level changeNumber of the older and the newer snapshot.
    pub change_numbers: (i64, i64),
    /// Added, removed and changed tags, by name.
    pub tags: Vec<TagChange>,
    /// Unique addresses of the whole cloud gained and lost: (IPv4 added, IPv4 removed, IPv6
    /// added, IPv6 removed).
    pub addresses: (u128, u128, u128, u128),
    /// Per region, by region name.
    pub regions: BTreeMap<String, RegionChange>,
    /// Change-number oddities.
    pub anomalies: Vec<Anomaly>,
}

impl Diff {
    /// Whether the two snapshots have the same content (the numbers may still differ).
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Number of tags with this status.
    pub fn count(&self, status: TagStatus) -> usize {
        self.tags.iter().filter(|t| t.status == status).count()
    }

    /// (tag, prefix) pairs added and removed.
    pub fn pairs(&self) -> (usize, usize) {
        self.tags.iter().fold((0, 0), |(a, r), t| {
            (a + t.prefixes_added.len(), r + t.prefixes_removed.len())
        })
    }
}

/// Diffs `older` against `newer` (snapshots of one cloud).
pub fn diff(older: &Snapshot, newer: &Snapshot) -> Diff {
    diff_parts(older, newer, address_changes(older, newer))
}

/// Diffs two parts of snapshots that hold at least every tag that differs (tags in both parts
/// and equal are left out of the diff), with the whole snapshots' unique addresses gained and
/// lost computed elsewhere: (IPv4 added, IPv4 removed, IPv6 added, IPv6 removed). The store
/// uses it to diff from the intervals that differ without reading whole snapshots.
pub fn diff_parts(older: &Snapshot, newer: &Snapshot, addresses: (u128, u128, u128, u128)) -> Diff {
    let mut tags = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < older.tags.len() || j < newer.tags.len() {
        let (a, b) = (older.tags.get(i), newer.tags.get(j));
        let order = match (a, b) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let change = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                tag_change(a, None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                tag_change(None, b)
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                tag_change(a, b)
            }
        };
        tags.extend(change);
    }
    let regions = regions(&tags);
    let anomalies = anomalies(older.change_number, newer.change_number, &tags);
    Diff {
        change_numbers: (older.change_number, newer.change_number),
        addresses,
        regions,
        anomalies,
        tags,
    }
}

fn tag_change(a: Option<&ServiceTag>, b: Option<&ServiceTag>) -> Option<TagChange> {
    let empty: &[IpNet] = &[];
    let before = a.map_or(empty, |t| &t.prefixes);
    let after = b.map_or(empty, |t| &t.prefixes);
    let (prefixes_removed, prefixes_added) = sorted_difference(before, after);
    let status = match (a, b) {
        (None, Some(_)) => TagStatus::Added,
        (Some(_), None) => TagStatus::Removed,
        (Some(x), Some(y))
            if x.meta != y.meta || !prefixes_added.is_empty() || !prefixes_removed.is_empty() =>
        {
            TagStatus::Changed
        }
        _ => return None,
    };
    let name = a.or(b).expect("one side exists").name.clone();
    Some(TagChange {
        name,
        status,
        prefixes_added,
        prefixes_removed,
        before: a.map(|t| t.meta.clone()),
        after: b.map(|t| t.meta.clone()),
    })
}

/// (only in `a`, only in `b`) of two sorted lists.
fn sorted_difference(a: &[IpNet], b: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    let only_a = a
        .iter()
        .filter(|p| b.binary_search(p).is_err())
        .copied()
        .collect();
    let only_b = b
        .iter()
        .filter(|p| a.binary_search(p).is_err())
        .copied()
        .collect();
    (only_a, only_b)
}

fn regions(tags: &[TagChange]) -> BTreeMap<String, RegionChange> {
    let mut out: BTreeMap<String, RegionChange> = BTreeMap::new();
    for t in tags {
        let region = t
            .after
            .as_ref()
            .or(t.before.as_ref())
            .map_or("", |m| m.region.as_str());
        let r = out.entry(region.to_string()).or_default();
        r.prefixes_added += t.prefixes_added.len() as u64;
        r.prefixes_removed += t.prefixes_removed.len() as u64;
    }
    out
}

fn anomalies(from: i64, to: i64, tags: &[TagChange]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    if to < from {
        out.push(Anomaly::NumberWentDown { from, to });
    }
    if tags.is_empty() && from != to {
        out.push(Anomaly::NumberMovedWithoutContentChange { from, to });
    }
    if !tags.is_empty() && from == to {
        out.push(Anomaly::ContentChangedNumberUnchanged { number: from });
    }
    for t in tags {
        if let (Some(a), Some(b)) = (&t.before, &t.after) {
            if a.change_number == b.change_number {
                out.push(Anomaly::TagChangedNumberUnchanged {
                    tag: t.name.clone(),
                    number: a.change_number,
                });
            }
        }
    }
    out
}

fn address_changes(older: &Snapshot, newer: &Snapshot) -> (u128, u128, u128, u128) {
    let all = |s: &Snapshot| AddrSet::of_all(s.tags.iter().flat_map(|t| &t.prefixes));
    address_counts(&all(older), &all(newer))
}

/// Unique addresses gained and lost between two snapshots' (IPv4, IPv6) address sets:
/// (IPv4 added, IPv4 removed, IPv6 added, IPv6 removed).
pub fn address_counts(
    older: &(AddrSet, AddrSet),
    newer: &(AddrSet, AddrSet),
) -> (u128, u128, u128, u128) {
    (
        newer.0.minus(&older.0).count(),
        older.0.minus(&newer.0).count(),
        newer.1.minus(&older.1).count(),
        older.1.minus(&newer.1).count(),
    )
}

/// Applies a diff to the older snapshot, giving the newer one (the diff's correctness property).
pub fn apply(older: &Snapshot, diff: &Diff) -> Snapshot {
    let mut tags: BTreeMap<String, ServiceTag> = older
        .tags
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    for change in &diff.tags {
        match &change.after {
            None => {
                tags.remove(&change.name);
            }
            Some(meta) => {
                let tag = tags
                    .entry(change.name.clone())
                    .or_insert_with(|| ServiceTag {
                        name: change.name.clone(),
                        meta: meta.clone(),
                        prefixes: Vec::new(),
                    });
                tag.meta = meta.clone();
                tag.prefixes
                    .retain(|p| change.prefixes_removed.binary_search(p).is_err());
                tag.prefixes.extend(&change.prefixes_added);
                tag.prefixes.sort_unstable();
            }
        }
    }
    Snapshot {
        cloud: older.cloud,
        change_number: diff.change_numbers.1,
        tags: tags.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Cloud;
    use proptest::prelude::*;

    fn meta(region: &str, change: i64) -> TagMeta {
        TagMeta {
            id: String::new(),
            change_number: change,
            region: region.to_string(),
            region_id: None,
            platform: "Azure".into(),
            system_service: String::new(),
            network_features: NetworkFeatures::Null,
        }
    }

    fn tag(name: &str, region: &str, change: i64, prefixes: &[&str]) -> ServiceTag {
        let mut prefixes: Vec<IpNet> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
        prefixes.sort_unstable();
        ServiceTag {
            name: name.into(),
            meta: meta(region, change),
            prefixes,
        }
    }

    fn snap(change: i64, mut tags: Vec<ServiceTag>) -> Snapshot {
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            cloud: Cloud::Public,
            change_number: change,
            tags,
        }
    }

    #[test]
    fn every_kind_of_change() {
        let a = snap(
            10,
            vec![
                tag("Gone", "", 1, &["1.0.0.0/24"]),
                tag("Grows", "westeurope", 1, &["20.0.0.0/24"]),
                tag("Moves", "eastus", 1, &["30.0.0.0/24"]),
                tag("Same", "", 1, &["40.0.0.0/24"]),
            ],
        );
        let b = snap(
            11,
            vec![
                tag(
                    "Grows",
                    "westeurope",
                    2,
                    &["20.0.0.0/24", "20.0.1.0/24", "2603::/64"],
                ),
                tag("Moves", "westus", 1, &["30.0.0.0/24"]),
                tag("New", "", 1, &["40.0.0.0/25"]),
                tag("Same", "", 1, &["40.0.0.0/24"]),
            ],
        );
        let d = diff(&a, &b);
        let names: Vec<_> = d.tags.iter().map(|t| (t.name.as_str(), t.status)).collect();
        assert_eq!(
            names,
            [
                ("Gone", TagStatus::Removed),
                ("Grows", TagStatus::Changed),
                ("Moves", TagStatus::Changed),
                ("New", TagStatus::Added)
            ]
        );
        assert_eq!(d.pairs(), (3, 1));
        // 20.0.1.0/24 is new; 40.0.0.0/25 was already covered by Same; 1.0.0.0/24 is gone.
        assert_eq!(d.addresses, (256, 256, 1 << 64, 0));
        assert_eq!(
            d.tags[2].metadata_changes(),
            [FieldChange {
                field: "region",
                from: "\"eastus\"".into(),
                to: "\"westus\"".into()
            }]
        );
        assert_eq!(d.tags[1].metadata_changes()[0].field, "changeNumber");
        assert_eq!(
            d.regions["westeurope"],
            RegionChange {
                prefixes_added: 2,
                prefixes_removed: 0
            }
        );
        assert_eq!(
            d.regions[""],
            RegionChange {
                prefixes_added: 1,
                prefixes_removed: 1
            }
        );
        assert_eq!(
            d.anomalies,
            [Anomaly::TagChangedNumberUnchanged {
                tag: "Moves".into(),
                number: 1
            }]
        );
        assert_eq!(apply(&a, &d), b);
    }

    #[test]
    fn number_anomalies() {
        let a = snap(346, vec![tag("T", "", 1, &["1.0.0.0/24"])]);
        let b = snap(346, vec![tag("T", "", 2, &["1.0.0.0/25"])]);
        assert_eq!(
            diff(&a, &b).anomalies,
            [Anomaly::ContentChangedNumberUnchanged { number: 346 }]
        );
        let c = snap(300, a.tags.clone());
        let d = diff(&a, &c);
        assert!(d.is_empty());
        assert_eq!(
            d.anomalies,
            [
                Anomaly::NumberWentDown { from: 346, to: 300 },
                Anomaly::NumberMovedWithoutContentChange { from: 346, to: 300 }
            ]
        );
        assert!(diff(&a, &a).anomalies.is_empty());
    }

    fn snapshots() -> impl Strategy<Value = Snapshot> {
        let prefix = (0u8..8, 22u8..=26)
            .prop_map(|(x, len)| IpNet::new([10, x, 0, 0].into(), len).unwrap().trunc());
        let tag = (
            "[A-D]",
            0u8..2,
            0i64..3,
            prop::collection::btree_set(prefix, 0..5),
        );
        (0i64..3, prop::collection::btree_map("[A-D]", tag, 0..4)).prop_map(|(n, m)| {
            snap(
                n,
                m.into_iter()
                    .map(|(name, (_, region, change, set))| ServiceTag {
                        name,
                        meta: meta(["", "westeurope"][usize::from(region)], change),
                        prefixes: set.into_iter().collect(),
                    })
                    .collect(),
            )
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_newer_snapshot(a in snapshots(), b in snapshots()) {
            let d = diff(&a, &b);
            prop_assert_eq!(apply(&a, &d), b.clone());
            prop_assert_eq!(d.is_empty(), a.tags == b.tags);
        }
    }
}
