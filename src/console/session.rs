//! Console sign-in: sessions, CSRF tokens and the failed sign-in limiter.
//!
//! A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie
//! (Secure under TLS), bound to a role and its own CSRF token, which every
//! state-changing form carries. Sessions live in memory, bounded in number
//! and time: a restart signs everyone out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a signed-in analyst may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sees everything, labels decisions (the admin token).
    Editor,
    /// Sees everything, changes nothing (`RISKGATE_CONSOLE_VIEWER_TOKEN`).
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub role: Role,
    /// Who audit events name (the token holder's configured name, or
    /// `viewer`).
    pub who: String,
    pub csrf: String,
    created: Instant,
    seen: Instant,
}

/// The cookie's name.
pub const COOKIE: &str = "riskgate_console";

/// At most this many sessions; signing in beyond ends the oldest.
const MAX_SESSIONS: usize = 256;
/// A session ends this long after sign-in…
const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// …or after this long unused.
const IDLE: Duration = Duration::from_secs(3600);

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Constant-time equality of two strings (length leaks, content does not).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// Starts a session; returns its id.
    pub fn start(&mut self, role: Role, who: &str) -> String {
        let now = Instant::now();
        self.by_id
            .retain(|_, s| now - s.created < LIFETIME && now - s.seen < IDLE);
        if self.by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
        {
            self.by_id.remove(&oldest);
        }
        let id = random_hex();
        self.by_id.insert(
            id.clone(),
            Session {
                role,
                who: who.to_string(),
                csrf: random_hex(),
                created: now,
                seen: now,
            },
        );
        id
    }

    /// The session of a cookie value, when it is live.
    pub fn get(&mut self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let s = self.by_id.get_mut(id)?;
        if now - s.created >= LIFETIME || now - s.seen >= IDLE {
            self.by_id.remove(id);
            return None;
        }
        s.seen = now;
        Some(s.clone())
    }

    pub fn end(&mut self, id: &str) {
        self.by_id.remove(id);
    }
}

/// Failed sign-ins allowed per client address and per minute.
const PER_CLIENT: usize = 5;
/// Failed sign-ins allowed per minute from everyone together.
const OVERALL: usize = 30;
const WINDOW: Duration = Duration::from_secs(60);

/// Counts failed sign-ins in a sliding minute.
#[derive(Default)]
pub struct Limiter {
    failures: VecDeque<(Instant, Option<IpAddr>)>,
}

impl Limiter {
    fn forget_old(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|(t, _)| now - *t >= WINDOW)
        {
            self.failures.pop_front();
        }
    }

    /// Whether a sign-in from `client` may be tried now.
    pub fn allows(&mut self, client: Option<IpAddr>) -> bool {
        self.forget_old(Instant::now());
        let mine = self
            .failures
            .iter()
            .filter(|(_, c)| client.is_some() && *c == client)
            .count();
        mine < PER_CLIENT && self.failures.len() < OVERALL
    }

    pub fn failed(&mut self, client: Option<IpAddr>) {
        let now = Instant::now();
        self.forget_old(now);
        self.failures.push_back((now, client));
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that starts (or, with an empty id, ends) a session.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let max_age = if id.is_empty() { 0 } else { LIFETIME.as_secs() };
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_bounded_and_end() {
        let mut s = Sessions::default();
        let a = s.start(Role::Editor, "admin");
        let b = s.start(Role::Viewer, "viewer");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.get(&a).unwrap().role, Role::Editor);
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
        s.end(&a);
        assert!(s.get(&a).is_none());
        for _ in 0..MAX_SESSIONS + 10 {
            s.start(Role::Viewer, "viewer");
        }
        assert!(s.by_id.len() <= MAX_SESSIONS);
    }

    #[test]
    fn the_limiter_stops_a_client_after_five_failures_a_minute() {
        let mut l = Limiter::default();
        let me: Option<IpAddr> = "192.0.2.1".parse().ok();
        let other: Option<IpAddr> = "192.0.2.2".parse().ok();
        for _ in 0..PER_CLIENT {
            assert!(l.allows(me));
            l.failed(me);
        }
        assert!(!l.allows(me));
        assert!(l.allows(other));
    }

    #[test]
    fn cookies_are_found_and_set_strictly() {
        assert_eq!(cookie_value("a=1; riskgate_console=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("a=1"), None);
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
