//! What tells, without comparing prefixes, whether a tag changed: its prefix-set and version
//! digests, made with the rest of a file's preparation, off the transaction.

use ipnet::IpNet;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::rows::{features_to_column, StoredVersion, VersionKey};
use super::temporal::Position;
use crate::core::model::ServiceTag;

/// A digest of a tag's prefix set: equal digests mean equal sets. `buf` is scratch space.
pub(super) fn prefixes_digest(prefixes: &[IpNet], buf: &mut Vec<u8>) -> Vec<u8> {
    // Hashed in one piece: many small updates cost more than the copy.
    buf.clear();
    for p in prefixes {
        buf.extend_from_slice(crate::core::model::encode_prefix_into(p).as_ref());
    }
    crate::core::digest::sha256(buf)[..16].to_vec()
}

/// A tag's prefix-set digest and version digest: what tells whether a stored version still
/// holds. Computed with the rest of a file's preparation, off the transaction.
#[derive(Debug)]
pub(super) struct TagDigests {
    /// sha256 (first 16 bytes) of the sorted prefixes.
    pub(super) prefixes: Vec<u8>,
    /// sha256 (first 16 bytes) of every property and the prefixes digest.
    pub(super) version: Vec<u8>,
}

impl TagDigests {
    /// A snapshot's tags' digests, in its order.
    pub(super) fn of_all(tags: &[ServiceTag]) -> Vec<TagDigests> {
        // One buffer for every hashed text: a one-shot hash of the same bytes gives the same
        // digest as updating piece by piece, at a fraction of the cost per tag.
        let mut buf = Vec::new();
        tags.iter().map(|t| TagDigests::of(t, &mut buf)).collect()
    }

    fn of(tag: &ServiceTag, buf: &mut Vec<u8>) -> TagDigests {
        let m = &tag.meta;
        let prefixes = prefixes_digest(&tag.prefixes, buf);
        buf.clear();
        for text in [&m.id, &m.region, &m.platform, &m.system_service] {
            buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
        match features_to_column(&m.network_features) {
            None => buf.push(0),
            Some(f) => {
                buf.push(1);
                buf.extend_from_slice(&(f.len() as u64).to_le_bytes());
                buf.extend_from_slice(f.as_bytes());
            }
        }
        buf.extend_from_slice(&m.change_number.to_le_bytes());
        buf.extend_from_slice(&m.region_id.map_or([0xff; 9], |id| {
            let mut b = [0; 9];
            b[1..].copy_from_slice(&id.to_le_bytes());
            b
        }));
        buf.extend_from_slice(&prefixes);
        TagDigests {
            prefixes,
            version: crate::core::digest::sha256(buf)[..16].to_vec(),
        }
    }
}

/// The stored row of a tag version.
pub(super) fn version_key(tag_id: i64, tag: &ServiceTag, digests: &TagDigests) -> VersionKey {
    let (v4, v6) = tag.family_counts();
    let m = &tag.meta;
    VersionKey {
        tag_id,
        json_id: m.id.clone(),
        change_number: m.change_number,
        region: m.region.clone(),
        region_id: m.region_id,
        platform: m.platform.clone(),
        system_service: m.system_service.clone(),
        network_features: features_to_column(&m.network_features),
        ipv4_prefixes: v4 as i64,
        ipv6_prefixes: v6 as i64,
        prefixes_digest: digests.prefixes.clone(),
        version_digest: digests.version.clone(),
    }
}

/// The tags whose prefix set at the new position differs from that at a neighbour (a tag absent
/// at a snapshot has no set). Only these tags' prefix intervals can change.
pub(super) fn changed_prefix_sets(
    pos: Position,
    stored: &[StoredVersion],
    present: &HashMap<i64, (&ServiceTag, &TagDigests)>,
) -> Vec<i64> {
    let mut at_prev: HashMap<i64, &[u8]> = HashMap::default();
    let mut at_next: HashMap<i64, &[u8]> = HashMap::default();
    for v in stored {
        let holds = |ord: Option<i64>| ord.is_some_and(|o| v.from_ord <= o && o <= v.to_ord);
        if holds(pos.prev) {
            at_prev.insert(v.tag_id, &v.prefixes_digest);
        }
        if holds(pos.next) {
            at_next.insert(v.tag_id, &v.prefixes_digest);
        }
    }
    let all: HashSet<i64> = at_prev
        .keys()
        .chain(at_next.keys())
        .chain(present.keys())
        .copied()
        .collect();
    let mut changed: Vec<i64> = all
        .into_iter()
        .filter(|id| {
            let here = present.get(id).map(|(_, d)| d.prefixes.as_slice());
            here != at_prev.get(id).copied()
                || (pos.next.is_some() && here != at_next.get(id).copied())
        })
        .collect();
    changed.sort_unstable();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::Sha256;
    use crate::core::model::{NetworkFeatures, TagMeta};

    /// The version digest as every stored row was computed: piece by piece. Hashing one buffer
    /// must give the same bytes, or every stored version would look changed.
    fn piecewise(tag: &ServiceTag) -> Vec<u8> {
        let m = &tag.meta;
        let mut prefixes = Sha256::new();
        for p in &tag.prefixes {
            prefixes.update(crate::core::model::encode_prefix_into(p).as_ref());
        }
        let prefixes = prefixes.finish()[..16].to_vec();
        let mut h = Sha256::new();
        for text in [&m.id, &m.region, &m.platform, &m.system_service] {
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        match features_to_column(&m.network_features) {
            None => h.update([0]),
            Some(f) => {
                h.update([1]);
                h.update((f.len() as u64).to_le_bytes());
                h.update(f.as_bytes());
            }
        }
        h.update(m.change_number.to_le_bytes());
        h.update(m.region_id.map_or([0xff; 9], |id| {
            let mut b = [0; 9];
            b[1..].copy_from_slice(&id.to_le_bytes());
            b
        }));
        h.update(&prefixes);
        h.finish()[..16].to_vec()
    }

    #[test]
    fn tag_digests_are_the_stored_ones() {
        let tag = |features, region_id| ServiceTag {
            name: "AzureCloud.westeurope".into(),
            meta: TagMeta {
                id: "AzureCloud.westeurope".into(),
                change_number: 42,
                region: "westeurope".into(),
                region_id,
                platform: "Azure".into(),
                system_service: String::new(),
                network_features: features,
            },
            prefixes: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2603:1000::/40".parse().unwrap(),
            ],
        };
        let tags = [
            tag(NetworkFeatures::Absent, None),
            tag(NetworkFeatures::Null, Some(18)),
            tag(
                NetworkFeatures::List(vec!["API".into(), "NSG".into()]),
                Some(0),
            ),
        ];
        let digests = TagDigests::of_all(&tags);
        for (t, d) in tags.iter().zip(&digests) {
            assert_eq!(d.version, piecewise(t));
        }
        assert_ne!(digests[0].version, digests[1].version);
    }
}
