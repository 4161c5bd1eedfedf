//! The ingest side: records out to the stream, never making the engine wait.
//!
//! The engine hands over each encoded record (the SPEC.md bytes, sent on
//! unchanged) with its symbol and sequence number; [`IngestPublisher::publish`]
//! only queues it. A task sends the queue to JetStream in windows of at most
//! `max_in_flight` records and waits for every ack; a record whose ack fails
//! (the bus is away, a timeout) goes back to the front of the queue and is
//! sent again after a backoff. Every record carries the message id
//! `<symbol>:<epoch>:<seq>`, so a record sent twice (a retry whose first ack
//! was lost, or a standby re-publishing after a takeover) is stored once.
//!
//! While the bus is away the queue grows up to `max_buffered_bytes`; past
//! that the oldest queued records are dropped and counted: when the bus
//! comes back, the latest quotes of every symbol are what reach it.
//!
//! Known limit: within one window, if an earlier record's ack fails while a
//! later record of the same symbol is stored, the retry lands after it. The
//! records keep their sequence numbers, so a reader sees the order break
//! (a sequence at or below one it has) rather than a silent gap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use quotehub_proto::{Epoch, Symbol};
use tokio::sync::{Notify, watch};

use crate::connection::{Bus, ConnectionState};
use crate::message_id;
use crate::subject::Subjects;

/// How the publisher sends and buffers.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Records sent before their acks are awaited: bounds the memory and the
    /// re-sends of one window.
    pub max_in_flight: usize,
    /// Bytes (payloads, subjects and ids) queued and in flight at most;
    /// past it the oldest queued records are dropped and counted.
    pub max_buffered_bytes: usize,
    /// The first wait before re-sending after a failed ack; it doubles up
    /// to `retry_max` while failures go on.
    pub retry_min: Duration,
    /// The longest wait between re-sends.
    pub retry_max: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            // About 100,000 quote records with their subjects and ids.
            max_buffered_bytes: 16 << 20,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        }
    }
}

/// What the publisher has done, for `/metrics` and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestCounters {
    /// Records the stream acknowledged as stored.
    pub published: u64,
    /// Their payload bytes.
    pub published_bytes: u64,
    /// Records the stream acknowledged as duplicates (already stored).
    pub duplicates: u64,
    /// Records dropped because the buffer was full.
    pub dropped: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Sends whose ack failed and that were queued again.
    pub retries: u64,
    /// Bytes queued or in flight now.
    pub buffered_bytes: u64,
}

/// One record on its way.
#[derive(Debug)]
struct Outgoing {
    subject: String,
    id: String,
    payload: Bytes,
}

impl Outgoing {
    fn cost(&self) -> usize {
        self.subject.len() + self.id.len() + self.payload.len()
    }
}

#[derive(Debug, Default)]
struct Buffer {
    queue: VecDeque<Outgoing>,
    /// Bytes queued plus in flight (the bound covers both).
    bytes: usize,
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    published_bytes: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the sending task when the queue gains a record.
    queued: Notify,
    /// Wakes [`IngestPublisher::flush`] when nothing is queued or in flight.
    idle: Notify,
    counters: Counters,
    max_buffered_bytes: usize,
}

impl Shared {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // The lock guards plain data that every holder leaves consistent.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Publishes records to the stream from a task of its own; dropped, it
/// stops that task (what is still queued is lost).
#[derive(Debug)]
pub struct IngestPublisher {
    shared: Arc<Shared>,
    subjects: Subjects,
    task: tokio::task::JoinHandle<()>,
}

impl IngestPublisher {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(bus: &Bus, subjects: Subjects, settings: IngestSettings) -> Self {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            queued: Notify::new(),
            idle: Notify::new(),
            counters: Counters::default(),
            max_buffered_bytes: settings.max_buffered_bytes,
        });
        let task = tokio::spawn(send_loop(
            bus.jetstream().clone(),
            bus.state(),
            Arc::clone(&shared),
            settings,
        ));
        Self { shared, subjects, task }
    }

    /// The message id of a record: one per record of one sequence space.
    pub fn message_id(symbol: &Symbol, epoch: Epoch, seq: u64) -> String {
        message_id::format(symbol, epoch, seq)
    }

    /// Queues one encoded record of `symbol` with sequence `seq` in sequence
    /// space `epoch`. Never waits; returns false if the record could not be
    /// kept (larger than the whole buffer), which is counted as dropped.
    pub fn publish(&self, symbol: &Symbol, epoch: Epoch, seq: u64, record: Bytes) -> bool {
        let outgoing = Outgoing {
            subject: self.subjects.of(symbol),
            id: Self::message_id(symbol, epoch, seq),
            payload: record,
        };
        let cost = outgoing.cost();
        let counters = &self.shared.counters;
        let drop_one = |bytes: usize| {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            counters.dropped_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        };
        {
            let mut buffer = self.shared.buffer();
            while buffer.bytes + cost > self.shared.max_buffered_bytes {
                // The oldest queued record makes room; in-flight ones stay.
                let Some(oldest) = buffer.queue.pop_front() else { break };
                buffer.bytes -= oldest.cost();
                drop_one(oldest.cost());
            }
            if buffer.bytes + cost > self.shared.max_buffered_bytes {
                drop(buffer);
                drop_one(cost);
                return false;
            }
            buffer.bytes += cost;
            buffer.queue.push_back(outgoing);
        }
        self.shared.queued.notify_one();
        true
    }

    /// What it has done so far.
    pub fn counters(&self) -> IngestCounters {
        let c = &self.shared.counters;
        IngestCounters {
            published: c.published.load(Ordering::Relaxed),
            published_bytes: c.published_bytes.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            dropped_bytes: c.dropped_bytes.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            buffered_bytes: self.shared.buffer().bytes as u64,
        }
    }

    /// Waits until every record queued so far is acknowledged (or dropped).
    /// Waits as long as the bus is away: callers bound it with a timeout.
    pub async fn flush(&self) {
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.buffer().bytes == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for IngestPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends windows of records and waits for their acks, until aborted.
async fn send_loop(
    jetstream: jetstream::Context,
    mut state: watch::Receiver<ConnectionState>,
    shared: Arc<Shared>,
    settings: IngestSettings,
) {
    let window_len = settings.max_in_flight.max(1);
    let mut backoff = settings.retry_min;
    loop {
        let queued = shared.queued.notified();
        let window: Vec<Outgoing> = {
            let mut buffer = shared.buffer();
            let take = buffer.queue.len().min(window_len);
            buffer.queue.drain(..take).collect()
        };
        if window.is_empty() {
            shared.idle.notify_waiters();
            queued.await;
            continue;
        }
        let failed = send_window(&jetstream, &shared, window).await;
        if failed.is_empty() {
            backoff = settings.retry_min;
            continue;
        }
        shared
            .counters
            .retries
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        {
            let mut buffer = shared.buffer();
            for outgoing in failed.into_iter().rev() {
                buffer.queue.push_front(outgoing);
            }
        }
        // Pacing the re-sends while the bus is away, cut short when it
        // comes back (a reconnect is the event worth waiting for).
        let connects = state.borrow_and_update().connects;
        tokio::select! {
            () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(settings.retry_max),
            back = async { state.wait_for(|now| now.connected && now.connects > connects).await.is_ok() } => {
                if back {
                    backoff = settings.retry_min;
                } else {
                    // No client left to report a reconnect: pace by the clock.
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

/// Sends one window and waits for every ack; returns the records to send
/// again, in their order. Acknowledged records leave the byte count.
async fn send_window(jetstream: &jetstream::Context, shared: &Shared, window: Vec<Outgoing>) -> Vec<Outgoing> {
    let mut sent = Vec::with_capacity(window.len());
    for outgoing in window {
        let publish = PublishMessage::build()
            .message_id(&outgoing.id)
            .payload(outgoing.payload.clone());
        let ack = jetstream.send_publish(outgoing.subject.clone(), publish).await;
        sent.push((outgoing, ack));
    }
    // The acks are awaited together: each has its own timeout from the
    // moment it is polled, so awaiting them one by one would make a window
    // that the bus never answers take `max_in_flight` timeouts to fail.
    let results = futures_util::future::join_all(sent.into_iter().map(|(outgoing, ack)| async move {
        let result = match ack {
            Ok(ack) => ack.await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        (outgoing, result)
    }))
    .await;
    let mut failed = Vec::new();
    let mut acked_bytes = 0;
    for (outgoing, result) in results {
        match result {
            Ok(ack) => {
                let counter = if ack.duplicate {
                    &shared.counters.duplicates
                } else {
                    &shared.counters.published
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if !ack.duplicate {
                    shared
                        .counters
                        .published_bytes
                        .fetch_add(outgoing.payload.len() as u64, Ordering::Relaxed);
                }
                acked_bytes += outgoing.cost();
            }
            Err(error) => {
                tracing::debug!(%error, subject = %outgoing.subject, id = %outgoing.id, "bus publish failed; will re-send");
                failed.push(outgoing);
            }
        }
    }
    if !failed.is_empty() {
        tracing::warn!(
            records = failed.len(),
            "bus publish acks failed; re-sending after a pause"
        );
    }
    shared.buffer().bytes -= acked_bytes;
    failed
}
