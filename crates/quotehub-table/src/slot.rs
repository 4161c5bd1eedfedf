//! One symbol's slot: its sequence, last value and subscribers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{Flags, QUOTE_LEN, restamp};
use quotehub_proto::{Channels, Event, Symbol};

use crate::{Recipient, Subscriber};

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
    /// Subscribers by name, each with the channels it holds this symbol
    /// with; replaced whole (copy-on-write), never edited in place.
    pub(crate) subscribers: Arc<[Recipient<S>]>,
    /// The symbol's latest records, oldest first, for clients that resume
    /// after a reconnect. Owned copies (a quote is the largest record), so
    /// the ring never pins the publisher's buffers.
    pub(crate) history: VecDeque<[u8; QUOTE_LEN]>,
    /// The last record of each derived channel (`bars.1s`, `bars.1m`,
    /// `bbo`, by [`derived_index`]) as published, empty before the first:
    /// the snapshots of those channels. Owned copies, like `last_quote`.
    pub(crate) last_derived: [Vec<u8>; DERIVED_CHANNELS.len()],
}

/// The channels whose records the hub derives (bars, BBO), in the order of
/// [`SlotState::last_derived`]. Their records have sequences of their own
/// and are not kept in the history (SPEC.md, "Resuming after a reconnect").
pub(crate) const DERIVED_CHANNELS: [Channels; 3] = [Channels::BARS_1S, Channels::BARS_1M, Channels::BBO];

/// Where a derived channel's last record is kept; `None` for any other set.
pub(crate) fn derived_index(channel: Channels) -> Option<usize> {
    DERIVED_CHANNELS.iter().position(|&derived| derived == channel)
}

/// What a subscribe sends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The last quote, flagged snapshot (a fresh subscription).
    Snapshot,
    /// Every record after this sequence number that the history still holds;
    /// a snapshot flagged reset when it no longer reaches back that far, or
    /// when the number is past any this symbol has had (it came from another
    /// sequence space: a hub that restarted).
    ResumeAfter(u64),
    /// The last quote flagged snapshot and reset: the client's numbers come
    /// from another sequence space (another epoch), so none of them can be
    /// continued.
    Reset,
}

pub(crate) struct Slot<S> {
    pub(crate) symbol: Symbol,
    pub(crate) state: Mutex<SlotState<S>>,
    /// How many records `history` keeps.
    pub(crate) history_depth: usize,
    /// The slot's number, in creation order (a slot created anew for a
    /// released symbol gets a new one): what `"*"` walks go by.
    pub(crate) id: u64,
    /// Set, under the lock, when the table lets go of the slot (no feed ever
    /// published to it and nobody holds it). Whoever finds it set under the
    /// lock looks the symbol up again; read without the lock only as a hint.
    released: AtomicBool,
}

impl<S: Subscriber> Slot<S> {
    pub(crate) fn new(symbol: Symbol, history_depth: usize, id: u64) -> Self {
        Self {
            symbol,
            state: Mutex::new(SlotState {
                seq: 0,
                last_quote: Vec::new(),
                subscribers: Arc::from([]),
                history: VecDeque::new(),
                last_derived: Default::default(),
            }),
            history_depth,
            id,
            released: AtomicBool::new(false),
        }
    }

    /// Whether the table has let go of the slot (exact under the lock).
    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::Relaxed)
    }

    /// Marks the slot released; the caller holds its lock.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState<S>> {
        // A panic while holding the lock leaves the state consistent (every
        // write is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the subscriber list with `change(old)`, building the new list
    /// outside the lock and retrying if another writer swapped first. Runs
    /// `on_swap` under the lock right after the swap when `change` made one.
    /// False if the slot was released (nothing changed: look it up again).
    pub(crate) fn update(
        &self,
        mut change: impl FnMut(&[Recipient<S>]) -> Option<Vec<Recipient<S>>>,
        on_swap: impl FnOnce(&mut SlotState<S>),
    ) -> bool {
        loop {
            let base = {
                let state = self.lock();
                if self.is_released() {
                    return false;
                }
                Arc::clone(&state.subscribers)
            };
            let Some(next) = change(&base) else { return true };
            let mut state = self.lock();
            if self.is_released() {
                return false;
            }
            if Arc::ptr_eq(&state.subscribers, &base) {
                state.subscribers = Arc::from(next);
                on_swap(&mut state);
                return true;
            }
        }
    }
}

impl<S> SlotState<S> {
    /// Sends what a subscriber that starts holding `channels` of this symbol
    /// gets first: of those channels only (the snapshot is the last quote,
    /// for `quotes`; the resumed history, the records of those channels).
    ///
    /// A derived channel (bars, BBO) starts with its last record flagged
    /// snapshot whatever `start` says: its records have their own sequence,
    /// which a resume point (the quotes and trades number) cannot name, and
    /// the history does not keep them, so a fresh snapshot is the honest
    /// answer (SPEC.md, "Resuming after a reconnect").
    pub(crate) fn start(&self, start: Start, channels: Channels, mut deliver: impl FnMut(Bytes)) {
        self.start_own(start, channels, &mut deliver);
        for (channel, last) in DERIVED_CHANNELS.iter().zip(&self.last_derived) {
            if channels.contains(*channel)
                && let Some(snapshot) = flagged(last, Flags::SNAPSHOT)
            {
                deliver(snapshot);
            }
        }
    }

    /// [`SlotState::start`] for the channels of the symbol's own sequence
    /// (quotes and trades).
    fn start_own(&self, start: Start, channels: Channels, mut deliver: impl FnMut(Bytes)) {
        let channels = Channels::from_bits(channels.bits() & Channels::DEFAULT.bits());
        if channels.is_empty() {
            return;
        }
        if !channels.contains(Channels::QUOTES) {
            // No snapshot to send; a resume gets its channels' history.
            if let Start::ResumeAfter(last) = start
                && last < self.seq
            {
                self.resume(last, channels, &mut deliver);
            }
            return;
        }
        match start {
            Start::Snapshot => {
                if let Some(snapshot) = self.snapshot(Flags::SNAPSHOT) {
                    deliver(snapshot);
                }
            }
            Start::ResumeAfter(last) if last == self.seq => {}
            Start::ResumeAfter(last) if last > self.seq => self.reset(&mut deliver),
            Start::Reset => self.reset(&mut deliver),
            Start::ResumeAfter(last) => {
                if !self.resume(last, channels, &mut deliver) {
                    self.reset(&mut deliver);
                }
            }
        }
    }

    /// Sends the kept records of `channels` after `last`; false, sending
    /// nothing, when the history no longer reaches back that far.
    fn resume(&self, last: u64, channels: Channels, deliver: &mut impl FnMut(Bytes)) -> bool {
        let oldest = self.history.front().map_or(u64::MAX, record_seq);
        if oldest > last.saturating_add(1) {
            return false;
        }
        for record in self.history.iter().filter(|record| record_seq(record) > last) {
            let record = &record[..record_len(record)];
            if channels.intersects(Channels::of_wire(record)) {
                deliver(Bytes::copy_from_slice(record));
            }
        }
        true
    }

    /// Sends the last quote flagged snapshot and reset, if there is one.
    fn reset(&self, deliver: &mut impl FnMut(Bytes)) {
        if let Some(snapshot) = self.snapshot(Flags::SNAPSHOT.with(Flags::RESET)) {
            deliver(snapshot);
        }
    }

    /// The last quote restamped with `flags` at the current sequence number.
    pub(crate) fn snapshot(&self, flags: Flags) -> Option<Bytes> {
        let last = self.last_quote.as_slice();
        if last.len() < 4 {
            return None;
        }
        let mut copy = BytesMut::from(last);
        let flags = Flags(last[3]).with(flags);
        restamp(&mut copy, flags, self.seq);
        Some(copy.freeze())
    }

    /// Sequences `event`, encodes it once, keeps it in the history, and keeps
    /// it as the last value if it is a quote.
    pub(crate) fn sequence(
        &mut self,
        event: &mut Event,
        history_depth: usize,
        encode: impl FnOnce(&Event) -> Bytes,
    ) -> Bytes {
        let is_quote = matches!(event, Event::Quote(_));
        self.sequence_record(is_quote, history_depth, |seq| {
            event.set_seq(seq);
            encode(event)
        })
    }

    /// Keeps `record`, which carries `seq` (past `self.seq`) already, as
    /// [`SlotState::sequence_record`] keeps a record it numbered; the
    /// symbol's number becomes `seq`.
    pub(crate) fn pass_through(&mut self, seq: u64, is_quote: bool, history_depth: usize, record: Bytes) -> Bytes {
        self.seq = seq.saturating_sub(1);
        self.sequence_record(is_quote, history_depth, |_| record)
    }

    /// Gives the next sequence number to `encode`, which returns the record
    /// carrying it; keeps that record in the history, and as the last value
    /// if it is a quote.
    pub(crate) fn sequence_record(
        &mut self,
        is_quote: bool,
        history_depth: usize,
        encode: impl FnOnce(u64) -> Bytes,
    ) -> Bytes {
        self.seq += 1;
        let record = encode(self.seq);
        if is_quote {
            overwrite(&mut self.last_quote, &record);
        }
        if history_depth > 0 && record.len() <= QUOTE_LEN {
            // A full ring reuses its oldest entry as the newest, in place.
            if self.history.len() >= history_depth {
                self.history.rotate_left(1);
            } else {
                self.history.push_back([0; QUOTE_LEN]);
            }
            if let Some(kept) = self.history.back_mut() {
                keep(kept, &record);
            }
        }
        record
    }

    /// Keeps `record`, of the derived channel at [`derived_index`] `at`,
    /// as that channel's last value (its snapshot).
    pub(crate) fn keep_derived(&mut self, at: usize, record: &[u8]) {
        if let Some(last) = self.last_derived.get_mut(at) {
            last.clear();
            last.extend_from_slice(record);
        }
    }

    /// The last record of the derived channel at `at`, as published.
    pub(crate) fn last_derived(&self, at: usize) -> Option<Bytes> {
        self.last_derived
            .get(at)
            .filter(|last| !last.is_empty())
            .map(|last| Bytes::copy_from_slice(last))
    }

    /// The snapshot a subscribe to the derived channel at `at` would start
    /// with: its last record flagged snapshot.
    pub(crate) fn derived_snapshot(&self, at: usize) -> Option<Bytes> {
        flagged(self.last_derived.get(at)?, Flags::SNAPSHOT)
    }
}

/// A copy of `record` with `flags` added; `None` for an empty one.
fn flagged(record: &[u8], flags: Flags) -> Option<Bytes> {
    if record.len() < 4 {
        return None;
    }
    let mut copy = BytesMut::from(record);
    copy[3] |= flags.0;
    Some(copy.freeze())
}

/// Makes `last` a copy of `record`; a quote record over a quote record is a
/// fixed-size copy (no `memmove` call).
fn overwrite(last: &mut Vec<u8>, record: &[u8]) {
    if let (Ok(last), Ok(record)) = (
        <&mut [u8; QUOTE_LEN]>::try_from(last.as_mut_slice()),
        <&[u8; QUOTE_LEN]>::try_from(record),
    ) {
        *last = *record;
        return;
    }
    last.clear();
    last.extend_from_slice(record);
}

/// Stores `record` (at most [`QUOTE_LEN`] bytes) in a history entry, zero-padded.
fn keep(kept: &mut [u8; QUOTE_LEN], record: &[u8]) {
    match <&[u8; QUOTE_LEN]>::try_from(record) {
        Ok(record) => *kept = *record,
        Err(_) => {
            kept[..record.len()].copy_from_slice(record);
            kept[record.len()..].fill(0);
        }
    }
}

/// The sequence number of a kept quote or trade record.
fn record_seq(record: &[u8; QUOTE_LEN]) -> u64 {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&record[24..32]);
    u64::from_le_bytes(seq)
}

/// The length a kept record declares (its first two bytes).
pub(crate) fn record_len(record: &[u8; QUOTE_LEN]) -> usize {
    usize::from(u16::from_le_bytes([record[0], record[1]])).min(QUOTE_LEN)
}

/// Without `S` in it, a list without `id`.
pub(crate) fn without<S: Subscriber>(list: &[Recipient<S>], id: u64) -> Option<Vec<Recipient<S>>> {
    list.iter().any(|r| r.subscriber.subscriber_id() == id).then(|| {
        list.iter()
            .filter(|r| r.subscriber.subscriber_id() != id)
            .cloned()
            .collect()
    })
}

/// `list` with `subscriber` holding exactly `channels` (appended if absent,
/// its entry replaced if present, taken out for [`Channels::NONE`]); `None`
/// when that is the list already.
pub(crate) fn holding<S: Subscriber>(
    list: &[Recipient<S>],
    subscriber: &S,
    channels: Channels,
) -> Option<Vec<Recipient<S>>> {
    let id = subscriber.subscriber_id();
    match list.iter().position(|r| r.subscriber.subscriber_id() == id) {
        None if channels.is_empty() => None,
        None => {
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend_from_slice(list);
            next.push(Recipient {
                subscriber: subscriber.clone(),
                channels,
            });
            Some(next)
        }
        Some(at) if list[at].channels == channels => None,
        Some(_) if channels.is_empty() => without(list, id),
        Some(at) => {
            let mut next = list.to_vec();
            next[at].channels = channels;
            Some(next)
        }
    }
}
