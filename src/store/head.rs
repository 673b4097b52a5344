//! The packed prefix lists of `head_prefixes`, and the set difference an append is made of.

use std::cmp::Ordering;

use ipnet::IpNet;

use crate::core::model::{decode_prefix, encode_prefix_into};

/// Packs sorted prefixes: each one's stored bytes preceded by their length.
pub(super) fn pack(prefixes: &[IpNet]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefixes.len() * 7);
    for p in prefixes {
        let enc = encode_prefix_into(p);
        out.push(enc.as_ref().len() as u8);
        out.extend_from_slice(enc.as_ref());
    }
    out
}

/// The inverse of [`pack`]; `None` if the bytes are not such a list.
pub(super) fn unpack(mut bytes: &[u8]) -> Option<Vec<IpNet>> {
    let mut out = Vec::with_capacity(bytes.len() / 6);
    while let Some((&len, rest)) = bytes.split_first() {
        let (item, rest) = rest.split_at_checked(usize::from(len))?;
        out.push(decode_prefix(item)?);
        bytes = rest;
    }
    Some(out)
}

/// Splits two sorted lists into (only in `before`, only in `after`).
pub(super) fn difference(before: &[IpNet], after: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        let order = match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) => b.cmp(a),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                removed.push(before[i]);
                i += 1;
            }
            Ordering::Greater => {
                added.push(after[j]);
                j += 1;
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn packs_and_unpacks_mixed_families() {
        let list = nets(&["1.0.0.0/8", "20.1.2.0/24", "2603:1000::/40"]);
        assert_eq!(unpack(&pack(&list)), Some(list));
        assert_eq!(unpack(&[]), Some(vec![]));
        assert_eq!(unpack(&[5, 1, 2]), None);
    }

    #[test]
    fn difference_of_sorted_lists() {
        let before = nets(&["1.0.0.0/8", "2.0.0.0/8", "4.0.0.0/8"]);
        let after = nets(&["2.0.0.0/8", "3.0.0.0/8", "4.0.0.0/8", "5.0.0.0/8"]);
        assert_eq!(
            difference(&before, &after),
            (nets(&["1.0.0.0/8"]), nets(&["3.0.0.0/8", "5.0.0.0/8"]))
        );
        assert_eq!(difference(&[], &after), (vec![], after.clone()));
    }
}
