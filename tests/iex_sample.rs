//! The real IEX TOPS 1.6 sample described in `../shared/data/README.md`
//! decodes to exactly the counts that README gives, in file order, with
//! exact prices and nothing rejected. Skipped (with a notice) where the shared
//! data is absent, except under `QUOTEHUB_REQUIRE_ALL`, where that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use quotehub_feed::{IexTopsFile, RecordedFeed, open_recorded};
use quotehub_proto::{Event, Quote, Trade};
use rust_decimal::Decimal;

/// 2017-07-10 14:00 and 15:00 UTC, ns since the epoch.
const FROM_NS: u64 = 1_499_695_200_000_000_000;
const UNTIL_NS: u64 = 1_499_698_800_000_000_000;

fn sample() -> Option<PathBuf> {
    common::shared_data::find(common::shared_data::IEX_SAMPLE)
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn drain(feed: &mut dyn RecordedFeed) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        events.push(event);
    }
    events
}

#[test]
fn the_sample_decodes_to_the_documented_events() {
    let Some(path) = sample() else { return };
    // Through the generic entry point: a gzipped classic pcap, despite its
    // `.pcapng.gz` name, is recognized by its magic bytes.
    let mut feed = open_recorded(&path).unwrap();
    let events = drain(feed.as_mut());
    assert_eq!(feed.stats().rejected, 0, "{:#?}", feed.stats().first_rejections);
    assert_eq!(feed.stats().events, events.len() as u64);

    let quotes: Vec<&Quote> = events
        .iter()
        .filter_map(|e| match e {
            Event::Quote(q) => Some(q),
            _ => None,
        })
        .collect();
    let trades: Vec<&Trade> = events
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!((quotes.len(), trades.len()), (27_217, 6_390));
    let two_sided = quotes.iter().filter(|q| q.bid_size > 0 && q.ask_size > 0).count();
    assert_eq!(two_sided, 2_786);

    // The README's samples, at the positions an independent decoder (a short
    // Python script over the same bytes) found them: file order is kept.
    let good = quotes
        .iter()
        .find(|q| q.symbol.as_str() == "GOOD" && q.bid_size == 993)
        .expect("the GOOD sample quote");
    assert_eq!((good.bid_price.to_decimal(), good.bid_size), (dec("18.73"), 993));
    assert_eq!((good.ask_price.to_decimal(), good.ask_size), (dec("18.75"), 297));
    assert_eq!(good.event_ts, 1_499_697_227_199_519_142);
    assert!(matches!(events[7851], Event::Quote(q) if q == **good));
    let aapl = trades
        .iter()
        .find(|t| t.symbol.as_str() == "AAPL" && t.size == 283 && t.price.to_decimal() == dec("148.91"))
        .expect("the AAPL sample trade");
    assert_eq!(aapl.event_ts, 1_499_697_226_594_103_034);
    assert!(matches!(events[7807], Event::Trade(t) if t == **aapl));
    assert_eq!(
        (events[0].symbol().as_str(), events[0].event_ts()),
        ("A", 1_499_697_155_788_781_087)
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last.symbol().as_str(), last.event_ts()),
        ("ZXIET", 1_499_697_521_351_187_893)
    );
    // IEX stamps are not monotonic across symbols: file order shows
    // exactly 27 steps back in time (sorting would show none).
    let steps_back = events.windows(2).filter(|w| w[1].event_ts() < w[0].event_ts()).count();
    assert_eq!(steps_back, 27);

    for event in &events {
        let ts = event.event_ts();
        assert!((FROM_NS..UNTIL_NS).contains(&ts), "{event:?} outside 14:00-15:00 UTC");
    }
}

#[test]
fn the_sample_holds_the_documented_messages_and_symbols() {
    let Some(path) = sample() else { return };
    let mut feed = IexTopsFile::open(&path).unwrap();
    let mut symbols = HashSet::new();
    while let Some(message) = feed.next_message().unwrap() {
        if let Some(symbol) = message.symbol() {
            symbols.insert(symbol.to_vec());
        }
    }
    let counts = feed.counts().clone();
    assert_eq!(counts.messages, 57_674);
    assert_eq!(symbols.len(), 7_799);
    assert_eq!((counts.quote_updates(), counts.trade_reports()), (27_217, 6_390));
    // Not in the README; observed here and by the independent decoder.
    let others: Vec<(char, u64)> = b"HPOADSB".iter().map(|&k| (char::from(k), counts.of_type(k))).collect();
    assert_eq!(
        others,
        [
            ('H', 7_803),
            ('P', 7_802),
            ('O', 7_801),
            ('A', 642),
            ('D', 10),
            ('S', 6),
            ('B', 3)
        ]
    );
    assert_eq!(counts.unknown_types(), 0);
    // One session, no copies and no gaps in the sequence numbers.
    assert_eq!((counts.segments, counts.other_frames), (13_022, 0));
    assert_eq!((counts.duplicate_messages, counts.missing_messages), (0, 0));
    assert_eq!(feed.stats().rejected, 0);

    // A second pass reads the same.
    feed.rewind().unwrap();
    let again = drain(&mut feed);
    assert_eq!(again.len(), 27_217 + 6_390);
    assert_eq!(feed.stats().passes, 1);
    assert_eq!(feed.counts().messages, 2 * 57_674);
}
