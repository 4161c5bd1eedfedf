//! The bars builder: one symbol's trades, in hub order, into 1 s and 1 min
//! OHLCV bars (the `bars.1s` and `bars.1m` channels; the record and the VWAP
//! rounding are `quotehub_proto::bar`'s).
//!
//! A bar is emitted once, when its interval closes. Three things close it,
//! because each alone misses a case:
//! - a trade of the symbol past the interval's end ([`BarBuilder::trade`]):
//!   the common case, exact and immediate;
//! - the event clock passing the end by [`CLOSE_GRACE_NS`]
//!   ([`BarBuilder::advance`]): in a replay the merged feed's clock moves
//!   while this symbol is quiet, and a bar must not wait for the symbol's
//!   next trade, minutes of event time later;
//! - a wall-clock timer ([`BarBuilder::expire`]), by the same grace over an
//!   estimate of the event clock: a live source that goes quiet moves no
//!   event clock at all.
//!
//! The first two depend only on the trades and the event clock, never on the
//! hub's clock or on how events are batched, so a replay at 1× and at `max`
//! gives the same bars (only `recv_ts`, the hub's closing time, differs).
//!
//! Trades the builder leaves out, each counted in [`Dropped`]:
//! - **late** (event time going backwards): a trade whose interval starts
//!   before the open bar's (or, with none open, before the end of the last
//!   closed bar) is dropped for that interval. Counting it into the open bar
//!   instead would put a trade outside `[start_ts, start_ts + length)` into
//!   the bar, which SPEC.md rules out, and reopening a closed bar would send
//!   a bar twice. A trade late for the 1 s bar may still be on time for the
//!   1 min bar, and is counted there.
//!   The other side of this rule: one trade stamped far ahead (a broken
//!   clock, a damaged record) moves the builder there, and the symbol's later
//!   trades are late until event time catches up. The builder cannot tell
//!   such a trade from a quiet symbol's next trade days later in a recording
//!   of several days, nor, by the hub's clock, from a synthetic session dated
//!   ahead of it (the bundled feed is dated 2026-11-20), so the guard belongs
//!   where the source is known: for a live source, a trade stamped far ahead
//!   of its receive time can be refused before it gets here.
//! - **size 0**: no shares changed hands, so it cannot weigh in the VWAP, and
//!   a bar of only such trades would have no VWAP at all.
//! - **full**: a bar already holding `u32::MAX` trades (the record's count).
//!   That bound is also what keeps the arithmetic exact: |notional| ≤
//!   2⁶³ × (2³² − 1) × (2³² − 1) < 2¹²⁷ fits `i128`, and volume ≤
//!   (2³² − 1)² fits `u64`.
//!
//! State per symbol is two open bars and two closed ones: O(1).

use quotehub_proto::bar::{BAR_LEN, Bar, BarInterval, BarRecord, vwap};
use quotehub_proto::{Flags, Price, Symbol, Trade};

/// How far past a bar's end a clock other than the symbol's own trades must
/// be before it closes the bar: 2 s. Those clocks are the merged feed's event
/// clock ([`BarBuilder::advance`]) and the quiet timer's estimate of it
/// ([`BarBuilder::expire`]); a trade of the symbol past the end closes the
/// bar at once, since a symbol's trades come in hub order.
///
/// The merged clock may step back: in the real IEX sample
/// (`../shared/data/iex/TOPS16.pcapng.gz`) a burst of messages stamped
/// 14:34:37.643 arrives after messages stamped up to 1.08 s later, while each
/// symbol's own trades stay in order. The timer's estimate (the last trade's
/// event time plus the wall time since the hub received it) cancels the
/// feed's latency and any offset between the venue's clock and the hub's, but
/// not how much that latency varies between two trades (jitter, a source
/// delivering in bursts). Too short a grace loses trades (one that arrives
/// after its bar was closed is dropped as late); too long only delays the
/// bars of quiet symbols, since a busy symbol's bars close on its next trade.
/// Losing data is worse than waiting, so the grace is about twice the largest
/// step back seen in real data.
pub const CLOSE_GRACE_NS: u64 = 2_000_000_000;

/// Trades a builder left out of its bars, per interval (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Older than the interval still open: event time went backwards.
    pub late: u64,
    /// Size 0.
    pub zero_size: u64,
    /// The bar already held `u32::MAX` trades.
    pub full: u64,
}

/// Bars closed by one call: at most one per interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    /// The closed 1 s bar, if one closed.
    pub second: Option<Bar>,
    /// The closed 1 min bar, if one closed.
    pub minute: Option<Bar>,
}

impl Closed {
    /// The closed bars, the 1 s bar first.
    pub fn bars(&self) -> impl Iterator<Item = Bar> + use<> {
        self.second.into_iter().chain(self.minute)
    }

    /// The closed bars as their SPEC records, with `flags` (`REPLAYED` for a
    /// replay, as its trades have).
    pub fn records(&self, flags: Flags) -> impl Iterator<Item = [u8; BAR_LEN]> + use<> {
        self.bars().map(move |bar| {
            BarRecord {
                bar,
                flags,
                conflated: 0,
            }
            .encode()
        })
    }

    /// True when no bar closed.
    pub fn is_empty(&self) -> bool {
        self.second.is_none() && self.minute.is_none()
    }
}

/// One symbol's bars of both intervals.
#[derive(Debug, Clone)]
pub struct BarBuilder {
    second: IntervalBars,
    minute: IntervalBars,
    /// The last trade with shares, late or not: (event time, hub receive
    /// time), from which [`BarBuilder::expire`] estimates the event clock.
    last_trade: Option<(u64, u64)>,
}

impl BarBuilder {
    /// A builder for `symbol`, with no bars yet.
    pub fn new(symbol: Symbol) -> Self {
        Self {
            second: IntervalBars::new(symbol, BarInterval::SECOND),
            minute: IntervalBars::new(symbol, BarInterval::MINUTE),
            last_trade: None,
        }
    }

    /// Takes the symbol's next trade (in hub order). Bars it closes are
    /// returned, stamped `recv_ts = now_ns` (the hub's clock).
    pub fn trade(&mut self, trade: &Trade, now_ns: u64) -> Closed {
        let closed = Closed {
            second: self.second.trade(trade, now_ns),
            minute: self.minute.trade(trade, now_ns),
        };
        if trade.size > 0 {
            self.last_trade = Some((trade.event_ts, trade.recv_ts));
        }
        closed
    }

    /// The event clock went back to the start (a looped replay begins its
    /// next pass): the open bars close now (their trades are all in), and
    /// trades of any time are taken again rather than dropped as late. The
    /// sequences go on: the next bars are numbered after the last ones.
    pub fn rewind(&mut self, now_ns: u64) -> Closed {
        let closed = self.advance(u64::MAX, now_ns);
        self.second.floor = 0;
        self.minute.floor = 0;
        self.last_trade = None;
        closed
    }

    /// The event clock (of the feed this symbol comes from, merged) reached
    /// `event_ts`: closes each open bar that ends at least [`CLOSE_GRACE_NS`]
    /// before it.
    pub fn advance(&mut self, event_ts: u64, now_ns: u64) -> Closed {
        Closed {
            second: self.second.advance(event_ts, now_ns),
            minute: self.minute.advance(event_ts, now_ns),
        }
    }

    /// The hub's timer, at wall time `now_ns`: for a live source gone quiet,
    /// closes each open bar whose end the estimated event clock passed by
    /// [`CLOSE_GRACE_NS`]. The estimate is the last trade's event time plus
    /// the wall time since the hub received it (its `recv_ts`).
    pub fn expire(&mut self, now_ns: u64) -> Closed {
        let Some((event_ts, recv_ts)) = self.last_trade else {
            return Closed::default();
        };
        let clock = event_ts.saturating_add(now_ns.saturating_sub(recv_ts));
        self.advance(clock, now_ns)
    }

    /// The event clock at which [`BarBuilder::advance`] next has something
    /// to close (the earliest open bar's end plus [`CLOSE_GRACE_NS`]), so
    /// that a hub needs to call it only then.
    pub fn next_close(&self) -> Option<u64> {
        match (self.second.close_at(), self.minute.close_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last closed bar of `interval` (the channel's snapshot); `None`
    /// before the first, or for an interval the builder does not make.
    pub fn last(&self, interval: BarInterval) -> Option<Bar> {
        self.interval(interval).and_then(|bars| bars.last)
    }

    /// Trades left out of `interval`'s bars so far.
    pub fn dropped(&self, interval: BarInterval) -> Dropped {
        self.interval(interval).map(|bars| bars.dropped).unwrap_or_default()
    }

    fn interval(&self, interval: BarInterval) -> Option<&IntervalBars> {
        [&self.second, &self.minute]
            .into_iter()
            .find(|bars| bars.interval == interval)
    }
}

/// The bars of one symbol and one interval.
#[derive(Debug, Clone)]
struct IntervalBars {
    symbol: Symbol,
    interval: BarInterval,
    open: Option<OpenBar>,
    /// The earliest interval start a trade may still go into: the open bar's
    /// start, or the end of the last closed bar. Older trades are late.
    floor: u64,
    /// The last closed bar.
    last: Option<Bar>,
    /// The last closed bar's sequence number (0: none yet).
    seq: u64,
    dropped: Dropped,
}

/// The bar being built: the trades so far of its interval.
#[derive(Debug, Clone, Copy)]
struct OpenBar {
    start_ts: u64,
    open: Price,
    high: Price,
    low: Price,
    close: Price,
    /// Σ price units × size, exact (see the module docs for why it fits).
    notional: i128,
    volume: u64,
    trade_count: u32,
}

impl OpenBar {
    fn new(start_ts: u64, trade: &Trade) -> Self {
        Self {
            start_ts,
            open: trade.price,
            high: trade.price,
            low: trade.price,
            close: trade.price,
            notional: i128::from(trade.price.units()) * i128::from(trade.size),
            volume: u64::from(trade.size),
            trade_count: 1,
        }
    }

    fn add(&mut self, trade: &Trade) {
        self.high = self.high.max(trade.price);
        self.low = self.low.min(trade.price);
        self.close = trade.price;
        self.notional += i128::from(trade.price.units()) * i128::from(trade.size);
        self.volume += u64::from(trade.size);
        self.trade_count += 1;
    }
}

impl IntervalBars {
    fn new(symbol: Symbol, interval: BarInterval) -> Self {
        Self {
            symbol,
            interval,
            open: None,
            floor: 0,
            last: None,
            seq: 0,
            dropped: Dropped::default(),
        }
    }

    fn end_of(&self, start_ts: u64) -> u64 {
        start_ts.saturating_add(self.interval.nanos())
    }

    /// When the event clock closes the open bar: its end plus the grace.
    fn close_at(&self) -> Option<u64> {
        self.open
            .map(|bar| self.end_of(bar.start_ts).saturating_add(CLOSE_GRACE_NS))
    }

    fn trade(&mut self, trade: &Trade, now_ns: u64) -> Option<Bar> {
        if trade.size == 0 {
            self.dropped.zero_size += 1;
            return None;
        }
        // Most trades fall in the open bar: that check needs no division.
        let start_ts = match self.open {
            Some(bar) if trade.event_ts >= bar.start_ts && trade.event_ts - bar.start_ts < self.interval.nanos() => {
                bar.start_ts
            }
            _ => self.interval.start_of(trade.event_ts),
        };
        if start_ts < self.floor {
            self.dropped.late += 1;
            return None;
        }
        match &mut self.open {
            Some(bar) if bar.start_ts == start_ts => {
                if bar.trade_count == u32::MAX {
                    self.dropped.full += 1;
                } else {
                    bar.add(trade);
                }
                None
            }
            _ => {
                let closed = self.close(now_ns);
                self.open = Some(OpenBar::new(start_ts, trade));
                self.floor = start_ts;
                closed
            }
        }
    }

    fn advance(&mut self, event_ts: u64, now_ns: u64) -> Option<Bar> {
        match self.close_at() {
            Some(end) if end <= event_ts => self.close(now_ns),
            _ => None,
        }
    }

    /// Closes the open bar, if any: numbers it, keeps it as the snapshot.
    fn close(&mut self, now_ns: u64) -> Option<Bar> {
        let open = self.open.take()?;
        self.seq += 1;
        self.floor = self.end_of(open.start_ts);
        let bar = Bar {
            symbol: self.symbol,
            interval: self.interval,
            start_ts: open.start_ts,
            recv_ts: now_ns,
            open: open.open,
            high: open.high,
            low: open.low,
            close: open.close,
            // Volume is never 0 here (size-0 trades are left out), and the
            // VWAP lies between low and high; `low` is only a fallback that
            // cannot be reached.
            vwap: vwap(open.notional, open.volume).unwrap_or(open.low),
            volume: open.volume,
            trade_count: open.trade_count,
            seq: self.seq,
        };
        self.last = Some(bar);
        Some(bar)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_185_000_000_000_000; // 2026-11-20T14:30:00Z
    const S: u64 = 1_000_000_000;
    const G: u64 = CLOSE_GRACE_NS;

    fn trade(price: &str, size: u32, event_ts: u64) -> Trade {
        Trade {
            symbol: Symbol::from_bytes(b"AAPL").unwrap(),
            price: price.parse().unwrap(),
            size,
            event_ts,
            recv_ts: event_ts,
            seq: 0,
        }
    }

    fn builder() -> BarBuilder {
        BarBuilder::new(Symbol::from_bytes(b"AAPL").unwrap())
    }

    fn p(text: &str) -> Price {
        text.parse().unwrap()
    }

    #[test]
    fn a_trade_past_the_boundary_closes_the_bar_with_exact_fields() {
        let mut b = builder();
        assert!(b.trade(&trade("10.00", 100, T0 + 1), 7).is_empty());
        assert!(b.trade(&trade("10.04", 300, T0 + S / 2), 7).is_empty());
        assert!(b.trade(&trade("9.99", 1, T0 + S - 1), 7).is_empty());
        let closed = b.trade(&trade("10.50", 5, T0 + S), 9);
        let bar = closed.second.unwrap();
        assert!(closed.minute.is_none(), "the minute is still open");
        assert_eq!(bar.start_ts, T0);
        assert_eq!(bar.recv_ts, 9);
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (p("10.00"), p("10.04"), p("9.99"), p("9.99"))
        );
        assert_eq!((bar.volume, bar.trade_count, bar.seq), (401, 3, 1));
        // (1000 + 3012 + 9.99) / 401 = 10.0299002493..., rounded to 10.029900249.
        assert_eq!(bar.vwap, p("10.029900249"));
        assert_eq!(b.last(BarInterval::SECOND), Some(bar));
        assert_eq!(b.last(BarInterval::MINUTE), None);
        // The record is the SPEC bytes of that bar.
        let record = closed.records(Flags::default()).next().unwrap();
        assert_eq!(BarRecord::decode(&record).unwrap().bar, bar);
    }

    #[test]
    fn the_event_clock_closes_bars_of_a_quiet_symbol_and_numbers_them() {
        let mut b = builder();
        b.trade(&trade("1", 1, T0), 0);
        // TC0: the clock reaches the end: the grace is still to run.
        assert_eq!(b.next_close(), Some(T0 + S + G));
        assert!(b.advance(T0 + S, 0).is_empty());
        assert!(b.advance(T0 + S + G - 1, 0).is_empty());
        let closed = b.advance(T0 + S + G, 0);
        assert_eq!(closed.second.map(|bar| bar.seq), Some(1));
        assert!(closed.minute.is_none());
        assert_eq!(b.next_close(), Some(T0 + 60 * S + G));
        // TC1: one call closes both intervals' bars.
        b.trade(&trade("2", 1, T0 + 5 * S), 0);
        let closed = b.advance(T0 + 60 * S + G, 0);
        assert_eq!(closed.second.map(|bar| (bar.seq, bar.start_ts)), Some((2, T0 + 5 * S)));
        let minute = closed.minute.unwrap();
        assert_eq!(
            (minute.seq, minute.trade_count, minute.open, minute.close),
            (1, 2, p("1"), p("2"))
        );
        assert_eq!(b.next_close(), None);
        assert!(b.advance(u64::MAX, 0).is_empty(), "nothing open, nothing closes");
    }

    #[test]
    fn a_rewind_closes_the_open_bars_and_takes_old_trades_again_numbering_on() {
        let mut b = builder();
        b.trade(&trade("1", 1, T0), 0);
        b.trade(&trade("2", 1, T0 + S), 0);
        let closed = b.rewind(5);
        assert_eq!(closed.second.map(|bar| (bar.seq, bar.start_ts)), Some((2, T0 + S)));
        assert_eq!(closed.minute.map(|bar| bar.seq), Some(1));
        assert_eq!(b.next_close(), None);
        // The next pass: the same times again, not late, numbered on.
        assert!(b.trade(&trade("3", 1, T0), 0).is_empty());
        assert_eq!(b.dropped(BarInterval::SECOND).late, 0);
        let bar = b.trade(&trade("4", 1, T0 + S), 0).second.unwrap();
        assert_eq!((bar.seq, bar.start_ts, bar.open), (3, T0, p("3")));
    }

    #[test]
    fn late_trades_never_reopen_a_closed_bar_and_are_counted() {
        let mut b = builder();
        b.trade(&trade("1", 1, T0 + 2 * S), 0);
        // TC0: older than the open 1 s bar, inside the open 1 min bar.
        assert!(b.trade(&trade("5", 10, T0 + S), 0).is_empty());
        assert_eq!(b.dropped(BarInterval::SECOND).late, 1);
        assert_eq!(b.dropped(BarInterval::MINUTE).late, 0);
        let closed = b.trade(&trade("2", 1, T0 + 3 * S), 0);
        assert_eq!(closed.second.map(|bar| (bar.volume, bar.high)), Some((1, p("1"))));
        // TC1: older than the end of a closed bar, nothing open for it.
        b.advance(T0 + 4 * S + G, 0);
        assert!(b.trade(&trade("3", 1, T0 + 3 * S + 1), 0).is_empty());
        assert_eq!(b.dropped(BarInterval::SECOND).late, 2);
        assert_eq!(b.next_close(), Some(T0 + 60 * S + G), "no 1 s bar was reopened");
        let minute = b.advance(u64::MAX, 0).minute.unwrap();
        assert_eq!((minute.trade_count, minute.volume, minute.high), (4, 13, p("5")));
    }

    #[test]
    fn size_zero_trades_are_left_out_and_counted() {
        let mut b = builder();
        b.trade(&trade("100", 0, T0), 0);
        assert_eq!(b.next_close(), None, "a size-0 trade opens no bar");
        b.trade(&trade("1", 10, T0), 0);
        b.trade(&trade("100", 0, T0 + 1), 0);
        let bar = b.advance(T0 + S + G, 0).second.unwrap();
        assert_eq!(
            (bar.high, bar.close, bar.trade_count, bar.vwap),
            (p("1"), p("1"), 1, p("1"))
        );
        assert_eq!(b.dropped(BarInterval::SECOND).zero_size, 2);
        assert_eq!(b.dropped(BarInterval::MINUTE).zero_size, 2);
    }

    #[test]
    fn extreme_prices_and_sizes_stay_exact_and_a_full_bar_refuses_trades() {
        let mut b = builder();
        let max = Price::from_units(i64::MAX);
        let min = Price::from_units(i64::MIN);
        let big = |price: Price| Trade {
            price,
            ..trade("0", u32::MAX, T0)
        };
        b.trade(&big(max), 0);
        b.trade(&big(max), 0);
        b.trade(&big(min), 0);
        let bar = b.advance(T0 + S + G, 0).second.unwrap();
        assert_eq!(bar.volume, 3 * u64::from(u32::MAX));
        // (2 × MAX + MIN) / 3 = (2⁶³ − 2) / 3 units, exactly 3074457345618258602.
        assert_eq!(bar.vwap, Price::from_units(3_074_457_345_618_258_602));
        assert_eq!((bar.high, bar.low), (max, min));

        // TC1: the count bound. A bar one trade short of u32::MAX trades of
        // the largest size and price: the next fits, the one after is refused.
        let mut b = builder();
        b.trade(&big(max), 0);
        let open = b.second.open.as_mut().unwrap();
        open.trade_count = u32::MAX - 1;
        open.volume = u64::from(u32::MAX) * u64::from(u32::MAX - 1);
        open.notional = i128::from(i64::MAX) * i128::from(u32::MAX) * i128::from(u32::MAX - 1);
        b.trade(&big(max), 0);
        b.trade(&big(max), 0);
        assert_eq!(b.dropped(BarInterval::SECOND).full, 1);
        let bar = b.advance(T0 + S + G, 0).second.unwrap();
        assert_eq!((bar.trade_count, bar.vwap), (u32::MAX, max));
        assert_eq!(bar.volume, u64::from(u32::MAX) * u64::from(u32::MAX));
    }

    #[test]
    fn event_times_at_the_end_of_time_do_not_overflow() {
        let mut b = builder();
        b.trade(&trade("1", 1, u64::MAX), 0);
        assert_eq!(b.next_close(), Some(u64::MAX));
        let closed = b.advance(u64::MAX, 0);
        assert_eq!(closed.bars().count(), 2);
        assert!(b.trade(&trade("1", 1, u64::MAX), 0).is_empty());
        assert_eq!(b.dropped(BarInterval::SECOND).late, 1);
    }

    #[test]
    fn the_timer_closes_a_quiet_live_symbol_by_its_own_clock_and_grace() {
        // The venue's clock runs 1 h behind the hub's: only the time since
        // the last trade counts, not the offset.
        let offset = 3_600 * S;
        let mut b = builder();
        assert!(b.expire(u64::MAX).is_empty(), "no trade, nothing to estimate");
        let t = Trade {
            recv_ts: T0 + S / 2 + offset,
            ..trade("1", 1, T0 + S / 2)
        };
        b.trade(&t, 0);
        // Half a second after the bar's end, within the grace: stays open.
        assert!(b.expire(t.recv_ts + S).is_empty());
        assert!(b.expire(t.recv_ts + S / 2 + G - 1).is_empty());
        let closed = b.expire(t.recv_ts + S / 2 + G);
        assert_eq!(closed.second.map(|bar| bar.recv_ts), Some(t.recv_ts + S / 2 + G));
        assert!(closed.minute.is_none());
    }
}
