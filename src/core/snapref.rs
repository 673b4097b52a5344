//! `SNAP`: how users name a stored snapshot on the command line.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// A reference to one snapshot of a cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapRef {
    /// `latest` (0) or `latest~N`: the newest snapshot, or the N-th before it.
    Latest(u32),
    /// `YYYY-MM-DD`: the newest snapshot whose file date is on or before this date.
    OnOrBefore(NaiveDate),
    /// `id:N`: the snapshot with this store id (as `tagwall snapshots` lists them).
    Id(i64),
}

impl Default for SnapRef {
    fn default() -> Self {
        SnapRef::Latest(0)
    }
}

/// The error of [`SnapRef::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("snapshot {0:?} is not understood: use latest, latest~N, a date YYYY-MM-DD or id:N")]
pub struct BadSnapRef(pub String);

impl FromStr for SnapRef {
    type Err = BadSnapRef;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let bad = || BadSnapRef(s.to_string());
        if text.eq_ignore_ascii_case("latest") {
            return Ok(SnapRef::Latest(0));
        }
        if let Some(n) = text.strip_prefix("latest~") {
            return n.parse().map(SnapRef::Latest).map_err(|_| bad());
        }
        if let Some(n) = text.strip_prefix("id:") {
            return n.parse().map(SnapRef::Id).map_err(|_| bad());
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(SnapRef::OnOrBefore)
            .map_err(|_| bad())
    }
}

impl fmt::Display for SnapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapRef::Latest(0) => f.write_str("latest"),
            SnapRef::Latest(n) => write!(f, "latest~{n}"),
            SnapRef::OnOrBefore(d) => write!(f, "{d}"),
            SnapRef::Id(id) => write!(f, "id:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_displays_back() {
        for (text, want) in [
            ("latest", SnapRef::Latest(0)),
            ("latest~3", SnapRef::Latest(3)),
            (
                "2025-02-17",
                SnapRef::OnOrBefore(NaiveDate::from_ymd_opt(2025, 2, 17).unwrap()),
            ),
            ("id:42", SnapRef::Id(42)),
        ] {
            let got: SnapRef = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string(), text);
        }
    }

    #[test]
    fn nonsense_is_refused_with_the_forms() {
        for text in ["newest", "latest~x", "id:", "2025-13-01", "latest~-1"] {
            let err = text.parse::<SnapRef>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("snapshot {text:?} is not understood: use latest, latest~N, a date YYYY-MM-DD or id:N")
            );
        }
    }
}
