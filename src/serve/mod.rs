//! `tagwall serve`: the published rulesets over HTTP/1.1 and HTTP/2 (cleartext, prior
//! knowledge) for firewalls that poll a URL (PAN-OS External Dynamic Lists, FortiGate threat
//! feeds, Check Point, pfSense URL tables, …).
//!
//! - `settings` — `[serve]`.
//! - `content` — the published directories in memory, checked, refreshed on change.
//! - `auth` — tokens (Bearer or Basic), constant-time.
//! - `http` — the routes.
//! - `metrics` — `/metrics`.
//! - `tls` — HTTPS with rustls, the certificate reloaded on SIGHUP or file change;
//!   `cert_dates` — its validity dates, for warnings and `/metrics`.
//! - `access` — the access log, one event per request.
//! - `conns` — every connection bounded in time, and room for new ones at the limit.
//! - `site` — the review site: pages, login, approve and reject.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections (fewer when the open-files limit cannot hold
//! them); at the limit a new connection takes the place of the one inactive the longest. A
//! connection inactive for [`IDLE_TIMEOUT`] is closed, from its accept on (before its first byte,
//! during protocol detection, the TLS handshake, a request head, between requests, over HTTP/1
//! and HTTP/2); request heads of at most 16 KiB are read within [`HEADER_TIMEOUT`]. On the stop
//! signal it stops accepting and lets requests in flight finish for up to [`DRAIN`].

pub mod access;
pub mod auth;
pub mod cert_dates;
pub mod conns;
pub mod content;
pub mod http;
pub mod metrics;
pub mod settings;
pub mod site;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay inactive (no request, no byte written to it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish after the stop signal.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How often the published directories are checked for a new publish.
pub const REFRESH: Duration = Duration::from_millis(250);
/// The largest request head (HTTP/1 buffer, HTTP/2 header list).
const MAX_HEAD: usize = 16 * 1024;

/// The response type.
pub type Reply = hyper::Response<http_body_util::Full<bytes::Bytes>>;

/// What every request reads.
#[derive(Debug)]
pub struct State {
    /// The published rulesets.
    pub content: Arc<content::Content>,
    /// Who may read them.
    pub tokens: auth::Tokens,
    /// Request counters.
    pub metrics: metrics::Metrics,
    /// Where each request is logged (`[serve] access_log`, unless filtered out).
    pub access_log: Option<access::AccessLog>,
    /// The open connections.
    pub conns: Arc<conns::Conns>,
    /// The TLS certificate in use, when serving HTTPS (its dates go to `/metrics`).
    pub certs: Option<Arc<tls::Certs>>,
    /// The review site.
    pub site: Arc<site::Site>,
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30));
    b
}

/// Serves until `stop` completes, then drains; HTTPS when `tls` is given.
pub async fn run(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let builder = builder();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut accept_failed = false;
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    refused(&state.conns, &e, &mut accept_failed).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let guard = state.conns.admit();
        let clock = guard.clock();
        let stream = conns::Tracked::new(stream, clock.clone());
        let state = state.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            clock.touch();
            let started = std::time::Instant::now();
            let state = state.clone();
            async move {
                let (parts, body) = req.into_parts();
                let reply = if site::routes::owns(parts.uri.path()) {
                    site::routes::handle(&state, &parts, body, remote).await
                } else {
                    http::handle(&state, &parts.method, parts.uri.path(), &parts.headers)
                };
                if let Some(log) = &state.access_log {
                    let entry = access::Entry {
                        remote,
                        method: &parts.method,
                        path: parts.uri.path(),
                        version: parts.version,
                        headers: &parts.headers,
                    };
                    log.log(&entry, &reply, started.elapsed());
                }
                Ok::<_, Infallible>(reply)
            }
        });
        let (builder, watcher, acceptor) = (builder.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            let serve = async move {
                match acceptor {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Some(acceptor) => {
                        // A handshake is bounded like a request head, and by inactivity.
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                        else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(tls), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                }
            };
            // Dropping the connection closes it, whatever state it is in.
            tokio::select! {
                () = serve => {}
                _ = guard.closed(IDLE_TIMEOUT) => {}
            }
        });
    }
    drop(listener);
    tracing::info!("serve: stopping: no new connections; requests in flight finish");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "serve: connections still open after {}s: closing them",
            DRAIN.as_secs()
        );
    }
    Ok(())
}

/// A failed accept: out of file descriptors and the like. Frees the place of the connection
/// inactive the longest and waits a moment, so that the next accept can succeed without
/// spinning; logged once, counted always.
async fn refused(conns: &conns::Conns, e: &std::io::Error, logged: &mut bool) {
    conns.refused();
    if !std::mem::replace(logged, true) {
        tracing::warn!(
            "serve: accept failed: {e} (the connection inactive the longest makes room; further failures are counted in /metrics as tagwall_serve_connections_closed_total{{reason=\"refused\"}})"
        );
    }
    let pause = if conns.evict_one() { 5 } else { 100 };
    tokio::time::sleep(Duration::from_millis(pause)).await;
}
