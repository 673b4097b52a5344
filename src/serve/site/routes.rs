//! The site's requests and answers.
//!
//! - `GET /`, `/rulesets/<name>/`, `/pending/<name>`, `/reports/`, `/reports/<cloud>/`,
//!   `/reports/<cloud>/<date>`, `/lookup?q=`, `/login` — pages (HEAD too).
//! - `POST /login` (form `token`), `/logout`, `/pending/<name>/approve` and
//!   `/pending/<name>/reject` (form `csrf`, `comment`).
//!
//! A page without a valid session or token redirects to `/login`. A POST from another site
//! (`Origin` not this host, `Sec-Fetch-Site: cross-site`) or without the session's CSRF token
//! is 403; a read token deciding is 403; a body over 16 KiB is 413.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};

use super::html::{page, Who};
use super::model::Reports;
use super::pages::{self, View};
use super::session::Session;
use super::Site;
use crate::job::approve::Decider;
use crate::serve::auth::{Access, Role};
use crate::serve::{Reply, State};

/// The largest form body.
const MAX_FORM: usize = 16 * 1024;
/// How long a client may take to send a form.
const FORM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `path` is one of the site's (the lists keep the others).
pub fn owns(path: &str) -> bool {
    if matches!(path, "/" | "/login" | "/logout" | "/lookup") {
        return true;
    }
    if path.starts_with("/reports") || path.starts_with("/pending/") {
        return true;
    }
    // `/rulesets/<name>/`: a ruleset's page; `/rulesets/` is the lists' JSON index.
    path.strip_prefix("/rulesets/")
        .and_then(|p| p.strip_suffix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Answers one request of the site.
pub async fn handle(
    state: &State,
    parts: &Parts,
    body: hyper::body::Incoming,
    remote: SocketAddr,
) -> Reply {
    let path = parts.uri.path();
    if !crate::serve::http::safe_path(path) {
        return text(StatusCode::BAD_REQUEST, "bad path\n");
    }
    match parts.method {
        Method::GET | Method::HEAD => {
            let reply = get(state, parts).await;
            compressed(reply, crate::serve::http::accepts_gzip(&parts.headers)).await
        }
        Method::POST => post(state, parts, body, remote).await,
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and POST\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            r
        }
    }
}

/// Who is asking: the session's token, else the `Authorization` header's.
fn viewer<'s>(state: &'s State, headers: &HeaderMap) -> (Access<'s>, Option<Session>) {
    if state.tokens.is_empty() {
        return (Access::Open, None);
    }
    if let Some(s) = state.site.sessions.find(headers) {
        return (state.tokens.by_index(s.token), Some(s));
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    (state.tokens.check(auth), None)
}

fn who<'a>(access: &Access<'a>, session: Option<&'a Session>) -> Who<'a> {
    match access {
        Access::Granted(t) => Who {
            name: Some(&t.name),
            approves: t.role == Role::Approve,
            csrf: session.map(|s| s.csrf.as_str()),
        },
        _ => Who {
            name: None,
            approves: false,
            csrf: None,
        },
    }
}

async fn get(state: &State, parts: &Parts) -> Reply {
    let path = parts.uri.path();
    let site = &state.site;
    if path == "/login" {
        let body = pages::login::body(site.login_refused.as_deref(), None, state.tokens.is_empty());
        return html(
            StatusCode::OK,
            page("Log in", &who(&Access::Denied, None), &body),
        );
    }
    let (access, session) = viewer(state, &parts.headers);
    if access.denied() {
        return redirect("/login", None);
    }
    let index = state.content.current();
    let model = site.model();
    let v = View {
        who: who(&access, session.as_ref()),
        access,
        index: &index,
        model: &model,
        desk: &site.desk,
    };
    let found = |title: &str, body: Option<String>, missing: &str| match body {
        Some(b) => html(StatusCode::OK, page(title, &v.who, &b)),
        None => html(
            StatusCode::NOT_FOUND,
            page("Not found", &v.who, &pages::not_found(missing)),
        ),
    };
    if path == "/" {
        return html(
            StatusCode::OK,
            page("Rulesets", &v.who, &pages::home::body(&v)),
        );
    }
    if path == "/lookup" {
        let q = query_value(parts.uri.query(), "q").unwrap_or_default();
        let result = if q.trim().is_empty() {
            None
        } else {
            Some(lookup(state, &v, q.trim()).await)
        };
        return html(
            StatusCode::OK,
            page("Lookup", &v.who, &pages::lookup::body(&v, &q, result)),
        );
    }
    if let Some(name) = path
        .strip_prefix("/rulesets/")
        .and_then(|p| p.strip_suffix('/'))
    {
        return found(name, pages::ruleset::body(&v, name), "No such ruleset.");
    }
    if let Some(name) = path.strip_prefix("/pending/") {
        let decide = match (&access, &session) {
            (Access::Granted(t), Some(s)) if t.role == Role::Approve && site.store.is_some() => {
                Some(s.csrf.as_str())
            }
            _ => None,
        };
        return found(
            &format!("Pending: {name}"),
            pages::pending::body(&v, name, decide),
            "No change of this ruleset waits for review: it was published or decided already.",
        );
    }
    let rest = path.trim_start_matches("/reports").trim_matches('/');
    match rest.split_once('/') {
        _ if rest.is_empty() => html(
            StatusCode::OK,
            page("Reports", &v.who, &pages::reports::index(&v)),
        ),
        None => found(
            rest,
            pages::reports::cloud(&v, rest),
            "No reports of this cloud.",
        ),
        Some((cloud, date)) => {
            let body = match pages::reports::clouds(&v).contains(&cloud) {
                true => report(site, cloud, date).await,
                false => None,
            };
            found(
                &format!("{cloud} {date}"),
                body.map(|r| pages::reports::embed(&r)),
                "No such report.",
            )
        }
    }
}

/// The report of `cloud` at `date` (YYYY-MM-DD), from the output directory or the store.
async fn report(site: &Arc<Site>, cloud: &str, date: &str) -> Option<String> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if day.to_string() != date {
        return None;
    }
    let cloud = cloud.parse::<crate::core::model::Cloud>().ok()?;
    match site.reports {
        Reports::Output => {
            let path = crate::publish::Layout::new(&site.desk.output_dir)
                .reports(cloud)
                .join(format!("{date}.html"));
            let bytes = tokio::task::spawn_blocking(move || crate::localfs::read_bounded(&path))
                .await
                .ok()?
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        Reports::Store => {
            let key = format!("{cloud}/{date}");
            if let Some(r) = site.rendered(&key) {
                return Some(r.to_string());
            }
            let store = site.store.as_ref()?;
            let rulesets: Vec<&crate::rules::ruleset::Ruleset> = site
                .desk
                .rulesets
                .iter()
                .filter(|r| r.cloud == cloud)
                .collect();
            let layout = crate::publish::Layout::new(&site.desk.output_dir);
            let html = crate::publish::reports::render_html(store, &layout, cloud, &rulesets, day)
                .await
                .map_err(|e| tracing::warn!("serve: the report {key} cannot be rendered: {e:#}"))
                .ok()??;
            let html = Arc::new(String::from_utf8(html).ok()?);
            site.keep_rendered(key, html.clone());
            Some(html.to_string())
        }
    }
}

/// Looks `q` up in the newest snapshot of each cloud of the viewer's rulesets, verdicts from
/// the published lists: two store queries a cloud, the rest from the model.
async fn lookup(
    state: &State,
    v: &View<'_>,
    q: &str,
) -> Result<Vec<crate::rules::lookup::Report>, String> {
    use crate::rules::lookup::{as_published, Published};
    let query = crate::core::ranges::parse_target(q)?;
    let store = state
        .site
        .store
        .as_ref()
        .ok_or("the store is not open: lookups need it")?;
    let rulesets: Vec<&crate::rules::ruleset::Ruleset> = v.rulesets().collect();
    let family = crate::core::ranges::Family::of(&query);
    let mut out = Vec::new();
    for (cloud, base) in &v.model.lookups {
        let mine: Vec<&crate::rules::ruleset::Ruleset> = rulesets
            .iter()
            .copied()
            .filter(|r| r.cloud == *cloud)
            .collect();
        let Some(at) = base.snapshots.last().filter(|_| !mine.is_empty()) else {
            continue;
        };
        let fail = |e: anyhow::Error| format!("{e:#}");
        let emitted = state
            .site
            .emitted(store, &at.0, family)
            .await
            .map_err(fail)?;
        let mut report =
            crate::job::emit::lookup_at(store, query, &base.snapshots, at, &mine, &emitted)
                .await
                .map_err(fail)?;
        report.verdicts = std::mem::take(&mut report.verdicts)
            .into_iter()
            .map(|verdict| {
                let published = match v.model.published.get(&verdict.ruleset) {
                    None => Published::Nothing,
                    Some(p) => Published::List {
                        covers: p.covers(&query),
                        snapshot: p.label.clone(),
                        current: p.snapshot_id == at.0.id,
                        withheld: v.model.waits(&verdict.ruleset),
                    },
                };
                as_published(verdict, published)
            })
            .collect();
        out.push(report);
    }
    Ok(out)
}

async fn post(
    state: &State,
    parts: &Parts,
    body: hyper::body::Incoming,
    remote: SocketAddr,
) -> Reply {
    if cross_site(&parts.headers) {
        return text(
            StatusCode::FORBIDDEN,
            "refused: the form was sent from another site\n",
        );
    }
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let path = parts.uri.path();
    if path == "/login" {
        return login(state, &form, remote);
    }
    let (access, session) = viewer(state, &parts.headers);
    let Some(session) = session else {
        return text(
            StatusCode::FORBIDDEN,
            "refused: log in first (/login); forms need a session\n",
        );
    };
    let csrf = field(&form, "csrf").unwrap_or_default();
    if !super::session::same(&csrf, &session.csrf) {
        return text(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or wrong; reload the page\n",
        );
    }
    if path == "/logout" {
        state.site.sessions.end(&parts.headers);
        return redirect(
            "/login",
            Some(super::session::set_cookie(None, state.site.secure)),
        );
    }
    let decision = path
        .strip_prefix("/pending/")
        .and_then(|p| p.rsplit_once('/'))
        .filter(|(name, verb)| !name.contains('/') && matches!(*verb, "approve" | "reject"));
    let Some((name, verb)) = decision else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    decide(state, &access, &session, name, verb == "approve", &form).await
}

/// A form sent from another origin.
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    origin == "null" || origin_host.is_none() || origin_host != host
}

async fn read_form(body: hyper::body::Incoming) -> Result<Vec<(String, String)>, Reply> {
    let read = tokio::time::timeout(FORM_TIMEOUT, Limited::new(body, MAX_FORM).collect()).await;
    let bytes = match read {
        Err(_) => {
            return Err(text(
                StatusCode::REQUEST_TIMEOUT,
                "the form took too long\n",
            ))
        }
        Ok(Err(_)) => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is too large (16 KiB at most)\n",
            ))
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.chars().take(200).collect())
}

fn login(state: &State, form: &[(String, String)], remote: SocketAddr) -> Reply {
    let site = &state.site;
    let blank = Who {
        name: None,
        approves: false,
        csrf: None,
    };
    if state.tokens.is_empty() {
        return redirect("/", None);
    }
    if let Some(why) = &site.login_refused {
        let body = pages::login::body(Some(why), None, false);
        return html(StatusCode::FORBIDDEN, page("Log in", &blank, &body));
    }
    if let Some(wait) = site.limiter.blocked(remote.ip()) {
        let body = pages::login::body(
            None,
            Some(&format!(
                "Too many failed logins from your address: try again in {wait} seconds."
            )),
            false,
        );
        let mut r = html(StatusCode::TOO_MANY_REQUESTS, page("Log in", &blank, &body));
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let token = field(form, "token").unwrap_or_default();
    let granted = match state.tokens.check_token(token.trim().as_bytes()) {
        Access::Granted(t) => state.tokens.index_of(t),
        _ => None,
    };
    let Some(index) = granted else {
        site.limiter.failed(remote.ip());
        tracing::warn!("serve: a failed login from {}", remote.ip());
        let body = pages::login::body(None, Some("That token is not valid."), false);
        return html(StatusCode::UNAUTHORIZED, page("Log in", &blank, &body));
    };
    let id = site.sessions.start(index);
    redirect(
        "/",
        Some(super::session::set_cookie(Some(&id), site.secure)),
    )
}

async fn decide(
    state: &State,
    access: &Access<'_>,
    session: &Session,
    name: &str,
    approve: bool,
    form: &[(String, String)],
) -> Reply {
    let site = &state.site;
    let token = match access {
        Access::Granted(t) if t.role == Role::Approve && t.allows(name) => *t,
        _ => {
            return text(
                StatusCode::FORBIDDEN,
                "refused: your token may not approve or reject changes of this ruleset (it needs role=approve in [serve] tokens_file)\n",
            )
        }
    };
    let who = Who {
        name: Some(&token.name),
        approves: true,
        csrf: Some(&session.csrf),
    };
    let fail = |status, why: String| {
        let body = format!(
            "<h1>Not done</h1><p class=\"banner bad\">{}</p><p><a href=\"/pending/{1}\">Back to the pending change of {1}</a></p>",
            super::html::esc(&why),
            super::html::esc(name)
        );
        html(status, page("Not done", &who, &body))
    };
    let comment = field(form, "comment").unwrap_or_default();
    if comment.trim().is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            "Write why in the comment: it is recorded with your name.".into(),
        );
    }
    let decider = match Decider::new(
        &token.name,
        comment.trim(),
        ("the token's name", "the comment"),
    ) {
        Ok(d) => d,
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("{e:#}")),
    };
    let Ok(ruleset) = site.desk.ruleset(name) else {
        return fail(StatusCode::NOT_FOUND, "No such ruleset.".into());
    };
    if site.store.is_none() {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store is not open: nothing can be decided here.".into(),
        );
    }
    // Run apart from the request: a client that goes away does not cut a publish short.
    let (task_site, ruleset, verb) = (
        site.clone(),
        ruleset.clone(),
        if approve { "approved" } else { "rejected" },
    );
    let by = decider.by.clone();
    let task = tokio::spawn(async move {
        let Some(store) = task_site.store.as_ref() else {
            return Err(anyhow::anyhow!("the store is not open"));
        };
        let wait = task_site.desk.lock_wait;
        if approve {
            task_site
                .desk
                .approve(store, &ruleset, decider, false, wait)
                .await
                .map(|a| a.line)
        } else {
            task_site.desk.reject(store, &ruleset, decider, wait).await
        }
    });
    let done = task
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the decision failed: {e}")));
    match done {
        Ok(line) => {
            tracing::info!("serve: {verb} by {by} on the review site: {line}");
            state.content.refresh().await;
            site.rebuild().await;
            redirect(&format!("/rulesets/{name}/"), None)
        }
        Err(e) => fail(StatusCode::CONFLICT, format!("{e:#}")),
    }
}

/// The smallest page worth compressing.
const GZIP_FROM: usize = 1024;

/// A page gzip-compressed (fast level: a 135 KB pending change in about a millisecond) when the
/// client takes gzip and the page is worth it.
async fn compressed(reply: Reply, gzip: bool) -> Reply {
    use std::io::Write as _;
    let html = reply
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !gzip || !html {
        return reply;
    }
    let (mut parts, body) = reply.into_parts();
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    let packed = match bytes.len() >= GZIP_FROM {
        true => gz.write_all(&bytes).and_then(|()| gz.finish()).ok(),
        false => None,
    };
    let Some(packed) = packed.filter(|p| p.len() < bytes.len()) else {
        return Response::from_parts(parts, Full::new(bytes));
    };
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Response::from_parts(parts, Full::new(Bytes::from(packed)))
}

/// The headers every page carries: no caching, no framing, no outside content.
fn secured(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn html(status: StatusCode, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secured(r)
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secured(r)
}

/// 303 to `to` (a path of this site), setting `cookie` when given.
fn redirect(to: &str, cookie: Option<String>) -> Reply {
    let mut r = text(StatusCode::SEE_OTHER, "");
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ranges::parse_target;

    #[test]
    fn the_site_owns_its_pages_and_leaves_the_lists() {
        for p in [
            "/",
            "/login",
            "/logout",
            "/lookup",
            "/reports/",
            "/reports/Public/2025-07-28",
            "/pending/x",
            "/rulesets/entra/",
        ] {
            assert!(owns(p), "{p}");
        }
        for p in [
            "/rulesets/",
            "/rulesets",
            "/rulesets/entra/entra.ipv4.txt",
            "/healthz",
            "/metrics",
            "/rulesets/a/b/",
        ] {
            assert!(!owns(p), "{p}");
        }
    }

    #[test]
    fn forms_from_other_sites_are_told_apart() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(!cross_site(&h(&[("host", "fw:8080")])));
        assert!(!cross_site(&h(&[
            ("host", "fw:8080"),
            ("origin", "http://fw:8080")
        ])));
        assert!(cross_site(&h(&[
            ("host", "fw:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(cross_site(&h(&[("host", "fw:8080"), ("origin", "null")])));
        assert!(cross_site(&h(&[
            ("host", "fw:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert_eq!(
            parse_target("20.38.98.1").unwrap().to_string(),
            "20.38.98.1/32"
        );
        assert!(parse_target("20.38.98.1/16")
            .unwrap_err()
            .contains("20.38.0.0/16"));
        assert!(parse_target("<b>")
            .unwrap_err()
            .contains("not an IP address"));
    }
}
