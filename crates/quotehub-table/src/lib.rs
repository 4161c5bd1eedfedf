//! The symbol subscription table with its last-value cache.
//!
//! Symbols are interned through a `DashMap` (sharded, readers never wait on
//! each other) into slots. A slot holds the symbol's sequence number, its last
//! quote as encoded bytes, and its subscriber list as an `Arc<[S]>` that
//! writers replace copy-on-write. The publisher's path is: find the slot, take
//! its short lock to stamp the next sequence number, store the record and clone
//! the list's `Arc`, then release it and fan out from the clone, so it never
//! waits for a list to be rebuilt and no client is ever awaited.
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

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use quotehub_proto::{Event, Symbol};

pub use slot::Start;
use slot::{Slot, with, without};

/// Records kept per symbol for resuming clients, unless configured otherwise.
pub const DEFAULT_HISTORY_DEPTH: usize = 64;

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
    /// Subscribers of `"*"`.
    pub wildcard: Arc<Vec<S>>,
}

impl<S> Fanout<S> {
    /// Every subscriber that gets the record (each exactly once).
    pub fn recipients(&self) -> impl Iterator<Item = &S> {
        self.subscribers.iter().chain(self.wildcard.iter())
    }
}

/// The symbol → subscribers table with a last-value cache.
pub struct Table<S> {
    /// Symbol → slot; read on every publish.
    slots: DashMap<Symbol, Arc<Slot<S>>>,
    /// Every slot in creation order. Its lock also orders slot creation against
    /// `"*"` changes, so no new symbol slips between them.
    registry: Mutex<Vec<Arc<Slot<S>>>>,
    /// Subscribers of `"*"`; grown only while every slot is locked.
    wildcard: ArcSwap<Vec<S>>,
    /// Records each symbol keeps for resuming clients.
    history_depth: usize,
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
            slots: DashMap::new(),
            registry: Mutex::new(Vec::new()),
            wildcard: ArcSwap::from_pointee(Vec::new()),
            history_depth: depth,
        }
    }

    fn slot(&self, symbol: Symbol) -> Arc<Slot<S>> {
        if let Some(slot) = self.slots.get(&symbol) {
            return Arc::clone(&slot);
        }
        let mut registry = self.registry();
        let entry = self.slots.entry(symbol).or_insert_with(|| {
            let slot = Arc::new(Slot::new(symbol, self.history_depth));
            registry.push(Arc::clone(&slot));
            slot
        });
        Arc::clone(entry.value())
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot<S>>>> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sequences `event` (stamping its `seq`), encodes it once with `encode`,
    /// keeps it as the symbol's last value if it is a quote, and returns who
    /// must receive it. Never blocks on a client.
    pub fn publish(&self, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Fanout<S> {
        let symbol = event.symbol();
        let slot = match self.slots.get(&symbol) {
            Some(slot) => Arc::clone(&slot),
            None => self.slot(symbol),
        };
        let mut state = slot.lock();
        let record = state.sequence(event, slot.history_depth, encode);
        Fanout {
            record,
            seq: state.seq,
            subscribers: Arc::clone(&state.subscribers),
            wildcard: self.wildcard.load_full(),
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
        if let Some(slot) = self.slots.get(&symbol).map(|s| Arc::clone(&s)) {
            slot.update(|list| without(list, id), |_| {});
        }
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
        self.wildcard.store(Arc::new(all));
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
        self.wildcard.store(Arc::new(remaining));
    }

    /// Removes a subscriber from everything (on disconnect).
    pub fn remove(&self, id: u64, named: &[Symbol]) {
        for symbol in named {
            self.unsubscribe(*symbol, id);
        }
        let _registry = self.registry();
        let current = self.wildcard.load_full();
        if let Some(remaining) = without(&current, id) {
            self.wildcard.store(Arc::new(remaining));
        }
    }

    /// The symbol's last quote record (as last published, not flagged snapshot).
    pub fn last_quote(&self, symbol: Symbol) -> Option<Bytes> {
        let slot = self.slots.get(&symbol).map(|s| Arc::clone(&s))?;
        let state = slot.lock();
        (!state.last_quote.is_empty()).then(|| Bytes::copy_from_slice(&state.last_quote))
    }

    /// How many subscribers hold the symbol by name.
    pub fn subscriber_count(&self, symbol: Symbol) -> usize {
        let slot = self.slots.get(&symbol).map(|s| Arc::clone(&s));
        slot.map_or(0, |slot| slot.lock().subscribers.len())
    }

    /// How many subscribers hold `"*"`.
    pub fn wildcard_count(&self) -> usize {
        self.wildcard.load().len()
    }

    /// How many symbols the table knows.
    pub fn symbol_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests;
