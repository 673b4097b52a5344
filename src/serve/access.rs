//! The access log: one `tracing` event per request, target `tagwall::access`, level info — a JSON
//! line with `--log-format json`, a text line otherwise. It names the client, the request and the
//! answer; never a header's secret (no `Authorization`, no query string).

use std::net::SocketAddr;
use std::time::Duration;

use hyper::header::{self, HeaderMap};
use hyper::{Method, Version};

use super::http::Reply;

/// The longest `User-Agent` logged; longer ones are cut.
const MAX_AGENT: usize = 200;

/// What the log says of one request.
pub struct Entry<'a> {
    /// The client's address.
    pub remote: SocketAddr,
    /// The method.
    pub method: &'a Method,
    /// The path, without the query string.
    pub path: &'a str,
    /// HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// The request's headers (only `User-Agent` is read).
    pub headers: &'a HeaderMap,
}

/// Logs one answered request.
pub fn log(entry: &Entry<'_>, reply: &Reply, elapsed: Duration) {
    let bytes = if entry.method == Method::HEAD {
        0
    } else {
        hyper::body::Body::size_hint(reply.body())
            .exact()
            .unwrap_or(0)
    };
    tracing::info!(
        target: "tagwall::access",
        remote = %entry.remote,
        method = %entry.method,
        path = %entry.path,
        http = version(entry.version),
        status = reply.status().as_u16(),
        bytes,
        gzip = reply.headers().contains_key(header::CONTENT_ENCODING),
        ms = elapsed.as_secs_f64() * 1000.0,
        agent = %agent(entry.headers),
        "{} {} {}",
        entry.method,
        entry.path,
        reply.status().as_u16()
    );
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "?",
    }
}

/// The client's `User-Agent`: visible ASCII only (anything else is `-`), at most
/// [`MAX_AGENT`] characters.
fn agent(headers: &HeaderMap) -> &str {
    let Some(text) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    else {
        return "-";
    };
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return "-";
    }
    &text[..text.len().min(MAX_AGENT)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn the_agent_is_visible_ascii_and_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(agent(&h), "-");
        h.insert(header::USER_AGENT, HeaderValue::from_static("PAN-OS/11.1"));
        assert_eq!(agent(&h), "PAN-OS/11.1");
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_bytes(b"evil\xff\x01").unwrap_or(HeaderValue::from_static("x\t")),
        );
        assert_eq!(agent(&h), "-");
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_str(&"a".repeat(1000)).unwrap(),
        );
        assert_eq!(agent(&h).len(), MAX_AGENT);
        assert_eq!(version(Version::HTTP_2), "2");
    }
}
