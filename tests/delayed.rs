//! Delayed entitlements (issue 19 item 5): an API key with a `delay` gets
//! the same records as a real-time key, that long after the hub received
//! them, in order, from a delay line bounded in bytes; snapshots (WebSocket
//! and HTTP) are as of the delay ago; real-time keys are not delayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_client::{Client, ClientTls, Update};
use quotehub_feed::open_recorded;
use quotehub_feed::replay::{ReplaySink, ReplayStatus};
use quotehub_proto::{Channels, Event, Flags, StatusCode, now_ns};
use quotehub_server::{Access, ApiKey, DelayError, DelayedHub, Hub, ServerConfig, ServerState};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const LIVE: &str = "live-secret";
const LATE: &str = "late-secret";

fn config(delay: Duration) -> ServerConfig {
    let key = |name: &str, secret: &str, delay: Duration| ApiKey {
        name: name.into(),
        key: secret.into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay,
    };
    ServerConfig {
        access: Access::new(
            vec![key("live", LIVE, Duration::ZERO), key("late", LATE, delay)],
            vec![],
        ),
        // Every record reaches both clients: none conflated on the way.
        queue_capacity: 200_000,
        ..ServerConfig::default()
    }
}

/// A hub whose `late` key is served `delay` late, and its delay line.
async fn start(config: ServerConfig) -> (TestHub, DelayedHub) {
    let mut hub = Hub::new();
    let state = ServerState::new(config)
        .unwrap()
        .with_delays(&mut hub, Hub::DEFAULT_HISTORY_DEPTH)
        .unwrap();
    let delayed = state.delayed().hubs().next().unwrap().clone();
    (TestHub::start_with_hub_and_state(hub, state).await, delayed)
}

async fn connect(hub: &TestHub, key: &str) -> Client {
    within(Client::connect_with_key(
        &hub.url,
        ClientTls::web_roots().unwrap(),
        Some(key.into()),
    ))
    .await
    .unwrap()
}

/// The first `n` events of the bundled feed.
fn bundled_slice(n: usize) -> Vec<Event> {
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let mut events = Vec::with_capacity(n);
    while events.len() < n
        && let Some(event) = feed.next_event().unwrap()
    {
        events.push(event);
    }
    events
}

/// A record as the client decoded it: everything the record's bytes hold
/// (the message header's `send_ts` is the wire's, not the record's).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Quote(quotehub_proto::QuoteRecord),
    Trade(quotehub_proto::TradeRecord),
    Bar(quotehub_proto::BarRecord),
    Bbo(quotehub_proto::BboRecord),
    Status(quotehub_proto::StatusRecord),
}

impl Got {
    /// When the hub received (or, derived and status records, made) it.
    fn recv_ts(&self) -> u64 {
        match self {
            Got::Quote(record) => record.quote.recv_ts,
            Got::Trade(record) => record.trade.recv_ts,
            Got::Bar(record) => record.bar.recv_ts,
            Got::Bbo(record) => record.bbo.recv_ts,
            Got::Status(record) => record.ts,
        }
    }

    fn of(update: Update) -> Option<Got> {
        Some(match update {
            Update::Quote { record, .. } => Got::Quote(record),
            Update::Trade { record, .. } => Got::Trade(record),
            Update::Bar { record, .. } => Got::Bar(record),
            Update::Bbo { record, .. } => Got::Bbo(record),
            Update::Status { record, .. } => Got::Status(record),
            _ => return None,
        })
    }
}

/// Reads `n` quotes and trades, each with the client's clock (ns) when it came.
async fn read(client: &mut Client, n: usize) -> Vec<(Got, u64)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let update = common::next(client).await;
        let record = match update {
            Update::Quote { record, .. } => Got::Quote(record),
            Update::Trade { record, .. } => Got::Trade(record),
            _ => continue,
        };
        got.push((record, now_ns()));
    }
    got
}

/// Reads every record until a status record with `code`, that one included,
/// each with the client's clock (ns) when it came.
async fn read_until(client: &mut Client, code: StatusCode) -> Vec<(Got, u64)> {
    let mut got = Vec::new();
    loop {
        let Some(record) = Got::of(common::next(client).await) else {
            continue;
        };
        let last = matches!(&record, Got::Status(status) if status.code == code);
        got.push((record, now_ns()));
        if last {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_key_gets_the_real_time_records_delayed_and_in_order() {
    let delay = Duration::from_millis(300);
    let (hub, delayed) = start(config(delay)).await;
    let mut live = connect(&hub, LIVE).await;
    let mut late = connect(&hub, LATE).await;
    within(live.subscribe(&["*"])).await.unwrap();
    within(late.subscribe(&["*"])).await.unwrap();

    let events = bundled_slice(3_000);
    let n = events.len();
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let feed = std::thread::spawn(move || {
        for mut event in events {
            event.set_recv_ts(now_ns());
            publisher.publish(event);
        }
    });
    let (live_got, late_got) = tokio::join!(read(&mut live, n), read(&mut late, n));
    feed.join().unwrap();

    // The same records, bytes and numbers, in the same order.
    let live_records: Vec<&Got> = live_got.iter().map(|(got, _)| got).collect();
    let late_records: Vec<&Got> = late_got.iter().map(|(got, _)| got).collect();
    assert_eq!(live_records, late_records);
    // Each delayed record comes no earlier than its receive stamp plus the delay.
    let delay_ns = u64::try_from(delay.as_nanos()).unwrap();
    for (got, at) in &late_got {
        assert!(
            *at >= got.recv_ts() + delay_ns,
            "{got:?} came {} ns early",
            got.recv_ts() + delay_ns - at
        );
    }
    // The real-time client is not delayed: it has each record before the delayed one.
    for ((got, live_at), (_, late_at)) in live_got.iter().zip(&late_got) {
        assert!(
            live_at < late_at,
            "{got:?} reached the real-time client after the delayed one"
        );
    }
    // The quotes and trades, and the BBOs and bars derived from them.
    assert!(delayed.line.released() > n as u64, "{}", delayed.line.released());
    assert_eq!(delayed.line.dropped(), 0);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_key_gets_the_bars_bbo_and_status_records_delayed_and_in_order() {
    let delay = Duration::from_millis(300);
    let (hub, delayed) = start(config(delay)).await;
    let channels = Channels::QUOTES
        .with(Channels::TRADES)
        .with(Channels::BARS_1S)
        .with(Channels::BBO);
    let mut live = connect(&hub, LIVE).await;
    let mut late = connect(&hub, LATE).await;
    within(live.subscribe_to(&["*"], channels)).await.unwrap();
    within(late.subscribe_to(&["*"], channels)).await.unwrap();

    // As a replay publishes: its start, its events, its end.
    let events = bundled_slice(3_000);
    let n = events.len() as u64;
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let feed = std::thread::spawn(move || {
        ReplaySink::status(&mut publisher, ReplayStatus::Started);
        for event in events {
            ReplaySink::event(&mut publisher, event);
        }
        ReplaySink::status(&mut publisher, ReplayStatus::Ended { events: n });
    });
    let (live_got, late_got) = tokio::join!(
        read_until(&mut live, StatusCode::ReplayEnded),
        read_until(&mut late, StatusCode::ReplayEnded)
    );
    feed.join().unwrap();

    // Every kind the real-time key got is there (the slice spans seconds
    // of event time, so 1 s bars close).
    let count = |got: &[(Got, u64)], kind: fn(&Got) -> bool| got.iter().filter(|(got, _)| kind(got)).count();
    assert!(count(&live_got, |got| matches!(got, Got::Bar(_))) > 0);
    assert!(count(&live_got, |got| matches!(got, Got::Bbo(_))) > 0);
    assert_eq!(count(&live_got, |got| matches!(got, Got::Status(_))), 2);
    // The same records, bytes and numbers, in the same order.
    let live_records: Vec<&Got> = live_got.iter().map(|(got, _)| got).collect();
    let late_records: Vec<&Got> = late_got.iter().map(|(got, _)| got).collect();
    assert_eq!(live_records.len(), late_records.len());
    for (i, (live, late)) in live_records.iter().zip(&late_records).enumerate() {
        assert_eq!(live, late, "record {i}");
    }
    // Each delayed record comes no earlier than the hub's stamp plus the delay.
    let delay_ns = u64::try_from(delay.as_nanos()).unwrap();
    for (got, at) in &late_got {
        assert!(
            *at >= got.recv_ts() + delay_ns,
            "{got:?} came {} ns early",
            got.recv_ts() + delay_ns - at
        );
    }
    // Nothing else went through the line (the slice closes no 1 min bar).
    assert_eq!(delayed.line.released(), late_records.len() as u64);
    assert_eq!(delayed.line.dropped(), 0);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_snapshot_is_the_value_of_delay_ago_over_websocket_and_http() {
    // A long delay: the second quote is not due while the test runs.
    let (hub, delayed) = start(config(Duration::from_secs(60))).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // Received by the hub two minutes ago: due already.
    let mut old = common::quote("AAPL", "100.00", "100.02", 1);
    old.set_recv_ts(now_ns() - 120_000_000_000);
    publisher.publish(old);
    // It and the BBO it made.
    common::until(|| delayed.line.released() == 2).await;
    let mut new = common::quote("AAPL", "101.00", "101.02", 2);
    new.set_recv_ts(now_ns());
    publisher.publish(new);

    let snapshot_bid = |update: Update| match update {
        Update::Quote { record, .. } => {
            assert!(record.flags.contains(Flags::SNAPSHOT), "{record:?}");
            (record.quote.seq, record.quote.bid_price)
        }
        other => panic!("expected a quote snapshot, got {other:?}"),
    };
    let mut late = connect(&hub, LATE).await;
    within(late.subscribe(&["AAPL"])).await.unwrap();
    assert_eq!(
        snapshot_bid(common::next(&mut late).await),
        (1, "100.00".parse().unwrap())
    );
    let mut live = connect(&hub, LIVE).await;
    within(live.subscribe(&["AAPL"])).await.unwrap();
    assert_eq!(
        snapshot_bid(common::next(&mut live).await),
        (2, "101.00".parse().unwrap())
    );

    // HTTP snapshots under each key: the delayed one as of the delay ago.
    for (key, seq) in [(LATE, 1), (LIVE, 2)] {
        let auth = format!("Authorization: Bearer {key}");
        let (status, body) = common::http_request(&hub, "GET", "/v1/snapshot?symbols=AAPL", &[&auth]).await;
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["symbols"]["AAPL"]["seq"], seq, "{key}: {body}");
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_delay_line_drops_its_oldest_and_counts_them() {
    let held = 72 + quotehub_server::delayed::HELD_OVERHEAD_BYTES;
    let mut config = ServerConfig {
        delay_line_max_bytes: 10 * held,
        delay_line_bytes_per_second: 1,
        ..config(Duration::from_secs(60))
    };
    config.access.keys[0].admin = true;
    let (hub, delayed) = start(config).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // Received 1 ns apart, so the line's head tells which record it holds.
    let received = now_ns();
    for i in 0..25 {
        let mut quote = common::quote("MSFT", "400.00", "400.02", i + 1);
        quote.set_recv_ts(received + i);
        publisher.publish(quote);
    }
    // The first quote's BBO (the only one: the book never moves) and the 15 oldest quotes.
    assert_eq!(delayed.line.dropped(), 16);
    assert_eq!(delayed.line.held_bytes(), 10 * held, "never past its cap");
    // It kept the newest ten: the next one out is the 16th.
    assert_eq!(delayed.line.next_due(), Some(received + 15 + 60_000_000_000));
    assert_eq!(delayed.line.released(), 0);
    // Counted where operators look.
    let auth = format!("Authorization: Bearer {LIVE}");
    let (status, metrics) = common::http_request(&hub, "GET", "/metrics", &[&auth]).await;
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains("quotehub_delay_line_dropped_total{delay_seconds=\"60\"} 16\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "quotehub_delay_line_held_bytes{{delay_seconds=\"60\"}} {}\n",
            10 * held
        )),
        "{metrics}"
    );
    hub.shutdown().await;
}

#[test]
fn a_delay_the_line_cannot_hold_is_refused_at_start_up() {
    let small = ServerConfig {
        delay_line_max_bytes: 1_000_000,
        delay_line_bytes_per_second: 10_000,
        ..config(Duration::from_secs(15 * 60))
    };
    let mut hub = Hub::new();
    let refused = ServerState::new(small).unwrap().with_delays(&mut hub, 16);
    assert!(
        matches!(refused, Err(DelayError::DoesNotFit { needed: 9_000_000, .. })),
        "{refused:?}"
    );
    assert!(hub.record_sink().is_none(), "a refused delay leaves the hub alone");

    let mut hub = Hub::new();
    let refused = ServerState::new(config(Duration::from_secs(2 * 24 * 3600)))
        .unwrap()
        .with_delays(&mut hub, 16);
    assert!(matches!(refused, Err(DelayError::TooLong { .. })), "{refused:?}");
}

/// A WebSocket subscriber under `key` in the JSON sub-protocol (the form
/// `/v1/snapshot` answers in), subscribed to `symbols` on `channels`.
async fn json_subscriber(hub: &TestHub, key: &str, symbols: &[&str], channels: &[&str]) -> Ws {
    let mut request = hub.url.as_str().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "quotehub.v1.json".parse().unwrap());
    headers.insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(request)).await.unwrap();
    let subscribe = json!({"op": "subscribe", "symbols": symbols, "channels": channels, "id": 1});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    loop {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            let ack: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(ack["type"], "ack", "{ack}");
            return ws;
        }
    }
}

/// The records of the next JSON records message.
async fn next_records(ws: &mut Ws) -> Vec<Value> {
    loop {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == "records" {
                return message["records"].as_array().unwrap().clone();
            }
        }
    }
}

/// The derived channel a bar or BBO record's JSON form belongs to.
fn derived_channel(record: &Value) -> String {
    match record["type"].as_str() {
        Some("bar") => format!("bars.{}", record["interval"].as_str().unwrap()),
        Some("bbo") => "bbo".to_owned(),
        other => panic!("{other:?} on a derived channel: {record}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_snapshot_of_bars_and_bbo_is_of_delay_ago_over_websocket_and_http() {
    // A long delay: what the hub received just now is not due while the test runs.
    let (hub, delayed) = start(config(Duration::from_secs(60))).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // 14:30:00 UTC on the bundled session's day: a whole minute.
    const T0: u64 = 1_795_185_000_000_000_000;
    const S: u64 = 1_000_000_000;
    let received = |mut event: Event, ago_s: u64| {
        event.set_recv_ts(now_ns() - ago_s * S);
        event
    };
    // Received two minutes ago (due already): a trade in the first minute, one
    // in the next that closes the first minute's bar, and a quote (a BBO).
    publisher.publish(received(common::trade("AAPL", "100.00", T0 + S), 120));
    publisher.publish(received(common::trade("AAPL", "100.50", T0 + 61 * S), 120));
    publisher.publish(received(common::quote("AAPL", "100.40", "100.60", T0 + 62 * S), 120));
    let aapl = common::sym("AAPL");
    let has = |hub: &Hub, channel: Channels| hub.table().last_value(aapl, channel).is_some();
    common::until(|| has(&delayed.hub, Channels::BARS_1M) && has(&delayed.hub, Channels::BBO)).await;
    // Received now (due in a minute): the second minute's bar closes, the BBO moves.
    publisher.publish(received(common::trade("AAPL", "101.00", T0 + 122 * S), 0));
    publisher.publish(received(common::quote("AAPL", "101.00", "101.20", T0 + 123 * S), 0));

    let channels = ["bars.1m", "bbo"];
    let mut answers = Vec::new();
    for key in [LATE, LIVE] {
        // What a subscribe to the channels starts with...
        let mut ws = json_subscriber(&hub, key, &["AAPL"], &channels).await;
        let mut started: std::collections::HashMap<String, Value> = Default::default();
        while started.len() < channels.len() {
            for record in next_records(&mut ws).await {
                assert_eq!(record["flags"][0], "snapshot", "{key}: {record}");
                started.insert(derived_channel(&record), record);
            }
        }
        // ...is what the HTTP snapshot under the same key answers.
        let auth = format!("Authorization: Bearer {key}");
        let (status, body) =
            common::http_request(&hub, "GET", "/v1/snapshot?symbols=AAPL&channels=bars.1m,bbo", &[&auth]).await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        for channel in channels {
            assert_eq!(body["symbols"]["AAPL"][channel], started[channel], "{key}: {channel}");
        }
        answers.push(started);
    }
    // The delayed key's are the first bar and BBO; the real-time key's the second.
    let seqs = |started: &std::collections::HashMap<String, Value>| {
        (started["bars.1m"]["seq"].as_u64(), started["bbo"]["seq"].as_u64())
    };
    assert_eq!(seqs(&answers[0]), (Some(1), Some(1)), "{:?}", answers[0]);
    assert_eq!(seqs(&answers[1]), (Some(2), Some(2)), "{:?}", answers[1]);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_key_resumes_with_no_gap() {
    let (hub, _delayed) = start(config(Duration::from_millis(300))).await;
    let mut late = connect(&hub, LATE).await;
    within(late.subscribe(&["AAPL"])).await.unwrap();
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let publish = |publisher: &mut quotehub_server::fanout::Publisher, from: u64, to: u64| {
        for i in from..=to {
            let mut quote = common::quote("AAPL", "271.22", "271.23", i);
            quote.set_recv_ts(now_ns());
            publisher.publish(quote);
        }
    };
    publish(&mut publisher, 1, 20);
    let seq = |update: Update| match update {
        Update::Quote { record, .. } => {
            assert!(!record.flags.contains(Flags::RESET), "{record:?}");
            record.quote.seq
        }
        other => panic!("expected a quote, got {other:?}"),
    };
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(seq(common::next(&mut late).await));
    }
    // A new connection, resuming after the last number read: what the old
    // one had on its way is lost with it, and must come again.
    publish(&mut publisher, 21, 40);
    within(late.reconnect()).await.unwrap();
    while seen.last() != Some(&40) {
        let update = common::next(&mut late).await;
        if let Update::Quote { record, .. } = &update
            && record.flags.contains(Flags::SNAPSHOT)
        {
            panic!("a resume within the history starts with no snapshot: {record:?}");
        }
        seen.push(seq(update));
    }
    assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
    assert_eq!((late.gaps(), late.resets()), (0, 0));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_key_gets_delayed_records_over_sse() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let delay = Duration::from_millis(300);
    let (hub, delayed) = start(config(delay)).await;
    let mut stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    let request = format!("GET /v1/sse?symbols=AAPL HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {LATE}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    within(reader.read_line(&mut line)).await.unwrap();
    assert_eq!(line.trim_end(), "HTTP/1.1 200 OK");
    // Registered with the delayed hub, not the real one.
    common::until(|| delayed.hub.client_count() == 1).await;
    assert_eq!(hub.hub.client_count(), 0);

    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    ReplaySink::status(&mut publisher, ReplayStatus::Started);
    let mut quote = common::quote("AAPL", "271.22", "271.23", 1);
    quote.set_recv_ts(now_ns());
    publisher.publish(quote);
    let mut trade = common::trade("AAPL", "271.22", 2);
    trade.set_recv_ts(now_ns());
    publisher.publish(trade);

    // Events (name, data, the test's clock when it came) until the trade.
    let mut events: Vec<(String, Value, u64)> = Vec::new();
    let mut name = String::new();
    while events.last().is_none_or(|(name, _, _)| name != "trade") {
        let mut line = String::new();
        let read = within(reader.read_line(&mut line)).await.unwrap();
        assert!(read > 0, "the stream ended early");
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            events.push((name.clone(), serde_json::from_str(data.trim()).unwrap(), now_ns()));
        }
    }
    let names: Vec<&str> = events.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names, ["reply", "status", "quote", "trade"]);
    assert_eq!(events[1].1["code"], "replay_started");
    assert_eq!(
        (events[2].1["seq"].as_u64(), events[3].1["seq"].as_u64()),
        (Some(1), Some(2))
    );
    let delay_ns = u64::try_from(delay.as_nanos()).unwrap();
    for (name, data, at) in &events[1..] {
        let stamp = data["recv_ts"].as_u64().or(data["ts"].as_u64()).unwrap();
        assert!(
            *at >= stamp + delay_ns,
            "{name} {data} came {} ns early",
            stamp + delay_ns - at
        );
    }
    drop(reader);
    hub.shutdown().await;
}
