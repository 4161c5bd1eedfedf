//! Live sources: the hub connects to an upstream, relays what it sends to
//! subscribed WebSocket clients with exact prices, survives the upstream
//! restarting on the same port (clients hear `upstream_down`, then
//! `upstream_up`, then the new events), counts malformed input without
//! stopping, stops promptly when asked, reads `wss://` and `quotehub+tls://`
//! upstreams trusting a test CA, and drops a connection that goes silent
//! (read-idle timeout) to reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::tls::TestCert;
use common::{TestHub, http_get, next, until, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_client::{Client, Update};
use quotehub_feed::live::{LiveStats, LiveUrl};
use quotehub_proto::Flags;
use quotehub_server::{LiveOptions, ServerConfig, run_live};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

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
        Self::start_with(url, LiveOptions::default()).await
    }

    async fn start_with(url: LiveUrl, options: LiveOptions) -> Self {
        Self::start_on(quotehub_server::Hub::new(), url, options).await
    }

    /// As [`LiveHub::start_with`], on a hub made by the caller.
    async fn start_on(hub: quotehub_server::Hub, url: LiveUrl, options: LiveOptions) -> Self {
        let hub = TestHub::start_with_hub(hub, ServerConfig::default()).await;
        let mut client = hub.connect().await;
        client.subscribe(&["AAPL"]).await.unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let source = tokio::spawn(run_live(hub.hub.clone(), url, 0, options, async move {
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
    let (value, body) = source_metric_now(hub, name).await;
    value.unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// [`source_metric`], or `None` while the source has not registered yet
/// (its task starts after the hub answers), and the page read.
async fn source_metric_now(hub: &TestHub, name: &str) -> (Option<u64>, String) {
    let (status, body) = http_get(hub, "/metrics").await;
    assert_eq!(status, 200);
    let value = body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix("{source=\"")?.split_once("\"} "))
        .and_then(|(_, value)| value.parse().ok());
    (value, body)
}

// --- (a) TCP JSON lines ---------------------------------------------------

/// A stand-in upstream's listener on a fresh port, and the URL of it with
/// `scheme` and `path`.
async fn stand_in(scheme: &str, path: &str) -> (TcpListener, LiveUrl) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{scheme}://{}{path}", listener.local_addr().unwrap());
    (listener, LiveUrl::parse(&url).unwrap().unwrap())
}

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
    // A port with nothing listening, kept bound (but not listening) for the
    // whole test so no other test's listener can be given it meanwhile.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = reserved.local_addr().unwrap();
    let url = LiveUrl::parse(&format!("tcp://{addr}")).unwrap().unwrap();
    let mut live = LiveHub::start(url).await;
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);
    let stats = live.stats();
    until(|| LiveStats::get(&stats.failed_attempts) >= 2).await;
    assert_eq!(LiveStats::get(&stats.connects), 0);
    live.stop().await;
    drop(reserved);
}

// --- (b) Polygon-style WebSocket upstream ---------------------------------

const UPSTREAM_KEY: &str = "test-key-\"quoted\"";

/// The stand-in upstream's half of one connection: accept, greet, check the
/// auth action's key (answering `auth_failed` to a wrong one and closing),
/// check the subscribe action. `None` when it refused the key.
async fn polygon_accept(listener: &TcpListener) -> Option<WebSocketStream<TcpStream>> {
    polygon_handshake(accept(listener).await).await
}

/// [`polygon_accept`] over TLS, serving `cert`.
async fn polygon_accept_tls(
    listener: &TcpListener,
    cert: &TestCert,
) -> Option<WebSocketStream<tokio_rustls::server::TlsStream<TcpStream>>> {
    let stream = within(cert.acceptor().accept(accept(listener).await)).await.unwrap();
    polygon_handshake(stream).await
}

/// The stand-in's side of the Polygon handshake over an accepted stream.
async fn polygon_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Option<WebSocketStream<S>> {
    let mut ws = within(tokio_tungstenite::accept_async(stream)).await.unwrap();
    let send = |text: &str| Message::text(text.to_owned());
    ws.send(send(
        r#"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#,
    ))
    .await
    .unwrap();
    let auth = action(&mut ws).await;
    assert_eq!(auth["action"], "auth");
    if auth["params"] != UPSTREAM_KEY {
        ws.send(send(
            r#"[{"ev":"status","status":"auth_failed","message":"authentication failed"}]"#,
        ))
        .await
        .unwrap();
        let _ = ws.close(None).await;
        return None;
    }
    ws.send(send(
        r#"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#,
    ))
    .await
    .unwrap();
    let subscribe = action(&mut ws).await;
    assert_eq!(
        (&subscribe["action"], &subscribe["params"]),
        (&"subscribe".into(), &"Q.*,T.*".into())
    );
    ws.send(send(
        r#"[{"ev":"status","status":"success","message":"subscribed to: Q.*"}]"#,
    ))
    .await
    .unwrap();
    Some(ws)
}

/// The stand-in sends one text message.
async fn send_text<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// The next text message from the hub, as JSON.
async fn action<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> serde_json::Value {
    loop {
        match within(ws.next()).await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(_) => panic!("the hub closed during the handshake"),
            _ => {}
        }
    }
}

fn polygon_options(key: &str) -> LiveOptions {
    LiveOptions {
        upstream_key: Some(key.to_owned()),
        ..LiveOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polygon_websocket_events_reach_clients_and_survive_an_upstream_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = LiveUrl::parse(&format!("ws://{addr}/stocks")).unwrap().unwrap();
    let mut live = LiveHub::start_with(url, polygon_options(UPSTREAM_KEY)).await;

    let mut upstream = polygon_accept(&listener).await.expect("the key is accepted");
    let events = concat!(
        r#"[{"ev":"Q","sym":"AAPL","bx":4,"bp":271.41,"bs":800,"ax":7,"ap":271.43,"as":600,"c":0,"t":1795185001499},"#,
        r#"{"ev":"T","sym":"AAPL","x":4,"i":"52983525029461","p":271.42,"s":100,"c":[12,37],"t":1795185001505},"#,
        r#"{"ev":"Q","sym":"AAPL","bp":"not a price","bs":1,"ap":1,"as":1,"t":1795185001506},"#,
        r#"{"ev":"status","status":"info","message":"still here"}]"#
    );
    upstream.send(Message::text(events)).await.unwrap();
    upstream.send(Message::text("[{\"ev\":\"Q\"")).await.unwrap();
    assert_eq!(
        live.next_updates(3).await,
        [
            "status upstream_up",
            "quote AAPL #1 271.41x800 271.43x600",
            "trade AAPL #2 271.42x100",
        ]
    );
    let stats = live.stats();
    until(|| LiveStats::get(&stats.rejected) == 2).await;
    let rejections = stats.first_rejections();
    assert!(rejections[0].starts_with("message 2 element 3: "), "{rejections:?}");
    assert!(rejections[1].starts_with("message 3: "), "{rejections:?}");

    // The upstream goes away without a close frame, and its listener too.
    drop(upstream);
    drop(listener);
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);

    let listener = TcpListener::bind(addr).await.unwrap();
    let mut upstream = polygon_accept(&listener).await.expect("the key is accepted");
    send_text(
        &mut upstream,
        r#"[{"ev":"Q","sym":"AAPL","bp":"271.5","bs":1,"ap":"271.500000001","as":2,"t":1795185002000}]"#,
    )
    .await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #3 271.50x1 271.500000001x2"]
    );
    assert_eq!(source_metric(&live.hub, "quotehub_source_connects_total").await, 2);
    assert_eq!(source_metric(&live.hub, "quotehub_source_events_total").await, 3);
    assert_eq!(source_metric(&live.hub, "quotehub_source_rejected_total").await, 2);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_keeps_the_source_down_and_retrying() {
    let (listener, url) = stand_in("ws", "/stocks").await;
    let mut live = LiveHub::start_with(url, polygon_options("wrong")).await;
    assert!(polygon_accept(&listener).await.is_none());
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);
    // It tries again (after a backoff delay) and is refused again.
    assert!(polygon_accept(&listener).await.is_none());
    let stats = live.stats();
    until(|| LiveStats::get(&stats.failed_attempts) >= 2).await;
    assert_eq!(LiveStats::get(&stats.connects), 0);
    live.stop().await;
}

// --- (c) another quotehub, relayed ----------------------------------------

/// An upstream quotehub serving on `listener` until `stop` is sent.
fn upstream_hub(listener: TcpListener) -> (quotehub_server::Hub, tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    upstream_hub_with(listener, ServerConfig::default())
}

fn upstream_hub_with(
    listener: TcpListener,
    config: ServerConfig,
) -> (quotehub_server::Hub, tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    let hub = quotehub_server::Hub::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let hub = hub.clone();
        async move {
            quotehub_server::serve(listener, hub, config, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        }
    });
    (hub, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hub_is_relayed_with_our_own_sequence_and_survives_its_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (upstream, stop_upstream, upstream_task) = upstream_hub(listener);
    // Known upstream before the relay connects: it arrives as the upstream's
    // snapshot, which is no snapshot here (the relay's subscription is ours).
    let mut publisher = upstream.publisher(Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "271.41", "271.43", 1_795_185_001_499_050_531));

    let url = LiveUrl::parse(&format!("quotehub://{addr}")).unwrap().unwrap();
    let mut live = LiveHub::start(url).await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #1 271.41x100 271.43x200"]
    );
    publisher.publish(common::trade("AAPL", "271.42", 1_795_185_001_505_228_421));
    publisher.publish(common::quote("MSFT", "509.84", "509.86", 1_795_185_001_505_228_422));
    publisher.publish(common::quote(
        "AAPL",
        "0.000000001",
        "99999.999999999",
        1_795_185_001_505_228_423,
    ));
    assert_eq!(
        live.next_updates(2).await,
        [
            "trade AAPL #2 271.42x100",
            "quote AAPL #3 0.000000001x100 99999.999999999x200"
        ]
    );

    // The upstream hub shuts down (its clients, the relay among them, are
    // closed with 1001) and a new one starts on the same port.
    stop_upstream.send(()).unwrap();
    within(upstream_task).await.unwrap();
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);
    let (upstream, stop_upstream, upstream_task) = upstream_hub(TcpListener::bind(addr).await.unwrap());
    assert_eq!(live.next_updates(1).await, ["status upstream_up"]);
    // The new upstream numbers AAPL from 1 again; this hub goes on from 3.
    let mut publisher = upstream.publisher(Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "271.5", "271.51", 1_795_185_002_000_000_000));
    assert_eq!(live.next_updates(1).await, ["quote AAPL #4 271.50x100 271.51x200"]);
    assert_eq!(source_metric(&live.hub, "quotehub_source_connects_total").await, 2);
    assert_eq!(source_metric(&live.hub, "quotehub_source_events_total").await, 5);
    assert_eq!(source_metric(&live.hub, "quotehub_source_rejected_total").await, 0);
    live.stop().await;
    stop_upstream.send(()).unwrap();
    within(upstream_task).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_api_keys_is_relayed_with_the_upstream_key_and_refused_without() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let relay_key = quotehub_server::ApiKey {
        name: "relay".into(),
        key: "relay-secret".into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let keyed = ServerConfig {
        access: quotehub_server::Access::new(vec![relay_key], Vec::new()),
        ..ServerConfig::default()
    };
    let (upstream, stop_upstream, upstream_task) = upstream_hub_with(listener, keyed);
    let mut publisher = upstream.publisher(Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "271.41", "271.43", 1_795_185_001_499_050_531));
    let url = LiveUrl::parse(&format!("quotehub://{addr}")).unwrap().unwrap();

    // Without the key: refused (401) and retried, never up.
    let refused = LiveHub::start(url.clone()).await;
    // Zero until the source's task has registered it.
    let failed = || async {
        source_metric_now(&refused.hub, "quotehub_source_failed_attempts_total")
            .await
            .0
            .unwrap_or(0)
    };
    within(async {
        while failed().await < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(source_metric(&refused.hub, "quotehub_source_connects_total").await, 0);
    refused.stop().await;

    // With it ($QUOTEHUB_UPSTREAM_KEY in the binary): relayed.
    let options = LiveOptions {
        upstream_key: Some("relay-secret".into()),
        ..LiveOptions::default()
    };
    let mut live = LiveHub::start_with(url, options).await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #1 271.41x100 271.43x200"]
    );
    live.stop().await;
    stop_upstream.send(()).unwrap();
    within(upstream_task).await.unwrap();
}

// --- quotehub replay FEED --listen ADDR, chained into a tcp:// source ------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_feed_served_over_tcp_feeds_a_hub_again_on_each_connection() {
    let dir = std::env::temp_dir().join(format!("quotehub-line-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("feed.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"ev":"Q","sym":"AAPL","bp":271.41,"bs":800,"ap":271.43,"as":600,"t":1795185001499050531}"#,
            "\n",
            r#"{"ev":"T","sym":"AAPL","p":271.42,"s":100,"t":1795185001505228421}"#,
            "\n",
        ),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let options = quotehub_feed::ReplayOptions {
        speed: quotehub_feed::Speed::Max,
        looped: false,
    };
    let feed = path.clone();
    // Serves for the rest of the test process.
    std::thread::spawn(move || {
        quotehub_feed::line_server::serve_json_lines(listener, move || quotehub_feed::open_recorded(&feed), options)
    });

    let url = LiveUrl::parse(&format!("tcp://{addr}")).unwrap().unwrap();
    let mut live = LiveHub::start(url).await;
    assert_eq!(
        live.next_updates(5).await,
        [
            "status upstream_up",
            "quote AAPL #1 271.41x800 271.43x600",
            "trade AAPL #2 271.42x100",
            // The feed ends, the replay server closes, the source reconnects
            // and the next connection replays from the start.
            "status upstream_down",
            "status upstream_up",
        ]
    );
    assert_eq!(live.next_updates(1).await, ["quote AAPL #3 271.41x800 271.43x600"]);
    live.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- TLS upstreams: wss:// and quotehub+tls:// -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_polygon_upstream_is_read_when_its_ca_is_trusted_and_refused_otherwise() {
    let cert = TestCert::localhost("live-wss");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = LiveUrl::parse(&format!("wss://localhost:{port}/stocks"))
        .unwrap()
        .unwrap();

    // Without the test CA (public web roots only) the hub refuses the
    // certificate: the stand-in's handshake fails and the source stays down.
    let mut untrusting = LiveHub::start_with(url.clone(), polygon_options(UPSTREAM_KEY)).await;
    assert!(within(cert.acceptor().accept(accept(&listener).await)).await.is_err());
    assert_eq!(untrusting.next_updates(1).await, ["status upstream_down"]);
    let stats = untrusting.stats();
    assert_eq!(LiveStats::get(&stats.connects), 0);
    untrusting.stop().await;

    let options = LiveOptions {
        tls: Some(cert.client_tls()),
        ..polygon_options(UPSTREAM_KEY)
    };
    let mut live = LiveHub::start_with(url, options).await;
    let mut upstream = polygon_accept_tls(&listener, &cert).await.expect("the key is accepted");
    send_text(
        &mut upstream,
        r#"[{"ev":"Q","sym":"AAPL","bp":"271.41","bs":800,"ap":"271.430000001","as":600,"t":1795185001499}]"#,
    )
    .await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #1 271.41x800 271.430000001x600"]
    );
    assert_eq!(
        source_metric(&live.hub, "quotehub_source_connects_total").await,
        1,
        "the source is named wss://localhost:{port}/stocks"
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_chain_over_tls_with_quotehub_connect_urls() {
    let cert = TestCert::localhost("live-chain");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ServerConfig {
        tls: Some(cert.server_tls()),
        ..ServerConfig::default()
    };
    let (upstream, stop_upstream, upstream_task) = upstream_hub_with(listener, config);
    let mut publisher = upstream.publisher(Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "271.41", "271.43", 1_795_185_001_499_050_531));

    let url = LiveUrl::parse(&format!("quotehub+tls://localhost:{port}"))
        .unwrap()
        .unwrap();
    let options = LiveOptions {
        tls: Some(cert.client_tls()),
        ..LiveOptions::default()
    };
    let mut live = LiveHub::start_with(url, options).await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #1 271.41x100 271.43x200"]
    );
    publisher.publish(common::trade("AAPL", "271.42", 1_795_185_001_505_228_421));
    assert_eq!(live.next_updates(1).await, ["trade AAPL #2 271.42x100"]);
    live.stop().await;
    stop_upstream.send(()).unwrap();
    within(upstream_task).await.unwrap();
}

// --- read-idle timeout: half-open upstreams ---------------------------------

const QUIET_QUOTE: &str =
    "{\"ev\":\"Q\",\"sym\":\"AAPL\",\"bp\":\"271.5\",\"bs\":1,\"ap\":\"271.51\",\"as\":2,\"t\":1795185002000000000}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_upstream_that_goes_silent_is_dropped_and_reconnected() {
    let (listener, url) = stand_in("tcp", "").await;
    let options = LiveOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        ..LiveOptions::default()
    };
    let mut live = LiveHub::start_with(url, options).await;

    // Connected, one quote, then silence with the connection left open, as
    // a peer that vanished leaves it.
    let mut silent = accept(&listener).await;
    silent.write_all(QUIET_QUOTE.as_bytes()).await.unwrap();
    assert_eq!(
        live.next_updates(3).await,
        [
            "status upstream_up",
            "quote AAPL #1 271.50x1 271.51x2",
            "status upstream_down"
        ]
    );
    let stats = live.stats();
    assert!(LiveStats::get(&stats.disconnects) >= 1, "counted as a lost connection");
    // The hub closed its end of the silent connection.
    let mut byte = [0u8; 1];
    assert_eq!(within(silent.read(&mut byte)).await.unwrap(), 0);

    // It reconnects; the stand-in talks again.
    let mut talking = accept(&listener).await;
    talking.write_all(QUIET_QUOTE.as_bytes()).await.unwrap();
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #2 271.50x1 271.51x2"]
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upstream_is_kept_while_it_answers_pings_and_dropped_when_it_stops() {
    let (listener, url) = stand_in("ws", "/stocks").await;
    // Pings every second; two missed pongs end the connection.
    let options = LiveOptions {
        idle_timeout: Some(Duration::from_secs(2)),
        ..polygon_options(UPSTREAM_KEY)
    };
    let mut live = LiveHub::start_with(url, options).await;
    let mut upstream = polygon_accept(&listener).await.expect("the key is accepted");
    assert_eq!(live.next_updates(1).await, ["status upstream_up"]);

    // Quiet, but reading (tungstenite answers each ping with a pong): three
    // pings span more than the idle timeout, and the source stays up.
    let mut pings = 0;
    while pings < 3 {
        match within(upstream.next()).await.unwrap().unwrap() {
            Message::Ping(_) => pings += 1,
            other => panic!("only pings from the hub now, not {other:?}"),
        }
    }
    send_text(
        &mut upstream,
        r#"[{"ev":"Q","sym":"AAPL","bp":"271.5","bs":1,"ap":"271.51","as":2,"t":1795185002000}]"#,
    )
    .await;
    // No upstream_down came before it: the pongs kept the connection.
    assert_eq!(live.next_updates(1).await, ["quote AAPL #1 271.50x1 271.51x2"]);

    // Now it stops reading, so pongs stop too, with the connection open.
    assert_eq!(live.next_updates(1).await, ["status upstream_down"]);
    assert!(
        LiveStats::get(&live.stats().disconnects) >= 1,
        "counted as a lost connection"
    );
    let mut again = polygon_accept(&listener).await.expect("the key is accepted");
    send_text(
        &mut again,
        r#"[{"ev":"Q","sym":"AAPL","bp":"271.6","bs":1,"ap":"271.61","as":2,"t":1795185003000}]"#,
    )
    .await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #2 271.60x1 271.61x2"]
    );
    drop(upstream);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_hub_records_the_records_it_relays() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (upstream, stop_upstream, upstream_task) = upstream_hub_with(listener, ServerConfig::default());
    let mut publisher = upstream.publisher(Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "271.41", "271.43", 1_795_185_001_499_050_531));

    let capture = std::env::temp_dir().join(format!("quotehub-relay-record-{}.qhc", std::process::id()));
    let _ = std::fs::remove_file(&capture);
    let recorder = std::sync::Arc::new(quotehub_server::Recorder::create(&capture).unwrap());
    let mut hub = quotehub_server::Hub::new();
    hub.record_to(recorder.clone());
    let url = LiveUrl::parse(&format!("quotehub://127.0.0.1:{port}"))
        .unwrap()
        .unwrap();
    let mut live = LiveHub::start_on(hub, url, LiveOptions::default()).await;
    assert_eq!(
        live.next_updates(2).await,
        ["status upstream_up", "quote AAPL #1 271.41x100 271.43x200"]
    );
    publisher.publish(common::trade("AAPL", "271.42", 1_795_185_001_505_228_421));
    assert_eq!(live.next_updates(1).await, ["trade AAPL #2 271.42x100"]);
    live.stop().await;
    stop_upstream.send(()).unwrap();
    within(upstream_task).await.unwrap();

    // The capture holds both relayed records, as this hub sequenced them.
    assert_eq!(recorder.finish().unwrap(), 2);
    let mut feed = quotehub_feed::CaptureFile::open(&capture).unwrap();
    let mut got = Vec::new();
    while let Some(event) = quotehub_feed::RecordedFeed::next_event(&mut feed).unwrap() {
        got.push(event);
    }
    let _ = std::fs::remove_file(&capture);
    match got.as_slice() {
        [quotehub_proto::Event::Quote(q), quotehub_proto::Event::Trade(t)] => {
            assert_eq!(
                (q.seq, q.bid_price.to_string(), q.ask_price.to_string()),
                (1, "271.41".into(), "271.43".into())
            );
            assert_eq!((t.seq, t.price.to_string(), t.size), (2, "271.42".into(), 100));
            assert!(q.recv_ts > 0 && t.recv_ts > 0, "stamped on receipt");
        }
        other => panic!("expected a quote then a trade, got {other:?}"),
    }
}
