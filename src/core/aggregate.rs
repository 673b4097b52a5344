//! Aggregation of address sets into CIDR lists. Pure: no I/O.
//!
//! - [`exact`]: the fewest CIDRs covering exactly a set of addresses. Each maximal range is cut
//!   greedily into the largest aligned blocks, which is optimal for one range, and ranges of an
//!   [`AddrSet`] are disjoint and non-adjacent, so no CIDR can span two of them.
//! - [`budgeted`]: at most `budget` CIDRs covering the set while adding the fewest addresses
//!   outside it. Dynamic programming over the binary trie of the exact CIDRs: for each trie node
//!   and each k, the least extra addresses with which k CIDRs inside the node cover its part of the
//!   set. A cover CIDR can always be shrunk to the trie node spanning the same set addresses, so
//!   the optimum is among trie nodes. Cost is O(n · budget) for n exact CIDRs.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::core::ranges::{AddrSet, Family};

/// The number of address bits of a family.
pub fn width(family: Family) -> u8 {
    match family {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

/// The prefix with network address `lo` and length `len` (`lo` must have no host bits).
pub fn cidr(family: Family, lo: u128, len: u8) -> IpNet {
    match family {
        // The value fits: IPv4 addresses live in the low 32 bits.
        Family::V4 => IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(lo as u32), len).expect("IPv4 prefix length <= 32"),
        ),
        Family::V6 => {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(lo), len).expect("IPv6 prefix length <= 128"))
        }
    }
}

/// The fewest CIDRs covering exactly the addresses of `set`, in address order.
pub fn exact(family: Family, set: &AddrSet) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(set.ranges().len());
    for &(lo, hi) in set.ranges() {
        split_range(family, lo, hi, &mut out);
    }
    out
}

/// Cuts `lo..=hi` into the largest aligned blocks, in order.
fn split_range(family: Family, lo: u128, hi: u128, out: &mut Vec<IpNet>) {
    let w = u32::from(width(family));
    let mut start = lo;
    loop {
        // The largest block aligned at `start`...
        let align = if start == 0 {
            w
        } else {
            start.trailing_zeros().min(w)
        };
        // ...that does not pass `hi`: 2^bits <= hi - start + 1.
        let span = hi - start; // number of addresses minus one
        let fit = if span == u128::MAX {
            128
        } else {
            127 - (span + 1).leading_zeros()
        };
        let bits = align.min(fit);
        out.push(cidr(family, start, (w - bits) as u8));
        let last = start + ones(bits); // no overflow: the block ends at or before `hi`
        if last >= hi {
            return;
        }
        start = last + 1;
    }
}

/// A cover of a set by at most a given number of CIDRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgeted {
    /// The CIDRs, in address order, disjoint.
    pub entries: Vec<IpNet>,
    /// Addresses covered by `entries` that are not in the set.
    pub extra: u128,
}

/// At most `budget` CIDRs (at least 1) covering `set` with the fewest addresses outside it.
/// When the exact aggregation fits, it is returned with no extra addresses.
pub fn budgeted(family: Family, set: &AddrSet, budget: usize) -> Budgeted {
    let exact = exact(family, set);
    let budget = budget.max(1);
    if exact.len() <= budget {
        return Budgeted {
            entries: exact,
            extra: 0,
        };
    }
    let leaves: Vec<(u128, u8)> = exact
        .iter()
        .map(|n| (crate::core::ranges::bounds(n).0, n.prefix_len()))
        .collect();
    let trie = Trie::build(&leaves, width(family), budget);
    let mut entries = Vec::with_capacity(budget);
    trie.choose(trie.root, budget, &mut |lo, len| {
        entries.push(cidr(family, lo, len))
    });
    Budgeted {
        entries,
        extra: trie.nodes[trie.root].cost[budget.min(trie.nodes[trie.root].cost.len()) - 1],
    }
}

/// A node of the compressed binary trie over the exact CIDRs.
struct Node {
    lo: u128,
    len: u8,
    /// Children (`None` for a leaf, which is one exact CIDR).
    kids: Option<(usize, usize)>,
    /// `cost[k-1]`: the fewest extra addresses with at most k CIDRs, for k up to
    /// `min(leaves, budget)`; non-increasing, and 0 at k = leaves.
    cost: Vec<u128>,
}

struct Trie {
    nodes: Vec<Node>,
    root: usize,
    width: u8,
}

impl Trie {
    fn build(leaves: &[(u128, u8)], width: u8, budget: usize) -> Trie {
        let mut trie = Trie {
            nodes: Vec::with_capacity(2 * leaves.len()),
            root: 0,
            width,
        };
        trie.root = trie.node(leaves, budget).0;
        trie
    }

    /// Builds the subtree over `leaves` (sorted, disjoint); returns its index and set size - 1.
    fn node(&mut self, leaves: &[(u128, u8)], budget: usize) -> (usize, u128) {
        let w = u32::from(self.width);
        if let [(lo, len)] = leaves {
            let size_minus_one = ones(w - u32::from(*len));
            self.nodes.push(Node {
                lo: *lo,
                len: *len,
                kids: None,
                cost: vec![0],
            });
            return (self.nodes.len() - 1, size_minus_one);
        }
        // The longest common prefix of the first and last leaf: the node's block. The two differ
        // at bit `len`, so the split below leaves both halves non-empty.
        let (first, last) = (leaves[0].0, leaves[leaves.len() - 1].0);
        let shift = 128 - w; // IPv4 values sit in the low bits
        let len = ((first ^ last) << shift).leading_zeros() as u8;
        let host = w - u32::from(len);
        let lo = first & !ones(host);
        let half = lo | (1u128 << (host - 1));
        let split = leaves.partition_point(|(l, _)| *l < half);
        let (left, lcount) = self.node(&leaves[..split], budget);
        let (right, rcount) = self.node(&leaves[split..], budget);
        // count - 1 of the union (the halves are disjoint, each holds at least one address).
        let count_minus_one = lcount + rcount + 1;
        let whole = ones(host) - count_minus_one; // extra addresses of covering the node whole
        let (lc, rc) = (&self.nodes[left].cost, &self.nodes[right].cost);
        let n = leaves.len().min(budget);
        let mut cost = vec![whole; n];
        for k in 2..=n {
            let mut best = whole.min(cost[k - 2]);
            for i in k.saturating_sub(rc.len()).max(1)..=lc.len().min(k - 1) {
                best = best.min(lc[i - 1].saturating_add(rc[k - i - 1]));
            }
            cost[k - 1] = best;
        }
        self.nodes.push(Node {
            lo,
            len,
            kids: Some((left, right)),
            cost,
        });
        (self.nodes.len() - 1, count_minus_one)
    }

    /// Emits the best cover of node `at` with at most `k` CIDRs.
    fn choose(&self, at: usize, k: usize, emit: &mut impl FnMut(u128, u8)) {
        let node = &self.nodes[at];
        let Some((left, right)) = node.kids else {
            return emit(node.lo, node.len);
        };
        let k = k.min(node.cost.len());
        let target = node.cost[k - 1];
        let whole = node.cost[0];
        if k >= 2 && target < whole {
            let (lc, rc) = (&self.nodes[left].cost, &self.nodes[right].cost);
            for i in k.saturating_sub(rc.len()).max(1)..=lc.len().min(k - 1) {
                let j = (k - i).min(rc.len());
                if lc[i - 1].saturating_add(rc[j - 1]) == target {
                    self.choose(left, i, emit);
                    self.choose(right, j, emit);
                    return;
                }
            }
            // `cost[k-1]` may come from fewer CIDRs (the costs are non-increasing).
            return self.choose(at, k - 1, emit);
        }
        emit(node.lo, node.len)
    }
}

/// 2^bits - 1 (bits <= 128).
fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn union(family: Family, prefixes: &[IpNet]) -> AddrSet {
        AddrSet::from_prefixes(family, prefixes)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn text(list: &[IpNet]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn exact_merges_overlaps_and_neighbours_into_the_fewest_cidrs() {
        let set = union(
            Family::V4,
            &nets(&[
                "10.0.0.0/25",
                "10.0.0.128/25",
                "10.0.1.0/24",
                "10.0.0.64/26",
                "10.0.3.0/24",
                "10.0.4.0/24",
                "192.168.0.1/32",
            ]),
        );
        assert_eq!(
            text(&exact(Family::V4, &set)),
            [
                "10.0.0.0/23",
                "10.0.3.0/24",
                "10.0.4.0/24",
                "192.168.0.1/32"
            ]
        );
    }

    #[test]
    fn exact_handles_the_whole_address_space() {
        let all4 = union(Family::V4, &nets(&["0.0.0.0/1", "128.0.0.0/1"]));
        assert_eq!(text(&exact(Family::V4, &all4)), ["0.0.0.0/0"]);
        let all6 = union(Family::V6, &nets(&["::/1", "8000::/1"]));
        assert_eq!(text(&exact(Family::V6, &all6)), ["::/0"]);
        let top = union(
            Family::V6,
            &nets(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]),
        );
        assert_eq!(text(&exact(Family::V6, &top)).len(), 1);
    }

    #[test]
    fn budgeted_picks_the_cheapest_merges() {
        // Four /24s: two neighbours' blocks are cheap to join (one /23 gap-free after the first
        // pair), the far one is expensive.
        let set = union(
            Family::V4,
            &nets(&["10.0.0.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.9.0.0/24"]),
        );
        let b = budgeted(Family::V4, &set, 2);
        assert_eq!(text(&b.entries), ["10.0.0.0/22", "10.9.0.0/24"]);
        assert_eq!(b.extra, 256);
        let one = budgeted(Family::V4, &set, 1);
        assert_eq!(text(&one.entries), ["10.0.0.0/12"]);
        assert_eq!(one.extra, (1 << 20) - 4 * 256);
        let fits = budgeted(Family::V4, &set, 3);
        assert_eq!(fits.extra, 0);
        assert_eq!(fits.entries.len(), 3);
    }

    fn arb_set(family: Family) -> impl Strategy<Value = Vec<IpNet>> {
        // Prefixes packed into a small space so that merges and overlaps are common.
        prop::collection::vec((0u32..4096, 20u8..=32), 1..60).prop_map(move |v| {
            v.into_iter()
                .map(|(addr, len)| match family {
                    Family::V4 => {
                        let a = (addr << 8) & !ones(32 - u32::from(len)) as u32;
                        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), len).unwrap())
                    }
                    Family::V6 => {
                        let len = len + 96;
                        let a = (u128::from(addr) << 104) & !ones(128 - u32::from(len));
                        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap())
                    }
                })
                .collect()
        })
    }

    fn brute_best(family: Family, set: &AddrSet, budget: usize) -> u128 {
        // Every cover by trie nodes, by exhaustive recursion over the exact CIDRs (small inputs).
        fn go(family: Family, cidrs: &[IpNet], budget: usize) -> Option<u128> {
            if cidrs.is_empty() {
                return Some(0);
            }
            if budget == 0 {
                return None;
            }
            let mut best: Option<u128> = None;
            // Cover a run cidrs[..=j] by the smallest CIDR spanning it, if that CIDR holds no
            // later entry.
            for j in 0..cidrs.len() {
                let lo = bounds(&cidrs[0]).0;
                let hi = bounds(&cidrs[j]).1;
                let w = u32::from(width(family));
                let len = w - (128 - (lo ^ hi).leading_zeros());
                let block_lo = lo & !ones(w - len);
                let block_hi = block_lo | ones(w - len);
                if cidrs[j + 1..]
                    .iter()
                    .any(|c| bounds(c).0 <= block_hi && bounds(c).1 >= block_lo)
                    || cidrs[..1].iter().any(|c| bounds(c).0 < block_lo)
                {
                    continue;
                }
                let covered: u128 = cidrs[..=j]
                    .iter()
                    .map(|c| bounds(c).1 - bounds(c).0 + 1)
                    .sum();
                let extra = block_hi - block_lo + 1 - covered;
                if let Some(rest) = go(family, &cidrs[j + 1..], budget - 1) {
                    let total = extra + rest;
                    best = Some(best.map_or(total, |b| b.min(total)));
                }
            }
            best
        }
        use crate::core::ranges::bounds;
        go(family, &exact(family, set), budget).unwrap()
    }

    proptest! {
        #[test]
        fn exact_covers_exactly_without_overlap_and_is_idempotent(
            family in prop_oneof![Just(Family::V4), Just(Family::V6)],
            input in prop_oneof![arb_set(Family::V4), arb_set(Family::V6)],
        ) {
            let input: Vec<IpNet> = input.into_iter().filter(|p| Family::of(p) == family).collect();
            let set = union(family, &input);
            let out = exact(family, &set);
            prop_assert_eq!(&union(family, &out), &set);
            for w in out.windows(2) {
                prop_assert!(crate::core::ranges::bounds(&w[0]).1 < crate::core::ranges::bounds(&w[1]).0);
            }
            prop_assert_eq!(&exact(family, &union(family, &out)), &out);
            // Minimal: no two entries could be one CIDR.
            for w in out.windows(2) {
                prop_assert!(w[0].supernet() != w[1].supernet() || w[0].prefix_len() != w[1].prefix_len());
            }
        }

        #[test]
        fn budgeted_is_a_superset_within_budget_with_the_exact_extra_count(
            input in arb_set(Family::V4),
            budget in 1usize..8,
        ) {
            let set = union(Family::V4, &input);
            let b = budgeted(Family::V4, &set, budget);
            prop_assert!(b.entries.len() <= budget);
            let cover = union(Family::V4, &b.entries);
            prop_assert!(set.minus(&cover).is_empty(), "a set address is not covered");
            prop_assert_eq!(cover.minus(&set).count(), b.extra);
            prop_assert_eq!(cover.count(), set.count() + b.extra, "entries overlap");
            prop_assert_eq!(b.extra, brute_best(Family::V4, &set, budget));
        }

        #[test]
        fn budgeted_v6_is_a_superset_within_budget(input in arb_set(Family::V6), budget in 1usize..6) {
            let set = union(Family::V6, &input);
            let b = budgeted(Family::V6, &set, budget);
            prop_assert!(b.entries.len() <= budget);
            let cover = union(Family::V6, &b.entries);
            prop_assert!(set.minus(&cover).is_empty());
            prop_assert_eq!(cover.minus(&set).count(), b.extra);
        }
    }
}
