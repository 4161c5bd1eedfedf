//! Bars on the wire (issue 19): a hub replaying the bundled feed sends, on
//! `bars.1s`, the bars this file computes itself from the trades the same hub
//! sent a `trades` client; a client that asks for trades, or names no
//! channel, gets no bar nor BBO; a `bars.1s` subscription starts with the
//! last closed bar flagged SNAPSHOT and continues with no gap; bars at 1× and
//! at `max` speed are the same. Over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::bars_computed::{Bars, computed};
use common::{TestHub, next, sym};
use quotehub_client::{Client, Update};
use quotehub_feed::{ReplayControl, ReplayWindow, Speed, open_recorded, replay_controlled};
use quotehub_proto::bar::{Bar, BarInterval};
use quotehub_proto::{Channels, Event, Flags, Trade};
use quotehub_server::slow_consumer::Policy;
use quotehub_server::{Hub, ServerConfig};

const SECOND: u64 = 1_000_000_000;

/// Far past the bundled session (2026-11-20): trades stamped here close every
/// bar still open (the event clock passes them) and mark the end of a run.
const FAR: u64 = 1_900_000_000 * SECOND;

/// A hub whose clients are never conflated (a conflated trade would be
/// missing from the test's computation): a queue that holds the whole
/// session, and a slow client disconnected (the test then fails) rather
/// than merged.
async fn roomy_hub() -> TestHub {
    TestHub::start(ServerConfig {
        queue_capacity: 1 << 20,
        default_policy: Policy::Disconnect,
        ..ServerConfig::default()
    })
    .await
}

fn sentinel(event_ts: u64) -> Event {
    Event::Trade(Trade {
        symbol: sym("ZZZZ"),
        price: "1".parse().unwrap(),
        size: 1,
        event_ts,
        recv_ts: event_ts,
        seq: 0,
    })
}

/// Ends a run: the first sentinel trade moves the event clock far past every
/// open bar (closing them all), the second closes the sentinel's own bar, so
/// a client with bars of `"*"` knows it has everything once that one comes.
fn end_run(hub: &Hub) {
    let mut publisher = hub.publisher(Flags::REPLAYED, 0);
    publisher.publish(sentinel(FAR));
    publisher.publish(sentinel(FAR + 10 * SECOND));
}

/// The bars a client receives until the sentinel's, without `recv_ts` (the
/// hub's clock when a bar closed) and checked not to be snapshots.
async fn bars_until_sentinel(client: &mut Client) -> Bars {
    let mut bars = Bars::new();
    loop {
        match next(client).await {
            Update::Bar { record, .. } => {
                assert!(
                    !record.flags.contains(Flags::SNAPSHOT),
                    "nothing closed before subscribing"
                );
                let bar = Bar {
                    recv_ts: 0,
                    ..record.bar
                };
                if bar.symbol == sym("ZZZZ") {
                    if bar.interval == BarInterval::SECOND {
                        return bars;
                    }
                    continue;
                }
                bars.entry((bar.symbol, bar.interval.seconds())).or_default().push(bar);
            }
            // A replay's state changes go to every client.
            Update::Status { .. } => {}
            other => panic!("a bars client got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_on_the_wire_equal_bars_computed_from_the_trades_the_hub_sent() {
    let hub = roomy_hub().await;
    let mut bars = hub.connect().await;
    bars.subscribe_to(&["*"], Channels::BARS_1S).await.unwrap();
    let mut trades = hub.connect().await;
    trades.subscribe_to(&["*"], Channels::TRADES).await.unwrap();
    let mut plain = hub.connect().await;
    plain.subscribe(&["AAPL"]).await.unwrap();

    let bars_task = tokio::spawn(async move { bars_until_sentinel(&mut bars).await });
    let trades_task = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match next(&mut trades).await {
                Update::Trade { record, .. } if record.trade.symbol == sym("ZZZZ") => {
                    if record.trade.event_ts > FAR {
                        return seen;
                    }
                }
                Update::Trade { record, .. } => seen.push(record.trade),
                other => panic!("a trades client got {other:?}"),
            }
        }
    });
    // No `channels`: quotes and trades of AAPL, never a bar or a BBO, up
    // to a last AAPL quote published after everything else.
    let plain_task = tokio::spawn(async move {
        let mut count = 0usize;
        loop {
            match next(&mut plain).await {
                Update::Quote { record, .. } if record.quote.event_ts > FAR => return count,
                Update::Quote { .. } | Update::Trade { .. } => count += 1,
                other => panic!("a client naming no channel got {other:?}"),
            }
        }
    });

    let hub_handle = hub.hub.clone();
    tokio::task::spawn_blocking(move || {
        common::replay_at_max(&hub_handle, common::bundled_feed())
            .join()
            .unwrap()
    })
    .await
    .unwrap();
    end_run(&hub.hub);
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(common::quote("AAPL", "1.00", "1.01", FAR + 20 * SECOND));

    let received = common::within(bars_task).await.unwrap();
    let trades = common::within(trades_task).await.unwrap();
    assert!(
        common::within(plain_task).await.unwrap() > 1_000,
        "AAPL's quotes and trades came"
    );
    assert!(trades.len() > 10_000, "{} trades", trades.len());
    let mut expected = computed(&trades);
    expected.retain(|(_, seconds), _| *seconds == 1);
    let count: usize = received.values().map(Vec::len).sum();
    assert!(count > 2_000, "{count} 1 s bars");
    assert_eq!(received.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, bars) in &expected {
        assert_eq!(&received[key], bars, "{key:?}");
    }
    hub.shutdown().await;
}

fn trade_at(symbol: &str, price: &str, event_ts: u64) -> Event {
    Event::Trade(Trade {
        symbol: sym(symbol),
        price: price.parse().unwrap(),
        size: 10,
        event_ts,
        recv_ts: event_ts,
        seq: 0,
    })
}

/// (start, seq, snapshot?) of a bar update.
fn bar_key(update: &Update) -> (u64, u64, bool) {
    match update {
        Update::Bar { record, .. } => (
            record.bar.start_ts,
            record.bar.seq,
            record.flags.contains(Flags::SNAPSHOT),
        ),
        other => panic!("not a bar: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bars_subscription_starts_with_the_last_closed_bar_then_continues_without_a_gap() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let t0 = 1_795_185_000 * SECOND;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(trade_at("AAPL", "270.10", t0 + SECOND / 10));
    publisher.publish(trade_at("AAPL", "270.20", t0 + SECOND + 1));
    publisher.publish(trade_at("AAPL", "270.30", t0 + 2 * SECOND + 1));

    let mut client = hub.connect().await;
    client
        .subscribe_to(&["AAPL"], Channels::BARS_1S.with(Channels::BARS_1M))
        .await
        .unwrap();
    // TC0: the snapshot is the second closed 1 s bar; no 1 min bar closed yet.
    let snapshot = next(&mut client).await;
    assert_eq!(bar_key(&snapshot), (t0 + SECOND, 2, true));
    // TC1: live bars follow in each interval's own sequence.
    publisher.publish(trade_at("AAPL", "270.40", t0 + 61 * SECOND));
    assert_eq!(bar_key(&next(&mut client).await), (t0 + 2 * SECOND, 3, false));
    assert_eq!(bar_key(&next(&mut client).await), (t0, 1, false));
    // TC2: a client joining now gets both intervals' last bars.
    let mut late = hub.connect().await;
    late.subscribe_to(&["AAPL"], Channels::BARS_1M.with(Channels::BARS_1S))
        .await
        .unwrap();
    let mut snapshots = vec![bar_key(&next(&mut late).await), bar_key(&next(&mut late).await)];
    snapshots.sort_unstable();
    assert_eq!(snapshots, [(t0, 1, true), (t0 + 2 * SECOND, 3, true)]);
    hub.shutdown().await;
}

/// One replay of `window` of the bundled feed into a fresh hub at `speed`,
/// through the hub's publisher as a replay sink: the bars a `"*"` client of
/// both bar channels received, without `recv_ts`.
async fn replayed_bars(window: ReplayWindow, speed: Speed) -> Bars {
    let hub = roomy_hub().await;
    let mut client = hub.connect().await;
    client
        .subscribe_to(&["*"], Channels::BARS_1S.with(Channels::BARS_1M))
        .await
        .unwrap();
    let task = tokio::spawn(async move { bars_until_sentinel(&mut client).await });
    let publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    tokio::task::spawn_blocking(move || {
        let mut feed = open_recorded(&common::bundled_feed()).unwrap();
        let control = ReplayControl::new(speed);
        let (_keep, stop) = std::sync::mpsc::channel();
        replay_controlled(feed.as_mut(), false, &window, &control, &stop, publisher).unwrap();
    })
    .await
    .unwrap();
    end_run(&hub.hub);
    let bars = common::within(task).await.unwrap();
    hub.shutdown().await;
    bars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_on_the_wire_are_the_same_at_1x_and_at_max_speed() {
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let first = feed.next_event().unwrap().unwrap().event_ts();
    // 3 s of the opening rush at 1× (so the test takes 3 s).
    let window = ReplayWindow {
        from: Some(first),
        to: Some(BarInterval::SECOND.start_of(first) + 3 * SECOND),
        symbols: None,
    };
    let at_max = replayed_bars(window.clone(), Speed::Max).await;
    let at_1x = replayed_bars(window, Speed::Factor(1.0)).await;
    let count = |bars: &Bars, seconds: u32| -> usize {
        bars.iter()
            .filter(|((_, s), _)| *s == seconds)
            .map(|(_, b)| b.len())
            .sum()
    };
    assert!(count(&at_max, 1) > 100, "the window has 1 s bars");
    assert!(count(&at_max, 60) > 10, "and 1 min bars");
    let per_symbol: BTreeMap<_, _> = at_1x.iter().collect();
    assert_eq!(per_symbol.len(), at_max.len());
    assert_eq!(at_1x, at_max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_bars_channel_starts_afresh_with_its_last_bar() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let t0 = 1_795_185_000 * SECOND;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    for i in 0..4 {
        publisher.publish(trade_at("AAPL", "270.10", t0 + i * SECOND + 1));
    }
    // Trades 1 to 4 are AAPL's numbers 1 to 4; three 1 s bars closed.
    let mut client = hub.connect().await;
    client
        .send_text(
            r#"{"op":"subscribe","symbols":["AAPL"],"channels":["trades","bars.1s"],"resume":{"AAPL":3},"id":1}"#,
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match next(&mut client).await {
            Update::Trade { record, .. } => seen.push(format!("trade #{}", record.trade.seq)),
            Update::Bar { record, .. } => seen.push(format!(
                "bar #{} snapshot {}",
                record.bar.seq,
                record.flags.contains(Flags::SNAPSHOT)
            )),
            _ => {}
        }
    }
    // The trades resume after 3 from the history; the bars, whose numbers
    // the resume point cannot name, start with their last bar.
    seen.sort();
    assert_eq!(seen, ["bar #3 snapshot true", "trade #4"]);
    hub.shutdown().await;
}

/// A trade that comes after the event clock closed its bar (past the grace)
/// is dropped from that bar, and `/metrics` counts it, per interval and
/// reason, summed over the symbols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_trade_is_counted_in_the_metrics() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let late_1s = "quotehub_bars_dropped_trades_total{interval=\"1s\",reason=\"late\"}";
    let late_1m = "quotehub_bars_dropped_trades_total{interval=\"1m\",reason=\"late\"}";
    let zero_1s = "quotehub_bars_dropped_trades_total{interval=\"1s\",reason=\"zero_size\"}";
    assert_eq!(common::metric(&hub, late_1s).await, 0);
    let t0 = 1_795_185_000 * SECOND;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(trade_at("AAPL", "270.10", t0 + SECOND / 10));
    // Another symbol moves the event clock past the 1 s bar's end and its
    // 2 s grace: the bar closes.
    publisher.publish(common::quote("MSFT", "1.00", "1.01", t0 + 3 * SECOND + SECOND / 2));
    // AAPL's next trade belongs to that closed bar: late for 1 s, on time for 1 min.
    publisher.publish(trade_at("AAPL", "270.20", t0 + SECOND / 2));
    assert_eq!(common::metric(&hub, late_1s).await, 1);
    assert_eq!(common::metric(&hub, late_1m).await, 0);
    assert_eq!(common::metric(&hub, zero_1s).await, 0);
    // A second symbol's late trade adds to the same counter.
    publisher.publish(trade_at("MSFT", "1.00", t0 + 4 * SECOND));
    publisher.publish(common::quote("GS", "1.00", "1.01", t0 + 7 * SECOND + SECOND / 2));
    publisher.publish(trade_at("MSFT", "1.00", t0 + 4 * SECOND + 1));
    assert_eq!(common::metric(&hub, late_1s).await, 2);
    hub.shutdown().await;
}
