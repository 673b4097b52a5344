//! A ruleset applied to one snapshot: the entries each family's set holds, which tags each entry
//! comes from, and the counts and warnings that go into every output. Pure.

use chrono::NaiveDate;
use ipnet::IpNet;

use crate::core::aggregate;
use crate::core::model::{ServiceTag, Snapshot, SnapshotInfo};
use crate::core::ranges::{bounds, AddrSet, Family};
use crate::core::text::{is_plain_name, MAX_PLAIN_NAME};
use crate::rules::grace::Retained;
use crate::rules::ruleset::{broad_warning, is_broad_tag, Ruleset};
use crate::rules::select::SelectError;

/// A selected tag, as outputs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    /// Tag name.
    pub name: String,
    /// Its region ("" for global tags).
    pub region: String,
    /// Its systemService ("" for region-only tags).
    pub system_service: String,
}

/// One entry of a family's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The CIDR.
    pub net: IpNet,
    /// Indexes into [`Allowlist::tags`] of the tags with addresses in it.
    pub tags: Vec<u32>,
    /// `Some(day)` when the entry holds only prefixes Microsoft removed that the grace period
    /// keeps (`keep_removed_days`): it leaves the list with the first snapshot dated on or after
    /// `day`.
    pub retiring: Option<NaiveDate>,
}

/// One family's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilySet {
    /// The family.
    pub family: Family,
    /// The entries, in address order, disjoint.
    pub entries: Vec<Entry>,
    /// (tag, prefix) pairs selected before aggregation.
    pub prefixes: usize,
    /// Addresses of the selected tags (the union), with `include_cidrs` and `exclude_cidrs`
    /// applied.
    pub addresses: u128,
    /// Addresses the entries cover beyond the union (`Some` when the ruleset has a budget).
    pub extra: Option<u128>,
    /// (first address, last address, tag index) of every selected prefix and every prefix the
    /// grace period keeps, sorted: which tags hold an address.
    pub sources: Vec<(u128, u128, u32)>,
}

impl FamilySet {
    /// Addresses the entries cover.
    pub fn covered(&self) -> u128 {
        self.addresses.saturating_add(self.extra.unwrap_or(0))
    }
}

/// A ruleset's content at one snapshot.
#[derive(Debug, Clone)]
pub struct Allowlist<'r> {
    /// The ruleset.
    pub ruleset: &'r Ruleset,
    /// The snapshot.
    pub snapshot: SnapshotInfo,
    /// The selected tags, in name order, then (in name order) the tags that only removed
    /// prefixes kept by the grace period come from.
    pub tags: Vec<TagRef>,
    /// One set per family of the ruleset, IPv4 first.
    pub sets: Vec<FamilySet>,
    /// Things the people loading the files should know.
    pub warnings: Vec<String>,
    /// `tags` entries that matched nothing and were left out (`build_without_missing`).
    pub missing: Vec<String>,
}

impl<'r> Allowlist<'r> {
    /// Applies `ruleset` to `snapshot` (described by `info`).
    /// `retained`: the removed prefixes its grace period keeps ([`Retained::compute`]).
    pub fn build(
        ruleset: &'r Ruleset,
        snapshot: &Snapshot,
        info: &SnapshotInfo,
        retained: &Retained,
    ) -> Result<Allowlist<'r>, SelectError> {
        let tags = ruleset
            .selector
            .select(snapshot, &info.file_date.to_string())?;
        Ok(Allowlist::of_tags(ruleset, &tags, info, retained))
    }

    /// Like [`Allowlist::build`], but `tags` entries that match nothing are left out (and
    /// returned, with a warning in the allowlist) instead of failing: publishing without a tag
    /// that is gone from Microsoft's file, once a person said so.
    pub fn build_without_missing(
        ruleset: &'r Ruleset,
        snapshot: &Snapshot,
        info: &SnapshotInfo,
        retained: &Retained,
    ) -> Result<(Allowlist<'r>, Vec<String>), SelectError> {
        let (tags, missing) = ruleset.selector.select_present(snapshot)?;
        let mut a = Allowlist::of_tags(ruleset, &tags, info, retained);
        a.missing = missing.clone();
        if !missing.is_empty() {
            a.warnings.push(format!(
                "published without the tags entries that match nothing in the {} snapshot of {}: {} (remove them from the ruleset)",
                info.cloud,
                info.file_date,
                missing
                    .iter()
                    .map(|m| crate::core::text::quoted(m, 64))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok((a, missing))
    }

    fn of_tags(
        ruleset: &'r Ruleset,
        tags: &[&ServiceTag],
        info: &SnapshotInfo,
        retained: &Retained,
    ) -> Allowlist<'r> {
        let refs = tag_refs(tags, retained);
        let kept = kept_spans(&refs, retained);
        let sets: Vec<FamilySet> = ruleset
            .families
            .iter()
            .map(|&family| family_set(ruleset, family, tags, &kept))
            .collect();
        let broad: Vec<&str> = tags
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| is_broad_tag(n))
            .collect();
        let mut warnings = Vec::new();
        if !broad.is_empty() {
            warnings.push(broad_warning(&broad));
        }
        let hidden = tags.iter().filter(|t| !is_plain_name(&t.name)).count();
        if hidden > 0 {
            warnings.push(format!(
                "{hidden} selected tag name(s) are not [A-Za-z0-9._-] or are over {MAX_PLAIN_NAME} bytes: \
                 the firewall files' comments leave them out (see {}.json for the names)",
                ruleset.name
            ));
        }
        warnings.extend(special_warning(tags));
        warnings.extend(budget_warnings(ruleset, &sets));
        warnings.extend(grace_warning(ruleset, retained));
        Allowlist {
            ruleset,
            snapshot: info.clone(),
            tags: refs,
            sets,
            warnings,
            missing: Vec::new(),
        }
    }

    /// The set of one family, if the ruleset emits it.
    pub fn set(&self, family: Family) -> Option<&FamilySet> {
        self.sets.iter().find(|s| s.family == family)
    }

    /// The names of the tags holding addresses in each of `nets` (of `family`, in address
    /// order).
    pub fn tags_over(&self, family: Family, nets: &[IpNet]) -> Vec<Vec<String>> {
        let Some(set) = self.set(family) else {
            return vec![Vec::new(); nets.len()];
        };
        overlapping(nets, &set.sources)
            .into_iter()
            .map(|ids| {
                ids.iter()
                    .map(|&i| self.tags[i as usize].name.clone())
                    .collect()
            })
            .collect()
    }

    /// The names of the tags of an entry.
    pub fn tag_names(&self, entry: &Entry) -> Vec<&str> {
        entry
            .tags
            .iter()
            .map(|&i| self.tags[i as usize].name.as_str())
            .collect()
    }
}

/// A removed prefix kept by the grace period: the prefix, its tag's index in the allowlist's
/// tags, and the day it leaves.
type Kept = (IpNet, u32, NaiveDate);

/// The selected tags, then the tags only kept prefixes come from.
fn tag_refs(tags: &[&ServiceTag], retained: &Retained) -> Vec<TagRef> {
    let mut refs: Vec<TagRef> = tags
        .iter()
        .map(|t| TagRef {
            name: t.name.clone(),
            region: t.meta.region.clone(),
            system_service: t.meta.system_service.clone(),
        })
        .collect();
    let mut gone: Vec<TagRef> = Vec::new();
    for r in &retained.prefixes {
        if !refs.iter().chain(&gone).any(|t| t.name == r.tag) {
            gone.push(TagRef {
                name: r.tag.clone(),
                region: r.region.clone(),
                system_service: r.system_service.clone(),
            });
        }
    }
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    refs.extend(gone);
    refs
}

fn kept_spans(refs: &[TagRef], retained: &Retained) -> Vec<Kept> {
    retained
        .prefixes
        .iter()
        .filter_map(|r| {
            let i = refs.iter().position(|t| t.name == r.tag)?;
            Some((r.net, i as u32, r.until))
        })
        .collect()
}

/// Whether a prefix may be allowed: not inside a special-purpose range (`core::special`).
fn usable(p: &IpNet) -> bool {
    crate::core::special::kind(p).is_none()
}

/// The special-purpose prefixes the selected tags list, left out of the lists.
fn special_warning(tags: &[&ServiceTag]) -> Option<String> {
    let found: Vec<String> = tags
        .iter()
        .flat_map(|t| t.prefixes.iter())
        .filter_map(crate::core::special::describe)
        .collect();
    if found.is_empty() {
        return None;
    }
    const SHOWN: usize = 5;
    let more = match found.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "left out {} special-purpose prefix(es) of the selected tags, which no firewall should allow as cloud addresses: {}{more}",
        found.len(),
        found[..found.len().min(SHOWN)].join(", ")
    ))
}

fn grace_warning(ruleset: &Ruleset, retained: &Retained) -> Option<String> {
    let last = retained.prefixes.iter().map(|r| r.until).max()?;
    Some(format!(
        "keep_removed_days = {}: {} prefix(es) Microsoft removed stay allowed for now (the last until {last})",
        ruleset.keep_removed_days,
        retained.prefixes.len()
    ))
}

fn family_set(ruleset: &Ruleset, family: Family, tags: &[&ServiceTag], kept: &[Kept]) -> FamilySet {
    // (first address, last address, tag index) of every selected prefix of the family.
    let mut spans: Vec<(u128, u128, u32)> = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        for p in tag
            .prefixes
            .iter()
            .filter(|p| Family::of(p) == family && usable(p))
        {
            let (lo, hi) = bounds(p);
            spans.push((lo, hi, i as u32));
        }
    }
    let prefixes = spans.len();
    let mut all: Vec<IpNet> = tags
        .iter()
        .flat_map(|t| {
            t.prefixes
                .iter()
                .filter(|p| Family::of(p) == family && usable(p))
                .copied()
        })
        .collect();
    let include: Vec<IpNet> = of_family(&ruleset.include_cidrs, family);
    let exclude = AddrSet::from_prefixes(family, &of_family(&ruleset.exclude_cidrs, family));
    let kept: Vec<&Kept> = kept
        .iter()
        .filter(|k| Family::of(&k.0) == family && usable(&k.0))
        .collect();
    // The list without the grace period: an entry outside it is retiring.
    let without = if kept.is_empty() {
        Vec::new()
    } else {
        list(ruleset, family, all.clone(), &include, &exclude).nets
    };
    for &&(net, tag, _) in &kept {
        let (lo, hi) = bounds(&net);
        spans.push((lo, hi, tag));
        all.push(net);
    }
    let List {
        nets,
        addresses,
        extra,
    } = list(ruleset, family, all, &include, &exclude);
    spans.sort_unstable();
    let mut entries = attribute(nets, &spans);
    if !kept.is_empty() {
        mark_retiring(&mut entries, &without, &kept);
    }
    FamilySet {
        family,
        entries,
        prefixes,
        addresses,
        extra,
        sources: spans,
    }
}

/// A family's list before its entries are attributed to tags.
struct List {
    nets: Vec<IpNet>,
    /// Addresses of the union (selection, inclusions, exclusions).
    addresses: u128,
    /// Addresses a budget adds.
    extra: Option<u128>,
}

/// The list `ruleset` makes of the prefixes `all` with its local exceptions.
fn list(
    ruleset: &Ruleset,
    family: Family,
    mut all: Vec<IpNet>,
    include: &[IpNet],
    exclude: &AddrSet,
) -> List {
    let union = if include.is_empty() && exclude.is_empty() {
        AddrSet::from_prefixes(family, &all)
    } else {
        let mut with = all.clone();
        with.extend(include);
        AddrSet::from_prefixes(family, &with).minus(exclude)
    };
    let addresses = union.count();
    let (nets, extra) = if let Some(budget) = ruleset.max_entries {
        let b = aggregate::budgeted(family, &union, budget);
        (b.entries, Some(b.extra))
    } else if ruleset.aggregate {
        (aggregate::exact(family, &union), None)
    } else {
        // Every distinct prefix as published; a prefix inside another stays, as asked.
        all.extend(include);
        all.sort_unstable();
        all.dedup();
        (all, None)
    };
    List {
        nets,
        addresses,
        extra,
    }
}

/// How much wider than the selection a budget makes the list, when it is more than tenfold.
const WIDE_BUDGET: u128 = 10;

fn budget_warnings(ruleset: &Ruleset, sets: &[FamilySet]) -> Vec<String> {
    let mut out = Vec::new();
    if !ruleset.include_cidrs.is_empty() || !ruleset.exclude_cidrs.is_empty() {
        out.push(format!(
            "local exceptions apply: {} include_cidrs, {} exclude_cidrs (entries from include_cidrs carry no tag)",
            ruleset.include_cidrs.len(),
            ruleset.exclude_cidrs.len()
        ));
    }
    for set in sets {
        if let Some(extra) = set.extra {
            if extra > set.addresses.saturating_mul(WIDE_BUDGET) {
                out.push(format!(
                    "max_entries = {} adds {extra} {} addresses beyond the {} selected, more than {WIDE_BUDGET}x: raise max_entries or narrow the tags",
                    ruleset.max_entries.unwrap_or(0),
                    set.family.label(),
                    set.addresses
                ));
            }
        }
    }
    out
}

fn of_family(nets: &[IpNet], family: Family) -> Vec<IpNet> {
    nets.iter()
        .filter(|n| Family::of(n) == family)
        .copied()
        .collect()
}

/// Pairs each entry with the tags whose prefixes overlap it.
fn attribute(nets: Vec<IpNet>, spans: &[(u128, u128, u32)]) -> Vec<Entry> {
    let tags = overlapping(&nets, spans);
    nets.into_iter()
        .zip(tags)
        .map(|(net, tags)| Entry {
            net,
            tags,
            retiring: None,
        })
        .collect()
}

/// For each of `nets` (in address order; they may nest), the indexes of the tags whose spans
/// (sorted) overlap it, sorted.
pub fn overlapping(nets: &[IpNet], spans: &[(u128, u128, u32)]) -> Vec<Vec<u32>> {
    let bounds_of: Vec<(u128, u128)> = nets.iter().map(bounds).collect();
    let mut tags: Vec<Vec<u32>> = vec![Vec::new(); nets.len()];
    // The largest last address among entries 0..=i: without aggregation entries may nest, so an
    // early wide entry can reach past later narrow ones.
    let reach: Vec<u128> = bounds_of
        .iter()
        .scan(0u128, |m, &(_, hi)| {
            *m = (*m).max(hi);
            Some(*m)
        })
        .collect();
    for &(lo, hi, tag) in spans.iter() {
        // Entries starting at or before `hi`, walked back while one of them can still reach `lo`.
        let mut k = bounds_of.partition_point(|&(elo, _)| elo <= hi);
        while k > 0 && reach[k - 1] >= lo {
            k -= 1;
            if bounds_of[k].1 >= lo && tags[k].last() != Some(&tag) {
                tags[k].push(tag);
            }
        }
    }
    for t in &mut tags {
        t.sort_unstable();
        t.dedup();
    }
    tags
}

/// Marks the entries the list would not hold without the grace period (`without`, sorted) as
/// retiring, on the day the kept prefix equal to them leaves (else the latest day among the kept
/// prefixes they overlap).
fn mark_retiring(entries: &mut [Entry], without: &[IpNet], kept: &[&Kept]) {
    for e in entries {
        if without.binary_search(&e.net).is_ok() {
            continue;
        }
        // The kept prefix itself decides (unaggregated lists), else every kept prefix in it.
        let exact = kept
            .iter()
            .filter(|(net, _, _)| *net == e.net)
            .map(|&&(_, _, until)| until)
            .max();
        let (lo, hi) = bounds(&e.net);
        e.retiring = exact.or_else(|| {
            kept.iter()
                .filter(|(net, _, _)| {
                    let (klo, khi) = bounds(net);
                    klo <= hi && lo <= khi
                })
                .map(|&&(_, _, until)| until)
                .max()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{fixtures, Cloud, NetworkFeatures};
    use crate::rules::ruleset::RulesetSpec;

    fn tag(name: &str, region: &str, prefixes: &[&str]) -> ServiceTag {
        fixtures::tag(name, region, "", NetworkFeatures::Absent, prefixes)
    }

    fn info() -> SnapshotInfo {
        fixtures::info(7, 6)
    }

    fn ruleset(extra: &str) -> Ruleset {
        let spec: RulesetSpec =
            toml::from_str(&format!("name = \"r\"\ntags = [\"AzureCloud*\"]\n{extra}")).unwrap();
        spec.validate().unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            cloud: Cloud::Public,
            change_number: 300,
            tags: vec![
                tag(
                    "AzureCloud",
                    "",
                    &[
                        "20.0.0.0/24",
                        "20.0.1.0/24",
                        "20.0.3.0/24",
                        "2603:1000::/40",
                    ],
                ),
                tag("AzureCloud.westeurope", "westeurope", &["20.0.1.0/25"]),
            ],
        }
    }

    #[test]
    fn exact_entries_carry_their_tags_and_counts() {
        let r = ruleset("");
        let a = Allowlist::build(&r, &snapshot(), &info(), &Retained::none()).unwrap();
        let v4 = a.set(Family::V4).unwrap();
        let got: Vec<(String, Vec<&str>)> = v4
            .entries
            .iter()
            .map(|e| (e.net.to_string(), a.tag_names(e)))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "20.0.0.0/23".to_string(),
                    vec!["AzureCloud", "AzureCloud.westeurope"]
                ),
                ("20.0.3.0/24".to_string(), vec!["AzureCloud"]),
            ]
        );
        assert_eq!((v4.prefixes, v4.addresses, v4.extra), (4, 768, None));
        assert_eq!(a.set(Family::V6).unwrap().entries.len(), 1);
        assert!(a.warnings[0].starts_with("AzureCloud, AzureCloud.westeurope are multi-tenant"));
    }

    #[test]
    fn budget_and_no_aggregation() {
        let r = ruleset("max_entries = 1\nfamilies = [\"ipv4\"]");
        let a = Allowlist::build(&r, &snapshot(), &info(), &Retained::none()).unwrap();
        let v4 = a.set(Family::V4).unwrap();
        assert_eq!(v4.entries[0].net.to_string(), "20.0.0.0/22");
        assert_eq!(v4.extra, Some(256));
        assert_eq!(v4.covered(), 1024);
        assert!(a.set(Family::V6).is_none());

        let r = ruleset("aggregate = false\nformats = [\"txt\"]");
        let a = Allowlist::build(&r, &snapshot(), &info(), &Retained::none()).unwrap();
        let v4 = a.set(Family::V4).unwrap();
        let got: Vec<(String, usize)> = v4
            .entries
            .iter()
            .map(|e| (e.net.to_string(), e.tags.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("20.0.0.0/24".to_string(), 1),
                ("20.0.1.0/24".to_string(), 2),
                ("20.0.1.0/25".to_string(), 2),
                ("20.0.3.0/24".to_string(), 1),
            ]
        );
    }

    #[test]
    fn local_exceptions_apply_after_selection() {
        let r = ruleset(
            "include_cidrs = [\"203.0.113.0/24\", \"2001:db8::/48\"]\nexclude_cidrs = [\"20.0.1.0/24\"]",
        );
        let snap = Snapshot {
            cloud: Cloud::Public,
            change_number: 1,
            tags: vec![tag("AzureCloud", "", &["20.0.0.0/22", "2603::/48"])],
        };
        let a = Allowlist::build(&r, &snap, &info(), &Retained::none()).unwrap();
        let v4: Vec<(String, Vec<&str>)> = a.sets[0]
            .entries
            .iter()
            .map(|e| (e.net.to_string(), a.tag_names(e)))
            .collect();
        assert_eq!(
            v4,
            [
                ("20.0.0.0/24".to_string(), vec!["AzureCloud"]),
                ("20.0.2.0/23".to_string(), vec!["AzureCloud"]),
                ("203.0.113.0/24".to_string(), vec![]),
            ]
        );
        assert_eq!(a.sets[0].addresses, 768 + 256);
        assert_eq!(a.sets[1].entries.len(), 2);
        assert!(
            a.warnings
                .iter()
                .any(|w| w.contains("local exceptions apply")),
            "{:?}",
            a.warnings
        );
        // A budget that widens the list more than tenfold is named.
        let r = ruleset("max_entries = 1");
        let snap = Snapshot {
            cloud: Cloud::Public,
            change_number: 1,
            tags: vec![tag("AzureCloud", "", &["20.0.0.0/24", "21.0.0.0/24"])],
        };
        let a = Allowlist::build(&r, &snap, &info(), &Retained::none()).unwrap();
        assert!(
            a.warnings.iter().any(|w| w.contains("more than 10x")),
            "{:?}",
            a.warnings
        );
    }

    #[test]
    fn exception_cidrs_are_checked() {
        for (extra, want) in [
            (
                "include_cidrs = [\"10.0.0.1/24\"]",
                "has host bits set: write 10.0.0.0/24",
            ),
            (
                "exclude_cidrs = [\"nope\"]",
                "exclude_cidrs: \"nope\" is not a CIDR",
            ),
            (
                "aggregate = false\nformats = [\"txt\"]\nexclude_cidrs = [\"10.0.0.0/8\"]",
                "exclude_cidrs needs aggregation",
            ),
        ] {
            let spec: RulesetSpec =
                toml::from_str(&format!("name = \"r\"\ntags = [\"A\"]\n{extra}")).unwrap();
            let err = spec.validate().unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
