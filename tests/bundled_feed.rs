//! The bundled feed is what the generator writes, byte for byte, and every
//! line of it decodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use quotehub_feed::RecordedFeed;
use quotehub_feed::synth::{SynthOptions, write_session};
use quotehub_proto::Event;

#[test]
fn bundled_feed_regenerates_byte_for_byte() {
    let mut generated = Vec::new();
    write_session(SynthOptions::default(), &mut generated).unwrap();
    let committed = std::fs::read(common::bundled_feed()).unwrap();
    assert!(
        generated == committed,
        "feeds/ differs from `quotehub synth`; regenerate with scripts/regenerate_feeds.sh"
    );
    assert!(committed.len() < 10 * 1024 * 1024, "feeds/ must stay under 10 MB");
}

#[test]
fn bundled_feed_is_a_realistic_session_that_decodes_cleanly() {
    let mut feed = quotehub_feed::JsonLinesFile::open(common::bundled_feed()).unwrap();
    let (mut symbols, mut quotes, mut trades) = (HashSet::new(), 0, 0);
    let (mut first, mut last) = (u64::MAX, 0);
    while let Some(event) = feed.next_event().unwrap() {
        symbols.insert(event.symbol());
        first = first.min(event.event_ts());
        last = last.max(event.event_ts());
        match event {
            Event::Quote(q) => {
                quotes += 1;
                assert!(q.bid_price < q.ask_price, "crossed or locked book: {q:?}");
                assert!(
                    q.bid_size % 100 == 0 && q.ask_size % 100 == 0,
                    "quotes show round lots: {q:?}"
                );
            }
            Event::Trade(_) => trades += 1,
            _ => {}
        }
    }
    assert_eq!(feed.stats().rejected, 0);
    assert!(symbols.len() >= 50, "{} tickers", symbols.len());
    assert!(quotes > 50_000 && trades > 5_000, "{quotes} quotes, {trades} trades");
    assert!(last - first >= 240 * 1_000_000_000, "several minutes of market time");
}
