//! Dashboard sign-in (docs/THREATS.md property 5; ARCHITECTURE.md "Trust boundaries").
//!
//! Signing in with an API token starts a session: the browser gets a random session id in a cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Max-Age` the configured `sessionTimeout`, and `Secure`
//! when the server's `publicUrl` is https). The token itself never goes into a cookie, so a cookie
//! that leaks (a proxy log, a shared machine) is worth one session that expires and that signing out
//! ends, not the API token. The server keeps only a SHA-256 of each id, with who it is and a
//! per-session CSRF token that every dashboard form carries back ([`Session::csrf_matches`]);
//! `SameSite=Strict` alone leaves older browsers and same-site subdomains open.
//!
//! Sessions live in this process's memory: a restart signs everyone out, which errs on the safe side.
//! The map is bounded ([`MAX_SESSIONS`]): when full, expired sessions go first, then the oldest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie that carries the session id.
pub const COOKIE: &str = "pipewright_session";
/// At most this many sessions at once (a sign-in flood cannot grow the server's memory).
pub const MAX_SESSIONS: usize = 10_000;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The name of the token it signed in with (who acts, in the audit log).
    pub actor: String,
    /// Every form of this session carries it back.
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether a form's `csrf` field is this session's (constant-time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        !given.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// The sessions of this server.
pub struct Sessions {
    timeout: Duration,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(timeout: Duration) -> Sessions {
        Sessions { timeout, by_digest: Mutex::new(HashMap::new()) }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts a session for `actor`; returns the id for the cookie (the server keeps its digest).
    pub fn start(&self, actor: &str) -> (String, Session) {
        let id = random_secret();
        let session =
            Session { actor: actor.to_string(), csrf: random_secret(), expires: Instant::now() + self.timeout };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
        }
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else { break };
            map.remove(&oldest);
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session with this id; an expired one is removed and is `None`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// The session the request's cookie names, if it is live.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<Session> {
        cookie_value(headers).and_then(|id| self.get(&id))
    }

    /// Ends the session the request's cookie names (signing out).
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie_value(headers) {
            self.lock().remove(&digest(&id));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves a map that is still whole (every change is one call).
        self.by_digest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(id: &str, timeout: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", timeout.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie (signing out).
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// The session id in the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    let cookies = headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok());
    cookies
        .flat_map(|c| c.split(';'))
        .find_map(|c| c.trim().strip_prefix(prefix.as_str()).map(str::to_string))
        .filter(|id| !id.is_empty())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 244 random bits as 64 hex digits (two version-4 UUIDs, from the operating system's generator).
fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Whether a form post comes from this server's own pages: a browser sends `Origin` with every
/// cross-site POST; when it is there it must name the host the request was sent to, or the
/// server's `publicUrl` (behind a proxy that rewrites `Host`, that is what the browser saw).
pub fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if public_url.is_some_and(|url| origin_of(url).is_some_and(|o| o.eq_ignore_ascii_case(origin))) {
        return true;
    }
    let Some(host) = headers.get("host").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// `scheme://host[:port]` of a URL (`https://ci.example.com/x` → `https://ci.example.com`).
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    (!scheme.is_empty() && end > 0).then(|| &url[..scheme.len() + 3 + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", value.parse().expect("header"));
        headers
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_on_sign_out() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (id, session) = sessions.start("alice");
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        let headers = with_cookie(&format!("other=1; {COOKIE}={id}"));
        assert_eq!(sessions.of_request(&headers).map(|s| s.actor), Some("alice".into()));
        assert!(sessions.get(&id[..63]).is_none());
        assert!(sessions.of_request(&with_cookie(&format!("{COOKIE}="))).is_none());
        sessions.end(&headers);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn an_expired_session_is_gone() {
        let sessions = Sessions::new(Duration::from_millis(20));
        let (id, _) = sessions.start("alice");
        assert!(sessions.get(&id).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(sessions.get(&id).is_none());
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (_, session) = sessions.start("alice");
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf[1..]));
        assert!(!session.csrf_matches(&format!("{}x", session.csrf)));
    }

    #[test]
    fn the_map_is_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (first, _) = sessions.start("first");
        for _ in 0..MAX_SESSIONS {
            sessions.start("flood");
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the oldest session made room");
    }

    #[test]
    fn cookies_say_what_the_browser_must_do() {
        let cookie = set_cookie("abc", Duration::from_secs(43200), false);
        assert_eq!(cookie, "pipewright_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
        assert!(set_cookie("abc", Duration::from_secs(1), true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let headers = |origin: Option<&str>, host: &str| {
            let mut h = HeaderMap::new();
            h.insert("host", host.parse().expect("host"));
            if let Some(o) = origin {
                h.insert("origin", o.parse().expect("origin"));
            }
            h
        };
        assert!(same_origin(&headers(None, "ci.example.com"), None));
        assert!(same_origin(&headers(Some("https://ci.example.com"), "ci.example.com"), None));
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"), None));
        assert!(!same_origin(&headers(Some("https://evil.example"), "ci.example.com"), None));
        assert!(!same_origin(&headers(Some("null"), "ci.example.com"), None));
        assert!(!same_origin(&headers(Some("https://ci.example.com.evil.example"), "ci.example.com"), None));
        // Behind a proxy that sends `Host: 127.0.0.1:8080`: the public URL is the origin.
        let public = Some("https://ci.example.com/");
        assert!(same_origin(&headers(Some("https://ci.example.com"), "127.0.0.1:8080"), public));
        assert!(!same_origin(&headers(Some("https://evil.example"), "127.0.0.1:8080"), public));
        assert!(!same_origin(&headers(Some("http://ci.example.com"), "127.0.0.1:8080"), public));
    }
}
