//! The as-of index of a recorded feed, for `GET /v1/snapshot?feed=NAME&at=T`:
//! per symbol, its quotes and its trades in recorded order, each with its
//! event time, so that "the last values at T" is two binary searches per
//! symbol, not a scan of the file.
//!
//! A capture's own index seeks by time, but a symbol's last value may lie
//! anywhere before the seek point (a quiet symbol's last quote can be hours
//! older than T), so the whole feed is read once, the first time an as-of
//! request names it, on the replay sessions' reader threads
//! (`replay_pool`), and kept. The read is its own task: a client that
//! leaves while it runs does not cancel it, so no client can make the hub
//! read a feed twice. Its outcome, failures included (a feed over the cap,
//! a feed out of order), is kept too.
//!
//! Records are numbered as a replay session of the whole feed numbers them
//! (`routes/replay.rs`): per symbol, 1 for its first event in the file, +1
//! for each next one, quotes and trades alike. They are encoded by the
//! record encoders live records use, flagged `REPLAYED`, with the receive
//! time the recording has (0 for feeds that carry none).
//!
//! For `bars.1s` and `bars.1m` as of a time (`as_of_bars`), it also keeps
//! each symbol's bar starts and the feed's event clock per second.
//!
//! Memory: [`QUOTE_ENTRY_BYTES`] per quote and [`TRADE_ENTRY_BYTES`] per
//! trade, [`BAR_START_BYTES`] per 1 s or 1 min bar and 8 bytes per second of
//! the feed that has events, plus a small map entry per symbol; a feed whose records would
//! take more than the configured cap (`snapshot_index_max_bytes`) is
//! refused for as-of requests, and the read stops at the cap. (While the
//! feed is read, the growing vectors may briefly hold up to twice what they
//! keep; they are trimmed when it is done.) The read takes one of the two
//! reader threads for its duration, so replay sessions read a little
//! slower meanwhile, once per feed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use quotehub_feed::open_recorded;
use quotehub_proto::bar::{Bar, BarInterval};
use quotehub_proto::record::{Flags, QUOTE_LEN, TRADE_LEN, restamp};
use quotehub_proto::{Event, QuoteRecord, Symbol, Trade, TradeRecord};

pub use crate::as_of_bars::BAR_START_BYTES;
use crate::as_of_bars::{self, BarStarts, FeedClock};

use crate::replay_pool::ReaderPool;

/// The cap on one feed's index unless configured otherwise: 128 MiB, about
/// 1.6 million quotes (the bundled feed's 74,900 records take about 6 MB).
pub const DEFAULT_SNAPSHOT_INDEX_MAX_BYTES: usize = 128 * 1024 * 1024;

/// A quote kept in the index: its record and its event time.
pub const QUOTE_ENTRY_BYTES: usize = std::mem::size_of::<Kept<QUOTE_LEN>>();
/// A trade kept in the index: its record and its event time.
pub const TRADE_ENTRY_BYTES: usize = std::mem::size_of::<Kept<TRADE_LEN>>();

/// One record and its event time (the key of the binary search).
#[derive(Debug, Clone, Copy)]
pub struct Kept<const N: usize> {
    event_ts: u64,
    record: [u8; N],
}

impl<const N: usize> Kept<N> {
    /// The record's sequence number (bytes 24..32 of every quote and trade).
    fn seq(&self) -> u64 {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&self.record[24..32]);
        u64::from_le_bytes(seq)
    }
}

impl Kept<TRADE_LEN> {
    /// The trade, decoded from its record (which the index encoded).
    fn trade(&self) -> Option<Trade> {
        TradeRecord::decode(&self.record).ok().map(|record| record.trade)
    }
}

/// One symbol's records in recorded order (which is event-time order: a
/// feed where a symbol's event time goes back is refused).
#[derive(Debug, Default)]
struct Series {
    quotes: Vec<Kept<QUOTE_LEN>>,
    trades: Vec<Kept<TRADE_LEN>>,
    /// Events of the symbol so far: the replay numbering.
    seq: u64,
    last_ts: u64,
    /// Where its bars start, per interval: their numbers.
    bars: BarStarts,
}

/// A feed's as-of index.
#[derive(Debug, Default)]
pub struct FeedIndex {
    symbols: HashMap<Symbol, Series>,
    /// The feed's event clock, for which bars it had closed by a time.
    clock: FeedClock,
    /// Bytes the kept records take.
    bytes: usize,
}

/// A symbol's last values at a time in a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsOf {
    /// The number of the symbol's last event at or before the time (0: none
    /// yet): what a replay session of the feed showed last for the symbol.
    pub seq: u64,
    /// The last quote, flagged `REPLAYED | SNAPSHOT`, stamped with `seq` (as
    /// a subscribe's snapshot is stamped with the symbol's number).
    pub quote: Option<Bytes>,
    /// The last trade, flagged `REPLAYED | SNAPSHOT`, with its own number.
    pub trade: Option<Bytes>,
}

/// Why a feed has no as-of index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The feed cannot be opened or read.
    #[error("the feed cannot be read: {0}")]
    Feed(String),
    /// Its records would take more than the cap.
    #[error(
        "the feed is too large for as-of snapshots: its index would pass {max_bytes} bytes \
         ({QUOTE_ENTRY_BYTES} per quote, {TRADE_ENTRY_BYTES} per trade, {BAR_START_BYTES} per bar and per \
         second of the feed; the hub's snapshot_index_max_bytes)"
    )]
    TooLarge {
        /// The cap.
        max_bytes: usize,
    },
    /// A symbol's event time goes back in the file, so "the last value at
    /// T" in recorded order cannot be found by time.
    #[error("the feed is not in event-time order ({symbol}'s event time goes back), so it has no as-of snapshots")]
    Unordered {
        /// The first symbol found out of order.
        symbol: Symbol,
    },
    /// The reader thread failed.
    #[error("the feed's index could not be built")]
    Failed,
}

impl FeedIndex {
    /// Reads the whole feed at `path` (file IO: call it off the runtime),
    /// stopping with an error past `max_bytes` of kept records.
    pub fn build(path: &std::path::Path, max_bytes: usize) -> Result<Self, IndexError> {
        let mut feed = open_recorded(path).map_err(|err| IndexError::Feed(err.to_string()))?;
        let mut index = FeedIndex::default();
        while let Some(mut event) = feed.next_event().map_err(|err| IndexError::Feed(err.to_string()))? {
            let symbol = event.symbol();
            let event_ts = event.event_ts();
            let series = index.symbols.entry(symbol).or_default();
            if event_ts < series.last_ts {
                return Err(IndexError::Unordered { symbol });
            }
            series.last_ts = event_ts;
            series.seq += 1;
            event.set_seq(series.seq);
            index.bytes += index.clock.event(event_ts);
            let size = match event {
                Event::Quote(quote) => {
                    let record = QuoteRecord {
                        quote,
                        flags: Flags::REPLAYED,
                        conflated: 0,
                    }
                    .encode();
                    series.quotes.push(Kept { event_ts, record });
                    QUOTE_ENTRY_BYTES
                }
                Event::Trade(trade) => {
                    index.bytes += series.bars.trade(&trade);
                    let record = TradeRecord {
                        trade,
                        flags: Flags::REPLAYED,
                        conflated: 0,
                    }
                    .encode();
                    series.trades.push(Kept { event_ts, record });
                    TRADE_ENTRY_BYTES
                }
                // Numbered (a replay session numbers it), not kept.
                _ => 0,
            };
            index.bytes += size;
            if index.bytes > max_bytes {
                return Err(IndexError::TooLarge { max_bytes });
            }
        }
        for series in index.symbols.values_mut() {
            series.quotes.shrink_to_fit();
            series.trades.shrink_to_fit();
            series.bars.shrink();
        }
        index.clock.shrink();
        Ok(index)
    }

    /// Bytes the kept records take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether [`FeedIndex::bar_at`] answers for this feed: its event time
    /// never goes back across symbols (see `as_of_bars`).
    pub fn has_bars(&self) -> bool {
        self.clock.ordered()
    }

    /// The last closed bar of `interval` of the symbol that a subscriber of
    /// a hub replaying the feed holds once every event stamped at or before
    /// `at` is delivered, built from the trades of its interval; `None`
    /// before the first (or if [`FeedIndex::has_bars`] is false).
    pub fn bar_at(&self, symbol: Symbol, interval: BarInterval, at: u64) -> Option<Bar> {
        if !self.has_bars() {
            return None;
        }
        let series = self.symbols.get(&symbol)?;
        let trades = &series.trades;
        let between = |from: u64, until: u64| {
            let first = trades.partition_point(|kept| kept.event_ts < from);
            let after = trades.partition_point(|kept| kept.event_ts < until);
            trades.get(first..after).unwrap_or_default()
        };
        let (seq, start) = series.bars.closed_at(interval, &self.clock, at, |current| {
            between(current, at.saturating_add(1))
                .iter()
                .any(|kept| kept.trade().is_some_and(|trade| trade.size > 0))
        })?;
        let end = start.saturating_add(interval.nanos());
        let trades = between(start, end).iter().filter_map(Kept::trade);
        as_of_bars::build(symbol, interval, trades, seq)
    }

    /// The symbol's last values at `at` (event time, inclusive), or `None`
    /// if the feed never has it. Two binary searches.
    pub fn at(&self, symbol: Symbol, at: u64) -> Option<AsOf> {
        let series = self.symbols.get(&symbol)?;
        let quote = last_at(&series.quotes, at);
        let trade = last_at(&series.trades, at);
        let seq = quote.map_or(0, Kept::seq).max(trade.map_or(0, Kept::seq));
        Some(AsOf {
            seq,
            quote: quote.map(|kept| snapshot(&kept.record, seq)),
            trade: trade.map(|kept| snapshot(&kept.record, kept.seq())),
        })
    }
}

/// The last of `kept` (in event-time order) at or before `at`.
fn last_at<const N: usize>(kept: &[Kept<N>], at: u64) -> Option<&Kept<N>> {
    let after = kept.partition_point(|kept| kept.event_ts <= at);
    after.checked_sub(1).and_then(|last| kept.get(last))
}

/// A copy of `record` flagged as a snapshot of the replay, numbered `seq`.
fn snapshot(record: &[u8], seq: u64) -> Bytes {
    let mut copy = BytesMut::from(record);
    restamp(&mut copy, Flags::REPLAYED.with(Flags::SNAPSHOT), seq);
    copy.freeze()
}

/// A feed's index being built, or its outcome (kept once done).
type Building = Shared<BoxFuture<'static, Result<Arc<FeedIndex>, IndexError>>>;

/// The as-of indexes of the feeds offered for replay, built on first use.
/// Holds at most one entry per configured feed name (callers check names
/// against the configured feeds first).
#[derive(Debug, Default)]
pub struct SnapshotIndexes {
    feeds: Mutex<HashMap<String, Building>>,
    /// Builds started, for tests and operators: a bad request starts none.
    builds: AtomicUsize,
}

impl SnapshotIndexes {
    /// How many feed reads have been started (one per feed at most).
    pub fn builds(&self) -> usize {
        self.builds.load(Ordering::Acquire)
    }

    /// The index of the feed `name` at `path`, built on `readers` the first
    /// time (callers meanwhile wait for the same build), at most `max_bytes`.
    pub(crate) async fn get(
        &self,
        name: &str,
        path: PathBuf,
        max_bytes: usize,
        readers: Arc<ReaderPool>,
    ) -> Result<Arc<FeedIndex>, IndexError> {
        let building = {
            let mut feeds = self.feeds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match feeds.get(name) {
                Some(building) => building.clone(),
                None => {
                    self.builds.fetch_add(1, Ordering::AcqRel);
                    let task = tokio::spawn(async move {
                        let built = readers.run(move || FeedIndex::build(&path, max_bytes)).await;
                        match built {
                            Some(Ok(index)) => {
                                tracing::info!(feed_bytes = index.bytes(), "as-of snapshot index built");
                                Ok(Arc::new(index))
                            }
                            Some(Err(err)) => {
                                tracing::warn!(%err, "no as-of snapshot index for a replay feed");
                                Err(err)
                            }
                            None => Err(IndexError::Failed),
                        }
                    });
                    let building = async move { task.await.unwrap_or(Err(IndexError::Failed)) }
                        .boxed()
                        .shared();
                    feeds.insert(name.to_owned(), building.clone());
                    building
                }
            }
        };
        building.await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use quotehub_proto::Record;
    use std::io::Write;

    fn feed(lines: &[&str]) -> tempfile_path::TempFeed {
        tempfile_path::TempFeed::new(lines)
    }

    /// A JSON-lines feed in the system's temp directory, removed on drop.
    mod tempfile_path {
        use super::*;
        pub struct TempFeed(pub PathBuf);
        impl TempFeed {
            pub fn new(lines: &[&str]) -> Self {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "quotehub-asof-{}-{}.jsonl",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                let mut file = std::fs::File::create(&path).unwrap();
                for line in lines {
                    writeln!(file, "{line}").unwrap();
                }
                Self(path)
            }
        }
        impl Drop for TempFeed {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    /// Event times of the lines below: `T0 + n`.
    const T0: u64 = 1_795_185_000_000_000_000;

    const LINES: &[&str] = &[
        r#"{"ev":"Q","sym":"AAA","bx":1,"bp":1.10,"bs":1,"ax":1,"ap":1.20,"as":2,"t":1795185000000000100}"#,
        r#"{"ev":"T","sym":"AAA","x":1,"p":1.15,"s":5,"t":1795185000000000110}"#,
        r#"{"ev":"Q","sym":"BBB","bx":1,"bp":2.10,"bs":1,"ax":1,"ap":2.20,"as":2,"t":1795185000000000120}"#,
        r#"{"ev":"Q","sym":"AAA","bx":1,"bp":1.11,"bs":1,"ax":1,"ap":1.21,"as":2,"t":1795185000000000130}"#,
        r#"{"ev":"Q","sym":"BBB","bx":1,"bp":2.11,"bs":1,"ax":1,"ap":2.21,"as":2,"t":1795185000000000140}"#,
    ];

    fn decode(bytes: &Bytes) -> Record {
        Record::decode(bytes).unwrap().0
    }

    #[test]
    fn the_last_values_at_a_time_are_numbered_as_a_replay_numbers_them() {
        let file = feed(LINES);
        let index = FeedIndex::build(&file.0, usize::MAX).unwrap();
        // One second of events (8 bytes of clock), one bar of each interval.
        assert_eq!(
            index.bytes(),
            4 * QUOTE_ENTRY_BYTES + TRADE_ENTRY_BYTES + 8 + 2 * BAR_START_BYTES
        );
        let aaa: Symbol = "AAA".parse().unwrap();
        // TC0: before the first event: known, nothing yet.
        assert_eq!(
            index.at(aaa, T0 + 99),
            Some(AsOf {
                seq: 0,
                quote: None,
                trade: None
            })
        );
        // TC1: at the trade's time exactly (inclusive).
        let at = index.at(aaa, T0 + 110).unwrap();
        assert_eq!(at.seq, 2);
        let Record::Quote(quote) = decode(at.quote.as_ref().unwrap()) else {
            panic!()
        };
        assert_eq!(
            (quote.quote.seq, quote.quote.event_ts),
            (2, T0 + 100),
            "stamped with the symbol's number"
        );
        assert_eq!(quote.flags, Flags::REPLAYED.with(Flags::SNAPSHOT));
        let Record::Trade(trade) = decode(at.trade.as_ref().unwrap()) else {
            panic!()
        };
        assert_eq!((trade.trade.seq, trade.trade.event_ts), (2, T0 + 110));
        // TC2: long after: the last of each.
        let at = index.at(aaa, u64::MAX).unwrap();
        assert_eq!(at.seq, 3);
        let Record::Trade(trade) = decode(at.trade.as_ref().unwrap()) else {
            panic!()
        };
        assert_eq!(trade.trade.seq, 2, "the trade keeps its own number");
        // TC3: a symbol the feed never has.
        assert_eq!(index.at("ZZZ".parse().unwrap(), T0), None);
    }

    fn trade_line(symbol: &str, price: &str, size: u32, ms: u64) -> String {
        let t = T0 + ms * 1_000_000;
        format!(r#"{{"ev":"T","sym":"{symbol}","x":1,"p":{price},"s":{size},"t":{t}}}"#)
    }

    #[test]
    fn bars_as_of_a_time_close_on_the_next_trade_or_the_clock_past_the_grace() {
        let aaa: Symbol = "AAA".parse().unwrap();
        let lines = [
            trade_line("AAA", "1.00", 10, 100),
            trade_line("AAA", "3.00", 30, 900),
            // Size 0: opens no bar.
            trade_line("AAA", "9.00", 0, 1_500),
            // Another symbol's events are the clock: 3.0 s is the first
            // second's end plus the grace.
            trade_line("BBB", "5.00", 1, 2_999),
            trade_line("BBB", "5.00", 1, 3_000),
            trade_line("AAA", "2.00", 5, 4_200),
            trade_line("AAA", "4.00", 5, 5_100),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let file = feed(&lines);
        let index = FeedIndex::build(&file.0, usize::MAX).unwrap();
        assert!(index.has_bars());
        let second = |ms: u64| index.bar_at(aaa, BarInterval::SECOND, T0 + ms * 1_000_000);
        // TC0: nothing closed yet, the first bar open until the clock passes 3.0 s.
        assert_eq!(second(950), None);
        assert_eq!(second(2_999), None);
        // TC1: at 3.0 s exactly the clock closes it, with the builder's fields.
        let bar = second(3_000).unwrap();
        assert_eq!((bar.start_ts, bar.seq, bar.recv_ts), (T0, 1, 0));
        assert_eq!(
            (bar.open, bar.close, bar.volume, bar.trade_count),
            (p("1"), p("3"), 40, 2)
        );
        assert_eq!(bar.vwap, p("2.5"));
        // TC2: the 4 s bar is open until its symbol's next trade at 5.1 s
        // (the clock has no event past 7 s).
        assert_eq!(second(5_099).map(|bar| bar.seq), Some(1));
        let bar = second(5_100).unwrap();
        assert_eq!((bar.start_ts, bar.seq, bar.open), (T0 + 4_000_000_000, 2, p("2")));
        let last = index.bar_at(aaa, BarInterval::SECOND, u64::MAX);
        assert_eq!(last.map(|bar| bar.seq), Some(2), "the 5 s bar never closes");
        // TC3: the minute: never closed (no event a minute later).
        assert_eq!(index.bar_at(aaa, BarInterval::MINUTE, u64::MAX), None);
        // TC4: a feed whose clock goes back across symbols has none.
        let back = feed(&[lines[1], lines[3], lines[0].replace("AAA", "CCC").as_str()]);
        let index = FeedIndex::build(&back.0, usize::MAX).unwrap();
        assert!(!index.has_bars());
        assert_eq!(index.bar_at(aaa, BarInterval::SECOND, u64::MAX), None);
    }

    fn p(text: &str) -> quotehub_proto::Price {
        text.parse().unwrap()
    }

    #[test]
    fn a_feed_over_the_cap_or_out_of_order_is_refused() {
        let file = feed(LINES);
        let cap = 2 * QUOTE_ENTRY_BYTES;
        assert_eq!(
            FeedIndex::build(&file.0, cap).unwrap_err(),
            IndexError::TooLarge { max_bytes: cap }
        );
        let backwards = feed(&[LINES[1], LINES[0]]);
        assert!(matches!(
            FeedIndex::build(&backwards.0, usize::MAX),
            Err(IndexError::Unordered { .. })
        ));
    }

    #[tokio::test]
    async fn a_feed_is_read_once_however_many_ask() {
        let file = feed(LINES);
        let indexes = SnapshotIndexes::default();
        let readers = Arc::new(ReaderPool::default());
        let (first, second) = tokio::join!(
            indexes.get("a", file.0.clone(), usize::MAX, Arc::clone(&readers)),
            indexes.get("a", file.0.clone(), usize::MAX, Arc::clone(&readers)),
        );
        assert!(Arc::ptr_eq(&first.unwrap(), &second.unwrap()));
        let failed = indexes.get("b", file.0.clone(), 1, Arc::clone(&readers)).await;
        assert!(matches!(failed, Err(IndexError::TooLarge { .. })));
        let again = indexes.get("b", file.0.clone(), usize::MAX, readers).await;
        assert!(again.is_err(), "the outcome is kept, failures too");
        assert_eq!(indexes.builds(), 2);
    }
}
