//! The alignment without a server: tails and standby windows built by hand.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use bytes::Bytes;
use quotehub_proto::{Epoch, Flags, Quote, QuoteRecord, Record, Symbol, Trade, TradeRecord};

use super::*;
use crate::tail::{Tail, TailRecord};

fn sym(text: &str) -> Symbol {
    Symbol::from_bytes(text.as_bytes()).unwrap()
}

fn stream_epoch() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap()
}

fn own_epoch() -> Epoch {
    Epoch::from_u64(0x0000_0000_0000_0bad).unwrap()
}

/// Feed event `n` of `symbol` as a hub numbered it `seq`, received at
/// `recv` (the hub's stamp); even events are quotes, odd ones trades.
fn event(symbol: &str, n: u64, seq: u64, recv: u64) -> Bytes {
    let event_ts = 1_795_000_000_000_000_000 + n;
    if n.is_multiple_of(2) {
        let quote = Quote {
            symbol: sym(symbol),
            bid_price: "187.25".parse().unwrap(),
            bid_size: 100 + u32::try_from(n).unwrap(),
            ask_price: "187.26".parse().unwrap(),
            ask_size: 200,
            event_ts,
            recv_ts: recv,
            seq,
        };
        Bytes::copy_from_slice(
            &QuoteRecord {
                quote,
                flags: Flags(0),
                conflated: 0,
            }
            .encode(),
        )
    } else {
        let trade = Trade {
            symbol: sym(symbol),
            price: "187.255".parse().unwrap(),
            size: u32::try_from(n).unwrap(),
            event_ts,
            recv_ts: recv,
            seq,
        };
        Bytes::copy_from_slice(
            &TradeRecord {
                trade,
                flags: Flags(0),
                conflated: 0,
            }
            .encode(),
        )
    }
}

/// The standby's window: events `events` of `symbol`, numbered by the
/// standby from `first_own` on, with its own receive stamps.
fn window(symbol: &str, events: std::ops::RangeInclusive<u64>, first_own: u64) -> Vec<Bytes> {
    events
        .zip(first_own..)
        .map(|(n, own)| event(symbol, n, own, 7_000 + n))
        .collect()
}

/// The stream's last record of `symbol`: event `n`, numbered `seq` by the
/// old active (another receive stamp), at stream position `position`.
fn last(symbol: &str, n: u64, seq: u64, epoch: Epoch, position: u64) -> (Symbol, TailRecord) {
    (
        sym(symbol),
        TailRecord {
            stream_sequence: position,
            epoch: Some(epoch),
            payload: event(symbol, n, seq, 9_000 + n),
        },
    )
}

fn seq_in(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[24..32].try_into().unwrap())
}

/// The published numbers, and the feed events they carry (from the size
/// field, which is the event number by construction).
fn published(takeover: &SymbolTakeover) -> Vec<(u64, u64)> {
    takeover
        .publish
        .iter()
        .map(|(seq, bytes)| {
            assert_eq!(*seq, seq_in(bytes), "the number given is the number in the bytes");
            let n = match Record::decode(bytes).unwrap().0 {
                Record::Quote(quote) => u64::from(quote.quote.bid_size - 100),
                Record::Trade(trade) => u64::from(trade.trade.size),
                other => panic!("{other:?}"),
            };
            (*seq, n)
        })
        .collect()
}

#[test]
fn the_standby_continues_after_its_copy_of_the_streams_last_record() {
    // TC0: the old active numbered event 25 as 12; the standby, which
    // started later, numbered events 20..=30 from 3. It publishes events
    // 26..=30 as 13..=17 and numbers the next 18.
    let tail = Tail::from_records([last("AAPL", 25, 12, stream_epoch(), 40)]);
    let recent = HashMap::from([(sym("AAPL"), window("AAPL", 20..=30, 3))]);
    let plan = TakeoverPlan::new(own_epoch(), &tail, &recent);
    assert_eq!(plan.epoch, stream_epoch());
    assert_eq!((plan.unmatched, plan.ambiguous), (0, 0));
    let aapl = &plan.symbols[&sym("AAPL")];
    assert_eq!(
        aapl.alignment,
        Alignment::Matched {
            own_seq: 8,
            stream_seq: 12
        }
    );
    assert_eq!(published(aapl), [(13, 26), (14, 27), (15, 28), (16, 29), (17, 30)]);
    assert_eq!(aapl.next_seq, 18);
    // Only the number changed: the standby's stamps and flags stay.
    let own = &recent[&sym("AAPL")][6];
    let (sent, kept) = (&aapl.publish[0].1, own);
    assert_eq!(sent.len(), kept.len());
    assert_eq!(sent[..24], kept[..24]);
    assert_eq!(sent[32..], kept[32..]);
    assert_eq!(plan.records(), 5);
}

#[test]
fn each_case_of_alignment() {
    let tail = Tail::from_records([
        // TC1: the stream has the standby's newest event: nothing to send.
        last("MSFT", 9, 50, stream_epoch(), 10),
        // TC2: the standby never saw this symbol.
        last("IBM", 4, 4, stream_epoch(), 11),
        // TC3: the stream's last event is not in the standby's window
        // (event 3; the window holds 6..=9): a gap it cannot fill.
        last("BRK.B", 3, 3, stream_epoch(), 12),
        // TC4: a symbol last written in an earlier sequence space.
        last("ZVZZT", 5, 5, own_epoch(), 1),
    ]);
    let recent = HashMap::from([
        (sym("MSFT"), window("MSFT", 1..=9, 1)),
        (sym("BRK.B"), window("BRK.B", 6..=9, 1)),
        (sym("ZVZZT"), window("ZVZZT", 5..=6, 1)),
        // TC5: not in the stream at all: from 1.
        (sym("AA-"), window("AA-", 1..=2, 1)),
    ]);
    let plan = TakeoverPlan::new(own_epoch(), &tail, &recent);
    assert_eq!(plan.epoch, stream_epoch(), "the newest record's epoch");
    assert_eq!((plan.unmatched, plan.ambiguous), (1, 0));

    let msft = &plan.symbols[&sym("MSFT")];
    assert_eq!(
        msft.alignment,
        Alignment::Matched {
            own_seq: 9,
            stream_seq: 50
        }
    );
    assert!(msft.publish.is_empty());
    assert_eq!(msft.next_seq, 51);

    let ibm = &plan.symbols[&sym("IBM")];
    assert_eq!(ibm.alignment, Alignment::StreamOnly { stream_seq: 4 });
    assert!(ibm.publish.is_empty());
    assert_eq!(ibm.next_seq, 5);

    let brk = &plan.symbols[&sym("BRK.B")];
    assert_eq!(brk.alignment, Alignment::Unmatched { stream_seq: 3 });
    assert_eq!(
        published(brk),
        [(5, 6), (6, 7), (7, 8), (8, 9)],
        "4 is skipped: the gap shows"
    );
    assert_eq!(brk.next_seq, 9);

    let zvzzt = &plan.symbols[&sym("ZVZZT")];
    assert_eq!(zvzzt.alignment, Alignment::New);
    assert_eq!(published(zvzzt), [(1, 5), (2, 6)]);

    let aa = &plan.symbols[&sym("AA-")];
    assert_eq!(aa.alignment, Alignment::New);
    assert_eq!(published(aa), [(1, 1), (2, 2)]);
    assert_eq!(aa.next_seq, 3);
    assert_eq!(plan.symbols.len(), 5);
}

#[test]
fn an_unmatched_symbol_publishes_only_events_after_the_streams_last() {
    // The standby lags: the stream's last event (8) is newer than all it
    // has (1..=5). Publishing those would repeat old events as new.
    let tail = Tail::from_records([last("AAPL", 8, 8, stream_epoch(), 8)]);
    let recent = HashMap::from([(sym("AAPL"), window("AAPL", 1..=5, 1))]);
    let plan = TakeoverPlan::new(own_epoch(), &tail, &recent);
    let aapl = &plan.symbols[&sym("AAPL")];
    assert_eq!(aapl.alignment, Alignment::Unmatched { stream_seq: 8 });
    assert!(aapl.publish.is_empty());
    assert_eq!(aapl.next_seq, 10);
    assert_eq!(plan.unmatched, 1);
}

#[test]
fn the_same_event_twice_continues_after_the_newest_copy() {
    // Events 2..=4 then event 3 again (a feed repeat): the stream's last is
    // event 3; the standby continues after the second copy.
    let mut own = window("AAPL", 2..=4, 1);
    own.push(event("AAPL", 3, 4, 1));
    own.push(event("AAPL", 6, 5, 1));
    let tail = Tail::from_records([last("AAPL", 3, 30, stream_epoch(), 1)]);
    let plan = TakeoverPlan::new(own_epoch(), &tail, &HashMap::from([(sym("AAPL"), own)]));
    let aapl = &plan.symbols[&sym("AAPL")];
    assert_eq!(
        aapl.alignment,
        Alignment::Matched {
            own_seq: 4,
            stream_seq: 30
        }
    );
    assert_eq!(published(aapl), [(31, 6)]);
    assert_eq!(plan.ambiguous, 1);
}

#[test]
fn an_empty_stream_starts_the_hubs_own_space() {
    let recent = HashMap::from([(sym("AAPL"), window("AAPL", 1..=3, 1))]);
    let plan = TakeoverPlan::new(own_epoch(), &Tail::default(), &recent);
    assert_eq!(plan.epoch, own_epoch());
    assert_eq!(published(&plan.symbols[&sym("AAPL")]), [(1, 1), (2, 2), (3, 3)]);
}

#[test]
fn the_same_event_ignores_what_the_hub_adds_and_nothing_else() {
    let decode = |bytes: &Bytes| Record::decode(bytes).unwrap().0;
    let base = decode(&event("AAPL", 4, 1, 10));
    // Another number, receive stamp, flags, conflated count: same event.
    let Record::Quote(mut other) = decode(&event("AAPL", 4, 99, 20)) else {
        panic!()
    };
    other.flags = Flags(0x07);
    other.conflated = 3;
    assert!(same_event(&base, &Record::Quote(other)));
    // Any feed field differing: another event.
    let Record::Quote(quote) = base else { panic!() };
    type Change = fn(&mut QuoteRecord);
    let changes: [(&str, Change); 6] = [
        ("event_ts", |q| q.quote.event_ts += 1),
        ("bid_price", |q| q.quote.bid_price = "1".parse().unwrap()),
        ("ask_price", |q| q.quote.ask_price = "1".parse().unwrap()),
        ("bid_size", |q| q.quote.bid_size += 1),
        ("ask_size", |q| q.quote.ask_size += 1),
        ("symbol", |q| q.quote.symbol = sym("MSFT")),
    ];
    for (field, change) in changes {
        let mut changed = quote;
        change(&mut changed);
        assert!(!same_event(&base, &Record::Quote(changed)), "{field}");
    }
    // A trade is never the same event as a quote.
    assert!(!same_event(&base, &decode(&event("AAPL", 5, 1, 10))));
    assert!(same_event(
        &decode(&event("AAPL", 5, 1, 10)),
        &decode(&event("AAPL", 5, 2, 11))
    ));
}

#[test]
fn a_stream_number_at_the_top_of_u64_does_not_wrap_or_panic() {
    for top in [u64::MAX, u64::MAX - 1] {
        let tail = Tail::from_records([
            last("AAPL", 2, top, stream_epoch(), 1),
            last("MSFT", 1, top, stream_epoch(), 2),
        ]);
        let recent = HashMap::from([
            (sym("AAPL"), window("AAPL", 1..=5, 1)),
            (sym("MSFT"), window("MSFT", 5..=6, 1)),
        ]);
        let plan = TakeoverPlan::new(own_epoch(), &tail, &recent);
        for takeover in plan.symbols.values() {
            let seqs: Vec<u64> = takeover.publish.iter().map(|(seq, _)| *seq).collect();
            assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
            assert!(seqs.iter().all(|&seq| seq > top), "{seqs:?}");
            assert_eq!(takeover.next_seq, u64::MAX, "no number left");
        }
    }
}
