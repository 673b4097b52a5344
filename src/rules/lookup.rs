//! `tagwall lookup`: which tags hold an address or network, which rulesets allow it, and since
//! when. Pure: the store's hits and snapshot list come in, a report goes out.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ipnet::IpNet;

use crate::core::model::{SnapshotInfo, TagMeta};
use crate::core::ranges::{AddrSet, Family};
use crate::rules::ruleset::Ruleset;

/// One interval of a prefix that matched a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixHit {
    /// The tag.
    pub tag: String,
    /// The tag's prefix.
    pub prefix: IpNet,
    /// First ordinal of the run of snapshots holding it.
    pub from_ord: i64,
    /// Last ordinal (or `core::model::OPEN`).
    pub to_ord: i64,
}

/// How much of the query a tag (or a ruleset's selection) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// Every address of the query: its prefixes together cover it ("all").
    Contains,
    /// Some of its addresses, not all ("part").
    Inside,
}

/// `Contains` when `prefixes` together cover `query`, else `Inside`.
fn relation_of<'a>(query: &IpNet, prefixes: impl IntoIterator<Item = &'a IpNet>) -> Relation {
    if AddrSet::from_prefixes(Family::of(query), prefixes).covers(query) {
        Relation::Contains
    } else {
        Relation::Inside
    }
}

/// A tag holding the query in the chosen snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Tag name.
    pub tag: String,
    /// Its region ("" when global).
    pub region: String,
    /// Its systemService.
    pub system_service: String,
    /// Its prefixes that match, most specific first.
    pub prefixes: Vec<IpNet>,
    /// Contains (whole query) or Inside (part of it).
    pub relation: Relation,
}

/// What a configured ruleset does with the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Ruleset name.
    pub ruleset: String,
    /// Whether every address of the query is in the ruleset's list: the union of its selected
    /// tags, or (with `max_entries`) the entries it emits.
    pub allows: bool,
    /// The selected tags that hold any of it.
    pub via: Vec<String>,
    /// Why not, or what else to know.
    pub note: Option<String>,
}

/// A run of consecutive stored snapshots in which a tag held the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// File date of the first snapshot of the run.
    pub from: NaiveDate,
    /// File date of the last snapshot of the run; `None` when it runs to the newest snapshot.
    pub to: Option<NaiveDate>,
}

/// The lookup in one cloud.
#[derive(Debug, Clone)]
pub struct Report {
    /// The query.
    pub query: IpNet,
    /// The snapshot looked at.
    pub snapshot: SnapshotInfo,
    /// The tags that hold it there, by relation then name.
    pub found: Vec<Found>,
    /// One per configured ruleset of the cloud.
    pub verdicts: Vec<Verdict>,
    /// Per tag ever containing the whole query, the runs of snapshots in which it did.
    pub history: Vec<(String, Vec<Span>)>,
}

/// Builds the report. `snapshots` are the cloud's snapshots with ordinals in history order;
/// `at` is the one looked at; `meta` the properties at `at` of the tags in `hits`; `emitted`
/// the entries (of the query's family) of each budgeted ruleset at `at`, by name.
pub fn report(
    query: IpNet,
    snapshots: &[(SnapshotInfo, i64)],
    at: &(SnapshotInfo, i64),
    hits: &[PrefixHit],
    meta: &[(String, TagMeta)],
    rulesets: &[&Ruleset],
    emitted: &BTreeMap<String, AddrSet>,
) -> Report {
    let ord = at.1;
    let mut by_tag: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.from_ord <= ord && ord <= h.to_ord) {
        by_tag.entry(&h.tag).or_default().push(h.prefix);
    }
    let mut found: Vec<Found> = by_tag
        .into_iter()
        .map(|(tag, mut prefixes)| {
            prefixes.sort_by_key(|p| (std::cmp::Reverse(p.prefix_len()), *p));
            prefixes.dedup();
            let relation = relation_of(&query, &prefixes);
            let m = meta.iter().find(|(n, _)| n == tag).map(|(_, m)| m);
            Found {
                tag: tag.to_string(),
                region: m.map(|m| m.region.clone()).unwrap_or_default(),
                system_service: m.map(|m| m.system_service.clone()).unwrap_or_default(),
                prefixes,
                relation,
            }
        })
        .collect();
    found.sort_by(|a, b| (a.relation, &a.tag).cmp(&(b.relation, &b.tag)));
    let verdicts = rulesets
        .iter()
        .filter(|r| r.cloud == at.0.cloud)
        .map(|r| verdict(r, query, &found, meta, emitted.get(&r.name)))
        .collect();
    Report {
        query,
        snapshot: at.0.clone(),
        found,
        verdicts,
        history: history(query, snapshots, hits),
    }
}

fn verdict(
    r: &Ruleset,
    query: IpNet,
    found: &[Found],
    meta: &[(String, TagMeta)],
    emitted: Option<&AddrSet>,
) -> Verdict {
    let family = Family::of(&query);
    let fam = family.label();
    let deny = |via: Vec<String>, note: String| Verdict {
        ruleset: r.name.clone(),
        allows: false,
        via,
        note: Some(note),
    };
    if !r.has(family) {
        return deny(
            Vec::new(),
            format!("the ruleset emits no {fam} set (families)"),
        );
    }
    // The ruleset's selected tags that hold any of the query, and their prefixes together.
    let selected: Vec<&Found> = found
        .iter()
        .filter(|f| {
            meta.iter()
                .find(|(n, _)| *n == f.tag)
                .is_some_and(|(n, m)| r.selector.takes(n, m))
        })
        .collect();
    let via: Vec<String> = selected.iter().map(|f| f.tag.clone()).collect();
    let union = relation_of(&query, selected.iter().flat_map(|f| &f.prefixes));
    let listed = emitted.map(|list| list.covers(&query));
    if let (true, Some(allows)) = (exceptions(r), listed) {
        // Local exceptions: the emitted list alone decides.
        let note = match (union, allows) {
            (Relation::Contains, false) => {
                Some("exclude_cidrs cuts it out of the list".to_string())
            }
            (Relation::Contains, true) => None,
            (_, true) => {
                Some("its emitted list covers it (include_cidrs or max_entries)".to_string())
            }
            (_, false) if via.is_empty() => Some("none of its selected tags holds it".to_string()),
            (_, false) => Some("only part of the network is in its list".to_string()),
        };
        return Verdict {
            ruleset: r.name.clone(),
            allows,
            via,
            note,
        };
    }
    match (union, listed) {
        (Relation::Contains, _) => Verdict {
            ruleset: r.name.clone(),
            allows: true,
            via,
            note: None,
        },
        // The list holds more than the selected tags do now: say which setting made it so.
        (_, Some(true)) => Verdict {
            ruleset: r.name.clone(),
            allows: true,
            via,
            note: Some(widened_by(r)),
        },
        _ if via.is_empty() => deny(via, "none of its selected tags holds it".into()),
        _ => deny(
            via,
            "only part of the network is in its selected tags".into(),
        ),
    }
}

/// Why a ruleset's list covers what its selected tags do not hold now.
fn widened_by(r: &Ruleset) -> String {
    let grace = format!(
        "keep_removed_days = {} keeps prefixes Microsoft removed",
        r.keep_removed_days
    );
    match (r.max_entries.is_some(), r.keep_removed_days > 0) {
        (true, false) => {
            "its emitted list covers it: max_entries widened the entries beyond the selected tags"
                .into()
        }
        (false, true) => format!("its emitted list still holds it: {grace}"),
        (true, true) => format!(
            "its emitted list covers it: max_entries widened the entries beyond the selected tags, or {grace}"
        ),
        (false, false) => "its emitted list covers it".into(),
    }
}

/// What a ruleset's published list says of the query, for [`as_published`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Nothing is published yet.
    Nothing,
    /// The published directory cannot be read: why.
    Unreadable(String),
    /// The published list: whether it covers the query, the snapshot it is of (`Public
    /// 2025-07-21 (id:3)`), whether it is of the snapshot looked at, and whether a change is
    /// withheld.
    List {
        covers: bool,
        snapshot: String,
        current: bool,
        withheld: bool,
    },
}

/// `v`, the verdict of the newest snapshot, turned into the verdict of what the firewall loads:
/// the published list decides, and a different verdict of the newest snapshot is what is
/// pending.
pub fn as_published(mut v: Verdict, published: Published) -> Verdict {
    let add = |v: &mut Verdict, text: String| {
        v.note = Some(match v.note.take() {
            Some(n) => format!("{text}; {n}"),
            None => text,
        });
    };
    match published {
        // Nothing to contrast with: the newest snapshot's verdict is what a publish would load.
        Published::Nothing => {}
        Published::Unreadable(why) => add(
            &mut v,
            format!(
                "its published list cannot be read ({why}): this is what the newest snapshot gives"
            ),
        ),
        Published::List { current: true, .. } => {}
        Published::List {
            covers, snapshot, ..
        } if covers == v.allows => add(&mut v, format!("as published ({snapshot})")),
        Published::List {
            covers,
            snapshot,
            withheld,
            ..
        } => {
            let pending = format!(
                "pending: would {} it after {}",
                if v.allows { "allow" } else { "deny" },
                if withheld {
                    "approval"
                } else {
                    "the next sync publishes"
                }
            );
            v.allows = covers;
            add(&mut v, format!("as published ({snapshot}); {pending}"));
        }
    }
    v
}

fn exceptions(r: &Ruleset) -> bool {
    !r.include_cidrs.is_empty() || !r.exclude_cidrs.is_empty()
}

/// Per tag, the runs of consecutive snapshots in which one of its prefixes contained `query`.
fn history(
    query: IpNet,
    snapshots: &[(SnapshotInfo, i64)],
    hits: &[PrefixHit],
) -> Vec<(String, Vec<Span>)> {
    let mut by_tag: BTreeMap<&str, Vec<&PrefixHit>> = BTreeMap::new();
    for h in hits {
        by_tag.entry(&h.tag).or_default().push(h);
    }
    let mut held: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for (tag, tag_hits) in by_tag {
        let flags: Vec<bool> = snapshots
            .iter()
            .map(|(_, ord)| {
                let live = tag_hits
                    .iter()
                    .filter(|h| h.from_ord <= *ord && *ord <= h.to_ord)
                    .map(|h| &h.prefix);
                relation_of(&query, live) == Relation::Contains
            })
            .collect();
        if flags.contains(&true) {
            held.insert(tag, flags);
        }
    }
    held.into_iter()
        .map(|(tag, flags)| {
            let mut spans = Vec::new();
            let mut i = 0;
            while i < flags.len() {
                if !flags[i] {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < flags.len() && flags[i] {
                    i += 1;
                }
                spans.push(Span {
                    from: snapshots[start].0.file_date,
                    to: (i < flags.len()).then(|| snapshots[i - 1].0.file_date),
                });
            }
            (tag.to_string(), spans)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::OPEN;
    use crate::core::model::{fixtures, NetworkFeatures};
    use crate::rules::ruleset::RulesetSpec;

    fn info(id: i64, day: u32) -> (SnapshotInfo, i64) {
        (fixtures::info(id, day), i64::from(day) * 64)
    }

    fn hit(tag: &str, prefix: &str, from: u32, to: Option<u32>) -> PrefixHit {
        PrefixHit {
            tag: tag.into(),
            prefix: prefix.parse().unwrap(),
            from_ord: i64::from(from) * 64,
            to_ord: to.map_or(OPEN, |d| i64::from(d) * 64),
        }
    }

    fn meta(region: &str) -> TagMeta {
        fixtures::tag("t", region, "", NetworkFeatures::Null, &[]).meta
    }

    #[test]
    fn tags_rulesets_and_history() {
        let snaps = [info(1, 6), info(2, 13), info(3, 20), info(4, 27)];
        let hits = [
            hit("AzureCloud", "20.0.0.0/16", 6, Some(13)),
            hit("AzureCloud", "20.0.0.0/15", 27, None),
            hit("AzureCloud.westeurope", "20.0.0.0/24", 13, None),
        ];
        let metas = [
            ("AzureCloud".to_string(), meta("")),
            ("AzureCloud.westeurope".to_string(), meta("westeurope")),
        ];
        let spec = |t: &str| -> Ruleset {
            toml::from_str::<RulesetSpec>(&format!("name = \"r\"\ntags = [\"{t}\"]"))
                .unwrap()
                .validate()
                .unwrap()
        };
        let (all, we, v6) = (spec("AzureCloud"), spec("*.westeurope"), {
            let mut r = spec("AzureCloud");
            r.families = vec![Family::V6];
            r
        });
        let q: IpNet = "20.0.0.1/32".parse().unwrap();
        let none = BTreeMap::new();
        let r = report(
            q,
            &snaps,
            &snaps[2],
            &hits,
            &metas,
            &[&all, &we, &v6],
            &none,
        );
        assert_eq!(r.found.len(), 1, "only westeurope holds it on the 20th");
        assert_eq!(r.found[0].tag, "AzureCloud.westeurope");
        assert_eq!(
            r.verdicts.iter().map(|v| v.allows).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert!(r.verdicts[2]
            .note
            .as_deref()
            .unwrap()
            .contains("no IPv4 set"));
        let d = |day| NaiveDate::from_ymd_opt(2025, 1, day).unwrap();
        assert_eq!(
            r.history,
            [
                (
                    "AzureCloud".to_string(),
                    vec![
                        Span {
                            from: d(6),
                            to: Some(d(13))
                        },
                        Span {
                            from: d(27),
                            to: None
                        }
                    ]
                ),
                (
                    "AzureCloud.westeurope".to_string(),
                    vec![Span {
                        from: d(13),
                        to: None
                    }]
                ),
            ]
        );
        // A network: westeurope's /24 lies inside a /23 query.
        let q: IpNet = "20.0.0.0/23".parse().unwrap();
        let r = report(q, &snaps, &snaps[2], &hits, &metas, &[&we], &none);
        assert_eq!(r.found[0].relation, Relation::Inside);
        assert!(!r.verdicts[0].allows);
        assert_eq!(r.verdicts[0].via, ["AzureCloud.westeurope"]);
    }

    #[test]
    fn a_network_split_over_several_prefixes_is_held_whole() {
        let snaps = [info(1, 6)];
        let hits = [
            hit("AzureCloud", "20.38.98.0/24", 6, None),
            hit("AzureCloud", "20.38.99.0/24", 6, None),
            hit("Storage", "20.38.98.0/25", 6, None),
            hit("Sql", "20.38.98.128/25", 6, None),
            hit("Sql", "20.38.99.0/24", 6, None),
        ];
        let metas: Vec<(String, TagMeta)> = ["AzureCloud", "Storage", "Sql"]
            .iter()
            .map(|t| (t.to_string(), meta("")))
            .collect();
        let spec = |tags: &str, extra: &str| -> Ruleset {
            toml::from_str::<RulesetSpec>(&format!("name = \"r\"\ntags = [{tags}]\n{extra}"))
                .unwrap()
                .validate()
                .unwrap()
        };
        let both = spec("\"Storage\", \"Sql\"", "");
        let storage = spec("\"Storage\"", "");
        let q: IpNet = "20.38.98.0/23".parse().unwrap();
        let none = BTreeMap::new();
        let r = report(
            q,
            &snaps,
            &snaps[0],
            &hits,
            &metas,
            &[&both, &storage],
            &none,
        );
        let rel: Vec<(&str, Relation)> = r
            .found
            .iter()
            .map(|f| (f.tag.as_str(), f.relation))
            .collect();
        assert_eq!(
            rel,
            [
                ("AzureCloud", Relation::Contains),
                ("Sql", Relation::Inside),
                ("Storage", Relation::Inside)
            ]
        );
        assert!(
            r.verdicts[0].allows,
            "Storage and Sql together hold all of it"
        );
        assert!(!r.verdicts[1].allows);
        assert_eq!(r.history.len(), 1);
        // A budgeted ruleset's emitted list may cover what its tags do not.
        let list = AddrSet::from_prefixes(Family::V4, &["20.38.96.0/19".parse().unwrap()]);
        let emitted = BTreeMap::from([("r".to_string(), list)]);
        let budgeted = spec("\"Storage\"", "max_entries = 10");
        let r = report(q, &snaps, &snaps[0], &hits, &metas, &[&budgeted], &emitted);
        assert!(r.verdicts[0].allows);
        assert!(r.verdicts[0]
            .note
            .as_deref()
            .unwrap()
            .contains("max_entries"));
    }
}
