//! The market-data model: quotes and trades as the hub holds them.

use crate::price::Price;
use crate::symbol::Symbol;

/// Top of book for one symbol: best bid and best ask.
///
/// A side with no interest has size 0 (and, from most feeds, price 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Quote {
    /// The instrument.
    pub symbol: Symbol,
    /// Best bid price, exact.
    pub bid_price: Price,
    /// Shares bid at `bid_price`.
    pub bid_size: u32,
    /// Best ask (offer) price, exact.
    pub ask_price: Price,
    /// Shares offered at `ask_price`.
    pub ask_size: u32,
    /// When the venue stamped the update, ns since the Unix epoch.
    pub event_ts: u64,
    /// When the hub received it, ns since the Unix epoch (0 until ingested).
    pub recv_ts: u64,
    /// Per-symbol sequence number given by the hub, starting at 1 (0 until
    /// sequenced). Quotes and trades of a symbol share one sequence.
    pub seq: u64,
}

/// One reported trade (last sale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Trade {
    /// The instrument.
    pub symbol: Symbol,
    /// Execution price, exact.
    pub price: Price,
    /// Shares traded.
    pub size: u32,
    /// When the venue stamped the trade, ns since the Unix epoch.
    pub event_ts: u64,
    /// When the hub received it, ns since the Unix epoch (0 until ingested).
    pub recv_ts: u64,
    /// Per-symbol sequence number given by the hub (shared with quotes).
    pub seq: u64,
}

/// One market-data event, as a feed source yields it and the hub publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A top-of-book update.
    Quote(Quote),
    /// A last-sale report.
    Trade(Trade),
}

impl Event {
    /// The instrument the event is about.
    pub fn symbol(&self) -> Symbol {
        match self {
            Event::Quote(q) => q.symbol,
            Event::Trade(t) => t.symbol,
        }
    }

    /// The venue's timestamp, ns since the Unix epoch; replay paces by it.
    pub fn event_ts(&self) -> u64 {
        match self {
            Event::Quote(q) => q.event_ts,
            Event::Trade(t) => t.event_ts,
        }
    }

    /// Moves the venue's timestamp (a recording shifted in time, see the
    /// feed crate's merge).
    pub fn set_event_ts(&mut self, ns: u64) {
        match self {
            Event::Quote(q) => q.event_ts = ns,
            Event::Trade(t) => t.event_ts = ns,
        }
    }

    /// Stamps the hub's receive time.
    pub fn set_recv_ts(&mut self, ns: u64) {
        match self {
            Event::Quote(q) => q.recv_ts = ns,
            Event::Trade(t) => t.recv_ts = ns,
        }
    }

    /// Stamps the per-symbol sequence number.
    pub fn set_seq(&mut self, seq: u64) {
        match self {
            Event::Quote(q) => q.seq = seq,
            Event::Trade(t) => t.seq = seq,
        }
    }
}
