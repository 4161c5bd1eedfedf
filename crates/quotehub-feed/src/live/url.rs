//! Which live source a feed URL names.

use std::fmt;

/// A live source, named by URL scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveUrl {
    /// `tcp://HOST:PORT`: JSON lines over TCP.
    Tcp {
        /// `HOST:PORT`.
        addr: String,
    },
    /// `ws://HOST:PORT/PATH` or `wss://HOST/PATH`: a Polygon-style WebSocket upstream.
    PolygonWs {
        /// The URL as given.
        url: String,
    },
    /// `quotehub://HOST:PORT`, or `quotehub+tls://HOST:PORT` for a hub
    /// that serves `wss://`: another quotehub, relayed.
    Quotehub {
        /// `HOST:PORT`.
        addr: String,
        /// Whether to connect with TLS.
        tls: bool,
    },
}

impl LiveUrl {
    /// The live source `text` names; `None` when it has no `SCHEME://`
    /// prefix (it is then a file path); an error for an unknown scheme or a
    /// missing host.
    pub fn parse(text: &str) -> Option<Result<Self, String>> {
        let (scheme, rest) = text.split_once("://")?;
        let host_port = |rest: &str| -> Result<String, String> {
            let addr = rest.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
                return Err(format!("{text}: expected {scheme}://HOST:PORT"));
            }
            Ok(addr.to_owned())
        };
        Some(match scheme.to_ascii_lowercase().as_str() {
            "tcp" => host_port(rest).map(|addr| LiveUrl::Tcp { addr }),
            "quotehub" => host_port(rest).map(|addr| LiveUrl::Quotehub { addr, tls: false }),
            "quotehub+tls" => host_port(rest).map(|addr| LiveUrl::Quotehub { addr, tls: true }),
            "ws" | "wss" if !rest.is_empty() && !rest.starts_with('/') => {
                Ok(LiveUrl::PolygonWs { url: text.to_owned() })
            }
            "ws" | "wss" => Err(format!("{text}: expected {scheme}://HOST[:PORT]/PATH")),
            _ => Err(format!(
                "{text}: unknown feed scheme {scheme:?}; live feeds are tcp://HOST:PORT, \
                 ws://HOST:PORT/PATH, wss://HOST[:PORT]/PATH, quotehub://HOST:PORT or quotehub+tls://HOST:PORT"
            )),
        })
    }
}

/// The URL without its query, which may carry credentials: what logs and
/// metrics show.
impl fmt::Display for LiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveUrl::Tcp { addr } => write!(f, "tcp://{addr}"),
            LiveUrl::PolygonWs { url } => f.write_str(without_query(url)),
            LiveUrl::Quotehub { addr, tls: false } => write!(f, "quotehub://{addr}"),
            LiveUrl::Quotehub { addr, tls: true } => write!(f, "quotehub+tls://{addr}"),
        }
    }
}

impl LiveUrl {
    /// Whether connecting means a TLS handshake (and so trust roots).
    pub fn uses_tls(&self) -> bool {
        match self {
            LiveUrl::Tcp { .. } => false,
            LiveUrl::PolygonWs { url } => url.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss://")),
            LiveUrl::Quotehub { tls, .. } => *tls,
        }
    }
}

/// `url` up to its `?` or `#`.
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_source_and_paths_are_not_urls() {
        assert_eq!(LiveUrl::parse("feeds/a.jsonl"), None);
        assert_eq!(
            LiveUrl::parse("tcp://127.0.0.1:9000"),
            Some(Ok(LiveUrl::Tcp {
                addr: "127.0.0.1:9000".into()
            }))
        );
        assert_eq!(
            LiveUrl::parse("quotehub://hub.example:8080/"),
            Some(Ok(LiveUrl::Quotehub {
                addr: "hub.example:8080".into(),
                tls: false
            }))
        );
        let chained = LiveUrl::parse("quotehub+tls://hub.example:8443").unwrap().unwrap();
        assert_eq!(chained.to_string(), "quotehub+tls://hub.example:8443");
        assert!(chained.uses_tls());
        let wss = LiveUrl::parse("wss://socket.example/stocks?apiKey=SECRET")
            .unwrap()
            .unwrap();
        assert_eq!(wss.to_string(), "wss://socket.example/stocks", "no query in logs");
        assert!(wss.uses_tls());
        let ws = LiveUrl::parse("ws://socket.example:80/stocks?apiKey=SECRET")
            .unwrap()
            .unwrap();
        assert_eq!(ws.to_string(), "ws://socket.example:80/stocks", "no query in logs");
        assert!(!ws.uses_tls());
        for bad in [
            "tcp://nohost",
            "tcp://",
            "udp://1.2.3.4:5",
            "ws://",
            "tcp://a:1/path",
            "wss://",
            "wss:///stocks",
            "quotehub+tls://nohost",
        ] {
            assert!(matches!(LiveUrl::parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
