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
///
/// Laid out for the publisher, which pushes into thousands of these per
/// event: the mutex and everything a push reads or writes (the state) fill
/// the first 64-byte cache line, the wake-up (used once per burst) comes
/// after it.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Wakes the writer; a notification sent while it is busy is kept.
    wake: Notify,
}

#[derive(Debug)]
struct State {
    fifo: VecDeque<Outbound>,
    /// Newest record per symbol while the client lags (conflate policy);
    /// `None` whenever nothing is pending, so that the common push reads a
    /// pointer here rather than the map, which lives elsewhere.
    overflow: Option<Box<Overflow>>,
    /// Records the FIFO holds before the policy applies.
    capacity: usize,
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
                overflow: None,
                capacity,
                policy,
                closed: false,
                writer_idle: true,
            }),
            wake: Notify::new(),
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
            Outbound::Record(record) if state.fifo.len() >= state.capacity || state.overflow.is_some() => {
                match state.policy {
                    // While anything is conflated, everything newer goes there
                    // too, so no record can overtake an older one of its symbol.
                    Policy::Conflate => {
                        let overflow = state.overflow.get_or_insert_with(Box::default);
                        if overflow.merge(&record) {
                            Pushed::Conflated
                        } else {
                            if overflow.is_empty() {
                                state.overflow = None;
                            }
                            // Not a quote or trade (a status): kept in order.
                            state.fifo.push_back(Outbound::Record(record));
                            Pushed::Queued
                        }
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
        if !state.fifo.is_empty() || state.overflow.is_some() {
            let take = state.fifo.len().min(max);
            out.extend(state.fifo.drain(..take));
            if state.fifo.is_empty()
                && let Some(overflow) = state.overflow.as_mut()
            {
                overflow.drain_into(out, max.saturating_sub(take));
                if overflow.is_empty() {
                    state.overflow = None;
                }
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
        state.fifo.len() + state.overflow.as_ref().map_or(0, |overflow| overflow.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn record(byte: u8) -> Outbound {
        Outbound::Record(Bytes::from(vec![byte; 8]))
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn what_a_push_touches_fits_one_cache_line() {
        assert!(std::mem::size_of::<Mutex<State>>() <= 64);
        assert_eq!(std::mem::align_of::<Queue>(), 64);
    }

    /// Pushes skip the wake-up while the writer is awake; whatever the
    /// interleaving, a writer that found the queue empty is woken by the next
    /// push, and nothing pushed in bursts is left behind. Each burst starts
    /// once the previous one was taken, so the writer sometimes waits (found
    /// the queue empty) and sometimes is still busy when it starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_gets_every_item_pushed_while_it_waits_or_works() {
        const BURSTS: usize = 200;
        const ITEMS: usize = BURSTS * (BURSTS + 1) / 2;
        let queue = Arc::new(Queue::new(ITEMS, Policy::Disconnect));
        let reader = Arc::clone(&queue);
        let writer = tokio::spawn(async move {
            let (mut taken, mut batch) = (0, Vec::new());
            while taken < ITEMS {
                batch.clear();
                // Small batches: the writer is often left with items.
                assert!(reader.drain(&mut batch, 7).await, "closed early");
                taken += batch.len();
            }
            taken
        });
        let bursts = async {
            for burst in 1..=BURSTS {
                for i in 0..burst {
                    assert_eq!(queue.push(record(i as u8)), Pushed::Queued);
                }
                while queue.depth() > 0 {
                    tokio::task::yield_now().await;
                }
            }
            writer.await.expect("writer task")
        };
        let taken = tokio::time::timeout(Duration::from_secs(20), bursts).await;
        assert_eq!(taken.expect("the writer was not woken"), ITEMS);
    }

    #[test]
    fn overflow_is_dropped_once_drained() {
        let queue = Queue::new(1, Policy::Conflate);
        let quote = |seq: u64| {
            let quote = quotehub_proto::Quote {
                symbol: "AAPL".parse().unwrap(),
                bid_price: quotehub_proto::Price::from_units(1),
                bid_size: 1,
                ask_price: quotehub_proto::Price::from_units(2),
                ask_size: 1,
                event_ts: seq,
                recv_ts: seq,
                seq,
            };
            let record = quotehub_proto::QuoteRecord {
                quote,
                flags: quotehub_proto::Flags::default(),
                conflated: 0,
            };
            Outbound::Record(Bytes::copy_from_slice(&record.encode()))
        };
        assert_eq!(queue.push(quote(1)), Pushed::Queued);
        assert_eq!(queue.push(quote(2)), Pushed::Conflated);
        assert_eq!(queue.push(quote(3)), Pushed::Conflated);
        assert_eq!(queue.depth(), 2);
        assert_eq!(queue.discard(), 2, "the FIFO's record and one conflated record");
        assert!(queue.lock().overflow.is_none());
        assert_eq!(queue.push(quote(4)), Pushed::Queued, "no longer lagging");
    }
}
