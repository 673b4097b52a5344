//! The safety guard of `sync`: whether a ruleset's new content looks dangerous enough to hold
//! back (a truncated upstream file, a vanished tag, a flood of new addresses, an entry wider
//! than any Azure range). Pure: counts in, reasons out.

use std::fmt;

use crate::core::ranges::{AddrSet, Family};

/// Default: withhold when a ruleset would lose more than this share of a family's addresses.
pub const MAX_REMOVED_PERCENT: f64 = 10.0;
/// Default: withhold when the cloud's total prefix count drops more than this share.
pub const MAX_PREFIX_DROP_PERCENT: f64 = 20.0;
/// Default: withhold when a ruleset would gain more than this share of a family's addresses.
pub const MAX_ADDED_PERCENT: f64 = 25.0;
/// Default: withhold any IPv4 entry shorter than this (Azure has no range wider than a /8).
pub const MIN_PREFIX_V4: u8 = 8;
/// Default: withhold any IPv6 entry shorter than this.
pub const MIN_PREFIX_V6: u8 = 16;

/// The limits in force for one ruleset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest share (percent) of a family's addresses the ruleset may lose in one step.
    pub max_removed_percent: f64,
    /// Largest drop (percent) of the cloud's total prefix count.
    pub max_prefix_drop_percent: f64,
    /// Largest share (percent) of a family's addresses the ruleset may gain in one step.
    pub max_added_percent: f64,
    /// Shortest prefix length allowed in an entry: IPv4, IPv6.
    pub min_prefix_length: (u8, u8),
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_removed_percent: MAX_REMOVED_PERCENT,
            max_prefix_drop_percent: MAX_PREFIX_DROP_PERCENT,
            max_added_percent: MAX_ADDED_PERCENT,
            min_prefix_length: (MIN_PREFIX_V4, MIN_PREFIX_V6),
        }
    }
}

/// One side of the comparison: what the ruleset allowed (or would allow) and its snapshot.
#[derive(Debug, Clone)]
pub struct Side {
    /// The covered addresses, IPv4 and IPv6.
    pub sets: (AddrSet, AddrSet),
    /// The tags the ruleset selected.
    pub tags: Vec<String>,
    /// The (tag, prefix) pairs of the whole cloud snapshot.
    pub cloud_prefixes: i64,
}

/// Why a change was withheld.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Too many addresses would go.
    Removed {
        /// The family.
        family: Family,
        /// Addresses that would no longer be allowed.
        removed: u128,
        /// Addresses allowed before.
        before: u128,
        /// The limit (percent).
        limit: f64,
    },
    /// A tag the ruleset selected is gone from the cloud.
    TagVanished {
        /// Its name.
        tag: String,
    },
    /// Too many addresses would come.
    Added {
        /// The family.
        family: Family,
        /// Addresses that would newly be allowed.
        added: u128,
        /// Addresses allowed before.
        before: u128,
        /// The limit (percent).
        limit: f64,
    },
    /// An entry wider than `min_prefix_length`.
    TooWide {
        /// The entry.
        net: ipnet::IpNet,
        /// The shortest length allowed for its family.
        limit: u8,
    },
    /// The cloud's file shrank suspiciously.
    PrefixDrop {
        /// Pairs before.
        before: i64,
        /// Pairs after.
        after: i64,
        /// The limit (percent).
        limit: f64,
    },
}

fn percent(part: u128, whole: u128) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A share for people: "50.0%", or "over 10000%" (an IPv6 flood is 10^21 percent).
fn shown(p: f64) -> String {
    if p > 10_000.0 {
        "over 10000%".into()
    } else {
        format!("{p:.1}%")
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Removed { family, removed, before, limit } => write!(
                f,
                "{} would lose {} of {} ({}, limit {limit}%)",
                family.label(),
                family.amount(*removed),
                family.amount(*before),
                shown(percent(*removed, *before))
            ),
            Reason::Added { family, added, before, limit } => write!(
                f,
                "{} would gain {}, {} of the {} allowed before (limit {limit}%)",
                family.label(),
                family.amount(*added),
                shown(percent(*added, *before)),
                family.amount(*before)
            ),
            Reason::TooWide { net, limit } => write!(
                f,
                "the entry {net} is wider than /{limit} (min_prefix_length): no Azure range is that wide"
            ),
            Reason::TagVanished { tag } => {
                write!(f, "the selected tag {tag} is gone from the cloud's file")
            }
            Reason::PrefixDrop { before, after, limit } => write!(
                f,
                "the cloud's file shrank from {before} to {after} prefixes ({:.1}% fewer, limit {limit}%): it may be truncated",
                percent((before - after).max(0) as u128, (*before).max(0) as u128)
            ),
        }
    }
}

/// Every reason to withhold `after` given `before`; empty when the change is safe. `present`
/// says whether a tag name exists anywhere in the new snapshot.
pub fn check(
    limits: &Limits,
    before: &Side,
    after: &Side,
    present: &dyn Fn(&str) -> bool,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let dropped = before.cloud_prefixes - after.cloud_prefixes;
    if before.cloud_prefixes > 0
        && percent(dropped.max(0) as u128, before.cloud_prefixes as u128)
            > limits.max_prefix_drop_percent
    {
        reasons.push(Reason::PrefixDrop {
            before: before.cloud_prefixes,
            after: after.cloud_prefixes,
            limit: limits.max_prefix_drop_percent,
        });
    }
    for tag in &before.tags {
        if !present(tag) {
            reasons.push(Reason::TagVanished { tag: tag.clone() });
        }
    }
    for (family, old, new) in [
        (Family::V4, &before.sets.0, &after.sets.0),
        (Family::V6, &before.sets.1, &after.sets.1),
    ] {
        let removed = old.minus(new).count();
        let added = new.minus(old).count();
        let total = old.count();
        if percent(removed, total) > limits.max_removed_percent {
            reasons.push(Reason::Removed {
                family,
                removed,
                before: total,
                limit: limits.max_removed_percent,
            });
        }
        if total > 0 && percent(added, total) > limits.max_added_percent {
            reasons.push(Reason::Added {
                family,
                added,
                before: total,
                limit: limits.max_added_percent,
            });
        }
    }
    reasons
}

/// The entries shorter than `min_prefix_length`, widest first, at most `MAX_LISTED`: checked on
/// every publish, the first one too.
pub fn too_wide<'a>(
    limits: &Limits,
    nets: impl IntoIterator<Item = &'a ipnet::IpNet>,
) -> Vec<Reason> {
    const MAX_LISTED: usize = 5;
    let mut wide: Vec<Reason> = nets
        .into_iter()
        .filter_map(|net| {
            let limit = match net {
                ipnet::IpNet::V4(_) => limits.min_prefix_length.0,
                ipnet::IpNet::V6(_) => limits.min_prefix_length.1,
            };
            (net.prefix_len() < limit).then_some(Reason::TooWide { net: *net, limit })
        })
        .collect();
    wide.sort_by_key(|r| match r {
        Reason::TooWide { net, .. } => net.prefix_len(),
        _ => u8::MAX,
    });
    wide.truncate(MAX_LISTED);
    wide
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;

    fn side(nets: &[&str], tags: &[&str], cloud_prefixes: i64) -> Side {
        let nets: Vec<IpNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
        Side {
            sets: AddrSet::of_all(&nets),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            cloud_prefixes,
        }
    }

    #[test]
    fn small_changes_pass_and_each_danger_is_named() {
        let limits = Limits::default();
        let all = |_: &str| true;
        let before = side(
            &["10.0.0.0/24", "10.0.1.0/24", "2603::/64"],
            &["AzureCloud"],
            1000,
        );
        // Losing 10.0.1.0/28 (16 of 512 addresses, 3.1%) and gaining some: fine.
        let after = side(
            &[
                "10.0.0.0/24",
                "10.0.1.16/28",
                "10.0.1.32/27",
                "10.0.1.64/26",
                "10.0.1.128/25",
                "10.9.0.0/26",
                "2603::/64",
            ],
            &["AzureCloud"],
            990,
        );
        assert_eq!(check(&limits, &before, &after, &all), []);

        let shrunk = side(&["10.0.0.0/24"], &["AzureCloud"], 700);
        let reasons = check(&limits, &before, &shrunk, &|t| t != "AzureCloud");
        let text: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "the cloud's file shrank from 1000 to 700 prefixes (30.0% fewer, limit 20%): it may be truncated",
                "the selected tag AzureCloud is gone from the cloud's file",
                "IPv4 would lose 256 addresses of 512 addresses (50.0%, limit 10%)",
                "IPv6 would lose 1 /64 of 1 /64 (100.0%, limit 10%)",
            ]
        );
        // Exactly at the limit passes.
        let limits = Limits {
            max_removed_percent: 50.0,
            max_prefix_drop_percent: 30.0,
            ..Limits::default()
        };
        let v4_only = side(&["10.0.0.0/24"], &["AzureCloud"], 700);
        let before_v4 = side(&["10.0.0.0/24", "10.0.1.0/24"], &["AzureCloud"], 1000);
        assert_eq!(check(&limits, &before_v4, &v4_only, &all), []);
    }

    #[test]
    fn additions_and_wide_entries_are_named() {
        let limits = Limits::default();
        let all = |_: &str| true;
        let before = side(&["10.0.0.0/24", "2603::/64"], &["AzureCloud"], 1000);
        // +64 of 256 (25%): at the limit, fine; +65 is over it.
        let at_limit = side(
            &["10.0.0.0/24", "10.0.1.0/26", "2603::/64"],
            &["AzureCloud"],
            1000,
        );
        assert_eq!(check(&limits, &before, &at_limit, &all), []);
        let flood = side(&["0.0.0.0/0", "::/0"], &["AzureCloud"], 1000);
        let text: Vec<String> = check(&limits, &before, &flood, &all)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "IPv4 would gain 4294967040 addresses, over 10000% of the 256 addresses allowed before (limit 25%)",
                "IPv6 would gain 281474976710656 /48s, over 10000% of the 1 /64 allowed before (limit 25%)",
            ]
        );
        let nets: Vec<ipnet::IpNet> = [
            "0.0.0.0/0",
            "8.0.0.0/7",
            "9.0.0.0/8",
            "2600::/12",
            "2603::/16",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        let text: Vec<String> = too_wide(&limits, &nets)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "the entry 0.0.0.0/0 is wider than /8 (min_prefix_length): no Azure range is that wide",
                "the entry 8.0.0.0/7 is wider than /8 (min_prefix_length): no Azure range is that wide",
                "the entry 2600::/12 is wider than /16 (min_prefix_length): no Azure range is that wide",
            ]
        );
    }
}
