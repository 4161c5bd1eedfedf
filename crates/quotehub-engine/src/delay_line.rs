//! A delay line: the records a hub sends its clients, held until they are a
//! fixed delay old and then handed to a second hub (a delayed entitlement's
//! hub), numbers, stamps and bytes unchanged.
//!
//! It is a [`RecordSink`] of the real hub, so it sees what the hub's sink
//! sees, in the order the hub's clients get it: every quote and trade
//! record, live, replayed or relayed; every bar and BBO the hub derives;
//! every feed's status record. Each is due at the hub's stamp on it plus
//! the delay: `recv_ts` (for a bar, when the hub closed it; for a BBO, when
//! it received the quote that moved it), a status record's `ts`.
//!
//! Order: the line releases in the order it was fed, which for a replay (or
//! any publish one event at a time) is the order the real hub's clients got
//! the records, bars and BBOs before the trade or quote that made them. A
//! live source's quotes and trades reach the real hub's clients at its
//! flush, after the bars and BBOs of the whole batch; the line holds each
//! next to its own, so a delayed client may see those sequences interleaved
//! differently, each one in its own order (which is what SPEC.md promises).
//!
//! Bounded in bytes: each held record costs its length plus
//! [`HELD_OVERHEAD_BYTES`] of bookkeeping; past `max_bytes` the oldest
//! record is dropped and counted, never the line grown. A dropped record is
//! a jump in its symbol's numbers on the delayed hub, which a client sees
//! (SPEC.md: `seq != last + 1 + conflated`).
//!
//! What the count leaves out, and why it stays close: a held record is the
//! hub's own `Bytes`, a share of a publisher's 16 KiB slab, and keeps that
//! slab alive; the line holds every record of a stretch of time, so the
//! slabs it keeps are full of held records, bar the newest and oldest few.
//! The queue's spare slots (it grows by doubling) may add up to
//! [`HELD_OVERHEAD_BYTES`] per held record at worst.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use quotehub_proto::record::{STATUS_LEN, rtype};
use quotehub_proto::{Epoch, StatusRecord, Symbol, now_ns};

use crate::bus_link::RecordSink;
use crate::fanout::Publisher;

/// Where quote, trade, bar and BBO records hold `recv_ts` (see
/// `quotehub_proto::record`, `bar`, `bbo`).
const RECV_TS_AT: usize = 40;

/// Records released per lock of the line, so publishing does not hold it.
const RELEASE_BATCH: usize = 256;

/// One record waiting in the line.
#[derive(Debug)]
struct Held {
    /// Hub receive time plus the delay, ns since the Unix epoch.
    due_ns: u64,
    what: What,
}

/// What a held record is: one of a symbol (a quote, trade, bar or BBO, told
/// apart by its record type when released), or a feed's status.
#[derive(Debug)]
enum What {
    Record { symbol: Symbol, record: Bytes },
    Status(StatusRecord),
}

impl What {
    /// What it counts for in the line's bytes, bookkeeping aside.
    fn len(&self) -> usize {
        match self {
            What::Record { record, .. } => record.len(),
            What::Status(_) => STATUS_LEN,
        }
    }
}

/// What one held record costs besides its bytes: its entry in the queue.
pub const HELD_OVERHEAD_BYTES: usize = std::mem::size_of::<Held>();

#[derive(Debug, Default)]
struct Line {
    records: VecDeque<Held>,
    /// Bytes held: each record's length plus [`HELD_OVERHEAD_BYTES`].
    bytes: usize,
}

/// Records held for `delay`, at most `max_bytes` of them.
#[derive(Debug)]
pub struct DelayLine {
    delay_ns: u64,
    max_bytes: usize,
    line: Mutex<Line>,
    /// Bytes held now (as `Line::bytes`), readable without the lock.
    held_bytes: AtomicUsize,
    /// Records dropped, oldest first, because the line was full.
    dropped: AtomicU64,
    /// Records released into the delayed hub.
    released: AtomicU64,
}

impl DelayLine {
    /// A line that holds each record until `delay` after its hub receive
    /// time, keeping at most `max_bytes`.
    pub fn new(delay: Duration, max_bytes: usize) -> Self {
        Self {
            delay_ns: u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX),
            max_bytes,
            line: Mutex::default(),
            held_bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            released: AtomicU64::new(0),
        }
    }

    /// The delay.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_ns)
    }

    /// Bytes held now (records and bookkeeping).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// Records dropped because the line was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records released into the delayed hub.
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }

    /// When the next record is due (ns since the Unix epoch), if any.
    pub fn next_due(&self) -> Option<u64> {
        self.lock().records.front().map(|held| held.due_ns)
    }

    /// Hands every record due at `now_ns` to `publisher` (of the delayed
    /// hub), in the order the real hub sequenced them; how many it took.
    /// A record the delayed hub refuses (its number is not past the
    /// symbol's last: two feeds of one symbol reached the line out of
    /// order) is counted there, in `passthrough_refused`.
    pub fn release_due(&self, now_ns: u64, publisher: &mut Publisher) -> usize {
        let mut released = 0;
        let mut due = Vec::with_capacity(RELEASE_BATCH);
        loop {
            {
                let mut line = self.lock();
                while due.len() < RELEASE_BATCH && line.records.front().is_some_and(|held| held.due_ns <= now_ns) {
                    if let Some(held) = line.records.pop_front() {
                        line.bytes -= held.what.len() + HELD_OVERHEAD_BYTES;
                        due.push(held);
                    }
                }
                self.held_bytes.store(line.bytes, Ordering::Relaxed);
            }
            if due.is_empty() {
                break;
            }
            for held in due.drain(..) {
                match held.what {
                    What::Record { symbol, record } => match record.get(2) {
                        Some(&rtype::BAR | &rtype::BBO) => publisher.publish_derived_passthrough(symbol, &record),
                        kind => {
                            publisher.publish_passthrough(symbol, kind == Some(&rtype::QUOTE), &record);
                        }
                    },
                    What::Status(status) => publisher.publish_status_passthrough(status),
                }
                released += 1;
            }
        }
        self.released.fetch_add(released as u64, Ordering::Relaxed);
        released
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a record of `symbol` (the hub's own `Bytes`, not a copy), due
    /// at its `recv_ts` plus the delay.
    fn hold_record(&self, symbol: Symbol, record: &Bytes) {
        let recv_ns = match record.get(RECV_TS_AT..RECV_TS_AT + 8) {
            Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => now_ns(),
        };
        self.hold(
            recv_ns,
            What::Record {
                symbol,
                record: record.clone(),
            },
        );
    }

    /// Queues `what`, due at `stamp_ns` plus the delay; drops the oldest
    /// while the line is full.
    fn hold(&self, stamp_ns: u64, what: What) {
        let cost = what.len() + HELD_OVERHEAD_BYTES;
        let mut line = self.lock();
        let mut dropped = 0;
        while line.bytes + cost > self.max_bytes {
            let Some(oldest) = line.records.pop_front() else {
                break;
            };
            line.bytes -= oldest.what.len() + HELD_OVERHEAD_BYTES;
            dropped += 1;
        }
        if line.bytes + cost > self.max_bytes {
            // Larger than the whole line: nothing can hold it.
            dropped += 1;
        } else {
            line.bytes += cost;
            line.records.push_back(Held {
                due_ns: stamp_ns.saturating_add(self.delay_ns),
                what,
            });
        }
        self.held_bytes.store(line.bytes, Ordering::Relaxed);
        drop(line);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

impl RecordSink for DelayLine {
    /// Queues the quote or trade record, due at its `recv_ts` plus the delay.
    fn sequenced(&self, symbol: Symbol, _epoch: Epoch, _seq: u64, record: &Bytes) {
        self.hold_record(symbol, record);
    }

    /// Queues the bar or BBO record, due at its `recv_ts` plus the delay.
    fn derived(&self, symbol: Symbol, record: &Bytes) {
        self.hold_record(symbol, record);
    }

    /// Queues the status record, due at its `ts` plus the delay.
    fn status(&self, status: &StatusRecord) {
        self.hold(status.ts, What::Status(*status));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use quotehub_proto::{Event, Quote};

    use super::*;
    use crate::hub::Hub;

    fn quote(recv_ts: u64) -> Event {
        Event::Quote(Quote {
            symbol: "AAPL".parse().unwrap(),
            bid_price: "1.00".parse().unwrap(),
            bid_size: 1,
            ask_price: "1.01".parse().unwrap(),
            ask_size: 1,
            event_ts: recv_ts,
            recv_ts,
            seq: 0,
        })
    }

    #[test]
    fn records_wait_until_their_receive_time_plus_the_delay_then_go_in_order() {
        let mut real = Hub::new();
        let line = Arc::new(DelayLine::new(Duration::from_nanos(1_000), 1 << 20));
        real.sink_to(Arc::clone(&line) as Arc<dyn RecordSink>);
        let delayed = Hub::with_history_in(16, real.table().epoch());
        let mut publisher = real.publisher(quotehub_proto::Flags::default(), 0);
        for recv_ts in [10, 20, 30] {
            publisher.publish(quote(recv_ts));
        }
        let mut out = delayed.publisher(quotehub_proto::Flags::default(), 0);
        // TC0: nothing is due before 10 + 1000. TC1: two quotes are due at
        // 1020, and the BBO the first one made. TC2: the last at 1030.
        assert_eq!(line.release_due(1_009, &mut out), 0);
        assert_eq!(line.release_due(1_020, &mut out), 3);
        assert_eq!(line.next_due(), Some(1_030));
        assert_eq!(line.release_due(u64::MAX, &mut out), 1);
        assert_eq!((line.released(), line.held_bytes(), line.dropped()), (4, 0, 0));
        let symbol = "AAPL".parse().unwrap();
        assert_eq!(delayed.table().last_quote(symbol).map(|v| v.len()), Some(72));
        assert_eq!(HELD_OVERHEAD_BYTES, 56, "the figure the settings' docs give");
    }

    #[test]
    fn bbo_and_status_records_wait_in_the_same_line_and_the_delayed_hub_derives_nothing_itself() {
        let mut real = Hub::new();
        let line = Arc::new(DelayLine::new(Duration::from_nanos(1_000), 1 << 20));
        real.sink_to(Arc::clone(&line) as Arc<dyn RecordSink>);
        let delayed = Hub::with_history_in(16, real.table().epoch());
        let mut publisher = real.publisher(quotehub_proto::Flags::default(), 0);
        publisher.publish(quote(10));
        line.status(&StatusRecord {
            code: quotehub_proto::StatusCode::UpstreamDown,
            feed: 0,
            ts: 20,
            detail: 0,
        });
        // TC0: the quote's BBO came first, then the quote (the order the
        // hub's own clients get them); the status waits for its own time.
        let mut out = delayed.publisher(quotehub_proto::Flags::default(), 0);
        assert_eq!(line.release_due(1_010, &mut out), 2);
        assert_eq!(line.next_due(), Some(1_020));
        assert_eq!(line.release_due(1_020, &mut out), 1);
        assert_eq!(line.held_bytes(), 0);
        // TC1: the delayed hub keeps the real hub's BBO, bytes and number,
        // and made none of its own from the quote it was passed.
        let symbol = "AAPL".parse().unwrap();
        let bbo = quotehub_proto::Channels::BBO;
        assert_eq!(
            delayed.table().last_value(symbol, bbo),
            real.table().last_value(symbol, bbo)
        );
        assert!(
            delayed
                .derived()
                .entry(symbol)
                .lock()
                .unwrap()
                .bbo
                .quote(0, &quote_of(10))
                .is_some()
        );
    }

    fn quote_of(recv_ts: u64) -> quotehub_proto::Quote {
        match quote(recv_ts) {
            Event::Quote(quote) => quote,
            _ => unreachable!(),
        }
    }
}
