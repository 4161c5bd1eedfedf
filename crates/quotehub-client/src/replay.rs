//! The settings of a replay session and the URL that asks a hub for one.

use crate::error::{Error, Result};

/// The path of replay sessions on a hub.
pub const REPLAY_PATH: &str = "/v1/replay";

/// What a replay session replays and how fast; the default is the whole
/// feed at its recorded pace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySession {
    /// A factor of recorded time (`"10"`, `"0.5"`) or `"max"`; `None`: 1.
    pub speed: Option<String>,
    /// First event time (inclusive): RFC 3339 or ns since the epoch.
    pub from: Option<String>,
    /// Last event time (exclusive).
    pub to: Option<String>,
    /// Symbols to replay; empty for all.
    pub symbols: Vec<String>,
    /// Start over at the end.
    pub looped: bool,
}

impl ReplaySession {
    /// The session's URL on the hub at `hub_url` (scheme and host are kept,
    /// the path is replaced).
    pub fn url(&self, hub_url: &str, feed: &str) -> Result<String> {
        let (scheme, rest) = hub_url
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "ws" | "wss"))
            .ok_or_else(|| Error::Protocol(format!("a hub URL is ws://HOST:PORT or wss://..., not {hub_url:?}")))?;
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let mut url = format!("{scheme}://{authority}{REPLAY_PATH}?feed={}", encode(feed));
        let symbols = self.symbols.join(",");
        let params = [
            ("speed", self.speed.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("symbols", (!symbols.is_empty()).then_some(symbols.as_str())),
            ("loop", self.looped.then_some("true")),
        ];
        for (name, value) in params {
            if let Some(value) = value {
                url.push_str(&format!("&{name}={}", encode(value)));
            }
        }
        Ok(url)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_the_host_and_encodes_the_parameters() {
        let session = ReplaySession {
            speed: Some("10".into()),
            from: Some("2026-11-20T09:31:00+05:00".into()),
            symbols: vec!["AAPL".into(), "BRK.B".into()],
            ..ReplaySession::default()
        };
        assert_eq!(
            session.url("ws://127.0.0.1:8080/v1/quotes", "bundled").unwrap(),
            "ws://127.0.0.1:8080/v1/replay?feed=bundled&speed=10&from=2026-11-20T09%3A31%3A00%2B05%3A00&symbols=AAPL%2CBRK.B"
        );
        assert_eq!(
            ReplaySession::default().url("wss://hub.example", "a b").unwrap(),
            "wss://hub.example/v1/replay?feed=a%20b"
        );
        assert!(ReplaySession::default().url("http://x", "f").is_err());
    }
}
