//! A client's outbound queue: a bounded queue the publisher pushes into
//! without waiting, drained in batches by the client's writer task. When it
//! is full, the client's slow-consumer policy decides what happens (see
//! `slow_consumer.rs`).
//!
//! Records gather into *runs*, the records of one binary message (see
//! `run.rs`), so that the writer sends what it takes as it is. A record
//! pushed on its own is copied (72 bytes, under a lock no one else holds for
//! long) into the client's own buffer: no reference count shared with other
//! clients' writers, whose increments and decrements fought over one cache
//! line when every delivery cloned the publisher's `Bytes`. A batch of
//! records that several clients get alike comes as one shared body
//! ([`Queue::push_shared`]): one reference per client per batch rather than
//! one copy per client per record.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{MESSAGE_HEADER_LEN, QUOTE_LEN};
use tungstenite::protocol::CloseFrame;

use crate::direct::{DirectWrite, Written};
use crate::frame;
pub(crate) use crate::run::Run;
use crate::run::{Records, cut_reaching};
use crate::send_batch::SendBatch;
use crate::slow_consumer::{Overflow, PENDING_BYTES, Policy};
use crate::wake::Wake;

/// Room for this many quotes when a client's own buffer starts; it grows as
/// needed.
const RUN_START_RECORDS: usize = 14;

/// Most record bytes batched into one binary message, unless configured
/// otherwise (`ServerConfig::max_message_bytes`).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Status records (hub announcements) a conflating client may have queued
/// beyond its capacity: they are never merged, so past this the client is
/// closed as a slow consumer rather than queued for without bound.
pub(crate) const STATUS_ROOM: usize = 1_024;

/// What waits in a client's queue for its writer.
#[derive(Debug)]
pub enum Outbound {
    /// Records in wire order: one binary message.
    Records(Run),
    /// A JSON reply.
    Text(String),
    /// A heartbeat ping.
    Ping,
    /// Whole frames tungstenite wrote while reading (pongs, the answer to a
    /// client's close), sent as they are.
    Control(Bytes),
    /// Close the connection with this frame once everything before it is written.
    Close(CloseFrame),
    /// The rest of a message the pusher began writing itself (see
    /// `direct.rs`), sent as it is, before anything else.
    Unfinished(Bytes),
}

impl Outbound {
    /// What the item counts for against a drain's limit: its records, or 1.
    fn weight(&self) -> usize {
        match self {
            Outbound::Records(run) => run.records as usize,
            _ => 1,
        }
    }

    /// Bytes the item holds for the client (what its payload costs to keep).
    fn bytes(&self) -> usize {
        match self {
            Outbound::Records(run) => run.len(),
            Outbound::Ping | Outbound::Close(_) => 0,
            Outbound::Unfinished(rest) => rest.len(),
            _ => self.reply_bytes(),
        }
    }

    /// Bytes the item counts against the reply budget: replies, and frames
    /// tungstenite wrote (pongs, the answer to a close).
    fn reply_bytes(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            Outbound::Control(frames) => frames.len(),
            _ => 0,
        }
    }
}

/// What became of a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// In the queue.
    Queued,
    /// Merged into the newest pending record of its symbol (conflate policy).
    Conflated,
    /// Not taken: the queue is full and the policy is to disconnect.
    Full,
    /// Not taken: the writer is gone.
    Closed,
}

/// What became of records pushed together.
#[derive(Debug, Default)]
pub struct PushedAll {
    pub(crate) queued: u64,
    pub(crate) conflated: u64,
    /// Why the pushing stopped early ([`Pushed::Full`] or [`Pushed::Closed`]).
    pub(crate) refused: Option<Pushed>,
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
#[repr(C, align(64))]
pub struct Queue {
    state: Mutex<State>,
    /// Wakes the writer; a notification sent while it is busy is kept.
    wake: Wake,
}

/// Laid out for the publisher, which pushes into thousands of these per
/// event: what a record push reads or writes comes first, the FIFO of
/// finished runs and other items (touched once per message) last.
#[derive(Debug)]
#[repr(C)]
struct State {
    /// Records copied in after everything in `fifo` and `parts` (empty
    /// when there are none).
    copied: BytesMut,
    /// Newest record per symbol while the client lags (conflate policy);
    /// `None` whenever nothing is pending, so that the common push reads a
    /// pointer here rather than the map, which lives elsewhere.
    overflow: Option<Box<Overflow>>,
    /// Bytes `copied` may reach before the open run is finished: the run's
    /// limit less what `parts` hold.
    room: usize,
    /// Records in the open run (`parts` and `copied`).
    run_records: u32,
    /// Records in the open run and in the runs in `fifo`: what the capacity bounds.
    queued: u32,
    /// Records the queue holds before the policy applies.
    capacity: u32,
    policy: Policy,
    /// The writer has stopped; pushes are refused.
    closed: bool,
    /// The open run holds catch-up records (snapshots, resumed history),
    /// not live ones: runs never mix the two, so that the writer times only
    /// live records from ingest to send.
    open_catch_up: bool,
    /// The writer found nothing to take and has not been woken since: the
    /// next item must wake it. While it is awake (or a wake is on its way),
    /// pushes skip the wake-up, so a burst costs one wake, not one per item.
    writer_idle: bool,
    /// Finished runs, replies, pings and closes, in order.
    fifo: VecDeque<Outbound>,
    /// The open run's parts before `copied`: shared bodies, and records
    /// copied before one.
    parts: Vec<Bytes>,
    /// Bytes of records in a whole run: a run ends with the record that
    /// reaches this.
    max_run_bytes: usize,
    /// Bytes the items in `fifo` hold (runs, replies, frames).
    fifo_bytes: usize,
    /// Of `fifo_bytes`, those of replies and tungstenite's frames.
    reply_bytes: usize,
    /// Most bytes of replies waiting: a reply past it is refused and the
    /// client closed (see `client.rs`).
    reply_budget: usize,
    /// The connection's socket, when the pusher may write to it itself
    /// while the writer is idle (see `direct.rs`); dropped at close.
    direct: Option<Box<dyn DirectWrite>>,
}

impl State {
    /// Takes a record if the capacity and the policy allow.
    fn offer(&mut self, record: &[u8]) -> Pushed {
        if self.closed {
            return Pushed::Closed;
        }
        if self.queued < self.capacity && self.overflow.is_none() {
            self.append(record);
            return Pushed::Queued;
        }
        match self.policy {
            // While anything is conflated, everything newer goes there
            // too, so no record can overtake an older one of its symbol.
            Policy::Conflate => {
                let overflow = self.overflow.get_or_insert_with(Box::default);
                if overflow.merge(record) {
                    Pushed::Conflated
                } else {
                    if overflow.is_empty() {
                        self.overflow = None;
                    }
                    // Not a quote or trade (a status): kept in order, up to a point.
                    if self.queued as usize >= self.capacity as usize + STATUS_ROOM {
                        return Pushed::Full;
                    }
                    self.append(record);
                    Pushed::Queued
                }
            }
            Policy::Disconnect => Pushed::Full,
        }
    }

    /// Offers records one by one, in order; stops at the first refused.
    fn offer_all<'a>(&mut self, records: impl Iterator<Item = &'a [u8]>) -> PushedAll {
        let mut all = PushedAll::default();
        for record in records {
            match self.offer(record) {
                Pushed::Queued => all.queued += 1,
                Pushed::Conflated => all.conflated += 1,
                refused => {
                    all.refused = Some(refused);
                    break;
                }
            }
        }
        all
    }

    /// Whether `records` more fit as they are: open, not lagging, and
    /// within the capacity.
    fn takes_whole(&self, records: u32) -> bool {
        !self.closed && self.overflow.is_none() && self.queued.checked_add(records).is_some_and(|n| n <= self.capacity)
    }

    fn append(&mut self, record: &[u8]) {
        if self.copied.is_empty() {
            self.copied.reserve(RUN_START_RECORDS * QUOTE_LEN);
        }
        self.copied.extend_from_slice(record);
        self.run_records += 1;
        self.queued += 1;
        if self.copied.len() >= self.room {
            self.finish_run();
        }
    }

    /// Appends a body of `records` whole records by reference, cut where a
    /// run reaches its limit, as copied records would be.
    fn append_shared(&mut self, mut body: Bytes, mut records: u32) {
        self.freeze_copied();
        while !body.is_empty() {
            if body.len() < self.room {
                self.room -= body.len();
                self.count(records);
                self.parts.push(body);
                return;
            }
            let (cut, before) = cut_reaching(&body, self.room);
            self.parts.push(body.split_to(cut));
            let before = before.min(records);
            self.count(before);
            records -= before;
            self.finish_run();
        }
    }

    fn count(&mut self, records: u32) {
        self.run_records += records;
        self.queued += records;
    }

    /// Ends `copied` as a part, so that a shared body can follow it.
    fn freeze_copied(&mut self) {
        if !self.copied.is_empty() {
            self.room = self.room.saturating_sub(self.copied.len());
            // The split keeps the rest of the buffer for the next records;
            // once the writer has sent what it took, the buffer is
            // reclaimed whole.
            self.parts.push(self.copied.split().freeze());
        }
    }

    /// Moves the open run into the FIFO, so that what is pushed next follows it.
    fn finish_run(&mut self) {
        if let Some(run) = self.take_run() {
            self.fifo_bytes += run.len();
            self.fifo.push_back(Outbound::Records(run));
        }
    }

    /// Adds an item to the FIFO, counting its bytes.
    fn push_fifo(&mut self, item: Outbound) {
        self.fifo_bytes += item.bytes();
        self.reply_bytes += item.reply_bytes();
        self.fifo.push_back(item);
    }

    /// Takes the FIFO's first item, uncounting its bytes.
    fn pop_fifo(&mut self) -> Option<Outbound> {
        let item = self.fifo.pop_front()?;
        self.fifo_bytes -= item.bytes();
        self.reply_bytes -= item.reply_bytes();
        Some(item)
    }

    /// Keeps the parts' buffer of a run written from the publisher's thread
    /// for the next run, so that a direct write allocates nothing (the
    /// parts' bytes are let go now, which lets `copied` reclaim its buffer).
    fn recycle(&mut self, run: Run) {
        let mut parts = run.parts;
        if self.parts.is_empty() && self.parts.capacity() < parts.capacity() {
            parts.clear();
            self.parts = parts;
        }
    }

    fn take_run(&mut self) -> Option<Run> {
        self.freeze_copied();
        self.room = self.max_run_bytes;
        if self.parts.is_empty() {
            return None;
        }
        Some(Run {
            parts: std::mem::take(&mut self.parts),
            records: std::mem::take(&mut self.run_records),
            catch_up: self.open_catch_up,
        })
    }

    /// Makes the open run one of catch-up records or of live ones, ending
    /// it first if it holds the other kind.
    fn open_for(&mut self, catch_up: bool) {
        if self.open_catch_up != catch_up {
            self.finish_run();
            self.open_catch_up = catch_up;
        }
    }

    fn run_is_empty(&self) -> bool {
        self.parts.is_empty() && self.copied.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.fifo.is_empty() && self.run_is_empty() && self.overflow.is_none()
    }

    /// Whether a push may write to the socket itself (see `direct.rs`): the
    /// writer found nothing to take and has not been woken since (so it is
    /// not writing), nothing is queued, and the edge allows it.
    fn may_write_directly(&self) -> bool {
        self.writer_idle && self.direct.is_some() && self.is_empty()
    }
}

impl Queue {
    /// A queue holding up to `capacity` records, in messages of about
    /// `max_message_bytes` at most (a message ends with the record that
    /// reaches it).
    pub fn new(capacity: usize, policy: Policy, max_message_bytes: usize) -> Self {
        let max_run_bytes = max_message_bytes.saturating_sub(MESSAGE_HEADER_LEN).max(1);
        Self {
            state: Mutex::new(State {
                copied: BytesMut::new(),
                overflow: None,
                room: max_run_bytes,
                run_records: 0,
                queued: 0,
                capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
                policy,
                closed: false,
                open_catch_up: false,
                writer_idle: true,
                fifo: VecDeque::new(),
                parts: Vec::new(),
                max_run_bytes,
                fifo_bytes: 0,
                reply_bytes: 0,
                reply_budget: usize::MAX,
                direct: None,
            }),
            wake: Wake::default(),
        }
    }

    /// Limits the bytes of replies waiting to `bytes` (unlimited by default).
    pub fn with_reply_budget(mut self, bytes: usize) -> Self {
        self.state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .reply_budget = bytes;
        self
    }

    /// The most bytes of replies that may wait.
    pub(crate) fn reply_budget(&self) -> usize {
        self.lock().reply_budget
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so poisoning is harmless.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Copies records in without waiting, in order, under one lock and with
    /// at most one wake-up; a full queue applies the policy. Stops at the
    /// first record refused (queue full under the disconnect policy, or
    /// closed).
    pub fn push_records<'a>(&self, records: impl Iterator<Item = &'a [u8]>) -> PushedAll {
        self.push_kind(records, false, None)
    }

    /// [`Queue::push_records`] for a publisher's batch, written to the
    /// socket from this thread, as part of the `direct` batch of sends, when
    /// that is given and the writer is idle (see `direct.rs`).
    pub(crate) fn push_staged<'a>(
        &self,
        records: impl Iterator<Item = &'a [u8]>,
        direct: Option<&mut SendBatch>,
    ) -> PushedAll {
        self.push_kind(records, false, direct)
    }

    /// [`Queue::push_records`] for catch-up records (a snapshot, resumed
    /// history): in runs of their own, which the writer does not time.
    pub(crate) fn push_catch_up<'a>(&self, records: impl Iterator<Item = &'a [u8]>) -> PushedAll {
        self.push_kind(records, true, None)
    }

    fn push_kind<'a>(
        &self,
        records: impl Iterator<Item = &'a [u8]>,
        catch_up: bool,
        direct: Option<&mut SendBatch>,
    ) -> PushedAll {
        let mut state = self.lock();
        let direct = direct.filter(|_| !catch_up && state.may_write_directly());
        state.open_for(catch_up);
        let all = state.offer_all(records);
        if all.queued + all.conflated > 0 {
            Self::send_after(state, &self.wake, direct);
        }
        all
    }

    /// Queues `body`, `records` whole records that other clients get too,
    /// by reference, without waiting and with at most one wake-up. When
    /// they do not all fit as they are (the queue is near full or lagging),
    /// they are offered one by one as [`Queue::push_records`] would, so the
    /// policy applies exactly as to records pushed alone.
    pub fn push_shared(&self, body: &Bytes, records: u32) -> PushedAll {
        self.push_shared_staged(body, records, None)
    }

    /// [`Queue::push_shared`] for a publisher's batch, written to the socket
    /// from this thread, as part of the `direct` batch of sends, when that
    /// is given and the writer is idle (see `direct.rs`).
    pub(crate) fn push_shared_staged(&self, body: &Bytes, records: u32, direct: Option<&mut SendBatch>) -> PushedAll {
        let mut state = self.lock();
        let direct = direct.filter(|_| state.may_write_directly());
        state.open_for(false);
        let all = if state.takes_whole(records) {
            state.append_shared(body.clone(), records);
            PushedAll {
                queued: u64::from(records),
                ..PushedAll::default()
            }
        } else {
            state.offer_all(Records(body))
        };
        if all.queued + all.conflated > 0 {
            Self::send_after(state, &self.wake, direct);
        }
        all
    }

    /// Adds a reply, ping or close without waiting, after every record
    /// pushed so far. Pings and closes always enter the queue (the heartbeat
    /// bounds their number); a reply that would take the replies waiting
    /// past the reply budget is refused ([`Pushed::Full`]): the requests
    /// that cause them are rate limited, but a client that never reads
    /// would otherwise grow its queue without bound.
    pub(crate) fn push(&self, item: Outbound) -> Pushed {
        let mut state = self.lock();
        if state.closed {
            return Pushed::Closed;
        }
        if let Outbound::Text(text) = &item
            && state.reply_bytes.saturating_add(text.len()) > state.reply_budget
        {
            return Pushed::Full;
        }
        state.finish_run();
        if let Outbound::Records(run) = &item {
            state.queued += run.records;
        }
        state.push_fifo(item);
        Self::wake_after(state, &self.wake);
        Pushed::Queued
    }

    /// Adds whole frames tungstenite wrote (see `read_side.rs`). Pongs still
    /// waiting at the end of the queue are replaced by the newer ones, as
    /// RFC 6455 §5.5.3 allows (only the latest ping needs its pong): a
    /// client that pings without reading cannot grow its queue, since
    /// `Queue::push` takes items regardless of the capacity.
    pub fn push_control(&self, frames: Bytes) -> Pushed {
        let mut state = self.lock();
        if !state.closed
            && state.run_is_empty()
            && !frame::holds_close(&frames)
            && let Some(Outbound::Control(waiting)) = state.fifo.back_mut()
            && !frame::holds_close(waiting)
        {
            // The writer was woken for the frames replaced.
            let replaced = std::mem::replace(waiting, frames).len();
            let added = waiting.len();
            state.fifo_bytes = state.fifo_bytes - replaced + added;
            state.reply_bytes = state.reply_bytes - replaced + added;
            return Pushed::Queued;
        }
        drop(state);
        self.push(Outbound::Control(frames))
    }

    /// After a push of live records: when `direct` is given (the queue was
    /// idle, see [`State::may_write_directly`]), writes them to the socket
    /// from this thread, as part of that batch of sends, if it takes them at
    /// once (the writer stays idle); else, or for what it did not take,
    /// wakes the writer (see `direct.rs`).
    fn send_after(mut state: MutexGuard<'_, State>, wake: &Wake, direct: Option<&mut SendBatch>) {
        // Conflated records (none unless the capacity is 0) go through the writer.
        let Some(batch) = direct.filter(|_| state.fifo.is_empty() && state.overflow.is_none()) else {
            return Self::wake_after(state, wake);
        };
        let Some(run) = state.take_run() else {
            return Self::wake_after(state, wake);
        };
        // The lock is held while the socket is written, so that the writer,
        // should anything wake it meanwhile, writes after this message.
        let written = state
            .direct
            .as_ref()
            .map_or(Written::Nothing, |direct| direct.try_send(&run, batch));
        match written {
            Written::All => {
                state.queued -= run.records;
                state.recycle(run);
            }
            Written::Part(rest) => {
                state.queued -= run.records;
                state.recycle(run);
                state.push_fifo(Outbound::Unfinished(rest));
                Self::wake_after(state, wake);
            }
            Written::Nothing => {
                state.fifo_bytes += run.len();
                state.fifo.push_back(Outbound::Records(run));
                Self::wake_after(state, wake);
            }
        }
    }

    /// Lets pushes of live records write to `direct` themselves while the
    /// writer is idle with nothing queued (see `direct.rs`).
    pub fn write_directly(&self, direct: Box<dyn DirectWrite>) {
        let mut state = self.lock();
        if !state.closed {
            state.direct = Some(direct);
        }
    }

    /// Stops pushes from writing to the socket (waiting for one under way):
    /// the writer is about to write something it did not take from the
    /// queue (its close frame).
    pub fn stop_direct_writes(&self) {
        let direct = self.lock().direct.take();
        drop(direct);
    }

    /// Takes the rest of a message a push began writing (see `direct.rs`)
    /// if it waits at the head of the queue: the writer, about to send its
    /// close frame without draining the queue, sends this first.
    pub fn take_unfinished(&self) -> Option<Bytes> {
        let mut state = self.lock();
        if !matches!(state.fifo.front(), Some(Outbound::Unfinished(_))) {
            return None;
        }
        match state.pop_fifo() {
            Some(Outbound::Unfinished(rest)) => Some(rest),
            _ => None,
        }
    }

    /// Wakes the writer if it waits for this push (after unlocking).
    fn wake_after(mut state: MutexGuard<'_, State>, wake: &Wake) {
        let wake_writer = std::mem::take(&mut state.writer_idle);
        drop(state);
        if wake_writer {
            wake.notify();
        }
    }

    /// Changes the policy (a client may choose it per request).
    pub(crate) fn set_policy(&self, policy: Policy) {
        self.lock().policy = policy;
    }

    /// Waits for items, then moves them into `out` until about `max`
    /// records are taken (replies, pings and closes count as one): the FIFO
    /// first, then the run, then conflated records. Returns false once
    /// closed and empty.
    pub async fn drain(&self, out: &mut Vec<Outbound>, max: usize) -> bool {
        loop {
            match self.take(out, max) {
                Taken::Some => return true,
                Taken::Closed => return false,
                Taken::Nothing => self.wake.notified().await,
            }
        }
    }

    /// Moves items into `out` without waiting (see [`Queue::drain`]).
    fn take(&self, out: &mut Vec<Outbound>, max: usize) -> Taken {
        let mut state = self.lock();
        if state.is_empty() {
            if state.closed {
                return Taken::Closed;
            }
            // The writer is about to wait: the next push wakes it. A push
            // between this and the wait leaves the wake a permit, so no wake
            // is lost.
            state.writer_idle = true;
            return Taken::Nothing;
        }
        let state = &mut *state;
        let mut taken = 0;
        while taken < max {
            let Some(item) = state.pop_fifo() else { break };
            if let Outbound::Records(run) = &item {
                state.queued -= run.records;
            }
            taken += item.weight();
            out.push(item);
        }
        if taken < max
            && state.fifo.is_empty()
            && let Some(run) = state.take_run()
        {
            state.queued -= run.records;
            taken += run.records as usize;
            out.push(Outbound::Records(run));
        }
        if taken < max
            && state.fifo.is_empty()
            && let Some(overflow) = state.overflow.as_mut()
        {
            let mut bytes = BytesMut::new();
            let records = overflow.drain_into(&mut bytes, max - taken, state.max_run_bytes);
            if overflow.is_empty() {
                state.overflow = None;
            }
            if records > 0 {
                // The newest record of each lagging symbol: live.
                out.push(Outbound::Records(Run {
                    parts: vec![bytes.freeze()],
                    records: u32::try_from(records).unwrap_or(u32::MAX),
                    catch_up: false,
                }));
            }
        }
        Taken::Some
    }

    /// [`Queue::drain`] without waiting, for tests: false if nothing was there.
    #[cfg(test)]
    pub(crate) fn take_now(&self, out: &mut Vec<Outbound>, max: usize) -> bool {
        self.take(out, max) == Taken::Some
    }

    /// Empties the queue without waiting; returns how many records, replies,
    /// pings and closes it held.
    pub(crate) fn discard(&self) -> usize {
        let mut taken = Vec::new();
        while let Taken::Some = self.take(&mut taken, usize::MAX) {}
        taken.iter().map(Outbound::weight).sum()
    }

    /// Refuses further pushes and wakes the writer.
    pub fn close(&self) {
        let direct = {
            let mut state = self.lock();
            state.closed = true;
            state.direct.take()
        };
        // The socket's handle goes with the queue's last writer.
        drop(direct);
        self.wake.notify();
    }

    /// Bytes waiting for the writer: records (the open run, finished runs,
    /// conflated records at their bound, [`PENDING_BYTES`] each), replies
    /// and frames. Runs shared with other clients count in full here.
    pub(crate) fn bytes(&self) -> usize {
        let state = self.lock();
        let open_run = state.copied.len() + state.parts.iter().map(Bytes::len).sum::<usize>();
        let conflated = state.overflow.as_ref().map_or(0, |overflow| overflow.len()) * PENDING_BYTES;
        open_run + state.fifo_bytes + conflated
    }

    /// Records waiting (queued plus conflated symbols), for metrics and tests.
    pub(crate) fn depth(&self) -> usize {
        let state = self.lock();
        state.queued as usize + state.overflow.as_ref().map_or(0, |overflow| overflow.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const MAX_MESSAGE: usize = 64 * 1024;

    impl Queue {
        /// One record through [`Queue::push_records`], as the publisher's
        /// per-event path pushes it.
        fn push_record(&self, record: &[u8]) -> Pushed {
            let pushed = self.push_records(std::iter::once(record));
            match pushed.refused {
                Some(refused) => refused,
                None if pushed.conflated > 0 => Pushed::Conflated,
                None => Pushed::Queued,
            }
        }
    }

    fn records(items: &[Outbound]) -> usize {
        items.iter().map(Outbound::weight).sum()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn what_a_record_push_touches_fits_one_cache_line() {
        assert!(std::mem::offset_of!(State, fifo) <= 64);
        assert_eq!(std::mem::align_of::<Queue>(), 64);
    }

    #[test]
    fn waiting_pongs_give_way_to_newer_ones_but_closes_and_records_stay() {
        let pong = |payload: &[u8]| Bytes::from(frame::frame(frame::opcode::PONG, payload));
        let close = Bytes::from(frame::frame(frame::opcode::CLOSE, &1000u16.to_be_bytes()));
        let queue = Queue::new(100, Policy::Disconnect, MAX_MESSAGE);
        // A flood of pongs the writer has not taken: only the latest waits.
        for n in 0..1_000u32 {
            assert_eq!(queue.push_control(pong(&n.to_be_bytes())), Pushed::Queued);
        }
        // A record between two pongs keeps both; a close is never replaced
        // and never replaces.
        assert_eq!(queue.push_record(&[1; 8]), Pushed::Queued);
        assert_eq!(queue.push_control(pong(b"after")), Pushed::Queued);
        assert_eq!(queue.push_control(close.clone()), Pushed::Queued);
        assert_eq!(queue.push_control(pong(b"last")), Pushed::Queued);
        let mut taken = Vec::new();
        assert_eq!(queue.take(&mut taken, usize::MAX), Taken::Some);
        let shapes: Vec<Vec<u8>> = taken
            .iter()
            .map(|item| match item {
                Outbound::Control(frames) => frames.to_vec(),
                Outbound::Records(run) => run.contiguous().to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<Vec<u8>> = vec![
            pong(&999u32.to_be_bytes()).to_vec(),
            vec![1; 8],
            pong(b"after").to_vec(),
            close.to_vec(),
            pong(b"last").to_vec(),
        ];
        assert_eq!(shapes, expected);
    }

    #[test]
    fn records_arrive_as_messages_in_order_with_replies() {
        let queue = Queue::new(100, Policy::Disconnect, MESSAGE_HEADER_LEN + 3 * 8);
        for byte in 1..=4u8 {
            assert_eq!(queue.push_record(&[byte; 8]), Pushed::Queued);
        }
        assert_eq!(queue.push(Outbound::Ping), Pushed::Queued);
        assert_eq!(queue.push_record(&[5; 8]), Pushed::Queued);
        assert_eq!(queue.depth(), 5);
        let mut taken = Vec::new();
        assert_eq!(queue.take(&mut taken, usize::MAX), Taken::Some);
        let shapes: Vec<_> = taken
            .iter()
            .map(|item| match item {
                Outbound::Records(run) => {
                    assert_eq!(run.len(), 8 * run.records as usize);
                    run.contiguous().to_vec()
                }
                Outbound::Ping => b"ping".to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        // A message ends with the record that fills it; the ping ends the next.
        let expected: Vec<Vec<u8>> = vec![
            [[1u8; 8], [2; 8], [3; 8]].concat(),
            [4u8; 8].to_vec(),
            b"ping".to_vec(),
            [5u8; 8].to_vec(),
        ];
        assert_eq!(shapes, expected);
        assert_eq!(queue.depth(), 0);
    }

    /// An 8-byte record.
    fn record(fill: u8) -> Vec<u8> {
        crate::run::test_record(8, fill)
    }

    #[test]
    fn shared_bodies_keep_their_place_and_messages_end_where_copied_records_would_end_them() {
        let queue = Queue::new(100, Policy::Disconnect, MESSAGE_HEADER_LEN + 3 * 8);
        let body = Bytes::from([record(2), record(3), record(4), record(5)].concat());
        assert_eq!(queue.push_record(&record(1)), Pushed::Queued);
        assert_eq!(queue.push_shared(&body, 4).queued, 4);
        assert_eq!(queue.push_record(&record(6)), Pushed::Queued);
        assert_eq!(queue.depth(), 6);
        let mut taken = Vec::new();
        assert_eq!(queue.take(&mut taken, usize::MAX), Taken::Some);
        let runs: Vec<&Run> = taken
            .iter()
            .map(|item| match item {
                Outbound::Records(run) => run,
                other => panic!("{other:?}"),
            })
            .collect();
        let messages: Vec<(Vec<u8>, u32)> = runs
            .iter()
            .map(|run| (run.contiguous().to_vec(), run.records))
            .collect();
        assert_eq!(
            messages,
            [
                ([record(1), record(2), record(3)].concat(), 3),
                ([record(4), record(5), record(6)].concat(), 3),
            ]
        );
        // The body is referenced, not copied: cut where the first message ends.
        assert_eq!(runs[0].parts[1].as_ptr(), body.as_ptr());
        assert_eq!(runs[1].parts[0].as_ptr(), body[16..].as_ptr());
        assert_eq!(queue.depth(), 0);
    }

    #[test]
    fn a_shared_body_that_does_not_fit_is_taken_record_by_record() {
        let queue = Queue::new(3, Policy::Disconnect, MAX_MESSAGE);
        let body = Bytes::from([record(1), record(2), record(3), record(4)].concat());
        let pushed = queue.push_shared(&body, 4);
        assert_eq!((pushed.queued, pushed.refused), (3, Some(Pushed::Full)));
        assert_eq!(queue.depth(), 3);
    }

    #[test]
    fn a_full_queue_refuses_records_under_the_disconnect_policy() {
        let queue = Queue::new(2, Policy::Disconnect, MAX_MESSAGE);
        assert_eq!(queue.push_record(&[1; 8]), Pushed::Queued);
        assert_eq!(queue.push_record(&[2; 8]), Pushed::Queued);
        assert_eq!(queue.push_record(&[3; 8]), Pushed::Full);
        assert_eq!(
            queue.push(Outbound::Ping),
            Pushed::Queued,
            "replies and pings are not records"
        );
        assert_eq!(queue.discard(), 3);
        assert_eq!(queue.push_record(&[4; 8]), Pushed::Queued, "room again once taken");
        queue.close();
        assert_eq!(queue.push_record(&[5; 8]), Pushed::Closed);
    }

    /// Pushes skip the wake-up while the writer is awake; whatever the
    /// interleaving, a writer that found the queue empty is woken by the next
    /// push, and nothing pushed in bursts is left behind. Each burst starts
    /// once the previous one was taken, so the writer sometimes waits (found
    /// the queue empty) and sometimes is still busy when it starts.
    #[test]
    fn the_writer_gets_every_item_pushed_while_it_waits_or_works() {
        const BURSTS: usize = 200;
        const ITEMS: usize = BURSTS * (BURSTS + 1) / 2;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let queue = Arc::new(Queue::new(ITEMS, Policy::Disconnect, MAX_MESSAGE));
        let reader = Arc::clone(&queue);
        // The writer on a thread of its own, waiting as a writer task does
        // but with no runtime: its waker unparks the thread.
        let (done, taken) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut taken, mut batch) = (0, Vec::new());
            while taken < ITEMS {
                batch.clear();
                // Small batches: the writer is often left with items.
                assert!(crate::wake::block_on(reader.drain(&mut batch, 7)), "closed early");
                taken += records(&batch);
            }
            done.send(taken).unwrap();
        });
        for burst in 1..=BURSTS {
            for i in 0..burst {
                assert_eq!(queue.push_record(&[i as u8; 8]), Pushed::Queued);
            }
            while queue.depth() > 0 {
                assert!(std::time::Instant::now() < deadline, "the writer was not woken");
                std::thread::yield_now();
            }
        }
        let taken = taken.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        assert_eq!(taken.expect("the writer was not woken"), ITEMS);
    }

    #[test]
    fn replies_past_the_reply_budget_are_refused_and_bytes_are_counted_until_taken() {
        let queue = Queue::new(100, Policy::Disconnect, MAX_MESSAGE).with_reply_budget(100);
        assert_eq!(queue.push_record(&record(1)), Pushed::Queued);
        assert_eq!(queue.push(Outbound::Text("a".repeat(60))), Pushed::Queued);
        assert_eq!(queue.bytes(), 8 + 60);
        // TC0: past the budget. TC1: still within it. TC2: pings are not replies.
        assert_eq!(queue.push(Outbound::Text("b".repeat(41))), Pushed::Full);
        assert_eq!(queue.push(Outbound::Text("c".repeat(40))), Pushed::Queued);
        assert_eq!(queue.push(Outbound::Ping), Pushed::Queued);
        assert_eq!(queue.push_record(&record(2)), Pushed::Queued);
        assert_eq!(queue.bytes(), 8 + 60 + 40 + 8);
        assert_eq!(queue.discard(), 5);
        assert_eq!(queue.bytes(), 0);
        assert_eq!(
            queue.push(Outbound::Text("d".repeat(100))),
            Pushed::Queued,
            "room again once taken"
        );
    }

    #[test]
    fn statuses_beyond_a_conflating_queue_are_bounded_too() {
        let queue = Queue::new(2, Policy::Conflate, MAX_MESSAGE);
        let status = quotehub_proto::StatusRecord {
            code: quotehub_proto::StatusCode::Shutdown,
            feed: 0,
            ts: 1,
            detail: 2,
        }
        .encode();
        for _ in 0..2 + STATUS_ROOM {
            assert_eq!(queue.push_record(&status), Pushed::Queued);
        }
        assert_eq!(
            queue.push_record(&status),
            Pushed::Full,
            "past the room: a slow consumer"
        );
    }

    #[test]
    fn overflow_is_dropped_once_drained() {
        let queue = Queue::new(1, Policy::Conflate, MAX_MESSAGE);
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
            record.encode()
        };
        assert_eq!(queue.push_record(&quote(1)), Pushed::Queued);
        assert_eq!(queue.push_record(&quote(2)), Pushed::Conflated);
        assert_eq!(queue.push_record(&quote(3)), Pushed::Conflated);
        assert_eq!(queue.depth(), 2);
        assert_eq!(queue.discard(), 2, "the FIFO's record and one conflated record");
        assert!(queue.lock().overflow.is_none());
        assert_eq!(queue.push_record(&quote(4)), Pushed::Queued, "no longer lagging");
    }
}
