//! Counters the hub keeps, readable at any time without locks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hub-wide counters (relaxed atomics: each is exact, their snapshot is not atomic).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events published into the table.
    pub events_in: AtomicU64,
    /// Events a feed's symbol filter left out.
    pub events_filtered: AtomicU64,
    /// Records placed in client queues (snapshots included).
    pub records_queued: AtomicU64,
    /// Binary messages written to sockets.
    pub messages_written: AtomicU64,
    /// Connections accepted and upgraded.
    pub connections_opened: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
    /// Clients closed because their queue filled (disconnect policy).
    pub slow_consumer_disconnects: AtomicU64,
    /// Records merged into a pending one because their client lagged (conflate policy).
    pub conflations: AtomicU64,
    /// Handshakes refused or failed.
    pub handshakes_failed: AtomicU64,
    /// Connections accepted past `max_connections` or their address's
    /// pending share: answered 503 (or served, for `/health`, `/metrics`
    /// and `/admin`), or closed at once when the refusal reserve was taken too.
    pub connections_refused: AtomicU64,
    /// `accept` failures (out of descriptors and the like).
    pub accept_errors: AtomicU64,
    /// Per record written: hub receive time to message send time.
    pub ingest_to_send: crate::histogram::Histogram,
    /// Connections the hub closed on its own, by [`ForcedClose`] reason.
    pub forced_closes: [AtomicU64; ForcedClose::ALL.len()],
    /// Connections dropped without their close frame: it was not written
    /// within the close grace (the peer had stopped reading).
    pub closes_abandoned: AtomicU64,
    // Last, so the counters the fan-out writes keep their places in memory.
    /// Passed-through records refused: their sequence number was not past
    /// the symbol's last (a duplicate), or they were too short to carry one.
    pub passthrough_refused: AtomicU64,
    /// Passed-through records published after a jump in their symbol's
    /// numbers (records the upstream numbered never reached this hub).
    pub passthrough_gaps: AtomicU64,
}

/// Why the hub closed a connection on its own (`/metrics`:
/// `quotehub_forced_closes_total{reason=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedClose {
    /// Its queue filled under the disconnect policy (1008).
    SlowConsumer,
    /// Nothing heard from it for the idle timeout (1001).
    IdleTimeout,
    /// Its socket took no byte for the write timeout (dropped).
    WriteTimeout,
    /// Its unread replies passed their byte budget (1008).
    ReplyBudget,
}

impl ForcedClose {
    /// Every reason, in the order of [`Stats::forced_closes`].
    pub const ALL: [ForcedClose; 4] = [
        ForcedClose::SlowConsumer,
        ForcedClose::IdleTimeout,
        ForcedClose::WriteTimeout,
        ForcedClose::ReplyBudget,
    ];

    /// The reason's label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            ForcedClose::SlowConsumer => "slow_consumer",
            ForcedClose::IdleTimeout => "idle_timeout",
            ForcedClose::WriteTimeout => "write_timeout",
            ForcedClose::ReplyBudget => "reply_budget",
        }
    }
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a connection the hub closed on its own.
    pub fn forced_close(&self, reason: ForcedClose) {
        Self::add(&self.forced_closes[reason as usize], 1);
    }

    /// Connections the hub has closed on its own for `reason`.
    pub fn forced_closes(&self, reason: ForcedClose) -> u64 {
        Self::get(&self.forced_closes[reason as usize])
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
