//! Counters a live source keeps, readable at any time (by `/metrics`) without locks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One live source's counters (relaxed atomics: each is exact, a snapshot
/// of several is not atomic).
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Connections established (for WebSocket upstreams: authenticated and subscribed).
    pub connects: AtomicU64,
    /// Established connections that were lost.
    pub disconnects: AtomicU64,
    /// Connection attempts that failed before the source was up.
    pub failed_attempts: AtomicU64,
    /// Lines (TCP) or messages (WebSocket) received.
    pub messages: AtomicU64,
    /// Quotes and trades decoded and handed to the hub.
    pub events: AtomicU64,
    /// Lines, elements or records rejected (counted, logged, skipped).
    pub rejected: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Whether the source is connected now.
    pub up: AtomicBool,
    /// The first rejections, as "where: why" (at most [`LiveStats::KEPT_REJECTIONS`]).
    first_rejections: Mutex<Vec<String>>,
}

impl LiveStats {
    /// How many rejections are kept with their details.
    pub const KEPT_REJECTIONS: usize = 100;

    /// Counts a rejection, keeping its details while there is room; returns
    /// how many came before it.
    pub(crate) fn reject(&self, rejection: impl FnOnce() -> String) -> u64 {
        let before = self.rejected.fetch_add(1, Ordering::Relaxed);
        if before < Self::KEPT_REJECTIONS as u64 {
            let mut kept = self
                .first_rejections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() < Self::KEPT_REJECTIONS {
                kept.push(rejection());
            }
        }
        before
    }

    /// The first rejections, as "where: why".
    pub fn first_rejections(&self) -> Vec<String> {
        self.first_rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Whether the source is connected now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}
