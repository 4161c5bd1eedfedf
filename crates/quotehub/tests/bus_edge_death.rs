//! An edge dies (issue 17 item 3): real processes, a real nats-server. One
//! ingest hub replays part of the bundled session; two edges serve it
//! behind a load balancer. Clients on edge A (one naming symbols, one on
//! `"*"`) use the client library's own reconnect, pointed at the balancer's
//! one URL, as a user behind a load balancer does. Edge A is SIGKILLed
//! mid-replay; the balancer sends the reconnections to edge B, where the
//! clients resume with their last numbers. Each ends with every record of
//! the ingest hub's sequence from its first live one to the feed's end,
//! exactly once, in order, no gap, no `RESET`, each the feed's event; so
//! does a reference client on edge B throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Collector, HubProcess, Nats, balancer, bundled_feed, feed_events, have_nats};
use quotehub_client::{Client, Reconnect};

/// Three symbols of the bundled session (595 events), one with a `.`.
const SYMBOLS: [&str; 3] = ["ZVZZT", "INTU", "BF.B"];

/// The session spans 300 s: at 30× the replay lasts about 10 s, long enough
/// to start two edges and kill one in the middle.
const SPEED: &str = "30";

/// Quick retries: the balancer answers at once with the next edge.
const RECONNECT: Reconnect = Reconnect {
    initial_backoff: Duration::from_millis(50),
    max_backoff: Duration::from_secs(1),
    max_attempts: 20,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_edge_resume_on_another_with_every_record_once_in_order() {
    if !have_nats("bus_edge_death") {
        return;
    }
    let expected = feed_events(&SYMBOLS);
    let total: usize = expected.values().map(Vec::len).sum();
    let nats = Nats::start("edge_death");
    let feed = bundled_feed().display().to_string();
    let symbols = SYMBOLS.join(",");
    let _ingest = HubProcess::start(
        "ingest",
        &nats,
        "ingest",
        "ingest",
        "",
        &["--feed", &feed, "--symbols", &symbols, "--speed", SPEED, "--no-loop"],
    );
    // Edges are ready once the stream holds the ingest hub's first record.
    let mut edge_a = HubProcess::start("edge-a", &nats, "edge", "edge-a", "", &[]);
    let edge_b = HubProcess::start("edge-b", &nats, "edge", "edge-b", "", &[]);
    let front = balancer(vec![edge_a.port, edge_b.port]).await;
    let front = format!("ws://127.0.0.1:{front}/v1/quotes");

    let connect = |url: String| async move { Client::connect(&url).await.unwrap().with_reconnect(RECONNECT) };
    let mut named = Collector::new("named", connect(front.clone()).await);
    named.client.subscribe(&SYMBOLS).await.unwrap();
    let mut all = Collector::new("all", connect(front).await);
    all.client.subscribe(&["*"]).await.unwrap();
    let mut reference = Collector::new("reference on edge B", Client::connect(&edge_b.url()).await.unwrap());
    reference.client.subscribe(&SYMBOLS).await.unwrap();
    let (to_end, reference_end) = (expected.clone(), expected.clone());
    let all = tokio::spawn(async move {
        all.read_to_end(&to_end).await;
        all
    });
    let reference = tokio::spawn(async move {
        reference.read_to_end(&reference_end).await;
        reference
    });

    while named.got.len() < total / 3 {
        named.read_one().await;
    }
    assert!(!named.has_all(&expected), "the replay is not over yet");
    edge_a.kill();
    let before = named.got.len();
    eprintln!("killed edge A after the named client had {before} of {total} records");

    named.read_to_end(&expected).await;
    let all = all.await.unwrap();
    let reference = reference.await.unwrap();
    assert!(named.got.len() > before, "records came after the kill");
    assert_eq!(named.reconnects, 1, "the named client moved once, to edge B");
    assert_eq!(all.reconnects, 1, "the \"*\" client moved once, to edge B");
    assert_eq!(reference.reconnects, 0);
    named.assert_whole(&expected);
    all.assert_whole(&expected);
    reference.assert_whole(&expected);
    assert_eq!(
        named.client.epoch(),
        reference.client.epoch(),
        "the moved client ends in the ingest hub's sequence space"
    );
    assert_eq!(named.client.epoch_changes(), 0, "one sequence space across the move");
}
