//! Failed logins per client address: at most [`MAX_FAILURES`] in [`WINDOW`], then the address
//! waits for the window to pass. Bounded: at most [`MAX_CLIENTS`] addresses are remembered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins an address may make in [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failed logins are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The most addresses remembered.
const MAX_CLIENTS: usize = 10_000;

/// Failed logins by address: (count, when the window began).
#[derive(Debug, Default)]
pub struct Limiter {
    map: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(seconds to wait)` when `ip` has used up its failures.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let map = self.lock();
        let (count, since) = map.get(&ip)?;
        let left = WINDOW.checked_sub(now.duration_since(*since))?;
        (*count >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_CLIENTS {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        }
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let l = Limiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..MAX_FAILURES - 1 {
            l.failed(a);
        }
        assert!(l.blocked(a).is_none());
        l.failed(a);
        assert!(l.blocked(a).is_some_and(|s| (1..=60).contains(&s)));
        assert!(l.blocked(b).is_none());
    }
}
