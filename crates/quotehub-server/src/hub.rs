//! The hub's shared state: the table, the counters and client ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quotehub_proto::Flags;
use quotehub_table::Table;

use crate::client::ClientHandle;
use crate::fanout::Publisher;
use crate::stats::Stats;

/// A quote hub: cheap to clone, shared by the feeds that publish into it and
/// the server that fans out of it.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    /// Symbol → subscribers, with each symbol's sequence and last quote.
    table: Arc<Table<ClientHandle>>,
    /// Counters for logs, tests and (later) metrics.
    stats: Arc<Stats>,
    /// Source of client ids, unique for the hub's life.
    next_client_id: Arc<AtomicU64>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// A publisher for one feed; `flags` marks every record it sends (use
    /// [`Flags::REPLAYED`] for recorded feeds).
    pub fn publisher(&self, flags: Flags) -> Publisher {
        Publisher::new(Arc::clone(&self.table), Arc::clone(&self.stats), flags)
    }

    /// The hub's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The subscription table.
    pub fn table(&self) -> &Arc<Table<ClientHandle>> {
        &self.table
    }

    pub(crate) fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}
