//! Taking over from a dead ingest hub with no gap and no duplicate.
//!
//! The standby has ingested the same feed all along without publishing,
//! numbering each symbol itself; its numbers need not match the stream's.
//! On taking the lease it must continue every symbol's numbers from the
//! stream's last record, in the stream's epoch (so clients see no `RESET`),
//! publishing only what the stream lacks.
//!
//! The alignment, per symbol: find, among the standby's recent records,
//! the one that is the same event as the stream's last record (equal in
//! everything but the sequence number, the receive stamp, the flags and
//! the conflated count, which are the hub's, not the feed's). What follows
//! it is what the stream lacks; it is published renumbered from the
//! stream's number + 1. Should the same event appear twice in the window,
//! the newest copy is taken (counted in `ambiguous`): at worst that skips
//! what lies between two identical events, where the oldest would publish
//! events again under new numbers.
//!
//! When none matches, the standby cannot tell what the stream lacks (its
//! window is too short, or it missed that event): a gap it cannot fill.
//! It is counted in `unmatched`, logged, and made visible: numbering goes
//! on from the stream's number + 2, so every client sees a gap where one
//! may be; the standby's records with a later event time than the stream's
//! last are published from there.
//!
//! Records are re-sent with message ids `<symbol>:<epoch>:<seq>`: if the
//! old active still has some in flight (a zombie), the stream's duplicate
//! window stores each number once.
//!
//! Pure: no runtime, no bus. The caller (the ingest role) must not number
//! new records between taking the snapshot of its recent records and
//! applying the plan.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use quotehub_proto::{Epoch, Flags, Record, Symbol};

use crate::tail::Tail;

/// How one symbol's numbers were aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    /// The stream's last record (number `stream_seq`) is the standby's
    /// record `own_seq`.
    Matched {
        /// The standby's number of the matching record.
        own_seq: u64,
        /// The stream's number of it.
        stream_seq: u64,
    },
    /// The stream has no record of the symbol in this epoch: numbering
    /// starts at 1 with the standby's window.
    New,
    /// The standby has no record of the symbol: nothing to publish.
    StreamOnly {
        /// The stream's last number.
        stream_seq: u64,
    },
    /// No record of the standby is the stream's last: a gap it cannot fill.
    Unmatched {
        /// The stream's last number.
        stream_seq: u64,
    },
}

/// What to do for one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolTakeover {
    /// How it was aligned.
    pub alignment: Alignment,
    /// Records to publish now, oldest first: the stream's number and the
    /// encoded record carrying it.
    pub publish: Vec<(u64, Bytes)>,
    /// The number the symbol's next new record gets (`u64::MAX` once the
    /// numbers are used up, which only a corrupt stream record can cause).
    pub next_seq: u64,
}

/// The whole takeover: what to publish, and where numbering goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeoverPlan {
    /// The sequence space to publish in (the stream's newest record's, or
    /// the hub's own on an empty stream).
    pub epoch: Epoch,
    /// Every symbol of the stream (in `epoch`) or of the standby.
    pub symbols: BTreeMap<Symbol, SymbolTakeover>,
    /// Symbols whose stream record matched none of the standby's: gaps.
    pub unmatched: u64,
    /// Symbols whose stream record matched more than one of the standby's.
    pub ambiguous: u64,
}

impl TakeoverPlan {
    /// Aligns the standby's `recent` records (per symbol, encoded, oldest
    /// first, consecutively numbered by the standby) with the stream's
    /// `tail`. Publishes in the tail's epoch, or in `own_epoch` when the
    /// stream is empty. Records of the tail in another epoch (an earlier
    /// sequence space) are not continued: their symbols start at 1.
    pub fn new(own_epoch: Epoch, tail: &Tail, recent: &HashMap<Symbol, Vec<Bytes>>) -> Self {
        let epoch = tail.epoch().unwrap_or(own_epoch);
        let mut plan = Self {
            epoch,
            symbols: BTreeMap::new(),
            unmatched: 0,
            ambiguous: 0,
        };
        let in_epoch = |symbol: &Symbol| {
            tail.get(symbol)
                .filter(|record| record.epoch == Some(epoch))
                .and_then(|record| Some((record.seq()?, Record::decode(&record.payload).ok()?.0)))
        };
        for (symbol, records) in recent {
            // Quotes and trades only: they are what carries the numbers.
            let own: Vec<(Record, &Bytes)> = records
                .iter()
                .filter_map(|bytes| Some((Record::decode(bytes).ok()?.0, bytes)))
                .filter(|(record, _)| seq_of(record).is_some())
                .collect();
            let takeover = match in_epoch(symbol) {
                None => renumbered(Alignment::New, &own, Some(1)),
                Some((stream_seq, last)) => {
                    let matches: Vec<usize> = own
                        .iter()
                        .enumerate()
                        .filter(|(_, (record, _))| same_event(record, &last))
                        .map(|(at, _)| at)
                        .collect();
                    if matches.len() > 1 {
                        plan.ambiguous += 1;
                        tracing::warn!(symbol = %symbol.as_str(), copies = matches.len(), "takeover: the stream's last event is in the standby's window more than once; continuing after the newest");
                    }
                    match matches.last() {
                        Some(&at) => renumbered(
                            Alignment::Matched {
                                own_seq: seq_of(&own[at].0).unwrap_or(0),
                                stream_seq,
                            },
                            &own[at + 1..],
                            stream_seq.checked_add(1),
                        ),
                        None if own.is_empty() => SymbolTakeover {
                            alignment: Alignment::StreamOnly { stream_seq },
                            publish: Vec::new(),
                            next_seq: stream_seq.saturating_add(1),
                        },
                        None => {
                            plan.unmatched += 1;
                            tracing::warn!(symbol = %symbol.as_str(), stream_seq, "takeover: the stream's last record is none of the standby's; a gap it cannot fill, left visible");
                            let after = event_ts(&last);
                            let later: Vec<(Record, &Bytes)> = own
                                .iter()
                                .filter(|(record, _)| event_ts(record) > after)
                                .copied()
                                .collect();
                            renumbered(Alignment::Unmatched { stream_seq }, &later, stream_seq.checked_add(2))
                        }
                    }
                }
            };
            plan.symbols.insert(*symbol, takeover);
        }
        for (symbol, _) in tail.iter() {
            if plan.symbols.contains_key(symbol) {
                continue;
            }
            if let Some((stream_seq, _)) = in_epoch(symbol) {
                plan.symbols.insert(
                    *symbol,
                    SymbolTakeover {
                        alignment: Alignment::StreamOnly { stream_seq },
                        publish: Vec::new(),
                        next_seq: stream_seq.saturating_add(1),
                    },
                );
            }
        }
        plan
    }

    /// How many records it publishes.
    pub fn records(&self) -> usize {
        self.symbols.values().map(|symbol| symbol.publish.len()).sum()
    }
}

/// `records` numbered from `first` on.
fn renumbered(alignment: Alignment, records: &[(Record, &Bytes)], first: Option<u64>) -> SymbolTakeover {
    let (publish, next_seq) = numbered(records.iter().map(|(_, bytes)| *bytes), first);
    SymbolTakeover {
        alignment,
        next_seq,
        publish,
    }
}

/// `records` numbered from `first` on (each carrying its number), and the
/// number after them. Numbers do not wrap: a stream number near
/// `u64::MAX` (a corrupt or hostile record) leaves the rest unpublished
/// rather than numbered twice, and the next number is then `u64::MAX`.
pub(crate) fn numbered<'a>(
    records: impl IntoIterator<Item = &'a Bytes>,
    first: Option<u64>,
) -> (Vec<(u64, Bytes)>, u64) {
    let publish: Vec<(u64, Bytes)> = records
        .into_iter()
        .enumerate()
        .map_while(|(at, bytes)| {
            let seq = first?.checked_add(u64::try_from(at).ok()?)?;
            Some((seq, with_seq(bytes, seq)))
        })
        .collect();
    let next = first.map_or(u64::MAX, |first| first.saturating_add(publish.len() as u64));
    (publish, next)
}

/// The record's per-symbol number (quotes and trades share one).
fn seq_of(record: &Record) -> Option<u64> {
    match record {
        Record::Quote(quote) => Some(quote.quote.seq),
        Record::Trade(trade) => Some(trade.trade.seq),
        _ => None,
    }
}

fn event_ts(record: &Record) -> u64 {
    match record {
        Record::Quote(quote) => quote.quote.event_ts,
        Record::Trade(trade) => trade.trade.event_ts,
        _ => 0,
    }
}

/// The encoded record, numbered `seq`: the same bytes otherwise (flags,
/// stamps and any fields this version does not know).
pub(crate) fn with_seq(bytes: &Bytes, seq: u64) -> Bytes {
    let mut out = bytes.to_vec();
    if let Some(&flags) = out.get(3) {
        quotehub_proto::record::restamp(&mut out, Flags(flags), seq);
    }
    Bytes::from(out)
}

/// Whether two records are the same feed event: equal in all but what the
/// hub adds (number, receive stamp, flags, conflated count).
pub fn same_event(a: &Record, b: &Record) -> bool {
    match (a, b) {
        (Record::Quote(a), Record::Quote(b)) => {
            let (a, b) = (&a.quote, &b.quote);
            a.symbol == b.symbol
                && a.bid_price == b.bid_price
                && a.bid_size == b.bid_size
                && a.ask_price == b.ask_price
                && a.ask_size == b.ask_size
                && a.event_ts == b.event_ts
        }
        (Record::Trade(a), Record::Trade(b)) => {
            let (a, b) = (&a.trade, &b.trade);
            a.symbol == b.symbol && a.price == b.price && a.size == b.size && a.event_ts == b.event_ts
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "takeover_tests.rs"]
mod tests;
