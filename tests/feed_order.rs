//! A client subscribed to some symbols receives exactly their quotes and
//! trades from the bundled feed, in feed order, without sequence gaps, with
//! prices equal to the feed's text as decimals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::str::FromStr;

use common::{TestHub, bundled_feed, next, replay_at_max};
use quotehub_client::Update;
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;
use rust_decimal::Decimal;

/// What the feed file says about one event, read with plain string handling
/// (independent of the hub's simd-json decoder).
#[derive(Debug, PartialEq)]
struct Expected {
    symbol: String,
    kind: &'static str,
    prices: Vec<Decimal>,
    event_ts: u64,
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim_matches('"')
}

fn expected_events(symbols: &[&str]) -> Vec<Expected> {
    std::fs::read_to_string(bundled_feed())
        .unwrap()
        .lines()
        .filter(|line| symbols.contains(&field(line, "sym")))
        .map(|line| {
            let kind = if field(line, "ev") == "Q" { "quote" } else { "trade" };
            let names: &[&str] = if kind == "quote" { &["bp", "ap"] } else { &["p"] };
            Expected {
                symbol: field(line, "sym").to_owned(),
                kind,
                prices: names
                    .iter()
                    .map(|n| Decimal::from_str(field(line, n)).unwrap())
                    .collect(),
                event_ts: field(line, "t").parse().unwrap(),
            }
        })
        .collect()
}

fn observed(update: &Update) -> Expected {
    match update {
        Update::Quote { record, .. } => Expected {
            symbol: record.quote.symbol.to_string(),
            kind: "quote",
            prices: vec![record.quote.bid_price.into(), record.quote.ask_price.into()],
            event_ts: record.quote.event_ts,
        },
        Update::Trade { record, .. } => Expected {
            symbol: record.trade.symbol.to_string(),
            kind: "trade",
            prices: vec![record.trade.price.into()],
            event_ts: record.trade.event_ts,
        },
        _ => panic!("unexpected {update:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_symbols_arrive_in_feed_order_with_exact_prices() {
    let symbols = ["AAPL", "MSFT", "BRK.B"];
    let expected = expected_events(&symbols);
    assert!(
        expected.len() > 5_000,
        "the bundled feed should be busy for these symbols"
    );

    // The whole feed at full speed: a queue that holds it all, so this test
    // is about order and exactness, not the slow-consumer policy.
    let hub = TestHub::start(ServerConfig {
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    })
    .await;
    let mut client = hub.connect().await;
    client.subscribe(&symbols).await.unwrap();

    let feeder = replay_at_max(&hub.hub, bundled_feed());

    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for (index, want) in expected.iter().enumerate() {
        let update = next(&mut client).await;
        let (symbol, seq, snapshot) = common::key(&update);
        assert!(!snapshot, "nothing was published before subscribing, so no snapshot");
        let previous = last_seq.insert(symbol.clone(), seq).unwrap_or(0);
        assert_eq!(seq, previous + 1, "sequence gap for {symbol} at event {index}");
        assert_eq!(&observed(&update), want, "event {index} differs from the feed");
        if let Update::Quote { record, send_ts } = update {
            assert!(record.flags.contains(Flags::REPLAYED));
            assert!(
                record.quote.recv_ts > 0 && send_ts >= record.quote.recv_ts,
                "hub stamps in order"
            );
        }
    }
    let quotehub_feed::ReplayEnd::Finished(stats) = feeder.join().unwrap() else {
        panic!("replay was not stopped")
    };
    assert_eq!(stats.rejected, 0);
    hub.shutdown().await;
}
