//! The domain model: clouds, service tags, snapshots and prefixes.
//!
//! Everything here is plain data with no I/O. A [`Snapshot`] is the content of one ServiceTags
//! file in canonical form: tags sorted by name, each tag's prefixes sorted and unique. Two files
//! with the same content (whatever their line endings, tag order or prefix order) give equal
//! snapshots.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use ipnet::IpNet;

/// One of Microsoft's clouds that publishes a ServiceTags file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cloud {
    /// The public cloud, `ServiceTags_Public_<date>.json`.
    Public,
    /// Azure Government (US), `ServiceTags_AzureGovernment_<date>.json`.
    AzureGovernment,
    /// Azure operated by 21Vianet, `ServiceTags_China_<date>.json`.
    China,
    /// Azure Germany: retired, its last file is dated 2022-03-07. Its history stays readable.
    AzureGermany,
}

impl Cloud {
    /// Every cloud, in the order tagwall lists them.
    pub const ALL: [Cloud; 4] = [
        Cloud::Public,
        Cloud::AzureGovernment,
        Cloud::China,
        Cloud::AzureGermany,
    ];

    /// The name Microsoft uses in file names and in the file's `cloud` field.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "Public",
            Cloud::AzureGovernment => "AzureGovernment",
            Cloud::China => "China",
            Cloud::AzureGermany => "AzureGermany",
        }
    }

    /// The stable small integer that identifies the cloud in the store (see the migrations).
    pub fn code(self) -> i64 {
        match self {
            Cloud::Public => 1,
            Cloud::AzureGovernment => 2,
            Cloud::China => 3,
            Cloud::AzureGermany => 4,
        }
    }

    /// The cloud stored under `code`, if any.
    pub fn from_code(code: i64) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of [`Cloud::from_str`]: the text names no known cloud.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cloud {0:?}: expected one of Public, AzureGovernment, China, AzureGermany")]
pub struct UnknownCloud(pub String);

impl FromStr for Cloud {
    type Err = UnknownCloud;

    /// Parses a cloud name case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCloud(s.to_string()))
    }
}

impl Cloud {
    /// A list of clouds as written in settings or on the command line: names in any case, or
    /// `all` for every cloud; each once, in the order given. The one parser of cloud lists
    /// (`--cloud`, `[fetch] clouds`, `lookup --cloud`).
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Cloud>, UnknownCloud> {
        if items
            .iter()
            .any(|c| c.as_ref().trim().eq_ignore_ascii_case("all"))
        {
            return Ok(Cloud::ALL.to_vec());
        }
        let mut out: Vec<Cloud> = Vec::new();
        for item in items {
            let cloud: Cloud = item.as_ref().parse()?;
            if !out.contains(&cloud) {
                out.push(cloud);
            }
        }
        Ok(out)
    }
}

/// The `networkFeatures` property, which old files lack and newer ones often set to `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum NetworkFeatures {
    /// The property is not in the file (files before 2020).
    #[default]
    Absent,
    /// The property is `null`.
    Null,
    /// The property is a list such as `["API", "NSG", "UDR", "FW"]`, in the file's order.
    List(Vec<String>),
}

impl NetworkFeatures {
    /// Whether the list names `feature` (case-insensitive); false when absent or null.
    pub fn contains(&self, feature: &str) -> bool {
        match self {
            NetworkFeatures::List(list) => list.iter().any(|f| f.eq_ignore_ascii_case(feature)),
            _ => false,
        }
    }
}

/// A tag's properties other than its prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagMeta {
    /// The `id` field (equal to the name in every file seen so far, but kept separately).
    pub id: String,
    /// The tag's own `changeNumber`: informative only, never used as a key.
    pub change_number: i64,
    /// `region`, empty for global tags.
    pub region: String,
    /// `regionId`, absent in old files.
    pub region_id: Option<i64>,
    /// `platform`, `Azure` in every file seen so far.
    pub platform: String,
    /// `systemService`, empty for region-only tags such as `AzureCloud.westeurope`.
    pub system_service: String,
    /// `networkFeatures`.
    pub network_features: NetworkFeatures,
}

/// One service tag of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTag {
    /// The `name` field, unique within a snapshot.
    pub name: String,
    /// Everything but the prefixes.
    pub meta: TagMeta,
    /// The address prefixes, sorted (IPv4 before IPv6) and unique, host bits clear.
    pub prefixes: Vec<IpNet>,
}

impl ServiceTag {
    /// The number of IPv4 and IPv6 prefixes.
    pub fn family_counts(&self) -> (usize, usize) {
        count_families(&self.prefixes)
    }
}

/// Counts IPv4 and IPv6 prefixes.
pub fn count_families(prefixes: &[IpNet]) -> (usize, usize) {
    let v4 = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V4(_)))
        .count();
    (v4, prefixes.len() - v4)
}

/// The content of one ServiceTags file in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The file's cloud.
    pub cloud: Cloud,
    /// The top-level `changeNumber`: informative only, it has repeated and gone down.
    pub change_number: i64,
    /// The tags, sorted by name.
    pub tags: Vec<ServiceTag>,
}

impl Snapshot {
    /// The number of (tag, prefix) pairs.
    pub fn prefix_count(&self) -> usize {
        self.tags.iter().map(|t| t.prefixes.len()).sum()
    }
}

/// The last ordinal of a validity interval (a tag version, a prefix in a tag) that reaches the
/// newest snapshot: what `core::history` and `rules::lookup` read as "still holds".
pub const OPEN: i64 = i32::MAX as i64;

/// What the store knows of one stored snapshot, without its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    /// The store's id, stable for the life of the store (`id:N`).
    pub id: i64,
    /// The snapshot's cloud.
    pub cloud: Cloud,
    /// Microsoft's file date (the Monday in the file name).
    pub file_date: NaiveDate,
    /// The top-level `changeNumber`.
    pub change_number: i64,
    /// Number of tags.
    pub tags: i64,
    /// Number of (tag, prefix) pairs.
    pub prefixes: i64,
    /// sha256 of the canonical content (the output of `tagwall export`), hex.
    pub content_sha256: String,
    /// sha256 of the original file's bytes as downloaded or imported (uncompressed), hex.
    pub sha256: String,
    /// Size in bytes of the original file (uncompressed).
    pub size: i64,
    /// The file name it was imported from.
    pub source: String,
}

impl serde::Serialize for Cloud {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Encodes a prefix for the store: network address bytes then prefix length
/// (5 bytes for IPv4, 17 for IPv6).
pub fn encode_prefix(net: &IpNet) -> Vec<u8> {
    encode_prefix_into(net).to_vec()
}

/// [`encode_prefix`] into a fixed buffer, without allocating: (buffer, used length).
pub fn encode_prefix_into(net: &IpNet) -> EncodedPrefix {
    let mut buf = [0u8; 17];
    let len = match net {
        IpNet::V4(n) => {
            buf[..4].copy_from_slice(&n.network().octets());
            4
        }
        IpNet::V6(n) => {
            buf[..16].copy_from_slice(&n.network().octets());
            16
        }
    };
    buf[len] = net.prefix_len();
    EncodedPrefix { buf, len: len + 1 }
}

/// The bytes of an encoded prefix, on the stack.
#[derive(Debug, Clone, Copy)]
pub struct EncodedPrefix {
    buf: [u8; 17],
    len: usize,
}

impl EncodedPrefix {
    /// The encoded bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_ref().to_vec()
    }
}

impl AsRef<[u8]> for EncodedPrefix {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Decodes [`encode_prefix`]'s bytes; `None` if they are not such bytes.
pub fn decode_prefix(bytes: &[u8]) -> Option<IpNet> {
    let (addr, len) = bytes.split_at(bytes.len().checked_sub(1)?);
    let len = len[0];
    match addr.len() {
        4 => {
            let octets: [u8; 4] = addr.try_into().ok()?;
            ipnet::Ipv4Net::new(octets.into(), len).ok().map(IpNet::V4)
        }
        16 => {
            let octets: [u8; 16] = addr.try_into().ok()?;
            ipnet::Ipv6Net::new(octets.into(), len).ok().map(IpNet::V6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_names_parse_case_insensitively() {
        assert_eq!("public".parse::<Cloud>(), Ok(Cloud::Public));
        assert_eq!(
            "AZUREGOVERNMENT".parse::<Cloud>(),
            Ok(Cloud::AzureGovernment)
        );
        assert_eq!(" china ".parse::<Cloud>(), Ok(Cloud::China));
        let err = "Mars".parse::<Cloud>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown cloud \"Mars\": expected one of Public, AzureGovernment, China, AzureGermany"
        );
    }

    #[test]
    fn cloud_codes_round_trip() {
        for c in Cloud::ALL {
            assert_eq!(Cloud::from_code(c.code()), Some(c));
        }
        assert_eq!(Cloud::from_code(9), None);
    }

    #[test]
    fn prefixes_round_trip_through_their_encoding() {
        for s in [
            "13.64.0.0/16",
            "0.0.0.0/0",
            "2603:1000:4::/47",
            "::/0",
            "1.2.3.4/32",
        ] {
            let net: IpNet = s.parse().unwrap();
            let bytes = encode_prefix(&net);
            assert_eq!(decode_prefix(&bytes), Some(net), "{s}");
        }
        assert_eq!(decode_prefix(&[1, 2, 3]), None);
        assert_eq!(decode_prefix(&[]), None);
        assert_eq!(decode_prefix(&[1, 2, 3, 4, 33]), None);
    }
}

/// Small values for the unit tests of the modules above `model`.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A Public snapshot's description: id `id`, dated 2025-01-`day`, changeNumber `id`.
    pub fn info(id: i64, day: u32) -> SnapshotInfo {
        SnapshotInfo {
            id,
            cloud: Cloud::Public,
            file_date: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            change_number: id,
            tags: 1,
            prefixes: 1,
            content_sha256: String::new(),
            sha256: String::new(),
            size: 0,
            source: String::new(),
        }
    }

    /// A tag with the given properties (platform Azure, changeNumber 1, no regionId).
    pub fn tag(
        name: &str,
        region: &str,
        service: &str,
        features: NetworkFeatures,
        prefixes: &[&str],
    ) -> ServiceTag {
        ServiceTag {
            name: name.into(),
            meta: TagMeta {
                id: name.into(),
                change_number: 1,
                region: region.into(),
                region_id: None,
                platform: "Azure".into(),
                system_service: service.into(),
                network_features: features,
            },
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }
}
