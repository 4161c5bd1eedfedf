//! Shared helpers for the end-to-end tests: a real hub on 127.0.0.1:0, real
//! clients, and waits that end on an event or a deadline, never on a sleep.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod attackers;
pub mod bars_computed;
pub mod external;
pub mod gate;
pub mod nats;
pub mod raw_ws;
pub mod shared_data;
pub mod switch;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use quotehub_client::{Client, Update};
use quotehub_proto::{Event, Quote, Symbol, Trade};
use quotehub_server::{Hub, ServerConfig, ServerState};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The bundled feed, from the repository root.
pub fn bundled_feed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("feeds/us-equities-2026-11-20.jsonl")
}

/// A hub serving on an ephemeral loopback port.
pub struct TestHub {
    pub hub: Hub,
    /// `ws://127.0.0.1:PORT/v1/quotes`
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    pub async fn start(config: ServerConfig) -> Self {
        Self::start_with_hub(Hub::new(), config).await
    }

    pub async fn start_with_hub(hub: Hub, config: ServerConfig) -> Self {
        Self::start_at("127.0.0.1:0", hub, config).await
    }

    /// A hub on `addr` (as a restarted hub comes back on its old port).
    pub async fn start_at(addr: &str, hub: Hub, config: ServerConfig) -> Self {
        Self::serve_at(addr, hub, ServerState::new(config).unwrap()).await
    }

    /// A hub served from a state the test built (one whose admin endpoints
    /// steer a replay, say).
    pub async fn start_with_state(state: ServerState) -> Self {
        Self::serve_at("127.0.0.1:0", Hub::new(), state).await
    }

    /// A hub served from a hub and a state the test built together (one
    /// with delayed hubs fed from `hub`, say).
    pub async fn start_with_hub_and_state(hub: Hub, state: ServerState) -> Self {
        Self::serve_at("127.0.0.1:0", hub, state).await
    }

    async fn serve_at(addr: &str, hub: Hub, state: ServerState) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("ws://{}/v1/quotes", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(quotehub_server::serve_with(listener, hub.clone(), state, async move {
            let _ = stopped.await;
        }));
        Self {
            hub,
            url,
            stop: Some(stop),
            task,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("ws://")
            .trim_end_matches("/v1/quotes")
            .to_owned()
    }

    pub async fn connect(&self) -> Client {
        within(Client::connect(&self.url)).await.unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(&mut self.task).await.unwrap().unwrap();
    }
}

/// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future).await.expect("timed out waiting")
}

/// The next update, which must come before the deadline.
pub async fn next(client: &mut Client) -> Update {
    within(client.next_update())
        .await
        .unwrap()
        .expect("the hub closed the stream")
}

pub fn sym(text: &str) -> Symbol {
    text.parse().unwrap()
}

pub fn quote(symbol: &str, bid: &str, ask: &str, event_ts: u64) -> Event {
    Event::Quote(Quote {
        symbol: sym(symbol),
        bid_price: bid.parse().unwrap(),
        bid_size: 100,
        ask_price: ask.parse().unwrap(),
        ask_size: 200,
        event_ts,
        recv_ts: event_ts + 1,
        seq: 0,
    })
}

pub fn trade(symbol: &str, price: &str, event_ts: u64) -> Event {
    Event::Trade(Trade {
        symbol: sym(symbol),
        price: price.parse().unwrap(),
        size: 100,
        event_ts,
        recv_ts: event_ts + 1,
        seq: 0,
    })
}

/// (symbol, seq, snapshot?) of an update.
pub fn key(update: &Update) -> (String, u64, bool) {
    match update {
        Update::Quote { record, .. } => (
            record.quote.symbol.to_string(),
            record.quote.seq,
            record.flags.contains(quotehub_proto::Flags::SNAPSHOT),
        ),
        Update::Trade { record, .. } => (record.trade.symbol.to_string(), record.trade.seq, false),
        _ => panic!("unexpected update {update:?}"),
    }
}

/// The symbol of an update.
pub fn symbol_of(update: &Update) -> String {
    key(update).0
}

/// A plain HTTP GET to the hub: (status code, body).
pub async fn http_get(hub: &TestHub, path: &str) -> (u16, String) {
    http_request(hub, "GET", path, &[]).await
}

/// A plain HTTP request to the hub, with extra header lines: (status code, body).
pub async fn http_request(hub: &TestHub, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = within(tokio::net::TcpStream::connect(hub.addr())).await.unwrap();
    let extra: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
    // The Host a browser or curl sends for the URL http://127.0.0.1:PORT/.
    let host = hub.addr();
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_owned())
}

/// Waits, yielding to the runtime, until `condition` holds; fails the test
/// past [`DEADLINE`]. For state with no event to wait on (table counts).
pub async fn until(mut condition: impl FnMut() -> bool) {
    within(async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Replays a recorded feed at full speed into `hub` on its own thread, as
/// `quotehub serve --speed max --no-loop` does.
pub fn replay_at_max(hub: &Hub, path: PathBuf) -> std::thread::JoinHandle<quotehub_feed::ReplayEnd> {
    replay_only_at_max(hub, path, None)
}

/// As [`replay_at_max`], of the symbols `only` names when given (the
/// feed's others are left out).
pub fn replay_only_at_max(
    hub: &Hub,
    path: PathBuf,
    only: Option<&[&str]>,
) -> std::thread::JoinHandle<quotehub_feed::ReplayEnd> {
    let only = only.map(|symbols| symbols.iter().map(|s| sym(s)).collect());
    let mut publisher = hub.publisher(quotehub_proto::Flags::REPLAYED, 0).only(only);
    std::thread::spawn(move || {
        let mut feed = quotehub_feed::open_recorded(&path).unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let options = quotehub_feed::ReplayOptions {
            speed: quotehub_feed::Speed::Max,
            looped: false,
        };
        quotehub_feed::replay(feed.as_mut(), options, &stop, |mut event| {
            event.set_recv_ts(quotehub_proto::now_ns());
            publisher.publish(event);
        })
        .unwrap()
    })
}

/// A `/metrics` value without labels.
pub async fn metric(hub: &TestHub, name: &str) -> u64 {
    let (status, body) = http_get(hub, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// Waits until `/metrics` shows `name` at `value`.
pub async fn metric_reaches(hub: &TestHub, name: &str, value: u64) {
    within(async {
        while metric(hub, name).await != value {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// An encoded quote record of `symbol` with sequence `seq` (its sizes and
/// stamps vary with `seq`, so that no two records are alike): what an
/// ingest hub puts on the bus.
pub fn quote_record(symbol: &str, seq: u64) -> bytes::Bytes {
    let quote = quotehub_proto::Quote {
        symbol: sym(symbol),
        bid_price: "187.25".parse().unwrap(),
        bid_size: 100 + u32::try_from(seq).unwrap(),
        ask_price: "187.26".parse().unwrap(),
        ask_size: 200,
        event_ts: 1_795_000_000_000_000_000 + seq,
        recv_ts: 1_795_000_000_000_001_000 + seq,
        seq,
    };
    bytes::Bytes::copy_from_slice(
        &quotehub_proto::QuoteRecord {
            quote,
            flags: quotehub_proto::Flags(0),
            conflated: 0,
        }
        .encode(),
    )
}
