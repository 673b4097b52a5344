//! The canonical JSON rendering of a snapshot and the content hash built on it.
//!
//! [`render`] writes a snapshot the way Microsoft lays its files out (two-space indentation, the
//! same key order) with tags sorted by name and prefixes sorted. It serves three purposes:
//! `tagwall export`, the content hash that identifies a snapshot ([`content_sha256`]), and the base
//! against which the original bytes are delta-compressed in the store (`crate::store::rawcodec`).
//!
//! **This rendering is frozen.** Stored originals can only be decompressed against exactly the
//! bytes this function produced when they were stored. A different rendering needs a new
//! [`RENDER_VERSION`], with the old one kept for old rows.

use std::io::Write;

use ipnet::IpNet;

use crate::core::model::{NetworkFeatures, ServiceTag, Snapshot};

/// The version of the rendering below; stored with every original so it can be decoded.
pub const RENDER_VERSION: i64 = 1;

/// The layout details in which original files differ from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Lines end with CRLF rather than LF.
    pub crlf: bool,
    /// The file starts with a UTF-8 byte order mark.
    pub bom: bool,
}

impl Style {
    /// The style of an original file's bytes.
    pub fn detect(raw: &[u8]) -> Style {
        Style {
            crlf: raw.windows(2).take(4096).any(|w| w == b"\r\n"),
            bom: raw.starts_with(b"\xEF\xBB\xBF"),
        }
    }

    /// The style as stored: bit 0 CRLF, bit 1 BOM.
    pub fn bits(self) -> i64 {
        i64::from(self.crlf) | (i64::from(self.bom) << 1)
    }

    /// The inverse of [`Style::bits`].
    pub fn from_bits(bits: i64) -> Style {
        Style {
            crlf: bits & 1 != 0,
            bom: bits & 2 != 0,
        }
    }
}

/// Renders the snapshot as ServiceTags JSON in canonical order, in `style`: straight into the
/// style's line endings. From a plain rendering already made, [`restyle`] is quicker.
pub fn render(snapshot: &Snapshot, style: Style) -> Vec<u8> {
    let mut w = Renderer {
        out: super::buffers::take(64 + snapshot.prefix_count() * 35 + snapshot.tags.len() * 420),
        crlf: style.crlf,
    };
    if style.bom {
        w.out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    w.raw("{");
    w.key(1, "changeNumber");
    w.int(snapshot.change_number, true);
    w.key(1, "cloud");
    w.string(snapshot.cloud.name(), true);
    w.key(1, "values");
    w.raw("[");
    for (i, tag) in snapshot.tags.iter().enumerate() {
        w.tag(tag, i + 1 == snapshot.tags.len());
    }
    w.line(1, "]");
    w.line(0, "}");
    w.out
}

/// The LF rendering without byte order mark, in which snapshots are hashed.
pub fn render_plain(snapshot: &Snapshot) -> Vec<u8> {
    render(snapshot, Style::default())
}

/// The rendering in `style` of the snapshot whose plain rendering is `plain`: exactly
/// `render(snapshot, style)`, a third of its time. Every line break of a rendering is one
/// [`Renderer::newline`] writes (values never hold one), so CRLF is a CR before each LF.
pub fn restyle(plain: &[u8], style: Style) -> Vec<u8> {
    let breaks = if style.crlf {
        memchr::memchr_iter(b'\n', plain).count()
    } else {
        0
    };
    let mut out = super::buffers::take(3 + plain.len() + breaks);
    if style.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    if !style.crlf {
        out.extend_from_slice(plain);
        return out;
    }
    let mut from = 0;
    for at in memchr::memchr_iter(b'\n', plain) {
        out.extend_from_slice(&plain[from..at]);
        out.extend_from_slice(b"\r\n");
        from = at + 1;
    }
    out.extend_from_slice(&plain[from..]);
    out
}

/// sha256 of the canonical LF rendering: the identity of a snapshot's content within its cloud.
pub fn content_sha256(snapshot: &Snapshot) -> String {
    super::digest::sha256_hex(&render_plain(snapshot))
}

/// Writes straight into one buffer: no allocation per value.
struct Renderer {
    out: Vec<u8>,
    /// Lines end in CRLF (else LF). Every line break of a rendering is written by
    /// [`Renderer::newline`]: values never hold one (`quote_into` escapes it).
    crlf: bool,
}

impl Renderer {
    fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn newline(&mut self, depth: usize) {
        if self.crlf {
            self.out.push(b'\r');
        }
        self.out.push(b'\n');
        self.out.resize(self.out.len() + 2 * depth, b' ');
    }

    fn line(&mut self, depth: usize, s: &str) {
        self.newline(depth);
        self.raw(s);
    }

    /// A new line with `"key": `.
    fn key(&mut self, depth: usize, key: &str) {
        self.newline(depth);
        self.out.push(b'"');
        self.raw(key);
        self.raw("\": ");
    }

    fn comma(&mut self, comma: bool) {
        if comma {
            self.out.push(b',');
        }
    }

    fn int(&mut self, n: i64, comma: bool) {
        let _ = write!(self.out, "{n}");
        self.comma(comma);
    }

    fn string(&mut self, s: &str, comma: bool) {
        quote_into(&mut self.out, s);
        self.comma(comma);
    }

    fn tag(&mut self, tag: &ServiceTag, last: bool) {
        let m = &tag.meta;
        self.line(2, "{");
        self.key(3, "name");
        self.string(&tag.name, true);
        self.key(3, "id");
        self.string(&m.id, true);
        self.key(3, "properties");
        self.raw("{");
        self.key(4, "changeNumber");
        self.int(m.change_number, true);
        self.key(4, "region");
        self.string(&m.region, true);
        if let Some(id) = m.region_id {
            self.key(4, "regionId");
            self.int(id, true);
        }
        self.key(4, "platform");
        self.string(&m.platform, true);
        self.key(4, "systemService");
        self.string(&m.system_service, true);
        let more = m.network_features != NetworkFeatures::Absent;
        self.key(4, "addressPrefixes");
        self.array(4, &tag.prefixes, more, |out, p| {
            out.push(b'"');
            write_prefix(out, p);
            out.push(b'"');
        });
        match &m.network_features {
            NetworkFeatures::Absent => {}
            NetworkFeatures::Null => self.line(4, "\"networkFeatures\": null"),
            NetworkFeatures::List(list) => {
                self.key(4, "networkFeatures");
                self.array(4, list, false, |out, f| quote_into(out, f));
            }
        }
        self.line(3, "}");
        self.line(2, if last { "}" } else { "}," });
    }

    fn array<T>(
        &mut self,
        depth: usize,
        items: &[T],
        comma: bool,
        item: impl Fn(&mut Vec<u8>, &T),
    ) {
        if items.is_empty() {
            self.raw("[]");
        } else {
            self.raw("[");
            for (i, x) in items.iter().enumerate() {
                self.newline(depth + 1);
                item(&mut self.out, x);
                self.comma(i + 1 < items.len());
            }
            self.newline(depth);
            self.raw("]");
        }
        self.comma(comma);
    }
}

/// Writes a prefix as `Display` does, with a fast path for IPv4 (most of every file).
fn write_prefix(out: &mut Vec<u8>, net: &IpNet) {
    match net {
        IpNet::V4(n) => {
            for (i, octet) in n.addr().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_small(out, octet);
            }
            out.push(b'/');
            write_small(out, n.prefix_len());
        }
        IpNet::V6(n) => {
            write_ipv6(out, &n.addr());
            out.push(b'/');
            write_small(out, n.prefix_len());
        }
    }
}

/// Writes an IPv6 address exactly as `Display` does (RFC 5952: lowercase, no leading zeros, the
/// longest run of two or more zero groups — the first of equal runs — as `::`), without the
/// formatter's cost. Addresses whose first five groups are zero (IPv4-mapped and the like, which
/// `Display` may write with a dotted quad) go through `Display` itself.
fn write_ipv6(out: &mut Vec<u8>, addr: &std::net::Ipv6Addr) {
    let groups = addr.segments();
    if groups[..5].iter().all(|&g| g == 0) {
        let _ = write!(out, "{addr}");
        return;
    }
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |out: &mut Vec<u8>, part: &[u16]| {
        for (i, &g) in part.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            write_hex(out, g);
        }
    };
    if best_len >= 2 {
        hex(out, &groups[..best]);
        out.extend_from_slice(b"::");
        hex(out, &groups[best + best_len..]);
    } else {
        hex(out, &groups);
    }
}

/// Writes a group in lowercase hex without leading zeros.
fn write_hex(out: &mut Vec<u8>, g: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let d = (g >> shift) & 0xf;
        if d != 0 || started || shift == 0 {
            out.push(DIGITS[d as usize]);
            started = true;
        }
    }
}

/// Writes 0..=255 in decimal.
fn write_small(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

/// Writes a JSON string literal. Written by hand so the rendering cannot drift with a dependency.
fn quote_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Nothing to escape (every name Microsoft has used): the bytes as they are.
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parse::parse;

    const FILE: &str = "{\n  \"changeNumber\": 3,\n  \"cloud\": \"China\",\n  \"values\": [\n    {\n      \"name\": \"A\",\n      \"id\": \"A\",\n      \"properties\": {\n        \"changeNumber\": 1,\n        \"region\": \"\",\n        \"regionId\": 0,\n        \"platform\": \"Azure\",\n        \"systemService\": \"A\\\"q\",\n        \"addressPrefixes\": [\n          \"1.0.0.0/24\",\n          \"2402:1::/32\"\n        ],\n        \"networkFeatures\": [\n          \"API\",\n          \"NSG\"\n        ]\n      }\n    },\n    {\n      \"name\": \"B\",\n      \"id\": \"B\",\n      \"properties\": {\n        \"changeNumber\": 2,\n        \"region\": \"chinaeast\",\n        \"platform\": \"Azure\",\n        \"systemService\": \"\",\n        \"addressPrefixes\": []\n      }\n    }\n  ]\n}";

    proptest::proptest! {
        /// The hand-written IPv6 and string writers give `Display`'s and the escaping loop's
        /// bytes for any value: the rendering is frozen.
        #[test]
        fn fast_writers_match_the_reference(
            groups in proptest::array::uniform8(proptest::prop_oneof![
                proptest::prelude::Just(0u16), proptest::prelude::Just(0xffff), 0u16..0x20, proptest::prelude::any::<u16>()
            ]),
            len in 0u8..=128,
            text in "\\PC{0,12}|[ -~]{0,12}",
        ) {
            let addr = std::net::Ipv6Addr::from(groups);
            let net = IpNet::V6(ipnet::Ipv6Net::new(addr, len).unwrap());
            let mut out = Vec::new();
            write_prefix(&mut out, &net);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), net.to_string());
            let mut fast = Vec::new();
            quote_into(&mut fast, &text);
            let mut slow = b"\"".to_vec();
            for c in text.chars() {
                match c {
                    '"' => slow.extend_from_slice(b"\\\""),
                    '\\' => slow.extend_from_slice(b"\\\\"),
                    '\n' => slow.extend_from_slice(b"\\n"),
                    '\r' => slow.extend_from_slice(b"\\r"),
                    '\t' => slow.extend_from_slice(b"\\t"),
                    c if (c as u32) < 0x20 => slow.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
                    c => slow.extend_from_slice(c.to_string().as_bytes()),
                }
            }
            slow.push(b'"');
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn renders_microsofts_layout_exactly() {
        let snap = parse(FILE.as_bytes(), None).unwrap().snapshot;
        assert_eq!(
            String::from_utf8(render(&snap, Style::default())).unwrap(),
            FILE
        );
    }

    #[test]
    fn style_changes_only_the_layout() {
        let snap = parse(FILE.as_bytes(), None).unwrap().snapshot;
        let style = Style {
            crlf: true,
            bom: true,
        };
        let out = render(&snap, style);
        let plain = render_plain(&snap);
        for other in [0, 1, 2, 3].map(Style::from_bits) {
            assert_eq!(restyle(&plain, other), render(&snap, other), "{other:?}");
        }
        assert_eq!(Style::detect(&out), style);
        assert_eq!(Style::from_bits(style.bits()), style);
        let mut expected = b"\xEF\xBB\xBF".to_vec();
        expected.extend_from_slice(FILE.replace('\n', "\r\n").as_bytes());
        assert_eq!(out, expected);
        assert_eq!(parse(&out, None).unwrap().snapshot, snap);
    }

    #[test]
    fn null_features_and_control_characters() {
        let text = FILE.replace(
            "\"networkFeatures\": [\n          \"API\",\n          \"NSG\"\n        ]",
            "\"networkFeatures\": null",
        );
        let snap = parse(text.as_bytes(), None).unwrap().snapshot;
        assert_eq!(
            String::from_utf8(render(&snap, Style::default())).unwrap(),
            text
        );
        let mut out = Vec::new();
        quote_into(&mut out, "a\u{1}b\tc");
        assert_eq!(out, b"\"a\\u0001b\\tc\"");
    }

    #[test]
    fn prefixes_are_written_as_display_writes_them() {
        for text in [
            "0.0.0.0/0",
            "1.2.3.4/32",
            "10.100.255.0/24",
            "255.255.255.255/32",
            "2603:1000:4::/47",
            "::/0",
        ] {
            let net: IpNet = text.parse().unwrap();
            let mut out = Vec::new();
            write_prefix(&mut out, &net);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn content_hash_ignores_order_and_layout() {
        let snap = parse(FILE.as_bytes(), None).unwrap().snapshot;
        let mut reordered = parse(FILE.replace('\n', "\r\n").as_bytes(), None)
            .unwrap()
            .snapshot;
        assert_eq!(content_sha256(&snap), content_sha256(&reordered));
        reordered.change_number = 4;
        assert_ne!(content_sha256(&snap), content_sha256(&reordered));
    }
}
