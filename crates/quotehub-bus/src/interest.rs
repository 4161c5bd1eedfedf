//! An edge hub's interest: which symbols it reads from the bus. The first
//! client to subscribe to a symbol starts a reader of it (history first:
//! the stream's last `records_per_symbol` records, which become the edge's
//! last value and resume history), the last one to leave ends it.
//!
//! A subscribe is answered only once the symbol's history is in the table
//! ([`EdgeInterest::acquire`] completes then), so the snapshot or resume a
//! client gets comes from the same records as the live ones that follow,
//! with no gap between them: the reader then passes every later record
//! through the table, which orders it against the subscribe.
//!
//! `"*"` is one reader over every subject: every record the stream holds
//! (each symbol's last `records_per_symbol`, which become the edge's last
//! values and resume history, as a named reader's do), then every new one.
//! A `"*"` subscribe is answered once all of them are in the table, so a
//! `"*"` client that moves here from another edge resumes from the same
//! history as on the ingest hub, even where nobody held `"*"` before.
//!
//! A symbol held both by name and by `"*"` is read by two readers at once,
//! each from its own start and at its own pace. `PassOrder` (`pass_order.rs`) keeps that
//! from costing a client anything: a reader does not jump the symbol over
//! numbers another reader will bring, the table refuses the repeats, and
//! whatever enters the table first is queued to the clients first: never
//! twice, never out of order. Reading the subject twice costs bus bytes.
//!
//! A client of a symbol's derived channels (`bars.1s`, `bars.1m`, `bbo`)
//! also starts a reader of the symbol's derived records (every derived
//! channel of it; `"*"`: of every symbol), from the stream of derived
//! records: every record it holds of them, then every new one, through a
//! consumer. Its subscribe is answered once they are in the table, so the
//! channels' snapshots on an edge are the ingest hub's. Each record enters
//! through `Publisher::publish_derived_passthrough`, bytes and number
//! unchanged, only if its number is past its channel's last in the table
//! (checked and passed under one lock for all derived readers): a second
//! reader of the same channel (by name and by `"*"`) only repeats what the
//! first passed, and each reader reads everything the stream holds of its
//! channels in stream order, so neither skips numbers the other will bring.
//! A client that drops every derived channel of a symbol (or the symbol)
//! lets that reader go.
//!
//! Records enter through `Publisher::publish_passthrough` (quotehub-engine), keeping the
//! ingest hub's numbers. A record of another sequence space than the
//! edge's, newer than the record the edge learned its epoch from, means the
//! ingest hub restarted: it is not passed through (its numbers would run
//! backwards in this space), and [`EdgeInterest::epoch_changed`] says so.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use quotehub_engine::Hub;
use quotehub_engine::bus_link::Acquired;
use quotehub_proto::{Channels, Epoch, Flags, Record, Selection, Symbol};
use tokio::sync::watch;

use crate::BUS_FEED;
use crate::connection::Bus;
use crate::edge::EdgeReader;
use crate::open_retry::open_retrying;
use crate::pass_order::{PassOrder, Passed, ReaderSteps};
use crate::stream::StreamSettings;

/// What the readers have done, for `/metrics`.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// Records read from the bus.
    pub received: AtomicU64,
    /// Their bytes.
    pub received_bytes: AtomicU64,
    /// Records not passed through: another sequence space, or bytes that
    /// are not a quote or trade of the reader's symbol.
    pub foreign: AtomicU64,
    /// Readers started, ever.
    pub started: AtomicU64,
    /// Records a reader dropped because they would have skipped numbers
    /// another reader of the symbol, behind it, was about to pass.
    pub ahead: AtomicU64,
    /// Records the running readers have yet to read from the stream while
    /// they catch up (history, or a repair): the sum of each one's consumer
    /// pending count at its last record, 0 for a reader reading live. How
    /// far this edge is behind the stream, not counting records on their
    /// way over a live subscription.
    pub lag: AtomicU64,
    /// Live records a reader dropped because it had read them already
    /// (through its consumer, while catching up).
    pub repeats: AtomicU64,
    /// Times a reader caught up from the stream after reading live: it
    /// missed live records, the bus reconnected, or the client dropped
    /// messages of a full subscription.
    pub repairs: AtomicU64,
}

/// What one reader's own counts ([`EdgeReader::repeats`],
/// [`EdgeReader::repairs`]) were when last added to [`EdgeCounters`].
#[derive(Default)]
struct ReaderCounts {
    repeats: u64,
    repairs: u64,
}

impl ReaderCounts {
    fn add_to(&mut self, counters: &EdgeCounters, reader: &EdgeReader) {
        let (repeats, repairs) = (reader.repeats(), reader.repairs());
        counters
            .repeats
            .fetch_add(repeats.saturating_sub(self.repeats), Ordering::Relaxed);
        counters
            .repairs
            .fetch_add(repairs.saturating_sub(self.repairs), Ordering::Relaxed);
        *self = Self { repeats, repairs };
    }
}

/// One reader's share of [`EdgeCounters::lag`], taken back when the reader
/// ends (an aborted task drops it).
struct LagShare<'a> {
    lag: &'a AtomicU64,
    mine: u64,
}

impl<'a> LagShare<'a> {
    fn new(counters: &'a EdgeCounters) -> Self {
        Self {
            lag: &counters.lag,
            mine: 0,
        }
    }

    fn set(&mut self, pending: u64) {
        if pending >= self.mine {
            self.lag.fetch_add(pending - self.mine, Ordering::Relaxed);
        } else {
            self.lag.fetch_sub(self.mine - pending, Ordering::Relaxed);
        }
        self.mine = pending;
    }
}

impl Drop for LagShare<'_> {
    fn drop(&mut self) {
        self.lag.fetch_sub(self.mine, Ordering::Relaxed);
    }
}

/// One symbol, or every symbol (`"*"`), being read.
#[derive(Debug)]
struct Reading {
    /// The clients that hold it.
    clients: HashSet<u64>,
    /// True once the symbol's history (as of the reader's start) is in the table.
    ready: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// One kind of readers: who holds what.
#[derive(Debug, Default)]
struct Claims {
    by_selection: HashMap<Selection, Reading>,
    by_client: HashMap<u64, HashSet<Selection>>,
}

impl Claims {
    /// `client` holds `selection`, started by `start` unless it is read
    /// already; `None` past the bounds (per client, in all).
    fn claim(
        &mut self,
        client: u64,
        selection: Selection,
        max_per_client: usize,
        max_readers: usize,
        start: impl FnOnce() -> Reading,
    ) -> Option<watch::Receiver<bool>> {
        let held = self.by_client.entry(client).or_default();
        if !held.contains(&selection) && held.len() >= max_per_client {
            return None;
        }
        if !self.by_selection.contains_key(&selection) && self.by_selection.len() >= max_readers {
            return None;
        }
        let reading = self.by_selection.entry(selection).or_insert_with(start);
        held.insert(selection);
        reading.clients.insert(client);
        Some(reading.ready.clone())
    }

    /// `client` no longer holds `selections`.
    fn release(&mut self, client: u64, selections: &[Selection]) {
        let Some(held) = self.by_client.get_mut(&client) else {
            return;
        };
        for selection in selections {
            if held.remove(selection) {
                stop_if_unheld(&mut self.by_selection, *selection, client);
            }
        }
        if held.is_empty() {
            self.by_client.remove(&client);
        }
    }

    /// `client` is gone.
    fn release_all(&mut self, client: u64) {
        for selection in self.by_client.remove(&client).unwrap_or_default() {
            stop_if_unheld(&mut self.by_selection, selection, client);
        }
    }
}

#[derive(Debug, Default)]
struct Readers {
    /// Readers of quotes and trades.
    records: Claims,
    /// Readers of derived records (bars, BBO).
    derived: Claims,
}

/// What a reader reads.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Quotes and trades, from the records' stream.
    Records,
    /// Bars and BBO records, from the stream of derived records.
    Derived,
}

/// The channels a derived reader serves.
const DERIVED_CHANNELS: Channels = Channels::BARS_1S.with(Channels::BARS_1M).with(Channels::BBO);

/// The readers of one edge hub, by the interest of its clients.
#[derive(Debug)]
pub struct EdgeInterest {
    bus: Bus,
    settings: StreamSettings,
    /// The hub the records go into (a clone made before it joined the bus).
    hub: Hub,
    /// The stream position of the record the hub's epoch was learned from:
    /// a record of another epoch past it comes from a restarted ingest hub.
    learned_at: u64,
    /// Most symbols one client may have read for it; claims past it are
    /// ignored (the session refuses them anyway, by `max_symbols_per_client`).
    max_per_client: usize,
    /// Most readers at once; a symbol past it is not read (its subscribe
    /// waits for nothing and its client gets what the table has).
    max_readers: usize,
    readers: Mutex<Readers>,
    counters: Arc<EdgeCounters>,
    epoch_changed: watch::Sender<Option<Epoch>>,
    /// Shared by every reader: two readers of one symbol neither jump it
    /// over numbers the other will bring nor queue its records out of the
    /// table's order.
    order: Arc<PassOrder>,
    /// Held by a derived reader while it checks a record's number against
    /// its channel's last in the table and passes it: two readers of one
    /// channel never pass the same number twice nor out of order.
    derived_pass: Arc<Mutex<()>>,
}

impl EdgeInterest {
    /// Readers for `hub` (numbering in the stream's epoch, learned from the
    /// record at stream position `learned_at`).
    pub fn new(
        bus: Bus,
        settings: StreamSettings,
        hub: Hub,
        learned_at: u64,
        max_per_client: usize,
        max_readers: usize,
    ) -> Self {
        Self {
            bus,
            settings,
            hub,
            learned_at,
            max_per_client,
            max_readers,
            readers: Mutex::default(),
            counters: Arc::default(),
            epoch_changed: watch::channel(None).0,
            order: Arc::default(),
            derived_pass: Arc::default(),
        }
    }

    fn readers(&self) -> MutexGuard<'_, Readers> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The readers' counters.
    pub fn counters(&self) -> &EdgeCounters {
        &self.counters
    }

    /// How many readers run now (of symbols' records, and of their
    /// derived records).
    pub fn running(&self) -> usize {
        let readers = self.readers();
        readers.records.by_selection.len() + readers.derived.by_selection.len()
    }

    /// Becomes `Some(new epoch)` when the stream's records move to another
    /// sequence space (the ingest hub restarted).
    pub fn epoch_changed(&self) -> watch::Receiver<Option<Epoch>> {
        self.epoch_changed.subscribe()
    }

    /// Makes sure each of `selections` is read for `client` (its derived
    /// records too when `channels` holds a derived channel); completes once
    /// each one's history is in the table. Call it inside the runtime.
    pub fn acquire(&self, client: u64, selections: &[Selection], channels: Channels) -> Acquired {
        let mut waits = Vec::with_capacity(selections.len());
        {
            let mut readers = self.readers();
            let (bound, total) = (self.max_per_client, self.max_readers);
            for &selection in selections {
                let start = || self.start(selection, Kind::Records);
                waits.extend(readers.records.claim(client, selection, bound, total, start));
                if channels.intersects(DERIVED_CHANNELS) {
                    let start = || self.start(selection, Kind::Derived);
                    waits.extend(readers.derived.claim(client, selection, bound, total, start));
                }
            }
        }
        Box::pin(async move {
            for mut ready in waits {
                // A reader that ended (aborted) reads as ready: nothing to wait for.
                let _ = ready.wait_for(|ready| *ready).await;
            }
        })
    }

    /// `client` no longer holds `selections`: one nobody holds is no longer read.
    pub fn release(&self, client: u64, selections: &[Selection]) {
        let mut readers = self.readers();
        readers.records.release(client, selections);
        readers.derived.release(client, selections);
    }

    /// `client` holds `selections` with no derived channel any more: their
    /// derived records, if nobody else wants them, are no longer read.
    pub fn release_derived(&self, client: u64, selections: &[Selection]) {
        self.readers().derived.release(client, selections);
    }

    /// `client` is gone.
    pub fn release_all(&self, client: u64) {
        let mut readers = self.readers();
        readers.records.release_all(client);
        readers.derived.release_all(client);
    }

    /// Spawns the reader of `selection`'s records of `kind`.
    fn start(&self, selection: Selection, kind: Kind) -> Reading {
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        let (tell, ready) = watch::channel(false);
        let task = ReaderTask {
            bus: self.bus.clone(),
            settings: self.settings.clone(),
            hub: self.hub.clone(),
            learned_at: self.learned_at,
            ready: tell,
            counters: Arc::clone(&self.counters),
            epoch_changed: self.epoch_changed.clone(),
            order: Arc::clone(&self.order),
            derived_pass: Arc::clone(&self.derived_pass),
        };
        let task = match (kind, selection) {
            (Kind::Records, Selection::Symbol(symbol)) => tokio::spawn(read_symbol(task, symbol)),
            (Kind::Records, Selection::All) => tokio::spawn(read_all(task)),
            (Kind::Derived, Selection::Symbol(symbol)) => tokio::spawn(read_derived(task, Some(symbol))),
            (Kind::Derived, Selection::All) => tokio::spawn(read_derived(task, None)),
        };
        Reading {
            clients: HashSet::new(),
            ready,
            task,
        }
    }
}

impl Drop for EdgeInterest {
    fn drop(&mut self) {
        let readers = self.readers();
        for reading in readers
            .records
            .by_selection
            .values()
            .chain(readers.derived.by_selection.values())
        {
            reading.task.abort();
        }
    }
}

fn stop_if_unheld(by_selection: &mut HashMap<Selection, Reading>, selection: Selection, client: u64) {
    if let Some(reading) = by_selection.get_mut(&selection) {
        reading.clients.remove(&client);
        if reading.clients.is_empty() {
            reading.task.abort();
            by_selection.remove(&selection);
        }
    }
}

/// What one reader task needs.
struct ReaderTask {
    bus: Bus,
    settings: StreamSettings,
    hub: Hub,
    learned_at: u64,
    ready: watch::Sender<bool>,
    counters: Arc<EdgeCounters>,
    epoch_changed: watch::Sender<Option<Epoch>>,
    order: Arc<PassOrder>,
    derived_pass: Arc<Mutex<()>>,
}

/// Reads one symbol into the hub until aborted.
async fn read_symbol(task: ReaderTask, symbol: Symbol) {
    let history = u64::from(task.settings.records_per_symbol);
    let mut reader = open_retrying(symbol.as_str(), || {
        // After what the table already holds (a reader that ran before):
        // those records are there, and passing them again would be refused.
        let known = task.hub.table().last_seq(symbol);
        EdgeReader::open_after(&task.bus, &task.settings, &symbol, history, known)
    })
    .await;
    let history_end = reader.history_end_seq();
    let caught_up = |hub: &Hub| history_end.is_none_or(|end| hub.table().last_seq(symbol) >= end);
    if caught_up(&task.hub) {
        task.ready.send_replace(true);
    }
    // Made with the first record: a publisher holds a 16 KiB slab, and a
    // symbol nobody publishes (a client may name up to its share of them)
    // should cost its reader no more than the consumer.
    let mut publisher = None;
    let mut steps = ReaderSteps::new(Arc::clone(&task.order));
    let mut lag = LagShare::new(&task.counters);
    let mut counts = ReaderCounts::default();
    loop {
        let record = reader.next().await;
        lag.set(record.pending);
        counts.add_to(&task.counters, &reader);
        task.pass(&mut publisher, &mut steps, &record, Some(symbol));
        if !*task.ready.borrow() && caught_up(&task.hub) {
            task.ready.send_replace(true);
        }
    }
}

/// Reads every symbol into the hub until aborted (`"*"`).
async fn read_all(task: ReaderTask) {
    let mut reader = open_retrying("*", || EdgeReader::open_all(&task.bus, &task.settings)).await;
    let history_end = reader.history_end_position();
    if history_end.is_none() {
        task.ready.send_replace(true);
    }
    let mut publisher = None;
    let mut steps = ReaderSteps::new(Arc::clone(&task.order));
    let mut lag = LagShare::new(&task.counters);
    let mut counts = ReaderCounts::default();
    loop {
        let record = reader.next().await;
        lag.set(record.pending);
        counts.add_to(&task.counters, &reader);
        task.pass(&mut publisher, &mut steps, &record, None);
        if history_end.is_some_and(|end| record.stream_sequence >= end) {
            task.ready.send_replace(true);
        }
    }
}

/// Reads the derived records of `symbol` (`None`: of every symbol) into
/// the hub until aborted.
async fn read_derived(task: ReaderTask, symbol: Option<Symbol>) {
    let what = symbol.as_ref().map_or("*", Symbol::as_str);
    let mut reader = open_retrying(what, || {
        EdgeReader::open_derived(&task.bus, &task.settings, symbol.as_ref())
    })
    .await;
    let history_end = reader.history_end_position();
    if history_end.is_none() {
        task.ready.send_replace(true);
    }
    let mut publisher = None;
    let mut lag = LagShare::new(&task.counters);
    loop {
        let record = reader.next().await;
        lag.set(record.pending);
        task.pass_derived(&mut publisher, &record, symbol);
        if history_end.is_some_and(|end| record.stream_sequence >= end) {
            task.ready.send_replace(true);
        }
    }
}

impl ReaderTask {
    /// Counts one record read, and whether it is in the hub's sequence
    /// space (else it is counted as foreign, and, when `of_records`, a newer
    /// space noted: only a record of the records' stream can say it is
    /// newer than the one the epoch was learned from, whose position is in
    /// that stream).
    fn received_in_epoch(&self, record: &crate::BusRecord, of_records: bool) -> bool {
        let counters = &self.counters;
        counters.received.fetch_add(1, Ordering::Relaxed);
        counters
            .received_bytes
            .fetch_add(record.payload.len() as u64, Ordering::Relaxed);
        let epoch = self.hub.table().epoch();
        if record.epoch == Some(epoch) {
            return true;
        }
        counters.foreign.fetch_add(1, Ordering::Relaxed);
        if let Some(other) = record.epoch
            && of_records
            && record.stream_sequence > self.learned_at
            && self
                .epoch_changed
                .send_if_modified(|seen| seen.replace(other).is_none())
        {
            tracing::error!(
                ours = %epoch, theirs = %other,
                "bus: the ingest hub numbers in a new sequence space (it restarted); not passing its records through"
            );
        }
        false
    }

    /// Passes one derived record through into the hub, if it is a bar or
    /// BBO (of `symbol`, when given) in the hub's sequence space, numbered
    /// past its channel's last in the table.
    fn pass_derived(
        &self,
        publisher: &mut Option<quotehub_engine::Publisher>,
        record: &crate::BusRecord,
        symbol: Option<Symbol>,
    ) {
        if !self.received_in_epoch(record, false) {
            return;
        }
        let counters = &self.counters;
        // Exactly one record, as for quotes and trades.
        let whole = record.payload.len();
        let (of, seq) = match Record::decode(&record.payload) {
            Ok((Record::Bar(bar), len)) if len == whole => (bar.bar.symbol, bar.bar.seq),
            Ok((Record::Bbo(bbo), len)) if len == whole => (bbo.bbo.symbol, bbo.bbo.seq),
            _ => {
                counters.foreign.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let channel = Channels::of_wire(&record.payload);
        if !DERIVED_CHANNELS.contains(channel) || channel.is_empty() || symbol.is_some_and(|symbol| symbol != of) {
            counters.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let publisher = publisher.get_or_insert_with(|| self.hub.publisher(Flags::default(), BUS_FEED));
        let _passing = self.derived_pass.lock().unwrap_or_else(PoisonError::into_inner);
        let last = self
            .hub
            .table()
            .last_value(of, channel)
            .and_then(|last| quotehub_proto::record::seq_of(&last))
            .unwrap_or(0);
        if seq > last {
            publisher.publish_derived_passthrough(of, &record.payload);
        }
    }

    /// Passes one record through into the hub, if it is a quote or trade
    /// (of `symbol`, when given) in the hub's sequence space.
    fn pass(
        &self,
        publisher: &mut Option<quotehub_engine::Publisher>,
        steps: &mut ReaderSteps,
        record: &crate::BusRecord,
        symbol: Option<Symbol>,
    ) {
        if !self.received_in_epoch(record, true) {
            return;
        }
        let counters = &self.counters;
        // Exactly one record: the bytes are stored and sent as they are, so
        // nothing may ride along behind it.
        let whole = record.payload.len();
        let (of, is_quote, seq, conflated) = match Record::decode(&record.payload) {
            Ok((Record::Quote(quote), len)) if len == whole => {
                (quote.quote.symbol, true, quote.quote.seq, quote.conflated)
            }
            Ok((Record::Trade(trade), len)) if len == whole => {
                (trade.trade.symbol, false, trade.trade.seq, trade.conflated)
            }
            _ => {
                counters.foreign.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if symbol.is_some_and(|symbol| symbol != of) {
            counters.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let publisher = publisher.get_or_insert_with(|| self.hub.publisher(Flags::default(), BUS_FEED));
        let passed = steps.pass(
            of,
            seq,
            conflated,
            || self.hub.table().last_seq(of),
            || {
                publisher.publish_passthrough(of, is_quote, &record.payload);
            },
        );
        if passed == Passed::AheadOfAnother {
            counters.ahead.fetch_add(1, Ordering::Relaxed);
        }
    }
}
