//! An edge hub that passes an ingest hub's records through keeps their
//! sequence numbers: its clients see the ingest hub's numbers over a real
//! socket, a duplicate is refused, a jump is delivered and counted, and a
//! client moved from the ingest hub to an edge in its epoch resumes with no
//! gap and no reset. (The bus that will carry the records is stood in for by
//! handing the ingest hub's published bytes to the edge directly.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::switch::Switch;
use common::{TestHub, key, metric, next, quote, sym, until, within};
use quotehub_client::{Client, Reconnect, Update};
use quotehub_proto::Flags;
use quotehub_server::{Hub, ServerConfig};

/// Publishes one AAPL quote on the ingest hub; the record's bytes as it
/// encoded them (what it would put on the bus).
fn ingest_one(ingest: &TestHub, event_ts: u64) -> Vec<u8> {
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.22", "271.23", event_ts));
    ingest.hub.table().last_quote(sym("AAPL")).unwrap().to_vec()
}

/// Hands one record to the edge as the bus reader will.
fn pass(edge: &TestHub, record: &[u8]) -> bool {
    edge.hub
        .publisher(Flags::default(), 0)
        .publish_passthrough(sym("AAPL"), true, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edges_client_sees_the_ingest_hubs_numbers_a_duplicate_refused_and_a_jump_counted() {
    let ingest = TestHub::start(ServerConfig::default()).await;
    let edge = TestHub::start_with_hub(
        Hub::with_history_in(Hub::DEFAULT_HISTORY_DEPTH, ingest.hub.table().epoch()),
        ServerConfig::default(),
    )
    .await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();
    until(|| edge.hub.table().subscriber_count(sym("AAPL")) == 1).await;

    // The edge joins the stream at 5: records 1..=4 never reach it.
    let records: Vec<Vec<u8>> = (1..=10).map(|time| ingest_one(&ingest, time)).collect();
    for seq in [5, 6, 7] {
        assert!(pass(&edge, &records[seq - 1]));
    }
    assert!(!pass(&edge, &records[5]), "a duplicate 6 is refused");
    assert!(pass(&edge, &records[9]), "a jump to 10 is delivered");

    for seq in [5, 6, 7, 10] {
        let update = next(&mut client).await;
        assert_eq!(key(&update), ("AAPL".into(), seq, false));
        let Update::Quote { record, .. } = update else {
            unreachable!()
        };
        assert_eq!(record.quote.event_ts, seq, "the ingest hub's record, unchanged");
    }
    assert_eq!(client.gaps(), 1, "the client sees the jump from 7 to 10");
    assert_eq!(metric(&edge, "quotehub_passthrough_refused_total").await, 1);
    assert_eq!(metric(&edge, "quotehub_passthrough_gaps_total").await, 1);
    // The edge's snapshot is the ingest hub's.
    assert_eq!(
        edge.hub.table().last_quote(sym("AAPL")),
        ingest.hub.table().last_quote(sym("AAPL"))
    );
    edge.shutdown().await;
    ingest.shutdown().await;
}

/// A client on the ingest hub gets 1..=3, is moved to `edge` (fed 1..=5 by
/// pass-through) and reads on; what it got after the move.
async fn move_a_client_to(ingest: &TestHub, edge: &TestHub) -> (Vec<(String, u64, bool)>, Flags, Client) {
    let switch = Switch::start(ingest).await;
    let mut client = within(Client::connect(&switch.url))
        .await
        .unwrap()
        .with_reconnect(Reconnect::default());
    client.subscribe(&["AAPL"]).await.unwrap();
    until(|| ingest.hub.table().subscriber_count(sym("AAPL")) == 1).await;
    let records: Vec<Vec<u8>> = (1..=5).map(|time| ingest_one(ingest, time)).collect();
    for record in &records {
        assert!(pass(edge, record));
    }
    for seq in 1..=5 {
        assert_eq!(key(&next(&mut client).await), ("AAPL".into(), seq, false));
    }
    switch.move_to(edge);
    until(|| ingest.hub.client_count() == 0).await;
    let more: Vec<Vec<u8>> = (6..=7).map(|time| ingest_one(ingest, time)).collect();
    for record in &more {
        assert!(pass(edge, record));
    }
    assert!(matches!(next(&mut client).await, Update::Reconnected { .. }));
    let first = next(&mut client).await;
    let Update::Quote { record, .. } = &first else {
        panic!("a quote: {first:?}")
    };
    let flags = record.flags;
    let mut got = vec![key(&first)];
    if !flags.contains(Flags::RESET) {
        got.push(key(&next(&mut client).await));
    }
    (got, flags, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_to_an_edge_in_the_ingest_hubs_epoch_resumes_with_no_gap() {
    let ingest = TestHub::start(ServerConfig::default()).await;
    let edge = TestHub::start_with_hub(
        Hub::with_history_in(Hub::DEFAULT_HISTORY_DEPTH, ingest.hub.table().epoch()),
        ServerConfig::default(),
    )
    .await;
    let (got, _, client) = move_a_client_to(&ingest, &edge).await;
    assert_eq!(got, [("AAPL".into(), 6, false), ("AAPL".into(), 7, false)]);
    assert_eq!((client.gaps(), client.resets()), (0, 0));
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_to_an_edge_in_its_own_epoch_is_told_with_a_reset() {
    let ingest = TestHub::start(ServerConfig::default()).await;
    let edge = TestHub::start(ServerConfig::default()).await;
    let (got, flags, client) = move_a_client_to(&ingest, &edge).await;
    assert_eq!(got, [("AAPL".into(), 7, true)]);
    assert!(flags.contains(Flags::RESET));
    assert_eq!(client.resets(), 1);
    edge.shutdown().await;
    ingest.shutdown().await;
}
