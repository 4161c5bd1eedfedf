//! The BBO consolidator: one symbol's quotes from several feeds (venues) into
//! its consolidated best bid and offer, the `bbo` channel (the record is
//! `quotehub_proto::bbo`'s).
//!
//! Each feed's latest quote stands for that venue's book. The best bid is
//! the highest bid any feed quotes, the best ask the lowest ask; the size of
//! a side is summed over every feed quoting its price, and the side names the
//! lowest-numbered of those feeds and how many there are (SPEC.md, "BBO").
//! A side of a quote with size 0 is no interest: that feed quotes nothing on
//! that side. A side no feed quotes is sent as all zeros (`feeds = 0`).
//!
//! A record is emitted only when the consolidated book changes (a price, a
//! size, the venue or the number of venues of either side): a quote that
//! moves a feed's book below the best changes nothing a client sees.
//!
//! A feed that goes down ([`Consolidator::feed_down`]) leaves the
//! consolidation at once and its quotes are forgotten: they come back with
//! its next quote, not when it reconnects, because the book it held before
//! the outage may have moved while the hub could not see it.
//!
//! State per symbol is one entry per feed quoting it, so it is bounded by
//! the number of feeds the hub was configured with, not by anything a feed
//! sends.

use quotehub_proto::bbo::{BBO_LEN, Bbo, BboRecord, BboSide};
use quotehub_proto::{Flags, Price, Quote, Symbol};

/// One symbol's consolidated book across feeds.
#[derive(Debug, Clone)]
pub struct Consolidator {
    symbol: Symbol,
    /// The latest quote of each feed that quoted the symbol and is not down.
    books: Vec<FeedBook>,
    /// The last emitted book (the channel's snapshot), `None` before the first.
    current: Option<Bbo>,
}

/// One feed's side of a book: what its latest quote said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    price: Price,
    /// 0: the feed quotes nothing on this side.
    size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FeedBook {
    feed: u16,
    bid: Level,
    ask: Level,
}

impl Consolidator {
    /// A consolidator for `symbol`, with no quotes yet.
    pub fn new(symbol: Symbol) -> Self {
        Self {
            symbol,
            books: Vec::new(),
            current: None,
        }
    }

    /// Takes `feed`'s next quote of the symbol (the caller routes by symbol):
    /// it replaces that feed's book (and brings back a feed that was down).
    /// Returns the new consolidated book if it changed, numbered, with the
    /// quote's event and receive times.
    ///
    /// Inlined into the publisher: a restated book returns here without a
    /// call; the rest is out of line.
    #[inline]
    pub fn quote(&mut self, feed: u16, quote: &Quote) -> Option<Bbo> {
        let book = FeedBook {
            feed,
            bid: Level {
                price: quote.bid_price,
                size: quote.bid_size,
            },
            ask: Level {
                price: quote.ask_price,
                size: quote.ask_size,
            },
        };
        match self.books.iter_mut().find(|book| book.feed == feed) {
            // The feed restated its book: the same books consolidate to the
            // book already emitted (every change re-consolidates), so there
            // is nothing to compute. Checked first because feeds restate
            // often, and this is on every quote's publish path.
            Some(held) if *held == book => None,
            Some(held) => {
                *held = book;
                self.emit_if_changed(quote.event_ts, quote.recv_ts)
            }
            None => self.add(book, quote.event_ts, quote.recv_ts),
        }
    }

    /// A feed's first quote of the symbol (or its first since it went down).
    #[inline(never)]
    fn add(&mut self, book: FeedBook, event_ts: u64, recv_ts: u64) -> Option<Bbo> {
        self.books.push(book);
        self.emit_if_changed(event_ts, recv_ts)
    }

    /// `feed` went down (its upstream is lost): its quotes leave the
    /// consolidation until its next quote. Returns the new book if that
    /// changed it, with `recv_ts = now_ns` (when the hub learned it) and the
    /// previous book's `event_ts`, since no venue stamped this change.
    pub fn feed_down(&mut self, feed: u16, now_ns: u64) -> Option<Bbo> {
        let before = self.books.len();
        self.books.retain(|book| book.feed != feed);
        if self.books.len() == before {
            return None;
        }
        let event_ts = self.current.map_or(0, |bbo| bbo.event_ts);
        self.emit_if_changed(event_ts, now_ns)
    }

    /// The last emitted book (the `bbo` channel's snapshot); `None` before
    /// the first.
    pub fn current(&self) -> Option<Bbo> {
        self.current
    }

    /// Feeds whose quotes are in the consolidation.
    pub fn feeds(&self) -> usize {
        self.books.len()
    }

    #[inline(never)]
    fn emit_if_changed(&mut self, event_ts: u64, recv_ts: u64) -> Option<Bbo> {
        let bid = best(&self.books, |book| book.bid, |a, b| a > b);
        let ask = best(&self.books, |book| book.ask, |a, b| a < b);
        let (held_bid, held_ask, seq) = self.current.map_or((BboSide::default(), BboSide::default(), 0), |bbo| {
            (bbo.bid, bbo.ask, bbo.seq)
        });
        if (bid, ask) == (held_bid, held_ask) {
            return None;
        }
        let bbo = Bbo {
            symbol: self.symbol,
            bid,
            ask,
            event_ts,
            recv_ts,
            seq: seq + 1,
        };
        self.current = Some(bbo);
        Some(bbo)
    }
}

/// The consolidated side: the best price by `better` among the feeds that
/// quote the side, its sizes summed, its lowest feed number and feed count.
fn best(books: &[FeedBook], side: impl Fn(&FeedBook) -> Level, better: impl Fn(Price, Price) -> bool) -> BboSide {
    let mut best = BboSide::default();
    for book in books {
        let level = side(book);
        if level.size == 0 {
            continue;
        }
        if best.feeds == 0 || better(level.price, best.price) {
            best = BboSide {
                price: level.price,
                size: u64::from(level.size),
                feed: book.feed,
                feeds: 1,
            };
        } else if level.price == best.price {
            // At most 65,536 feeds of u32 sizes: the sum fits u64; the count
            // saturates rather than wrap at the 65,536th.
            best.size += u64::from(level.size);
            best.feed = best.feed.min(book.feed);
            best.feeds = best.feeds.saturating_add(1);
        }
    }
    best
}

/// `bbo` as its SPEC record, with `flags`.
pub fn encode(bbo: Bbo, flags: Flags) -> [u8; BBO_LEN] {
    BboRecord {
        bbo,
        flags,
        conflated: 0,
    }
    .encode()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn quote(bid: &str, bid_size: u32, ask: &str, ask_size: u32, event_ts: u64) -> Quote {
        Quote {
            symbol: Symbol::from_bytes(b"GOOD").unwrap(),
            bid_price: bid.parse().unwrap(),
            bid_size,
            ask_price: ask.parse().unwrap(),
            ask_size,
            event_ts,
            recv_ts: event_ts + 1,
            seq: 0,
        }
    }

    fn side(price: &str, size: u64, feed: u16, feeds: u16) -> BboSide {
        BboSide {
            price: price.parse().unwrap(),
            size,
            feed,
            feeds,
        }
    }

    #[test]
    fn best_prices_across_feeds_sum_sizes_and_name_the_lowest_feed() {
        let mut c = Consolidator::new(Symbol::from_bytes(b"GOOD").unwrap());
        // TC0: one feed.
        let bbo = c.quote(3, &quote("18.73", 100, "18.75", 200, 10)).unwrap();
        assert_eq!(
            (bbo.bid, bbo.ask, bbo.seq),
            (side("18.73", 100, 3, 1), side("18.75", 200, 3, 1), 1)
        );
        assert_eq!((bbo.event_ts, bbo.recv_ts), (10, 11));
        // TC1: a second feed at the same bid, a worse ask: sizes add, the
        // lower feed number is named.
        let bbo = c.quote(1, &quote("18.73", 50, "18.76", 900, 20)).unwrap();
        assert_eq!(
            (bbo.bid, bbo.ask, bbo.seq),
            (side("18.73", 150, 1, 2), side("18.75", 200, 3, 1), 2)
        );
        // TC2: feed 1 moves its worse ask: nothing a client sees changes.
        assert_eq!(c.quote(1, &quote("18.73", 50, "18.77", 900, 30)), None);
        assert_eq!(c.current().map(|bbo| bbo.seq), Some(2));
        // TC3: feed 1 improves the ask.
        let bbo = c.quote(1, &quote("18.73", 50, "18.74", 10, 40)).unwrap();
        assert_eq!((bbo.ask, bbo.seq), (side("18.74", 10, 1, 1), 3));
        // TC4: feed 1 restates its book (a later quote, same prices and
        // sizes): no change; the BBO keeps its number and times.
        assert_eq!(c.quote(1, &quote("18.73", 50, "18.74", 10, 50)), None);
        assert_eq!(c.current().map(|bbo| (bbo.seq, bbo.event_ts)), Some((3, 40)));
        // TC5: then feed 3 takes the ask back with a better price.
        let bbo = c.quote(3, &quote("18.73", 100, "18.72", 200, 60)).unwrap();
        assert_eq!(
            (bbo.bid, bbo.ask, bbo.seq),
            (side("18.73", 150, 1, 2), side("18.72", 200, 3, 1), 4)
        );
    }

    #[test]
    fn one_sided_and_empty_books_are_zero_sides() {
        let mut c = Consolidator::new(Symbol::from_bytes(b"GOOD").unwrap());
        assert_eq!(
            c.quote(0, &quote("0", 0, "0", 0, 1)),
            None,
            "an empty book is no change"
        );
        let bbo = c.quote(0, &quote("0", 0, "5.01", 300, 2)).unwrap();
        assert_eq!((bbo.bid, bbo.ask), (BboSide::default(), side("5.01", 300, 0, 1)));
        let bbo = c.quote(0, &quote("0", 0, "0", 0, 3)).unwrap();
        assert_eq!((bbo.bid, bbo.ask, bbo.seq), (BboSide::default(), BboSide::default(), 2));
        let record = encode(bbo, Flags::default());
        assert_eq!(BboRecord::decode(&record).unwrap().bbo, bbo);
    }

    #[test]
    fn a_feed_that_goes_down_leaves_until_its_next_quote() {
        let mut c = Consolidator::new(Symbol::from_bytes(b"GOOD").unwrap());
        c.quote(1, &quote("10.00", 100, "10.02", 100, 10));
        c.quote(2, &quote("10.01", 100, "10.03", 100, 20));
        assert_eq!(c.feed_down(7, 99), None, "an unknown feed changes nothing");
        let bbo = c.feed_down(2, 99).unwrap();
        assert_eq!((bbo.bid, bbo.ask), (side("10.00", 100, 1, 1), side("10.02", 100, 1, 1)));
        assert_eq!((bbo.event_ts, bbo.recv_ts, bbo.seq), (20, 99, 3));
        assert_eq!(c.feeds(), 1);
        let bbo = c.quote(2, &quote("10.00", 5, "10.05", 100, 30)).unwrap();
        assert_eq!(bbo.bid, side("10.00", 105, 1, 2));
        // Both down: an empty book, sent once.
        c.feed_down(1, 100);
        let bbo = c.feed_down(2, 101).unwrap();
        assert_eq!((bbo.bid.feeds, bbo.ask.feeds, bbo.seq), (0, 0, 6));
        assert_eq!(c.feed_down(2, 102), None);
    }
}
