//! Hostile row 1: clients that stop reading (TCP window at zero). Whatever
//! closes them (the disconnect policy, the idle timeout, the write
//! deadline), the hub frees their slots, descriptors and queues within a
//! bounded grace although they never read again: a new client is admitted
//! under `max_connections`, the forced close is counted, and a well-behaved
//! client beside them receives every update with no gap. SSE clients get
//! the same write deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::attackers::{neighbour, stalled_client};
use common::{TestHub, quote, until, within};
use futures_util::SinkExt;
use quotehub_client::Update;
use quotehub_server::{ForcedClose, ServerConfig, Stats};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "NVDA", "TSLA"];
/// Clients that stop reading; with the neighbour they fill `max_connections`.
const ATTACKERS: usize = 3;
/// Records a client's queue holds: so many that a queue fills only behind a
/// socket that takes nothing more, not because a writer fell behind for a
/// moment on a busy machine.
const CAPACITY: usize = 50_000;
/// Published per round, far below the queue capacity: the neighbour, which
/// reads all the time, never lags.
const ROUND: u64 = 2_000;

/// Publishes one round over the four symbols and waits until the neighbour
/// has received every quote published so far.
async fn publish_round(
    publisher: &mut quotehub_server::Publisher,
    received: &mut watch::Receiver<u64>,
    published: &mut u64,
) {
    for _ in 0..ROUND {
        publisher.publish(quote(SYMBOLS[(*published % 4) as usize], "1.00", "1.01", *published));
        *published += 1;
    }
    let target = *published;
    within(received.wait_for(|&n| n >= target))
        .await
        .expect("the neighbour stopped reading (closed?)");
}

/// Starts a hub full to `max_connections` with the attackers (connected
/// with `query`) and a neighbour that reads; waits until all hold `*`.
async fn full_hub(
    config: ServerConfig,
    query: &str,
) -> (TestHub, Vec<WebSocketStream<TcpStream>>, watch::Receiver<u64>) {
    let hub = TestHub::start(ServerConfig {
        queue_capacity: CAPACITY,
        max_connections: ATTACKERS + 1,
        ..config
    })
    .await;
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        attackers.push(stalled_client(&hub, query).await);
    }
    let received = neighbour(&hub).await;
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() == ATTACKERS + 1).await;
    (hub, attackers, received)
}

/// The freed slots admit a new client, which receives what is published next.
async fn a_new_client_is_admitted(hub: &TestHub) {
    let mut late = hub.connect().await;
    late.subscribe(&["AAPL"]).await.unwrap();
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    publisher.publish(quote("AAPL", "2.00", "2.01", 1));
    loop {
        let update = within(late.next_update())
            .await
            .unwrap()
            .expect("the late client was closed");
        if let Update::Quote { record, .. } = update
            && record.quote.bid_price == "2.00".parse().unwrap()
        {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_that_never_read_again_are_freed_and_their_slots_reused() {
    let (hub, attackers, mut received) = full_hub(ServerConfig::default(), "?policy=disconnect").await;
    let stats = hub.hub.stats().clone();
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let mut published = 0u64;
    while Stats::get(&stats.slow_consumer_disconnects) < ATTACKERS as u64 {
        assert!(published < 4_000_000, "the attackers' queues never filled");
        publish_round(&mut publisher, &mut received, &mut published).await;
    }
    // The attackers still read nothing, yet their connections go.
    until(|| hub.hub.client_count() == 1).await;
    assert_eq!(Stats::get(&stats.slow_consumer_disconnects), ATTACKERS as u64);
    assert_eq!(stats.forced_closes(ForcedClose::SlowConsumer), ATTACKERS as u64);
    let (status, metrics) = common::http_get(&hub, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "quotehub_forced_closes_total{{reason=\"slow_consumer\"}} {ATTACKERS}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("quotehub_queued_bytes_max "), "{metrics}");
    // The neighbour still gets everything, and the freed slots admit a new client.
    publish_round(&mut publisher, &mut received, &mut published).await;
    a_new_client_is_admitted(&hub).await;
    drop(attackers);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_idle_behind_a_full_socket_are_freed_by_the_idle_timeout() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(600),
        // Not the write deadline: the idle timeout must free them.
        write_timeout: Duration::from_secs(600),
        ..ServerConfig::default()
    };
    // Conflation (the default) never closes them: only the idle timeout does.
    let (hub, attackers, mut received) = full_hub(config, "").await;
    let stats = hub.hub.stats().clone();
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let mut published = 0u64;
    // Until their queues overflow: their sockets take nothing more. Till
    // then they ping (they write, they only never read), so the idle
    // timeout counts from when the sockets are full.
    let mut attackers = attackers;
    while Stats::get(&stats.conflations) == 0 {
        assert!(published < 4_000_000, "the attackers' queues never filled");
        for attacker in &mut attackers {
            within(attacker.send(Message::Ping(Default::default()))).await.unwrap();
        }
        publish_round(&mut publisher, &mut received, &mut published).await;
    }
    until(|| hub.hub.client_count() == 1).await;
    assert_eq!(Stats::get(&stats.slow_consumer_disconnects), 0);
    assert_eq!(stats.forced_closes(ForcedClose::IdleTimeout), ATTACKERS as u64);
    // Their close frames never went out: they were dropped after the grace.
    assert!(Stats::get(&stats.closes_abandoned) >= 1);
    publish_round(&mut publisher, &mut received, &mut published).await;
    a_new_client_is_admitted(&hub).await;
    drop(attackers);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_take_nothing_are_dropped_on_the_write_deadline() {
    let config = ServerConfig {
        write_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    // Conflation keeps them and they are never idle-timed out (45 s): only
    // the write deadline frees them.
    let (hub, attackers, mut received) = full_hub(config, "").await;
    let stats = hub.hub.stats().clone();
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let mut published = 0u64;
    while stats.forced_closes(ForcedClose::WriteTimeout) < ATTACKERS as u64 {
        assert!(published < 4_000_000, "the attackers were never timed out");
        publish_round(&mut publisher, &mut received, &mut published).await;
    }
    until(|| hub.hub.client_count() == 1).await;
    assert_eq!(stats.forced_closes(ForcedClose::WriteTimeout), ATTACKERS as u64);
    assert_eq!(Stats::get(&stats.slow_consumer_disconnects), 0);
    publish_round(&mut publisher, &mut received, &mut published).await;
    a_new_client_is_admitted(&hub).await;
    drop(attackers);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_that_never_read_are_dropped_on_the_write_deadline() {
    use tokio::io::AsyncWriteExt;
    let config = ServerConfig {
        write_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let hub = TestHub::start(ServerConfig {
        queue_capacity: CAPACITY,
        max_connections: 2,
        ..config
    })
    .await;
    let mut received = neighbour(&hub).await;
    // An SSE client with a 4 KiB receive window that never reads, not even
    // its response head.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut attacker = within(socket.connect(hub.addr().parse().unwrap())).await.unwrap();
    attacker
        .write_all(b"GET /v1/sse?symbols=* HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() == 2).await;
    let stats = hub.hub.stats().clone();
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let mut published = 0u64;
    while stats.forced_closes(ForcedClose::WriteTimeout) == 0 {
        assert!(published < 4_000_000, "the SSE client was never timed out");
        publish_round(&mut publisher, &mut received, &mut published).await;
    }
    until(|| hub.hub.client_count() == 1).await;
    publish_round(&mut publisher, &mut received, &mut published).await;
    a_new_client_is_admitted(&hub).await;
    drop(attacker);
    hub.shutdown().await;
}
