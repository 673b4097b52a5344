//! Parsing ServiceTags JSON into a canonical [`Snapshot`].
//!
//! Accepts every shape Microsoft has published since 2019: files without `regionId` and
//! `networkFeatures`, `networkFeatures: null`, CRLF or LF line endings, a UTF-8 byte order mark,
//! unsorted values and mixed IPv4/IPv6 prefixes, optionally gzip-compressed. Anything else is
//! refused with an error that names the JSON path of the offending value.

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::io::Read;

use ipnet::IpNet;
use serde::Deserialize;

use crate::core::model::{Cloud, NetworkFeatures, ServiceTag, Snapshot, TagMeta};

mod overlap;

/// The largest file tagwall accepts, compressed or not (Microsoft's are about 4 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file's bytes are not a usable ServiceTags file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file (or its decompressed content) is larger than [`MAX_FILE_BYTES`].
    #[error("the file is larger than the 64 MiB limit (Microsoft's files are about 4 MiB): check that it is a ServiceTags file")]
    TooLarge,
    /// The file starts like gzip but does not decompress.
    #[error("the file looks gzip-compressed but does not decompress ({0}): download it again")]
    Gzip(String),
    /// The bytes are not JSON of the ServiceTags shape.
    #[error("{path}: {message}")]
    Json {
        /// The JSON path where parsing stopped, e.g. `values[3].properties`.
        path: String,
        /// serde_json's description, with line and column.
        message: String,
    },
    /// A value has the right JSON type but is not acceptable.
    #[error("{path}: {message}")]
    Invalid {
        /// The JSON path of the value, e.g. `values[12].properties.addressPrefixes[3]`.
        path: String,
        /// What is wrong with it and what was expected.
        message: String,
    },
}

/// A parsed file with the notes worth telling the user.
#[derive(Debug)]
pub struct Parsed {
    /// The canonical content.
    pub snapshot: Snapshot,
    /// Harmless oddities, such as a prefix listed twice in one tag.
    pub warnings: Vec<String>,
}

/// Decompresses gzip input (detected by its magic bytes) within [`MAX_FILE_BYTES`]; other input
/// is returned as it is.
pub fn decompress(bytes: Vec<u8>) -> Result<Vec<u8>, ParseError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ParseError::TooLarge);
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    // gzip's trailer gives the (last member's) size modulo 2^32: a hint, bounded by the limit.
    let trailer = bytes.len().checked_sub(4).map_or(0, |at| {
        u32::from_le_bytes(bytes[at..].try_into().expect("four bytes")) as usize
    });
    let hint = trailer
        .max(bytes.len() * 4)
        .min(MAX_FILE_BYTES as usize + 1);
    let mut out = super::buffers::take(hint);
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ParseError::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(ParseError::TooLarge);
    }
    Ok(out)
}

/// The file as read. `P` reads each tag's `addressPrefixes`: [`PrefixText`] for the parse,
/// [`Prefixes`] when a file that failed is read again to name where.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile<P> {
    change_number: i64,
    cloud: String,
    values: Vec<RawValue<P>>,
}

#[derive(Deserialize)]
struct RawValue<P> {
    name: String,
    id: String,
    properties: RawProperties<P>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProperties<P> {
    change_number: i64,
    region: String,
    #[serde(default)]
    region_id: Option<i64>,
    platform: String,
    system_service: String,
    address_prefixes: P,
    #[serde(default, deserialize_with = "present_features")]
    network_features: NetworkFeatures,
}

/// A tag's `addressPrefixes`, parsed as they are read: no string is kept or allocated per
/// prefix. The first invalid one is remembered (its index and why) for [`tag_of`] to report.
struct Prefixes {
    nets: Vec<IpNet>,
    first_error: Option<(usize, String)>,
}

impl<'de> Deserialize<'de> for Prefixes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Prefixes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Prefixes, A::Error> {
                let mut out = Prefixes {
                    nets: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096)),
                    first_error: None,
                };
                while let Some(Text(text)) = seq.next_element::<Text>()? {
                    match prefix_of(&text) {
                        Ok(net) => out.nets.push(net),
                        Err(message) => {
                            let j = out.nets.len();
                            out.first_error.get_or_insert((j, message));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// A tag's `addressPrefixes` as text (valid JSON, borrowed from the file), read after the
/// file's structure ([`read_prefixes`]): half of the parse, which a second thread can share.
struct PrefixText<'a>(&'a str);

impl<'de: 'a, 'a> Deserialize<'de> for PrefixText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PrefixText(
            <&'de serde_json::value::RawValue>::deserialize(d)?.get(),
        ))
    }
}

/// A tag's prefixes as [`tag_of`] takes them: sorted, each once.
struct TagPrefixes {
    nets: Vec<IpNet>,
    /// The first invalid one: its index in the file's list, and why.
    first_error: Option<(usize, String)>,
    /// How many were listed more than once.
    repeated: usize,
}

/// Reads a tag's `addressPrefixes` text in one pass when it is written as Microsoft writes it
/// ([`scan_prefixes`]); any other text is read by [`Prefixes`], which then decides and
/// explains. `None` when the text is not a list of strings: the file's structure is wrong, and
/// reading it again with [`deserialize_error`] says where.
fn read_prefixes(text: &str) -> Option<TagPrefixes> {
    let given = match scan_prefixes(text.as_bytes()) {
        Some(nets) => Prefixes {
            nets,
            first_error: None,
        },
        None => serde_json::from_str::<Prefixes>(text).ok()?,
    };
    let mut nets = given.nets;
    nets.sort_unstable_by_key(order_key);
    let listed = nets.len();
    nets.dedup();
    Some(TagPrefixes {
        repeated: listed - nets.len(),
        nets,
        first_error: given.first_error,
    })
}

/// [`read_prefixes`] of every tag, in order.
fn read_all_prefixes(values: &[RawValue<PrefixText<'_>>]) -> Vec<Option<TagPrefixes>> {
    values
        .iter()
        .map(|v| read_prefixes(v.properties.address_prefixes.0))
        .collect()
}

/// The prefixes of a JSON array of strings, each of which the strict parsers accept with no
/// host bits, separated by JSON whitespace and commas: what [`Prefixes`] makes of such text.
/// `None` for anything else (an escape, another character, another value, a prefix the strict
/// parsers do not take).
fn scan_prefixes(text: &[u8]) -> Option<Vec<IpNet>> {
    let mut nets = Vec::new();
    let mut at = json_space(text, 0);
    if text.get(at) != Some(&b'[') {
        return None;
    }
    at = json_space(text, at + 1);
    if text.get(at) == Some(&b']') {
        return (json_space(text, at + 1) == text.len()).then_some(nets);
    }
    loop {
        if text.get(at) != Some(&b'"') {
            return None;
        }
        let start = at + 1;
        let len = memchr::memchr(b'"', &text[start..])?;
        let net = strict_prefix(&text[start..start + len])?;
        if nets.is_empty() {
            // Exactly as many as the strings (the prefixes of the files waiting to be stored
            // are most of an import's memory), once the first is a prefix: an array of
            // anything else allocates nothing.
            nets.reserve_exact(memchr::memchr_iter(b'"', text).count() / 2);
        }
        nets.push(net);
        at = json_space(text, start + len + 1);
        match text.get(at) {
            Some(b',') => at = json_space(text, at + 1),
            Some(b']') => return (json_space(text, at + 1) == text.len()).then_some(nets),
            _ => return None,
        }
    }
}

/// The first index at or after `at` that is not JSON whitespace.
fn json_space(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// A prefix the strict parsers accept, without host bits: what [`prefix_of`] returns at once.
/// They accept only digits, lowercase hex, `.`, `:` and `/`, so a string they take holds no
/// escape and means exactly its bytes.
fn strict_prefix(text: &[u8]) -> Option<IpNet> {
    let net = match strict_ipv4(text) {
        Some(net) => IpNet::V4(net),
        None => IpNet::V6(strict_ipv6(text)?),
    };
    (net.trunc() == net).then_some(net)
}

/// A string borrowed from the input when it has no escapes: no allocation per prefix.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
        }
        d.deserialize_str(Visitor).map(Text)
    }
}

/// Called only when the key is present: `null` or a list. A missing key gives the default.
fn present_features<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NetworkFeatures, D::Error> {
    Ok(match Option::<Vec<String>>::deserialize(d)? {
        None => NetworkFeatures::Null,
        Some(list) => NetworkFeatures::List(list),
    })
}

/// Parses a file's (decompressed) bytes. When `expected` is given, the file's `cloud` must match.
pub fn parse(bytes: &[u8], expected: Option<Cloud>) -> Result<Parsed, ParseError> {
    parse_on(bytes, expected, Threads::One)
}

/// [`parse`], with a second thread reading the prefixes while this one reads the rest of the
/// file ([`overlap`]): for a file imported alone, such as the weekly one. Gives exactly what
/// [`parse`] gives, errors included.
pub fn parse_in_two(bytes: &[u8], expected: Option<Cloud>) -> Result<Parsed, ParseError> {
    parse_on(bytes, expected, Threads::Two)
}

/// How many threads a parse reads the file with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    One,
    /// The prefixes on a second thread ([`overlap`]), when the file's layout allows it.
    Two,
}

fn parse_on(bytes: &[u8], expected: Option<Cloud>, threads: Threads) -> Result<Parsed, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let overlapped = match threads {
        Threads::Two => overlap::read(bytes),
        Threads::One => None,
    };
    let (raw, prefixes) = match overlapped {
        Some(read) => read,
        None => {
            let raw = deserialize(bytes)?;
            let prefixes = read_all_prefixes(&raw.values);
            (raw, prefixes)
        }
    };
    // A list that is not of strings is an error of the file's structure, which comes first.
    let prefixes = prefixes
        .into_iter()
        .collect::<Option<Vec<TagPrefixes>>>()
        .ok_or_else(|| deserialize_error(bytes))?;
    check_text("cloud", &raw.cloud)?;
    let cloud = cloud_of(&raw.cloud, expected)?;
    if raw.values.is_empty() {
        return Err(invalid(
            "values",
            "the file lists no service tags: it is empty or truncated, download it again",
        ));
    }
    let mut warnings = Vec::new();
    let mut seen: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(raw.values.len(), Default::default());
    for (i, v) in raw.values.iter().enumerate() {
        check_name(i, &v.name)?;
        check_strings(i, v)?;
        if let Some(first) = seen.insert(&v.name, i) {
            return Err(invalid(
                &format!("values[{i}].name"),
                &format!(
                    "tag {:?} appears twice (also at values[{first}]): the file is corrupt",
                    v.name
                ),
            ));
        }
    }
    let mut tags = Vec::with_capacity(raw.values.len());
    for (i, (v, p)) in raw.values.into_iter().zip(prefixes).enumerate() {
        tags.push(tag_of(i, v, p, &mut warnings)?);
    }
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let snapshot = Snapshot {
        cloud,
        change_number: raw.change_number,
        tags,
    };
    Ok(Parsed { snapshot, warnings })
}

/// The file's JSON, without tracking the path (it costs a tenth of the parse); on an error the
/// bytes are read again with the path tracked, to name where the file is wrong.
fn deserialize(bytes: &[u8]) -> Result<RawFile<PrefixText<'_>>, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match RawFile::deserialize(&mut de).and_then(|raw| de.end().map(|()| raw)) {
        Ok(raw) => Ok(raw),
        Err(_) => Err(deserialize_error(bytes)),
    }
}

/// Why `bytes` do not deserialize, with the JSON path where they stop.
fn deserialize_error(bytes: &[u8]) -> ParseError {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = serde_path_to_error::deserialize::<_, RawFile<Prefixes>>(&mut *de) {
        return ParseError::Json {
            path: json_path(e.path().to_string()),
            message: e.inner().to_string(),
        };
    }
    match de.end() {
        Err(e) => invalid(
            "(after the top level)",
            &format!("unexpected bytes after the JSON document ({e}): the file is damaged or not a ServiceTags file"),
        ),
        Ok(()) => invalid("(top level)", "the file does not deserialize twice alike"),
    }
}

fn cloud_of(value: &str, expected: Option<Cloud>) -> Result<Cloud, ParseError> {
    let cloud: Cloud = value
        .parse()
        .map_err(|e: crate::core::model::UnknownCloud| invalid("cloud", &format!("{e}")))?;
    match expected {
        Some(want) if want != cloud => Err(invalid(
            "cloud",
            &format!(
                "the file is for cloud {cloud}, not {want}: drop --cloud or pick the right file"
            ),
        )),
        _ => Ok(cloud),
    }
}

fn tag_of(
    i: usize,
    v: RawValue<PrefixText<'_>>,
    given: TagPrefixes,
    warnings: &mut Vec<String>,
) -> Result<ServiceTag, ParseError> {
    let p = v.properties;
    if let Some((j, message)) = given.first_error {
        return Err(invalid(
            &format!("values[{i}].properties.addressPrefixes[{j}]"),
            &message,
        ));
    }
    if given.repeated > 0 {
        warnings.push(format!(
            "values[{i}] ({}): {} prefix(es) listed more than once, kept once",
            v.name, given.repeated
        ));
    }
    let prefixes = given.nets;
    let special: Vec<String> = prefixes
        .iter()
        .filter_map(crate::core::special::describe)
        .collect();
    if let Some(first) = special.first() {
        warnings.push(format!(
            "values[{i}] ({}): {} special-purpose prefix(es), such as {first}: kept in the history, left out of every ruleset",
            v.name,
            special.len()
        ));
    }
    let meta = TagMeta {
        id: v.id,
        change_number: p.change_number,
        region: p.region,
        region_id: p.region_id,
        platform: p.platform,
        system_service: p.system_service,
        network_features: p.network_features,
    };
    Ok(ServiceTag {
        name: v.name,
        meta,
        prefixes,
    })
}

/// A key that sorts prefixes as `IpNet`'s own order does (IPv4 first, then by address, then
/// by length), compared as plain integers: a fifth of the sort's time.
fn order_key(p: &IpNet) -> (bool, u128, u8) {
    match p {
        IpNet::V4(n) => (false, u128::from(u32::from(n.addr())), n.prefix_len()),
        IpNet::V6(n) => (true, u128::from(n.addr()), n.prefix_len()),
    }
}

/// The longest tag name accepted (Microsoft's longest is under 80 bytes).
pub const MAX_TAG_NAME_BYTES: usize = 256;

fn check_name(i: usize, name: &str) -> Result<(), ParseError> {
    let path = || format!("values[{i}].name");
    if name.is_empty() || name.len() > MAX_TAG_NAME_BYTES {
        return Err(invalid(
            &path(),
            &format!(
                "tag name of {} bytes: names must hold 1 to {MAX_TAG_NAME_BYTES} bytes, the file is corrupt",
                name.len()
            ),
        ));
    }
    check_text_at(path, name)
}

/// Every string of a tag but its name and prefixes (checked elsewhere). Each path is spelled
/// out only for an error: 3,000 tags a file.
fn check_strings<P>(i: usize, v: &RawValue<P>) -> Result<(), ParseError> {
    let p = &v.properties;
    let at = |field: &'static str| move || format!("values[{i}].{field}");
    check_text_at(at("id"), &v.id)?;
    check_text_at(at("properties.region"), &p.region)?;
    check_text_at(at("properties.platform"), &p.platform)?;
    check_text_at(at("properties.systemService"), &p.system_service)?;
    if let NetworkFeatures::List(list) = &p.network_features {
        for (j, f) in list.iter().enumerate() {
            check_text_at(|| format!("values[{i}].properties.networkFeatures[{j}]"), f)?;
        }
    }
    Ok(())
}

/// Refuses control characters (C0, DEL, C1) and Unicode line, paragraph and bidirectional
/// controls: no string of Microsoft's holds them, and they would reach terminals and reports.
fn check_text(path: &str, text: &str) -> Result<(), ParseError> {
    check_text_at(|| path.to_string(), text)
}

/// [`check_text`] with the path made only when `text` is refused.
fn check_text_at(path: impl FnOnce() -> String, text: &str) -> Result<(), ParseError> {
    // Printable ASCII, all Microsoft writes, holds no such character: checked by bytes.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    match text.chars().find(|&c| crate::core::text::is_unsafe_char(c)) {
        None => Ok(()),
        Some(c) => Err(invalid(
            &path(),
            &format!(
                "{} holds the control or invisible character U+{:04X}: the file is corrupt",
                crate::core::text::quoted(text, 80),
                c as u32
            ),
        )),
    }
}

/// Refuses leading zeros in IPv4 octets and in the prefix length (`010.0.0.0/8` means 8.0.0.0/8
/// to octal readers, `/08` is ambiguous): Microsoft writes neither.
fn leading_zeros(text: &str) -> bool {
    let (addr, len) = text.rsplit_once('/').unwrap_or((text, ""));
    let padded = |part: &str| part.len() > 1 && part.starts_with('0');
    padded(len) || (!addr.contains(':') && addr.split('.').any(padded))
}

/// Parses one CIDR, refusing host bits (Microsoft never sets them; a file that does is damaged).
fn prefix_of(text: &str) -> Result<IpNet, String> {
    match strict_prefix(text.as_bytes()) {
        Some(net) => Ok(net),
        None => prefix_slow(text),
    }
}

/// The common case, fast: `a.b.c.d/len` in decimal without leading zeros, which is all
/// Microsoft writes for IPv4 (a third of the parse went to the general parser). Anything else
/// — IPv6, a damaged value — is `None`, and [`prefix_slow`] decides and explains.
fn strict_ipv4(text: &[u8]) -> Option<ipnet::Ipv4Net> {
    let mut octets = [0u8; 4];
    let mut rest = text;
    for (k, octet) in octets.iter_mut().enumerate() {
        let (value, tail) = decimal(rest, 255)?;
        *octet = value as u8;
        let (&sep, tail) = tail.split_first()?;
        if sep != if k == 3 { b'/' } else { b'.' } {
            return None;
        }
        rest = tail;
    }
    let (len, tail) = decimal(rest, 32)?;
    if !tail.is_empty() {
        return None;
    }
    ipnet::Ipv4Net::new(octets.into(), len as u8).ok()
}

/// The common IPv6 case, fast: groups of one to four lowercase hex digits, at most one `::`
/// standing for at least one group of zeros, then `/len` in decimal without leading zeros. This
/// is how Microsoft writes IPv6 (the general parser also tries an IPv4 tail at every group,
/// which cost a sixth of the parse). Anything else — an IPv4 tail, uppercase, a damaged value —
/// is `None`, and [`prefix_slow`] decides and explains.
fn strict_ipv6(text: &[u8]) -> Option<ipnet::Ipv6Net> {
    let slash = text.iter().position(|&b| b == b'/')?;
    let (addr, len) = (&text[..slash], &text[slash + 1..]);
    let (len, tail) = decimal(len, 128)?;
    if !tail.is_empty() {
        return None;
    }
    let gap = addr.windows(2).position(|w| w == b"::");
    let (head, tail) = match gap {
        Some(at) => (&addr[..at], &addr[at + 2..]),
        None => (addr, &[][..]),
    };
    let mut groups = [0u16; 8];
    let n_head = hex_groups(head, &mut groups)?;
    let mut back = [0u16; 8];
    let n_tail = hex_groups(tail, &mut back)?;
    match gap {
        None if n_head == 8 => {}
        Some(_) if n_head + n_tail <= 7 => {
            groups[8 - n_tail..].copy_from_slice(&back[..n_tail]);
        }
        _ => return None,
    }
    ipnet::Ipv6Net::new(groups.into(), len as u8).ok()
}

/// Reads `a:b:c` (each one to four lowercase hex digits; empty text is no group) into `out`,
/// and how many groups there were.
fn hex_groups(text: &[u8], out: &mut [u16; 8]) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for group in text.split(|&b| b == b':') {
        if group.is_empty() || group.len() > 4 || n == 8 {
            return None;
        }
        let mut value = 0u16;
        for &b in group {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            value = value << 4 | u16::from(digit);
        }
        out[n] = value;
        n += 1;
    }
    Some(n)
}

/// A decimal of 1 to 3 digits without a leading zero, at most `max`, and what follows it.
fn decimal(bytes: &[u8], max: u32) -> Option<(u32, &[u8])> {
    let digits = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 || (digits > 1 && bytes[0] == b'0') {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0, |v, b| v * 10 + u32::from(b - b'0'));
    (value <= max).then_some((value, &bytes[digits..]))
}

/// Any CIDR, with the reason when it is not one.
fn prefix_slow(text: &str) -> Result<IpNet, String> {
    if leading_zeros(text) {
        return Err(format!(
            "{text:?} has a leading zero in an octet or the prefix length (octal readers would see another network): the file is damaged"
        ));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("{text:?} is not a CIDR (expected an address and a length, such as 20.38.64.0/19)")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set (the network would be {}): the file is damaged",
            net.trunc()
        ));
    }
    Ok(net)
}

fn invalid(path: &str, message: &str) -> ParseError {
    ParseError::Invalid {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// serde_path_to_error says `.` for the root; users read `(top level)` better.
fn json_path(path: String) -> String {
    if path == "." {
        "(top level)".to_string()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    const GOOD: &str = r#"{
  "changeNumber": 7,
  "cloud": "Public",
  "values": [
    {"name": "Zeta", "id": "Zeta", "properties": {"changeNumber": 2, "region": "", "regionId": 0,
      "platform": "Azure", "systemService": "Zeta", "addressPrefixes": ["2603:1000::/40", "10.0.0.0/8", "9.0.0.0/8"],
      "networkFeatures": null}},
    {"name": "Alpha", "id": "Alpha", "properties": {"changeNumber": 1, "region": "westeurope",
      "platform": "Azure", "systemService": "", "addressPrefixes": ["1.0.0.0/24", "1.0.0.0/24"]}}
  ]
}"#;

    /// The error of a file, which the parse on two threads gives too.
    fn err(text: &str) -> String {
        let one = parse(text.as_bytes(), None).unwrap_err().to_string();
        let two = parse_in_two(text.as_bytes(), None).unwrap_err().to_string();
        assert_eq!(two, one, "the parse on two threads differs");
        one
    }

    /// A file of `tags`, each `(name, addressPrefixes JSON)`.
    fn file_of(tags: &[(String, String)]) -> String {
        let values: Vec<String> = tags
            .iter()
            .map(|(name, prefixes)| {
                format!(
                    r#"{{"name": {name}, "id": "x", "properties": {{"changeNumber": 1, "region": "", "platform": "Azure", "systemService": "", "addressPrefixes": {prefixes}}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"changeNumber": 1, "cloud": "Public", "values": [{}]}}"#,
            values.join(",\n")
        )
    }

    #[test]
    fn the_parse_on_two_threads_agrees_on_either_side() {
        let tags: Vec<(String, String)> = (0..40)
            .map(|i| {
                let list: Vec<String> = (0..=i).map(|k| format!("\"10.{i}.{k}.0/24\"")).collect();
                (format!("\"T{i:02}\""), format!("[{}]", list.join(", ")))
            })
            .collect();
        let text = file_of(&tags);
        let (raw, read) = overlap::read(text.as_bytes()).unwrap();
        assert_eq!((raw.values.len(), read.len()), (40, 40));
        let one = parse(text.as_bytes(), None).unwrap();
        let two = parse_in_two(text.as_bytes(), None).unwrap();
        assert_eq!(two.snapshot, one.snapshot);
        assert_eq!(one.snapshot.prefix_count(), 40 * 41 / 2);
        // Two bad prefixes: the earlier one is reported, by both.
        let mut bad = tags.clone();
        bad[36].1 = "[\"10.0.0.1/24\"]".into();
        bad[3].1 = "[\"10.0.0.0/33\"]".into();
        assert!(err(&file_of(&bad)).starts_with("values[3].properties.addressPrefixes[0]"));
        // A list that is not of strings is the file's structure, reported before the rest.
        bad[38].1 = "[1]".into();
        assert!(err(&file_of(&bad)).starts_with("values[38].properties.addressPrefixes[0]"));
    }

    #[test]
    fn parses_into_canonical_order() {
        let parsed = parse(GOOD.as_bytes(), None).unwrap();
        let s = parsed.snapshot;
        assert_eq!(s.cloud, Cloud::Public);
        assert_eq!(s.change_number, 7);
        let names: Vec<_> = s.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Alpha", "Zeta"]);
        let zeta: Vec<String> = s.tags[1].prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(zeta, ["9.0.0.0/8", "10.0.0.0/8", "2603:1000::/40"]);
        assert_eq!(s.tags[1].meta.network_features, NetworkFeatures::Null);
        assert_eq!(s.tags[0].meta.network_features, NetworkFeatures::Absent);
        assert_eq!(s.tags[0].meta.region_id, None);
        assert_eq!(s.tags[0].prefixes.len(), 1);
        assert_eq!(
            parsed.warnings,
            ["values[1] (Alpha): 1 prefix(es) listed more than once, kept once"]
        );
    }

    #[test]
    fn line_endings_and_bom_do_not_change_content() {
        let lf = parse(GOOD.as_bytes(), None).unwrap().snapshot;
        let crlf = GOOD.replace('\n', "\r\n");
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(crlf.as_bytes());
        assert_eq!(parse(&bom, None).unwrap().snapshot, lf);
    }

    #[test]
    fn escaped_strings_are_read_too() {
        let escaped = GOOD.replace("\"9.0.0.0/8\"", "\"9.0.0.0\\/8\"");
        assert!(escaped.contains("9.0.0.0\\/8"));
        assert_eq!(
            parse(escaped.as_bytes(), None).unwrap().snapshot,
            parse(GOOD.as_bytes(), None).unwrap().snapshot
        );
    }

    #[test]
    fn invalid_cidr_names_its_path() {
        let bad = GOOD.replace("9.0.0.0/8", "10.0.0.300/24");
        assert_eq!(
            err(&bad),
            "values[0].properties.addressPrefixes[2]: \"10.0.0.300/24\" is not a CIDR (expected an address and a length, such as 20.38.64.0/19)"
        );
    }

    #[test]
    fn host_bits_are_refused() {
        let bad = GOOD.replace("10.0.0.0/8", "10.0.0.1/8");
        assert_eq!(
            err(&bad),
            "values[0].properties.addressPrefixes[1]: \"10.0.0.1/8\" has host bits set (the network would be 10.0.0.0/8): the file is damaged"
        );
    }

    #[test]
    fn not_json_and_truncated() {
        assert!(err("<html>Access denied</html>")
            .starts_with("(top level): expected value at line 1 column 1"));
        let truncated = &GOOD[..GOOD.len() / 2];
        let e = err(truncated);
        assert!(e.contains("EOF while parsing"), "{e}");
        assert!(e.starts_with("values[0]"), "{e}");
    }

    #[test]
    fn structural_errors_name_the_path() {
        let bad = GOOD.replace("\"changeNumber\": 2", "\"changeNumber\": \"two\"");
        let e = err(&bad);
        assert!(
            e.starts_with("values[0].properties.changeNumber: invalid type: string \"two\""),
            "{e}"
        );
    }

    #[test]
    fn empty_values_unknown_and_mismatched_cloud() {
        let empty = r#"{"changeNumber": 1, "cloud": "Public", "values": []}"#;
        assert_eq!(
            err(empty),
            "values: the file lists no service tags: it is empty or truncated, download it again"
        );
        let mars = GOOD.replace("\"Public\"", "\"Mars\"");
        assert_eq!(
            err(&mars),
            "cloud: unknown cloud \"Mars\": expected one of Public, AzureGovernment, China, AzureGermany"
        );
        let e = parse(GOOD.as_bytes(), Some(Cloud::China))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cloud: the file is for cloud Public, not China: drop --cloud or pick the right file"
        );
    }

    #[test]
    fn empty_or_control_character_names_are_refused() {
        let bad = GOOD.replace("\"name\": \"Alpha\"", "\"name\": \"Al\\npha\"");
        assert_eq!(
            err(&bad),
            "values[1].name: \"Al\\npha\" holds the control or invisible character U+000A: the file is corrupt"
        );
    }

    #[test]
    fn duplicate_tag_names_are_refused() {
        let dup = GOOD.replace("\"name\": \"Alpha\"", "\"name\": \"Zeta\"");
        assert_eq!(
            err(&dup),
            "values[1].name: tag \"Zeta\" appears twice (also at values[0]): the file is corrupt"
        );
    }

    #[test]
    fn gzip_is_detected_and_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(GOOD.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(gz.clone()).unwrap(), GOOD.as_bytes());
        let mut broken = gz[..gz.len() / 2].to_vec();
        broken.extend_from_slice(&[0; 8]);
        assert!(matches!(decompress(broken), Err(ParseError::Gzip(_))));
        assert_eq!(decompress(b"plain".to_vec()).unwrap(), b"plain");
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..65 {
            enc.write_all(&zeros).unwrap();
        }
        let gz = enc.finish().unwrap();
        assert!(matches!(decompress(gz), Err(ParseError::TooLarge)));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let e = err(&format!("{GOOD} x"));
        assert!(
            e.starts_with("(after the top level): unexpected bytes after the JSON document"),
            "{e}"
        );
        assert!(parse(format!("{GOOD}\r\n \n").as_bytes(), None).is_ok());
    }

    #[test]
    fn leading_zeros_are_refused() {
        for (from, to) in [
            ("10.0.0.0/8", "010.0.0.0/8"),
            ("10.0.0.0/8", "10.0.0.0/08"),
            ("9.0.0.0/8", "9.00.0.0/16"),
        ] {
            let e = err(&GOOD.replace(from, to));
            assert!(e.contains("leading zero"), "{to}: {e}");
        }
        assert!(!leading_zeros("0.0.0.0/0"));
        assert!(!leading_zeros("2603:1000::/40"));
        assert!(!leading_zeros("10.0.0.0/10"));
    }

    #[test]
    fn control_characters_are_refused_in_every_string() {
        for field in [
            "\"region\": \"westeurope\"",
            "\"systemService\": \"Zeta\"",
            "\"id\": \"Zeta\"",
            "\"platform\": \"Azure\"",
        ] {
            let (key, _) = field.split_once(':').unwrap();
            let bad = GOOD.replacen(field, &format!("{key}: \"x\\u001b[2J\""), 1);
            let e = err(&bad);
            assert!(e.contains("U+001B"), "{field}: {e}");
        }
        let e = err(&GOOD.replace("\"cloud\": \"Public\"", "\"cloud\": \"Pub\\u2028lic\""));
        assert!(e.starts_with("cloud:"), "{e}");
    }

    #[test]
    fn long_tag_names_are_refused_and_cut_in_errors() {
        let name = "A".repeat(MAX_TAG_NAME_BYTES + 1);
        let e = err(&GOOD.replace("\"name\": \"Alpha\"", &format!("\"name\": \"{name}\"")));
        assert_eq!(
            e,
            "values[1].name: tag name of 257 bytes: names must hold 1 to 256 bytes, the file is corrupt"
        );
        let ok = "A".repeat(MAX_TAG_NAME_BYTES);
        assert!(parse(
            GOOD.replace("\"name\": \"Alpha\"", &format!("\"name\": \"{ok}\""))
                .as_bytes(),
            None
        )
        .is_ok());
    }

    proptest::proptest! {
        /// Arbitrary bytes, and GOOD with arbitrary bytes spliced in, never panic: a parse is
        /// either a snapshot or an error with a path.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            at in 0usize..2000,
        ) {
            let _ = parse(&junk, None);
            let _ = decompress(junk.clone());
            let mut spliced = GOOD.as_bytes().to_vec();
            let at = at.min(spliced.len());
            spliced.splice(at..at, junk.iter().copied());
            if let Err(e) = parse(&spliced, None) {
                proptest::prop_assert!(!e.to_string().is_empty());
            }
        }

        /// The sort key orders prefixes exactly as `IpNet`'s `Ord` does.
        #[test]
        fn the_sort_key_orders_prefixes_as_ipnet_does(
            a in proptest::prelude::any::<(bool, u128, u8)>(),
            b in proptest::prelude::any::<(bool, u128, u8)>(),
            same_address in proptest::prelude::any::<bool>(),
        ) {
            // Equal addresses half the time, so the length decides too.
            let b = if same_address { (b.0, a.1, b.2) } else { b };
            let net = |(v6, bits, len): (bool, u128, u8)| -> IpNet {
                if v6 {
                    ipnet::Ipv6Net::new(bits.into(), len % 129).unwrap().into()
                } else {
                    ipnet::Ipv4Net::new((bits as u32).into(), len % 33).unwrap().into()
                }
            };
            let (x, y) = (net(a), net(b));
            proptest::prop_assert_eq!(order_key(&x).cmp(&order_key(&y)), x.cmp(&y));
        }

        /// The fast IPv4 path accepts nothing the general parser refuses, and means the same.
        #[test]
        fn the_fast_ipv4_path_agrees_with_the_general_one(
            text in "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}/[0-9]{1,3}|[0-9./]{0,20}",
        ) {
            let slow = prefix_slow(&text);
            match strict_ipv4(text.as_bytes()) {
                Some(net) if net.trunc() == net => {
                    proptest::prop_assert_eq!(slow.clone(), Ok(IpNet::V4(net)));
                }
                _ => {}
            }
            proptest::prop_assert_eq!(prefix_of(&text), slow);
        }

        /// The fast IPv6 path accepts nothing the general parser refuses, and means the same:
        /// on every address written as `Display` writes it, and on strings of IPv6 characters.
        #[test]
        fn the_fast_ipv6_path_agrees_with_the_general_one(
            bits in proptest::prelude::any::<u128>(),
            len in 0u8..=128,
            zeros in proptest::prelude::any::<u8>(),
            text in "[0-9a-fA-F:./]{0,45}|([0-9a-f]{0,5}:){1,9}[0-9a-f]{0,5}/[0-9]{1,4}",
        ) {
            // Runs of zero groups, so `::` appears in many places.
            let bits = (0..8).fold(bits, |b, k| if zeros >> k & 1 == 1 { b & !(0xffff << (16 * k)) } else { b });
            let net = ipnet::Ipv6Net::new(bits.into(), len).unwrap();
            for written in [net.to_string(), net.trunc().to_string(), text] {
                let slow = prefix_slow(&written);
                if let Some(fast) = strict_ipv6(written.as_bytes()) {
                    proptest::prop_assert_eq!(Ok(fast), written.parse::<ipnet::Ipv6Net>());
                }
                proptest::prop_assert_eq!(prefix_of(&written), slow);
            }
            // What Microsoft writes takes the fast path (`Display` writes an IPv4-mapped address
            // with a dotted tail, which the general parser reads).
            let trunc = net.trunc().to_string();
            if !trunc.contains('.') {
                proptest::prop_assert_eq!(strict_ipv6(trunc.as_bytes()), Some(net.trunc()));
            }
        }

        /// The parse on two threads gives what the parse on one gives, to the byte of every
        /// error and warning, whatever the tags hold and wherever the split falls: valid,
        /// repeated, damaged and escaped prefixes, other JSON values, repeated and unsafe names.
        #[test]
        fn the_parse_on_two_threads_agrees_with_one(
            tags in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        4 => "\"[A-D]{1,2}\"",
                        1 => proptest::prelude::Just("\"A\\u0007\"".to_string()),
                    ],
                    proptest::collection::vec(
                        proptest::prop_oneof![
                            6 => (0u8..4, 0u8..4).prop_map(|(a, b)| format!("\"10.{a}.{b}.0/24\"")),
                            1 => proptest::prelude::Just("\"10.0.0.1/24\"".to_string()),
                            1 => proptest::prelude::Just("\"2603:1000::/40\"".to_string()),
                            1 => proptest::prelude::Just("\"10.0.0.0\\/8\"".to_string()),
                            1 => proptest::prelude::Just("\"x\"".to_string()),
                            1 => proptest::prelude::Just("7".to_string()),
                        ],
                        0..6,
                    )
                    .prop_map(|list| format!("[{}]", list.join(","))),
                ),
                1..12,
            ),
            not_a_list in proptest::prelude::any::<bool>(),
            shape in 0usize..7,
        ) {
            let mut tags = tags;
            if not_a_list {
                let middle = tags.len() / 2;
                tags[middle].1 = "{}".into();
            }
            let text = file_of(&tags);
            // The top level as Microsoft writes it, and shapes the overlapped reading leaves
            // to the parse on one thread: a field twice or missing, an escaped key, the struct
            // as an array, an unknown field.
            let values = &text[text.find("[").unwrap()..text.len() - 1];
            let text = match shape {
                1 => text.replacen("{", "{\"cloud\": \"China\", ", 1),
                2 => text.replacen("\"changeNumber\": 1, ", "", 1),
                3 => text.replacen("\"cloud\"", "\"\\u0063loud\"", 1),
                4 => format!("[1, \"Public\", {values}]"),
                5 => text.replacen("{", "{\"extra\": {\"values\": [1]}, ", 1),
                6 => text.replacen("\"values\"", "\"values\": [], \"values\"", 1),
                _ => text,
            };
            let one = format!("{:?}", parse(text.as_bytes(), None));
            let two = format!("{:?}", parse_in_two(text.as_bytes(), None));
            proptest::prop_assert_eq!(two, one, "{}", text);
        }

        /// Any string in any field of a tag: parsed or refused, never a panic.
        #[test]
        fn any_text_in_fields_parses_or_fails_cleanly(text in "\\PC{0,40}|[\\x00-\\x{10ffff}]{0,20}") {
            let quoted = serde_json::to_string(&text).unwrap();
            for field in ["\"Alpha\"", "\"westeurope\"", "\"1.0.0.0/24\""] {
                let _ = parse(GOOD.replacen(field, &quoted, 1).as_bytes(), None);
            }
        }

        /// The one-pass scan of an `addressPrefixes` array takes nothing serde's reading would
        /// make anything else of: where it gives prefixes, serde gives the same ones and no
        /// error. Elements: prefixes as Microsoft writes them (with and without host bits),
        /// escaped, uppercase or damaged ones, numbers and `null`; JSON whitespace and stray
        /// bytes between them.
        #[test]
        fn the_prefix_scan_agrees_with_serde(
            elements in proptest::collection::vec(
                proptest::prop_oneof![
                    (proptest::prelude::any::<u32>(), 0u8..=32).prop_map(|(a, l): (u32, u8)| {
                        format!("\"{}/{l}\"", std::net::Ipv4Addr::from(a))
                    }),
                    (proptest::prelude::any::<u32>(), 0u8..=32).prop_map(|(a, l): (u32, u8)| {
                        let net = ipnet::Ipv4Net::new(a.into(), l).unwrap().trunc();
                        format!("\"{net}\"")
                    }),
                    (proptest::prelude::any::<u128>(), 0u8..=128).prop_map(|(a, l): (u128, u8)| {
                        let net = ipnet::Ipv6Net::new(a.into(), l).unwrap().trunc();
                        format!("\"{net}\"")
                    }),
                    proptest::prelude::Just("\"10.0.0.0\\/8\"".to_string()),
                    proptest::prelude::Just("\"\\u0031.0.0.0/8\"".to_string()),
                    proptest::prelude::Just("\"2001:DB8::/32\"".to_string()),
                    "\"[0-9a-f.:/\\\\\"]{0,12}\"",
                    "[0-9nul]{1,4}",
                ],
                0..6,
            ),
            spaces in proptest::collection::vec("[ \t\r\n]{0,2}|[,\\]x\u{a0}]", 8),
        ) {
            let mut text = format!("{}[", spaces[0]);
            for (k, e) in elements.iter().enumerate() {
                if k > 0 {
                    text.push(',');
                }
                text.push_str(&spaces[1 + k % 6]);
                text.push_str(e);
            }
            text.push_str(&format!("{}]{}", spaces[7], spaces[6]));
            if let Some(nets) = scan_prefixes(text.as_bytes()) {
                let read = serde_json::from_str::<Prefixes>(&text);
                proptest::prop_assert!(read.is_ok(), "{text}: serde refuses it");
                let read = read.unwrap();
                proptest::prop_assert_eq!(read.first_error, None, "{}", text);
                proptest::prop_assert_eq!(nets, read.nets, "{}", text);
            }
        }
    }
}
