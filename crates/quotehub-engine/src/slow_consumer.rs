//! The slow-consumer policy: what happens to a client that reads slower than
//! its symbols publish. The publisher never waits for a client, so such a
//! client must lose something; each client picks what, and a client is never
//! skipped silently.
//!
//! - [`Policy::Conflate`] (the default): once the client's FIFO is full, its
//!   pending records are merged per symbol. Each symbol keeps one pending
//!   record: its newest quote (or, if none came, its newest trade), stamped
//!   with the symbol's newest sequence number and flagged `CONFLATED`, with
//!   `conflated` counting the records it stands for beyond itself. A client
//!   can still check continuity: `seq == last_seq + 1 + conflated`. Bars of
//!   each interval and BBO records have sequences of their own, so each
//!   keeps its own pending record per symbol (the newest bar or book, with
//!   its count), by the same rule. Memory per client is bounded by the FIFO
//!   capacity plus one record per subscribed symbol and sequence (four).
//! - [`Policy::Disconnect`]: the client is closed with close code 1008
//!   (policy violation) and the reason `slow consumer: ...`, ahead of
//!   anything still queued.

use std::collections::{HashMap, VecDeque};

use bytes::BytesMut;
use quotehub_proto::bar::BAR_LEN;
use quotehub_proto::bbo::BBO_LEN;
use quotehub_proto::record::{QUOTE_LEN, TRADE_LEN, restamp, rtype};
use quotehub_proto::{Flags, Symbol};
use tracing::warn;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::client::ClientHandle;
use crate::stats::{ForcedClose, Stats};

pub use quotehub_proto::control::Policy;

/// Applies the disconnect policy to a client whose queue of `capacity` is full.
pub(crate) fn disconnect(client: &ClientHandle, capacity: usize) {
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: format!("slow consumer: {capacity} records queued (queue_capacity)").into(),
    };
    if client.close(frame) {
        Stats::add(&client.stats().slow_consumer_disconnects, 1);
        client.stats().forced_close(ForcedClose::SlowConsumer);
        warn!(client = client.id(), capacity, "closing slow consumer");
    }
}

/// The longest record that is merged.
const LONGEST: usize = max(max(QUOTE_LEN, TRADE_LEN), max(BAR_LEN, BBO_LEN));

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// What one conflated symbol and sequence costs at most: its map entry, its
/// place in the order, and its record (a bar, the longest) on the heap.
pub(crate) const PENDING_BYTES: usize = std::mem::size_of::<(Key, Pending)>()
    + std::mem::size_of::<Key>()
    + LONGEST
    // The map's control byte and the allocator's rounding of the record.
    + 16;

/// A symbol and one of its sequences: 0 for quotes and trades (they share
/// one), else the channel bits of the bars or BBO record.
type Key = (Symbol, u8);

/// Pending records merged per symbol while a client lags.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    pending: HashMap<Key, Pending>,
    /// Symbols and sequences in the order their first merged record arrived.
    order: VecDeque<Key>,
}

#[derive(Debug)]
struct Pending {
    /// The record to deliver (newest quote, else newest trade), owned.
    record: Vec<u8>,
    /// The symbol's newest sequence number among the merged records.
    seq: u64,
    /// Records merged beyond the one delivered.
    merged: u32,
}

impl Overflow {
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Merges a quote, trade, bar or BBO record; false for other records
    /// (statuses).
    pub(crate) fn merge(&mut self, record: &[u8]) -> bool {
        let Some((kind, symbol, seq, already)) = read_header(record) else {
            return false;
        };
        let sequence = match kind {
            rtype::QUOTE | rtype::TRADE => 0,
            _ => quotehub_proto::Channels::of_wire(record).bits(),
        };
        let key = (symbol, sequence);
        match self.pending.get_mut(&key) {
            Some(pending) => {
                pending.merged = pending.merged.saturating_add(1).saturating_add(already);
                pending.seq = pending.seq.max(seq);
                // A quote replaces whatever is pending; a trade only replaces a trade,
                // so the book a lagging client ends up with is the newest one.
                // (A bar or BBO only meets its own kind here: the newest wins.)
                if kind == rtype::QUOTE || pending.record[2] != rtype::QUOTE {
                    pending.record.clear();
                    pending.record.extend_from_slice(record);
                }
            }
            None => {
                self.pending.insert(
                    key,
                    Pending {
                        record: record.to_vec(),
                        seq,
                        merged: already,
                    },
                );
                self.order.push_back(key);
            }
        }
        true
    }

    /// Appends pending records, oldest symbol first, to `run` until `max`
    /// records are moved or `run` holds `max_bytes`; returns how many moved.
    pub(crate) fn drain_into(&mut self, run: &mut BytesMut, max: usize, max_bytes: usize) -> usize {
        let mut moved = 0;
        while moved < max && run.len() < max_bytes {
            let Some(key) = self.order.pop_front() else { break };
            let Some(mut pending) = self.pending.remove(&key) else {
                continue;
            };
            if pending.merged > 0 {
                let flags = Flags(pending.record[3]).with(Flags::CONFLATED);
                restamp(&mut pending.record, flags, pending.seq);
                pending.record[4..8].copy_from_slice(&pending.merged.to_le_bytes());
            }
            run.extend_from_slice(&pending.record);
            moved += 1;
        }
        moved
    }
}

/// (type, symbol, seq, already-conflated count) of a quote, trade, bar or
/// BBO record (they share those offsets).
fn read_header(record: &[u8]) -> Option<(u8, Symbol, u64, u32)> {
    let kind = *record.get(2)?;
    if !matches!(kind, rtype::QUOTE | rtype::TRADE | rtype::BAR | rtype::BBO) || record.len() < 32 {
        return None;
    }
    let symbol = Symbol::from_wire(record[8..24].try_into().ok()?).ok()?;
    let seq = u64::from_le_bytes(record[24..32].try_into().ok()?);
    let already = u32::from_le_bytes(record[4..8].try_into().ok()?);
    Some((kind, symbol, seq, already))
}

#[cfg(test)]
mod tests {
    use quotehub_proto::{Event, Price, Quote, QuoteRecord, Record, Trade, TradeRecord};

    use super::*;

    fn quote(seq: u64, bid: i64) -> Vec<u8> {
        let quote = Quote {
            symbol: "AAPL".parse().unwrap(),
            bid_price: Price::from_units(bid),
            bid_size: 1,
            ask_price: Price::from_units(bid + 1),
            ask_size: 1,
            event_ts: seq,
            recv_ts: seq,
            seq,
        };
        QuoteRecord {
            quote,
            flags: Flags::REPLAYED,
            conflated: 0,
        }
        .encode()
        .to_vec()
    }

    fn trade(seq: u64) -> Vec<u8> {
        let trade = Trade {
            symbol: "AAPL".parse().unwrap(),
            price: Price::from_units(seq as i64),
            size: 1,
            event_ts: seq,
            recv_ts: seq,
            seq,
        };
        TradeRecord {
            trade,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode()
        .to_vec()
    }

    fn drained(overflow: &mut Overflow) -> Vec<Record> {
        let mut run = BytesMut::new();
        let moved = overflow.drain_into(&mut run, 100, usize::MAX);
        let mut records = Vec::new();
        let mut rest = &run[..];
        while !rest.is_empty() {
            let (record, used) = Record::decode(rest).unwrap();
            records.push(record);
            rest = &rest[used..];
        }
        assert_eq!(records.len(), moved);
        records
    }

    #[test]
    fn newest_quote_carries_the_newest_sequence_and_the_merged_count() {
        let mut overflow = Overflow::default();
        assert!(overflow.merge(&quote(11, 100)));
        assert!(overflow.merge(&trade(12)));
        assert!(overflow.merge(&quote(13, 300)));
        assert!(overflow.merge(&trade(14)));
        let [Record::Quote(q)] = drained(&mut overflow)[..] else {
            panic!()
        };
        // Four records became one: quote 13's book, sequence 14, 3 merged.
        assert_eq!((q.quote.seq, q.conflated, q.quote.bid_price.units()), (14, 3, 300));
        assert_eq!(q.flags, Flags::REPLAYED.with(Flags::CONFLATED));
        assert!(overflow.is_empty());
    }

    #[test]
    fn a_single_pending_record_is_delivered_unchanged() {
        let mut overflow = Overflow::default();
        overflow.merge(&trade(5));
        let [Record::Trade(t)] = drained(&mut overflow)[..] else {
            panic!()
        };
        assert_eq!((t.trade.seq, t.flags), (5, Flags::default()));
        let _ = Event::Trade(t.trade);
    }

    #[test]
    fn statuses_are_not_merged() {
        let status = quotehub_proto::StatusRecord {
            code: quotehub_proto::StatusCode::Shutdown,
            feed: 0,
            ts: 1,
            detail: 2,
        };
        assert!(!Overflow::default().merge(&status.encode()));
    }

    fn bbo(seq: u64, bid: i64) -> Vec<u8> {
        use quotehub_proto::bbo::{Bbo, BboSide};
        let side = |units| BboSide {
            price: Price::from_units(units),
            size: 1,
            feed: 1,
            feeds: 1,
        };
        let bbo = Bbo {
            symbol: "AAPL".parse().unwrap(),
            bid: side(bid),
            ask: side(bid + 1),
            event_ts: seq,
            recv_ts: seq,
            seq,
        };
        crate::consolidation::encode(bbo, Flags::default()).to_vec()
    }

    fn bar(seq: u64, interval: quotehub_proto::BarInterval) -> Vec<u8> {
        let price = Price::from_units(seq as i64);
        let bar = quotehub_proto::Bar {
            symbol: "AAPL".parse().unwrap(),
            interval,
            start_ts: seq,
            recv_ts: seq,
            open: price,
            high: price,
            low: price,
            close: price,
            vwap: price,
            volume: 1,
            trade_count: 1,
            seq,
        };
        quotehub_proto::BarRecord {
            bar,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode()
        .to_vec()
    }

    #[test]
    fn bars_and_bbos_conflate_per_channel_in_their_own_sequences() {
        use quotehub_proto::BarInterval;
        let mut overflow = Overflow::default();
        // TC0: interleaved with a quote, bars of both intervals and BBOs.
        assert!(overflow.merge(&quote(7, 100)));
        assert!(overflow.merge(&bbo(40, 1)));
        assert!(overflow.merge(&bar(3, BarInterval::SECOND)));
        assert!(overflow.merge(&bbo(41, 2)));
        assert!(overflow.merge(&bar(4, BarInterval::SECOND)));
        assert!(overflow.merge(&bar(1, BarInterval::MINUTE)));
        assert!(overflow.merge(&bbo(42, 3)));
        assert!(overflow.merge(&quote(8, 200)));
        assert_eq!(overflow.len(), 4, "one pending record per symbol and sequence");
        let records = drained(&mut overflow);
        let [
            Record::Quote(q),
            Record::Bbo(b),
            Record::Bar(second),
            Record::Bar(minute),
        ] = &records[..]
        else {
            panic!("{records:?}")
        };
        assert_eq!((q.quote.seq, q.conflated), (8, 1));
        // The newest book, its own number, the two before it merged.
        assert_eq!((b.bbo.seq, b.conflated, b.bbo.bid.price.units()), (42, 2, 3));
        assert!(b.flags.contains(Flags::CONFLATED));
        assert_eq!(
            (second.bar.seq, second.conflated, second.bar.interval),
            (4, 1, BarInterval::SECOND)
        );
        assert_eq!(
            (minute.bar.seq, minute.conflated, minute.flags),
            (1, 0, Flags::default())
        );
    }

    #[test]
    fn trades_without_a_quote_conflate_into_the_newest_trade_with_its_count() {
        let mut overflow = Overflow::default();
        for seq in 20..23 {
            overflow.merge(&trade(seq));
        }
        let [Record::Trade(t)] = drained(&mut overflow)[..] else {
            panic!()
        };
        assert_eq!((t.trade.seq, t.conflated, t.trade.price.units()), (22, 2, 22));
        assert!(t.flags.contains(Flags::CONFLATED));
    }
}
