//! The consolidated BBO on the wire (issue 19): a hub fed by two feeds sends,
//! on `bbo`, exactly the books this file computes itself from each feed's
//! latest quote (a feed that goes down leaving until its next quote), one
//! record per change, numbered from 1; a client joining later starts with the
//! current book flagged SNAPSHOT. Over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{TestHub, next, sym};
use quotehub_client::Update;
use quotehub_feed::live::{LiveSink, UpstreamState};
use quotehub_proto::bbo::BboSide;
use quotehub_proto::{Channels, Event, Flags, Price, Quote};
use quotehub_server::ServerConfig;
use rust_decimal::Decimal;

/// One step of two merged feeds.
enum Step {
    /// Feed, bid, bid size, ask, ask size.
    Quote(u16, &'static str, u32, &'static str, u32),
    /// The feed's upstream went down.
    Down(u16),
}

/// The test's own book: every feed's latest (bid, bid size, ask, ask size).
#[derive(Default)]
struct Books(BTreeMap<u16, (Decimal, u32, Decimal, u32)>);

impl Books {
    /// One side, plainly: the best price among feeds quoting it (size > 0),
    /// its sizes summed, the lowest feed at it, how many feeds.
    fn side(&self, bid: bool) -> BboSide {
        let quoting: Vec<(u16, Decimal, u32)> = self
            .0
            .iter()
            .map(|(feed, (bp, bs, ap, asz))| if bid { (*feed, *bp, *bs) } else { (*feed, *ap, *asz) })
            .filter(|(_, _, size)| *size > 0)
            .collect();
        let prices = quoting.iter().map(|(_, price, _)| *price);
        let Some(best) = (if bid { prices.max() } else { prices.min() }) else {
            return BboSide::default();
        };
        let at: Vec<_> = quoting.iter().filter(|(_, price, _)| *price == best).collect();
        BboSide {
            price: Price::try_from(best).unwrap(),
            size: at.iter().map(|(_, _, size)| u64::from(*size)).sum(),
            feed: at.iter().map(|(feed, _, _)| *feed).min().unwrap(),
            feeds: at.len() as u16,
        }
    }

    fn book(&self) -> (BboSide, BboSide) {
        (self.side(true), self.side(false))
    }
}

const STEPS: &[Step] = &[
    Step::Quote(1, "10.00", 100, "10.02", 200),
    Step::Quote(2, "10.00", 300, "10.03", 100),
    Step::Quote(2, "10.01", 50, "10.02", 100),
    // Feed 1 moves below the best: nothing a client sees changes.
    Step::Quote(1, "9.99", 100, "10.05", 100),
    Step::Quote(2, "0", 0, "10.02", 100),
    Step::Down(2),
    Step::Quote(1, "9.98", 100, "10.05", 100),
    Step::Quote(2, "10.00", 100, "10.01", 100),
    Step::Quote(1, "0", 0, "0", 0),
    Step::Down(1),
    Step::Down(2),
];

fn quote(bid: &str, bid_size: u32, ask: &str, ask_size: u32, event_ts: u64) -> Event {
    Event::Quote(Quote {
        symbol: sym("GOOD"),
        bid_price: bid.parse().unwrap(),
        bid_size,
        ask_price: ask.parse().unwrap(),
        ask_size,
        event_ts,
        recv_ts: event_ts + 7,
        seq: 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bbo_of_two_feeds_equals_an_independent_computation_at_every_update() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut bbo = hub.connect().await;
    bbo.subscribe_to(&["GOOD", "ZZZZ"], Channels::BBO).await.unwrap();
    let mut quotes = hub.connect().await;
    quotes.subscribe_to(&["GOOD"], Channels::QUOTES).await.unwrap();
    let mut feeds = [
        hub.hub.publisher(Flags::default(), 1),
        hub.hub.publisher(Flags::default(), 2),
    ];

    let mut books = Books::default();
    let mut expected = Vec::new();
    let mut quoted = 0;
    for (i, step) in STEPS.iter().enumerate() {
        let before = books.book();
        match *step {
            Step::Quote(feed, bid, bid_size, ask, ask_size) => {
                let price = |text: &str| text.parse::<Decimal>().unwrap();
                books.0.insert(feed, (price(bid), bid_size, price(ask), ask_size));
                feeds[usize::from(feed - 1)].publish(quote(bid, bid_size, ask, ask_size, 1_000 + i as u64));
                quoted += 1;
            }
            Step::Down(feed) => {
                books.0.remove(&feed);
                LiveSink::upstream(&mut feeds[usize::from(feed - 1)], UpstreamState::Down);
            }
        }
        let after = books.book();
        if after != before {
            expected.push(after);
        }
    }
    // A change of another symbol marks the end: nothing more for GOOD came.
    feeds[0].publish(Event::Quote(Quote {
        symbol: sym("ZZZZ"),
        ..match quote("1.00", 1, "1.01", 1, 9_999) {
            Event::Quote(quote) => quote,
            _ => unreachable!(),
        }
    }));

    let mut received = Vec::new();
    loop {
        match next(&mut bbo).await {
            Update::Bbo { record, .. } if record.bbo.symbol == sym("ZZZZ") => break,
            Update::Bbo { record, .. } => {
                assert!(!record.flags.contains(Flags::SNAPSHOT));
                assert_eq!(record.bbo.seq, received.len() as u64 + 1, "numbered from 1, no gap");
                received.push((record.bbo.bid, record.bbo.ask));
            }
            // Status records (upstream_down) go to every client.
            Update::Status { .. } => {}
            other => panic!("a bbo client got {other:?}"),
        }
    }
    assert_eq!(received, expected);
    assert!(expected.len() >= 7, "the steps change the book often");
    // The quotes client got the quotes, and no BBO.
    let mut got = 0;
    while got < quoted {
        match next(&mut quotes).await {
            Update::Quote { .. } => got += 1,
            Update::Status { .. } => {}
            other => panic!("a quotes client got {other:?}"),
        }
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bbo_subscription_starts_with_the_current_book_then_continues_without_a_gap() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut one = hub.hub.publisher(Flags::default(), 1);
    let mut two = hub.hub.publisher(Flags::default(), 2);
    one.publish(quote("10.00", 100, "10.02", 200, 1));
    two.publish(quote("10.00", 300, "10.03", 100, 2));

    let mut client = hub.connect().await;
    client.subscribe_to(&["GOOD"], Channels::BBO).await.unwrap();
    let Update::Bbo { record, .. } = next(&mut client).await else {
        panic!("the snapshot first")
    };
    assert!(record.flags.contains(Flags::SNAPSHOT));
    assert_eq!((record.bbo.seq, record.bbo.bid.size, record.bbo.bid.feeds), (2, 400, 2));
    two.publish(quote("10.01", 5, "10.03", 100, 3));
    let Update::Bbo { record, .. } = next(&mut client).await else {
        panic!("a live bbo")
    };
    assert!(!record.flags.contains(Flags::SNAPSHOT));
    assert_eq!((record.bbo.seq, record.bbo.bid.size, record.bbo.bid.feed), (3, 5, 2));
    hub.shutdown().await;
}
