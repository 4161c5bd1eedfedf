//! Bars (issue 19): the engine's bars builder, driven as a hub drives it (one
//! builder per symbol, every event moving the event clock, trades in hub
//! order), gives the same 1 s and 1 min bars as this file's own
//! straightforward computation, for the bundled session and the real IEX
//! sample; and the same bars however the trades are batched, whenever the
//! clock is advanced or the quiet timer fires, and at 1× and at `max` speed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::bars_computed::{Bars, computed};
use quotehub_engine::BarBuilder;
use quotehub_engine::bars::Closed;
use quotehub_feed::replay::{ReplaySink, ReplayStatus};
use quotehub_feed::{ReplayControl, ReplayWindow, Speed, open_recorded, replay_controlled};
use quotehub_proto::bar::{BarInterval, BarRecord};
use quotehub_proto::{Event, Flags, Symbol, Trade};

fn events(path: &Path) -> Vec<Event> {
    let mut feed = open_recorded(path).unwrap();
    let mut events = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        events.push(event);
    }
    assert_eq!(feed.stats().rejected, 0);
    events
}

fn trades(events: &[Event]) -> Vec<Trade> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Trade(trade) => Some(*trade),
            _ => None,
        })
        .collect()
}

/// The hub's side, as it will drive the builders: one per symbol; each
/// event first moves the event clock (only builders with a bar due are
/// touched), then a trade goes to its symbol's builder. What they emit is
/// read back from the SPEC bytes.
#[derive(Default)]
struct Hub {
    builders: BTreeMap<Symbol, BarBuilder>,
    bars: Bars,
}

impl Hub {
    fn advance(&mut self, event_ts: u64, now: u64) {
        for builder in self.builders.values_mut() {
            if builder.next_close().is_some_and(|end| end <= event_ts) {
                collect(&mut self.bars, builder.advance(event_ts, now));
            }
        }
    }

    fn trade(&mut self, trade: &Trade, now: u64) {
        let builder = self
            .builders
            .entry(trade.symbol)
            .or_insert_with(|| BarBuilder::new(trade.symbol));
        collect(&mut self.bars, builder.trade(trade, now));
    }

    fn event(&mut self, event: &Event, now: u64) {
        self.advance(event.event_ts(), now);
        if let Event::Trade(trade) = event {
            self.trade(trade, now);
        }
    }

    fn expire(&mut self, now: u64) {
        for builder in self.builders.values_mut() {
            collect(&mut self.bars, builder.expire(now));
        }
    }

    /// The feed ended: its clock runs out, every open bar closes.
    fn finish(mut self) -> Bars {
        self.advance(u64::MAX, 0);
        for builder in self.builders.values() {
            for interval in [BarInterval::SECOND, BarInterval::MINUTE] {
                assert_eq!(
                    builder.dropped(interval),
                    Default::default(),
                    "nothing is dropped from in-order trades"
                );
            }
        }
        self.bars
    }
}

fn collect(bars: &mut Bars, closed: Closed) {
    for record in closed.records(Flags::REPLAYED) {
        let record = BarRecord::decode(&record).unwrap();
        assert_eq!(record.flags, Flags::REPLAYED);
        let bar = record.bar;
        bars.entry((bar.symbol, bar.interval.seconds())).or_default().push(bar);
    }
}

/// `recv_ts` is the hub's clock when the bar closed: the one field that
/// depends on pacing.
fn without_recv_ts(mut bars: Bars) -> Bars {
    for bar in bars.values_mut().flatten() {
        bar.recv_ts = 0;
    }
    bars
}

fn built(events: &[Event]) -> Bars {
    let mut hub = Hub::default();
    for (i, event) in events.iter().enumerate() {
        hub.event(event, i as u64);
    }
    without_recv_ts(hub.finish())
}

/// The comparison is of in-order feeds (late trades are the unit tests'):
/// each symbol's trades come in event-time order.
fn assert_in_order(trades: &[Trade]) {
    let mut last = BTreeMap::new();
    for trade in trades {
        let previous = last.insert(trade.symbol, trade.event_ts).unwrap_or(0);
        assert!(previous <= trade.event_ts, "out of order: {trade:?}");
    }
}

fn assert_same(built: &Bars, computed: &Bars) {
    assert_eq!(built.keys().collect::<Vec<_>>(), computed.keys().collect::<Vec<_>>());
    for (key, bars) in computed {
        assert_eq!(built[key].len(), bars.len(), "{key:?}");
        for (built, computed) in built[key].iter().zip(bars) {
            assert_eq!(built, computed, "{key:?}");
        }
    }
}

#[test]
fn bars_of_the_bundled_session_equal_an_independent_computation() {
    let events = events(&common::bundled_feed());
    let trades = trades(&events);
    assert_in_order(&trades);
    let computed = computed(&trades);
    let built = built(&events);
    assert_same(&built, &computed);
    // The session is 5 minutes of 62 symbols: 1 min bars of every one, and
    // many more 1 s bars.
    let count = |seconds| {
        built
            .iter()
            .filter(|((_, s), _)| *s == seconds)
            .map(|(_, b)| b.len())
            .sum::<usize>()
    };
    assert!(count(60) >= 5 * 50, "{} 1 min bars", count(60));
    assert!(count(1) > 2_000, "{} 1 s bars", count(1));
}

#[test]
fn bars_of_the_iex_sample_equal_an_independent_computation() {
    let Some(path) = common::shared_data::find(common::shared_data::IEX_SAMPLE) else {
        return;
    };
    let events = events(&path);
    let trades = trades(&events);
    assert_eq!(trades.len(), 6_390);
    assert_in_order(&trades);
    let built = built(&events);
    assert_same(&built, &computed(&trades));
    let aapl = &built[&(common::sym("AAPL"), 60)];
    assert!(!aapl.is_empty() && aapl.iter().all(|bar| bar.trade_count > 0));
}

/// A small deterministic generator (no dependency): batch sizes and timer
/// ticks that differ from run to run of this test's cases, not between runs.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn bars_do_not_depend_on_batching_or_on_when_the_clock_moves() {
    let events = events(&common::bundled_feed());
    let reference = built(&events);

    // TC0: no event clock at all; bars close on their symbol's next trade
    // (and, at the end, when the feed's clock runs out).
    let mut hub = Hub::default();
    for event in &events {
        if let Event::Trade(trade) = event {
            hub.trade(trade, 1);
        }
    }
    assert_same(&without_recv_ts(hub.finish()), &reference);

    // TC1..3: batches of 1 to 999 events, the clock advanced once per batch
    // to its last event's time (as a hub advancing on each flush would).
    for seed in 1..=3 {
        let mut lcg = Lcg(seed);
        let mut hub = Hub::default();
        let mut rest = &events[..];
        while !rest.is_empty() {
            let (batch, after) = rest.split_at((1 + lcg.below(999) as usize).min(rest.len()));
            for event in batch {
                if let Event::Trade(trade) = event {
                    hub.trade(trade, seed);
                }
            }
            hub.advance(batch.last().unwrap().event_ts(), seed);
            rest = after;
        }
        assert_same(&without_recv_ts(hub.finish()), &reference);
    }

    // TC4: a live source at 1×, received 80 ms after the venue stamped each
    // event through a clock 3 h off, with the quiet timer firing every 0 to
    // 500 ms of wall time between events, and no event clock.
    let offset = 3 * 3_600 * 1_000_000_000 + 80_000_000;
    let mut lcg = Lcg(4);
    let mut hub = Hub::default();
    let mut wall = events[0].event_ts() + offset;
    for event in &events {
        let arrival = event.event_ts() + offset;
        while wall < arrival {
            hub.expire(wall);
            wall += lcg.below(500) * 1_000_000 + 1;
        }
        if let Event::Trade(trade) = event {
            let trade = Trade {
                recv_ts: arrival,
                ..*trade
            };
            hub.trade(&trade, arrival);
        }
    }
    let timed = hub.bars.values().flatten().filter(|bar| bar.recv_ts > 0).count();
    assert_same(&without_recv_ts(hub.finish()), &reference);
    assert!(timed > 0, "the timer closed some bars");
}

/// A replay's sink, as the hub's publisher is one: each event stamped with
/// the hub's clock on arrival.
struct Replayed<'a>(&'a mut Hub);

impl ReplaySink for Replayed<'_> {
    fn event(&mut self, mut event: Event) {
        let now = quotehub_proto::now_ns();
        event.set_recv_ts(now);
        self.0.event(&event, now);
    }

    fn status(&mut self, _status: ReplayStatus) {}
}

/// One replay of a window of the bundled feed through the feed crate's
/// real pacing.
fn replayed(window: &ReplayWindow, speed: Speed) -> Bars {
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let control = ReplayControl::new(speed);
    let (_keep, stop) = std::sync::mpsc::channel();
    let mut hub = Hub::default();
    replay_controlled(feed.as_mut(), false, window, &control, &stop, Replayed(&mut hub)).unwrap();
    without_recv_ts(hub.finish())
}

#[test]
fn bars_replay_identically_at_1x_and_at_max_speed() {
    let first = events(&common::bundled_feed())[0].event_ts();
    // 3 s of the opening rush at 1× (so the test takes 3 s).
    let window = ReplayWindow {
        from: Some(first),
        to: Some(BarInterval::SECOND.start_of(first) + 3_000_000_000),
        symbols: None,
    };
    let at_max = replayed(&window, Speed::Max);
    let at_1x = replayed(&window, Speed::Factor(1.0));
    assert!(at_max.values().flatten().count() > 100, "the window has bars");
    assert_same(&at_1x, &at_max);
}
