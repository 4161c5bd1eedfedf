//! The handle through which the publisher reaches one client: a bounded
//! queue that is only ever pushed into without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::queue::{Outbound, Pushed, Queue};
use crate::slow_consumer::{self, Policy};
use crate::stats::Stats;

/// A cheap, cloneable handle to one client's queue.
#[derive(Debug, Clone)]
pub struct ClientHandle(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// Stable id, for the table.
    id: u64,
    /// The client's queue; its writer task drains it.
    queue: Arc<Queue>,
    /// Records the queue holds before the slow-consumer policy applies.
    capacity: usize,
    /// Set once the client is being closed; later deliveries are skipped.
    closing: AtomicBool,
    /// Tells the writer to send this close frame and stop, ahead of the queue.
    close: watch::Sender<Option<CloseFrame>>,
    /// Hub counters.
    stats: Arc<Stats>,
}

impl quotehub_table::Subscriber for ClientHandle {
    fn subscriber_id(&self) -> u64 {
        self.0.id
    }
}

impl ClientHandle {
    pub(crate) fn new(
        id: u64,
        queue: Arc<Queue>,
        capacity: usize,
        close: watch::Sender<Option<CloseFrame>>,
        stats: Arc<Stats>,
    ) -> Self {
        Self(Arc::new(Shared {
            id,
            queue,
            capacity,
            closing: AtomicBool::new(false),
            close,
            stats,
        }))
    }

    /// The client's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Queues a record without waiting; a full queue applies the client's
    /// slow-consumer policy. Returns whether the record was taken.
    pub fn deliver(&self, record: Bytes) -> bool {
        self.enqueue(Outbound::Record(record))
    }

    /// Queues a JSON reply, in order with the records.
    pub(crate) fn reply(&self, text: String) -> bool {
        self.enqueue(Outbound::Text(text))
    }

    /// Queues a heartbeat ping.
    pub(crate) fn ping(&self) -> bool {
        self.enqueue(Outbound::Ping)
    }

    /// Changes the client's slow-consumer policy.
    pub(crate) fn set_policy(&self, policy: Policy) {
        self.0.queue.set_policy(policy);
    }

    fn enqueue(&self, item: Outbound) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        match self.0.queue.push(item) {
            Pushed::Queued => {
                Stats::add(&self.0.stats.records_queued, 1);
                true
            }
            Pushed::Conflated => {
                Stats::add(&self.0.stats.conflations, 1);
                true
            }
            Pushed::Full => {
                slow_consumer::disconnect(self, self.0.capacity);
                false
            }
            // The writer is gone; the session is cleaning up.
            Pushed::Closed => false,
        }
    }

    /// Closes the client with `frame` after what is already queued (a status
    /// announcing shutdown, say).
    pub(crate) fn close_after_queue(&self, frame: CloseFrame) {
        if !self.0.closing.load(Ordering::Relaxed) {
            self.0.queue.push(Outbound::Close(frame));
        }
    }

    /// Closes the client with `frame`, once, ahead of anything queued; the
    /// writer sends it and stops.
    pub(crate) fn close(&self, frame: CloseFrame) -> bool {
        if self.0.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.0.close.send_replace(Some(frame));
        true
    }

    /// Items waiting in the client's queue.
    pub fn queue_depth(&self) -> usize {
        self.0.queue.depth()
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.0.stats
    }
}
