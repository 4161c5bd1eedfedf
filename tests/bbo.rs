//! The consolidated best bid and offer (issue 19): the engine's consolidator,
//! fed merged feeds as a hub will feed it (feed number = venue), equals this
//! file's own computation from every feed's latest quote at every update,
//! and emits a record exactly when that computation changes: for two small
//! recorded feeds with books known by hand (one-sided and empty books, a feed
//! going down and coming back), and for the real IEX sample merged with the
//! bundled session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use quotehub_engine::Consolidator;
use quotehub_engine::consolidation::encode;
use quotehub_feed::{JsonLineDecoder, open_recorded};
use quotehub_proto::bbo::{Bbo, BboRecord, BboSide};
use quotehub_proto::{Event, Flags, Price, Quote, Symbol};
use rust_decimal::Decimal;

/// One step of merged feeds.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A feed's quote.
    Quote(u16, Quote),
    /// A feed went down (`upstream_down`).
    Down(u16),
}

/// This test's own consolidation: every feed's latest quote per symbol,
/// forgotten when the feed goes down.
#[derive(Default)]
struct Books(HashMap<Symbol, BTreeMap<u16, Quote>>);

impl Books {
    /// One side, computed plainly: the feeds quoting it (size > 0), the best
    /// price among them as a decimal, the sizes at that price summed, the
    /// lowest feed number at it and how many feeds.
    fn side(&self, symbol: Symbol, bid: bool) -> BboSide {
        let Some(books) = self.0.get(&symbol) else {
            return BboSide::default();
        };
        let quoting: Vec<(u16, Decimal, u32)> = books
            .iter()
            .map(|(feed, q)| {
                if bid {
                    (*feed, q.bid_price.to_decimal(), q.bid_size)
                } else {
                    (*feed, q.ask_price.to_decimal(), q.ask_size)
                }
            })
            .filter(|(_, _, size)| *size > 0)
            .collect();
        let prices = quoting.iter().map(|(_, price, _)| *price);
        let Some(best) = (if bid { prices.max() } else { prices.min() }) else {
            return BboSide::default();
        };
        let at_best: Vec<&(u16, Decimal, u32)> = quoting.iter().filter(|(_, price, _)| *price == best).collect();
        BboSide {
            price: Price::try_from(best).unwrap(),
            size: at_best.iter().map(|(_, _, size)| u64::from(*size)).sum(),
            feed: at_best.iter().map(|(feed, _, _)| *feed).min().unwrap(),
            feeds: at_best.len() as u16,
        }
    }

    fn book(&self, symbol: Symbol) -> (BboSide, BboSide) {
        (self.side(symbol, true), self.side(symbol, false))
    }
}

/// What a run saw.
#[derive(Debug, Default)]
struct Seen {
    updates: usize,
    emitted: usize,
    /// Emitted books with a side quoted by two feeds or more.
    shared_sides: usize,
    /// Emitted books whose bid and ask come from different feeds.
    mixed_venues: usize,
    /// Emitted books with a side no feed quotes.
    empty_sides: usize,
}

/// Feeds `steps` to one consolidator per symbol and, after each step, checks
/// every affected symbol against [`Books`]: the consolidator's book is the
/// computed one, and a record came exactly when the computed book changed,
/// numbered from 1 without gaps, its SPEC bytes decoding to itself.
fn run(steps: &[Step], mut emitted: impl FnMut(&Bbo)) -> Seen {
    let mut books = Books::default();
    let mut consolidators: BTreeMap<Symbol, Consolidator> = BTreeMap::new();
    let mut seen = Seen::default();
    for (i, step) in steps.iter().enumerate() {
        // (symbol, record if one came, computed book before the step)
        let mut outcomes: Vec<(Symbol, Option<Bbo>, (BboSide, BboSide))> = Vec::new();
        match *step {
            Step::Quote(feed, quote) => {
                let before = books.book(quote.symbol);
                books.0.entry(quote.symbol).or_default().insert(feed, quote);
                let consolidator = consolidators
                    .entry(quote.symbol)
                    .or_insert_with(|| Consolidator::new(quote.symbol));
                outcomes.push((quote.symbol, consolidator.quote(feed, &quote), before));
            }
            Step::Down(feed) => {
                for (symbol, consolidator) in &mut consolidators {
                    let before = books.book(*symbol);
                    books.0.get_mut(symbol).unwrap().remove(&feed);
                    outcomes.push((*symbol, consolidator.feed_down(feed, 1_000 + i as u64), before));
                }
            }
        }
        for (symbol, record, before) in outcomes {
            seen.updates += 1;
            let after = books.book(symbol);
            let consolidator = &consolidators[&symbol];
            let current = consolidator.current().map(|bbo| (bbo.bid, bbo.ask));
            assert_eq!(
                current.unwrap_or_default(),
                after,
                "step {i} {step:?}: the consolidated book of {symbol}"
            );
            assert_eq!(
                record.is_some(),
                after != before,
                "step {i} {step:?}: emitted iff changed"
            );
            if let Some(bbo) = record {
                seen.emitted += 1;
                assert_eq!(Some(bbo), consolidator.current());
                assert_eq!(bbo.symbol, symbol);
                let decoded = BboRecord::decode(&encode(bbo, Flags::REPLAYED)).unwrap();
                assert_eq!((decoded.bbo, decoded.flags), (bbo, Flags::REPLAYED));
                if let Step::Quote(_, quote) = step {
                    assert_eq!((bbo.event_ts, bbo.recv_ts), (quote.event_ts, quote.recv_ts));
                }
                seen.shared_sides += usize::from(bbo.bid.feeds > 1 || bbo.ask.feeds > 1);
                seen.empty_sides += usize::from(bbo.bid.feeds == 0 || bbo.ask.feeds == 0);
                seen.mixed_venues +=
                    usize::from(bbo.bid.feeds > 0 && bbo.ask.feeds > 0 && bbo.bid.feed != bbo.ask.feed);
                emitted(&bbo);
            }
        }
    }
    seen
}

fn quotes_of(jsonl: &str) -> Vec<Quote> {
    let mut decoder = JsonLineDecoder::new();
    jsonl
        .lines()
        .map(|line| match decoder.decode(&mut line.as_bytes().to_vec()).unwrap() {
            Event::Quote(quote) => Quote {
                recv_ts: quote.event_ts + 7,
                ..quote
            },
            other => panic!("a quote: {other:?}"),
        })
        .collect()
}

/// Feed 1: a venue's GOOD book, plus ZVZZT only it quotes.
const FEED_1: &str = r#"{"ev":"Q","sym":"GOOD","bp":10.00,"bs":100,"ap":10.02,"as":200,"t":1795185000000001000}
{"ev":"Q","sym":"ZVZZT","bp":0,"bs":0,"ap":5.01,"as":300,"t":1795185000000001500}
{"ev":"Q","sym":"GOOD","bp":9.99,"bs":100,"ap":10.05,"as":100,"t":1795185000000004000}
{"ev":"Q","sym":"GOOD","bp":9.98,"bs":100,"ap":10.05,"as":100,"t":1795185000000005000}
{"ev":"Q","sym":"GOOD","bp":0,"bs":0,"ap":0,"as":0,"t":1795185000000009000}"#;

/// Feed 2: another venue's GOOD book.
const FEED_2: &str = r#"{"ev":"Q","sym":"GOOD","bp":10.00,"bs":300,"ap":10.03,"as":100,"t":1795185000000002000}
{"ev":"Q","sym":"GOOD","bp":10.01,"bs":50,"ap":10.02,"as":100,"t":1795185000000003000}
{"ev":"Q","sym":"GOOD","bp":0,"bs":0,"ap":10.02,"as":100,"t":1795185000000006000}
{"ev":"Q","sym":"GOOD","bp":10.00,"bs":100,"ap":10.01,"as":100,"t":1795185000000008000}
{"ev":"Q","sym":"GOOD","bp":0,"bs":0,"ap":0,"as":0,"t":1795185000000010000}"#;

fn side(price: &str, size: u64, feed: u16, feeds: u16) -> BboSide {
    BboSide {
        price: price.parse().unwrap(),
        size,
        feed,
        feeds,
    }
}

#[test]
fn two_recorded_feeds_consolidate_as_computed_at_every_update() {
    // Merged by event time (below, ns after 2026-11-20T14:30:00Z); feed 2
    // goes down at 7000 (after its one-sided quote at 6000) and comes back
    // with its quote at 8000.
    let mut steps: Vec<(u64, Step)> = Vec::new();
    steps.extend(quotes_of(FEED_1).into_iter().map(|q| (q.event_ts, Step::Quote(1, q))));
    steps.extend(quotes_of(FEED_2).into_iter().map(|q| (q.event_ts, Step::Quote(2, q))));
    steps.push((1_795_185_000_000_007_000, Step::Down(2)));
    steps.sort_by_key(|(ts, _)| *ts);
    let steps: Vec<Step> = steps.into_iter().map(|(_, step)| step).collect();

    let mut good = Vec::new();
    let mut zvzzt = Vec::new();
    let seen = run(&steps, |bbo| match bbo.symbol.as_str() {
        "GOOD" => good.push((bbo.seq, bbo.bid, bbo.ask)),
        _ => zvzzt.push((bbo.seq, bbo.bid, bbo.ask)),
    });
    assert_eq!(seen.updates, 12);
    let none = BboSide::default();
    // The books, by hand (the quote at 5000 moves only feed 1's bid below
    // the best, and the empty quote at 9000 only feed 1's: no record).
    assert_eq!(
        good,
        [
            (1, side("10.00", 100, 1, 1), side("10.02", 200, 1, 1)), // 1000
            (2, side("10.00", 400, 1, 2), side("10.02", 200, 1, 1)), // 2000: bids add up
            (3, side("10.01", 50, 2, 1), side("10.02", 300, 1, 2)),  // 3000
            (4, side("10.01", 50, 2, 1), side("10.02", 100, 2, 1)),  // 4000
            (5, side("9.98", 100, 1, 1), side("10.02", 100, 2, 1)),  // 6000: feed 2 ask only
            (6, side("9.98", 100, 1, 1), side("10.05", 100, 1, 1)),  // 7000: feed 2 down
            (7, side("10.00", 100, 2, 1), side("10.01", 100, 2, 1)), // 8000: feed 2 back
            (8, none, none),                                         // 10000: nobody quotes
        ]
    );
    assert_eq!(zvzzt, [(1, none, side("5.01", 300, 1, 1))]);
}

/// A recorded feed's quotes as steps of `feed`, moved to start at `start`
/// (event time) when given.
fn quote_steps(path: &Path, feed: u16, start: Option<u64>) -> Vec<(u64, Step)> {
    let mut source = open_recorded(path).unwrap();
    let mut quotes = Vec::new();
    while let Some(event) = source.next_event().unwrap() {
        if let Event::Quote(quote) = event {
            quotes.push(quote);
        }
    }
    assert_eq!(source.stats().rejected, 0);
    let shift = start.map_or(0, |start| start as i64 - quotes[0].event_ts as i64);
    quotes
        .into_iter()
        .map(|quote| {
            let event_ts = quote.event_ts.checked_add_signed(shift).unwrap();
            let quote = Quote {
                event_ts,
                recv_ts: event_ts,
                ..quote
            };
            (event_ts, Step::Quote(feed, quote))
        })
        .collect()
}

/// Merges steps by event time, the earlier list first on a tie, each in its
/// own order (as `MergedFeed` does).
fn merged(first: &[(u64, Step)], second: &[(u64, Step)]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(first.len() + second.len() + 1);
    let (mut a, mut b) = (first.iter().peekable(), second.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        let Some((_, step)) = next else { break };
        steps.push(*step);
    }
    steps
}

fn symbols_of(steps: &[Step], feed: u16) -> HashSet<Symbol> {
    steps
        .iter()
        .filter_map(|step| match step {
            Step::Quote(f, q) if *f == feed => Some(q.symbol),
            _ => None,
        })
        .collect()
}

/// Runs `steps` with the checks of [`run`], and that each symbol's records
/// are numbered 1, 2, 3, ...
fn run_numbered(steps: &[Step]) -> Seen {
    let mut last_seq: HashMap<Symbol, u64> = HashMap::new();
    run(steps, |bbo| {
        let previous = last_seq.insert(bbo.symbol, bbo.seq).unwrap_or(0);
        assert_eq!(bbo.seq, previous + 1, "{}: numbered without gaps", bbo.symbol);
    })
}

#[test]
fn the_iex_sample_merged_with_the_bundled_session_consolidates_as_computed() {
    let Some(iex) = common::shared_data::find(common::shared_data::IEX_SAMPLE) else {
        return;
    };
    // Feed 1 the bundled session, feed 2 the IEX sample moved to start with
    // it (as `MergedFeed::align` does).
    let bundled = quote_steps(&common::bundled_feed(), 1, None);
    let iex = quote_steps(&iex, 2, Some(bundled[0].0));
    let mut steps = merged(&bundled, &iex);
    // The IEX feed goes down two thirds of the way through, and each of its
    // symbols comes back with its next quote.
    steps.insert(steps.len() * 2 / 3, Step::Down(2));
    let both = symbols_of(&steps, 1).intersection(&symbols_of(&steps, 2)).count();
    assert!(both >= 10, "{both} symbols in both feeds");

    let seen = run_numbered(&steps);
    assert!(seen.updates > 64_439 + 27_217, "{seen:?}");
    assert!(seen.emitted > 10_000, "{seen:?}");
    // The sample has one-sided books, and on shared symbols the best bid and
    // ask come from different feeds (prices of 2017 and 2026 never meet, so
    // sizes summed at an equal price are the next test's).
    assert!(seen.empty_sides > 100, "{seen:?}");
    assert!(seen.mixed_venues > 100, "{seen:?}");
}

#[test]
fn the_bundled_session_against_itself_a_little_later_sums_equal_prices() {
    // Two venues quoting the same books, the second 3 ms behind the first:
    // their prices meet all the time, and part between the two quotes.
    let first = quote_steps(&common::bundled_feed(), 1, None);
    let second = quote_steps(&common::bundled_feed(), 2, Some(first[0].0 + 3_000_000));
    let mut steps = merged(&first, &second);
    steps.insert(steps.len() / 2, Step::Down(1));
    let seen = run_numbered(&steps);
    assert!(seen.shared_sides > 10_000, "{seen:?}");
    assert!(seen.mixed_venues > 100, "{seen:?}");
}
