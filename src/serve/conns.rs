//! Every connection bounded in time from its accept, and room for a new one when the limit is
//! reached.
//!
//! A connection is *active* when it starts, when a request arrives on it and whenever bytes are
//! written to it (a response going out, a TLS handshake). One that has been inactive for the idle
//! time is closed, whatever it is doing: silent before its first byte, in the middle of the
//! protocol detection, the TLS handshake or a request head, idle between requests over HTTP/1 or
//! HTTP/2, or not reading a response. Requests are answered at once from memory, so an active
//! client never waits on tagwall for that long.
//!
//! At the limit, a new connection takes the place of the one inactive the longest; a connection
//! that is itself new is evicted only when every other one is newer. A firewall's poll therefore
//! gets in while thousands of silent sockets are open.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// File descriptors kept for everything but connections (the store, files, logs, the listener).
const RESERVED_FDS: u64 = 64;

/// The open connections.
#[derive(Debug)]
pub struct Conns {
    epoch: Instant,
    limit: usize,
    open: Mutex<Open>,
    accepted: AtomicU64,
    closed_idle: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    by_id: BTreeMap<u64, Arc<Conn>>,
}

/// One connection's clock and eviction bell.
#[derive(Debug)]
pub struct Conn {
    /// Milliseconds since the registry's epoch at its last activity.
    active: AtomicU64,
    evict: Notify,
}

/// Why a connection was closed by the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Inactive for the idle time.
    Idle,
    /// Its place went to a new connection.
    Evicted,
}

impl Conns {
    /// A registry of at most `limit` connections (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            limit: limit.max(1),
            open: Mutex::default(),
            accepted: AtomicU64::new(0),
            closed_idle: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The most connections open at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, evicting the one inactive the longest when the limit is
    /// reached.
    pub fn admit(self: &Arc<Self>) -> Guard {
        let conn = Arc::new(Conn {
            active: AtomicU64::new(self.now()),
            evict: Notify::new(),
        });
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let id = {
            let mut open = self.lock();
            if open.by_id.len() >= self.limit {
                Self::evict_locked(&mut open, &self.evicted);
            }
            let id = open.next;
            open.next += 1;
            open.by_id.insert(id, conn.clone());
            id
        };
        Guard {
            conns: self.clone(),
            conn,
            id,
        }
    }

    /// Evicts the connection inactive the longest (when out of file descriptors); false when
    /// none is open.
    pub fn evict_one(&self) -> bool {
        Self::evict_locked(&mut self.lock(), &self.evicted)
    }

    /// Takes the longest-inactive connection out of the registry and rings its bell; it closes
    /// as soon as its task runs.
    fn evict_locked(open: &mut Open, evicted: &AtomicU64) -> bool {
        let oldest = open
            .by_id
            .iter()
            .min_by_key(|(id, c)| (c.active.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        let Some(conn) = oldest.and_then(|id| open.by_id.remove(&id)) else {
            return false;
        };
        conn.evict.notify_one();
        evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Counts a connection closed at once because it could not be registered.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The connection counters in Prometheus' text format.
    pub fn render_into(&self, out: &mut String) {
        let open = self.lock().by_id.len();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP tagwall_serve_connections_open Connections open now.\n\
             # TYPE tagwall_serve_connections_open gauge\n\
             tagwall_serve_connections_open {open}\n\
             # HELP tagwall_serve_connections_limit The most connections open at once.\n\
             # TYPE tagwall_serve_connections_limit gauge\n\
             tagwall_serve_connections_limit {}\n\
             # HELP tagwall_serve_connections_accepted_total Connections accepted.\n\
             # TYPE tagwall_serve_connections_accepted_total counter\n\
             tagwall_serve_connections_accepted_total {}\n\
             # HELP tagwall_serve_connections_closed_total Connections closed by the server, by reason (idle: inactive for the idle time; evicted: its place went to a new connection at the limit; refused: accept failed).\n\
             # TYPE tagwall_serve_connections_closed_total counter\n\
             tagwall_serve_connections_closed_total{{reason=\"idle\"}} {}\n\
             tagwall_serve_connections_closed_total{{reason=\"evicted\"}} {}\n\
             tagwall_serve_connections_closed_total{{reason=\"refused\"}} {}\n",
            self.limit,
            load(&self.accepted),
            load(&self.closed_idle),
            load(&self.evicted),
            load(&self.refused),
        );
    }
}

/// A registered connection; dropping it takes it out of the registry.
#[derive(Debug)]
pub struct Guard {
    conns: Arc<Conns>,
    conn: Arc<Conn>,
    id: u64,
}

impl Guard {
    /// Marks the connection active now.
    pub fn touch(&self) {
        touch(&self.conns, &self.conn);
    }

    /// A handle that marks the connection active, for the service and the stream.
    pub fn clock(&self) -> Clock {
        Clock {
            conns: self.conns.clone(),
            conn: self.conn.clone(),
        }
    }

    /// Completes when the connection has been inactive for `idle`, or is evicted.
    pub async fn closed(&self, idle: Duration) -> Closed {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let last = self.conn.active.load(Ordering::Relaxed);
            let due = last.saturating_add(idle_ms);
            let now = self.conns.now();
            if now >= due {
                self.conns.closed_idle.fetch_add(1, Ordering::Relaxed);
                return Closed::Idle;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(due - now)) => {}
                () = self.conn.evict.notified() => return Closed::Evicted,
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut open = self.conns.lock();
        // An evicted connection is already out (and its id is never reused).
        open.by_id.remove(&self.id);
    }
}

fn touch(conns: &Conns, conn: &Conn) {
    conn.active.store(conns.now(), Ordering::Relaxed);
}

/// Marks one connection active.
#[derive(Debug, Clone)]
pub struct Clock {
    conns: Arc<Conns>,
    conn: Arc<Conn>,
}

impl Clock {
    /// Marks the connection active now.
    pub fn touch(&self) {
        touch(&self.conns, &self.conn);
    }
}

/// A stream whose writes mark its connection active.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    clock: Clock,
}

impl<S> Tracked<S> {
    /// `inner`, marking `clock` active on every write that makes progress.
    pub fn new(inner: S, clock: Clock) -> Self {
        Self { inner, clock }
    }

    fn wrote(&self, done: &Poll<std::io::Result<usize>>) {
        if matches!(done, Poll::Ready(Ok(n)) if *n > 0) {
            self.clock.touch();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let done = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&done);
        done
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let done = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&done);
        done
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection limit this process can keep: `wanted`, or fewer when the open-files limit
/// (raised to its hard limit first) cannot hold that many.
pub fn limit_for_open_files(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut files = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (files.current, files.maximum) {
        if cur < max {
            files.current = Some(max);
            if setrlimit(Resource::Nofile, files).is_err() {
                files.current = Some(cur);
            }
        }
    }
    match files.current {
        None => wanted,
        Some(n) => {
            let room = usize::try_from(n.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            wanted.min(room.max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_inactive_connection_is_closed_after_the_idle_time() {
        let conns = Conns::new(4);
        let guard = conns.admit();
        let started = tokio::time::Instant::now();
        assert_eq!(guard.closed(Duration::from_secs(10)).await, Closed::Idle);
        assert!(started.elapsed() >= Duration::from_secs(10));
    }

    #[test]
    fn at_the_limit_the_longest_inactive_connection_makes_room() {
        let conns = Conns::new(2);
        let first = conns.admit();
        std::thread::sleep(Duration::from_millis(5));
        let second = conns.admit();
        std::thread::sleep(Duration::from_millis(5));
        // The first becomes the most recently active: the second goes.
        first.touch();
        let third = conns.admit();
        let open = conns.lock().by_id.keys().copied().collect::<Vec<_>>();
        assert_eq!(open, vec![first.id, third.id]);
        let mut text = String::new();
        conns.render_into(&mut text);
        assert!(text.contains("reason=\"evicted\"} 1"), "{text}");
        drop(second);
        assert_eq!(conns.lock().by_id.len(), 2);
    }

    #[tokio::test]
    async fn an_evicted_connection_learns_it_at_once() {
        let conns = Conns::new(1);
        let old = conns.admit();
        let _new = conns.admit();
        let closed =
            tokio::time::timeout(Duration::from_secs(1), old.closed(Duration::from_secs(60)))
                .await
                .unwrap();
        assert_eq!(closed, Closed::Evicted);
    }
}
