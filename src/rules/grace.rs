//! The grace period for removals (`keep_removed_days`): which (tag, prefix) pairs of earlier
//! snapshots a ruleset keeps allowing after Microsoft removed them, and until when. Pure.
//!
//! A pair that was selected at some snapshot and is missing from the one being built stays in
//! the list until `keep_removed_days` days after the file date of the first snapshot without it,
//! counted in file dates: it leaves the list with the first snapshot dated on or after that day.
//! File dates, not the clock, so that `emit --at`, `diff --ruleset` and `lookup` give the same
//! list for the same snapshot whenever they run.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};
use ipnet::IpNet;

use crate::core::model::{ServiceTag, Snapshot};
use crate::rules::ruleset::Ruleset;

/// A removed pair still allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedPrefix {
    /// The tag it belonged to.
    pub tag: String,
    /// The tag's region ("" for global tags), as last seen.
    pub region: String,
    /// The tag's systemService, as last seen.
    pub system_service: String,
    /// The prefix.
    pub net: IpNet,
    /// The file date of the first snapshot without it.
    pub removed_on: NaiveDate,
    /// The first file date at which it is no longer allowed.
    pub until: NaiveDate,
}

/// The pairs a ruleset keeps allowing at one snapshot, in (tag, prefix) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retained {
    /// The pairs.
    pub prefixes: Vec<RetainedPrefix>,
}

impl Retained {
    /// Nothing kept: no grace period, or nothing removed within it.
    pub fn none() -> Retained {
        Retained::default()
    }

    /// What `ruleset` keeps at `current` (dated `date`), given the earlier snapshots of its
    /// window, oldest first, each with the file date of the snapshot that followed it
    /// (`store::Store::earlier_within`).
    pub fn compute<'s>(
        ruleset: &Ruleset,
        current: &Snapshot,
        date: NaiveDate,
        earlier: impl IntoIterator<Item = (&'s Snapshot, NaiveDate)>,
    ) -> Retained {
        let days = Days::new(u64::from(ruleset.keep_removed_days));
        if ruleset.keep_removed_days == 0 {
            return Retained::none();
        }
        let now: HashSet<(&str, IpNet)> = selected(ruleset, current)
            .flat_map(|t| t.prefixes.iter().map(move |p| (t.name.as_str(), *p)))
            .collect();
        // The last snapshot holding each pair decides: later ones overwrite earlier ones.
        let mut last: HashMap<(&str, IpNet), (&ServiceTag, NaiveDate)> = HashMap::new();
        for (snapshot, next_date) in earlier {
            for tag in selected(ruleset, snapshot) {
                for p in &tag.prefixes {
                    if !now.contains(&(tag.name.as_str(), *p)) {
                        last.insert((tag.name.as_str(), *p), (tag, next_date));
                    }
                }
            }
        }
        let mut prefixes: Vec<RetainedPrefix> = last
            .into_iter()
            .filter_map(|((_, net), (tag, removed_on))| {
                let until = removed_on.checked_add_days(days)?;
                (until > date).then(|| RetainedPrefix {
                    tag: tag.name.clone(),
                    region: tag.meta.region.clone(),
                    system_service: tag.meta.system_service.clone(),
                    net,
                    removed_on,
                    until,
                })
            })
            .collect();
        prefixes.sort_by(|a, b| (&a.tag, a.net).cmp(&(&b.tag, b.net)));
        Retained { prefixes }
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// The tags `ruleset` takes at `snapshot`; none when it takes nothing there.
fn selected<'s>(ruleset: &Ruleset, snapshot: &'s Snapshot) -> impl Iterator<Item = &'s ServiceTag> {
    ruleset
        .selector
        .select_present(snapshot)
        .map(|(tags, _)| tags)
        .unwrap_or_default()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{fixtures, Cloud, NetworkFeatures};
    use crate::rules::ruleset::RulesetSpec;

    fn ruleset(days: u32) -> Ruleset {
        let spec: RulesetSpec = toml::from_str(&format!(
            "name = \"r\"\ntags = [\"A\", \"B\"]\nkeep_removed_days = {days}"
        ))
        .unwrap();
        spec.validate().unwrap()
    }

    fn week(tags: &[(&str, &[&str])]) -> Snapshot {
        Snapshot {
            cloud: Cloud::Public,
            change_number: 1,
            tags: tags
                .iter()
                .map(|(n, p)| fixtures::tag(n, "", "", NetworkFeatures::Absent, p))
                .collect(),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 7, d).unwrap()
    }

    fn kept(r: &Ruleset, now: &Snapshot, at: u32, earlier: &[(&Snapshot, u32)]) -> Vec<String> {
        Retained::compute(r, now, day(at), earlier.iter().map(|(s, d)| (*s, day(*d))))
            .prefixes
            .iter()
            .map(|p| format!("{} {} {} {}", p.tag, p.net, p.removed_on, p.until))
            .collect()
    }

    #[test]
    fn a_removed_prefix_stays_until_its_day_and_the_last_presence_decides() {
        let w1 = week(&[
            ("A", &["10.0.0.0/24", "10.0.1.0/24"]),
            ("B", &["2001:db8::/48"]),
        ]);
        let w2 = week(&[("A", &["10.0.0.0/24"]), ("B", &["2001:db8::/48"])]);
        let w3 = week(&[("A", &["10.0.0.0/24", "10.0.1.0/24"])]);
        let w4 = week(&[("A", &["10.0.0.0/24"])]);
        let r = ruleset(14);
        // At w2 (7th): 10.0.1.0/24 was last in w1, first missing on the 7th: kept until the 21st.
        assert_eq!(
            kept(&r, &w2, 7, &[(&w1, 7)]),
            ["A 10.0.1.0/24 2025-07-07 2025-07-21"]
        );
        // At w4 (21st): 10.0.1.0/24 came back in w3 and left again on the 21st; B's prefix (and
        // the whole tag B) left on the 14th.
        assert_eq!(
            kept(&r, &w4, 21, &[(&w1, 7), (&w2, 14), (&w3, 21)]),
            [
                "A 10.0.1.0/24 2025-07-21 2025-08-04",
                "B 2001:db8::/48 2025-07-14 2025-07-28"
            ]
        );
        // Seven days keep only the last week's removal: B's prefix, removed on the 14th, is
        // allowed up to the 21st, not on it.
        assert_eq!(
            kept(&ruleset(7), &w3, 14, &[(&w2, 14)]),
            ["B 2001:db8::/48 2025-07-14 2025-07-21"]
        );
        assert_eq!(
            kept(&ruleset(7), &w4, 21, &[(&w2, 14), (&w3, 21)]),
            ["A 10.0.1.0/24 2025-07-21 2025-07-28"]
        );
        // No grace: nothing, whatever came before.
        assert!(kept(&ruleset(0), &w4, 21, &[(&w3, 21)]).is_empty());
    }

    #[test]
    fn the_grace_period_is_bounded() {
        let spec: RulesetSpec =
            toml::from_str("name = \"r\"\ntags = [\"A\"]\nkeep_removed_days = 93").unwrap();
        let err = spec.validate().unwrap_err();
        assert!(err.contains("keep_removed_days = 93: at most 92"), "{err}");
    }
}
