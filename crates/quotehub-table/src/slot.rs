//! One symbol's slot: its sequence, last value and subscribers.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{Flags, restamp};
use quotehub_proto::{Event, Symbol};

use crate::Subscriber;

/// The part of a slot that publishing and subscribing must see in one order.
///
/// Held only for constant work (bump a counter, store a `Bytes`, clone an
/// `Arc`, enqueue one snapshot): subscriber lists are rebuilt outside it.
pub(crate) struct SlotState<S> {
    /// Sequence number of the symbol's latest event (0 before the first).
    pub(crate) seq: u64,
    /// The latest quote record as encoded (empty before the first): the
    /// last-value cache. An owned copy, reused in place, so it never pins the
    /// buffer the publisher encoded into.
    pub(crate) last_quote: Vec<u8>,
    /// Subscribers by name; replaced whole (copy-on-write), never edited in place.
    pub(crate) subscribers: Arc<[S]>,
}

pub(crate) struct Slot<S> {
    pub(crate) symbol: Symbol,
    pub(crate) state: Mutex<SlotState<S>>,
}

impl<S: Subscriber> Slot<S> {
    pub(crate) fn new(symbol: Symbol) -> Self {
        Self {
            symbol,
            state: Mutex::new(SlotState {
                seq: 0,
                last_quote: Vec::new(),
                subscribers: Arc::from([]),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState<S>> {
        // A panic while holding the lock leaves the state consistent (every
        // write is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the subscriber list with `change(old)`, building the new list
    /// outside the lock and retrying if another writer swapped first. Runs
    /// `on_swap` under the lock right after the swap when `change` made one.
    pub(crate) fn update(
        &self,
        mut change: impl FnMut(&[S]) -> Option<Vec<S>>,
        on_swap: impl FnOnce(&mut SlotState<S>),
    ) {
        loop {
            let base = Arc::clone(&self.lock().subscribers);
            let Some(next) = change(&base) else { return };
            let mut state = self.lock();
            if Arc::ptr_eq(&state.subscribers, &base) {
                state.subscribers = Arc::from(next);
                on_swap(&mut state);
                return;
            }
        }
    }
}

impl<S> SlotState<S> {
    /// The last quote restamped as a snapshot at the current sequence number.
    pub(crate) fn snapshot(&self) -> Option<Bytes> {
        let last = self.last_quote.as_slice();
        if last.len() < 4 {
            return None;
        }
        let mut copy = BytesMut::from(last);
        let flags = Flags(last[3]).with(Flags::SNAPSHOT);
        restamp(&mut copy, flags, self.seq);
        Some(copy.freeze())
    }

    /// Sequences `event`, encodes it once, and keeps it if it is a quote.
    pub(crate) fn sequence(&mut self, event: &mut Event, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.seq += 1;
        event.set_seq(self.seq);
        let record = encode(event);
        if matches!(event, Event::Quote(_)) {
            self.last_quote.clear();
            self.last_quote.extend_from_slice(&record);
        }
        record
    }
}

/// Without `S` in it, a list without `id`.
pub(crate) fn without<S: Subscriber>(list: &[S], id: u64) -> Option<Vec<S>> {
    list.iter()
        .any(|s| s.subscriber_id() == id)
        .then(|| list.iter().filter(|s| s.subscriber_id() != id).cloned().collect())
}

/// `list` with `subscriber` appended, unless already present.
pub(crate) fn with<S: Subscriber>(list: &[S], subscriber: &S) -> Option<Vec<S>> {
    let id = subscriber.subscriber_id();
    (!list.iter().any(|s| s.subscriber_id() == id)).then(|| {
        let mut next = Vec::with_capacity(list.len() + 1);
        next.extend_from_slice(list);
        next.push(subscriber.clone());
        next
    })
}
