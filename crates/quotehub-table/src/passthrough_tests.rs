//! Pass-through publishing: records keep the sequence numbers they carry.

use bytes::Bytes;
use quotehub_proto::{Event, Flags, Quote, QuoteRecord};

use super::tests::{Inbox, sym};
use super::*;

/// A quote record for `symbol` that already carries sequence `seq` (as
/// an ingest hub encoded it).
fn carrying(symbol: &str, seq: u64) -> Bytes {
    let Event::Quote(quote) = super::tests::quote(sym(symbol)) else {
        unreachable!()
    };
    Bytes::copy_from_slice(
        &QuoteRecord {
            quote: Quote { seq, ..quote },
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
    )
}

/// Publishes `seq` through, delivering as the engine does; what it did.
fn pass(table: &Table<Inbox>, symbol: &str, seq: u64) -> Passed {
    match table.publish_passthrough(sym(symbol), true, seq, carrying(symbol, seq)) {
        Passthrough::Published { fanout, skipped } => {
            for recipient in fanout.recipients() {
                recipient.push(fanout.record.clone());
            }
            assert_eq!(fanout.seq, seq);
            Passed::Published { skipped }
        }
        Passthrough::Refused { last } => Passed::Refused { last },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Passed {
    Published { skipped: u64 },
    Refused { last: u64 },
}

#[test]
fn records_keep_their_numbers_a_duplicate_is_refused_and_a_jump_is_reported() {
    let table = Table::new();
    let inbox = Inbox::new(1);
    table.subscribe(sym("AAPL"), &inbox, Start::Snapshot, |snapshot| inbox.push(snapshot));
    // The first record is where this hub joins the stream: not a gap.
    assert_eq!(pass(&table, "AAPL", 5), Passed::Published { skipped: 0 });
    assert_eq!(pass(&table, "AAPL", 6), Passed::Published { skipped: 0 });
    assert_eq!(pass(&table, "AAPL", 7), Passed::Published { skipped: 0 });
    assert_eq!(pass(&table, "AAPL", 6), Passed::Refused { last: 7 });
    assert_eq!(pass(&table, "AAPL", 7), Passed::Refused { last: 7 });
    assert_eq!(pass(&table, "AAPL", 10), Passed::Published { skipped: 2 });
    assert_eq!(
        inbox.seen(),
        vec![
            ("AAPL".into(), 5, false),
            ("AAPL".into(), 6, false),
            ("AAPL".into(), 7, false),
            ("AAPL".into(), 10, false)
        ]
    );
    // The record is stored exactly as received, and a snapshot carries its number.
    assert_eq!(table.last_quote(sym("AAPL")).unwrap(), carrying("AAPL", 10));
    let late = Inbox::new(2);
    table.subscribe(sym("AAPL"), &late, Start::Snapshot, |snapshot| late.push(snapshot));
    assert_eq!(late.seen(), vec![("AAPL".into(), 10, true)]);
    // The history holds the numbers as received: a resume after 6 gets 7 and 10.
    let resumed = Inbox::new(3);
    table.subscribe(sym("AAPL"), &resumed, Start::ResumeAfter(6), |record| {
        resumed.push(record)
    });
    assert_eq!(
        resumed.seen(),
        vec![("AAPL".into(), 7, false), ("AAPL".into(), 10, false)]
    );
}

#[test]
fn a_table_made_in_an_upstreams_epoch_numbers_in_it() {
    let epoch = Epoch::from_u64(0x1234_5678_9abc).unwrap();
    let table = Table::<Inbox>::with_history_in(8, epoch);
    assert_eq!(table.epoch(), epoch);
    assert_ne!(Table::<Inbox>::with_history(8).epoch(), epoch);
}
