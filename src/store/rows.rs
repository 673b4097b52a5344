//! Rows as the SQL of `store/sql/` reads them, and their conversion to the model.

use chrono::NaiveDate;
use ipnet::IpNet;

use super::StoreError;
use crate::core::model::{decode_prefix, Cloud, NetworkFeatures, SnapshotInfo, TagMeta};

/// The columns of [`SnapshotRow`], for `SELECT`.
pub(super) const SNAPSHOT_COLUMNS: &str = "id, cloud, ord, file_date, change_number, tag_count, \
     prefix_count, content_sha256, raw_sha256, raw_size, source_name";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct SnapshotRow {
    pub id: i64,
    pub cloud: i64,
    pub ord: i64,
    pub file_date: String,
    pub change_number: i64,
    pub tag_count: i64,
    pub prefix_count: i64,
    pub content_sha256: String,
    pub raw_sha256: String,
    pub raw_size: i64,
    pub source_name: String,
}

impl SnapshotRow {
    pub fn info(self) -> Result<(SnapshotInfo, i64), StoreError> {
        let cloud = Cloud::from_code(self.cloud).ok_or_else(|| {
            StoreError::Damaged(format!(
                "snapshot {} has cloud code {}",
                self.id, self.cloud
            ))
        })?;
        let file_date = NaiveDate::parse_from_str(&self.file_date, "%Y-%m-%d").map_err(|_| {
            StoreError::Damaged(format!(
                "snapshot {} has file date {:?}",
                self.id, self.file_date
            ))
        })?;
        let info = SnapshotInfo {
            id: self.id,
            cloud,
            file_date,
            change_number: self.change_number,
            tags: self.tag_count,
            prefixes: self.prefix_count,
            content_sha256: self.content_sha256,
            sha256: self.raw_sha256,
            size: self.raw_size,
            source: self.source_name,
        };
        Ok((info, self.ord))
    }
}

/// The columns of [`VersionRow`], with `v` the tag_versions alias and `t` the tags alias.
pub(super) const VERSION_COLUMNS: &str = "v.tag_id, t.name, v.json_id, v.change_number, v.region, \
     v.region_id, v.platform, v.system_service, v.network_features, v.ipv4_prefixes, v.ipv6_prefixes";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct VersionRow {
    pub tag_id: i64,
    pub name: String,
    pub json_id: String,
    pub change_number: i64,
    pub region: String,
    pub region_id: Option<i64>,
    pub platform: String,
    pub system_service: String,
    pub network_features: Option<String>,
    pub ipv4_prefixes: i64,
    pub ipv6_prefixes: i64,
}

/// A tag version as a fact of the temporal store: everything but the row id and the interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct VersionKey {
    pub tag_id: i64,
    pub json_id: String,
    pub change_number: i64,
    pub region: String,
    pub region_id: Option<i64>,
    pub platform: String,
    pub system_service: String,
    pub network_features: Option<String>,
    pub ipv4_prefixes: i64,
    pub ipv6_prefixes: i64,
    pub prefixes_digest: Vec<u8>,
    pub version_digest: Vec<u8>,
}

/// A stored tag version as an import needs it: its interval and digests.
#[derive(Debug)]
pub(super) struct StoredVersion {
    pub id: i64,
    pub tag_id: i64,
    pub from_ord: i64,
    pub to_ord: i64,
    pub version_digest: Vec<u8>,
    pub prefixes_digest: Vec<u8>,
}

/// Reads `id,tag_id,from,to,hexversion,hexprefixes;…` as packed by the touching-version query.
pub(super) fn unpack_versions(packed: &str) -> Result<Vec<StoredVersion>, StoreError> {
    let damaged = || StoreError::Damaged(format!("packed tag versions: {packed:.80}"));
    packed
        .split(';')
        .map(|item| {
            let mut f = item.split(',');
            let mut int = || {
                f.next()
                    .and_then(|x| x.parse::<i64>().ok())
                    .ok_or_else(damaged)
            };
            let (id, tag_id, from_ord, to_ord) = (int()?, int()?, int()?, int()?);
            let version_digest = unhex(f.next().ok_or_else(damaged)?)?;
            let prefixes_digest = unhex(f.next().ok_or_else(damaged)?)?;
            Ok(StoredVersion {
                id,
                tag_id,
                from_ord,
                to_ord,
                version_digest,
                prefixes_digest,
            })
        })
        .collect()
}

impl VersionRow {
    pub fn meta(&self) -> Result<TagMeta, StoreError> {
        Ok(TagMeta {
            id: self.json_id.clone(),
            change_number: self.change_number,
            region: self.region.clone(),
            region_id: self.region_id,
            platform: self.platform.clone(),
            system_service: self.system_service.clone(),
            network_features: features_from_column(self.network_features.as_deref())?,
        })
    }
}

/// How `networkFeatures` is stored: absent as SQL NULL, `null` as the text `null`, a list as JSON.
pub(super) fn features_to_column(f: &NetworkFeatures) -> Option<String> {
    match f {
        NetworkFeatures::Absent => None,
        NetworkFeatures::Null => Some("null".to_string()),
        NetworkFeatures::List(list) => {
            Some(serde_json::to_string(list).expect("strings serialize"))
        }
    }
}

fn features_from_column(text: Option<&str>) -> Result<NetworkFeatures, StoreError> {
    match text {
        None => Ok(NetworkFeatures::Absent),
        Some("null") => Ok(NetworkFeatures::Null),
        Some(json) => serde_json::from_str(json)
            .map(NetworkFeatures::List)
            .map_err(|_| StoreError::Damaged(format!("networkFeatures column holds {json:?}"))),
    }
}

/// A prefix interval as `unpack_intervals` reads it.
#[derive(Debug)]
pub(super) struct PrefixRow {
    pub id: i64,
    pub tag_id: i64,
    pub prefix: IpNet,
    pub from_ord: i64,
    pub to_ord: i64,
}

/// Reads `id,from,to,hexprefix;…` as packed by the touching-interval query.
pub(super) fn unpack_intervals(tag_id: i64, packed: &str) -> Result<Vec<PrefixRow>, StoreError> {
    let damaged = || StoreError::Damaged(format!("packed intervals of tag {tag_id}: {packed:.80}"));
    packed
        .split(';')
        .map(|item| {
            let mut f = item.split(',');
            let mut int = || {
                f.next()
                    .and_then(|x| x.parse::<i64>().ok())
                    .ok_or_else(damaged)
            };
            let (id, from_ord, to_ord) = (int()?, int()?, int()?);
            let prefix = unhex_prefix(f.next().ok_or_else(damaged)?)?;
            Ok(PrefixRow {
                id,
                tag_id,
                prefix,
                from_ord,
                to_ord,
            })
        })
        .collect()
}

/// Decodes hex text (either case) as the backends write `prefix`.
pub(super) fn unhex(text: &str) -> Result<Vec<u8>, StoreError> {
    hex::decode(text).map_err(|_| StoreError::Damaged(format!("prefix hex {text:?}")))
}

/// Decodes a prefix from the hex of its stored bytes.
pub(super) fn unhex_prefix(text: &str) -> Result<IpNet, StoreError> {
    let bytes = unhex(text)?;
    decode_prefix(&bytes).ok_or_else(|| StoreError::Damaged(format!("prefix bytes {text:?}")))
}

/// (tag id, prefix) pairs from rows of `tag_id, string_agg(hex(prefix), ',')`.
pub(super) fn unpack_tag_prefixes(
    rows: Vec<(i64, String)>,
) -> Result<Vec<(i64, IpNet)>, StoreError> {
    let mut pairs = Vec::new();
    for (tag_id, packed) in rows {
        for hex in packed.split(',') {
            pairs.push((tag_id, unhex_prefix(hex)?));
        }
    }
    Ok(pairs)
}
