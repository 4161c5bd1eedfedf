//! Who may connect: API keys (with per-key symbol entitlements and connection
//! caps) and an `Origin` allow-list against cross-site WebSocket hijacking.
//! Checked on the request head, before any upgrade: refusals are HTTP 401 or
//! 403 with a plain-text reason, never a silent close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quotehub_proto::Symbol;

use crate::http::Head;

/// One API key and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// A name for logs and metrics (never the key itself).
    pub name: String,
    /// The secret the client presents.
    pub key: String,
    /// Symbols it may subscribe to; `None` for every symbol.
    pub symbols: Option<HashSet<Symbol>>,
    /// Connections it may hold at once; `None` for no cap beyond the hub's.
    pub max_connections: Option<usize>,
    /// May use the admin endpoints (`/admin/...`: pause, seek... the hub's replay).
    pub admin: bool,
    /// How long after the hub received a record its connections get it
    /// (a delayed-data licence); zero for real time. See `delayed.rs`.
    pub delay: Duration,
}

/// The access rules (settings only). Empty lists switch a check off.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Keys accepted; when empty, no key is needed.
    pub keys: Vec<ApiKey>,
    /// `Origin` values accepted from browsers; when empty, any. A request
    /// without `Origin` (not from a browser) is not subject to this list.
    pub allowed_origins: Vec<String>,
}

/// Connections open per key name, for the keys' caps: live counts, held
/// by the server's state (`state.rs`), not by its settings.
#[derive(Debug, Default)]
pub struct OpenPerKey(Mutex<HashMap<String, Arc<AtomicUsize>>>);

/// A refusal at the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 or 403.
    pub status: u16,
    /// Why, for the response body.
    pub reason: String,
}

/// An admitted connection: its entitlements, and its place under its key's
/// cap, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    /// The key's name, if keys are in use.
    pub key_name: Option<String>,
    /// Symbols the connection may subscribe to; `None` for all.
    pub symbols: Option<Arc<HashSet<Symbol>>>,
    /// The key's delay (zero: real time): which hub serves the connection.
    pub delay: Duration,
    open: Option<Arc<AtomicUsize>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Access {
    /// Rules with these keys and origins.
    pub fn new(keys: Vec<ApiKey>, allowed_origins: Vec<String>) -> Self {
        Self { keys, allowed_origins }
    }

    /// The distinct non-zero delays of the keys, shortest first: one
    /// delayed hub each.
    pub fn delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = self.keys.iter().map(|key| key.delay).filter(|d| !d.is_zero()).collect();
        delays.sort_unstable();
        delays.dedup();
        delays
    }

    /// Checks a request head; admits it (counted in `open` under its key's
    /// cap) or says why not.
    pub fn admit(&self, head: &Head, open: &OpenPerKey) -> Result<Admission, Refusal> {
        if let Some(origin) = single_origin(head)?
            && !self.allowed_origins.is_empty()
            && !self.allowed_origins.iter().any(|allowed| allowed == origin)
        {
            return Err(refuse(403, format!("origin {origin:?} is not allowed")));
        }
        if self.keys.is_empty() {
            return Ok(Admission {
                key_name: None,
                symbols: None,
                delay: Duration::ZERO,
                open: None,
            });
        }
        let key = self.known_key(
            head,
            "an API key is required: send Authorization: Bearer KEY, X-Api-Key: KEY, or ?api_key=KEY",
        )?;
        let open = {
            let mut open = open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(open.entry(key.name.clone()).or_default())
        };
        let held = open.fetch_add(1, Ordering::AcqRel);
        if key.max_connections.is_some_and(|cap| held >= cap) {
            open.fetch_sub(1, Ordering::AcqRel);
            return Err(refuse(
                403,
                format!("API key {:?} already holds its {held} connections", key.name),
            ));
        }
        Ok(Admission {
            key_name: Some(key.name.clone()),
            symbols: key.symbols.clone().map(Arc::new),
            delay: key.delay,
            open: Some(open),
        })
    }
}

impl Access {
    /// Checks a request for an admin endpoint. With keys configured it needs
    /// a key with the admin right (401 without a known key, 403 with one that
    /// lacks it); without keys, only loopback peers asking for a loopback
    /// `Host` (or the address they reached, `local`) are served (403 for
    /// others): a page on a name that resolves to loopback (DNS rebinding)
    /// sends its own name. Either way a browser request from another origin,
    /// or with two `Origin` headers, is refused (403), so a web page cannot
    /// pause the hub through a local browser.
    pub fn admit_admin(
        &self,
        head: &Head,
        peer: std::net::SocketAddr,
        local: std::net::SocketAddr,
    ) -> Result<(), Refusal> {
        if let Some(origin) = single_origin(head)? {
            let same_origin = head.header("host").is_some_and(|host| {
                origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|rest| rest == host)
            });
            if !same_origin && !self.allowed_origins.iter().any(|allowed| allowed == origin) {
                return Err(refuse(
                    403,
                    format!("origin {origin:?} may not use the admin endpoints"),
                ));
            }
        }
        if self.keys.is_empty() {
            // Canonical: a hub listening on [::] sees IPv4 clients as ::ffff:a.b.c.d.
            if !peer.ip().to_canonical().is_loopback() {
                return Err(refuse(
                    403,
                    "without API keys configured, the admin endpoints are served to loopback clients only".into(),
                ));
            }
            let host = head.header("host").unwrap_or_default();
            if !is_local_host(host, local) {
                return Err(refuse(
                    403,
                    format!(
                        "without API keys configured, the admin endpoints answer only a loopback Host \
                         (localhost, 127.0.0.1, [::1]) or the hub's own address, not Host {host:?}"
                    ),
                ));
            }
            return Ok(());
        }
        let key = self.known_key(
            head,
            "an API key with the admin right is required: send Authorization: Bearer KEY or X-Api-Key: KEY",
        )?;
        if key.admin {
            Ok(())
        } else {
            Err(refuse(403, format!("API key {:?} has no admin right", key.name)))
        }
    }

    /// The configured key the request presents: 401 with `missing` when it
    /// presents none, 401 when it is not one of the keys (compared in
    /// constant time).
    fn known_key(&self, head: &Head, missing: &str) -> Result<&ApiKey, Refusal> {
        let presented = presented_key(head).ok_or_else(|| refuse(401, missing.to_owned()))?;
        self.keys
            .iter()
            .find(|key| constant_time_eq(key.key.as_bytes(), presented.as_bytes()))
            .ok_or_else(|| refuse(401, "unknown API key".into()))
    }
}

fn refuse(status: u16, reason: String) -> Refusal {
    Refusal { status, reason }
}

/// The request's `Origin`, if any; two are refused (403) rather than one of
/// them checked and the other believed.
fn single_origin(head: &Head) -> Result<Option<&str>, Refusal> {
    if head.header_count("origin") > 1 {
        return Err(refuse(403, "more than one Origin header".into()));
    }
    Ok(head.header("origin"))
}

/// True if a `Host` value names this machine by a name no DNS answer can
/// change: `localhost`, a loopback address, or `local`, the address the
/// client reached. The port is not compared.
fn is_local_host(host: &str, local: std::net::SocketAddr) -> bool {
    let name = match host.strip_prefix('[') {
        // "[::1]:8080"
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.to_canonical() == local.ip().to_canonical())
}

/// The key from `Authorization: Bearer`, `X-Api-Key`, or `?api_key=` (for
/// browsers, which cannot set headers on a WebSocket).
fn presented_key(head: &Head) -> Option<String> {
    let bearer = head
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    bearer
        .or_else(|| head.header("x-api-key"))
        .map(str::to_owned)
        .or_else(|| head.query_value("api_key"))
        .filter(|key| !key.is_empty())
}

/// Compares without returning early, so timing does not reveal how much of a
/// guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (i, byte) in a.iter().enumerate() {
        difference |= usize::from(byte ^ b.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_loopback_names_or_the_address_reached() {
        let local: std::net::SocketAddr = "[::ffff:192.0.2.7]:8080".parse().unwrap();
        for host in [
            "localhost",
            "LOCALHOST:1",
            "127.0.0.1:8080",
            "127.9.9.9",
            "[::1]:80",
            "[::1]",
            "192.0.2.7:8080",
        ] {
            assert!(is_local_host(host, local), "{host}");
        }
        for host in [
            "",
            "evil.example:8080",
            "localhost.evil.example",
            "192.0.2.8",
            "[::2]:80",
            "::1",
        ] {
            assert!(!is_local_host(host, local), "{host}");
        }
    }

    #[test]
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
