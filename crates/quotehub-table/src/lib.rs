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
//! Each entry of a list carries the channels its subscriber holds the symbol
//! with ([`Recipient`]); `"*"` members carry their own. A client holding a
//! symbol both ways keeps in the symbol's list only the channels `"*"` does
//! not give it, so the two sets never overlap and nothing comes twice.
//! Widening or narrowing `"*"` walks the slots like joining and leaving it.
//!
//! Subscribing swaps the new list and enqueues the snapshot under that same
//! lock, which is what makes "snapshot, then every live update, no gap, no
//! duplicate" hold even while the symbol is publishing on another thread.
//!
//! `"*"` subscribers live in one separate list read by every publish (only
//! while someone holds `"*"`: a flag says so). Slots are numbered in creation
//! order, and each `"*"` member carries a cursor over those numbers (see
//! `wildcard.rs`). Joining walks the slots in number order, one slot's lock
//! at a time: under each lock it queues the slot's snapshot, takes the
//! joiner out of the slot's named list, and moves the cursor past the slot;
//! a publish, which reads the cursor under the same lock, delivers to the
//! joiner exactly the records after its snapshot. Leaving hands the client's
//! named symbols back to their slots the same way, touching only those
//! slots. So a toggle of `"*"` costs one walk (joining: every slot, which
//! needs a snapshot each; leaving: the named symbols), no publish ever waits
//! longer than one slot's work, and the publish path, while nobody joins or
//! leaves, shares the list as before. (Locking every slot at once, as this
//! table once did, stalled every publisher for the whole walk.)
//!
//! A symbol no feed has published is only borrowed: when its last named
//! subscriber leaves, its slot is released (marked under its lock, then
//! removed from the map; the index drops it at its next rebuild). A publish
//! or subscribe that meets a released slot under its lock looks the symbol
//! up again and gets a new slot, so no publish is lost, and a sequence only
//! ever restarts for a symbol that never had one.
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

mod last_values;
mod slot;
mod wildcard;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use quotehub_proto::{Channels, Epoch, Event, Symbol};

pub use last_values::LastValues;
pub use slot::Start;
use slot::{Slot, derived_index, holding, without};
use wildcard::{Member, Wildcard};

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

/// A subscriber with the channels it holds: of one symbol in that symbol's
/// list, of every symbol in the `"*"` list. A client that holds a symbol by
/// name and by `"*"` is in both lists with sets that share no channel (its
/// named entry keeps only the channels `"*"` does not give it), so it gets
/// the union of both and no record twice.
#[derive(Debug, Clone)]
pub struct Recipient<S> {
    /// Who.
    pub subscriber: S,
    /// Which kinds of records (never [`Channels::NONE`] in a list).
    pub channels: Channels,
}

impl<S> Recipient<S> {
    /// Whether it gets a record wanted by `wanted` (the bits of the record's
    /// channel, or every bit for a record of no channel): one AND.
    #[inline]
    pub fn wants(&self, wanted: u8) -> bool {
        self.channels.bits() & wanted != 0
    }
}

/// Who gets one published record.
#[derive(Debug)]
pub struct Fanout<S> {
    /// The record, encoded once; clone it per subscriber (a reference count).
    pub record: Bytes,
    /// The sequence number given to the event.
    pub seq: u64,
    /// Subscribers of the symbol by name, with their channels of it: only
    /// those that [`Recipient::wants`] the record get it.
    pub subscribers: Arc<[Recipient<S>]>,
    /// Subscribers of `"*"`, with their channels; `None` when there are none
    /// (the common case), so a publish touches no reference count for them.
    pub wildcard: Option<Arc<Vec<Recipient<S>>>>,
}

impl<S> Fanout<S> {
    /// Every subscriber that gets the record (each exactly once): those
    /// holding its channel (every one, for a record of no channel).
    pub fn recipients(&self) -> impl Iterator<Item = &S> {
        let channel = Channels::of_wire(&self.record);
        let wanted = if channel.is_empty() { u8::MAX } else { channel.bits() };
        self.subscribers
            .iter()
            .chain(self.wildcard.iter().flat_map(|all| all.iter()))
            .filter(move |recipient| recipient.wants(wanted))
            .map(|recipient| &recipient.subscriber)
    }
}

/// What [`Table::publish_passthrough`] did with a record.
#[derive(Debug)]
pub enum Passthrough<S> {
    /// Stored; `fanout` says who receives it. `skipped` numbers lay between
    /// the symbol's last and this record's (0 when it follows on).
    Published { fanout: Fanout<S>, skipped: u64 },
    /// Not stored nor sent: its number was not past the symbol's `last`.
    Refused { last: u64 },
}

/// The symbol → subscribers table with a last-value cache.
pub struct Table<S> {
    /// Symbol → slot, every live slot: the authority, written when a symbol
    /// first appears and when an unpublished symbol is released.
    slots: DashMap<Symbol, Arc<Slot<S>>, SymbolHasher>,
    /// A copy of `slots` as of its last rebuild, read first by every lookup.
    /// It may miss the newest symbols and still hold released ones (marked
    /// so, and then looked up again in `slots`), never anything else.
    index: ArcSwap<Index<S>>,
    /// Lookups since the last rebuild that found their symbol in `slots`
    /// only, plus releases since then (each leaves a stale entry).
    index_misses: AtomicUsize,
    /// Numbers new slots, and orders their creation against changes to the
    /// `"*"` list: a slot numbered below a joiner's `first_new` was in
    /// `slots` before the joiner's walk began; any other was created after
    /// the joiner was in the list, so its publishes see the joiner.
    registry: Mutex<Registry>,
    /// Held while the index is rebuilt, so only one thread does it at a time.
    rebuilding: Mutex<()>,
    /// Subscribers of `"*"`, with how far each has joined or left.
    wildcard: ArcSwap<Wildcard<S>>,
    /// Whether `wildcard` holds anyone; set with it (under the registry's
    /// lock) so that a publish, which reads it under its slot's lock, skips
    /// loading the (nearly always empty) list. A publish that reads it stale
    /// (false just after a join) is on a slot the joiner has not walked yet
    /// (the walk takes the slot's lock after setting it), which the joiner
    /// does not receive yet anyway.
    has_wildcard: AtomicBool,
    /// Records each symbol keeps for resuming clients.
    history_depth: usize,
    /// The identity of the sequence numbers this table issues, chosen at
    /// random when it is made: a restarted hub numbers in a new space.
    epoch: Epoch,
}

/// What the registry lock guards.
struct Registry {
    /// The number the next new slot gets.
    next_slot: u64,
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
        Self::with_history_in(depth, Epoch::random())
    }

    /// Like [`Table::with_history`], numbering in `epoch` rather than a new
    /// space: for an edge hub that passes an upstream's numbers through
    /// (see [`Table::publish_passthrough`]), so a client's resume point,
    /// taken on the upstream or on another edge of it, is honoured here.
    pub fn with_history_in(depth: usize, epoch: Epoch) -> Self {
        Self {
            slots: DashMap::with_hasher(SymbolHasher::default()),
            index: ArcSwap::from_pointee(Index::with_hasher(SymbolHasher::default())),
            index_misses: AtomicUsize::new(0),
            registry: Mutex::new(Registry { next_slot: 0 }),
            rebuilding: Mutex::new(()),
            wildcard: ArcSwap::from_pointee(Wildcard::empty()),
            has_wildcard: AtomicBool::new(false),
            history_depth: depth,
            epoch,
        }
    }

    /// The sequence space of this table's numbers (see [`Epoch`]).
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Runs `f` on the symbol's slot, if the symbol is known. The slot is
    /// borrowed from the index when it is there (no reference count to
    /// touch), else from the `DashMap`. A released slot counts as unknown.
    fn with_slot<R>(&self, symbol: Symbol, f: impl FnOnce(&Arc<Slot<S>>) -> R) -> Option<R> {
        {
            let index = self.index.load();
            if let Some(slot) = index.get(&symbol)
                && !slot.is_released()
            {
                return Some(f(slot));
            }
        }
        let slot = self.slots.get(&symbol).map(|slot| Arc::clone(&slot))?;
        if slot.is_released() {
            return None;
        }
        self.index_missed();
        Some(f(&slot))
    }

    /// Counts a lookup that found its symbol past the index (or a release),
    /// and rebuilds the index once there have been enough (unless another
    /// thread is rebuilding it: a later miss will do it).
    fn index_missed(&self) {
        let misses = self.index_misses.fetch_add(1, Ordering::Relaxed) + 1;
        if misses < REBUILD_AFTER_MISSES || misses < self.index.load().len() {
            return;
        }
        let _rebuilding = match self.rebuilding.try_lock() {
            Ok(rebuilding) => rebuilding,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let mut index = Index::with_capacity_and_hasher(self.slots.len(), *self.slots.hasher());
        index.extend(
            self.slots
                .iter()
                .filter(|entry| !entry.value().is_released())
                .map(|entry| (*entry.key(), Arc::clone(entry.value()))),
        );
        self.index.store(Arc::new(index));
        self.index_misses.store(0, Ordering::Relaxed);
    }

    /// The symbol's live slot, created if there is none (or only a released one).
    fn slot(&self, symbol: Symbol) -> Arc<Slot<S>> {
        if let Some(slot) = self.with_slot(symbol, Arc::clone) {
            return slot;
        }
        let mut registry = self.registry();
        let mut create = || {
            let slot = Arc::new(Slot::new(symbol, self.history_depth, registry.next_slot));
            registry.next_slot += 1;
            slot
        };
        match self.slots.entry(symbol) {
            Entry::Occupied(entry) if !entry.get().is_released() => Arc::clone(entry.get()),
            Entry::Occupied(mut entry) => {
                let slot = create();
                entry.insert(Arc::clone(&slot));
                slot
            }
            Entry::Vacant(entry) => Arc::clone(entry.insert(create()).value()),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sequences `event` (stamping its `seq`), encodes it once with `encode`,
    /// keeps it as the symbol's last value if it is a quote, and returns who
    /// must receive it. Never blocks on a client.
    pub fn publish(&self, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Fanout<S> {
        let symbol = event.symbol();
        {
            let index = self.index.load();
            if let Some(slot) = index.get(&symbol) {
                let mut state = slot.lock();
                if !slot.is_released() {
                    let record = state.sequence(event, slot.history_depth, encode);
                    return self.fanout(slot, &state, record);
                }
            }
        }
        self.publish_past_index(event, encode)
    }

    /// [`Table::publish`] for a symbol newer than the index or released
    /// since it was built: a released slot, found under its lock, is looked
    /// up again (a new one then), so a publish is never lost.
    #[cold]
    #[inline(never)]
    fn publish_past_index(&self, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Fanout<S> {
        let symbol = event.symbol();
        loop {
            let slot = self.slot(symbol);
            let mut state = slot.lock();
            if !slot.is_released() {
                let record = state.sequence(event, slot.history_depth, encode);
                return self.fanout(&slot, &state, record);
            }
        }
    }

    /// Like [`Table::publish`] for a record that is already encoded (relayed
    /// from another hub): `encode` gets the symbol's next sequence number and
    /// returns the record stamped with it. `is_quote` says whether it is a
    /// quote, kept as the symbol's last value.
    pub fn publish_record(&self, symbol: Symbol, is_quote: bool, encode: impl FnOnce(u64) -> Bytes) -> Fanout<S> {
        self.publish_merged_record(symbol, is_quote, 0, encode)
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
        loop {
            let slot = self.slot(symbol);
            let mut state = slot.lock();
            if !slot.is_released() {
                state.seq = state.seq.saturating_add(u64::from(merged));
                let record = state.sequence_record(is_quote, slot.history_depth, encode);
                return self.fanout(&slot, &state, record);
            }
        }
    }

    /// Publishes a record that already carries its sequence number `seq`
    /// (an upstream hub gave it: an edge passes the ingest hub's numbers
    /// through unchanged). The record is stored (history, and last value if
    /// `is_quote`) and fanned out exactly as given; the symbol's number
    /// becomes `seq`. A `seq` at or below the symbol's last is refused:
    /// nothing is stored or sent (a duplicate, or a record from before this
    /// hub joined). A jump past `last + 1` is published and reported in
    /// `skipped`; the symbol's first record is where this hub joined the
    /// stream, not a jump.
    pub fn publish_passthrough(&self, symbol: Symbol, is_quote: bool, seq: u64, record: Bytes) -> Passthrough<S> {
        loop {
            let slot = self.slot(symbol);
            let mut state = slot.lock();
            if slot.is_released() {
                continue;
            }
            let last = state.seq;
            if seq <= last {
                return Passthrough::Refused { last };
            }
            let skipped = if last == 0 { 0 } else { seq - last - 1 };
            let record = state.pass_through(seq, is_quote, slot.history_depth, record);
            let fanout = self.fanout(&slot, &state, record);
            return Passthrough::Published { fanout, skipped };
        }
    }

    /// Publishes a record the hub derived for `symbol` (a bar or a BBO,
    /// numbered in its channel's own sequence by whoever built it): keeps it
    /// as its channel's last value, the snapshot a new subscriber of the
    /// channel gets, and returns who receives it, under the slot's lock, so
    /// that a subscriber gets the snapshot or the record, never both and
    /// never neither. The symbol's own sequence (quotes and trades) and its
    /// history are untouched. A record of no derived channel is only fanned
    /// out (to every subscriber: see [`Fanout::recipients`]); the caller
    /// sends only bars and BBOs.
    pub fn publish_derived(&self, symbol: Symbol, record: Bytes) -> Fanout<S> {
        let at = derived_index(Channels::of_wire(&record));
        let seq = record.get(24..32).map_or(0, |seq| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(seq);
            u64::from_le_bytes(bytes)
        });
        // The index first, as `publish` does: a derived record follows a
        // publish of its symbol, so its slot is there but for a new symbol,
        // and this way no reference count is touched to find it.
        {
            let index = self.index.load();
            if let Some(slot) = index.get(&symbol) {
                let mut state = slot.lock();
                if !slot.is_released() {
                    return self.fanout_derived(slot, &mut state, at, seq, record);
                }
            }
        }
        loop {
            let slot = self.slot(symbol);
            let mut state = slot.lock();
            if !slot.is_released() {
                return self.fanout_derived(&slot, &mut state, at, seq, record);
            }
        }
    }

    /// [`Table::publish_derived`] under the slot's lock: keeps the record as
    /// the last value of its channel (at `at`) and says who receives it.
    fn fanout_derived(
        &self,
        slot: &Slot<S>,
        state: &mut slot::SlotState<S>,
        at: Option<usize>,
        seq: u64,
        record: Bytes,
    ) -> Fanout<S> {
        if let Some(at) = at {
            state.keep_derived(at, &record);
        }
        let mut fanout = self.fanout(slot, state, record);
        fanout.seq = seq;
        fanout
    }

    /// Who receives `record`; called under the slot's lock, which is what
    /// lines the `"*"` members' cursors up with this record.
    fn fanout(&self, slot: &Slot<S>, state: &slot::SlotState<S>, record: Bytes) -> Fanout<S> {
        Fanout {
            record,
            seq: state.seq,
            subscribers: Arc::clone(&state.subscribers),
            wildcard: if self.has_wildcard.load(Ordering::Relaxed) {
                self.wildcard.load().recipients(slot.id)
            } else {
                None
            },
        }
    }

    /// Adds `subscriber` to `symbol` with the default channels, quotes and
    /// trades (what a request naming no channel means; bars and BBOs are
    /// only for those who name them: see [`Table::hold`]). Unless it was there
    /// already, what `start` asks for (the last quote flagged snapshot, or
    /// the records since a resume point) goes to `deliver` before any live
    /// record can be fanned out to the subscriber.
    pub fn subscribe(&self, symbol: Symbol, subscriber: &S, start: Start, deliver: impl FnMut(Bytes)) {
        self.hold(symbol, subscriber, Channels::DEFAULT, start, Channels::DEFAULT, deliver);
    }

    /// Makes `subscriber` hold `symbol` by name with exactly `channels`
    /// ([`Channels::NONE`]: not at all, as [`Table::unsubscribe`]). Unless it
    /// held it so already, what `start` asks for, of the channels `starting`
    /// (those the change gives it, which only the caller knows: `"*"` may
    /// give it some already), goes to `deliver` under the slot's lock,
    /// together with the change: before any live record of them can be
    /// fanned out to the subscriber, and after every earlier one.
    pub fn hold(
        &self,
        symbol: Symbol,
        subscriber: &S,
        channels: Channels,
        start: Start,
        starting: Channels,
        mut deliver: impl FnMut(Bytes),
    ) {
        if channels.is_empty() {
            self.unsubscribe(symbol, subscriber.subscriber_id());
            return;
        }
        // A slot released under us (its last subscriber left before any
        // publish) is looked up again, and then created anew.
        while !self.slot(symbol).update(
            |list| holding(list, subscriber, channels),
            |state| state.start(start, starting, &mut deliver),
        ) {}
    }

    /// Removes the subscriber from `symbol`; a symbol no feed has published
    /// is released when nobody holds it any more.
    pub fn unsubscribe(&self, symbol: Symbol, id: u64) {
        self.with_slot(symbol, |slot| {
            slot.update(|list| without(list, id), |_| {});
            self.release_if_unused(slot);
        });
    }

    /// Removes `slot` from the table if no feed ever published to it and
    /// nobody holds it by name. Marked under its lock first, so a publish or
    /// a subscribe that reaches it afterwards looks the symbol up again and
    /// gets a new slot; sequence numbers only restart for a symbol that never
    /// had one.
    fn release_if_unused(&self, slot: &Arc<Slot<S>>) {
        {
            let state = slot.lock();
            if state.seq != 0 || !state.subscribers.is_empty() || slot.is_released() {
                return;
            }
            slot.release();
        }
        self.slots.remove_if(&slot.symbol, |_, kept| Arc::ptr_eq(kept, slot));
        // The index may still hold it: count it toward a rebuild.
        self.index_missed();
    }

    /// Subscribes to `"*"` with the default channels (quotes and trades; see
    /// [`Table::widen_all`] for others): every symbol, now and later.
    /// The subscriber's named symbols (`is_named`) move into the `"*"`
    /// subscription so nothing is delivered twice. Every known symbol starts
    /// as `start_of(symbol)` says, through `deliver`.
    pub fn subscribe_all(
        &self,
        subscriber: &S,
        is_named: impl Fn(Symbol) -> bool,
        start_of: impl Fn(Symbol) -> Start,
        deliver: impl FnMut(Bytes),
    ) {
        self.widen_all(
            subscriber,
            Channels::DEFAULT,
            |symbol| is_named(symbol).then_some(Channels::NONE),
            |symbol| (start_of(symbol), Channels::DEFAULT),
            deliver,
        );
    }

    /// Makes `subscriber` hold `"*"` with `channels`: every channel it held
    /// `"*"` with (none, to join) and more; nothing happens when it holds
    /// them all already. Under each known slot's lock, in turn: its named
    /// entry there, if it has one (`entry_of` gives `Some`), becomes
    /// `entry_of(symbol)` (the named channels `"*"` does not give, so that
    /// nothing is delivered twice), and `start_of(symbol)`, a start and the
    /// channels it is for (those newly given), goes to `deliver`.
    ///
    /// Walks every slot in number order, one slot's lock at a time: no
    /// publish waits longer than one slot's snapshot.
    pub fn widen_all(
        &self,
        subscriber: &S,
        channels: Channels,
        entry_of: impl Fn(Symbol) -> Option<Channels>,
        start_of: impl Fn(Symbol) -> (Start, Channels),
        mut deliver: impl FnMut(Bytes),
    ) {
        let id = subscriber.subscriber_id();
        let (member, first_new, channels) = {
            let registry = self.registry();
            let current = self.wildcard.load();
            let before = current.member(id).map_or(Channels::NONE, |member| member.after());
            if before.contains(channels) {
                return;
            }
            // Widening keeps what it held.
            let channels = channels.with(before);
            let member = Arc::new(Member::widening(
                subscriber.clone(),
                before,
                channels,
                registry.next_slot,
            ));
            self.set_wildcard(current.with(Arc::clone(&member)));
            (member, registry.next_slot, channels)
        };
        // Every slot that existed at the change (newer ones need no
        // snapshot: their first publish already sees the new set).
        let mut slots: Vec<Arc<Slot<S>>> = self
            .slots
            .iter()
            .filter(|entry| entry.value().id < first_new)
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        slots.sort_unstable_by_key(|slot| slot.id);
        for slot in &slots {
            let mut state = slot.lock();
            if !slot.is_released() {
                if let Some(entry) = entry_of(slot.symbol)
                    && let Some(next) = holding(&state.subscribers, subscriber, entry)
                {
                    state.subscribers = Arc::from(next);
                }
                let (start, starting) = start_of(slot.symbol);
                state.start(start, starting, &mut deliver);
            }
            member.walked(slot.id);
        }
        drop(slots);
        self.settle_wildcard(subscriber, &member, channels);
    }

    /// Ends a `"*"` subscription, keeping the `named` symbols flowing without
    /// a gap or a duplicate: each is handed back to its slot under that
    /// slot's lock, in slot number order. Touches only those slots.
    pub fn unsubscribe_all(&self, subscriber: &S, named: impl IntoIterator<Item = Symbol>) {
        self.narrow_all(
            subscriber,
            Channels::NONE,
            named.into_iter().map(|symbol| (symbol, Channels::DEFAULT)),
        );
    }

    /// Makes `subscriber` hold `"*"` with `channels`, fewer than it holds it
    /// with ([`Channels::NONE`] leaves `"*"`); nothing happens when it holds
    /// none of the others. Its `named` symbols keep the channels they are
    /// named with flowing without a gap or a duplicate: each named entry
    /// becomes the given set (the named channels `"*"` no longer gives)
    /// under that slot's lock, in slot number order. Touches only those
    /// slots.
    pub fn narrow_all(&self, subscriber: &S, channels: Channels, named: impl IntoIterator<Item = (Symbol, Channels)>) {
        let id = subscriber.subscriber_id();
        let (member, channels) = {
            let _registry = self.registry();
            let current = self.wildcard.load();
            let Some(old) = current.member(id) else { return };
            let before = old.after();
            if channels.contains(before) {
                return;
            }
            // Narrowing adds nothing.
            let channels = before.without(before.without(channels));
            let member = Arc::new(Member::narrowing(subscriber.clone(), before, channels));
            old.joined();
            self.set_wildcard(current.with(Arc::clone(&member)));
            (member, channels)
        };
        let entries: HashMap<Symbol, Channels> = named.into_iter().collect();
        let mut pending: Vec<Symbol> = entries.keys().copied().collect();
        while !pending.is_empty() {
            // A slot released before its hand-over is created anew, with a
            // number above every slot in this round: the next round's.
            let mut slots: Vec<Arc<Slot<S>>> = pending.drain(..).map(|symbol| self.slot(symbol)).collect();
            slots.sort_unstable_by_key(|slot| slot.id);
            for slot in slots {
                let mut state = slot.lock();
                if slot.is_released() {
                    pending.push(slot.symbol);
                    continue;
                }
                let entry = entries.get(&slot.symbol).copied().unwrap_or(Channels::NONE);
                if let Some(next) = holding(&state.subscribers, subscriber, entry) {
                    state.subscribers = Arc::from(next);
                }
                member.walked(slot.id);
            }
        }
        if channels.is_empty() {
            self.leave_wildcard(id);
        } else {
            self.settle_wildcard(subscriber, &member, channels);
        }
    }

    /// Ends a change of `"*"`: every slot gets the new set, and the list
    /// holds the member as held again (unless it left meanwhile).
    fn settle_wildcard(&self, subscriber: &S, member: &Arc<Member<S>>, channels: Channels) {
        let _registry = self.registry();
        member.joined();
        let current = self.wildcard.load();
        if current
            .member(subscriber.subscriber_id())
            .is_some_and(|m| Arc::ptr_eq(m, member))
        {
            self.set_wildcard(current.with(Arc::new(Member::held(subscriber.clone(), channels))));
        }
    }

    /// Removes a subscriber from everything (on disconnect).
    pub fn remove(&self, id: u64, named: impl IntoIterator<Item = Symbol>) {
        for symbol in named {
            self.unsubscribe(symbol, id);
        }
        self.leave_wildcard(id);
    }

    /// Takes the member of that id out of the `"*"` list.
    fn leave_wildcard(&self, id: u64) {
        let _registry = self.registry();
        let current = self.wildcard.load();
        if let Some(member) = current.member(id) {
            member.gone();
            self.set_wildcard(current.without(id));
        }
    }

    /// Replaces the `"*"` list; the caller holds the registry's lock.
    fn set_wildcard(&self, wildcard: Wildcard<S>) {
        self.has_wildcard.store(!wildcard.is_empty(), Ordering::Relaxed);
        self.wildcard.store(Arc::new(wildcard));
    }

    /// The symbol's last quote record (as last published, not flagged snapshot).
    pub fn last_quote(&self, symbol: Symbol) -> Option<Bytes> {
        self.with_slot(symbol, |slot| {
            let state = slot.lock();
            (!state.last_quote.is_empty()).then(|| Bytes::copy_from_slice(&state.last_quote))
        })
        .flatten()
    }

    /// The last record of one `channel` of the symbol, as a new subscriber
    /// of that channel gets it but not flagged snapshot: the last quote, the
    /// last closed bar of `bars.1s` or `bars.1m`, the current BBO. `None`
    /// before the first, and for `trades` or a set of several channels.
    pub fn last_value(&self, symbol: Symbol, channel: Channels) -> Option<Bytes> {
        if channel == Channels::QUOTES {
            return self.last_quote(symbol);
        }
        let at = derived_index(channel)?;
        self.with_slot(symbol, |slot| slot.lock().last_derived(at)).flatten()
    }

    /// How many subscribers hold the symbol by name.
    pub fn subscriber_count(&self, symbol: Symbol) -> usize {
        self.with_slot(symbol, |slot| slot.lock().subscribers.len())
            .unwrap_or(0)
    }

    /// How many subscribers hold `"*"` (or are joining or leaving it).
    pub fn wildcard_count(&self) -> usize {
        self.wildcard.load().len()
    }

    /// Whether the table has a slot for `symbol` (it was published, or is
    /// subscribed to). Read-only and cheap: the symbol lookup that starts
    /// every publish, without the slot's lock. For a symbol in the index it
    /// takes no lock and writes no shared memory, so lookups on any number of
    /// threads do not slow each other down; a symbol newer than the index is
    /// found in the sharded map, and after max(256, symbols) such lookups the
    /// index is rebuilt with every symbol.
    pub fn is_known(&self, symbol: Symbol) -> bool {
        self.with_slot(symbol, |_| ()).is_some()
    }

    /// Whether a feed has published `symbol` (it has a sequence number).
    /// Takes the slot's lock: for requests, not for the publish path.
    pub fn is_published(&self, symbol: Symbol) -> bool {
        self.with_slot(symbol, |slot| slot.lock().seq > 0).unwrap_or(false)
    }

    /// The symbol's last sequence number (0: never published). Takes the
    /// slot's lock: for an edge's readers, not for the publish path.
    pub fn last_seq(&self, symbol: Symbol) -> u64 {
        self.with_slot(symbol, |slot| slot.lock().seq).unwrap_or(0)
    }

    /// How many symbols the table knows.
    pub fn symbol_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod passthrough_tests;

#[cfg(test)]
mod channel_tests;
