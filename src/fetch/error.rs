//! Why a request failed, in the operator's terms: each message names the host (and proxy) tried
//! and what to change. Built from reqwest's error chain by [`classify`].

use std::error::Error as StdError;
use std::time::Duration;

use crate::fetch::discover::RefusedUrl;
use crate::fetch::proxy::ProxyUrl;

/// Why the redirect policy stopped following redirects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedRedirect {
    /// The hop's URL is not https or its host is not allowed.
    #[error("{0} (every redirect must stay on https and on the requested host or [fetch] allowed_hosts)")]
    Url(RefusedUrl),
    /// More hops than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects: check the URL or the mirror")]
    TooMany,
}

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// The redirect policy: at most [`MAX_REDIRECTS`] hops, each on https and on the host first
/// requested or one of `allowed` (so a mirror or Microsoft cannot send a download elsewhere).
pub fn redirect_policy(allowed: Vec<String>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RefusedRedirect::TooMany);
        }
        let mut hosts = allowed.clone();
        if let Some(first) = attempt.previous().first().and_then(|u| u.host_str()) {
            hosts.push(first.to_string());
        }
        match crate::fetch::discover::check_url(attempt.url().as_str(), &hosts) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(RefusedRedirect::Url(e)),
        }
    })
}

/// Why a download or page request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not https or its host is not allowed.
    #[error(transparent)]
    Refused(#[from] RefusedUrl),
    /// The proxy answered 407.
    #[error("the proxy {proxy} requires authentication (407 Proxy Authentication Required) for {url}: {hint}")]
    ProxyAuth {
        /// The proxy.
        proxy: ProxyUrl,
        /// The URL requested.
        url: String,
        /// What to do, depending on whether credentials were sent.
        hint: String,
    },
    /// The proxy refused to open a tunnel (403/502/503 … on CONNECT).
    #[error("the proxy {proxy} refused to open a tunnel to {target} (CONNECT answered {answer}): allow CONNECT to {target} on the proxy")]
    TunnelRefused {
        /// The proxy.
        proxy: ProxyUrl,
        /// `host:port` of the tunnel.
        target: String,
        /// The proxy's status line, or `with an error` when it could not be asked again.
        answer: String,
    },
    /// The server's certificate is not trusted.
    #[error("the certificate of {host} is not trusted ({detail}) for {url}: the network may be inspecting TLS; set [fetch] ca_bundle to the inspecting CA's PEM file, or ask for {host} to be exempt from inspection")]
    Untrusted {
        /// The server.
        host: String,
        /// The URL requested.
        url: String,
        /// rustls's reason.
        detail: String,
    },
    /// A name did not resolve.
    #[error("could not resolve {host} (DNS) for {url}: check the name and the resolver{hint}")]
    Dns {
        /// The name (the proxy's, when one is used).
        host: String,
        /// The URL requested.
        url: String,
        /// A hint about the proxy.
        hint: String,
    },
    /// The connection was refused.
    #[error("connection to {target} refused for {url}: nothing listens there or a firewall rejects it{hint}")]
    ConnectRefused {
        /// `host:port` (the proxy's, when one is used).
        target: String,
        /// The URL requested.
        url: String,
        /// A hint about the proxy.
        hint: String,
    },
    /// No answer in time.
    #[error("timed out after {seconds} s {during} {target} for {url}: the network or a firewall may drop the traffic{hint}; raise [fetch] timeout_seconds if the link is slow")]
    Timeout {
        /// `host:port` (the proxy's, when one is used).
        target: String,
        /// `connecting to` or `waiting for`.
        during: &'static str,
        /// The limit.
        seconds: u64,
        /// The URL requested.
        url: String,
        /// A hint about the proxy.
        hint: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// What it means here.
        hint: String,
    },
    /// The body exceeds the size limit.
    #[error("{url} is larger than {limit} bytes: not a ServiceTags file; check the URL")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The connection closed before the whole body arrived.
    #[error("the download of {url} was cut short after {got} bytes{of}: the connection closed early; try again (a proxy may limit transfers)")]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// ` of N` when the length was announced.
        of: String,
    },
    /// A redirect led somewhere downloads may not go, or there were too many.
    #[error("{url} redirected to a URL that is refused: {reason}")]
    Redirect {
        /// The URL requested.
        url: String,
        /// Why the hop was refused, and what to do.
        reason: String,
    },
    /// The client could not be set up.
    #[error("{0}")]
    Setup(String),
    /// Anything else, with reqwest's chain.
    #[error("request to {url} failed: {message}")]
    Other {
        /// The URL.
        url: String,
        /// The error chain.
        message: String,
    },
}

impl FetchError {
    /// Whether retrying may help: timeouts, resets, cut-short bodies and 5xx/429 answers.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Truncated { .. } => true,
            FetchError::Status { status, .. } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::Other { message, .. } => {
                message.contains("reset") || message.contains("connection closed")
            }
            _ => false,
        }
    }
}

/// Every error in `e`'s chain, including the ones `io::Error` wraps (whose `source` skips them).
pub fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        out.push(c);
        // An io::Error's `source` skips the error it carries (a TLS library's, often inside
        // another io::Error): step into it instead.
        cur = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => c.source(),
        };
    }
    out
}

/// The request being classified: its URL and host, the proxy it went through, the timeouts.
pub struct Attempt<'a> {
    /// The URL.
    pub url: &'a str,
    /// Its host.
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// The proxy used, if any.
    pub proxy: Option<&'a ProxyUrl>,
    /// Whether credentials were sent to the proxy.
    pub sent_credentials: bool,
    /// The connect timeout.
    pub connect_timeout: Duration,
    /// The whole-request timeout.
    pub timeout: Duration,
}

/// Turns a reqwest error into the operator's terms: by the errors' types where the chain has
/// them (a refused redirect, rustls's certificate verdict, a refused connection, a timeout), by
/// their text only where reqwest and hyper-util give no type (a proxy's 407 or refusal to a
/// `CONNECT`: reqwest's tunnel errors; a failed name lookup: hyper-util's "dns error").
pub fn classify(e: &reqwest::Error, at: &Attempt<'_>) -> FetchError {
    let errors = chain(e);
    let text: Vec<String> = errors.iter().map(|c| c.to_string()).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    let url = at.url.to_string();
    let target = format!("{}:{}", at.host, at.port);
    let (first_hop, hint) = match at.proxy {
        Some(p) => (
            format!("{}:{}", p.host, p.port),
            format!(" (the proxy {p}, used for {target}; check [fetch] proxy)"),
        ),
        None => (
            target.clone(),
            " (connecting directly: if outbound traffic must use a proxy, set [fetch] proxy or HTTPS_PROXY)".to_string(),
        ),
    };
    if let Some(refused) = errors
        .iter()
        .find_map(|c| c.downcast_ref::<RefusedRedirect>())
    {
        return FetchError::Redirect {
            url,
            reason: refused.to_string(),
        };
    }
    if let Some(p) = at.proxy {
        if has("proxy authorization required") {
            return proxy_auth(p, url, 407, at.sent_credentials);
        }
        if has("tunnel error: unsuccessful") || has("tunnel error: unexpected end of file") {
            return FetchError::TunnelRefused {
                proxy: p.clone(),
                target,
                answer: "with an error".into(),
            };
        }
    }
    // rustls's verdict, by its type (the chain reaches into the io::Error that carries it).
    let invalid = errors
        .iter()
        .find_map(|c| match c.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(reason)) => Some(format!("{reason:?}")),
            _ => None,
        });
    if let Some(detail) = invalid {
        return FetchError::Untrusted {
            host: at.host.to_string(),
            url,
            detail,
        };
    }
    if has("dns error") {
        let host = at.proxy.map_or(at.host.to_string(), |p| p.host.clone());
        return FetchError::Dns { host, url, hint };
    }
    if errors.iter().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    }) {
        return FetchError::ConnectRefused {
            target: first_hop,
            url,
            hint,
        };
    }
    if e.is_timeout() {
        let (during, limit) = if e.is_connect() {
            ("connecting to", at.connect_timeout)
        } else {
            ("waiting for", at.timeout)
        };
        return FetchError::Timeout {
            target: if e.is_connect() { first_hop } else { target },
            during,
            seconds: limit.as_secs(),
            url,
            hint,
        };
    }
    FetchError::Other {
        url,
        message: text.join(": "),
    }
}

/// The proxy wants (other) credentials: 407, or 401 as some proxies (tinyproxy) answer wrong ones.
pub fn proxy_auth(
    proxy: &ProxyUrl,
    url: String,
    status: u16,
    sent_credentials: bool,
) -> FetchError {
    let hint = if sent_credentials {
        format!("the proxy rejected the credentials sent ({status}); check TAGWALL_PROXY_USER/TAGWALL_PROXY_PASSWORD or [fetch] proxy_credentials_file")
    } else {
        "configure credentials: set TAGWALL_PROXY_USER and TAGWALL_PROXY_PASSWORD, or [fetch] proxy_credentials_file".to_string()
    };
    FetchError::ProxyAuth {
        proxy: proxy.clone(),
        url,
        hint,
    }
}
