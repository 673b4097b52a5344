//! Which tags of a snapshot a ruleset takes. Pure.

use crate::core::model::{ServiceTag, Snapshot, TagMeta};
use crate::rules::ruleset::Selector;

/// Why a selector selects nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A `tags` entry matches no tag of the snapshot.
    #[error("tags entry {pattern:?} matches no tag of the {cloud} snapshot of {date}: check the spelling with `tagwall tags --cloud {cloud}` (a renamed or retired tag must be removed from the ruleset)")]
    NoMatch {
        /// The pattern as written.
        pattern: String,
        /// The snapshot's cloud.
        cloud: String,
        /// Its file date.
        date: String,
    },
    /// The filters leave no tag.
    #[error("the tags match {matched} tag(s) but exclude_tags, regions, system_services and network_features leave none: loosen the filters")]
    Empty {
        /// Tags matched before the filters.
        matched: usize,
    },
}

impl Selector {
    /// Whether a tag passes the filters (`exclude_tags`, `regions`, `system_services`,
    /// `network_features`), regardless of `tags`.
    pub fn passes_filters(&self, name: &str, meta: &TagMeta) -> bool {
        !self.exclude_tags.iter().any(|p| p.matches(name))
            && self
                .regions
                .as_ref()
                .is_none_or(|r| r.contains(&meta.region.to_ascii_lowercase()))
            && self
                .system_services
                .as_ref()
                .is_none_or(|s| s.contains(&meta.system_service.to_ascii_lowercase()))
            && self
                .network_features
                .iter()
                .all(|f| meta.network_features.contains(f))
    }

    /// Whether the selector takes this tag.
    pub fn takes(&self, name: &str, meta: &TagMeta) -> bool {
        self.tags.iter().any(|p| p.matches(name)) && self.passes_filters(name, meta)
    }

    /// The tags of `snapshot` the selector takes, in name order. Every `tags` entry must match a
    /// tag, and something must be left after the filters.
    pub fn select<'s>(
        &self,
        snapshot: &'s Snapshot,
        date: &str,
    ) -> Result<Vec<&'s ServiceTag>, SelectError> {
        let (tags, missing, matched) = self.matches(snapshot);
        if let Some(pattern) = missing.into_iter().next() {
            return Err(SelectError::NoMatch {
                pattern,
                cloud: snapshot.cloud.to_string(),
                date: date.to_string(),
            });
        }
        if tags.is_empty() {
            return Err(SelectError::Empty { matched });
        }
        Ok(tags)
    }

    /// Like [`Selector::select`], but a `tags` entry that matches nothing is returned (its
    /// text) rather than an error: the way to publish a ruleset without a tag that is gone
    /// from Microsoft's file (`approve`, `sync --force`). When every entry is gone the
    /// selection is empty, for the guard to withhold; filters that leave nothing of tags that
    /// are there are still an error.
    pub fn select_present<'s>(
        &self,
        snapshot: &'s Snapshot,
    ) -> Result<(Vec<&'s ServiceTag>, Vec<String>), SelectError> {
        let (tags, missing, matched) = self.matches(snapshot);
        if tags.is_empty() && matched > 0 {
            return Err(SelectError::Empty { matched });
        }
        Ok((tags, missing))
    }

    /// The tags taken, the `tags` entries that match nothing, and how many tags matched
    /// before the filters.
    fn matches<'s>(&self, snapshot: &'s Snapshot) -> (Vec<&'s ServiceTag>, Vec<String>, usize) {
        let mut hit = vec![false; self.tags.len()];
        let mut matched = 0;
        let mut out = Vec::new();
        for tag in &snapshot.tags {
            let mut any = false;
            for (i, p) in self.tags.iter().enumerate() {
                if p.matches(&tag.name) {
                    hit[i] = true;
                    any = true;
                }
            }
            if any {
                matched += 1;
                if self.passes_filters(&tag.name, &tag.meta) {
                    out.push(tag);
                }
            }
        }
        let missing: Vec<String> = hit
            .iter()
            .zip(&self.tags)
            .filter(|(h, _)| !**h)
            .map(|(_, p)| p.text.clone())
            .collect();
        (out, missing, matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{fixtures, Cloud, NetworkFeatures};
    use crate::rules::ruleset::RulesetSpec;

    fn tag(name: &str, region: &str, service: &str, fw: bool) -> ServiceTag {
        let features = if fw {
            NetworkFeatures::List(vec!["API".into(), "FW".into()])
        } else {
            NetworkFeatures::Null
        };
        fixtures::tag(name, region, service, features, &["10.0.0.0/24"])
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            cloud: Cloud::Public,
            change_number: 1,
            tags: vec![
                tag("AzureCloud", "", "", true),
                tag("AzureCloud.westeurope", "westeurope", "", true),
                tag("Storage", "", "AzureStorage", true),
                tag("Storage.NorthEurope", "northeurope", "AzureStorage", false),
                tag("Storage.WestEurope", "westeurope", "AzureStorage", true),
            ],
        }
    }

    fn selector(toml_text: &str) -> Selector {
        let spec: RulesetSpec = toml::from_str(&format!("name = \"r\"\n{toml_text}")).unwrap();
        spec.validate().unwrap().selector
    }

    fn names(s: &Selector) -> Result<Vec<String>, SelectError> {
        let snap = snapshot();
        Ok(s.select(&snap, "2025-01-06")?
            .into_iter()
            .map(|t| t.name.clone())
            .collect())
    }

    #[test]
    fn globs_filters_and_exclusions() {
        assert_eq!(
            names(&selector("tags = [\"Storage.*\"]")).unwrap(),
            ["Storage.NorthEurope", "Storage.WestEurope"]
        );
        assert_eq!(
            names(&selector(
                "tags = [\"Storage*\"]\nregions = [\"WestEurope\"]"
            ))
            .unwrap(),
            ["Storage.WestEurope"]
        );
        assert_eq!(
            names(&selector(
                "tags = [\"*\"]\nnetwork_features = [\"fw\"]\nexclude_tags = [\"AzureCloud*\"]"
            ))
            .unwrap(),
            ["Storage", "Storage.WestEurope"]
        );
        assert_eq!(
            names(&selector(
                "tags = [\"*\"]\nsystem_services = [\"azurestorage\"]\nregions = [\"\"]"
            ))
            .unwrap(),
            ["Storage"]
        );
    }

    #[test]
    fn a_pattern_that_matches_nothing_is_an_error() {
        let err = names(&selector("tags = [\"AzureCloud\", \"AzureClod\"]")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "tags entry \"AzureClod\" matches no tag of the Public snapshot of 2025-01-06"
            ),
            "{err}"
        );
        let err = names(&selector(
            "tags = [\"Storage.*\"]\nregions = [\"japaneast\"]",
        ))
        .unwrap_err();
        assert_eq!(err, SelectError::Empty { matched: 2 });
    }
}
