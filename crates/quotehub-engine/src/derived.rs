//! Bars and the consolidated BBO as the hub derives them: one
//! [`BarBuilder`] and one [`Consolidator`] per symbol, shared by every feed
//! of the hub (a symbol's bars take its trades from any feed; its BBO is
//! across feeds), fed by the publishers, and their records published into
//! the table (each derived channel's last value, for snapshots) and out to
//! the subscribers holding their channel.
//!
//! Each symbol's builders sit behind their own lock, held while their records
//! are published and delivered, so two feeds of one symbol cannot swap two
//! BBO records (or bars) on their way to a client: each derived channel
//! reaches every client in its own sequence. The lock order is this lock,
//! then the table's slot lock; nothing takes them the other way round.
//! For the same reason a live source's derived records are delivered at
//! once rather than staged with its quotes and trades until its flush: a
//! bar or a BBO may reach a client before the trade or quote behind it
//! (SPEC.md orders each sequence on its own).
//!
//! What closes a bar (see `bars.rs`): a trade of the symbol past its end (the
//! publisher, per trade); the event clock of a feed passing its end plus the
//! grace, checked per event against one number, the earliest such time over
//! every symbol ([`Derived::due`]), so that the walk over every symbol
//! happens about once per second of event time, not per event; and the
//! server's wall-clock timer ([`crate::Hub::expire_bars`]), for live
//! sources gone quiet.
//!
//! The registry holds an entry per symbol a feed published, as the table
//! holds a slot per symbol, and is bounded the same way (by what the feeds
//! the operator configured publish).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use bytes::BytesMut;
use quotehub_proto::bar::BarInterval;
use quotehub_proto::{Flags, Symbol};
use quotehub_table::Table;

use crate::bars::{BarBuilder, Closed, Dropped};
use crate::bus_link::RecordSink;
use crate::client::ClientHandle;
use crate::consolidation::Consolidator;
use crate::fanout::{SLAB_BYTES, deliver};
use crate::stats::Stats;

/// Hashes symbols in the registry and in each publisher's cache of it.
pub(crate) type SymbolHasher = foldhash::fast::RandomState;

/// One symbol's builders, shared by the publishers that feed it.
pub(crate) type Entry = Arc<Mutex<Builders>>;

/// One symbol's bars and BBO.
#[derive(Debug)]
pub(crate) struct Builders {
    pub(crate) symbol: Symbol,
    pub(crate) bars: BarBuilder,
    pub(crate) bbo: Consolidator,
    /// The flags of the publisher that fed the symbol last (`REPLAYED` for a
    /// replay), put on records that a clock or a feed going down emits.
    pub(crate) flags: Flags,
}

/// Every symbol's builders, and when the event clock next closes a bar.
#[derive(Debug)]
pub(crate) struct Derived {
    /// Symbol → builders. Publishers look here once per symbol (they keep
    /// the entries they use); the walks copy the entries out.
    symbols: Mutex<HashMap<Symbol, Entry, SymbolHasher>>,
    /// The earliest event time at which some symbol's open bar is due to
    /// close (`u64::MAX`: none), so that a publisher checks one number per
    /// event. Lowered after every trade; reset and rebuilt by each walk.
    next_close: AtomicU64,
    /// Held while the event clock walks the symbols: one walk at a time.
    walking: Mutex<()>,
}

impl Default for Derived {
    fn default() -> Self {
        Self {
            symbols: Mutex::default(),
            next_close: AtomicU64::new(u64::MAX),
            walking: Mutex::new(()),
        }
    }
}

/// Locks one symbol's builders; a panic under the lock leaves them usable
/// (each step is a whole update of plain data).
pub(crate) fn lock(entry: &Entry) -> MutexGuard<'_, Builders> {
    entry.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Derived {
    /// The symbol's builders, made on first use.
    pub(crate) fn entry(&self, symbol: Symbol) -> Entry {
        let mut symbols = self.symbols.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(symbols.entry(symbol).or_insert_with(|| {
            Arc::new(Mutex::new(Builders {
                symbol,
                bars: BarBuilder::new(symbol),
                bbo: Consolidator::new(symbol),
                flags: Flags::default(),
            }))
        }))
    }

    /// Every symbol's builders, as of now.
    fn entries(&self) -> Vec<Entry> {
        let symbols = self.symbols.lock().unwrap_or_else(PoisonError::into_inner);
        symbols.values().cloned().collect()
    }

    /// Whether an event stamped `event_ts` is due to close some bar.
    #[inline]
    pub(crate) fn due(&self, event_ts: u64) -> bool {
        event_ts >= self.next_close.load(Ordering::Relaxed)
    }

    /// A symbol's builder next closes a bar at `next_close` of event time.
    #[inline]
    pub(crate) fn note(&self, next_close: Option<u64>) {
        if let Some(at) = next_close {
            self.next_close.fetch_min(at, Ordering::Relaxed);
        }
    }

    /// The event clock reached `event_ts` (at the hub's `now_ns`): closes
    /// every bar it is due to close. Skipped while another walk runs: the
    /// next event that is due tries again.
    pub(crate) fn advance(&self, event_ts: u64, now_ns: u64, out: &mut Emitter<'_>) {
        let _walking = match self.walking.try_lock() {
            Ok(walking) => walking,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // Reset before the walk: a trade that opens a bar during it lowers
        // the number after its own update, which the walk then also sees.
        self.next_close.store(u64::MAX, Ordering::Relaxed);
        for entry in self.entries() {
            let mut builders = lock(&entry);
            if builders.bars.next_close().is_some_and(|at| at <= event_ts) {
                let closed = builders.bars.advance(event_ts, now_ns);
                out.bars(&builders, closed);
            }
            self.note(builders.bars.next_close());
        }
    }

    /// The wall-clock timer (live sources gone quiet): closes the bars whose
    /// estimated event clock is past their end (see `BarBuilder::expire`).
    pub(crate) fn expire(&self, now_ns: u64, out: &mut Emitter<'_>) {
        for entry in self.entries() {
            let mut builders = lock(&entry);
            let closed = builders.bars.expire(now_ns);
            out.bars(&builders, closed);
            self.note(builders.bars.next_close());
        }
    }

    /// A replay starts its next pass, back at the start of its event time:
    /// every open bar closes, and every symbol takes trades of any time
    /// again (see `BarBuilder::rewind`).
    pub(crate) fn rewind(&self, now_ns: u64, out: &mut Emitter<'_>) {
        let _walking = self.walking.lock().unwrap_or_else(PoisonError::into_inner);
        self.next_close.store(u64::MAX, Ordering::Relaxed);
        for entry in self.entries() {
            let mut builders = lock(&entry);
            let closed = builders.bars.rewind(now_ns);
            out.bars(&builders, closed);
        }
    }

    /// Trades left out of `interval`'s bars so far, summed over the symbols
    /// (for `/metrics`: a walk, once per scrape, off the publish path).
    pub(crate) fn dropped(&self, interval: BarInterval) -> Dropped {
        let mut sum = Dropped::default();
        for entry in self.entries() {
            let dropped = lock(&entry).bars.dropped(interval);
            sum.late = sum.late.saturating_add(dropped.late);
            sum.zero_size = sum.zero_size.saturating_add(dropped.zero_size);
            sum.full = sum.full.saturating_add(dropped.full);
        }
        sum
    }

    /// `feed`'s upstream went down: its quotes leave every symbol's BBO.
    pub(crate) fn feed_down(&self, feed: u16, now_ns: u64, out: &mut Emitter<'_>) {
        for entry in self.entries() {
            let mut builders = lock(&entry);
            if let Some(bbo) = builders.bbo.feed_down(feed, now_ns) {
                let record = crate::consolidation::encode(bbo, builders.flags);
                out.emit(builders.symbol, &record);
            }
        }
    }
}

/// Publishes derived records into the table and delivers them.
pub(crate) struct Emitter<'a> {
    pub(crate) table: &'a Table<ClientHandle>,
    pub(crate) stats: &'a Stats,
    /// Where the records are copied into, one `Bytes` each.
    pub(crate) slab: &'a mut BytesMut,
    /// The hub's record sink, if it has one (delay lines take derived records too).
    pub(crate) sink: Option<&'a Arc<dyn RecordSink>>,
}

impl Emitter<'_> {
    /// Publishes the bars `closed` (of `builders`' symbol, with its flags).
    pub(crate) fn bars(&mut self, builders: &Builders, closed: Closed) {
        if closed.is_empty() {
            return;
        }
        for record in closed.records(builders.flags) {
            self.emit(builders.symbol, &record);
        }
    }

    /// Publishes one derived record of `symbol`, delivers it to the
    /// subscribers of its channel (at once, not staged: see the module docs)
    /// and hands it to the hub's sink (a delay line holds it too).
    pub(crate) fn emit(&mut self, symbol: Symbol, record: &[u8]) {
        if self.slab.capacity() < record.len() {
            *self.slab = BytesMut::with_capacity(SLAB_BYTES);
        }
        self.slab.extend_from_slice(record);
        let fanout = self.table.publish_derived(symbol, self.slab.split().freeze());
        if let Some(sink) = self.sink {
            sink.derived(symbol, &fanout.record);
        }
        deliver(fanout, self.stats);
    }
}
