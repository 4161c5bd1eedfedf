//! A client's outbound queue: a bounded FIFO the publisher pushes into
//! without waiting, drained in batches by the client's writer task. When the
//! FIFO is full, the client's slow-consumer policy decides what happens (see
//! `slow_consumer.rs`).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::slow_consumer::{Overflow, Policy};

/// What waits in a client's queue for its writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One encoded record, shared with every other recipient.
    Record(Bytes),
    /// A JSON reply.
    Text(String),
    /// A heartbeat ping.
    Ping,
    /// Close the connection with this frame once everything before it is written.
    Close(CloseFrame),
}

/// What became of a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// In the FIFO.
    Queued,
    /// Merged into the newest pending record of its symbol (conflate policy).
    Conflated,
    /// Not taken: the FIFO is full and the policy is to disconnect.
    Full,
    /// Not taken: the writer is gone.
    Closed,
}

/// What [`Queue::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Items, now in `out`.
    Some,
    /// Nothing yet.
    Nothing,
    /// Nothing, and nothing will come: the queue is closed.
    Closed,
}

/// A bounded queue with one producer side (publisher, session) and one
/// consumer (the writer task).
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Wakes the writer; a notification sent while it is busy is kept.
    wake: Notify,
    /// Records the FIFO holds before the policy applies.
    capacity: usize,
}

#[derive(Debug)]
struct State {
    fifo: VecDeque<Outbound>,
    /// Newest record per symbol while the client lags (conflate policy).
    overflow: Overflow,
    policy: Policy,
    /// The writer has stopped; pushes are refused.
    closed: bool,
    /// The writer found nothing to take and has not been woken since: the
    /// next item must wake it. While it is awake (or a wake is on its way),
    /// pushes skip the wake-up, so a burst costs one wake, not one per item.
    writer_idle: bool,
}

impl Queue {
    pub(crate) fn new(capacity: usize, policy: Policy) -> Self {
        Self {
            state: Mutex::new(State {
                fifo: VecDeque::new(),
                overflow: Overflow::default(),
                policy,
                closed: false,
                writer_idle: true,
            }),
            wake: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so poisoning is harmless.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an item without waiting. Replies, pings and closes always enter
    /// the FIFO (their number is bounded by the request rate limit and the
    /// heartbeat interval); records obey the capacity and the policy.
    pub(crate) fn push(&self, item: Outbound) -> Pushed {
        let mut state = self.lock();
        if state.closed {
            return Pushed::Closed;
        }
        let pushed = match item {
            Outbound::Record(record) if state.fifo.len() >= self.capacity || !state.overflow.is_empty() => {
                let policy = state.policy;
                match policy {
                    // While anything is conflated, everything newer goes there
                    // too, so no record can overtake an older one of its symbol.
                    Policy::Conflate if state.overflow.merge(&record) => Pushed::Conflated,
                    Policy::Conflate => {
                        // Not a quote or trade (a status): kept in order.
                        state.fifo.push_back(Outbound::Record(record));
                        Pushed::Queued
                    }
                    Policy::Disconnect => return Pushed::Full,
                }
            }
            item => {
                state.fifo.push_back(item);
                Pushed::Queued
            }
        };
        let wake = std::mem::take(&mut state.writer_idle);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        pushed
    }

    /// Changes the policy (a client may choose it per request).
    pub(crate) fn set_policy(&self, policy: Policy) {
        self.lock().policy = policy;
    }

    /// Waits for items, then moves up to `max` of them into `out`: the FIFO
    /// first, then the conflated records. Returns false once closed and empty.
    pub(crate) async fn drain(&self, out: &mut Vec<Outbound>, max: usize) -> bool {
        loop {
            match self.take(out, max) {
                Taken::Some => return true,
                Taken::Closed => return false,
                Taken::Nothing => self.wake.notified().await,
            }
        }
    }

    /// Moves up to `max` items into `out` without waiting.
    fn take(&self, out: &mut Vec<Outbound>, max: usize) -> Taken {
        let mut state = self.lock();
        if !state.fifo.is_empty() || !state.overflow.is_empty() {
            let take = state.fifo.len().min(max);
            out.extend(state.fifo.drain(..take));
            if state.fifo.is_empty() {
                state.overflow.drain_into(out, max.saturating_sub(take));
            }
            Taken::Some
        } else if state.closed {
            Taken::Closed
        } else {
            // The writer is about to wait: the next push wakes it. A push
            // between this and the wait leaves `Notify` a permit, so no wake
            // is lost.
            state.writer_idle = true;
            Taken::Nothing
        }
    }

    /// Empties the queue without waiting; returns how many items it held.
    pub(crate) fn discard(&self) -> usize {
        let mut taken = Vec::new();
        while let Taken::Some = self.take(&mut taken, usize::MAX) {}
        taken.len()
    }

    /// Refuses further pushes and wakes the writer.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Items waiting (FIFO plus conflated symbols), for metrics and tests.
    pub(crate) fn depth(&self) -> usize {
        let state = self.lock();
        state.fifo.len() + state.overflow.len()
    }
}
