//! The hub's shared state: the table, the counters, the connected clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quotehub_feed::live::LiveStats;
use quotehub_proto::{Epoch, Flags, StatusRecord};
use quotehub_table::Table;

use crate::bus_link::{BusLink, RecordSink};
use crate::client::ClientHandle;
use crate::derived::{Derived, Emitter};
use crate::fanout::Publisher;
use crate::recorder::Recorder;
use crate::slots::{Slot, Slots};
use crate::stats::Stats;

/// A live source's name (its URL without query) and counters.
pub type NamedSource = (String, Arc<LiveStats>);

/// A quote hub: cheap to clone, shared by the feeds that publish into it and
/// the server that fans out of it.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Symbol → subscribers, with each symbol's sequence, last quote and history.
    table: Arc<Table<ClientHandle>>,
    /// Counters for logs, tests and metrics.
    stats: Arc<Stats>,
    /// Every connected client, for status records that concern them all.
    clients: Arc<Mutex<HashMap<u64, ClientHandle>>>,
    /// Source of client ids, unique for the hub's life.
    next_client_id: Arc<AtomicU64>,
    /// Dense numbers of connected clients (see `slots.rs`).
    slots: Arc<Slots>,
    /// Where ingested events are recorded, if anywhere.
    recorder: Option<Arc<Recorder>>,
    /// Where sequenced records go besides the subscribers (an ingest hub's bus), if anywhere.
    record_sink: Option<Arc<dyn RecordSink>>,
    /// The bus this hub is joined to, if any: an edge's interest, and its state for `/metrics`.
    bus: Option<Arc<dyn BusLink>>,
    /// The counters of each live source feeding the hub, by name, for `/metrics`.
    sources: Arc<Mutex<Vec<NamedSource>>>,
    /// Each symbol's bars and BBO builders, shared by every feed.
    derived: Arc<Derived>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// Records kept per symbol for resuming clients, unless configured otherwise.
    pub const DEFAULT_HISTORY_DEPTH: usize = quotehub_table::DEFAULT_HISTORY_DEPTH;

    /// An empty hub keeping the default history per symbol.
    pub fn new() -> Self {
        Self::with_history(quotehub_table::DEFAULT_HISTORY_DEPTH)
    }

    /// An empty hub keeping `depth` records per symbol for resuming clients.
    pub fn with_history(depth: usize) -> Self {
        Self::with_table(Table::with_history(depth))
    }

    /// Like [`Hub::with_history`], numbering in an upstream's `epoch`: an
    /// edge that passes the ingest hub's numbers through
    /// ([`Publisher::publish_passthrough`]) shares its sequence space, so a
    /// client resumes here with the numbers it got there.
    pub fn with_history_in(depth: usize, epoch: Epoch) -> Self {
        Self::with_table(Table::with_history_in(depth, epoch))
    }

    fn with_table(table: Table<ClientHandle>) -> Self {
        Self {
            table: Arc::new(table),
            stats: Arc::default(),
            clients: Arc::default(),
            next_client_id: Arc::default(),
            slots: Arc::default(),
            recorder: None,
            record_sink: None,
            bus: None,
            sources: Arc::default(),
            derived: Arc::default(),
        }
    }

    /// Records every event published from now on into `recorder`; set it
    /// before making publishers (each keeps the hub as it was then).
    pub fn record_to(&mut self, recorder: Arc<Recorder>) {
        self.recorder = Some(recorder);
    }

    /// The recorder, if the hub records.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.as_ref()
    }

    /// Hands every record sequenced from now on to `sink` (an ingest hub's
    /// bus); set it before making publishers (each keeps the hub as it was then).
    pub fn sink_to(&mut self, sink: Arc<dyn RecordSink>) {
        self.record_sink = Some(sink);
    }

    /// Where sequenced records go besides the subscribers, if anywhere.
    pub fn record_sink(&self) -> Option<&Arc<dyn RecordSink>> {
        self.record_sink.as_ref()
    }

    /// Joins the hub to a bus: its routes ask it for a symbol's records
    /// before answering a subscribe, and report its state. Set it before
    /// the server starts.
    pub fn join_bus(&mut self, bus: Arc<dyn BusLink>) {
        self.bus = Some(bus);
    }

    /// The bus the hub is joined to, if any.
    pub fn bus(&self) -> Option<&Arc<dyn BusLink>> {
        self.bus.as_ref()
    }

    /// A publisher for one feed; `flags` marks every record it sends (use
    /// [`Flags::REPLAYED`] for recorded feeds); `feed` names it in status records.
    pub fn publisher(&self, flags: Flags, feed: u16) -> Publisher {
        Publisher::new(self.clone(), flags, feed)
    }

    /// Sends a status record to every connected client, encoded once.
    pub fn announce(&self, status: StatusRecord) {
        let record = status.encode();
        for client in self.clients().values() {
            client.deliver(&record);
        }
    }

    /// Counters for a new live source named `name` (its URL without query),
    /// shown in `/metrics`.
    pub fn register_source(&self, name: &str) -> Arc<LiveStats> {
        let stats = Arc::new(LiveStats::default());
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name.to_owned(), Arc::clone(&stats)));
        stats
    }

    /// Every live source's name and counters.
    pub fn sources(&self) -> Vec<NamedSource> {
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The hub's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Each symbol's bars and BBO builders.
    pub(crate) fn derived(&self) -> &Derived {
        &self.derived
    }

    /// The wall-clock timer of a hub with live sources, at wall time
    /// `now_ns`: closes and publishes the bars of symbols gone quiet (see
    /// `BarBuilder::expire`). The server calls it every so often while a
    /// live source runs; replays need no timer (their event clock closes
    /// every bar, at any speed, the same way).
    pub fn expire_bars(&self, now_ns: u64) {
        let mut slab = bytes::BytesMut::new();
        let mut out = Emitter {
            table: &self.table,
            stats: &self.stats,
            slab: &mut slab,
            sink: self.record_sink.as_ref(),
        };
        self.derived.expire(now_ns, &mut out);
    }

    /// Trades left out of `interval`'s bars so far (late, size 0, or past a
    /// full bar), summed over every symbol; see `bars.rs`.
    pub fn bars_dropped(&self, interval: quotehub_proto::bar::BarInterval) -> crate::bars::Dropped {
        self.derived.dropped(interval)
    }

    /// Feed `feed`'s upstream went down: its quotes leave every symbol's
    /// BBO until its next quote; the BBOs that change are published.
    pub fn feed_down(&self, feed: u16) {
        let mut slab = bytes::BytesMut::new();
        let mut out = Emitter {
            table: &self.table,
            stats: &self.stats,
            slab: &mut slab,
            sink: self.record_sink.as_ref(),
        };
        self.derived.feed_down(feed, quotehub_proto::now_ns(), &mut out);
    }

    /// The subscription table.
    pub fn table(&self) -> &Arc<Table<ClientHandle>> {
        &self.table
    }

    /// How many clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients().len()
    }

    /// The deepest client queue right now (records and conflated symbols).
    pub fn max_queue_depth(&self) -> usize {
        self.clients()
            .values()
            .map(ClientHandle::queue_depth)
            .max()
            .unwrap_or(0)
    }

    /// Bytes waiting in every client's queue (records, conflated records,
    /// replies; a body shared by several clients counts for each).
    pub fn queued_bytes(&self) -> usize {
        self.clients().values().map(ClientHandle::queued_bytes).sum()
    }

    /// The bytes waiting in the fullest client queue right now.
    pub fn max_queued_bytes(&self) -> usize {
        self.clients()
            .values()
            .map(ClientHandle::queued_bytes)
            .max()
            .unwrap_or(0)
    }

    pub fn clients(&self) -> MutexGuard<'_, HashMap<u64, ClientHandle>> {
        self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn lease_slot(&self) -> Slot {
        self.slots.lease()
    }
}
