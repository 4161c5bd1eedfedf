//! Subscribe, unsubscribe, `"*"`, snapshots and several clients, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, key, next, quote, symbol_of, trade};
use quotehub_client::Update;
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_first_then_live_with_no_gap() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));
    publisher.publish(trade("AAPL", "270.11", 2));
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));

    let mut client = hub.connect().await;
    client.subscribe(&["AAPL"]).await.unwrap();
    let snapshot = next(&mut client).await;
    let Update::Quote { record, .. } = snapshot else {
        panic!("{snapshot:?}")
    };
    assert!(record.flags.contains(Flags::SNAPSHOT));
    assert_eq!(Decimal::from(record.quote.bid_price), Decimal::new(27011, 2));
    assert_eq!(record.quote.event_ts, 3, "the snapshot is the last quote");
    assert_eq!(record.quote.seq, 3, "stamped with the symbol's current sequence");

    publisher.publish(trade("AAPL", "270.12", 4));
    publisher.publish(quote("AAPL", "270.12", "270.14", 5));
    assert_eq!(key(&next(&mut client).await), ("AAPL".into(), 4, false));
    assert_eq!(key(&next(&mut client).await), ("AAPL".into(), 5, false));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_a_symbol_and_keeps_the_others() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut client = hub.connect().await;
    client.subscribe(&["AAPL", "MSFT"]).await.unwrap();
    publisher.publish(quote("MSFT", "510.00", "510.02", 1));
    assert_eq!(symbol_of(&next(&mut client).await), "MSFT");

    client.unsubscribe(&["MSFT"]).await.unwrap();
    publisher.publish(quote("MSFT", "510.01", "510.03", 2));
    // A marker on a symbol still held: the queue is in order, so had the MSFT
    // quote been sent it would arrive before this.
    publisher.publish(quote("AAPL", "270.00", "270.02", 3));
    assert_eq!(key(&next(&mut client).await), ("AAPL".into(), 1, false));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_receives_every_symbol_once_even_when_also_named() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("SPY", "670.00", "670.01", 1));
    publisher.publish(quote("AA-", "1.00", "1.01", 2));
    let mut client = hub.connect().await;
    client.subscribe(&["SPY"]).await.unwrap();
    assert_eq!(key(&next(&mut client).await), ("SPY".into(), 1, true));
    client.subscribe(&["*"]).await.unwrap();
    // Going wildcard snapshots every known symbol that gains a channel by it
    // (SPY, named with the same channels, gains none: no second snapshot),
    // then everything flows once.
    assert_eq!(key(&next(&mut client).await), ("AA-".into(), 1, true));
    let names = ["SPY", "BRK.B", "AA-", "ZVZZT", "ABCDEFGHIJK"];
    for (i, name) in names.iter().enumerate() {
        publisher.publish(quote(name, "1.00", "1.01", 10 + i as u64));
    }
    for name in names {
        assert_eq!(symbol_of(&next(&mut client).await), name);
    }
    // Dropping "*" keeps SPY, which is still held by name.
    client.unsubscribe(&["*"]).await.unwrap();
    publisher.publish(quote("BRK.B", "500.00", "500.03", 20));
    publisher.publish(quote("SPY", "670.01", "670.02", 21));
    assert_eq!(key(&next(&mut client).await), ("SPY".into(), 3, false));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_get_their_own_sets() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut first = hub.connect().await;
    let mut second = hub.connect().await;
    first.subscribe(&["AAPL", "NVDA"]).await.unwrap();
    second.subscribe(&["NVDA", "TSLA"]).await.unwrap();
    for (i, name) in ["AAPL", "TSLA", "NVDA", "MSFT", "AAPL", "TSLA"].iter().enumerate() {
        publisher.publish(quote(name, "100.00", "100.01", i as u64));
    }
    publisher.publish(quote("NVDA", "100.00", "100.01", 99));
    let mut got_first = Vec::new();
    while got_first.len() < 4 {
        got_first.push(symbol_of(&next(&mut first).await));
    }
    let mut got_second = Vec::new();
    while got_second.len() < 4 {
        got_second.push(symbol_of(&next(&mut second).await));
    }
    assert_eq!(got_first, ["AAPL", "NVDA", "AAPL", "NVDA"]);
    assert_eq!(got_second, ["TSLA", "NVDA", "TSLA", "NVDA"]);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_does_not_disturb_the_others() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut leaving = hub.connect().await;
    let mut staying = hub.connect().await;
    leaving.subscribe(&["*"]).await.unwrap();
    staying.subscribe(&["*"]).await.unwrap();
    for i in 0..500u64 {
        publisher.publish(quote(if i % 2 == 0 { "AAPL" } else { "MSFT" }, "1.00", "1.01", i));
    }
    for _ in 0..100 {
        next(&mut leaving).await;
    }
    drop(leaving); // abrupt: no close handshake
    for i in 500..1_000u64 {
        publisher.publish(quote(if i % 2 == 0 { "AAPL" } else { "MSFT" }, "1.00", "1.01", i));
    }
    let mut seqs = std::collections::HashMap::new();
    for i in 0..1_000u64 {
        let (symbol, seq, _) = key(&next(&mut staying).await);
        let previous = seqs.insert(symbol.clone(), seq).unwrap_or(0);
        assert_eq!(seq, previous + 1, "gap for {symbol} at {i}");
    }
    assert_eq!(seqs.values().sum::<u64>(), 1_000);
    hub.shutdown().await;
}
