//! A clean hand-over of the ingest lease (issue 17 item 3): real
//! processes, a real nats-server. Two ingest hubs read one live feed (a
//! JSON-lines server writing the same lines to both, as two hubs on one
//! exchange feed); an edge serves a client. The active hub is stopped as an
//! operator stops it (SIGTERM) mid-feed: it flushes what it queued for the
//! stream and deletes the lease key, so the standby takes the lease at its
//! next poll instead of after the TTL. The client ends with every record
//! once, in order, no gap, no `RESET`; the stream stored each event once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Collector, HubProcess, Nats, feed_events, feed_lines, feed_server, have_nats};
use quotehub_bus::{Bus, StreamSettings};
use quotehub_client::Client;

/// Three symbols of the bundled session (595 events), one with a `.`.
const SYMBOLS: [&str; 3] = ["ZVZZT", "INTU", "BF.B"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_active_ingest_hub_releases_the_lease_and_the_standby_goes_on_with_no_gap() {
    if !have_nats("bus_lease_handover") {
        return;
    }
    let expected = feed_events(&SYMBOLS);
    let total: usize = expected.values().map(Vec::len).sum();
    let lines = feed_lines(&SYMBOLS);
    assert_eq!(lines.len(), total, "every line of these symbols is an event");
    // 5 lines every 40 ms: the feed lasts about 5 s.
    let (feed_port, _feed) = feed_server(lines, 2, 5, Duration::from_millis(40));
    let feed = format!("tcp://127.0.0.1:{feed_port}");
    let nats = Nats::start("lease_handover");

    let mut a = HubProcess::start("ingest-a", &nats, "ingest", "ingest-a", "", &["--feed", &feed]);
    a.metric_reaches("quotehub_bus_lease_active", 1).await;
    let b = HubProcess::start("ingest-b", &nats, "ingest", "ingest-b", "", &["--feed", &feed]);
    b.metric_reaches("quotehub_bus_lease_holder_info{holder=\"ingest-a\"}", 1)
        .await;
    assert_eq!(b.metric("quotehub_bus_lease_active").await, Some(0), "b is a standby");
    // The feed starts once both read it; the edge once the stream has a record.
    let edge = HubProcess::start("edge", &nats, "edge", "edge", "", &[]);
    let mut client = Collector::new("client", Client::connect(&edge.url()).await.unwrap());
    client.client.subscribe(&SYMBOLS).await.unwrap();

    while client.got.len() < total / 3 {
        client.read_one().await;
    }
    assert!(!client.has_all(&expected), "the feed is not over yet");
    let stopping = Instant::now();
    let stopped = a.terminate();
    assert!(stopped.success(), "SIGTERM: a clean exit, {stopped}\n{}", a.log());
    assert!(
        a.logged("bus lease: released"),
        "the active hub released the lease:\n{}",
        a.log()
    );

    b.metric_reaches("quotehub_bus_takeovers_total", 1).await;
    // Said, not asserted: speed is for benchmarks.
    eprintln!(
        "the standby took over {:?} after SIGTERM (polled every 50 ms; a lapse would take the 1.5 s TTL + a poll)",
        stopping.elapsed()
    );
    assert_eq!(
        b.metric("quotehub_bus_takeovers_after_release_total").await,
        Some(1),
        "the standby took a released lease, not a lapsed one:\n{}",
        b.log()
    );
    assert!(b.logged("released by its holder"), "{}", b.log());
    assert_eq!(b.metric("quotehub_bus_takeover_unmatched_total").await, Some(0));
    assert_eq!(
        b.metric("quotehub_bus_lease_holder_info{holder=\"ingest-b\"}").await,
        Some(1)
    );

    client.read_to_end(&expected).await;
    assert_eq!(client.reconnects, 0);
    client.assert_whole(&expected);
    assert!(
        b.metric("quotehub_bus_published_records_total").await > Some(0),
        "the standby published the rest"
    );

    // The stream stored each event once: its sequence counts every message
    // stored (de-duplicated ones are not), whatever the per-symbol limit kept.
    let bus = Bus::connect(&nats.url()).await.unwrap();
    let settings = StreamSettings::new(1);
    let mut stream = bus.jetstream().get_stream(&settings.name).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.last_sequence, total as u64, "one stream message per event");
}
