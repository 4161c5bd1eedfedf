//! The handle through which the publisher reaches one client: a bounded
//! queue that is only ever pushed into without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use quotehub_proto::Channels;

use tungstenite::protocol::CloseFrame;

use crate::hub::Hub;
use crate::queue::{Outbound, Pushed, PushedAll, Queue};
use crate::send_batch::SendBatch;
use crate::slots::Slot;
use crate::slow_consumer::{self, Policy};
use crate::stats::{ForcedClose, Stats};
use tracing::warn;
use tungstenite::protocol::frame::coding::CloseCode;

/// A cheap, cloneable handle to one client's queue.
#[derive(Debug, Clone)]
pub struct ClientHandle(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// Stable id, for the table.
    id: u64,
    /// A small number no other connected client has (see `slots.rs`).
    slot: Slot,
    /// The client's queue; its writer task drains it.
    queue: Arc<Queue>,
    /// Records the queue holds before the slow-consumer policy applies.
    capacity: usize,
    /// Set once the client is being closed; later deliveries are skipped.
    closing: AtomicBool,
    /// Tells the writer to send this close frame and stop, ahead of the queue.
    close: Box<dyn Closer>,
    /// Hub counters.
    stats: Arc<Stats>,
}

/// How the engine tells the edge that owns a client's connection to close
/// it now, ahead of its queue: the writer sends `frame` and stops. Called at
/// most once per client. (The edge picks the signal its writer waits on; the
/// engine names no runtime.)
pub trait Closer: Send + Sync + std::fmt::Debug {
    /// Close the connection with `frame`, ahead of anything queued.
    fn close(&self, frame: CloseFrame);
}

/// The closer of a client nobody writes to ([`ClientHandle::unconnected`]).
#[derive(Debug)]
struct NoWriter;

impl Closer for NoWriter {
    fn close(&self, _frame: CloseFrame) {}
}

/// Records queued and conflated by some deliveries, not yet added to the
/// hub's counters.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    queued: u64,
    conflated: u64,
}

impl Tally {
    /// Adds the counts to the hub's counters.
    pub(crate) fn add_to(self, stats: &Stats) {
        if self.queued > 0 {
            Stats::add(&stats.records_queued, self.queued);
        }
        if self.conflated > 0 {
            Stats::add(&stats.conflations, self.conflated);
        }
    }
}

impl quotehub_table::Subscriber for ClientHandle {
    fn subscriber_id(&self) -> u64 {
        self.0.id
    }
}

impl ClientHandle {
    pub fn new(
        id: u64,
        slot: Slot,
        queue: Arc<Queue>,
        capacity: usize,
        close: Box<dyn Closer>,
        stats: Arc<Stats>,
    ) -> Self {
        Self(Arc::new(Shared {
            id,
            slot,
            queue,
            capacity,
            closing: AtomicBool::new(false),
            close,
            stats,
        }))
    }

    /// A client with a queue of `capacity` records but no connection: nothing
    /// drains it except [`ClientHandle::discard_queued`]. For benchmarks of
    /// the real publish path (`benches/fanout.rs`), which live outside this
    /// crate; hidden because an application has no use for a client that
    /// nobody reads. (A public hidden constructor rather than a cargo feature:
    /// a feature would be unified into every build of the workspace anyway.)
    #[doc(hidden)]
    pub fn unconnected(hub: &Hub, capacity: usize, policy: Policy) -> Self {
        Self::new(
            hub.next_client_id(),
            hub.lease_slot(),
            Arc::new(Queue::new(capacity, policy, crate::queue::DEFAULT_MAX_MESSAGE_BYTES)),
            capacity,
            Box::new(NoWriter),
            Arc::clone(hub.stats()),
        )
    }

    /// Takes everything out of the queue without waiting, as a writer would,
    /// and drops it; returns how many items there were. For benchmarks (see
    /// [`ClientHandle::unconnected`]).
    #[doc(hidden)]
    pub fn discard_queued(&self) -> usize {
        self.0.queue.discard()
    }

    /// The client's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The client's queue, for tests that read what was delivered.
    #[cfg(test)]
    pub(crate) fn queue(&self) -> &Queue {
        &self.0.queue
    }

    /// The client's slot number (dense, unique among connected clients).
    pub(crate) fn slot(&self) -> usize {
        self.0.slot.number()
    }

    /// Queues (copies) a record without waiting; a full queue applies the
    /// client's slow-consumer policy. Returns whether the record was taken.
    pub fn deliver(&self, record: &[u8]) -> bool {
        let mut tally = Tally::default();
        let taken = self.deliver_counted(record, &mut tally);
        tally.add_to(&self.0.stats);
        taken
    }

    /// [`ClientHandle::deliver`] for the publisher's fan-out loop: the
    /// record is counted in `tally`, which the publisher adds to the hub's
    /// counters once per event, instead of every delivery writing the same
    /// shared counter.
    pub(crate) fn deliver_counted(&self, record: &[u8], tally: &mut Tally) -> bool {
        self.deliver_all(std::iter::once(record), tally, None)
    }

    /// Queues (copies) a catch-up record (a snapshot, or history a
    /// resuming client missed) without waiting: like
    /// [`ClientHandle::deliver`], in runs of its own that the writer does
    /// not time from ingest to send (their receive times are old).
    pub fn deliver_catch_up(&self, record: &[u8]) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        let mut tally = Tally::default();
        let taken = self.count(self.0.queue.push_catch_up(std::iter::once(record)), &mut tally);
        tally.add_to(&self.0.stats);
        taken
    }

    /// Queues a JSON reply, in order with the records.
    pub fn reply(&self, text: String) -> bool {
        self.enqueue(Outbound::Text(text))
    }

    /// Queues a heartbeat ping.
    pub fn ping(&self) -> bool {
        self.enqueue(Outbound::Ping)
    }

    /// Changes the client's slow-consumer policy.
    pub fn set_policy(&self, policy: Policy) {
        self.0.queue.set_policy(policy);
    }

    /// [`ClientHandle::deliver_counted`] for several records, in order,
    /// under one lock of the queue. False if any was not taken: the queue
    /// was full under the disconnect policy (the client is closed), or the
    /// writer is gone (the session is cleaning up). `direct`: the pusher may
    /// write them to the socket itself, in that batch of sends (see
    /// `direct.rs`).
    pub(crate) fn deliver_all<'a>(
        &self,
        records: impl Iterator<Item = &'a [u8]>,
        tally: &mut Tally,
        direct: Option<&mut SendBatch>,
    ) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        self.count(self.0.queue.push_staged(records, direct), tally)
    }

    /// [`ClientHandle::deliver_all`] for a body of `records` whole records
    /// that other clients get alike: queued by reference when they all fit
    /// as they are, else one by one under the client's policy.
    pub(crate) fn deliver_shared(
        &self,
        body: &Bytes,
        records: u32,
        tally: &mut Tally,
        direct: Option<&mut SendBatch>,
    ) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        self.count(self.0.queue.push_shared_staged(body, records, direct), tally)
    }

    /// Adds what a push did to `tally`; disconnects the client if its queue
    /// was full under the disconnect policy. False if anything was refused.
    fn count(&self, pushed: PushedAll, tally: &mut Tally) -> bool {
        tally.queued += pushed.queued;
        tally.conflated += pushed.conflated;
        if pushed.refused == Some(Pushed::Full) {
            slow_consumer::disconnect(self, self.0.capacity);
        }
        pushed.refused.is_none()
    }

    /// Queues a reply or ping; false if the writer is gone or closing, or
    /// if the reply would pass the client's reply budget: then the client
    /// is closed (1008, "reply budget: ...").
    fn enqueue(&self, item: Outbound) -> bool {
        if self.0.closing.load(Ordering::Relaxed) {
            return false;
        }
        match self.0.queue.push(item) {
            Pushed::Queued => true,
            Pushed::Full => {
                let budget = self.0.queue.reply_budget();
                let frame = CloseFrame {
                    code: CloseCode::Policy,
                    reason: format!("reply budget: over {budget} bytes of replies unread").into(),
                };
                if self.close(frame) {
                    self.0.stats.forced_close(ForcedClose::ReplyBudget);
                    warn!(
                        client = self.0.id,
                        budget, "closing a client that does not read its replies"
                    );
                }
                false
            }
            Pushed::Conflated | Pushed::Closed => false,
        }
    }

    /// Closes the client with `frame` after what is already queued (a status
    /// announcing shutdown, say).
    pub fn close_after_queue(&self, frame: CloseFrame) {
        if !self.0.closing.load(Ordering::Relaxed) {
            self.0.queue.push(Outbound::Close(frame));
        }
    }

    /// Closes the client with `frame`, once, ahead of anything queued; the
    /// writer sends it and stops.
    pub fn close(&self, frame: CloseFrame) -> bool {
        if self.0.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.0.close.close(frame);
        true
    }

    /// Bytes waiting in the client's queue (see `Queue::bytes`).
    pub fn queued_bytes(&self) -> usize {
        self.0.queue.bytes()
    }

    /// Items waiting in the client's queue.
    pub fn queue_depth(&self) -> usize {
        self.0.queue.depth()
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.0.stats
    }
}

/// The channel bits a recipient must hold to receive `record`: its channel's
/// bit, or every bit for a record of no channel (status records go to every
/// client whatever it named). Computed once per record, then ANDed with each
/// recipient's set for the record's symbol ([`Recipient::wants`]).
///
/// [`Recipient::wants`]: quotehub_table::Recipient::wants
#[inline]
pub(crate) fn wanted_by(record: &[u8]) -> u8 {
    match Channels::of_wire(record) {
        channel if channel.is_empty() => u8::MAX,
        channel => channel.bits(),
    }
}
