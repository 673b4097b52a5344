//! The one HTTP client of a run: reqwest with rustls, built once from the settings (proxy,
//! extra roots, timeouts, `User-Agent`, gzip), with bounded retries, a size limit and
//! conditional downloads.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

use crate::core::host::host_of;
use crate::fetch::error::{classify, proxy_auth, Attempt, FetchError};
use crate::fetch::proxy::Route;
use crate::fetch::settings::FetchSettings;
use crate::fetch::tunnel;
use crate::fetch::USER_AGENT;
use crate::store::Validators;

/// The largest body accepted: a Public file is about 4 MB.
pub const MAX_BODY: u64 = 64 * 1024 * 1024;

/// A downloaded body.
#[derive(Debug, Clone)]
pub struct Body {
    /// The bytes (decoded if the server sent them gzip-encoded).
    pub bytes: Vec<u8>,
    /// sha256 of the bytes, hex.
    pub sha256: String,
    /// The `ETag` answered.
    pub etag: Option<String>,
    /// The `Last-Modified` answered.
    pub last_modified: Option<String>,
}

/// What a conditional download gave.
#[derive(Debug, Clone)]
pub enum Download {
    /// 304: the stored validators still hold; no body was sent.
    NotModified,
    /// A body.
    Body(Body),
}

/// What a `HEAD` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `Content-Length`, if sent.
    pub length: Option<u64>,
    /// `Last-Modified`, if sent.
    pub last_modified: Option<String>,
}

/// The HTTP client of a run.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    route: Arc<Route>,
    settings: Arc<FetchSettings>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client for `settings` and the proxy `route`.
    pub fn new(settings: &FetchSettings, route: Route) -> Result<Client, FetchError> {
        // One process-wide crypto provider (ring); a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .gzip(true)
            .https_only(true)
            .redirect(super::error::redirect_policy(
                settings.allowed_hosts.clone(),
            ));
        builder = match route.proxy.clone() {
            None => builder.no_proxy(),
            Some(proxy) => {
                let no_proxy = route.no_proxy.clone();
                let target = reqwest::Url::parse(&proxy.to_string())
                    .map_err(|e| FetchError::Setup(format!("proxy {proxy}: {e}")))?;
                let mut p = reqwest::Proxy::custom(move |url| {
                    let host = url.host_str().unwrap_or("");
                    (!no_proxy.bypasses(host)).then(|| target.clone())
                });
                if let Some(c) = &route.credentials {
                    p = p.basic_auth(&c.user, c.password.expose());
                }
                builder.proxy(p)
            }
        };
        if let Some(path) = &settings.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                FetchError::Setup(format!(
                    "could not read [fetch] ca_bundle {}: {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                FetchError::Setup(format!(
                    "[fetch] ca_bundle {} holds no usable PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(FetchError::Setup(format!(
                    "[fetch] ca_bundle {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| FetchError::Setup(format!("could not set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            route: Arc::new(route),
            settings: Arc::new(settings.clone()),
        })
    }

    /// The proxy route.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// GETs a page as text (retried).
    pub async fn page(&self, url: &str) -> Result<String, FetchError> {
        let body = self.retrying(|| self.get(url, None)).await?;
        match body {
            Download::Body(b) => Ok(String::from_utf8_lossy(&b.bytes).into_owned()),
            Download::NotModified => unreachable!("no validators were sent"),
        }
    }

    /// HEADs a file: `None` for 404/410 (not published), an error for anything else that is not
    /// a success.
    pub async fn head(&self, url: &str) -> Result<Option<Head>, FetchError> {
        self.retrying(|| async {
            let response = match self.http.head(url).send().await {
                Ok(r) => r,
                Err(e) => return Err(self.explain(self.classify(&e, url), url).await),
            };
            let status = response.status();
            if matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE) {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(status_error(url, status));
            }
            let h = response.headers();
            Ok(Some(Head {
                length: h
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok()),
                last_modified: text(h, header::LAST_MODIFIED),
            }))
        })
        .await
    }

    /// POSTs a JSON body (a webhook), once: a failed notification is reported, not retried
    /// into the next run.
    pub async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<(), FetchError> {
        let response = match self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.explain(self.classify(&e, url), url).await),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(url, status));
        }
        Ok(())
    }

    /// Downloads a file, conditionally when `validators` are given (retried).
    pub async fn download(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<Download, FetchError> {
        self.retrying(|| self.get(url, validators)).await
    }

    async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<Download, FetchError> {
        let mut request = self.http.get(url);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.explain(self.classify(&e, url), url).await),
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(Download::NotModified);
        }
        if !status.is_success() {
            return Err(status_error(url, status));
        }
        let announced = response.content_length();
        if announced.is_some_and(|n| n > MAX_BODY) {
            return Err(FetchError::TooLarge {
                url: url.into(),
                limit: MAX_BODY,
            });
        }
        let (etag, last_modified) = (
            text(response.headers(), header::ETAG),
            text(response.headers(), header::LAST_MODIFIED),
        );
        let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(MAX_BODY) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() as u64 + chunk.len() as u64 > MAX_BODY {
                        return Err(FetchError::TooLarge {
                            url: url.into(),
                            limit: MAX_BODY,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_body() || e.is_decode() => {
                    return Err(FetchError::Truncated {
                        url: url.into(),
                        got: bytes.len() as u64,
                        of: announced.map(|n| format!(" of {n}")).unwrap_or_default(),
                    })
                }
                Err(e) => return Err(self.classify(&e, url)),
            }
        }
        let sha256 = crate::core::digest::sha256_hex(&bytes);
        Ok(Download::Body(Body {
            bytes,
            sha256,
            etag,
            last_modified,
        }))
    }

    /// Runs `attempt` up to `1 + retries` times while it fails transiently, sleeping an
    /// exponentially growing, jittered delay between tries.
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, FetchError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && tries < self.settings.retries => {
                    let delay = backoff(self.settings.retry_delay, tries, jitter());
                    tries += 1;
                    tracing::warn!(
                        "{e}; retry {tries} of {} in {} ms",
                        self.settings.retries,
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// A refused tunnel, made precise by asking the proxy again by hand: its status line, and
    /// 401/407 as the authentication failure they are.
    async fn explain(&self, e: FetchError, url: &str) -> FetchError {
        let FetchError::TunnelRefused { proxy, target, .. } = &e else {
            return e;
        };
        let Some((host, port)) = target.rsplit_once(':') else {
            return e;
        };
        let port = port.parse().unwrap_or(443);
        let host = host.trim_matches(['[', ']']);
        let creds = self.route.credentials.as_ref();
        match tunnel::ask(proxy, creds, host, port, self.settings.connect_timeout).await {
            Ok((code @ (401 | 407), _)) => {
                proxy_auth(proxy, url.to_string(), code, creds.is_some())
            }
            Ok((code, reason)) if code != 200 => FetchError::TunnelRefused {
                proxy: proxy.clone(),
                target: target.clone(),
                answer: format!("{code} {reason}"),
            },
            _ => e,
        }
    }

    fn classify(&self, e: &reqwest::Error, url: &str) -> FetchError {
        let host = host_of(url);
        let port = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443);
        let proxy = self.route.proxy_for(host);
        classify(
            e,
            &Attempt {
                url,
                host,
                port,
                proxy,
                sent_credentials: proxy.is_some() && self.route.credentials.is_some(),
                connect_timeout: self.settings.connect_timeout,
                timeout: self.settings.timeout,
            },
        )
    }
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn status_error(url: &str, status: StatusCode) -> FetchError {
    let hint = match status.as_u16() {
        401 | 403 => ": access denied; if a proxy or web filter sits in between, ask for download.microsoft.com to be allowed",
        404 | 410 => ": not published there (yet)",
        407 => ": a proxy requires authentication: set TAGWALL_PROXY_USER and TAGWALL_PROXY_PASSWORD, or [fetch] proxy_credentials_file",
        429 => ": too many requests; retried, still refused: try later",
        500..=599 => ": a server error; retried, still failing: try later",
        _ => "",
    };
    FetchError::Status {
        url: url.to_string(),
        status,
        hint: hint.to_string(),
    }
}

/// The delay before retry `n` (0-based): `base·2ⁿ` plus up to `base` of jitter (`jitter` in
/// [0, 1)), at most 60 s.
pub fn backoff(base: Duration, n: u32, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << n.min(16));
    exp.saturating_add(base.mul_f64(jitter.clamp(0.0, 1.0)))
        .min(Duration::from_secs(60))
}

/// A value in [0, 1) that differs between calls and processes (for jitter, not security).
pub fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(base, 3, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(base, 3, 0.5), Duration::from_millis(850));
        assert_eq!(backoff(base, 30, 0.9), Duration::from_secs(60));
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn the_user_agent_names_tagwall_and_its_version() {
        assert!(USER_AGENT.starts_with(&format!("tagwall/{}", env!("CARGO_PKG_VERSION"))));
    }
}
