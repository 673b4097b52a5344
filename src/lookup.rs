//! `tagwall lookup`: which tags hold an address or network, which rulesets allow it, and since
//! when. Pure: the store's hits and snapshot list come in, a report goes out.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ipnet::IpNet;

use crate::model::{SnapshotInfo, TagMeta};
use crate::ranges::Family;
use crate::ruleset::Ruleset;

/// One interval of a prefix that matched a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixHit {
    /// The tag.
    pub tag: String,
    /// The tag's prefix.
    pub prefix: IpNet,
    /// First ordinal of the run of snapshots holding it.
    pub from_ord: i64,
    /// Last ordinal (or `temporal::OPEN`).
    pub to_ord: i64,
}

/// How a tag's prefix relates to the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// The prefix contains the whole query.
    Contains,
    /// The prefix lies inside the query network (only part of it is covered).
    Inside,
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
    /// Whether every address of the query is in the ruleset's selected tags.
    pub allows: bool,
    /// The selected tags that contain it (or, if none, that hold part of it).
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
/// `at` is the one looked at; `meta` the properties at `at` of the tags in `hits`.
pub fn report(
    query: IpNet,
    snapshots: &[(SnapshotInfo, i64)],
    at: &(SnapshotInfo, i64),
    hits: &[PrefixHit],
    meta: &[(String, TagMeta)],
    rulesets: &[&Ruleset],
) -> Report {
    let ord = at.1;
    let mut by_tag: BTreeMap<&str, (Relation, Vec<IpNet>)> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.from_ord <= ord && ord <= h.to_ord) {
        let rel = if h.prefix.contains(&query) {
            Relation::Contains
        } else {
            Relation::Inside
        };
        let e = by_tag.entry(&h.tag).or_insert((rel, Vec::new()));
        e.0 = e.0.min(rel);
        e.1.push(h.prefix);
    }
    let mut found: Vec<Found> = by_tag
        .into_iter()
        .map(|(tag, (relation, mut prefixes))| {
            prefixes.sort_by_key(|p| (std::cmp::Reverse(p.prefix_len()), *p));
            prefixes.dedup();
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
        .map(|r| verdict(r, query, &found, meta))
        .collect();
    Report {
        query,
        snapshot: at.0.clone(),
        found,
        verdicts,
        history: history(query, snapshots, hits),
    }
}

fn verdict(r: &Ruleset, query: IpNet, found: &[Found], meta: &[(String, TagMeta)]) -> Verdict {
    let family = Family::of(&query);
    // The ruleset's selected tags that hold the query with this relation.
    let taken = |relation: Relation| -> Vec<String> {
        found
            .iter()
            .filter(|f| f.relation == relation)
            .filter(|f| {
                meta.iter()
                    .find(|(n, _)| *n == f.tag)
                    .is_some_and(|(n, m)| r.selector.takes(n, m))
            })
            .map(|f| f.tag.clone())
            .collect()
    };
    let (whole, part) = (taken(Relation::Contains), taken(Relation::Inside));
    let fam = family.label();
    if !r.has(family) {
        return Verdict {
            ruleset: r.name.clone(),
            allows: false,
            via: Vec::new(),
            note: Some(format!("the ruleset emits no {fam} set (families)")),
        };
    }
    if !whole.is_empty() {
        return Verdict {
            ruleset: r.name.clone(),
            allows: true,
            via: whole,
            note: None,
        };
    }
    let note = if part.is_empty() {
        "none of its selected tags holds it".to_string()
    } else {
        "only part of the network is in its selected tags".to_string()
    };
    Verdict {
        ruleset: r.name.clone(),
        allows: false,
        via: part,
        note: Some(note),
    }
}

/// Per tag, the runs of consecutive snapshots in which one of its prefixes contained `query`.
fn history(
    query: IpNet,
    snapshots: &[(SnapshotInfo, i64)],
    hits: &[PrefixHit],
) -> Vec<(String, Vec<Span>)> {
    let mut held: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.prefix.contains(&query)) {
        let flags = held
            .entry(&h.tag)
            .or_insert_with(|| vec![false; snapshots.len()]);
        for (i, (_, ord)) in snapshots.iter().enumerate() {
            if h.from_ord <= *ord && *ord <= h.to_ord {
                flags[i] = true;
            }
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
    use crate::model::{fixtures, NetworkFeatures};
    use crate::ruleset::RulesetSpec;
    use crate::temporal::OPEN;

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
        let r = report(q, &snaps, &snaps[2], &hits, &metas, &[&all, &we, &v6]);
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
        let r = report(q, &snaps, &snaps[2], &hits, &metas, &[&we]);
        assert_eq!(r.found[0].relation, Relation::Inside);
        assert!(!r.verdicts[0].allows);
        assert_eq!(r.verdicts[0].via, ["AzureCloud.westeurope"]);
    }
}
