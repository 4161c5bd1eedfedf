//! A symbol's last values as one consistent read, for HTTP snapshots: the
//! snapshot a subscribe would get (the last quote, flagged `SNAPSHOT`, at
//! the symbol's current number) and the last trade the history still holds.
//!
//! The table keeps no last trade of its own (the publish path stores only
//! the last quote), so the trade is looked for in the symbol's history: it
//! is found when it is among the symbol's last `history_depth` records
//! (64 by default). Reading it there costs the publish path nothing.
//! The derived channels (bars, BBO) are what a subscribe to them starts
//! with: each one's last record, flagged `SNAPSHOT`.

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{Flags, restamp, rtype};
use quotehub_proto::{Channels, Symbol};

use crate::slot::{DERIVED_CHANNELS, SlotState, derived_index, record_len};
use crate::{Subscriber, Table};

/// What [`Table::last_values`] read, under the symbol's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastValues {
    /// The symbol's latest sequence number (0 before its first record).
    pub seq: u64,
    /// The last quote as a subscribe's snapshot has it: flagged `SNAPSHOT`,
    /// stamped with `seq`.
    pub quote: Option<Bytes>,
    /// The last trade, if the history still holds one: flagged `SNAPSHOT`,
    /// keeping its own sequence number.
    pub trade: Option<Bytes>,
    /// The last record of each derived channel (`bars.1s`, `bars.1m`,
    /// `bbo`, in that order), flagged `SNAPSHOT`: what a subscribe to the
    /// channel starts with.
    pub derived: [Option<Bytes>; DERIVED_CHANNELS.len()],
    /// The history's depth: how far back the trade was looked for.
    pub history_depth: usize,
}

impl LastValues {
    /// The record `channel` (one channel) answers with, if any.
    pub fn record(&self, channel: Channels) -> Option<&Bytes> {
        if channel == Channels::QUOTES {
            return self.quote.as_ref();
        }
        if channel == Channels::TRADES {
            return self.trade.as_ref();
        }
        let at = derived_index(channel)?;
        self.derived.get(at)?.as_ref()
    }
}

impl<S: Subscriber> Table<S> {
    /// The symbol's last values, or `None` if the table has no slot for it
    /// (no feed sent it and nobody holds it). Never creates a slot.
    pub fn last_values(&self, symbol: Symbol) -> Option<LastValues> {
        self.with_slot(symbol, |slot| {
            let state = slot.lock();
            LastValues {
                seq: state.seq,
                quote: state.snapshot(Flags::SNAPSHOT),
                trade: last_trade(&state),
                derived: std::array::from_fn(|at| state.derived_snapshot(at)),
                history_depth: slot.history_depth,
            }
        })
    }
}

/// The newest trade in the history, flagged `SNAPSHOT`.
fn last_trade<S>(state: &SlotState<S>) -> Option<Bytes> {
    let kept = state.history.iter().rev().find(|record| record[2] == rtype::TRADE)?;
    let record = &kept[..record_len(kept)];
    let mut copy = BytesMut::from(record);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(record.get(24..32)?);
    restamp(
        &mut copy,
        Flags(record[3]).with(Flags::SNAPSHOT),
        u64::from_le_bytes(seq),
    );
    Some(copy.freeze())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use quotehub_proto::{Event, Quote, QuoteRecord, Record, Trade, TradeRecord};

    #[derive(Clone)]
    struct Client;
    impl Subscriber for Client {
        fn subscriber_id(&self) -> u64 {
            1
        }
    }

    fn publish(table: &Table<Client>, mut event: Event) {
        table.publish(&mut event, |event| match event {
            Event::Quote(quote) => Bytes::copy_from_slice(
                &QuoteRecord {
                    quote: *quote,
                    flags: Flags::REPLAYED,
                    conflated: 0,
                }
                .encode(),
            ),
            Event::Trade(trade) => Bytes::copy_from_slice(
                &TradeRecord {
                    trade: *trade,
                    flags: Flags::REPLAYED,
                    conflated: 0,
                }
                .encode(),
            ),
            _ => Bytes::new(),
        });
    }

    #[test]
    fn the_quote_is_the_subscribe_snapshot_and_the_trade_comes_from_the_history() {
        let table = Table::<Client>::with_history(3);
        let symbol: Symbol = "AAPL".parse().unwrap();
        assert_eq!(table.last_values(symbol), None, "unknown: no slot, and none made");
        assert!(!table.is_known(symbol));
        let quote = Quote {
            symbol,
            bid_price: "1.5".parse().unwrap(),
            bid_size: 1,
            ask_price: "1.6".parse().unwrap(),
            ask_size: 2,
            event_ts: 10,
            recv_ts: 11,
            seq: 0,
        };
        let trade = Trade {
            symbol,
            price: "1.55".parse().unwrap(),
            size: 5,
            event_ts: 12,
            recv_ts: 13,
            seq: 0,
        };
        publish(&table, Event::Quote(quote));
        publish(&table, Event::Trade(trade));
        publish(&table, Event::Quote(Quote { event_ts: 14, ..quote }));
        let values = table.last_values(symbol).unwrap();
        assert_eq!(values.seq, 3);
        let (Record::Quote(q), _) = Record::decode(values.quote.as_ref().unwrap()).unwrap() else {
            panic!("a quote")
        };
        assert_eq!((q.quote.seq, q.quote.event_ts), (3, 14));
        assert_eq!(q.flags, Flags::REPLAYED.with(Flags::SNAPSHOT));
        let (Record::Trade(t), _) = Record::decode(values.trade.as_ref().unwrap()).unwrap() else {
            panic!("a trade")
        };
        assert_eq!(
            (t.trade.seq, t.trade.event_ts),
            (2, 12),
            "the trade keeps its own number"
        );
        assert_eq!(t.flags, Flags::REPLAYED.with(Flags::SNAPSHOT));
        // Three quotes later the trade has left the 3-deep history.
        for ts in 15..18 {
            publish(&table, Event::Quote(Quote { event_ts: ts, ..quote }));
        }
        let values = table.last_values(symbol).unwrap();
        assert_eq!((values.seq, values.trade, values.history_depth), (6, None, 3));
    }
}
