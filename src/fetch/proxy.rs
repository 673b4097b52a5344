//! Which proxy a request goes through, with which credentials. Resolved once per run from the
//! settings and the environment, so `fetch`, `doctor` and every error message agree on the route.
//!
//! Credentials are [`Secret`]s: they never appear in `Debug`, logs or errors, and a proxy URL
//! is only ever shown without them.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

pub use crate::core::secret::Secret;

/// Default environment variables holding the proxy user name and password.
pub const PROXY_USER_ENV: &str = "TAGWALL_PROXY_USER";
/// See [`PROXY_USER_ENV`].
pub const PROXY_PASSWORD_ENV: &str = "TAGWALL_PROXY_PASSWORD";

/// Where the proxy user name and password come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Two environment variables (by default `TAGWALL_PROXY_USER`, `TAGWALL_PROXY_PASSWORD`).
    Env {
        /// The user name's variable.
        user: String,
        /// The password's variable.
        password: String,
    },
    /// A file holding one line `user:password`.
    File(PathBuf),
}

/// A proxy user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (shown in diagnostics: it is not the secret part).
    pub user: String,
    /// The password.
    pub password: Secret,
    /// Where they came from, for messages (`TAGWALL_PROXY_USER/…`, a file, `HTTPS_PROXY`).
    pub origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .field("origin", &self.origin)
            .finish()
    }
}

/// A proxy's address: `http://host:port` (or `https://`), never with credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl ProxyUrl {
    /// Parses `http://proxy.corp:8080`. Credentials inside the URL are refused (put them in
    /// the environment or a file); see [`ProxyUrl::parse_env`] for the environment's URLs.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let (url, creds) = ProxyUrl::parse_env(text)?;
        if creds.is_some() {
            return Err(format!(
                "{url} is written with credentials: remove them from the settings and set {} and {} (or proxy_credentials_file) instead",
                PROXY_USER_ENV,
                PROXY_PASSWORD_ENV
            ));
        }
        Ok(url)
    }

    /// Parses a proxy URL that may carry `user:password@` (as `HTTPS_PROXY` often does).
    /// Errors never repeat the credentials.
    pub fn parse_env(text: &str) -> Result<(ProxyUrl, Option<(String, Secret)>), String> {
        let url = reqwest::Url::parse(text.trim()).map_err(|_| {
            "not a URL: write the scheme, host and port, e.g. http://proxy.corp:8080".to_string()
        })?;
        let shown = |url: &reqwest::Url| {
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{}: proxies are reached over http:// (or https://), e.g. http://proxy.corp:8080",
                shown(&url)
            ));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_string(),
            _ => return Err(format!("{}: no proxy host", shown(&url))),
        };
        let Some(port) = url.port() else {
            return Err(format!(
                "{}: no port: add the port the proxy listens on, e.g. {}:8080",
                shown(&url),
                shown(&url)
            ));
        };
        let creds = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_string());
            (
                decode(url.username()),
                Secret::new(decode(url.password().unwrap_or(""))),
            )
        });
        Ok((
            ProxyUrl {
                scheme: url.scheme().to_string(),
                host,
                port,
            },
            creds,
        ))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The proxy setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Connect directly, whatever the environment says (`proxy = "none"`).
    None,
    /// `HTTPS_PROXY` (or `ALL_PROXY`) and `NO_PROXY` of the environment (`proxy = "env"`).
    Env,
    /// This proxy (`proxy = "http://…"`).
    Url(ProxyUrl),
}

/// The proxy in force, with its bypass list and credentials.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// The proxy, if any.
    pub proxy: Option<ProxyUrl>,
    /// Where the proxy came from (`[fetch] proxy`, `HTTPS_PROXY`, …).
    pub origin: String,
    /// Hosts reached directly.
    pub no_proxy: NoProxy,
    /// Proxy credentials, if any.
    pub credentials: Option<Credentials>,
    /// A hint for the operator (e.g. only `HTTP_PROXY` is set).
    pub note: Option<String>,
}

impl Route {
    /// Resolves the route from the settings and the environment (read through `env`).
    pub fn resolve(
        choice: &ProxyChoice,
        no_proxy: &[String],
        credentials: &CredentialSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Route, String> {
        fn var(
            env: &dyn Fn(&str) -> Option<String>,
            names: &[&'static str],
        ) -> Option<(&'static str, String)> {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
        }
        let mut route = Route {
            no_proxy: NoProxy::new(no_proxy.iter().map(String::as_str)),
            ..Route::default()
        };
        let mut url_creds = None;
        match choice {
            ProxyChoice::None => {}
            ProxyChoice::Url(url) => {
                route.proxy = Some(url.clone());
                route.origin = "[fetch] proxy".into();
            }
            ProxyChoice::Env => {
                if let Some((name, value)) = var(
                    env,
                    &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
                ) {
                    let (url, creds) = ProxyUrl::parse_env(&value)
                        .map_err(|e| format!("the environment variable {name}: {e}"))?;
                    route.proxy = Some(url);
                    route.origin = name.to_string();
                    url_creds = creds.map(|(user, password)| Credentials {
                        user,
                        password,
                        origin: format!("the credentials in {name}"),
                    });
                } else if let Some((name, _)) = var(env, &["HTTP_PROXY", "http_proxy"]) {
                    route.note = Some(format!(
                        "{name} is set but HTTPS_PROXY is not: downloads are https://, which (as with curl) only HTTPS_PROXY or ALL_PROXY route; set HTTPS_PROXY or [fetch] proxy"
                    ));
                }
                if let Some((_, value)) = var(env, &["NO_PROXY", "no_proxy"]) {
                    route.no_proxy.extend(value.split(','));
                }
            }
        }
        if route.proxy.is_some() {
            route.credentials = read_credentials(credentials, env)?.or(url_creds);
        }
        Ok(route)
    }

    /// The proxy a request to `host` goes through, if any.
    pub fn proxy_for(&self, host: &str) -> Option<&ProxyUrl> {
        self.proxy
            .as_ref()
            .filter(|_| !self.no_proxy.bypasses(host))
    }

    /// How `host` is reached, for messages: `through the proxy P` or `directly`.
    pub fn describe(&self, host: &str) -> String {
        match self.proxy_for(host) {
            Some(p) => format!("through the proxy {p} (from {})", self.origin),
            None if self.proxy.is_some() => "directly (NO_PROXY/no_proxy)".to_string(),
            None => "directly".to_string(),
        }
    }
}

fn read_credentials(
    source: &CredentialSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, String> {
    match source {
        CredentialSource::Env { user, password } => match (env(user), env(password)) {
            (None, None) => Ok(None),
            (Some(u), Some(p)) => Ok(Some(Credentials {
                user: u,
                password: Secret::new(p),
                origin: format!("{user}/{password}"),
            })),
            (Some(_), None) => Err(format!(
                "{user} is set but {password} is not: set both, or neither"
            )),
            (None, Some(_)) => Err(format!(
                "{password} is set but {user} is not: set both, or neither"
            )),
        },
        CredentialSource::File(path) => credentials_file(path).map(Some),
    }
}

/// Reads `user:password` from the first line of `path`.
fn credentials_file(path: &Path) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "could not read the proxy credentials file {}: {e}",
            path.display()
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    let Some((user, password)) = line.split_once(':').filter(|(u, _)| !u.is_empty()) else {
        return Err(format!(
            "the proxy credentials file {} must hold one line user:password",
            path.display()
        ));
    };
    if crate::localfs::open_to_others(path).is_some() {
        tracing::warn!(
            "the proxy credentials file {} can be read by other users: chmod 600 it",
            path.display()
        );
    }
    Ok(Credentials {
        user: user.to_string(),
        password: Secret::new(password),
        origin: path.display().to_string(),
    })
}

/// Hosts reached without the proxy, as curl's `NO_PROXY`: `*` for all, `corp.example` or
/// `.corp.example` for a domain and its subdomains, an address, or a CIDR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    domains: Vec<String>,
    nets: Vec<IpNet>,
}

impl NoProxy {
    /// Parses entries; blanks are ignored, ports dropped.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> NoProxy {
        let mut n = NoProxy::default();
        n.extend(entries);
        n
    }

    /// Adds entries.
    pub fn extend<'a>(&mut self, entries: impl IntoIterator<Item = &'a str>) {
        for e in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            if e == "*" {
                self.all = true;
            } else if let Ok(net) = e.parse::<IpNet>() {
                self.nets.push(net);
            } else if let Ok(addr) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                self.nets.push(IpNet::from(addr));
            } else {
                let host = e.rsplit_once(':').map_or(e, |(h, p)| {
                    if p.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        e
                    }
                });
                self.domains.push(
                    host.trim_start_matches("*.")
                        .trim_start_matches('.')
                        .to_ascii_lowercase(),
                );
            }
        }
    }

    /// Whether `host` (a name or an address) is reached directly.
    pub fn bypasses(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        if let Ok(addr) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.nets.iter().any(|n| n.contains(&addr));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|d| {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|r| r.ends_with('.'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn default_creds() -> CredentialSource {
        CredentialSource::Env {
            user: "TAGWALL_PROXY_USER".into(),
            password: "TAGWALL_PROXY_PASSWORD".into(),
        }
    }

    #[test]
    fn proxy_urls_need_a_scheme_and_port_and_never_show_credentials() {
        let p = ProxyUrl::parse("http://proxy.corp:8080").unwrap();
        assert_eq!(p.to_string(), "http://proxy.corp:8080");
        assert_eq!(
            ProxyUrl::parse("http://[::1]:3128").unwrap().to_string(),
            "http://[::1]:3128"
        );
        assert!(ProxyUrl::parse("proxy.corp:8080")
            .unwrap_err()
            .contains("http://proxy.corp:8080"));
        assert!(ProxyUrl::parse("http://proxy.corp")
            .unwrap_err()
            .contains("no port"));
        assert!(ProxyUrl::parse("socks5://p:1080")
            .unwrap_err()
            .contains("http://"));
        let err = ProxyUrl::parse("http://alice:s3cret@proxy.corp:8080").unwrap_err();
        assert!(!err.contains("s3cret") && !err.contains("alice"), "{err}");
        let (url, creds) = ProxyUrl::parse_env("http://alice:p%40ss@proxy.corp:8080").unwrap();
        assert_eq!(url.to_string(), "http://proxy.corp:8080");
        let (user, password) = creds.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("alice", "p@ss"));
        assert_eq!(format!("{password:?}"), "***");
    }

    #[test]
    fn the_environment_gives_the_proxy_and_its_exceptions() {
        let route = Route::resolve(
            &ProxyChoice::Env,
            &["mirror.corp".into()],
            &default_creds(),
            &env(&[
                ("HTTPS_PROXY", "http://bob:pw@10.0.0.1:3128"),
                (
                    "NO_PROXY",
                    "localhost,.internal.example,10.1.0.0/16,127.0.0.1",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(route.origin, "HTTPS_PROXY");
        assert_eq!(
            route
                .proxy_for("download.microsoft.com")
                .unwrap()
                .to_string(),
            "http://10.0.0.1:3128"
        );
        for direct in [
            "mirror.corp",
            "a.internal.example",
            "internal.example",
            "10.1.2.3",
            "127.0.0.1",
            "LOCALHOST",
        ] {
            assert!(route.proxy_for(direct).is_none(), "{direct}");
        }
        assert!(route.proxy_for("notinternal.example").is_some());
        let creds = route.credentials.unwrap();
        assert_eq!(creds.user, "bob");
        assert!(!format!("{creds:?}").contains("pw"));

        let none = Route::resolve(
            &ProxyChoice::None,
            &[],
            &default_creds(),
            &env(&[("HTTPS_PROXY", "http://p:1")]),
        )
        .unwrap();
        assert!(none.proxy_for("download.microsoft.com").is_none());

        let only_http = Route::resolve(
            &ProxyChoice::Env,
            &[],
            &default_creds(),
            &env(&[("HTTP_PROXY", "http://p:1")]),
        )
        .unwrap();
        assert!(only_http.proxy.is_none());
        assert!(only_http.note.unwrap().contains("HTTPS_PROXY is not"));
    }

    #[test]
    fn credentials_from_variables_win_over_the_urls_and_must_be_complete() {
        let explicit = ProxyChoice::Url(ProxyUrl::parse("http://p.corp:8080").unwrap());
        let route = Route::resolve(
            &explicit,
            &[],
            &default_creds(),
            &env(&[
                ("TAGWALL_PROXY_USER", "svc"),
                ("TAGWALL_PROXY_PASSWORD", "hunter2"),
            ]),
        )
        .unwrap();
        let c = route.credentials.unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("svc", "hunter2"));
        let err = Route::resolve(
            &explicit,
            &[],
            &default_creds(),
            &env(&[("TAGWALL_PROXY_USER", "svc")]),
        )
        .unwrap_err();
        assert!(err.contains("TAGWALL_PROXY_PASSWORD is not"), "{err}");
        // No proxy: credentials are not even read.
        assert!(Route::resolve(
            &ProxyChoice::None,
            &[],
            &default_creds(),
            &env(&[("TAGWALL_PROXY_USER", "svc")])
        )
        .unwrap()
        .credentials
        .is_none());
    }

    #[test]
    fn a_credentials_file_holds_user_colon_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cred");
        std::fs::write(&path, "svc:pa:ss\n").unwrap();
        let c = credentials_file(&path).unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("svc", "pa:ss"));
        std::fs::write(&path, "no colon here\n").unwrap();
        assert!(credentials_file(&path)
            .unwrap_err()
            .contains("one line user:password"));
        assert!(credentials_file(&dir.path().join("missing"))
            .unwrap_err()
            .contains("could not read"));
    }
}
