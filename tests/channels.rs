//! Channels (issue 19): a subscription that names `channels` gets only
//! those kinds of records, live and in its snapshot; one without gets quotes
//! and trades as before channels existed. Over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, next, quote, trade};
use quotehub_client::{Client, Update};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;

/// (kind, event time, snapshot?) of an update, for comparing whole sequences.
fn what(update: &Update) -> (&'static str, u64, bool) {
    match update {
        Update::Quote { record, .. } => ("quote", record.quote.event_ts, record.flags.contains(Flags::SNAPSHOT)),
        Update::Trade { record, .. } => ("trade", record.trade.event_ts, false),
        other => panic!("unexpected update {other:?}"),
    }
}

/// Sends a raw request, then an unsubscribe of a symbol nobody holds and
/// waits for its ack: requests are applied in order, so the first has been
/// applied when the second is acknowledged.
async fn request(client: &mut Client, text: &str) {
    client.send_text(text).await.unwrap();
    client.unsubscribe(&["NOPE"]).await.unwrap();
}

async fn updates(client: &mut Client, count: usize) -> Vec<(&'static str, u64, bool)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        seen.push(what(&next(client).await));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_gets_only_the_channels_it_named() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));
    publisher.publish(trade("AAPL", "270.11", 2));

    let mut trades = hub.connect().await;
    request(
        &mut trades,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["trades"],"id":1}"#,
    )
    .await;
    let mut quotes = hub.connect().await;
    request(
        &mut quotes,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["quotes"],"id":1}"#,
    )
    .await;
    let mut both = hub.connect().await;
    both.subscribe(&["AAPL"]).await.unwrap();

    publisher.publish(trade("AAPL", "270.12", 3));
    publisher.publish(quote("AAPL", "270.11", "270.13", 4));
    publisher.publish(trade("AAPL", "270.13", 5));
    publisher.publish(quote("AAPL", "270.12", "270.14", 6));

    // Trades have no snapshot; the quote between them must not come.
    assert_eq!(
        updates(&mut trades, 2).await,
        [("trade", 3, false), ("trade", 5, false)]
    );
    // The snapshot is the last quote; the trades between must not come.
    assert_eq!(
        updates(&mut quotes, 3).await,
        [("quote", 1, true), ("quote", 4, false), ("quote", 6, false)]
    );
    // No `channels`: quotes and trades, as before channels existed.
    assert_eq!(
        updates(&mut both, 5).await,
        [
            ("quote", 1, true),
            ("trade", 3, false),
            ("quote", 4, false),
            ("trade", 5, false),
            ("quote", 6, false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_a_channel_keeps_the_others() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));

    let mut client = hub.connect().await;
    client.subscribe(&["AAPL"]).await.unwrap();
    assert_eq!(updates(&mut client, 1).await, [("quote", 1, true)]);
    request(
        &mut client,
        r#"{"op":"unsubscribe","symbols":["AAPL"],"channels":["trades"],"id":2}"#,
    )
    .await;

    publisher.publish(trade("AAPL", "270.11", 2));
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));
    assert_eq!(
        updates(&mut client, 1).await,
        [("quote", 3, false)],
        "the trade must not come"
    );

    // Dropping the last channel drops the symbol: then nothing comes, which
    // a later subscription to another symbol shows (its record is next).
    request(
        &mut client,
        r#"{"op":"unsubscribe","symbols":["AAPL"],"channels":["quotes"],"id":3}"#,
    )
    .await;
    client.subscribe(&["MSFT"]).await.unwrap();
    publisher.publish(quote("AAPL", "270.12", "270.14", 4));
    publisher.publish(quote("MSFT", "500.00", "500.02", 5));
    let next = next(&mut client).await;
    let Update::Quote { record, .. } = next else {
        panic!("{next:?}")
    };
    assert_eq!(
        record.quote.symbol.to_string(),
        "MSFT",
        "AAPL was dropped with its last channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_symbol_keeps_its_own_channels() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));
    publisher.publish(quote("MSFT", "500.00", "500.02", 2));

    let mut client = hub.connect().await;
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["trades"],"id":1}"#,
    )
    .await;
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["MSFT"],"channels":["quotes"],"id":2}"#,
    )
    .await;
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));
    publisher.publish(trade("AAPL", "270.12", 4));
    publisher.publish(trade("MSFT", "500.01", 5));
    publisher.publish(quote("MSFT", "500.01", "500.03", 6));

    // AAPL: trades only (no snapshot, no quote); MSFT: quotes only.
    assert_eq!(
        updates(&mut client, 3).await,
        [("quote", 2, true), ("trade", 4, false), ("quote", 6, false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_held_by_name_and_by_wildcard_gets_the_union() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));
    publisher.publish(quote("MSFT", "500.00", "500.02", 2));

    let mut client = hub.connect().await;
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["*"],"channels":["trades"],"id":1}"#,
    )
    .await;
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["quotes"],"id":2}"#,
    )
    .await;
    publisher.publish(quote("MSFT", "500.01", "500.03", 3));
    publisher.publish(quote("AAPL", "270.11", "270.13", 4));
    publisher.publish(trade("MSFT", "500.02", 5));
    publisher.publish(trade("AAPL", "270.12", 6));

    // AAPL's quotes came with its name (snapshot first), trades of both with
    // "*"; MSFT's quote must not come, and nothing comes twice.
    assert_eq!(
        updates(&mut client, 4).await,
        [
            ("quote", 1, true),
            ("quote", 4, false),
            ("trade", 5, false),
            ("trade", 6, false)
        ]
    );

    // Dropping "*" leaves AAPL's quotes and ends the trades.
    request(&mut client, r#"{"op":"unsubscribe","symbols":["*"],"id":3}"#).await;
    publisher.publish(trade("AAPL", "270.13", 7));
    publisher.publish(trade("MSFT", "500.03", 8));
    publisher.publish(quote("AAPL", "270.12", "270.14", 9));
    assert_eq!(updates(&mut client, 1).await, [("quote", 9, false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_quotes_to_a_held_symbol_starts_with_its_snapshot() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));

    let mut client = hub.connect().await;
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["trades"],"id":1}"#,
    )
    .await;
    publisher.publish(trade("AAPL", "270.11", 2));
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));
    assert_eq!(updates(&mut client, 1).await, [("trade", 2, false)]);

    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["quotes"],"id":2}"#,
    )
    .await;
    publisher.publish(trade("AAPL", "270.12", 4));
    publisher.publish(quote("AAPL", "270.12", "270.14", 5));
    // The newest quote as its snapshot, then both channels live; and asking
    // again for a channel it holds sends no second snapshot.
    assert_eq!(
        updates(&mut client, 3).await,
        [("quote", 3, true), ("trade", 4, false), ("quote", 5, false)]
    );
    request(
        &mut client,
        r#"{"op":"subscribe","symbols":["AAPL"],"channels":["quotes","trades"],"id":3}"#,
    )
    .await;
    publisher.publish(trade("AAPL", "270.13", 6));
    assert_eq!(updates(&mut client, 1).await, [("trade", 6, false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_a_channel_of_one_symbol_leaves_the_others_alone() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);

    let mut client = hub.connect().await;
    client.subscribe(&["AAPL", "MSFT"]).await.unwrap();
    request(
        &mut client,
        r#"{"op":"unsubscribe","symbols":["AAPL"],"channels":["trades"],"id":2}"#,
    )
    .await;
    publisher.publish(trade("AAPL", "270.11", 1));
    publisher.publish(trade("MSFT", "500.01", 2));
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));
    assert_eq!(
        updates(&mut client, 2).await,
        [("trade", 2, false), ("quote", 3, false)],
        "AAPL's trade must not come; MSFT's must"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_subscribes_by_channel_and_resumes_per_channel() {
    use quotehub_proto::Channels;
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "270.10", "270.12", 1));

    let mut client = hub.connect().await;
    client.subscribe_to(&["AAPL"], Channels::TRADES).await.unwrap();
    client.subscribe(&["MSFT"]).await.unwrap();
    assert_eq!(client.channels_of("AAPL"), Channels::TRADES);
    assert_eq!(client.channels_of("MSFT"), Channels::DEFAULT);
    publisher.publish(trade("AAPL", "270.11", 2));
    publisher.publish(quote("AAPL", "270.11", "270.13", 3));
    publisher.publish(trade("AAPL", "270.12", 4));
    assert_eq!(
        updates(&mut client, 2).await,
        [("trade", 2, false), ("trade", 4, false)]
    );

    // Missed while away: a quote and a trade; the resume brings the trade only.
    publisher.publish(quote("AAPL", "270.12", "270.14", 5));
    publisher.publish(trade("AAPL", "270.13", 6));
    client.reconnect().await.unwrap();
    publisher.publish(quote("MSFT", "500.00", "500.02", 7));
    assert_eq!(
        updates(&mut client, 2).await,
        [("trade", 6, false), ("quote", 7, false)]
    );
    // The shared sequence skipped the quotes' numbers: no gap for a
    // trades-only symbol.
    assert_eq!(client.gaps(), 0);

    client.unsubscribe_from(&["AAPL"], Channels::TRADES).await.unwrap();
    assert_eq!(client.channels_of("AAPL"), Channels::NONE);
    publisher.publish(trade("AAPL", "270.14", 8));
    publisher.publish(quote("MSFT", "500.01", "500.03", 9));
    assert_eq!(updates(&mut client, 1).await, [("quote", 9, false)]);
}
