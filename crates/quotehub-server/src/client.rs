//! The handle through which the publisher reaches one client: a bounded
//! queue that is only ever `try_send`-ed into, never awaited.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::slow_consumer;
use crate::stats::Stats;

/// What waits in a client's queue for its writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One encoded record, shared with every other recipient.
    Record(Bytes),
    /// A JSON reply.
    Text(String),
    /// Close the connection with this frame once everything before it is written.
    Close(CloseFrame),
}

/// A cheap, cloneable handle to one client's queue.
#[derive(Debug, Clone)]
pub struct ClientHandle(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// Stable id, for the table.
    id: u64,
    /// The client's bounded queue; its writer task drains it.
    queue: mpsc::Sender<Outbound>,
    /// Set once the client is being closed; later deliveries are skipped.
    closing: AtomicBool,
    /// Tells the writer to send this close frame and stop.
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
        queue: mpsc::Sender<Outbound>,
        close: watch::Sender<Option<CloseFrame>>,
        stats: Arc<Stats>,
    ) -> Self {
        Self(Arc::new(Shared {
            id,
            queue,
            closing: AtomicBool::new(false),
            close,
            stats,
        }))
    }

    /// The client's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Queues a record without waiting; a full queue triggers the slow-consumer
    /// policy. Returns whether the record was queued.
    pub fn deliver(&self, record: Bytes) -> bool {
        self.enqueue(Outbound::Record(record))
    }

    /// Queues a JSON reply, in order with the records.
    pub(crate) fn reply(&self, text: String) -> bool {
        self.enqueue(Outbound::Text(text))
    }

    fn enqueue(&self, item: Outbound) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        match self.0.queue.try_send(item) {
            Ok(()) => {
                Stats::add(&self.0.stats.records_queued, 1);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                slow_consumer::on_queue_full(self, self.0.queue.max_capacity());
                false
            }
            // The writer is gone; the session is cleaning up.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the client with `frame` after what is already queued (a status
    /// announcing shutdown, say); a client whose queue is full is closed at once.
    pub(crate) fn close_after_queue(&self, frame: CloseFrame) {
        if self.0.closing.load(Ordering::Relaxed) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(Outbound::Close(frame))) =
            self.0.queue.try_send(Outbound::Close(frame))
        {
            self.close(frame);
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

    pub(crate) fn stats(&self) -> &Stats {
        &self.0.stats
    }
}
