//! `[fetch]` in tagwall.toml: where each cloud's files come from and how to reach them. Read as
//! [`FetchSpec`] (the file's shape), validated once into [`FetchSettings`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::core::host::host_of;
use crate::core::model::Cloud;
use crate::fetch::discover;
use crate::fetch::proxy::{
    CredentialSource, ProxyChoice, ProxyUrl, PROXY_PASSWORD_ENV, PROXY_USER_ENV,
};

/// The host Microsoft serves the files from: allowed by default.
pub const MICROSOFT_HOST: &str = "download.microsoft.com";

/// `[fetch]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    clouds: Option<Vec<String>>,
    proxy: Option<String>,
    no_proxy: Option<Vec<String>>,
    proxy_user_env: Option<String>,
    proxy_password_env: Option<String>,
    proxy_credentials_file: Option<PathBuf>,
    ca_bundle: Option<PathBuf>,
    allowed_hosts: Option<Vec<String>>,
    mirror: Option<String>,
    timeout_seconds: Option<u64>,
    connect_timeout_seconds: Option<u64>,
    retries: Option<u32>,
    retry_delay_ms: Option<u64>,
    overdue_days: Option<u32>,
    pages: Option<BTreeMap<String, String>>,
    folders: Option<BTreeMap<String, String>>,
}

/// A mirror of Microsoft's files, holding them under their original names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// An HTTPS folder (ends with `/`): its index page is read like a details page, and its
    /// files are probed like Microsoft's stable paths.
    Url(String),
    /// A local directory (offline; `*.json` or `*.json.gz`).
    Dir(PathBuf),
}

/// Validated `[fetch]` settings.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// The clouds `fetch` gets (`None`: the rulesets' clouds, else Public).
    pub clouds: Option<Vec<Cloud>>,
    /// Which proxy to use.
    pub proxy: ProxyChoice,
    /// Hosts, domains, addresses or CIDRs reached without the proxy (added to `NO_PROXY` when
    /// the proxy comes from the environment).
    pub no_proxy: Vec<String>,
    /// Where proxy credentials come from.
    pub credentials: CredentialSource,
    /// Extra trusted roots (PEM) for networks that inspect TLS.
    pub ca_bundle: Option<PathBuf>,
    /// Hosts files may be downloaded from.
    pub allowed_hosts: Vec<String>,
    /// A mirror replacing Microsoft's pages and paths.
    pub mirror: Option<Mirror>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt, for timeouts, resets and 5xx answers.
    pub retries: u32,
    /// The first retry's delay; each next one doubles, plus jitter.
    pub retry_delay: Duration,
    /// A cloud whose newest file is older than this many days is overdue (told once).
    pub overdue_days: u32,
    pages: BTreeMap<Cloud, String>,
    folders: BTreeMap<Cloud, String>,
}

impl Default for FetchSettings {
    fn default() -> FetchSettings {
        FetchSpec::default()
            .validate()
            .expect("the defaults are valid")
    }
}

impl FetchSettings {
    /// The page listing `cloud`'s files: the mirror's index, an override, or Microsoft's
    /// download details page. `None` for a mirror directory.
    pub fn page(&self, cloud: Cloud) -> Option<String> {
        match &self.mirror {
            Some(Mirror::Dir(_)) => None,
            Some(Mirror::Url(url)) => Some(url.clone()),
            None => Some(
                self.pages
                    .get(&cloud)
                    .cloned()
                    .unwrap_or_else(|| discover::details_page(cloud)),
            ),
        }
    }

    /// The folder `cloud`'s files sit in (ends with `/`): the mirror, an override, or
    /// Microsoft's stable path.
    pub fn folder(&self, cloud: Cloud) -> String {
        match &self.mirror {
            Some(Mirror::Url(url)) => url.clone(),
            _ => self
                .folders
                .get(&cloud)
                .cloned()
                .unwrap_or_else(|| discover::stable_path(cloud).to_string()),
        }
    }

    /// Whether files come from Microsoft itself (not a mirror or overridden paths), where
    /// AzureGermany is known to be retired.
    pub fn from_microsoft(&self, cloud: Cloud) -> bool {
        self.mirror.is_none() && !self.folders.contains_key(&cloud)
    }
}

impl FetchSpec {
    /// Checks every setting; the message says what is wrong and what to write instead.
    pub fn validate(self) -> Result<FetchSettings, String> {
        let clouds = match self.clouds {
            None => None,
            Some(list) if list.is_empty() => {
                return Err("clouds = [] fetches nothing: name clouds (Public, AzureGovernment, China, AzureGermany) or \"all\", or leave it out".into())
            }
            Some(list) => Some(Cloud::parse_list(&list).map_err(|e| format!("clouds: {e}"))?),
        };
        let proxy = match self.proxy.as_deref() {
            None | Some("env") => ProxyChoice::Env,
            Some("none") => ProxyChoice::None,
            Some(url) => ProxyChoice::Url(ProxyUrl::parse(url).map_err(|e| format!("proxy: {e}"))?),
        };
        let credentials = credential_source(
            self.proxy_credentials_file,
            self.proxy_user_env,
            self.proxy_password_env,
        )?;
        let mirror = mirror(self.mirror)?;
        let mut allowed_hosts = self
            .allowed_hosts
            .unwrap_or_else(|| vec![MICROSOFT_HOST.to_string()]);
        if let Some(Mirror::Url(url)) = &mirror {
            allowed_hosts.push(host_of(url).to_string());
        }
        let pages = per_cloud("pages", self.pages)?;
        let folders = per_cloud("folders", self.folders)?
            .into_iter()
            .map(|(c, url)| Ok((c, folder_url(&format!("folders.{c}"), &url)?)))
            .collect::<Result<_, String>>()?;
        Ok(FetchSettings {
            clouds,
            proxy,
            no_proxy: self.no_proxy.unwrap_or_default(),
            credentials,
            ca_bundle: self.ca_bundle,
            allowed_hosts,
            mirror,
            timeout: seconds("timeout_seconds", self.timeout_seconds, 300)?,
            connect_timeout: seconds("connect_timeout_seconds", self.connect_timeout_seconds, 20)?,
            retries: match self.retries {
                Some(n) if n > 10 => return Err(format!("retries = {n}: at most 10")),
                n => n.unwrap_or(3),
            },
            retry_delay: Duration::from_millis(self.retry_delay_ms.unwrap_or(1000)),
            overdue_days: match self.overdue_days {
                None => super::discover::OVERDUE_DAYS,
                Some(d @ 7..=365) => d,
                Some(d) => return Err(format!("overdue_days = {d}: use 7 to 365 (Microsoft publishes weekly, with gaps of up to 22 days)")),
            },
            pages,
            folders,
        })
    }
}

/// Where proxy credentials come from: a file, or two environment variables (not both).
fn credential_source(
    file: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
) -> Result<CredentialSource, String> {
    Ok(match (file, user, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(
                "set either proxy_credentials_file or proxy_user_env/proxy_password_env, not both"
                    .into(),
            )
        }
        (Some(file), None, None) => CredentialSource::File(file),
        (None, user, password) => CredentialSource::Env {
            user: user.unwrap_or_else(|| PROXY_USER_ENV.into()),
            password: password.unwrap_or_else(|| PROXY_PASSWORD_ENV.into()),
        },
    })
}

/// `mirror`: an https:// folder or a local directory.
fn mirror(text: Option<String>) -> Result<Option<Mirror>, String> {
    Ok(match text {
        None => None,
        Some(m) if m.starts_with("https://") => Some(Mirror::Url(folder_url("mirror", &m)?)),
        Some(m) if m.contains("://") => {
            return Err(format!(
                "mirror {m:?}: only https:// mirrors or local directories are allowed"
            ))
        }
        Some(m) => Some(Mirror::Dir(PathBuf::from(m))),
    })
}

/// `pages` / `folders`: cloud → https:// URL.
fn per_cloud(
    key: &str,
    map: Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<Cloud, String>, String> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(cloud, url)| {
            let cloud: Cloud = cloud
                .parse()
                .map_err(|e: crate::core::model::UnknownCloud| format!("{key}: {e}"))?;
            if !url.starts_with("https://") {
                return Err(format!(
                    "{key}.{cloud} = {url:?}: only https:// URLs are allowed"
                ));
            }
            Ok((cloud, url))
        })
        .collect()
}

/// A timeout in seconds: at least 1.
fn seconds(key: &str, v: Option<u64>, default: u64) -> Result<Duration, String> {
    match v {
        Some(0) => Err(format!(
            "{key} = 0 would fail every request: use at least 1"
        )),
        v => Ok(Duration::from_secs(v.unwrap_or(default))),
    }
}

/// A folder URL ends with `/`, so file names append to it.
fn folder_url(key: &str, url: &str) -> Result<String, String> {
    if url.contains(['?', '#']) {
        return Err(format!(
            "{key} {url:?}: a folder URL has no query or fragment"
        ));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<FetchSettings, String> {
        toml::from_str::<FetchSpec>(toml_text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_fetch_from_microsoft_through_the_environments_proxy() {
        let s = FetchSettings::default();
        assert_eq!(s.proxy, ProxyChoice::Env);
        assert_eq!(s.allowed_hosts, ["download.microsoft.com"]);
        assert_eq!(s.retries, 3);
        assert_eq!(
            s.page(Cloud::China).unwrap(),
            discover::details_page(Cloud::China)
        );
        assert_eq!(
            s.folder(Cloud::Public),
            discover::stable_path(Cloud::Public)
        );
        assert!(s.from_microsoft(Cloud::AzureGermany));
        assert_eq!(
            s.credentials,
            CredentialSource::Env {
                user: "TAGWALL_PROXY_USER".into(),
                password: "TAGWALL_PROXY_PASSWORD".into()
            }
        );
    }

    #[test]
    fn a_mirror_replaces_pages_and_folders_and_its_host_is_allowed() {
        let s = spec("mirror = \"https://mirror.corp:8443/st\"\nclouds = [\"all\"]").unwrap();
        assert_eq!(
            s.page(Cloud::Public).unwrap(),
            "https://mirror.corp:8443/st/"
        );
        assert_eq!(s.folder(Cloud::China), "https://mirror.corp:8443/st/");
        assert_eq!(s.allowed_hosts, ["download.microsoft.com", "mirror.corp"]);
        assert_eq!(s.clouds.unwrap().len(), 4);
        let s = spec("mirror = \"/srv/servicetags\"").unwrap();
        assert_eq!(s.mirror, Some(Mirror::Dir("/srv/servicetags".into())));
        assert_eq!(s.page(Cloud::Public), None);
    }

    #[test]
    fn bad_settings_say_what_to_write() {
        for (text, wanted) in [
            ("mirror = \"http://m/\"", "only https:// mirrors"),
            ("proxy = \"proxy.corp:8080\"", "proxy: "),
            ("clouds = [\"Mars\"]", "clouds: "),
            ("clouds = []", "fetches nothing"),
            ("timeout_seconds = 0", "use at least 1"),
            ("retries = 99", "at most 10"),
            ("pages = { Public = \"http://x/\" }", "only https://"),
            ("folders = { Public = \"https://x/?a\" }", "no query"),
            (
                "proxy_credentials_file = \"f\"\nproxy_user_env = \"U\"",
                "not both",
            ),
            ("prxy = \"none\"", "unknown field `prxy`"),
        ] {
            let err = spec(text).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
}
