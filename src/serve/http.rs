//! One request, one response: the routes of `tagwall serve`, from the in-memory index only.
//!
//! - `GET|HEAD /rulesets/<name>/<file>`: a file of the ruleset's manifest, byte for byte, with
//!   `ETag` (the manifest's sha256), `Last-Modified`, `Content-Type`, `Cache-Control: no-cache`;
//!   `If-None-Match` / `If-Modified-Since` → 304; gzip when accepted.
//! - `GET /rulesets/`: the JSON index. `GET /healthz`, `GET /metrics`.
//! - The review site's pages and forms are `site::routes`'.
//! - Anything else 404; a path with `%`, `\`, `..`, `.` or empty segments, or other bytes
//!   than `[A-Za-z0-9._/-]`, is 400. Names are looked up in the index, never on disk.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::auth::Access;
use super::content::{File, Index};
use super::{Reply, State};

/// What the metrics call a request that names no file.
fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        "/rulesets" | "/rulesets/" => "/rulesets/",
        _ => "other",
    }
}

/// Answers one request. For HEAD the same response is returned: hyper sends its headers
/// (`Content-Length` included) without the body.
pub fn handle(state: &State, method: &Method, path: &str, headers: &HeaderMap) -> Reply {
    let (ruleset, file, reply) = route(state, method, path, headers);
    let bytes = if method == Method::HEAD {
        0
    } else {
        reply.body().size_hint_exact()
    };
    state
        .metrics
        .record(&ruleset, &file, reply.status().as_u16(), bytes);
    reply
}

/// The size of a full body.
trait Exact {
    fn size_hint_exact(&self) -> u64;
}

impl Exact for Full<Bytes> {
    fn size_hint_exact(&self) -> u64 {
        hyper::body::Body::size_hint(self).exact().unwrap_or(0)
    }
}

fn route(
    state: &State,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> (String, String, Reply) {
    let other = |reply| (String::new(), route_label(path).to_string(), reply);
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return other(r);
    }
    if !safe_path(path) {
        return other(plain(StatusCode::BAD_REQUEST, "bad path\n"));
    }
    let index = state.content.current();
    let access = access_of(state, headers);
    if path == "/healthz" {
        return other(health(&index, &access));
    }
    if access.denied() {
        return other(unauthorized());
    }
    match path {
        "/metrics" => {
            // A token limited to some rulesets sees theirs only; the server's own figures need
            // a token for every ruleset.
            let whole = access.whole();
            let mut body = state.metrics.render(
                &index,
                SystemTime::now(),
                state
                    .access_log
                    .as_ref()
                    .map_or(0, super::access::AccessLog::dropped),
                &|r| access.allows(r),
                whole,
            );
            if whole {
                state.conns.render_into(&mut body);
                if let Some(certs) = &state.certs {
                    certs.render_into(&mut body, super::cert_dates::now());
                }
            }
            other(text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            ))
        }
        "/rulesets" | "/rulesets/" => other(index_json(&index, &access)),
        _ => match path
            .strip_prefix("/rulesets/")
            .and_then(|p| p.split_once('/'))
        {
            Some((name, file)) if !file.contains('/') => {
                let reply = serve_file(&index, &access, name, file, headers);
                // Counted under its names only when it exists: labels stay bounded.
                if reply.status() == StatusCode::NOT_FOUND {
                    other(reply)
                } else {
                    (name.to_string(), file.to_string(), reply)
                }
            }
            _ => other(plain(StatusCode::NOT_FOUND, "not found\n")),
        },
    }
}

/// What the request may read: its `Authorization` header (firewalls, scripts), else the review
/// site's session cookie (a browser following a page's link to a file).
fn access_of<'s>(state: &'s State, headers: &HeaderMap) -> Access<'s> {
    let authorization = headers.get(header::AUTHORIZATION);
    if authorization.is_none() && !state.tokens.is_empty() {
        if let Some(s) = state.site.sessions.find(headers) {
            return state.tokens.by_index(s.token);
        }
    }
    state.tokens.check(authorization.map(HeaderValue::as_bytes))
}

/// Only `[A-Za-z0-9._/-]`, absolute, no `.`/`..`/empty segments (a trailing `/` allowed).
pub fn safe_path(path: &str) -> bool {
    if !path.starts_with('/') || path.len() > 1024 {
        return false;
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
    {
        return false;
    }
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    inner.is_empty()
        || inner
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

fn plain(status: StatusCode, body: &'static str) -> Reply {
    text(status, "text/plain; charset=utf-8", body.to_string())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn unauthorized() -> Reply {
    let mut r = plain(StatusCode::UNAUTHORIZED, "a token is required\n");
    let h = r.headers_mut();
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tagwall\""),
    );
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"tagwall\", charset=\"UTF-8\""),
    );
    r
}

/// 200 when every ruleset published is served from a checked copy; 503 when a published
/// directory cannot be read or checked, or nothing is published. Without a valid token (when
/// tokens are set) it names nothing; with one, the rulesets the token may read.
fn health(index: &Index, access: &Access) -> Reply {
    let ok = index.problems.is_empty() && !index.rulesets.is_empty();
    let body = match access {
        Access::Denied => serde_json::json!({ "ok": ok }),
        _ => serde_json::json!({
            "ok": ok,
            "serving": index.rulesets.keys().filter(|r| access.allows(r)).collect::<Vec<_>>(),
            "problems": index
                .problems
                .iter()
                .filter(|(r, _)| access.allows(r))
                .collect::<std::collections::BTreeMap<_, _>>(),
        }),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, "application/json", format!("{body}\n"))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The rulesets this request may read: names, files, snapshot, published at.
fn index_json(index: &Index, access: &Access) -> Reply {
    let rulesets: Vec<serde_json::Value> = index
        .rulesets
        .iter()
        .filter(|(name, _)| access.allows(name))
        .map(|(name, r)| {
            serde_json::json!({
                "name": name,
                "snapshot": r.snapshot,
                "published_at": rfc3339(r.published),
                "files": r.files.iter().map(|(f, file)| serde_json::json!({
                    "name": f,
                    "url": format!("/rulesets/{name}/{f}"),
                    "bytes": file.body.len(),
                    "sha256": file.sha256,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    text(
        StatusCode::OK,
        "application/json",
        format!("{}\n", serde_json::json!({ "rulesets": rulesets })),
    )
}

fn serve_file(
    index: &Index,
    access: &Access,
    name: &str,
    file: &str,
    headers: &HeaderMap,
) -> Reply {
    let found = index
        .rulesets
        .get(name)
        .filter(|_| access.allows(name))
        .and_then(|r| Some((r, r.files.get(file)?)));
    let Some((ruleset, f)) = found else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let gzip = f.gzip.is_some() && accepts_gzip(headers);
    let etag = if gzip {
        format!("\"{}.gz\"", f.sha256)
    } else {
        format!("\"{}\"", f.sha256)
    };
    let last_modified = httpdate::fmt_http_date(ruleset.published);
    let fresh = not_modified(headers, f, ruleset.published);
    let body = match (fresh, gzip) {
        (true, _) => Bytes::new(),
        (false, true) => f.gzip.clone().unwrap_or_default(),
        (false, false) => f.body.clone(),
    };
    let mut r = Response::new(Full::new(body));
    if fresh {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = r.headers_mut();
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(f.content_type),
        );
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    r
}

/// `If-None-Match` (either encoding's tag, `*`, weak or strong) wins over `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, f: &File, published: SystemTime) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else { return false };
        return inm.split(',').map(str::trim).any(|t| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t == "*"
                || t.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .is_some_and(|t| t == f.sha256 || t.strip_suffix(".gz") == Some(&f.sha256))
        });
    }
    let Some(ims) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    // HTTP dates have whole seconds.
    let published = published
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ims = ims
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    published <= ims
}

/// `Accept-Encoding` lists gzip (or `*`) with a non-zero quality.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_requests_are_checked() {
        for ok in [
            "/",
            "/healthz",
            "/rulesets/",
            "/rulesets/entra/entra.ipv4.txt",
        ] {
            assert!(safe_path(ok), "{ok}");
        }
        for bad in [
            "/rulesets/../etc/passwd",
            "/rulesets/%2e%2e/x",
            "/rulesets/a%2fb",
            "/rulesets\\x",
            "/rulesets//x",
            "/rulesets/./x",
            "rulesets/x",
            "/a\0b",
            "/a b",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, gzip;q=0.5")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
