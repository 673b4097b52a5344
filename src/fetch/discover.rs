//! Where Microsoft publishes each cloud's ServiceTags file, and how to find the newest one. Pure:
//! the pages and answers come in, URLs and decisions go out (`fetch` does the I/O).
//!
//! Microsoft has no stable "latest" URL. The download details page links the current file (the
//! markup changes, and a page can list several files), and each file sits under a stable path
//! named `ServiceTags_<Cloud>_<YYYYMMDD>.json`, dated a Monday and published 2–9 days later.
//! So discovery collects every file name a page mentions, wherever it appears, takes the newest
//! date, and otherwise probes the stable path day by day.

use chrono::{Days, NaiveDate};

use crate::core::host::host_of;
use crate::core::model::Cloud;

/// Days back that probing tries, newest first.
pub const PROBE_DAYS: u64 = 28;

/// A file older than this many days is overdue by default (`[fetch] overdue_days`): Microsoft
/// publishes weekly, and its gaps have reached 22 days.
pub const OVERDUE_DAYS: u32 = 10;

/// The download details page of a cloud.
pub fn details_page(cloud: Cloud) -> String {
    let id = match cloud {
        Cloud::Public => 56519,
        Cloud::AzureGovernment => 57063,
        Cloud::China => 57062,
        Cloud::AzureGermany => 57064,
    };
    format!("https://www.microsoft.com/en-us/download/details.aspx?id={id}")
}

/// The stable folder under which a cloud's files are published (ends with `/`).
pub fn stable_path(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => {
            "https://download.microsoft.com/download/7/1/d/71d86715-5596-4529-9b13-da13a5de5b63/"
        }
        Cloud::AzureGovernment => {
            "https://download.microsoft.com/download/6/4/d/64db03bf-895b-4173-a8b1-ba4ad5d4df22/"
        }
        Cloud::China => {
            "https://download.microsoft.com/download/9/d/0/9d03b7e2-4b80-4bf3-9b91-da8c7d3ee9f9/"
        }
        Cloud::AzureGermany => {
            "https://download.microsoft.com/download/0/7/6/076274AB-4B0B-4246-A422-4BAF1E03F974/"
        }
    }
}

/// The last file of a retired cloud: Azure Germany closed, its last file is dated 2022-03-07.
pub fn retired_after(cloud: Cloud) -> Option<NaiveDate> {
    (cloud == Cloud::AzureGermany).then(|| NaiveDate::from_ymd_opt(2022, 3, 7).expect("valid"))
}

/// A cloud's file name for a date: `ServiceTags_Public_20250728.json`.
pub fn file_name(cloud: Cloud, date: NaiveDate) -> String {
    format!(
        "ServiceTags_{}_{}.json",
        cloud.name(),
        date.format("%Y%m%d")
    )
}

/// A published file: its date and where to get it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Published {
    /// The date in its name.
    pub date: NaiveDate,
    /// Its URL.
    pub url: String,
}

/// Every file of `cloud` a page mentions, newest first, without duplicates. Names are found
/// wherever they appear (links, scripts, JSON blobs, text), since the page's markup changes; a
/// name inside an absolute `https://` URL keeps that URL, a bare or relative one is placed under
/// `folder` (the cloud's stable path, or a mirror).
pub fn files_in_page(cloud: Cloud, page: &str, folder: &str) -> Vec<Published> {
    let prefix = format!("ServiceTags_{}_", cloud.name());
    let mut found: Vec<Published> = Vec::new();
    let mut from = 0;
    while let Some(at) = page[from..].find(&prefix).map(|i| from + i) {
        from = at + prefix.len();
        let rest = &page[from..];
        let (Some(digits), true) = (
            rest.get(..8),
            rest.get(8..).is_some_and(|r| r.starts_with(".json")),
        ) else {
            continue;
        };
        let Ok(date) = NaiveDate::parse_from_str(digits, "%Y%m%d") else {
            continue;
        };
        let name = file_name(cloud, date);
        // The URL around the name: back to the start of the token it sits in.
        let start = page[..at]
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_whitespace() || "\"'<>()=,;[]{}`".contains(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let token = &page[start..at];
        let url = match token.find("https://") {
            Some(i) => format!("{}{name}", &token[i..]),
            None => format!("{folder}{name}"),
        };
        found.push(Published { date, url });
    }
    found.sort_by(|a, b| b.cmp(a));
    found.dedup();
    found
}

/// The URLs to probe when the page fails or lists nothing: one per day from `today` back
/// [`PROBE_DAYS`] days, newest first (Mondays are most likely, but Microsoft has dated files on
/// other days).
pub fn probe_candidates(cloud: Cloud, folder: &str, today: NaiveDate) -> Vec<Published> {
    (0..=PROBE_DAYS)
        .filter_map(|back| today.checked_sub_days(Days::new(back)))
        .map(|date| Published {
            date,
            url: format!("{folder}{}", file_name(cloud, date)),
        })
        .collect()
}

/// Why a URL may not be downloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedUrl {
    /// Not HTTPS.
    #[error("refusing {url}: only https:// downloads are allowed")]
    NotHttps {
        /// The URL.
        url: String,
    },
    /// The host is not on the allowlist.
    #[error("refusing {url}: host {host} is not allowed (allowed: {allowed}); add it to [fetch] allowed_hosts if it is a trusted mirror")]
    HostNotAllowed {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
        /// The allowlist.
        allowed: String,
    },
}

/// Checks that `url` is `https://` and its host is one of `allowed` (case-insensitive, exact).
pub fn check_url(url: &str, allowed: &[String]) -> Result<(), RefusedUrl> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(RefusedUrl::NotHttps {
            url: url.to_string(),
        });
    };
    // No credentials in URLs, and the port does not change the host.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host_of(url);
    if authority.contains('@') || !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return Err(RefusedUrl::HostNotAllowed {
            url: url.to_string(),
            host: host.to_string(),
            allowed: allowed.join(", "),
        });
    }
    Ok(())
}

/// How old the newest file is, when it is older than `limit` days on `today` (overdue). A
/// retired cloud is never overdue.
pub fn overdue(cloud: Cloud, newest: NaiveDate, today: NaiveDate, limit: u32) -> Option<i64> {
    if retired_after(cloud).is_some() {
        return None;
    }
    let age = (today - newest).num_days();
    (age > i64::from(limit)).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn every_mention_of_a_file_counts_and_the_newest_comes_first() {
        let folder = stable_path(Cloud::Public);
        let page = r#"
            <a href="https://download.microsoft.com/download/7/1/d/x/ServiceTags_Public_20250721.json">old</a>
            <script>window.__DLCDetails__={"url":"https://mirror.example/st/ServiceTags_Public_20250728.json"}</script>
            <p>ServiceTags_Public_20250728.json (2.3 MB)</p>
            <a href='/relative/ServiceTags_Public_20250714.json'>x</a>
            ServiceTags_China_20250801.json ServiceTags_Public_2025.json ServiceTags_Public_20251399.json
        "#;
        let got = files_in_page(Cloud::Public, page, folder);
        let urls: Vec<(NaiveDate, &str)> = got.iter().map(|p| (p.date, p.url.as_str())).collect();
        assert_eq!(
            urls,
            [
                (d(2025, 7, 28), "https://mirror.example/st/ServiceTags_Public_20250728.json"),
                (
                    d(2025, 7, 28),
                    "https://download.microsoft.com/download/7/1/d/71d86715-5596-4529-9b13-da13a5de5b63/ServiceTags_Public_20250728.json"
                ),
                (
                    d(2025, 7, 21),
                    "https://download.microsoft.com/download/7/1/d/x/ServiceTags_Public_20250721.json"
                ),
                (
                    d(2025, 7, 14),
                    "https://download.microsoft.com/download/7/1/d/71d86715-5596-4529-9b13-da13a5de5b63/ServiceTags_Public_20250714.json"
                ),
            ]
        );
        assert!(files_in_page(Cloud::Public, "<html>no files here</html>", folder).is_empty());
    }

    proptest::proptest! {
        /// Any page, however mangled (multi-byte text cut anywhere around file names), gives
        /// only well-formed results and never panics.
        #[test]
        fn any_page_gives_well_formed_files(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[a-zé€\"'<>/:. \u{a0}\u{2000}-\u{200a}\u{3000}\u{85}]{0,12}").unwrap(),
                    proptest::prelude::any::<String>(),
                    proptest::string::string_regex("ServiceTags_Public_20[0-9]{6}(\\.json)?").unwrap(),
                    proptest::string::string_regex("https://[a-z.]{1,12}/").unwrap(),
                ],
                0..12,
            )
        ) {
            let page: String = parts.concat();
            let files = files_in_page(Cloud::Public, &page, "https://f/");
            for f in &files {
                proptest::prop_assert!(f.url.starts_with("https://"));
                proptest::prop_assert!(f.url.ends_with(&file_name(Cloud::Public, f.date)));
            }
            proptest::prop_assert!(files.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates");
        }
    }

    #[test]
    fn unicode_spaces_before_a_name_are_separators() {
        for space in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}'] {
            let page = format!(
                "see{space}https://download.microsoft.com/x/ServiceTags_Public_20250728.json"
            );
            let files = files_in_page(Cloud::Public, &page, "https://f/");
            assert_eq!(
                files[0].url, "https://download.microsoft.com/x/ServiceTags_Public_20250728.json",
                "{space:?}"
            );
        }
    }

    #[test]
    fn probing_walks_back_day_by_day() {
        let c = probe_candidates(Cloud::China, "https://m/", d(2025, 8, 6));
        assert_eq!(c.len(), 29);
        assert_eq!(c[0].url, "https://m/ServiceTags_China_20250806.json");
        assert_eq!(c[28].date, d(2025, 7, 9));
    }

    #[test]
    fn only_https_to_allowed_hosts() {
        let allowed = vec!["download.microsoft.com".to_string()];
        assert!(check_url("https://download.microsoft.com/x.json", &allowed).is_ok());
        assert!(check_url("https://DOWNLOAD.microsoft.com:443/x.json", &allowed).is_ok());
        let err = check_url("http://download.microsoft.com/x.json", &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing http://download.microsoft.com/x.json: only https:// downloads are allowed"
        );
        for bad in [
            "https://download.microsoft.com.evil.example/x.json",
            "https://download.microsoft.com@evil.example/x.json",
            "https://evil.example/download.microsoft.com/x.json",
        ] {
            assert!(
                matches!(
                    check_url(bad, &allowed),
                    Err(RefusedUrl::HostNotAllowed { .. })
                ),
                "{bad}"
            );
        }
        let v6 = vec!["::1".to_string()];
        assert!(check_url("https://[::1]:8443/x.json", &v6).is_ok());
    }

    #[test]
    fn hosts_are_taken_from_urls() {
        assert_eq!(host_of("https://a.b:8443/x"), "a.b");
        assert_eq!(host_of("https://[::1]:8443/x"), "::1");
        assert_eq!(host_of("https://u@h/x"), "h");
    }

    #[test]
    fn overdue_after_the_limit_but_never_for_a_retired_cloud() {
        assert_eq!(
            overdue(Cloud::Public, d(2025, 7, 28), d(2025, 8, 7), 10),
            None
        );
        assert_eq!(
            overdue(Cloud::Public, d(2025, 7, 28), d(2025, 8, 8), 10),
            Some(11)
        );
        assert_eq!(
            overdue(Cloud::Public, d(2025, 7, 28), d(2025, 8, 11), 14),
            None
        );
        assert_eq!(
            overdue(Cloud::AzureGermany, d(2022, 3, 7), d(2026, 11, 22), 10),
            None
        );
        assert_eq!(
            file_name(Cloud::AzureGovernment, d(2025, 1, 6)),
            "ServiceTags_AzureGovernment_20250106.json"
        );
        assert!(details_page(Cloud::China).ends_with("id=57062"));
    }
}
