//! Bars as of a time in a recorded feed, for `GET /v1/snapshot?feed=&at=`
//! with `bars.1s` / `bars.1m`: the bar a subscriber of a hub replaying the
//! whole feed holds as its last of that interval once every event stamped at
//! or before `at` has been delivered.
//!
//! What the live path holds then (`quotehub_engine::bars`): a symbol's bar
//! closes on the symbol's next trade past its end, or when the feed's event
//! clock (every event of every symbol) reaches its end plus the grace
//! ([`CLOSE_GRACE_NS`]); a replay has no wall-clock timer, so nothing else
//! closes it, at any speed, nor after the feed's end. So the last closed bar
//! at `at` is the bar of the symbol's last trade at or before `at` if the
//! clock has passed its end plus the grace, else the bar before it.
//!
//! The bar itself is built by the hub's own [`BarBuilder`] from the trades
//! of its interval, taken from the as-of index: the work per answer is the
//! trades of one symbol in one interval (1 s or 1 min), plus those of the
//! interval holding `at`, plus a few binary searches, never the whole feed.
//!
//! What the index keeps for this, while it reads the feed once:
//! - per symbol and interval, the start of each bar (an interval with a trade
//!   of size > 0): a bar's number in the live path is its place in that list
//!   (the builder numbers bars 1, 2, ... per symbol and interval), and it
//!   says which bar a trade at `at` opened; 8 bytes per bar;
//! - for the event clock, the first event time of each second of the feed
//!   that has events (8 bytes per such second). A bar's end plus the grace
//!   is a whole second (both are whole seconds), so "some event stamped in
//!   `[end + grace, at]`" is "the last kept first-of-second at or before
//!   `at` is at or after `end + grace`".
//!
//! This holds for a feed whose event time never goes back across symbols.
//! In one that does (the real IEX sample steps back by up to about a
//! second), which bars the clock had closed "at `at`" depends on the order
//! of events around `at`, not only on their times, and a trade may even be
//! dropped as late by the live path; such a feed answers these channels in
//! `not_built` rather than with a bar that might differ.

use quotehub_engine::BarBuilder;
use quotehub_engine::bars::CLOSE_GRACE_NS;
use quotehub_proto::bar::{Bar, BarInterval};
use quotehub_proto::{Symbol, Trade};

const SECOND_NS: u64 = 1_000_000_000;

// The clock's per-second record is exact only if every bar's end plus the
// grace falls on a whole second.
const _: () = assert!(CLOSE_GRACE_NS.is_multiple_of(SECOND_NS));
const _: () = assert!(BarInterval::SECOND.nanos().is_multiple_of(SECOND_NS));
const _: () = assert!(BarInterval::MINUTE.nanos().is_multiple_of(SECOND_NS));

/// The intervals the hub builds bars for, in the order [`BarStarts`] keeps.
pub const INTERVALS: [BarInterval; 2] = [BarInterval::SECOND, BarInterval::MINUTE];

/// One symbol's bar starts per interval of [`INTERVALS`], in order.
#[derive(Debug, Default)]
pub struct BarStarts([Vec<u64>; 2]);

/// Bytes one kept bar start takes.
pub const BAR_START_BYTES: usize = std::mem::size_of::<u64>();

impl BarStarts {
    /// Takes the symbol's next trade (in recorded order, event time not
    /// going back): returns the bytes newly kept.
    pub fn trade(&mut self, trade: &Trade) -> usize {
        if trade.size == 0 {
            // Not a trade for bars: it opens none.
            return 0;
        }
        let mut added = 0;
        for (interval, starts) in INTERVALS.iter().zip(&mut self.0) {
            let start = interval.start_of(trade.event_ts);
            if starts.last() != Some(&start) {
                starts.push(start);
                added += BAR_START_BYTES;
            }
        }
        added
    }

    /// Trims the lists once the feed is read.
    pub fn shrink(&mut self) {
        for starts in &mut self.0 {
            starts.shrink_to_fit();
        }
    }

    /// The last bar of `interval` closed at `at` (see the module docs):
    /// its number and its start. `traded_by_at(start)` says whether the
    /// symbol had a trade of size > 0 from `start` up to `at`; it is asked
    /// only of the interval holding `at`.
    pub fn closed_at(
        &self,
        interval: BarInterval,
        clock: &FeedClock,
        at: u64,
        traded_by_at: impl FnOnce(u64) -> bool,
    ) -> Option<(u64, u64)> {
        let starts = INTERVALS
            .iter()
            .position(|&known| known == interval)
            .and_then(|index| self.0.get(index))?;
        let length = interval.nanos();
        // Bars whose whole interval lies at or before `at`: opened by then.
        let mut opened = starts.partition_point(|&start| start.saturating_add(length) <= at);
        // The bar of the interval holding `at`, if a trade opened it by `at`.
        let current = interval.start_of(at);
        if starts.get(opened) == Some(&current) && traded_by_at(current) {
            opened += 1;
        }
        let last_opened = opened.checked_sub(1)?;
        let due = starts
            .get(last_opened)?
            .saturating_add(length)
            .saturating_add(CLOSE_GRACE_NS);
        // The last opened bar is closed only if the clock passed it; every
        // one before it was closed by the trade that opened the next.
        let index = if clock.has_passed(due, at) {
            last_opened
        } else {
            last_opened.checked_sub(1)?
        };
        Some((index as u64 + 1, *starts.get(index)?))
    }
}

/// The feed's event clock, as far as closing bars goes (see the module docs).
#[derive(Debug, Default)]
pub struct FeedClock {
    /// The first event time of each second that has events, in order.
    firsts: Vec<u64>,
    /// The latest event time so far.
    latest: u64,
    /// False once an event's time went back (across symbols).
    ordered: bool,
    /// True once an event was noted.
    started: bool,
}

impl FeedClock {
    /// Takes the feed's next event time: returns the bytes newly kept.
    pub fn event(&mut self, event_ts: u64) -> usize {
        if !self.started {
            self.started = true;
            self.ordered = true;
        }
        if event_ts < self.latest {
            self.ordered = false;
            return 0;
        }
        self.latest = event_ts;
        let second = event_ts / SECOND_NS;
        if self.firsts.last().map(|first| first / SECOND_NS) != Some(second) {
            self.firsts.push(event_ts);
            return std::mem::size_of::<u64>();
        }
        0
    }

    /// Trims the list once the feed is read.
    pub fn shrink(&mut self) {
        self.firsts.shrink_to_fit();
    }

    /// Whether bars as of a time are exact for this feed (its event time
    /// never went back; an empty feed has none to answer anyway).
    pub fn ordered(&self) -> bool {
        self.ordered || !self.started
    }

    /// Whether the clock, once every event stamped at or before `at` is
    /// delivered, has closed a bar whose close is due at `due` (its end
    /// plus the grace, a whole second).
    fn has_passed(&self, due: u64, at: u64) -> bool {
        let after = self.firsts.partition_point(|&first| first <= at);
        after
            .checked_sub(1)
            .and_then(|last| self.firsts.get(last))
            .is_some_and(|&first| first >= due)
    }
}

/// The bar of `interval` made of `trades` (the symbol's trades of that one
/// interval, in order) by the hub's own builder, numbered `seq`, `recv_ts` 0
/// (no hub closed it); `None` if none has size > 0.
pub fn build(symbol: Symbol, interval: BarInterval, trades: impl IntoIterator<Item = Trade>, seq: u64) -> Option<Bar> {
    let mut builder = BarBuilder::new(symbol);
    for trade in trades {
        builder.trade(&trade, 0);
    }
    let bar = builder
        .advance(u64::MAX, 0)
        .bars()
        .find(|bar| bar.interval == interval)?;
    Some(Bar { seq, recv_ts: 0, ..bar })
}
