//! The engine's two seams to a bus (NATS JetStream, in `quotehub-bus`),
//! named here so that the engine depends on no bus and no runtime, as the
//! [`crate::Recorder`] is hooked:
//!
//! - [`RecordSink`]: every record the hub sequences, with its epoch and
//!   number, handed over as the one encoded `Bytes` (an ingest hub);
//! - [`BusLink`]: what the server asks of a bus for its clients: the
//!   records of a symbol before a client's subscribe is answered (an edge
//!   hub's interest), and the bus's state for `/metrics` and `/health`.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use quotehub_proto::{Channels, Epoch, Selection, StatusRecord, Symbol};

/// Takes each record the hub sequences, and, if it wants them, the records
/// the hub derives and the feeds' status records. Called on the publishing
/// thread, right after the table stored the record (or the clients were
/// told): it must queue, never wait. The calls come in the order the hub's
/// own clients are handed the records.
pub trait RecordSink: Send + Sync + Debug {
    /// Record `seq` of `symbol` in sequence space `epoch`, encoded once
    /// (the same bytes the subscribers' queues get).
    fn sequenced(&self, symbol: Symbol, epoch: Epoch, seq: u64, record: &Bytes);

    /// A bar or BBO record the hub derived for `symbol`, numbered in its
    /// channel's own sequence (the same bytes the subscribers' queues get).
    /// Ignored unless a sink wants them (a bus and delay lines do).
    fn derived(&self, symbol: Symbol, record: &Bytes) {
        let _ = (symbol, record);
    }

    /// A feed's state changed (`replay_started`, `upstream_down`, ...): the
    /// status record every client of the hub was just sent. Ignored unless
    /// a sink wants them.
    fn status(&self, status: &StatusRecord) {
        let _ = status;
    }
}

/// Completes when what [`BusLink::acquire`] asked for is in the table.
pub type Acquired = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the bus looks like now, for `/metrics` and `/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusView {
    /// `ingest`, `edge` or `both`.
    pub role: &'static str,
    /// Whether the connection to the bus is up now.
    pub connected: bool,
    /// How many times it connected, the first time included.
    pub connects: u64,
    /// Records the stream acknowledged as stored (ingest).
    pub published_records: u64,
    /// Their bytes (ingest).
    pub published_bytes: u64,
    /// Records dropped because the ingest buffer was full while the bus was away.
    pub ingest_dropped_records: u64,
    /// Bytes queued for the bus and not yet acknowledged (ingest).
    pub ingest_buffered_bytes: u64,
    /// Records read from the bus (edge).
    pub received_records: u64,
    /// Their bytes (edge).
    pub received_bytes: u64,
    /// Readers running now (edge): of symbols' records, and of their
    /// derived records (bars, BBO) for clients of those channels.
    pub readers: u64,
    /// Readers started, ever (edge).
    pub readers_started: u64,
    /// Records the edge's readers have yet to read from the stream: how far
    /// it is behind (edge).
    pub edge_lag_records: u64,
    /// Records read and not passed through: another sequence space, or not
    /// a quote or trade of the reader's symbol (edge).
    pub edge_foreign_records: u64,
    /// Records a reader dropped because passing them would have jumped over
    /// numbers another reader of the symbol, behind it, was about to pass
    /// (edge): that reader brings them.
    pub edge_ahead_records: u64,
    /// Live records a reader dropped because it had read them already
    /// (edge).
    pub edge_repeats: u64,
    /// Times a reader caught up from the stream after reading live: a
    /// missed live record, a reconnect, a full subscription (edge).
    pub edge_repairs: u64,
    /// The ingest lease, on a hub that ingests; `None` on an edge.
    pub lease: Option<LeaseView>,
}

/// The ingest lease as one ingest hub sees it, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseView {
    /// Who holds it, as last seen (`None`: nobody, or unknown).
    pub holder: Option<String>,
    /// Whether this hub publishes now (holds it and has taken over).
    pub active: bool,
    /// Takeovers this hub completed.
    pub takeovers: u64,
    /// Of its takeovers, those of a lease the previous holder released on
    /// a clean shutdown (taken at once, not after the TTL).
    pub after_release: u64,
    /// Times it lost the lease (taken, or the bus away past the deadline).
    pub losses: u64,
    /// Symbols a takeover could not align (a skipped number each), summed.
    pub unmatched: u64,
}

/// The bus as the server's routes see it.
pub trait BusLink: Send + Sync + Debug {
    /// Client `client` is about to subscribe to `selections` (symbols, or
    /// `"*"`) with `channels`: on an edge, make sure each is being read from
    /// the bus (its derived records too, for a derived channel), and
    /// complete once each one's history is in the table, so that the
    /// subscribe's snapshot or resume and the live records after it have no
    /// gap between them. Callers bound the wait. An ingest hub has nothing
    /// to fetch.
    fn acquire(&self, client: u64, selections: &[Selection], channels: Channels) -> Acquired {
        let _ = (client, selections, channels);
        Box::pin(std::future::ready(()))
    }

    /// Client `client` unsubscribed from `selections`: one nobody holds
    /// any more is no longer read.
    fn release(&self, client: u64, selections: &[Selection]) {
        let _ = (client, selections);
    }

    /// Client `client` holds `selections` still, but none of their derived
    /// channels (bars, BBO): their derived records, if nobody else wants
    /// them, are no longer read.
    fn release_derived(&self, client: u64, selections: &[Selection]) {
        let _ = (client, selections);
    }

    /// Client `client` is gone: as [`BusLink::release`] of all it held.
    fn release_all(&self, client: u64) {
        let _ = client;
    }

    /// The bus's state and counters now.
    fn view(&self) -> BusView;
}
