//! The symbol subscription table with its last-value cache.
//!
//! Symbols are interned through a `DashMap` (sharded, readers never wait on
//! each other) into slots. Lookups read a copy of that map first, an immutable
//! hash map behind an `ArcSwap` that is rebuilt now and then: finding a symbol
//! there takes no lock and writes no memory shared with other threads, so
//! publishers and readers on other cores do not slow each other down. A symbol
//! newer than the copy is found in the `DashMap`; enough such lookups trigger
//! a rebuild (see [`Table::is_known`]).
//!
//! A slot holds the symbol's sequence number, its last quote as encoded
//! bytes, and its subscriber list as an `Arc<[S]>` that writers replace
//! copy-on-write. The publisher's path is: find the slot, take its short lock
//! to stamp the next sequence number, store the record and clone the list's
//! `Arc`, then release it and fan out from the clone, so it never waits for a
//! list to be rebuilt and no client is ever awaited.
//!
//! Subscribing swaps the new list and enqueues the snapshot under that same
//! lock, which is what makes "snapshot, then every live update, no gap, no
//! duplicate" hold even while the symbol is publishing on another thread.
//!
//! `"*"` subscribers live in one separate list read by every publish. Adding
//! one locks every slot at once (cold path) so each symbol's snapshot and the
//! start of its live stream line up exactly as for a single symbol.
//!
//! ```
//! use bytes::Bytes;
//! use quotehub_proto::{Event, Quote};
//! use quotehub_table::{Start, Subscriber, Table};
//!
//! #[derive(Clone)]
//! struct Client(u64);
//! impl Subscriber for Client {
//!     fn subscriber_id(&self) -> u64 { self.0 }
//! }
//!
//! let table = Table::<Client>::new();
//! let symbol = "AAPL".parse()?;
//! table.subscribe(symbol, &Client(1), Start::Snapshot, |_snapshot| {});
//! let mut event = Event::Quote(Quote {
//!     symbol, bid_price: "270.1".parse()?, bid_size: 100, ask_price: "270.2".parse()?,
//!     ask_size: 200, event_ts: 1, recv_ts: 2, seq: 0,
//! });
//! let fanout = table.publish(&mut event, |_| Bytes::from_static(b"record"));
//! assert_eq!(fanout.subscribers.len(), 1);
//! assert_eq!(fanout.seq, 1);
//! # Ok::<(), quotehub_proto::Error>(())
//! ```

mod slot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use dashmap::DashMap;
use quotehub_proto::{Epoch, Event, Symbol};

pub use slot::Start;
use slot::{Slot, with, without};

/// Records kept per symbol for resuming clients, unless configured otherwise.
pub const DEFAULT_HISTORY_DEPTH: usize = 64;

/// Hashes symbols: foldhash, seeded at random per map (clients name symbols,
/// so the seed keeps them from choosing colliding ones), and several times
/// faster than the standard SipHash on 16-byte keys.
type SymbolHasher = foldhash::fast::RandomState;

/// The read-only copy of the symbol → slot map that lookups try first.
type Index<S> = HashMap<Symbol, Arc<Slot<S>>, SymbolHasher>;

/// Lookups that must go past the index before it is rebuilt, at the least;
/// at the most, as many as the index holds, so that rebuilding (linear in the
/// symbols) costs a bounded amount per lookup.
const REBUILD_AFTER_MISSES: usize = 256;

/// What the table needs of a subscriber handle: cheap clones and a stable id.
pub trait Subscriber: Clone + Send + Sync + 'static {
    /// Identifies the subscriber (one per connection).
    fn subscriber_id(&self) -> u64;
}

/// Who gets one published record.
#[derive(Debug)]
pub struct Fanout<S> {
    /// The record, encoded once; clone it per subscriber (a reference count).
    pub record: Bytes,
    /// The sequence number given to the event.
    pub seq: u64,
    /// Subscribers of the symbol by name.
    pub subscribers: Arc<[S]>,
    /// Subscribers of `"*"`; `None` when there are none (the common case),
    /// so a publish touches no reference count for them.
    pub wildcard: Option<Arc<Vec<S>>>,
}

impl<S> Fanout<S> {
    /// Every subscriber that gets the record (each exactly once).
    pub fn recipients(&self) -> impl Iterator<Item = &S> {
        self.subscribers
            .iter()
            .chain(self.wildcard.iter().flat_map(|all| all.iter()))
    }
}

/// The symbol → subscribers table with a last-value cache.
pub struct Table<S> {
    /// Symbol → slot, every slot: the authority, written when a symbol first appears.
    slots: DashMap<Symbol, Arc<Slot<S>>, SymbolHasher>,
    /// A copy of `slots` as of its last rebuild, read first by every lookup.
    /// Slots are never removed or replaced, so a copy is never wrong, only
    /// possibly missing the newest symbols.
    index: ArcSwap<Index<S>>,
    /// Lookups since the last rebuild that found their symbol in `slots` only.
    index_misses: AtomicUsize,
    /// Every slot in creation order. Its lock also orders slot creation against
    /// `"*"` changes, so no new symbol slips between them.
    registry: Mutex<Vec<Arc<Slot<S>>>>,
    /// Subscribers of `"*"`; grown only while every slot is locked.
    wildcard: ArcSwap<Vec<S>>,
    /// Whether `wildcard` holds anyone; set with it (under the registry's
    /// lock) so that a publish, which reads it under its slot's lock, skips
    /// loading the (nearly always empty) list. Growing it locks every slot,
    /// so no publish after a `"*"` subscription can read it stale.
    has_wildcard: AtomicBool,
    /// Records each symbol keeps for resuming clients.
    history_depth: usize,
    /// The identity of the sequence numbers this table issues, chosen at
    /// random when it is made: a restarted hub numbers in a new space.
    epoch: Epoch,
}

impl<S> std::fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("symbols", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<S: Subscriber> Default for Table<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Subscriber> Table<S> {
    /// An empty table keeping [`DEFAULT_HISTORY_DEPTH`] records per symbol.
    pub fn new() -> Self {
        Self::with_history(DEFAULT_HISTORY_DEPTH)
    }

    /// An empty table keeping `depth` records per symbol for resuming clients
    /// (0 keeps none: every resume then gets a reset snapshot).
    pub fn with_history(depth: usize) -> Self {
        Self {
            slots: DashMap::with_hasher(SymbolHasher::default()),
            index: ArcSwap::from_pointee(Index::with_hasher(SymbolHasher::default())),
            index_misses: AtomicUsize::new(0),
            registry: Mutex::new(Vec::new()),
            wildcard: ArcSwap::from_pointee(Vec::new()),
            has_wildcard: AtomicBool::new(false),
            history_depth: depth,
            epoch: Epoch::random(),
        }
    }

    /// The sequence space of this table's numbers (see [`Epoch`]).
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Runs `f` on the symbol's slot, if the symbol is known. The slot is
    /// borrowed from the index when it is there (no reference count to
    /// touch), else from the `DashMap`.
    fn with_slot<R>(&self, symbol: Symbol, f: impl FnOnce(&Arc<Slot<S>>) -> R) -> Option<R> {
        {
            let index = self.index.load();
            if let Some(slot) = index.get(&symbol) {
                return Some(f(slot));
            }
        }
        let slot = self.slots.get(&symbol).map(|slot| Arc::clone(&slot))?;
        self.index_missed();
        Some(f(&slot))
    }

    /// Counts a lookup that found its symbol past the index, and rebuilds the
    /// index once there have been enough (unless a writer holds the registry:
    /// a later miss will do it).
    fn index_missed(&self) {
        let misses = self.index_misses.fetch_add(1, Ordering::Relaxed) + 1;
        if misses < REBUILD_AFTER_MISSES || misses < self.index.load().len() {
            return;
        }
        let registry = match self.registry.try_lock() {
            Ok(registry) => registry,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // Every slot is in the registry (it is added there, under this lock,
        // as it is added to `slots`), so the new index holds them all.
        let mut index = Index::with_capacity_and_hasher(registry.len(), *self.slots.hasher());
        index.extend(registry.iter().map(|slot| (slot.symbol, Arc::clone(slot))));
        self.index.store(Arc::new(index));
        self.index_misses.store(0, Ordering::Relaxed);
    }

    fn slot(&self, symbol: Symbol) -> Arc<Slot<S>> {
        if let Some(slot) = self.with_slot(symbol, Arc::clone) {
            return slot;
        }
        let mut registry = self.registry();
        let entry = self.slots.entry(symbol).or_insert_with(|| {
            let slot = Arc::new(Slot::new(symbol, self.history_depth));
            registry.push(Arc::clone(&slot));
            slot
        });
        Arc::clone(entry.value())
    }

    fn registry(&self) -> MutexGuard<'_, Vec<Arc<Slot<S>>>> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sequences `event` (stamping its `seq`), encodes it once with `encode`,
    /// keeps it as the symbol's last value if it is a quote, and returns who
    /// must receive it. Never blocks on a client.
    pub fn publish(&self, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Fanout<S> {
        let symbol = event.symbol();
        let index = self.index.load();
        match index.get(&symbol) {
            Some(slot) => self.publish_in(slot, event, encode),
            None => {
                drop(index);
                self.publish_in(&self.slot(symbol), event, encode)
            }
        }
    }

    /// Like [`Table::publish`] for a record that is already encoded (relayed
    /// from another hub): `encode` gets the symbol's next sequence number and
    /// returns the record stamped with it. `is_quote` says whether it is a
    /// quote, kept as the symbol's last value.
    pub fn publish_record(&self, symbol: Symbol, is_quote: bool, encode: impl FnOnce(u64) -> Bytes) -> Fanout<S> {
        let slot = self.slot(symbol);
        let mut state = slot.lock();
        let record = state.sequence_record(is_quote, slot.history_depth, encode);
        self.fanout(&state, record)
    }

    /// Like [`Table::publish_record`] for a record that stands for `merged`
    /// updates beyond itself (an upstream hub conflated them): the symbol's
    /// sequence first moves past them, so the record carries the number
    /// `last + 1 + merged` and subscribers keep the rule
    /// `seq == last + 1 + conflated` across the relay.
    pub fn publish_merged_record(
        &self,
        symbol: Symbol,
        is_quote: bool,
        merged: u32,
        encode: impl FnOnce(u64) -> Bytes,
    ) -> Fanout<S> {
        let slot = self.slot(symbol);
        let mut state = slot.lock();
        state.seq = state.seq.saturating_add(u64::from(merged));
        let record = state.sequence_record(is_quote, slot.history_depth, encode);
        self.fanout(&state, record)
    }

    fn publish_in(&self, slot: &Slot<S>, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Fanout<S> {
        let mut state = slot.lock();
        let record = state.sequence(event, slot.history_depth, encode);
        self.fanout(&state, record)
    }

    fn fanout(&self, state: &slot::SlotState<S>, record: Bytes) -> Fanout<S> {
        Fanout {
            record,
            seq: state.seq,
            subscribers: Arc::clone(&state.subscribers),
            // Read under the slot's lock: changes to `"*"` lock every slot.
            wildcard: if self.has_wildcard.load(Ordering::Relaxed) {
                let wildcard = self.wildcard.load();
                (!wildcard.is_empty()).then(|| Guard::into_inner(wildcard))
            } else {
                None
            },
        }
    }

    /// Adds `subscriber` to `symbol`. Unless it was there already, what
    /// `start` asks for (the last quote flagged snapshot, or the records since
    /// a resume point) goes to `deliver` before any live record can be fanned
    /// out to the subscriber.
    pub fn subscribe(&self, symbol: Symbol, subscriber: &S, start: Start, deliver: impl FnMut(Bytes)) {
        self.slot(symbol)
            .update(|list| with(list, subscriber), |state| state.start(start, deliver));
    }

    /// Removes the subscriber from `symbol`.
    pub fn unsubscribe(&self, symbol: Symbol, id: u64) {
        self.with_slot(symbol, |slot| slot.update(|list| without(list, id), |_| {}));
    }

    /// Subscribes to `"*"`: every symbol, now and later. `named` are the
    /// symbols the subscriber holds by name; they move into the `"*"`
    /// subscription so nothing is delivered twice. Every known symbol starts
    /// as `start_of(symbol)` says, through `deliver`.
    pub fn subscribe_all(
        &self,
        subscriber: &S,
        named: &[Symbol],
        start_of: impl Fn(Symbol) -> Start,
        mut deliver: impl FnMut(Bytes),
    ) {
        let id = subscriber.subscriber_id();
        if self.wildcard.load().iter().any(|s| s.subscriber_id() == id) {
            return;
        }
        let registry = self.registry();
        let mut states: Vec<_> = registry.iter().map(|slot| (slot.symbol, slot.lock())).collect();
        for (symbol, state) in &mut states {
            if named.contains(symbol)
                && let Some(next) = without(&state.subscribers, id)
            {
                state.subscribers = Arc::from(next);
            }
            state.start(start_of(*symbol), &mut deliver);
        }
        let mut all = Vec::clone(&self.wildcard.load());
        all.push(subscriber.clone());
        self.set_wildcard(all);
        drop(states);
        drop(registry);
    }

    /// Ends a `"*"` subscription, keeping the `named` symbols flowing without
    /// a gap (they are added back while every slot is locked).
    pub fn unsubscribe_all(&self, subscriber: &S, named: &[Symbol]) {
        let id = subscriber.subscriber_id();
        for symbol in named {
            drop(self.slot(*symbol));
        }
        let registry = self.registry();
        let mut states: Vec<_> = registry.iter().map(|slot| (slot.symbol, slot.lock())).collect();
        let current = self.wildcard.load_full();
        let Some(remaining) = without(&current, id) else { return };
        for (symbol, state) in &mut states {
            if named.contains(symbol)
                && let Some(next) = with(&state.subscribers, subscriber)
            {
                state.subscribers = Arc::from(next);
            }
        }
        self.set_wildcard(remaining);
    }

    /// Removes a subscriber from everything (on disconnect).
    pub fn remove(&self, id: u64, named: &[Symbol]) {
        for symbol in named {
            self.unsubscribe(*symbol, id);
        }
        let _registry = self.registry();
        let current = self.wildcard.load_full();
        if let Some(remaining) = without(&current, id) {
            self.set_wildcard(remaining);
        }
    }

    /// Replaces the `"*"` subscribers; the caller holds the registry's lock
    /// (and every slot's, to add one).
    fn set_wildcard(&self, subscribers: Vec<S>) {
        self.has_wildcard.store(!subscribers.is_empty(), Ordering::Relaxed);
        self.wildcard.store(Arc::new(subscribers));
    }

    /// The symbol's last quote record (as last published, not flagged snapshot).
    pub fn last_quote(&self, symbol: Symbol) -> Option<Bytes> {
        self.with_slot(symbol, |slot| {
            let state = slot.lock();
            (!state.last_quote.is_empty()).then(|| Bytes::copy_from_slice(&state.last_quote))
        })
        .flatten()
    }

    /// How many subscribers hold the symbol by name.
    pub fn subscriber_count(&self, symbol: Symbol) -> usize {
        self.with_slot(symbol, |slot| slot.lock().subscribers.len())
            .unwrap_or(0)
    }

    /// How many subscribers hold `"*"`.
    pub fn wildcard_count(&self) -> usize {
        self.wildcard.load().len()
    }

    /// Whether the table has a slot for `symbol` (it was published or
    /// subscribed to). Read-only and cheap: the symbol lookup that starts
    /// every publish, without the slot's lock. For a symbol in the index it
    /// takes no lock and writes no shared memory, so lookups on any number of
    /// threads do not slow each other down; a symbol newer than the index is
    /// found in the sharded map, and after max(256, symbols) such lookups the
    /// index is rebuilt with every symbol.
    pub fn is_known(&self, symbol: Symbol) -> bool {
        self.with_slot(symbol, |_| ()).is_some()
    }

    /// How many symbols the table knows.
    pub fn symbol_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests;
