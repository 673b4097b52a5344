//! What changes in one ruleset's list between two allowlists, per family: first the addresses
//! the firewall newly allows and no longer allows (set differences of the two lists, as the
//! fewest CIDRs covering them exactly, each with the tags that hold it or held it), then the
//! entries (exactly the CIDR lines the firewall files hold, so aggregation and budgets included)
//! added and removed, each with the tags it comes from and its address count. Pure.
//!
//! The two differ: when Microsoft splits a block, 20.150.0.0/15 is removed and nine pieces of
//! it are added — 10 entries moved, while the firewall allows only one /24 less.

use chrono::NaiveDate;
use ipnet::IpNet;

use crate::core::aggregate;
use crate::core::ranges::{AddrSet, Family};
use crate::rules::allowlist::{Allowlist, Entry};

/// One entry added, removed or retiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The CIDR.
    pub cidr: IpNet,
    /// The tags with addresses in it (at the side it is on).
    pub tags: Vec<String>,
    /// Its address count.
    pub addresses: u128,
    /// For an entry kept only by the grace period (`keep_removed_days`), the first file date
    /// at which it leaves the list.
    pub retiring_until: Option<NaiveDate>,
}

/// Addresses one list allows and the other does not: one CIDR of the exact cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressChange {
    /// The CIDR.
    pub cidr: IpNet,
    /// Its address count.
    pub addresses: u128,
    /// The tags holding addresses in it, on the side that allows it (empty when that side is
    /// known only by its entries, or the addresses come from a budget or `include_cidrs`).
    pub tags: Vec<String>,
}

/// One family's changes, in address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyChanges {
    /// The family.
    pub family: Family,
    /// Addresses the newer list allows and the older does not.
    pub allowed: Vec<AddressChange>,
    /// Addresses the older list allows and the newer does not.
    pub disallowed: Vec<AddressChange>,
    /// Entries of the newer list only.
    pub added: Vec<Change>,
    /// Entries of the older list only.
    pub removed: Vec<Change>,
    /// Entries of the newer list that only the grace period keeps: "retiring until DATE".
    pub retiring: Vec<Change>,
}

/// One ruleset's part of a weekly report: what changes in its list between the report's two
/// snapshots, and whether that change is withheld now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesetReport {
    /// The ruleset.
    pub name: String,
    /// Per family, the entries added and removed.
    pub changes: Vec<FamilyChanges>,
    /// Why the guard withholds this snapshot's change, when it does.
    pub withheld: Option<Vec<String>>,
}

/// Every family of the ruleset (of either side), IPv4 first.
pub fn changes(before: &Allowlist, after: &Allowlist) -> Vec<FamilyChanges> {
    let mut families: Vec<Family> = before
        .sets
        .iter()
        .chain(&after.sets)
        .map(|s| s.family)
        .collect();
    families.sort();
    families.dedup();
    families
        .into_iter()
        .map(|family| FamilyChanges {
            family,
            allowed: addresses_only_in(after, &nets(before, family), family),
            disallowed: addresses_only_in(before, &nets(after, family), family),
            added: only_in(after, before, family),
            removed: only_in(before, after, family),
            retiring: retiring(after, family),
        })
        .collect()
}

/// Like [`changes`], against a list known only by its entries (a published directory whose
/// snapshot the store no longer holds): removed entries carry no tags.
pub fn changes_from_entries(before: &[IpNet], after: &Allowlist) -> Vec<FamilyChanges> {
    after
        .sets
        .iter()
        .map(|set| {
            let family = set.family;
            let old: std::collections::HashSet<IpNet> = before
                .iter()
                .filter(|n| Family::of(n) == family)
                .copied()
                .collect();
            let new: std::collections::HashSet<IpNet> = set.entries.iter().map(|e| e.net).collect();
            let mut removed: Vec<Change> = old
                .difference(&new)
                .map(|n| Change {
                    cidr: *n,
                    tags: Vec::new(),
                    addresses: size(n),
                    retiring_until: None,
                })
                .collect();
            removed.sort_by_key(|c| c.cidr);
            let added = set
                .entries
                .iter()
                .filter(|e| !old.contains(&e.net))
                .map(|e| change(after, e))
                .collect();
            let before_nets: Vec<IpNet> = old.iter().copied().collect();
            FamilyChanges {
                family,
                allowed: addresses_only_in(after, &before_nets, family),
                disallowed: untagged(address_difference(
                    family,
                    &before_nets,
                    &nets(after, family),
                )),
                added,
                removed,
                retiring: retiring(after, family),
            }
        })
        .collect()
}

impl FamilyChanges {
    /// Addresses newly allowed (saturating at 2^128 - 1).
    pub fn allowed_addresses(&self) -> u128 {
        total(&self.allowed)
    }

    /// Addresses no longer allowed.
    pub fn disallowed_addresses(&self) -> u128 {
        total(&self.disallowed)
    }
}

fn total(changes: &[AddressChange]) -> u128 {
    changes
        .iter()
        .fold(0u128, |n, c| n.saturating_add(c.addresses))
}

/// The entries of `a`'s `family` set.
fn nets(a: &Allowlist, family: Family) -> Vec<IpNet> {
    a.set(family)
        .map(|s| s.entries.iter().map(|e| e.net).collect())
        .unwrap_or_default()
}

/// The addresses of `a`'s `family` set outside `other`, each CIDR with `a`'s tags in it.
fn addresses_only_in(a: &Allowlist, other: &[IpNet], family: Family) -> Vec<AddressChange> {
    let cidrs = address_difference(family, &nets(a, family), other);
    let tags = a.tags_over(family, &cidrs);
    cidrs
        .into_iter()
        .zip(tags)
        .map(|(cidr, tags)| AddressChange {
            cidr,
            addresses: size(&cidr),
            tags,
        })
        .collect()
}

/// The fewest CIDRs covering exactly the addresses of `a` outside `b`.
fn address_difference(family: Family, a: &[IpNet], b: &[IpNet]) -> Vec<IpNet> {
    let a = AddrSet::from_prefixes(family, a);
    let b = AddrSet::from_prefixes(family, b);
    aggregate::exact(family, &a.minus(&b))
}

fn untagged(cidrs: Vec<IpNet>) -> Vec<AddressChange> {
    cidrs
        .into_iter()
        .map(|cidr| AddressChange {
            cidr,
            addresses: size(&cidr),
            tags: Vec::new(),
        })
        .collect()
}

/// The entries of `a`'s `family` set that `b`'s lacks.
fn only_in(a: &Allowlist, b: &Allowlist, family: Family) -> Vec<Change> {
    let Some(set) = a.set(family) else {
        return Vec::new();
    };
    let other: std::collections::HashSet<IpNet> = b
        .set(family)
        .map(|s| s.entries.iter().map(|e| e.net).collect())
        .unwrap_or_default();
    set.entries
        .iter()
        .filter(|e| !other.contains(&e.net))
        .map(|e| change(a, e))
        .collect()
}

/// The entries of `a`'s `family` set that only the grace period keeps.
fn retiring(a: &Allowlist, family: Family) -> Vec<Change> {
    a.set(family)
        .map(|set| {
            set.entries
                .iter()
                .filter(|e| e.retiring.is_some())
                .map(|e| change(a, e))
                .collect()
        })
        .unwrap_or_default()
}

fn change(a: &Allowlist, e: &Entry) -> Change {
    Change {
        cidr: e.net,
        tags: a.tag_names(e).into_iter().map(str::to_string).collect(),
        addresses: size(&e.net),
        retiring_until: e.retiring,
    }
}

/// Addresses in a CIDR.
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// The total of entries added and removed: "+3 / -1 entries" (", 2 retiring" when the grace
/// period keeps some).
pub fn summary(changes: &[FamilyChanges]) -> String {
    let (added, removed, retiring) = changes.iter().fold((0, 0, 0), |(a, r, k), f| {
        (a + f.added.len(), r + f.removed.len(), k + f.retiring.len())
    });
    counts_line(added, removed, retiring)
}

/// "+3 / -1 entries", with ", 2 retiring" when `retiring` is not 0.
pub fn counts_line(added: usize, removed: usize, retiring: usize) -> String {
    if retiring == 0 {
        format!("+{added} / -{removed} entries")
    } else {
        format!("+{added} / -{removed} entries, {retiring} retiring")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{fixtures, Cloud, NetworkFeatures, Snapshot};
    use crate::rules::grace::Retained;
    use crate::rules::ruleset::RulesetSpec;

    fn snapshot(tags: &[(&str, &[&str])]) -> Snapshot {
        Snapshot {
            cloud: Cloud::Public,
            change_number: 1,
            tags: tags
                .iter()
                .map(|(n, p)| fixtures::tag(n, "", "", NetworkFeatures::Null, p))
                .collect(),
        }
    }

    #[test]
    fn added_and_removed_entries_with_their_tags() {
        let spec: RulesetSpec = toml::from_str("name = \"r\"\ntags = [\"A\", \"B\"]\n").unwrap();
        let ruleset = spec.validate().unwrap();
        let week1 = snapshot(&[("A", &["10.0.0.0/24"]), ("B", &["2603::/48"])]);
        let week2 = snapshot(&[
            ("A", &["10.0.0.0/24", "10.0.1.0/24"]),
            ("B", &["10.9.0.0/16"]),
        ]);
        let info = fixtures::info(1, 6);
        let a = Allowlist::build(&ruleset, &week1, &info, &Retained::none()).unwrap();
        let b = Allowlist::build(&ruleset, &week2, &info, &Retained::none()).unwrap();
        let c = changes(&a, &b);
        assert_eq!(c.len(), 2);
        let v4 = &c[0];
        assert_eq!(v4.family, Family::V4);
        let added: Vec<(String, Vec<String>, u128)> = v4
            .added
            .iter()
            .map(|x| (x.cidr.to_string(), x.tags.clone(), x.addresses))
            .collect();
        assert_eq!(
            added,
            [
                ("10.0.0.0/23".to_string(), vec!["A".to_string()], 512),
                ("10.9.0.0/16".to_string(), vec!["B".to_string()], 65536),
            ]
        );
        assert_eq!(v4.removed[0].cidr.to_string(), "10.0.0.0/24");
        assert_eq!(c[1].removed[0].cidr.to_string(), "2603::/48");
        assert_eq!(c[1].removed[0].addresses, 1u128 << 80);
        assert_eq!(summary(&c), "+2 / -2 entries");
    }
}
