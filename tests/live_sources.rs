//! Live sources: the hub connects to an upstream, relays what it sends to
//! subscribed WebSocket clients with exact prices, survives the upstream
//! restarting on the same port (clients hear `upstream_down`, then
//! `upstream_up`, then the new events), counts malformed input without
//! stopping, and stops promptly when asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::{TestHub, http_get, next, until, within};
use quotehub_client::{Client, Update};
use quotehub_feed::live::{LiveStats, LiveUrl};
use quotehub_proto::Flags;
use quotehub_server::{LiveOptions, ServerConfig, run_live};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A hub fed by one live source, with a client subscribed to AAPL.
struct LiveHub {
    hub: TestHub,
    client: Client,
    stop: watch::Sender<bool>,
    source: JoinHandle<()>,
}

impl LiveHub {
    /// Starts the hub and its client first, then the source, so the client
    /// hears the source's first `upstream_up`.
    async fn start(url: LiveUrl) -> Self {
        let hub = TestHub::start(ServerConfig::default()).await;
        let mut client = hub.connect().await;
        client.subscribe(&["AAPL"]).await.unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let source = tokio::spawn(run_live(hub.hub.clone(), url, 0, LiveOptions::default(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Self {
            hub,
            client,
            stop,
            source,
        }
    }

    /// The next `n` updates the client gets, described.
    async fn next_updates(&mut self, n: usize) -> Vec<String> {
        let mut seen = Vec::new();
        for _ in 0..n {
            seen.push(describe(&next(&mut self.client).await));
        }
        seen
    }

    fn stats(&self) -> std::sync::Arc<LiveStats> {
        let sources = self.hub.hub.sources();
        assert_eq!(sources.len(), 1, "one live source");
        sources[0].1.clone()
    }

    /// Stops the source (it must end promptly) and the hub.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        within(self.source).await.unwrap();
        self.hub.shutdown().await;
    }
}

/// One update as a line: status name, or kind, symbol, seq, exact prices.
/// Live records must not be flagged replayed and must carry a receive time.
fn describe(update: &Update) -> String {
    match update {
        Update::Status { record, .. } => format!("status {}", record.code.name()),
        Update::Quote { record, .. } => {
            assert!(!record.flags.contains(Flags::REPLAYED), "live quotes are not replayed");
            assert!(record.quote.recv_ts > 0, "stamped on receipt");
            let q = &record.quote;
            format!(
                "quote {} #{} {}x{} {}x{}",
                q.symbol, q.seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size
            )
        }
        Update::Trade { record, .. } => {
            assert!(!record.flags.contains(Flags::REPLAYED), "live trades are not replayed");
            assert!(record.trade.recv_ts > 0, "stamped on receipt");
            let t = &record.trade;
            format!("trade {} #{} {}x{}", t.symbol, t.seq, t.price, t.size)
        }
        other => panic!("unexpected update {other:?}"),
    }
}

/// A metric's value for the hub's only source.
async fn source_metric(hub: &TestHub, name: &str) -> u64 {
    let (status, body) = http_get(hub, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix("{source=\"")?.split_once("\"} "))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

// --- (a) TCP JSON lines ---------------------------------------------------

/// Accepts the hub's connection on `listener`.
async fn accept(listener: &TcpListener) -> TcpStream {
    within(listener.accept()).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_reach_clients_and_survive_an_upstream_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = LiveUrl::parse(&format!("tcp://{addr}")).unwrap().unwrap();
    let mut live = LiveHub::start(url).await;

    let mut upstream = accept(&listener).await;
    upstream
        .write_all(
            concat!(
                r#"{"ev":"Q","sym":"AAPL","bp":271.41,"bs":800,"ap":271.43,"as":600,"t":1795185001499050531}"#,
                "\n",
                "{\"ev\":\"Q\",\"sym\":\"AAPL\",\"bp\":271.41\n",
                "\r\n",
                r#"{"ev":"T","sym":"AAPL","p":271.42,"s":100,"t":1795185001505228421}"#,
                "\r\n",
                r#"{"ev":"Q","sym":"MSFT","bp":509.84,"bs":200,"ap":509.86,"as":400,"t":1795185001482147122}"#,
                "\n",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        live.next_updates(3).await,
        [
            "status upstream_up",
            "quote AAPL #1 271.41x800 271.43x600",
            "trade AAPL #2 271.42x100",
        ]
    );
    let stats = live.stats();
    until(|| LiveStats::get(&stats.events) == 3).await;
    assert_eq!(LiveStats::get(&stats.rejected), 1);
    assert!(
        stats.first_rejections()[0].starts_with("line 2: "),
        "{:?}",
        stats.first_rejections()
    );

    // The upstream goes away: connection and listener both.
    drop(upstream);
    drop(listener);
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);

    // It comes back on the same port; the source finds it by itself.
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut upstream = accept(&listener).await;
    upstream
        .write_all(b"{\"ev\":\"Q\",\"sym\":\"AAPL\",\"bp\":\"271.5\",\"bs\":1,\"ap\":\"271.500000001\",\"as\":2,\"t\":1795185002000000000}\n")
        .await
        .unwrap();
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #3 271.50x1 271.500000001x2"]
    );

    assert_eq!(source_metric(&live.hub, "quotehub_source_connects_total").await, 2);
    assert_eq!(source_metric(&live.hub, "quotehub_source_disconnects_total").await, 1);
    assert_eq!(source_metric(&live.hub, "quotehub_source_rejected_total").await, 1);
    assert_eq!(source_metric(&live.hub, "quotehub_source_events_total").await, 4);
    assert_eq!(source_metric(&live.hub, "quotehub_source_up").await, 1);
    assert!(source_metric(&live.hub, "quotehub_source_bytes_total").await > 300);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_upstream_never_answers_reports_down_and_stops_promptly() {
    // A port with nothing listening: bind, note it, close.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let url = LiveUrl::parse(&format!("tcp://{addr}")).unwrap().unwrap();
    let mut live = LiveHub::start(url).await;
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);
    let stats = live.stats();
    until(|| LiveStats::get(&stats.failed_attempts) >= 2).await;
    assert_eq!(LiveStats::get(&stats.connects), 0);
    live.stop().await;
}
