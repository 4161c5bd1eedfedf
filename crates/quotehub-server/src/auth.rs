//! Who may connect: API keys (with per-key symbol entitlements and connection
//! caps) and an `Origin` allow-list against cross-site WebSocket hijacking.
//! Checked on the request head, before any upgrade: refusals are HTTP 401 or
//! 403 with a plain-text reason, never a silent close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
}

/// The access rules. Empty lists switch a check off.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Keys accepted; when empty, no key is needed.
    pub keys: Vec<ApiKey>,
    /// `Origin` values accepted from browsers; when empty, any. A request
    /// without `Origin` (not from a browser) is not subject to this list.
    pub allowed_origins: Vec<String>,
    /// Open connections per key name.
    open: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
}

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
        Self {
            keys,
            allowed_origins,
            open: Arc::default(),
        }
    }

    /// Checks a request head; admits it or says why not.
    pub fn admit(&self, head: &Head) -> Result<Admission, Refusal> {
        if let Some(origin) = head.header("origin")
            && !self.allowed_origins.is_empty()
            && !self.allowed_origins.iter().any(|allowed| allowed == origin)
        {
            return Err(refuse(403, format!("origin {origin:?} is not allowed")));
        }
        if self.keys.is_empty() {
            return Ok(Admission {
                key_name: None,
                symbols: None,
                open: None,
            });
        }
        let key = self.known_key(
            head,
            "an API key is required: send Authorization: Bearer KEY, X-Api-Key: KEY, or ?api_key=KEY",
        )?;
        let open = {
            let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
            open: Some(open),
        })
    }
}

impl Access {
    /// Checks a request for an admin endpoint. With keys configured it needs
    /// a key with the admin right (401 without a known key, 403 with one that
    /// lacks it); without keys, only loopback peers are served (403 for
    /// others). Either way a browser request from another origin is refused
    /// (403), so a web page cannot pause the hub through a local browser.
    pub fn admit_admin(&self, head: &Head, peer: std::net::SocketAddr) -> Result<(), Refusal> {
        if let Some(origin) = head.header("origin") {
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
            return if peer.ip().is_loopback() {
                Ok(())
            } else {
                Err(refuse(
                    403,
                    "without API keys configured, the admin endpoints are served to loopback clients only".into(),
                ))
            };
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

/// The key from `Authorization: Bearer`, `X-Api-Key`, or `?api_key=` (for
/// browsers, which cannot set headers on a WebSocket).
fn presented_key(head: &Head) -> Option<String> {
    let bearer = head
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    bearer
        .or_else(|| head.header("x-api-key"))
        .or_else(|| head.query_param("api_key"))
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
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
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
