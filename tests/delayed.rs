//! Delayed entitlements (issue 19 item 5): an API key with a `delay` gets
//! the same records as a real-time key, that long after the hub received
//! them, in order, from a delay line bounded in bytes; snapshots (WebSocket
//! and HTTP) are as of the delay ago; real-time keys are not delayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, within};
use quotehub_client::{Client, ClientTls, Update};
use quotehub_feed::open_recorded;
use quotehub_proto::{Event, Flags, now_ns};
use quotehub_server::{Access, ApiKey, DelayError, DelayedHub, Hub, ServerConfig, ServerState};

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

/// A quote or trade as the client decoded it, with the client's clock when
/// it came: everything the record's bytes hold (the message header's
/// `send_ts` is the wire's, not the record's).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Quote(quotehub_proto::QuoteRecord),
    Trade(quotehub_proto::TradeRecord),
}

impl Got {
    fn recv_ts(&self) -> u64 {
        match self {
            Got::Quote(record) => record.quote.recv_ts,
            Got::Trade(record) => record.trade.recv_ts,
        }
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
    assert_eq!(delayed.line.released(), n as u64);
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
    common::until(|| delayed.line.released() == 1).await;
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
    assert_eq!(delayed.line.dropped(), 15);
    assert_eq!(delayed.line.held_bytes(), 10 * held, "never past its cap");
    // It kept the newest ten: the next one out is the 16th.
    assert_eq!(delayed.line.next_due(), Some(received + 15 + 60_000_000_000));
    assert_eq!(delayed.line.released(), 0);
    // Counted where operators look.
    let auth = format!("Authorization: Bearer {LIVE}");
    let (status, metrics) = common::http_request(&hub, "GET", "/metrics", &[&auth]).await;
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains("quotehub_delay_line_dropped_total{delay_seconds=\"60\"} 15\n"),
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
