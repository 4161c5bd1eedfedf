//! Channel sets per symbol under concurrent publishers: `"*"` widened and
//! narrowed by channel while the same client holds some symbols by name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quotehub_proto::{Channels, Event, Flags, Quote, QuoteRecord, Record, Trade, TradeRecord};

use super::tests::{Inbox, sym};
use super::*;

fn encode(event: &Event) -> Bytes {
    match event {
        Event::Quote(quote) => Bytes::copy_from_slice(
            &QuoteRecord {
                quote: *quote,
                flags: Flags::default(),
                conflated: 0,
            }
            .encode(),
        ),
        Event::Trade(trade) => Bytes::copy_from_slice(
            &TradeRecord {
                trade: *trade,
                flags: Flags::default(),
                conflated: 0,
            }
            .encode(),
        ),
        _ => unreachable!("quotes and trades only"),
    }
}

fn event(symbol: Symbol, trade: bool) -> Event {
    if trade {
        Event::Trade(Trade {
            symbol,
            price: "10.01".parse().unwrap(),
            size: 1,
            event_ts: 1,
            recv_ts: 2,
            seq: 0,
        })
    } else {
        Event::Quote(Quote {
            symbol,
            bid_price: "10.01".parse().unwrap(),
            bid_size: 1,
            ask_price: "10.02".parse().unwrap(),
            ask_size: 1,
            event_ts: 1,
            recv_ts: 2,
            seq: 0,
        })
    }
}

/// (symbol, seq, is a trade, is a snapshot) of a received record.
fn key(bytes: &Bytes) -> (String, u64, bool, bool) {
    match Record::decode(bytes).unwrap().0 {
        Record::Quote(r) => (
            r.quote.symbol.to_string(),
            r.quote.seq,
            false,
            r.flags.contains(Flags::SNAPSHOT),
        ),
        Record::Trade(r) => (r.trade.symbol.to_string(), r.trade.seq, true, false),
        other => panic!("{other:?}"),
    }
}

/// A client holds every third symbol by name with `quotes`, and `"*"` with
/// `trades`, then widens `"*"` to quotes and trades and narrows it back,
/// over and over, while two threads publish quotes and trades. Named
/// symbols hold both channels all along (by name or through `"*"`): they
/// must get every record once, in order. The others get every trade once,
/// quotes only while `"*"` holds them, and nothing twice.
#[test]
fn widening_and_narrowing_wildcard_channels_lose_and_repeat_nothing() {
    const SYMBOLS: usize = 120;
    const TOGGLES: usize = 30;
    let table = Arc::new(Table::<Inbox>::new());
    let names: Arc<Vec<String>> = Arc::new((0..SYMBOLS).map(|i| format!("C{i}")).collect());
    for name in names.iter() {
        table.publish(&mut event(sym(name), false), encode);
    }
    let named: HashMap<Symbol, Channels> = names
        .iter()
        .step_by(3)
        .map(|name| (sym(name), Channels::QUOTES))
        .collect();
    let inbox = Inbox::new(1);
    for symbol in named.keys() {
        table.hold(
            *symbol,
            &inbox,
            Channels::QUOTES,
            Start::Snapshot,
            Channels::QUOTES,
            |r| inbox.push(r),
        );
    }
    let entries = |wildcard: Channels| {
        let named = named.clone();
        move |symbol: Symbol| named.get(&symbol).map(|held| held.without(wildcard))
    };
    table.widen_all(
        &inbox,
        Channels::TRADES,
        entries(Channels::TRADES),
        |_| (Start::Snapshot, Channels::TRADES),
        |r| inbox.push(r),
    );
    let first_live = inbox.got.lock().unwrap().len();

    let done = Arc::new(AtomicBool::new(false));
    // (symbol, seq) of every trade published, per thread.
    let trades: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let publishers: Vec<_> = (0..2)
        .map(|thread| {
            let (table, names, done, trades) = (
                Arc::clone(&table),
                Arc::clone(&names),
                Arc::clone(&done),
                Arc::clone(&trades),
            );
            std::thread::spawn(move || {
                // Each thread its own symbols, so one symbol's records reach
                // the inbox in sequence order.
                let mut at = thread;
                let mut turn = 0u64;
                while !done.load(Ordering::Acquire) {
                    at = (at + 2) % SYMBOLS;
                    turn += 1;
                    let is_trade = !turn.is_multiple_of(3);
                    let fanout = table.publish(&mut event(sym(&names[at]), is_trade), encode);
                    for recipient in fanout.recipients() {
                        recipient.push(fanout.record.clone());
                    }
                    if is_trade {
                        trades.lock().unwrap().push((names[at].clone(), fanout.seq));
                    }
                }
            })
        })
        .collect();
    for _ in 0..TOGGLES {
        let (before, after) = (Channels::TRADES, Channels::DEFAULT);
        table.widen_all(
            &inbox,
            after,
            entries(after),
            |symbol| {
                let held = named.get(&symbol).copied().unwrap_or_default().with(before);
                (Start::Snapshot, after.without(held))
            },
            |r| inbox.push(r),
        );
        std::thread::yield_now();
        table.narrow_all(
            &inbox,
            before,
            named.iter().map(|(symbol, held)| (*symbol, held.without(before))),
        );
        std::thread::yield_now();
    }
    done.store(true, Ordering::Release);
    for publisher in publishers {
        publisher.join().unwrap();
    }

    let got: Vec<(String, u64, bool, bool)> = inbox.got.lock().unwrap()[first_live..].iter().map(key).collect();
    let trades = trades.lock().unwrap();
    assert!(trades.len() > 100, "the publishers ran");
    for name in names.iter() {
        let live: Vec<(u64, bool)> = got
            .iter()
            .filter(|(symbol, _, _, snapshot)| symbol == name && !snapshot)
            .map(|&(_, seq, trade, _)| (seq, trade))
            .collect();
        let seqs: Vec<u64> = live.iter().map(|(seq, _)| *seq).collect();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "{name}: a duplicate or out of order: {seqs:?}"
        );
        if named.contains_key(&sym(name)) {
            // Every record after the symbol's first one (its quote at 1).
            let last = seqs.last().copied().unwrap_or(1);
            assert_eq!(seqs, (2..=last).collect::<Vec<_>>(), "{name}: a gap in a named symbol");
        }
        let published: Vec<u64> = trades
            .iter()
            .filter(|(symbol, _)| symbol == name)
            .map(|(_, seq)| *seq)
            .collect();
        let received: Vec<u64> = live.iter().filter(|(_, trade)| *trade).map(|(seq, _)| *seq).collect();
        assert_eq!(received, published, "{name}: every trade once");
    }
    assert!(
        got.iter().any(|(_, _, trade, _)| !trade),
        "quotes came while \"*\" held them"
    );
}
