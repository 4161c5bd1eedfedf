//! Taking over the derived channels (bars, BBO) from a dead ingest hub with
//! no gap and no duplicate: each symbol's `bars.1s`, `bars.1m` and `bbo`
//! are numbered in sequences of their own, so each is aligned on its own,
//! with the stream of derived records' last record of that channel.
//!
//! As for quotes and trades ([`crate::TakeoverPlan`]), the standby looks
//! for the stream's last record among its own recent ones of the channel
//! (the same bar or book: equal in all but the sequence number, the receive
//! stamp, the flags and the conflated count) and publishes what follows it,
//! numbered from the stream's number + 1.
//!
//! What differs is a standby that has not derived that record *yet*: bars
//! close, and books change, on events, so a standby a little behind the
//! dead hub derives it a moment later. Its records are identified by their
//! event time (a bar's `start_ts`, a book's `event_ts`), which only grows
//! within a channel between two passes of a replay: the standby then skips
//! its records up to the stream's last one's event time and numbers the
//! first later one `n + 1` ([`DerivedTakeover::after_ts`]). Only a standby
//! that holds later records and not the stream's last one (its window is
//! too short) cannot tell what the stream lacks: it publishes those later
//! ones from `n + 2`, a gap clients see, counted as unmatched. So does a
//! standby that started after the stream's last record was made (by its
//! receive stamp): events may have come meanwhile that nobody derived.
//!
//! Pure: no runtime, no bus.

use std::collections::HashMap;

use bytes::Bytes;
use quotehub_proto::bar::Bar;
use quotehub_proto::bbo::Bbo;
use quotehub_proto::{Channels, Epoch, Record, Symbol};

use crate::tail::DerivedTail;
use crate::takeover::numbered;

/// How one derived channel of one symbol was aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedAlignment {
    /// The stream's last record (number `stream_seq`) is one of the
    /// standby's: what follows it is published.
    Matched {
        /// The stream's number of it.
        stream_seq: u64,
    },
    /// The stream has no record of the channel in the epoch: numbering
    /// starts at 1 with the standby's window.
    New,
    /// The standby has no record later than the stream's last: it goes on
    /// after it, skipping its own records up to that one's event time.
    Behind {
        /// The stream's last number.
        stream_seq: u64,
    },
    /// A gap the standby cannot fill, left visible (a skipped number).
    Unmatched {
        /// The stream's last number.
        stream_seq: u64,
    },
}

/// What to do for one derived channel of one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedTakeover {
    /// How it was aligned.
    pub alignment: DerivedAlignment,
    /// Records to publish now, oldest first: the stream's number and the
    /// encoded record carrying it.
    pub publish: Vec<(u64, Bytes)>,
    /// The number the channel's next new record gets (`u64::MAX` once the
    /// numbers are used up, which only a corrupt stream record can cause).
    pub next_seq: u64,
    /// New records at or before this event time are the stream's already
    /// (the standby is behind it): not published, until one later is.
    pub after_ts: Option<u64>,
}

/// Every derived channel's takeover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DerivedPlan {
    /// By symbol and channel.
    pub channels: HashMap<(Symbol, Channels), DerivedTakeover>,
    /// Channels whose stream record the standby could not align: gaps.
    pub unmatched: u64,
}

/// A derived record as an event: what the feed's events decide, not what
/// the hub adds (number, receive stamp, flags, conflated count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derived {
    Bar(Bar),
    Bbo(Bbo),
}

impl Derived {
    /// The record's event (`None` for anything but a bar or BBO), its
    /// number and its receive stamp.
    fn decode(bytes: &[u8]) -> Option<(Self, u64, u64)> {
        match Record::decode(bytes).ok()?.0 {
            Record::Bar(record) => {
                let (seq, recv_ts) = (record.bar.seq, record.bar.recv_ts);
                let bar = Bar {
                    seq: 0,
                    recv_ts: 0,
                    ..record.bar
                };
                Some((Self::Bar(bar), seq, recv_ts))
            }
            Record::Bbo(record) => {
                let (seq, recv_ts) = (record.bbo.seq, record.bbo.recv_ts);
                let bbo = Bbo {
                    seq: 0,
                    recv_ts: 0,
                    ..record.bbo
                };
                Some((Self::Bbo(bbo), seq, recv_ts))
            }
            _ => None,
        }
    }

    /// The event time that orders a channel's records.
    fn event_ts(&self) -> u64 {
        match self {
            Self::Bar(bar) => bar.start_ts,
            Self::Bbo(bbo) => bbo.event_ts,
        }
    }
}

impl DerivedPlan {
    /// Aligns the standby's `recent` derived records (per symbol and
    /// channel, encoded, oldest first) with the stream's derived `tail`, in
    /// sequence space `epoch` (the records' plan's): a tail record of
    /// another epoch is not continued. `started_ns` is when the standby
    /// began ingesting.
    pub fn new(
        epoch: Epoch,
        tail: &DerivedTail,
        recent: &HashMap<(Symbol, Channels), Vec<Bytes>>,
        started_ns: u64,
    ) -> Self {
        let mut plan = Self::default();
        let in_epoch = |key: (Symbol, Channels)| {
            tail.get(key.0, key.1)
                .filter(|record| record.epoch == Some(epoch))
                .and_then(|record| Derived::decode(&record.payload))
        };
        for (&key, records) in recent {
            let own: Vec<(Derived, &Bytes)> = records
                .iter()
                .filter_map(|bytes| Some((Derived::decode(bytes)?.0, bytes)))
                .collect();
            let takeover = match in_epoch(key) {
                None => renumbered(DerivedAlignment::New, &own, Some(1)),
                Some((last, stream_seq, received)) => {
                    let newest_match = own.iter().rposition(|(event, _)| *event == last);
                    let later: Vec<(Derived, &Bytes)> = own
                        .iter()
                        .filter(|(event, _)| event.event_ts() > last.event_ts())
                        .copied()
                        .collect();
                    match newest_match {
                        Some(at) => renumbered(
                            DerivedAlignment::Matched { stream_seq },
                            &own[at + 1..],
                            stream_seq.checked_add(1),
                        ),
                        None if later.is_empty() && received >= started_ns => DerivedTakeover {
                            after_ts: Some(last.event_ts()),
                            ..renumbered(DerivedAlignment::Behind { stream_seq }, &[], stream_seq.checked_add(1))
                        },
                        None => {
                            plan.unmatched += 1;
                            tracing::warn!(symbol = %key.0.as_str(), channel = ?key.1.names(), stream_seq, "takeover: the stream's last derived record is none of the standby's; a gap it cannot fill, left visible");
                            DerivedTakeover {
                                after_ts: Some(last.event_ts()),
                                ..renumbered(
                                    DerivedAlignment::Unmatched { stream_seq },
                                    &later,
                                    stream_seq.checked_add(2),
                                )
                            }
                        }
                    }
                }
            };
            plan.channels.insert(key, takeover);
        }
        for (&key, _) in tail.iter() {
            if plan.channels.contains_key(&key) {
                continue;
            }
            let Some((last, stream_seq, received)) = in_epoch(key) else {
                continue;
            };
            // The standby derived nothing of this channel (yet).
            let takeover = if received >= started_ns {
                renumbered(DerivedAlignment::Behind { stream_seq }, &[], stream_seq.checked_add(1))
            } else {
                plan.unmatched += 1;
                renumbered(
                    DerivedAlignment::Unmatched { stream_seq },
                    &[],
                    stream_seq.checked_add(2),
                )
            };
            plan.channels.insert(
                key,
                DerivedTakeover {
                    after_ts: Some(last.event_ts()),
                    ..takeover
                },
            );
        }
        plan
    }

    /// How many records it publishes.
    pub fn records(&self) -> usize {
        self.channels.values().map(|channel| channel.publish.len()).sum()
    }
}

/// `records` numbered from `first` on (numbers do not wrap: see
/// `takeover::numbered`).
fn renumbered(alignment: DerivedAlignment, records: &[(Derived, &Bytes)], first: Option<u64>) -> DerivedTakeover {
    let (publish, next_seq) = numbered(records.iter().map(|(_, bytes)| *bytes), first);
    DerivedTakeover {
        alignment,
        next_seq,
        publish,
        after_ts: None,
    }
}

/// The event time that orders a derived record in its channel (`None` for
/// anything but a bar or BBO): what [`DerivedTakeover::after_ts`] is
/// compared with.
pub fn event_ts(bytes: &[u8]) -> Option<u64> {
    Derived::decode(bytes).map(|(event, _, _)| event.event_ts())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use quotehub_proto::bar::{BarInterval, BarRecord};
    use quotehub_proto::{Flags, Price};

    use super::*;
    use crate::tail::TailRecord;

    const S: u64 = 1_000_000_000;

    fn symbol() -> Symbol {
        Symbol::from_bytes(b"BF.B").unwrap()
    }

    fn epoch() -> Epoch {
        Epoch::from_u64(0xe).unwrap()
    }

    /// The standby's 1 s bar of second `second`, numbered `seq`, closed at
    /// `recv_ts`; its price tells bars of one second apart.
    fn bar(second: u64, seq: u64, recv_ts: u64, price: &str) -> Bytes {
        let price: Price = price.parse().unwrap();
        let record = BarRecord {
            bar: Bar {
                symbol: symbol(),
                interval: BarInterval::SECOND,
                start_ts: second * S,
                recv_ts,
                open: price,
                high: price,
                low: price,
                close: price,
                vwap: price,
                volume: 100,
                trade_count: 1,
                seq,
            },
            flags: Flags::REPLAYED,
            conflated: 0,
        };
        Bytes::from(record.encode().to_vec())
    }

    fn tail(record: Bytes, epoch: Epoch) -> DerivedTail {
        DerivedTail::from_records([(
            (symbol(), Channels::BARS_1S),
            TailRecord {
                stream_sequence: 40,
                epoch: Some(epoch),
                payload: record,
            },
        )])
    }

    fn recent(records: Vec<Bytes>) -> HashMap<(Symbol, Channels), Vec<Bytes>> {
        HashMap::from([((symbol(), Channels::BARS_1S), records)])
    }

    fn seqs_and_seconds(takeover: &DerivedTakeover) -> Vec<(u64, u64)> {
        takeover
            .publish
            .iter()
            .map(|(seq, bytes)| {
                let Record::Bar(record) = Record::decode(bytes).unwrap().0 else {
                    unreachable!()
                };
                assert_eq!(record.bar.seq, *seq, "the bytes carry the number");
                (*seq, record.bar.start_ts / S)
            })
            .collect()
    }

    #[test]
    fn each_channel_goes_on_after_the_streams_last_record_without_gap_or_duplicate() {
        let key = (symbol(), Channels::BARS_1S);
        let own = || vec![bar(10, 3, 900, "1"), bar(11, 4, 901, "2"), bar(12, 5, 902, "3")];
        // TC0: the stream's last (numbered 7 there, closed at another time
        // by the dead hub) is the standby's second 11: 12 goes out as 8.
        let plan = DerivedPlan::new(epoch(), &tail(bar(11, 7, 5_000, "2"), epoch()), &recent(own()), 100);
        let takeover = &plan.channels[&key];
        assert_eq!(takeover.alignment, DerivedAlignment::Matched { stream_seq: 7 });
        assert_eq!(seqs_and_seconds(takeover), [(8, 12)]);
        assert_eq!((takeover.next_seq, takeover.after_ts, plan.unmatched), (9, None, 0));

        // TC1: the standby is behind (the stream has second 13): nothing
        // now, its records up to 13 are skipped, the next is 8.
        let plan = DerivedPlan::new(epoch(), &tail(bar(13, 7, 5_000, "4"), epoch()), &recent(own()), 100);
        let takeover = &plan.channels[&key];
        assert_eq!(takeover.alignment, DerivedAlignment::Behind { stream_seq: 7 });
        assert_eq!((takeover.publish.len(), takeover.next_seq), (0, 8));
        assert_eq!((takeover.after_ts, plan.unmatched), (Some(13 * S), 0));

        // TC2: the standby has later bars but not the stream's last one
        // (another bar of second 11): they go out after a visible gap.
        let plan = DerivedPlan::new(epoch(), &tail(bar(11, 7, 5_000, "9"), epoch()), &recent(own()), 100);
        let takeover = &plan.channels[&key];
        assert_eq!(takeover.alignment, DerivedAlignment::Unmatched { stream_seq: 7 });
        assert_eq!(seqs_and_seconds(takeover), [(9, 12)]);
        assert_eq!((takeover.next_seq, plan.unmatched), (10, 1));

        // TC3: a stream record of another epoch is not continued: from 1.
        let other = Epoch::from_u64(0xf).unwrap();
        let plan = DerivedPlan::new(epoch(), &tail(bar(11, 7, 5_000, "2"), other), &recent(own()), 100);
        let takeover = &plan.channels[&key];
        assert_eq!(takeover.alignment, DerivedAlignment::New);
        assert_eq!(seqs_and_seconds(takeover), [(1, 10), (2, 11), (3, 12)]);

        // TC4: a channel only the stream has: after it, if the standby was
        // ingesting when it was made; else after a visible gap.
        let nothing = HashMap::new();
        let plan = DerivedPlan::new(epoch(), &tail(bar(11, 7, 5_000, "2"), epoch()), &nothing, 100);
        assert_eq!(plan.channels[&key].next_seq, 8);
        assert_eq!((plan.channels[&key].after_ts, plan.unmatched), (Some(11 * S), 0));
        let plan = DerivedPlan::new(epoch(), &tail(bar(11, 7, 50, "2"), epoch()), &nothing, 100);
        assert_eq!((plan.channels[&key].next_seq, plan.unmatched), (9, 1));
    }
}
