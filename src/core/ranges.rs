//! Sets of addresses of one family as sorted, disjoint, non-adjacent inclusive ranges.
//!
//! The exact arithmetic behind address counts ("how many addresses did this week add?") and,
//! later, behind aggregation into the fewest CIDRs. IPv4 addresses live in the low 32 bits of the
//! `u128` values; a set never mixes families.

use ipnet::IpNet;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The name in settings, file names and JSON keys: `ipv4`, `ipv6`.
    pub fn key(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The family of a [`Family::key`] (`ipv6`; anything else is IPv4).
    pub fn from_key(key: &str) -> Family {
        if key == Family::V6.key() {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// The name in text for people: `IPv4`, `IPv6`.
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// An address count as people read it, with its unit: IPv4 as a number of addresses
    /// ("3072 addresses"); IPv6 in /64 networks ("65536 /64s", "0.25 /64s"), or /48 networks
    /// when those are over a billion, and small counts as addresses — never a 30-digit number.
    pub fn amount(self, n: u128) -> String {
        const SLASH64: u128 = 1 << 64;
        const SLASH48: u128 = 1 << 80;
        let unit = |n: u128, size: u128, name: &str| {
            if n == size {
                format!("1 {}", name.trim_end_matches('s'))
            } else if n.is_multiple_of(size) {
                format!("{} {name}", n / size)
            } else {
                let x = n as f64 / size as f64;
                let digits = if x >= 100.0 {
                    0
                } else if x >= 1.0 {
                    2
                } else {
                    4
                };
                let text = format!("{x:.digits$}");
                let text = if text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.')
                } else {
                    &text
                };
                format!("{text} {name}")
            }
        };
        let addresses = |n: u128| {
            if n == 1 {
                "1 address".to_string()
            } else {
                format!("{n} addresses")
            }
        };
        match self {
            Family::V4 => addresses(n),
            // Beside other IPv6 amounts in /64s, nothing reads best in the same unit.
            Family::V6 if n == 0 => "0 /64s".to_string(),
            Family::V6 if n >= SLASH48 * 1_000_000_000 => unit(n, SLASH48, "/48s"),
            Family::V6 if n >= SLASH64 / 10_000 => unit(n, SLASH64, "/64s"),
            Family::V6 => addresses(n),
        }
    }

    /// [`Family::amount`] of a count written as a decimal string (the JSON form).
    pub fn amount_text(self, n: &str) -> String {
        n.parse().map_or_else(|_| n.to_string(), |n| self.amount(n))
    }

    /// The family of a prefix.
    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// Parses `20.1.2.3` (a /32), `2603::1` (a /128) or a CIDR without host bits; the error names
/// the text and what to write.
pub fn parse_target(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("{text:?} is not an IP address or CIDR (e.g. 20.38.98.1 or 20.38.98.0/24)")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set: did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// The first and last address of a prefix, as integers.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// A set of addresses of one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    ranges: Vec<(u128, u128)>,
}

impl AddrSet {
    /// The addresses of `prefixes` of `family` (prefixes of the other family are ignored).
    pub fn from_prefixes<'a>(
        family: Family,
        prefixes: impl IntoIterator<Item = &'a IpNet>,
    ) -> AddrSet {
        let ranges: Vec<(u128, u128)> = prefixes
            .into_iter()
            .filter(|p| Family::of(p) == family)
            .map(bounds)
            .collect();
        AddrSet::from_ranges(ranges)
    }

    /// The addresses of inclusive ranges (in any order, overlapping or not).
    pub fn from_ranges(mut ranges: Vec<(u128, u128)>) -> AddrSet {
        ranges.sort_unstable();
        AddrSet {
            ranges: merge_sorted(ranges.into_iter()),
        }
    }

    /// The addresses of IPv4 ranges packed as `first << 32 | last` (in any order): half the
    /// memory of `(u128, u128)` pairs, and sorting the packed values sorts the ranges.
    pub fn from_packed_v4(mut packed: Vec<u64>) -> AddrSet {
        packed.sort_unstable();
        AddrSet {
            ranges: merge_sorted(
                packed
                    .into_iter()
                    .map(|p| (u128::from((p >> 32) as u32), u128::from(p as u32))),
            ),
        }
    }

    /// The addresses of every prefix, one set per family (IPv4, IPv6).
    pub fn of_all<'a>(prefixes: impl IntoIterator<Item = &'a IpNet>) -> (AddrSet, AddrSet) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for p in prefixes {
            let (lo, hi) = bounds(p);
            match p {
                IpNet::V4(_) => v4.push((lo as u64) << 32 | hi as u64),
                IpNet::V6(_) => v6.push((lo, hi)),
            }
        }
        (AddrSet::from_packed_v4(v4), AddrSet::from_ranges(v6))
    }

    /// The set as bytes: each range's first and last address, big-endian, 4 bytes each for
    /// IPv4 and 16 for IPv6. [`AddrSet::from_bytes`] reads it back.
    pub fn to_bytes(&self, family: Family) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ranges.len() * 2 * width_bytes(family));
        for &(lo, hi) in &self.ranges {
            for v in [lo, hi] {
                match family {
                    Family::V4 => out.extend_from_slice(&(v as u32).to_be_bytes()),
                    Family::V6 => out.extend_from_slice(&v.to_be_bytes()),
                }
            }
        }
        out
    }

    /// Reads [`AddrSet::to_bytes`]; `None` unless the bytes hold sorted, disjoint, non-adjacent
    /// ranges.
    pub fn from_bytes(family: Family, bytes: &[u8]) -> Option<AddrSet> {
        let w = width_bytes(family);
        if !bytes.len().is_multiple_of(2 * w) {
            return None;
        }
        let value = |b: &[u8]| -> u128 { b.iter().fold(0u128, |n, &x| n << 8 | u128::from(x)) };
        let ranges: Vec<(u128, u128)> = bytes
            .chunks_exact(2 * w)
            .map(|c| (value(&c[..w]), value(&c[w..])))
            .collect();
        let ordered = ranges.iter().all(|(lo, hi)| lo <= hi)
            && ranges
                .windows(2)
                .all(|p| p[0].1 < p[1].0 && p[1].0 - p[0].1 > 1);
        ordered.then_some(AddrSet { ranges })
    }

    /// The disjoint, non-adjacent ranges, in order.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// Whether every address of `net` is in the set (merged ranges: one range must hold it).
    pub fn covers(&self, net: &IpNet) -> bool {
        let (lo, hi) = bounds(net);
        let i = self.ranges.partition_point(|&(_, end)| end < lo);
        self.ranges.get(i).is_some_and(|&(a, b)| a <= lo && hi <= b)
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The number of addresses (an IPv6 set can hold up to 2^128, which does not fit: saturates).
    pub fn count(&self) -> u128 {
        self.ranges.iter().fold(0u128, |n, (lo, hi)| {
            n.saturating_add(hi - lo).saturating_add(1)
        })
    }

    /// The addresses in `self` but not in `other`.
    pub fn minus(&self, other: &AddrSet) -> AddrSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &(lo, hi) in &self.ranges {
            let mut start = lo;
            let mut open = true;
            while j < other.ranges.len() && other.ranges[j].1 < start {
                j += 1;
            }
            let mut k = j;
            while k < other.ranges.len() && other.ranges[k].0 <= hi {
                let (olo, ohi) = other.ranges[k];
                if olo > start {
                    out.push((start, olo - 1));
                }
                if ohi >= hi {
                    open = false;
                    break;
                }
                start = ohi + 1;
                k += 1;
            }
            if open {
                out.push((start, hi));
            }
        }
        AddrSet { ranges: out }
    }
}

fn width_bytes(family: Family) -> usize {
    match family {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

/// Merges sorted ranges that overlap or touch.
fn merge_sorted(sorted: impl Iterator<Item = (u128, u128)>) -> Vec<(u128, u128)> {
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (lo, hi) in sorted {
        match merged.last_mut() {
            // Overlapping or adjacent: extend (no overflow: `last.1 < lo` there).
            Some(last) if lo <= last.1 || lo - last.1 == 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_never_print_long_integers() {
        assert_eq!(Family::V4.amount(3072), "3072 addresses");
        assert_eq!(Family::V4.amount(1 << 32), "4294967296 addresses");
        assert_eq!(Family::V6.amount(4), "4 addresses");
        assert_eq!(Family::V6.amount(1 << 64), "1 /64");
        assert_eq!(Family::V6.amount(1 << 80), "65536 /64s");
        assert_eq!(Family::V6.amount(1 << 62), "0.25 /64s");
        assert_eq!(Family::V6.amount(1), "1 address");
        assert_eq!(Family::V6.amount((1 << 64) + (1 << 63)), "1.5 /64s");
        assert_eq!(Family::V6.amount(1 << 112), "4294967296 /48s");
        assert_eq!(Family::V6.amount(u128::MAX), "281474976710656 /48s");
        assert_eq!(
            Family::V6.amount_text("1208925819614629174706176"),
            "65536 /64s"
        );
        for shift in 0..128 {
            let text = Family::V6.amount(1u128 << shift);
            let longest = text
                .split(|c: char| !c.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap();
            assert!(longest <= 16, "{text}");
        }
    }
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent_prefixes() {
        let set = AddrSet::from_prefixes(
            Family::V4,
            &nets(&[
                "10.0.0.0/24",
                "10.0.1.0/24",
                "10.0.0.128/25",
                "10.0.3.0/24",
                "2603::/16",
            ]),
        );
        assert_eq!(set.ranges().len(), 2);
        assert_eq!(set.count(), 768);
        let v6 = AddrSet::from_prefixes(Family::V6, &nets(&["2603::/16", "::/0"]));
        assert_eq!(v6.count(), u128::MAX, "2^128 saturates");
        let all = AddrSet::from_prefixes(Family::V4, &nets(&["0.0.0.0/0", "255.255.255.255/32"]));
        assert_eq!(all.count(), 1 << 32);
    }

    #[test]
    fn bytes_round_trip_and_damage_is_refused() {
        let all = nets(&["10.0.0.0/24", "10.0.2.0/23", "2603::/16", "2604::/128"]);
        let (v4, v6) = AddrSet::of_all(&all);
        assert_eq!(v4, AddrSet::from_prefixes(Family::V4, &all));
        assert_eq!(v6, AddrSet::from_prefixes(Family::V6, &all));
        for (f, set) in [(Family::V4, &v4), (Family::V6, &v6)] {
            let bytes = set.to_bytes(f);
            assert_eq!(AddrSet::from_bytes(f, &bytes).as_ref(), Some(set));
            assert!(AddrSet::from_bytes(f, &bytes[1..]).is_none());
        }
        let mut swapped = v4.to_bytes(Family::V4);
        swapped.rotate_left(8);
        assert!(AddrSet::from_bytes(Family::V4, &swapped).is_none());
    }

    #[test]
    fn minus_cuts_holes() {
        let a = AddrSet::from_prefixes(Family::V4, &nets(&["10.0.0.0/22"]));
        let b = AddrSet::from_prefixes(
            Family::V4,
            &nets(&["10.0.1.0/24", "10.0.3.128/25", "9.0.0.0/8"]),
        );
        let d = a.minus(&b);
        assert_eq!(d.count(), 1024 - 256 - 128);
        assert_eq!(d.ranges().len(), 2);
        assert!(b.minus(&b).is_empty());
        assert_eq!(a.minus(&AddrSet::default()), a);
    }

    /// Small prefixes inside 10.0.0.0/24, so that sets can be checked address by address.
    fn small_prefixes() -> impl Strategy<Value = Vec<IpNet>> {
        prop::collection::vec((0u8..=255, 26u8..=32), 0..12).prop_map(|v| {
            v.into_iter()
                .map(|(host, len)| {
                    IpNet::new(std::net::Ipv4Addr::new(10, 0, 0, host).into(), len)
                        .unwrap()
                        .trunc()
                })
                .collect()
        })
    }

    fn addresses(prefixes: &[IpNet]) -> BTreeSet<u128> {
        prefixes
            .iter()
            .flat_map(|p| {
                let (lo, hi) = bounds(p);
                lo..=hi
            })
            .collect()
    }

    proptest! {
        #[test]
        fn sets_match_address_by_address(a in small_prefixes(), b in small_prefixes()) {
            let (sa, sb) = (AddrSet::from_prefixes(Family::V4, &a), AddrSet::from_prefixes(Family::V4, &b));
            let (xa, xb) = (addresses(&a), addresses(&b));
            prop_assert_eq!(sa.count(), xa.len() as u128);
            prop_assert_eq!(sa.minus(&sb).count(), xa.difference(&xb).count() as u128);
            for w in sa.ranges().windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "ranges are disjoint and not adjacent");
            }
        }
    }
}
