//! The access log: one line per request on stderr, shaped like tagwall's other logs — a JSON
//! object `{"timestamp", "level": "INFO", "fields": {…}, "target": "tagwall::access"}` with
//! `--log-format json`, a text line otherwise. It names the client, the request and the answer;
//! never a header's secret (no `Authorization`, no query string).
//!
//! Requests append their line to [`crate::logsink`] and never wait for stderr: its thread writes
//! the lines every 200 ms (one write for hundreds of lines, as nginx's `buffer=` does). When
//! stderr is blocked (a full pipe nobody reads), only that thread waits: once 1 MiB is waiting,
//! new lines are dropped and counted (`tagwall_serve_access_log_dropped_total` in `/metrics`),
//! and serving goes on at full rate.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap};
use hyper::{Method, Version};

use super::Reply;

/// The longest `User-Agent` logged; longer ones are cut.
const MAX_AGENT: usize = 200;
/// The target other logs filter on (`RUST_LOG=info,tagwall::access=off`).
pub const TARGET: &str = "tagwall::access";

/// Whether logs are JSON lines (set once by the binary's logging set-up).
static JSON: OnceLock<bool> = OnceLock::new();

/// Says whether the process logs JSON lines (`--log-format json`); the first call wins.
pub fn set_json(json: bool) {
    let _ = JSON.set(json);
}

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

/// Where requests write their lines.
#[derive(Debug)]
pub struct AccessLog {
    dropped: AtomicU64,
    json: bool,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessLog {
    /// The log, in the shape the binary's logging set-up chose.
    pub fn new() -> Self {
        Self {
            dropped: AtomicU64::new(0),
            json: JSON.get().copied().unwrap_or(false),
        }
    }

    /// Logs one answered request.
    pub fn log(&self, entry: &Entry<'_>, reply: &Reply, elapsed: Duration) {
        let bytes = if entry.method == Method::HEAD {
            0
        } else {
            hyper::body::Body::size_hint(reply.body())
                .exact()
                .unwrap_or(0)
        };
        let line = Line {
            entry,
            status: reply.status().as_u16(),
            bytes,
            gzip: reply.headers().contains_key(header::CONTENT_ENCODING),
            ms: elapsed.as_secs_f64() * 1000.0,
            agent: agent(entry.headers),
        };
        let mut text = String::with_capacity(320);
        if self.json {
            line.json(&mut text);
        } else {
            line.text(&mut text);
        }
        text.push('\n');
        if !crate::logsink::write(text.as_bytes()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because stderr did not take them fast enough.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One line's values.
struct Line<'a> {
    entry: &'a Entry<'a>,
    status: u16,
    bytes: u64,
    gzip: bool,
    ms: f64,
    agent: &'a str,
}

impl Line<'_> {
    fn json(&self, out: &mut String) {
        let e = self.entry;
        out.push_str("{\"timestamp\":\"");
        timestamp(out);
        out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"");
        escape(out, &format!("{} {} {}", e.method, e.path, self.status));
        let _ = write!(out, "\",\"remote\":\"{}\",\"method\":\"", e.remote);
        escape(out, e.method.as_str());
        out.push_str("\",\"path\":\"");
        escape(out, e.path);
        let _ = write!(
            out,
            "\",\"http\":\"{}\",\"status\":{},\"bytes\":{},\"gzip\":{},\"ms\":{},\"agent\":\"",
            version(e.version),
            self.status,
            self.bytes,
            self.gzip,
            self.ms
        );
        escape(out, self.agent);
        let _ = write!(out, "\"}},\"target\":\"{TARGET}\"}}");
    }

    fn text(&self, out: &mut String) {
        let e = self.entry;
        timestamp(out);
        let _ = write!(
            out,
            "  INFO {TARGET}: {} {} {} remote={} http={} bytes={} gzip={} ms={:.3} agent={:?}",
            e.method,
            e.path,
            self.status,
            e.remote,
            version(e.version),
            self.bytes,
            self.gzip,
            self.ms,
            self.agent
        );
    }
}

/// RFC 3339 UTC with microseconds; the date and time of the current second are kept per thread.
fn timestamp(out: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let t = chrono::DateTime::<chrono::Utc>::from(UNIX_EPOCH + Duration::from_secs(secs));
            *cached = (secs, t.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
        out.push_str(&cached.1);
    });
    let _ = write!(out, ".{:06}Z", now.subsec_micros());
}

/// Appends `text` as the inside of a JSON string.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
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

    #[test]
    fn lines_are_valid_json_whatever_the_request_holds() {
        let headers = HeaderMap::new();
        let method = Method::GET;
        let entry = Entry {
            remote: "10.0.0.1:5000".parse().unwrap(),
            method: &method,
            path: "/a\"b\\c\u{1}",
            version: Version::HTTP_11,
            headers: &headers,
        };
        let line = Line {
            entry: &entry,
            status: 200,
            bytes: 12,
            gzip: true,
            ms: 0.25,
            agent: "x\"}{",
        };
        let mut out = String::new();
        line.json(&mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["fields"]["path"], "/a\"b\\c\u{1}");
        assert_eq!(v["fields"]["agent"], "x\"}{");
        assert_eq!(v["fields"]["status"], 200);
        assert_eq!(v["fields"]["gzip"], true);
        assert_eq!(v["fields"]["ms"], 0.25);
        assert_eq!(v["target"], TARGET);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).unwrap();
        let mut text = String::new();
        line.text(&mut text);
        assert!(text.contains("  INFO tagwall::access: GET /a"), "{text}");
    }
}
