use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quotehub_proto::record::QUOTE_LEN;
use quotehub_proto::{Event, Flags, Quote, QuoteRecord, Symbol};

use super::*;

/// A subscriber that records what reaches it, in order.
#[derive(Clone)]
pub(crate) struct Inbox {
    id: u64,
    pub(crate) got: Arc<Mutex<Vec<Bytes>>>,
}

impl Inbox {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            got: Arc::default(),
        }
    }
    pub(crate) fn push(&self, record: Bytes) {
        self.got.lock().unwrap().push(record);
    }
    /// (symbol, seq, snapshot?) of every record received.
    pub(crate) fn seen(&self) -> Vec<(String, u64, bool)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|bytes| {
                let record = QuoteRecord::decode(bytes[..QUOTE_LEN].try_into().unwrap()).unwrap();
                (
                    record.quote.symbol.to_string(),
                    record.quote.seq,
                    record.flags.contains(Flags::SNAPSHOT),
                )
            })
            .collect()
    }
}

impl Subscriber for Inbox {
    fn subscriber_id(&self) -> u64 {
        self.id
    }
}

pub(crate) fn sym(text: &str) -> Symbol {
    text.parse().unwrap()
}

pub(crate) fn quote(symbol: Symbol) -> Event {
    Event::Quote(Quote {
        symbol,
        bid_price: "10.01".parse().unwrap(),
        bid_size: 100,
        ask_price: "10.02".parse().unwrap(),
        ask_size: 100,
        event_ts: 1,
        recv_ts: 2,
        seq: 0,
    })
}

fn encode(event: &Event) -> Bytes {
    match event {
        Event::Quote(quote) => Bytes::copy_from_slice(
            &QuoteRecord {
                quote: *quote,
                flags: Flags::REPLAYED,
                conflated: 0,
            }
            .encode(),
        ),
        _ => unreachable!("tests publish quotes"),
    }
}

/// Publishes one quote and delivers it, as the server's fan-out does.
fn publish(table: &Table<Inbox>, symbol: &str) -> u64 {
    let fanout = table.publish(&mut quote(sym(symbol)), encode);
    for recipient in fanout.recipients() {
        recipient.push(fanout.record.clone());
    }
    fanout.seq
}

fn subscribe(table: &Table<Inbox>, inbox: &Inbox, symbol: &str) {
    table.subscribe(sym(symbol), inbox, Start::Snapshot, |snapshot| inbox.push(snapshot));
}

#[test]
fn snapshot_then_live_with_sequence_continuing() {
    let table = Table::new();
    publish(&table, "AAPL");
    publish(&table, "AAPL");
    let inbox = Inbox::new(1);
    subscribe(&table, &inbox, "AAPL");
    publish(&table, "AAPL");
    publish(&table, "MSFT");
    assert_eq!(inbox.seen(), vec![("AAPL".into(), 2, true), ("AAPL".into(), 3, false)]);
    // The snapshot keeps the record's other flags.
    let first = inbox.got.lock().unwrap()[0].clone();
    assert_eq!(Flags(first[3]), Flags::SNAPSHOT.with(Flags::REPLAYED));
}

#[test]
fn unknown_symbol_has_no_snapshot_and_first_live_is_seq_one() {
    let table = Table::new();
    let inbox = Inbox::new(1);
    subscribe(&table, &inbox, "ZVZZT");
    publish(&table, "ZVZZT");
    assert_eq!(inbox.seen(), vec![("ZVZZT".into(), 1, false)]);
}

#[test]
fn duplicate_subscribe_neither_duplicates_nor_resnapshots() {
    let table = Table::new();
    publish(&table, "AAPL");
    let inbox = Inbox::new(1);
    subscribe(&table, &inbox, "AAPL");
    subscribe(&table, &inbox, "AAPL");
    publish(&table, "AAPL");
    assert_eq!(inbox.seen(), vec![("AAPL".into(), 1, true), ("AAPL".into(), 2, false)]);
    assert_eq!(table.subscriber_count(sym("AAPL")), 1);
}

#[test]
fn unsubscribe_stops_delivery() {
    let table = Table::new();
    let inbox = Inbox::new(1);
    subscribe(&table, &inbox, "AAPL");
    publish(&table, "AAPL");
    table.unsubscribe(sym("AAPL"), 1);
    publish(&table, "AAPL");
    assert_eq!(inbox.seen(), vec![("AAPL".into(), 1, false)]);
    assert_eq!(table.subscriber_count(sym("AAPL")), 0);
}

#[test]
fn wildcard_gets_snapshots_of_all_then_everything_once() {
    let table = Table::new();
    publish(&table, "AAPL");
    publish(&table, "MSFT");
    let inbox = Inbox::new(7);
    subscribe(&table, &inbox, "AAPL");
    inbox.got.lock().unwrap().clear();
    table.subscribe_all(
        &inbox,
        |symbol| symbol == sym("AAPL"),
        |_| Start::Snapshot,
        |snapshot| inbox.push(snapshot),
    );
    publish(&table, "AAPL");
    publish(&table, "NEWCO");
    assert_eq!(
        inbox.seen(),
        vec![
            ("AAPL".into(), 1, true),
            ("MSFT".into(), 1, true),
            ("AAPL".into(), 2, false),
            ("NEWCO".into(), 1, false)
        ]
    );
    assert_eq!(table.wildcard_count(), 1);
}

#[test]
fn leaving_wildcard_keeps_named_symbols_flowing() {
    let table = Table::new();
    let inbox = Inbox::new(3);
    table.subscribe_all(&inbox, |_| false, |_| Start::Snapshot, |snapshot| inbox.push(snapshot));
    table.unsubscribe_all(&inbox, [sym("MSFT")]);
    publish(&table, "AAPL");
    publish(&table, "MSFT");
    assert_eq!(inbox.seen(), vec![("MSFT".into(), 1, false)]);
    assert_eq!(table.wildcard_count(), 0);
}

#[test]
fn remove_takes_a_subscriber_out_of_everything() {
    let table = Table::new();
    let inbox = Inbox::new(9);
    subscribe(&table, &inbox, "AAPL");
    table.subscribe_all(&inbox, |symbol| symbol == sym("AAPL"), |_| Start::Snapshot, |_| {});
    table.remove(9, [sym("AAPL")]);
    publish(&table, "AAPL");
    assert!(inbox.seen().is_empty());
    assert_eq!((table.wildcard_count(), table.subscriber_count(sym("AAPL"))), (0, 0));
}

#[test]
fn a_publish_carries_the_wildcard_list_only_while_someone_holds_it() {
    let table = Table::new();
    let inbox = Inbox::new(4);
    let wildcard_of = |table: &Table<Inbox>| table.publish(&mut quote(sym("AAPL")), encode).wildcard;
    assert!(wildcard_of(&table).is_none(), "nobody on \"*\"");
    for round in 0..2 {
        table.subscribe_all(&inbox, |_| false, |_| Start::Snapshot, |_| {});
        let list = wildcard_of(&table).expect("a \"*\" subscriber");
        assert_eq!(list.len(), 1, "round {round}");
        if round == 0 {
            table.remove(4, []);
        } else {
            table.unsubscribe_all(&inbox, []);
        }
        assert!(wildcard_of(&table).is_none(), "round {round}: the last one left");
    }
}

/// The central promise under concurrency: while one thread publishes, another
/// subscribes and unsubscribes over and over; every subscription sees a
/// snapshot (or nothing yet) and then sequence numbers rising by exactly one.
#[test]
fn concurrent_subscribers_never_see_a_gap_or_duplicate() {
    let table = Arc::new(Table::<Inbox>::new());
    publish(&table, "AAPL");
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (table, done) = (Arc::clone(&table), Arc::clone(&done));
        std::thread::spawn(move || {
            for _ in 0..200_000 {
                publish(&table, "AAPL");
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut checked = 0;
    let mut with_live = 0;
    let mut id = 100;
    while !done.load(Ordering::Acquire) || checked == 0 {
        id += 1;
        let inbox = Inbox::new(id);
        subscribe(&table, &inbox, "AAPL");
        for _ in 0..500 {
            std::hint::spin_loop();
        }
        table.unsubscribe(sym("AAPL"), id);
        let seen = inbox.seen();
        let Some(((_, first, snapshot), rest)) = seen.split_first() else {
            continue;
        };
        assert!(*snapshot, "subscription {id} began with a live record: {seen:?}");
        for (offset, (_, seq, snapshot)) in rest.iter().enumerate() {
            assert!(!snapshot);
            assert_eq!(*seq, first + 1 + offset as u64, "gap or duplicate in subscription {id}");
        }
        checked += 1;
        with_live += usize::from(!rest.is_empty());
    }
    publisher.join().unwrap();
    assert!(
        checked > 0 && with_live > 0,
        "the race was not exercised: {checked} checked, {with_live} with live"
    );
}

/// Symbols newer than the lookup index are found in the map behind it, by
/// every operation; enough such lookups rebuild the index with every symbol,
/// and nothing changes for the symbols' subscribers when they move over.
#[test]
fn symbols_newer_than_the_index_work_and_the_index_catches_up() {
    let table = Table::new();
    let inbox = Inbox::new(1);
    subscribe(&table, &inbox, "AAPL");
    publish(&table, "AAPL");
    assert_eq!(table.index.load().len(), 0, "no lookup has missed enough yet");
    assert!(table.is_known(sym("AAPL")) && !table.is_known(sym("MSFT")));
    assert_eq!(table.subscriber_count(sym("AAPL")), 1);
    assert!(table.last_quote(sym("AAPL")).is_some());
    for _ in 0..REBUILD_AFTER_MISSES {
        publish(&table, "AAPL");
    }
    assert_eq!(
        table.index.load().len(),
        1,
        "rebuilt after {REBUILD_AFTER_MISSES} misses"
    );
    assert_eq!(table.index_misses.load(Ordering::Relaxed), 0);
    publish(&table, "AAPL");
    table.unsubscribe(sym("AAPL"), 1);
    publish(&table, "AAPL");
    let seqs: Vec<u64> = inbox.seen().iter().map(|(_, seq, _)| *seq).collect();
    let expected: Vec<u64> = (1..=REBUILD_AFTER_MISSES as u64 + 2).collect();
    assert_eq!(seqs, expected, "one stream, no gap, across the rebuild");
    // A symbol created after the rebuild is found past the index again.
    publish(&table, "MSFT");
    assert!(table.is_known(sym("MSFT")));
    assert_eq!(table.index.load().len(), 1);
    assert_eq!(table.symbol_count(), 2);
}

/// Threads publishing the same new symbols at once, while the index is
/// rebuilt under them, still share one slot per symbol: between them every
/// symbol's sequence numbers are 1..=n, each exactly once.
#[test]
fn concurrent_publishers_of_new_symbols_share_one_slot_each() {
    const SYMBOLS: usize = 600;
    const THREADS: usize = 4;
    const ROUNDS: usize = 3;
    let table = Arc::new(Table::<Inbox>::new());
    let names: Arc<Vec<String>> = Arc::new((0..SYMBOLS).map(|i| format!("N{i}")).collect());
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (table, names) = (Arc::clone(&table), Arc::clone(&names));
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for round in 0..ROUNDS {
                    for k in 0..SYMBOLS {
                        // Each thread walks the symbols from its own starting point.
                        let name = &names[(k + thread * 151 + round * 7) % SYMBOLS];
                        seen.push((name.clone(), publish(&table, name)));
                    }
                }
                seen
            })
        })
        .collect();
    let mut by_symbol: std::collections::HashMap<String, Vec<u64>> = std::collections::HashMap::new();
    for thread in threads {
        for (name, seq) in thread.join().unwrap() {
            by_symbol.entry(name).or_default().push(seq);
        }
    }
    assert_eq!(by_symbol.len(), SYMBOLS);
    let expected: Vec<u64> = (1..=(THREADS * ROUNDS) as u64).collect();
    for (name, mut seqs) in by_symbol {
        seqs.sort_unstable();
        assert_eq!(seqs, expected, "{name}");
    }
    assert_eq!(table.symbol_count(), SYMBOLS);
    assert!(!table.index.load().is_empty(), "the index was rebuilt during the run");
}

/// (seq, flags) of what a resume delivers.
fn resume(table: &Table<Inbox>, id: u64, symbol: &str, last: u64) -> Vec<(u64, Flags)> {
    let inbox = Inbox::new(id);
    table.subscribe(sym(symbol), &inbox, Start::ResumeAfter(last), |record| {
        inbox.push(record)
    });
    inbox
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|bytes| {
            let record = QuoteRecord::decode(bytes[..QUOTE_LEN].try_into().unwrap()).unwrap();
            (record.quote.seq, record.flags)
        })
        .collect()
}

#[test]
fn resume_sends_what_history_holds_or_a_reset_snapshot() {
    let table = Table::with_history(4);
    for _ in 0..10 {
        publish(&table, "AAPL");
    }
    let plain = Flags::REPLAYED;
    // TC0: the history (seq 7..=10) reaches back: exactly the missed records.
    assert_eq!(resume(&table, 1, "AAPL", 7), vec![(8, plain), (9, plain), (10, plain)]);
    // TC1: reaches back to the first record after the resume point.
    assert_eq!(resume(&table, 2, "AAPL", 6).len(), 4);
    // TC2: up to date: nothing.
    assert!(resume(&table, 3, "AAPL", 10).is_empty());
    // TC3: too far back: a snapshot that says records were lost.
    let reset = Flags::SNAPSHOT.with(Flags::RESET).with(Flags::REPLAYED);
    assert_eq!(resume(&table, 4, "AAPL", 2), vec![(10, reset)]);
    // TC4: a resume point past any number the symbol had (from a hub that
    // restarted): never "up to date", a snapshot that says so.
    assert_eq!(resume(&table, 5, "AAPL", 99), vec![(10, reset)]);
    // TC5: numbers from another sequence space: reset whatever they are.
    let inbox = Inbox::new(6);
    table.subscribe(sym("AAPL"), &inbox, Start::Reset, |record| inbox.push(record));
    let got = inbox.got.lock().unwrap();
    let record = QuoteRecord::decode(got[0][..QUOTE_LEN].try_into().unwrap()).unwrap();
    assert_eq!((got.len(), record.quote.seq, record.flags), (1, 10, reset));
}

#[test]
fn history_depth_zero_keeps_nothing() {
    let table = Table::with_history(0);
    publish(&table, "AAPL");
    publish(&table, "AAPL");
    let reset = Flags::SNAPSHOT.with(Flags::RESET).with(Flags::REPLAYED);
    assert_eq!(resume(&table, 1, "AAPL", 1), vec![(2, reset)]);
}

/// The `"*"` walks under fire: two threads publish 300 symbols as fast as
/// they can (half of the symbols appear during the run) while a subscriber
/// holding every third symbol by name joins and leaves `"*"` over and over,
/// ending inside it. Records are handed to the subscriber after the table's
/// lock is released, as the server's fan-out does, so before each join the
/// test waits for the publishes in flight at the previous leave to land
/// (otherwise a late record of the last period could follow a new snapshot).
/// Per symbol, what it got:
/// - named symbols: every live record once, in order, from first to last,
///   through every join and leave;
/// - other symbols, in each `"*"` period: the join's snapshot (none for a
///   symbol new since, which starts at 1), then live records rising by
///   exactly one; nothing between a leave and the next join; in the last
///   period, every record to the end.
#[test]
fn wildcard_join_and_leave_under_concurrent_publishers_lose_and_repeat_nothing() {
    const SYMBOLS: usize = 300;
    const TOGGLES: usize = 40;
    let table = Arc::new(Table::<Inbox>::new());
    let names: Arc<Vec<String>> = Arc::new((0..SYMBOLS).map(|i| format!("W{i}")).collect());
    for name in names.iter().take(SYMBOLS / 2) {
        publish(&table, name);
    }
    let named: std::collections::HashSet<Symbol> = names.iter().step_by(3).map(|n| sym(n)).collect();
    let inbox = Inbox::new(1);
    for symbol in &named {
        table.subscribe(*symbol, &inbox, Start::Snapshot, |record| inbox.push(record));
    }
    let done = Arc::new(AtomicBool::new(false));
    let landed: Arc<[std::sync::atomic::AtomicU64; 2]> = Arc::default();
    let publishers: Vec<_> = (0..2)
        .map(|thread| {
            let (table, names, done, landed) = (
                Arc::clone(&table),
                Arc::clone(&names),
                Arc::clone(&done),
                Arc::clone(&landed),
            );
            std::thread::spawn(move || {
                // Each thread its own symbols: one symbol's records then reach
                // the inbox in sequence order.
                let mut at = thread;
                while !done.load(Ordering::Acquire) {
                    at = (at + 26) % SYMBOLS;
                    publish(&table, &names[at]);
                    landed[thread].fetch_add(1, Ordering::Release);
                }
            })
        })
        .collect();
    let settle = || {
        let before: Vec<u64> = landed.iter().map(|n| n.load(Ordering::Acquire)).collect();
        while landed
            .iter()
            .zip(&before)
            .any(|(n, b)| n.load(Ordering::Acquire) < b + 2)
        {
            std::thread::yield_now();
        }
    };
    let period_starts = Bytes::new();
    for round in 0..TOGGLES {
        settle();
        inbox.push(period_starts.clone());
        table.subscribe_all(
            &inbox,
            |symbol| named.contains(&symbol),
            |_| Start::Snapshot,
            |record| inbox.push(record),
        );
        if round + 1 < TOGGLES {
            table.unsubscribe_all(&inbox, named.iter().copied());
        }
    }
    done.store(true, Ordering::Release);
    for publisher in publishers {
        publisher.join().unwrap();
    }
    // A last record of every symbol, so each stream has a known end.
    let last: HashMap<String, u64> = names.iter().map(|name| (name.clone(), publish(&table, name))).collect();

    // (symbol, seq, snapshot?) per period; period 0 is before the first join.
    let mut periods: Vec<Vec<(String, u64, bool)>> = vec![Vec::new()];
    for bytes in inbox.got.lock().unwrap().iter() {
        if bytes.is_empty() {
            periods.push(Vec::new());
            continue;
        }
        let record = QuoteRecord::decode(bytes[..QUOTE_LEN].try_into().unwrap()).unwrap();
        let key = (
            record.quote.symbol.to_string(),
            record.quote.seq,
            record.flags.contains(Flags::SNAPSHOT),
        );
        periods.last_mut().unwrap().push(key);
    }
    assert_eq!(periods.len(), TOGGLES + 1);
    for name in names.iter() {
        let of = |period: &Vec<(String, u64, bool)>| -> Vec<(u64, bool)> {
            period
                .iter()
                .filter(|(symbol, ..)| symbol == name)
                .map(|&(_, seq, snap)| (seq, snap))
                .collect()
        };
        if named.contains(&sym(name)) {
            // Held by name throughout: every live record once, in order, to
            // the end. (A join also sends a named symbol's snapshot.)
            let live: Vec<u64> = periods
                .iter()
                .flat_map(of)
                .filter(|(_, snap)| !snap)
                .map(|(seq, _)| seq)
                .collect();
            let first = live.first().copied().unwrap_or(1);
            let expected: Vec<u64> = (first..=last[name]).collect();
            assert_eq!(live, expected, "{name}: gap or duplicate in a named symbol");
            continue;
        }
        assert!(of(&periods[0]).is_empty(), "{name}: before any join");
        let mut previous = 0;
        for (at, period) in periods.iter().enumerate().skip(1) {
            let records = of(period);
            let mut live = records.as_slice();
            let mut next = 1;
            if let Some(((seq, true), rest)) = records.split_first() {
                assert!(*seq >= previous, "{name}, period {at}: the snapshot went back");
                next = seq + 1;
                live = rest;
            } else {
                assert!(
                    previous == 0,
                    "{name}, period {at}: a known symbol's join without a snapshot"
                );
            }
            for (offset, &(seq, snapshot)) in live.iter().enumerate() {
                assert!(
                    !snapshot && seq == next + offset as u64,
                    "{name}, period {at}: gap or duplicate {records:?}"
                );
            }
            previous = live.last().or(records.first()).map_or(previous, |&(seq, _)| seq);
        }
        assert_eq!(previous, last[name], "{name}: the last period runs to the end");
    }
    assert_eq!(table.wildcard_count(), 1);
    assert!(
        named.iter().all(|symbol| table.subscriber_count(*symbol) == 0),
        "named symbols ride on \"*\" while it is held"
    );
}

/// A symbol no feed has published is released when its last named
/// subscriber leaves (however it leaves); a published one is kept, and a
/// `"*"` subscriber holds no unpublished symbol.
#[test]
fn unseen_symbols_are_released_with_their_last_subscriber() {
    let table = Table::new();
    let (a, b) = (Inbox::new(1), Inbox::new(2));
    // TC0: two subscribers; the slot goes with the second.
    subscribe(&table, &a, "GHOST");
    subscribe(&table, &b, "GHOST");
    table.unsubscribe(sym("GHOST"), 1);
    assert!(table.is_known(sym("GHOST")));
    table.unsubscribe(sym("GHOST"), 2);
    assert!(!table.is_known(sym("GHOST")));
    assert_eq!(table.symbol_count(), 0);
    // TC1: a published symbol is kept, with its sequence.
    subscribe(&table, &a, "REAL");
    publish(&table, "REAL");
    table.unsubscribe(sym("REAL"), 1);
    assert!(table.is_published(sym("REAL")));
    assert_eq!(table.symbol_count(), 1);
    // TC2: a disconnect releases too, and "*" holds nothing unseen.
    table.subscribe_all(&b, |_| false, |_| Start::Snapshot, |_| {});
    subscribe(&table, &a, "GHOST2");
    table.remove(1, [sym("GHOST2")]);
    assert!(!table.is_known(sym("GHOST2")));
    // TC3: a named symbol that rides on "*" is released when dropped by
    // name, and created again when "*" is left holding it.
    subscribe(&table, &b, "GHOST3");
    table.subscribe_all(&b, |symbol| symbol == sym("GHOST3"), |_| Start::Snapshot, |_| {});
    table.unsubscribe(sym("GHOST3"), 2);
    assert!(!table.is_known(sym("GHOST3")));
    table.unsubscribe_all(&b, [sym("GHOST4")]);
    assert_eq!(table.subscriber_count(sym("GHOST4")), 1);
    publish(&table, "GHOST4");
    assert_eq!(b.seen().last(), Some(&("GHOST4".into(), 1, false)));
    assert_eq!(table.symbol_count(), 2);
    // TC4: released slots leave the index once it is rebuilt.
    for i in 0..2 * REBUILD_AFTER_MISSES {
        let name = format!("T{i}");
        subscribe(&table, &a, &name);
        table.unsubscribe(sym(&name), 1);
    }
    assert_eq!(table.symbol_count(), 2);
    assert!(
        table.index.load().len() <= 2 + REBUILD_AFTER_MISSES,
        "stale entries are bounded"
    );
}

/// A publish that races the release of its symbol's slot is never lost: it
/// lands in the slot the table keeps (the old one, or a new one), and a
/// subscriber holding the symbol throughout gets it exactly once.
#[test]
fn a_publish_racing_a_release_is_never_lost() {
    const ROUNDS: usize = 2_000;
    let table = Arc::new(Table::<Inbox>::new());
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let steady = Inbox::new(99);
    let threads: Vec<_> = (0..2)
        .map(|role| {
            let (table, barrier) = (Arc::clone(&table), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let churner = Inbox::new(1);
                for round in 0..ROUNDS {
                    let name = format!("R{round}");
                    barrier.wait();
                    if role == 0 {
                        subscribe(&table, &churner, &name);
                        table.unsubscribe(sym(&name), 1);
                    } else {
                        assert_eq!(publish(&table, &name), 1, "{name}: the sequence starts once");
                    }
                }
            })
        })
        .collect();
    for round in 0..ROUNDS {
        let name = format!("R{round}");
        // Every other round a steady subscriber holds the symbol throughout.
        if round % 2 == 0 {
            subscribe(&table, &steady, &name);
        }
        barrier.wait();
    }
    for thread in threads {
        thread.join().unwrap();
    }
    for round in 0..ROUNDS {
        let name = format!("R{round}");
        assert!(table.is_published(sym(&name)), "{name}: the publish was lost");
        let copy = Inbox::new(7);
        subscribe(&table, &copy, &name);
        assert_eq!(copy.seen(), vec![(name.clone(), 1, true)], "{name}: its last value");
    }
    let mut got: Vec<String> = steady
        .seen()
        .into_iter()
        .map(|(symbol, seq, _)| format!("{symbol}:{seq}"))
        .collect();
    got.sort();
    let mut expected: Vec<String> = (0..ROUNDS).step_by(2).map(|round| format!("R{round}:1")).collect();
    expected.sort();
    assert_eq!(got, expected, "the steady subscriber got each record once");
    assert_eq!(table.symbol_count(), ROUNDS);
}

/// A BBO record of `symbol` numbered `seq` in the bbo sequence.
fn bbo_record(symbol: Symbol, seq: u64) -> Bytes {
    use quotehub_proto::bbo::{Bbo, BboRecord, BboSide};
    let bbo = Bbo {
        symbol,
        bid: BboSide::default(),
        ask: BboSide::default(),
        event_ts: 1,
        recv_ts: 2,
        seq,
    };
    Bytes::copy_from_slice(
        &BboRecord {
            bbo,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
    )
}

#[test]
fn a_derived_record_is_its_channels_last_value_and_snapshot_and_leaves_the_symbols_sequence() {
    use quotehub_proto::BboRecord;
    use quotehub_proto::bbo::BBO_LEN;
    let table = Table::<Inbox>::new();
    let symbol = sym("GOOD");
    let mut event = quote(symbol);
    table.publish(&mut event, encode);
    assert_eq!(table.last_value(symbol, Channels::BBO), None, "none before the first");
    let fanout = table.publish_derived(symbol, bbo_record(symbol, 1));
    assert_eq!(fanout.seq, 1, "the record's own number");
    let fanout = table.publish_derived(symbol, bbo_record(symbol, 2));
    assert_eq!(fanout.seq, 2);
    let last = table.last_value(symbol, Channels::BBO).unwrap();
    let decode = |bytes: &Bytes| BboRecord::decode(bytes[..BBO_LEN].try_into().unwrap()).unwrap();
    assert_eq!((decode(&last).bbo.seq, decode(&last).flags), (2, Flags::default()));
    assert_eq!(table.last_value(symbol, Channels::BARS_1S), None);
    assert!(table.last_value(symbol, Channels::QUOTES).is_some());
    // TC1: a subscriber of bbo and quotes gets both snapshots; the quote
    // keeps the symbol's own number (1: derived records took none).
    let inbox = Inbox::new(1);
    table.hold(
        symbol,
        &inbox,
        Channels::BBO.with(Channels::QUOTES),
        Start::Snapshot,
        Channels::BBO.with(Channels::QUOTES),
        |record| inbox.push(record),
    );
    let got = inbox.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let quote = QuoteRecord::decode(got[0][..QUOTE_LEN].try_into().unwrap()).unwrap();
    assert_eq!((quote.quote.seq, quote.flags.contains(Flags::SNAPSHOT)), (1, true));
    assert_eq!((decode(&got[1]).bbo.seq, decode(&got[1]).flags), (2, Flags::SNAPSHOT));
    // TC2: a subscriber of trades only gets no derived snapshot, and the
    // next BBO is for the bbo holder only.
    let trades = Inbox::new(2);
    table.hold(
        symbol,
        &trades,
        Channels::TRADES,
        Start::Snapshot,
        Channels::TRADES,
        |record| trades.push(record),
    );
    assert!(trades.got.lock().unwrap().is_empty());
    let fanout = table.publish_derived(symbol, bbo_record(symbol, 3));
    let ids: Vec<u64> = fanout.recipients().map(Subscriber::subscriber_id).collect();
    assert_eq!(ids, [1]);
}
