//! Sessions of the review site: a login with a token sets a cookie naming a session; the
//! session holds which token logged in, its CSRF token and when it expires. Sessions live in
//! memory (a restart logs everyone out), at most [`MAX_SESSIONS`]; ids are 256 random bits,
//! kept only as SHA-256 digests, and never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, COOKIE};

/// The cookie's name.
pub const COOKIE_NAME: &str = "tagwall_session";
/// How long a session lasts from its login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The most sessions at once: at the limit, the one expiring soonest goes.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    /// The token it logged in with (its index among the server's tokens).
    pub token: usize,
    /// The CSRF token its forms carry.
    pub csrf: String,
    expires: Instant,
}

/// Every session.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({})", self.lock().len())
    }
}

/// 32 random bytes from the system's generator, hex. Without randomness nothing is issued:
/// the process stops rather than hand out a guessable session.
pub fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        tracing::error!("serve: the system's random generator failed: stopping");
        std::process::abort();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(id: &str) -> [u8; 32] {
    let d = crate::core::digest::sha256(id.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equal in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && std::hint::black_box(
            a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y)),
        ) == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for the token at `token`: its id (for the cookie).
    pub fn start(&self, token: usize) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(k) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&k);
            }
        }
        map.insert(
            key(&id),
            Session {
                token,
                csrf: random_hex(),
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    /// The live session the request's cookie names.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let k = key(&id);
        let mut map = self.lock();
        match map.get(&k) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session the request's cookie names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.lock().remove(&key(&id));
        }
    }
}

/// The session id from the `Cookie` headers: 64 hex digits, else nothing.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value for session `id` (`None`: clear it).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_on_logout() {
        let sessions = Sessions::default();
        let id = sessions.start(3);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={id}")).unwrap(),
        );
        let s = sessions.find(&h).unwrap();
        assert_eq!(s.token, 3);
        assert_eq!(s.csrf.len(), 64);
        assert!(!format!("{sessions:?}").contains(&id));
        sessions.end(&h);
        assert!(sessions.find(&h).is_none());
        let mut forged = HeaderMap::new();
        forged.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={}", "0".repeat(64))).unwrap(),
        );
        assert!(sessions.find(&forged).is_none());
        assert!(set_cookie(Some(&id), true)
            .contains("HttpOnly; SameSite=Strict; Max-Age=28800; Secure"));
        assert!(!set_cookie(Some(&id), false).contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
