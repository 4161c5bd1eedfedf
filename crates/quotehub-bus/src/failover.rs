//! An ingest hub's records onto the bus, published only while it holds the
//! lease, in the stream's numbers.
//!
//! Every ingest hub (role ingest or both) keeps the lease ([`LeaseKeeper`]);
//! one alone just holds it. All of them ingest the feed and number every
//! event in their own sequence space, for their own table and clients, as
//! a standalone hub does. [`FailoverSink`] is the engine's `RecordSink`: it
//! keeps each symbol's recent records (a window bounded in bytes) and, once
//! this hub has taken the lease *and* aligned itself with the stream
//! ([`TakeoverPlan`]), publishes each record under the stream's next number
//! for its symbol, in the stream's epoch. The bars and BBO records the hub
//! derives go the same way, each derived channel of a symbol numbered in
//! its own sequence ([`DerivedPlan`]), onto the stream of derived records.
//!
//! Why the translation sits here and not in the engine: the hub's own
//! clients keep the numbers they have (a standby `both` hub's clients see
//! no `RESET` and no jump at takeover), the engine's publish path is not
//! touched, and one lock orders the takeover against the feed thread: the
//! plan is made from the window and applied under the same lock the feed's
//! records take, so no record falls between the window the plan saw and the
//! numbering that follows it, and none is numbered twice. When the hub's
//! numbers and the stream's agree (one ingest hub from the stream's start),
//! the record goes out as it is, not re-encoded.
//!
//! The cost on the publish path when a bus is configured: one uncontended
//! lock, a clock read ([`LeaseKeeper::is_active`]) and a window push per
//! record. Without a bus there is no sink and no cost.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use quotehub_engine::RecordSink;
use quotehub_proto::{Channels, Epoch, Record, Symbol};
use tokio::sync::watch;

use crate::connection::Bus;
use crate::derived_takeover::{self, DerivedAlignment, DerivedPlan};
use crate::ingest::IngestPublisher;
use crate::lease::LeaseSettings;
use crate::lease_keeper::{LeaseKeeper, LeaseState};
use crate::stream::StreamSettings;
use crate::tail::{DerivedTail, Tail};
use crate::takeover::{Alignment, TakeoverPlan, with_seq};

/// How an ingest hub takes part in the lease (`[bus]` lease keys).
#[derive(Debug, Clone)]
pub struct FailoverSettings {
    /// The lease's bucket, key and timing.
    pub lease: LeaseSettings,
    /// This hub's name in the lease: unique per hub.
    pub holder: String,
    /// Bytes of recent records kept for a takeover, all symbols together;
    /// past it a symbol keeps only its newest record (a takeover may then
    /// leave a gap it shows as a skipped number). The window's only bound:
    /// a count per symbol would be short of what a hub resumed after a
    /// pause past its lease TTL (or a standby while the active is frozen)
    /// sequences of a busy symbol in one burst before it takes over.
    pub standby_window_bytes: usize,
    /// Whether the bars and BBO records the hub derives go onto the bus
    /// (the stream of derived records), for edges to serve. On the bundled
    /// session they are about as many messages as the quotes and trades
    /// (70,460 against 74,900), so a deployment whose edges' clients want
    /// quotes and trades only can spare the bus half its messages.
    pub derived: bool,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            lease: LeaseSettings::default(),
            holder: default_holder(),
            // About 23 s of a 10,000 quotes/s feed (72 bytes a quote):
            // far more than a takeover (the lease's TTL and a poll) or a
            // resumed hub's burst needs, and what a takeover copies and
            // scans under the sink's lock (about 90 ms for 64 MiB).
            standby_window_bytes: 16 << 20,
            derived: true,
        }
    }
}

/// The host's name and a random suffix: unique per hub, even for two hubs
/// on one host.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    // A holder id is at most 64 characters: 40 of the host, `-`, 16 hex.
    let host: String = host.chars().take(40).collect();
    let host = if host.is_empty() { "quotehub".to_owned() } else { host };
    format!("{host}-{:016x}", Epoch::random().to_u64())
}

/// The takeover's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct FailoverCounters {
    /// Takeovers completed (the plan published, numbering in the stream's).
    pub takeovers: AtomicU64,
    /// Symbols (and derived channels of symbols) whose stream record
    /// matched none of the window, summed over takeovers: each is a skipped
    /// number clients see.
    pub unmatched: AtomicU64,
    /// Records (derived ones included) a takeover published from the window.
    pub filled: AtomicU64,
}

/// Where publishing stands, under the sink's lock.
#[derive(Debug, Default)]
struct Inner {
    /// Each symbol's recent records, oldest first, as the hub numbered them.
    window: HashMap<Symbol, VecDeque<Bytes>>,
    /// Each derived channel's recent records of each symbol, oldest first,
    /// as the hub numbered them (the same bounds, the same byte count).
    derived: HashMap<(Symbol, Channels), VecDeque<Bytes>>,
    /// Bytes of both windows.
    window_bytes: usize,
    /// `Some` from a completed takeover until the lease is lost.
    publishing: Option<Publishing>,
}

impl Inner {
    /// Keeps `record` in `symbol`'s window: past `max_bytes` in all only
    /// the symbol's newest: at most `max_bytes` plus one record per symbol
    /// the feed has named (the feed is the operator's; clients cannot add
    /// symbols here).
    fn keep(&mut self, symbol: Symbol, record: &Bytes, max_bytes: usize) {
        keep_in(&mut self.window, &mut self.window_bytes, symbol, record, max_bytes);
    }

    /// As [`Inner::keep`], for a derived channel of a symbol (one more
    /// window per channel and symbol the feed has named).
    fn keep_derived(&mut self, key: (Symbol, Channels), record: &Bytes, max_bytes: usize) {
        keep_in(&mut self.derived, &mut self.window_bytes, key, record, max_bytes);
    }
}

/// Keeps `record` in `key`'s window of `windows`, counting its bytes in
/// `bytes`: past `max_bytes` only the key's newest.
fn keep_in<K: Hash + Eq>(
    windows: &mut HashMap<K, VecDeque<Bytes>>,
    bytes: &mut usize,
    key: K,
    record: &Bytes,
    max_bytes: usize,
) {
    let window = windows.entry(key).or_default();
    window.push_back(record.clone());
    *bytes += record.len();
    while *bytes > max_bytes && window.len() > 1 {
        let Some(oldest) = window.pop_front() else { break };
        *bytes -= oldest.len();
    }
}

#[derive(Debug)]
struct Publishing {
    epoch: Epoch,
    /// The stream's number for each symbol's next record.
    next: HashMap<Symbol, u64>,
    /// Where each derived channel of each symbol goes on.
    derived: HashMap<(Symbol, Channels), DerivedNext>,
}

/// Where one derived channel of one symbol goes on in the stream.
#[derive(Debug, Clone, Copy)]
struct DerivedNext {
    /// The stream's number for its next record.
    next: u64,
    /// Records at or before this event time are the stream's already (the
    /// hub was behind the one it took over from): skipped until a later one.
    after_ts: Option<u64>,
}

impl Default for DerivedNext {
    fn default() -> Self {
        Self {
            next: 1,
            after_ts: None,
        }
    }
}

/// The engine's `RecordSink` of an ingest hub on the bus.
#[derive(Debug)]
pub struct FailoverSink {
    publisher: Arc<IngestPublisher>,
    keeper: LeaseKeeper,
    own_epoch: Epoch,
    /// When this hub began ingesting (ns since the Unix epoch): a stream
    /// record received before it may be followed by events it never saw.
    started_ns: u64,
    max_window_bytes: usize,
    /// The stream's per-subject limit: of a symbol (or derived channel) the
    /// stream has no record of in its epoch, a takeover publishes only the
    /// newest this many from the window, numbered from 1 (it keeps no more).
    stream_depth: usize,
    /// Whether derived records (bars, BBO) are kept and published.
    derived: bool,
    inner: Mutex<Inner>,
    counters: FailoverCounters,
    /// Takeovers completed, to wait on.
    taken: watch::Sender<u64>,
}

impl FailoverSink {
    /// A sink publishing through `publisher` while `keeper` holds the lease,
    /// keeping at most `max_window_bytes` of recent records in all, into a
    /// stream that keeps `stream_depth` records per subject. `own_epoch` is
    /// the hub's sequence space, published in when the stream is empty.
    pub fn new(
        publisher: Arc<IngestPublisher>,
        keeper: LeaseKeeper,
        own_epoch: Epoch,
        stream_depth: usize,
        max_window_bytes: usize,
    ) -> Self {
        Self {
            publisher,
            keeper,
            own_epoch,
            started_ns: quotehub_proto::now_ns(),
            max_window_bytes,
            stream_depth: stream_depth.max(1),
            derived: true,
            inner: Mutex::new(Inner::default()),
            counters: FailoverCounters::default(),
            taken: watch::Sender::new(0),
        }
    }

    /// Keeps and publishes the derived records (bars, BBO) only if `on`
    /// (they are by default).
    #[must_use]
    pub fn publishing_derived(mut self, on: bool) -> Self {
        self.derived = on;
        self
    }

    /// The lease as this hub sees it.
    pub fn lease(&self) -> watch::Receiver<LeaseState> {
        self.keeper.state()
    }

    /// Whether this hub publishes now (holds the lease and has taken over).
    pub fn is_publishing(&self) -> bool {
        self.keeper.is_active() && self.lock().publishing.is_some()
    }

    /// How many takeovers have completed, to wait on.
    pub fn taken(&self) -> watch::Receiver<u64> {
        self.taken.subscribe()
    }

    /// The takeover counters.
    pub fn counters(&self) -> &FailoverCounters {
        &self.counters
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves plain data: go on.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Aligns with the stream's `tail` and starts publishing, unless the
    /// lease went meanwhile. Returns the plan applied.
    fn take_over(&self, tail: &Tail, derived_tail: &DerivedTail) -> Option<TakeoverPlan> {
        let mut inner = self.lock();
        if !self.keeper.is_active() {
            return None;
        }
        let recent: HashMap<Symbol, Vec<Bytes>> = inner
            .window
            .iter()
            .map(|(symbol, records)| (*symbol, records.iter().cloned().collect()))
            .collect();
        let mut plan = TakeoverPlan::new(self.own_epoch, tail, &recent);
        mark_unseen(&mut plan, tail, self.started_ns);
        for takeover in plan.symbols.values_mut() {
            if takeover.alignment == Alignment::New {
                newest_only(&mut takeover.publish, &mut takeover.next_seq, self.stream_depth);
            }
        }
        for (symbol, takeover) in &plan.symbols {
            for (seq, bytes) in &takeover.publish {
                self.publisher.publish(symbol, plan.epoch, *seq, bytes.clone());
            }
            if let Alignment::Unmatched { stream_seq } = takeover.alignment {
                tracing::warn!(symbol = %symbol.as_str(), stream_seq, "takeover: the stream's last record is not in this hub's window; clients see number {} skipped", stream_seq.saturating_add(1));
            }
        }
        let recent: HashMap<(Symbol, Channels), Vec<Bytes>> = inner
            .derived
            .iter()
            .map(|(key, records)| (*key, records.iter().cloned().collect()))
            .collect();
        let mut derived = DerivedPlan::new(plan.epoch, derived_tail, &recent, self.started_ns);
        for takeover in derived.channels.values_mut() {
            if takeover.alignment == DerivedAlignment::New {
                newest_only(&mut takeover.publish, &mut takeover.next_seq, self.stream_depth);
            }
        }
        for (&(symbol, channel), takeover) in &derived.channels {
            for (seq, bytes) in &takeover.publish {
                self.publisher
                    .publish_derived(&symbol, channel, plan.epoch, *seq, bytes.clone());
            }
        }
        inner.publishing = Some(Publishing {
            epoch: plan.epoch,
            next: plan
                .symbols
                .iter()
                .map(|(symbol, takeover)| (*symbol, takeover.next_seq))
                .collect(),
            derived: derived
                .channels
                .iter()
                .map(|(key, takeover)| {
                    let next = DerivedNext {
                        next: takeover.next_seq,
                        after_ts: takeover.after_ts,
                    };
                    (*key, next)
                })
                .collect(),
        });
        self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
        self.taken.send_modify(|taken| *taken += 1);
        self.counters
            .unmatched
            .fetch_add(plan.unmatched + derived.unmatched, Ordering::Relaxed);
        self.counters
            .filled
            .fetch_add((plan.records() + derived.records()) as u64, Ordering::Relaxed);
        Some(plan)
    }

    fn stop_publishing(&self) {
        self.lock().publishing = None;
    }

    /// A clean shutdown's hand-over: stops publishing, waits at most
    /// `flush_within` until the stream has acknowledged every record this
    /// hub queued (so that the standby's takeover reads a tail with all of
    /// them and publishes none twice), then releases the lease, so that the
    /// standby takes over at its next poll rather than after the TTL. Call
    /// it once the feeds have stopped. A hub that does not hold the lease
    /// only stops polling.
    pub async fn hand_over(&self, flush_within: Duration) -> HandOver {
        let held = self.keeper.is_active();
        self.stop_publishing();
        let flushed = tokio::time::timeout(flush_within, self.publisher.flush()).await.is_ok();
        let released = self.keeper.release().await;
        HandOver {
            held,
            flushed,
            released,
        }
    }
}

/// How long a clean shutdown waits for the stream to acknowledge what the
/// active ingest hub queued before it releases the lease anyway (the
/// standby fills in from its own window what did not arrive).
pub const HAND_OVER_FLUSH: Duration = Duration::from_secs(2);

/// What [`FailoverSink::hand_over`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOver {
    /// Whether this hub held the lease when it began.
    pub held: bool,
    /// Whether every queued record was acknowledged within the deadline.
    pub flushed: bool,
    /// Whether the lease key was deleted (it was still this hub's).
    pub released: bool,
}

/// Keeps only the newest `depth` of what a takeover publishes for a symbol
/// (or derived channel) the stream has no record of in its epoch, numbered
/// from 1: the stream keeps no more of a subject, and the window, bounded
/// by bytes alone, may hold far more (all of it would go out as a burst).
fn newest_only(publish: &mut Vec<(u64, Bytes)>, next_seq: &mut u64, depth: usize) {
    let Some(extra) = publish.len().checked_sub(depth).filter(|&extra| extra > 0) else {
        return;
    };
    publish.drain(..extra);
    for (seq, (number, bytes)) in (1..).zip(publish.iter_mut()) {
        *number = seq;
        *bytes = with_seq(bytes, seq);
    }
    *next_seq = u64::try_from(depth).map_or(u64::MAX, |depth| depth.saturating_add(1));
}

/// A symbol the stream has and this hub never saw is numbered on after the
/// stream's last (`n + 1`) only if this hub was ingesting when that record
/// was received: then it would have seen any event after it. Otherwise (a
/// hub that started after it, e.g. the sole ingest hub restarted) events
/// may have come meanwhile that nobody published: the symbol goes on from
/// `n + 2`, a skipped number clients see, counted as unmatched. The record's
/// receive stamp is the old holder's clock; skew between the hosts moves
/// the boundary by that much. Returns how many symbols it marked.
fn mark_unseen(plan: &mut TakeoverPlan, tail: &Tail, started_ns: u64) -> u64 {
    let mut marked = 0;
    for (symbol, takeover) in &mut plan.symbols {
        let Alignment::StreamOnly { stream_seq } = takeover.alignment else {
            continue;
        };
        let received = tail
            .get(symbol)
            .and_then(|record| Record::decode(&record.payload).ok())
            .map(|(record, _)| match record {
                Record::Quote(quote) => quote.quote.recv_ts,
                Record::Trade(trade) => trade.trade.recv_ts,
                _ => 0,
            });
        if received.is_some_and(|received| received < started_ns) {
            takeover.alignment = Alignment::Unmatched { stream_seq };
            takeover.next_seq = stream_seq.saturating_add(2);
            marked += 1;
        }
    }
    plan.unmatched += marked;
    marked
}

impl FailoverSink {
    /// Where publishing stands, while this hub publishes: `None` before a
    /// takeover, and from the moment the lease is lost (taken, or the bus
    /// away past the deadline), which stops it at once; a later takeover
    /// aligns again.
    fn publishing<'a>(&self, inner: &'a mut Inner) -> Option<&'a mut Publishing> {
        if inner.publishing.is_some() && !self.keeper.is_active() {
            inner.publishing = None;
        }
        inner.publishing.as_mut()
    }
}

impl RecordSink for FailoverSink {
    fn sequenced(&self, symbol: Symbol, epoch: Epoch, seq: u64, record: &Bytes) {
        let mut inner = self.lock();
        inner.keep(symbol, record, self.max_window_bytes);
        let Some(publishing) = self.publishing(&mut inner) else {
            return;
        };
        let next = publishing.next.entry(symbol).or_insert(1);
        let stream_seq = *next;
        if stream_seq == u64::MAX {
            // Numbers used up (only a corrupt stream record gets here):
            // publish nothing rather than a number twice.
            return;
        }
        *next += 1;
        let out = if stream_seq == seq && publishing.epoch == epoch {
            record.clone()
        } else {
            with_seq(record, stream_seq)
        };
        let stream_epoch = publishing.epoch;
        self.publisher.publish(&symbol, stream_epoch, stream_seq, out);
    }

    /// A bar or BBO record: kept in its channel's window, and while this
    /// hub publishes, numbered on in the stream's sequence of that channel
    /// of the symbol and queued for the stream of derived records.
    fn derived(&self, symbol: Symbol, record: &Bytes) {
        let channel = Channels::of_wire(record);
        if !self.derived || crate::subject::derived_token(channel).is_none() {
            return;
        }
        let mut inner = self.lock();
        inner.keep_derived((symbol, channel), record, self.max_window_bytes);
        let Some(publishing) = self.publishing(&mut inner) else {
            return;
        };
        let next = publishing.derived.entry((symbol, channel)).or_default();
        if let Some(after) = next.after_ts {
            if derived_takeover::event_ts(record).is_none_or(|at| at <= after) {
                // The stream has it already (from the hub this one took over from).
                return;
            }
            next.after_ts = None;
        }
        let stream_seq = next.next;
        if stream_seq == u64::MAX {
            return;
        }
        next.next += 1;
        let own_seq = quotehub_proto::record::seq_of(record);
        let out = if own_seq == Some(stream_seq) && publishing.epoch == self.own_epoch {
            record.clone()
        } else {
            with_seq(record, stream_seq)
        };
        let stream_epoch = publishing.epoch;
        self.publisher
            .publish_derived(&symbol, channel, stream_epoch, stream_seq, out);
    }
}

/// Starts the lease for an ingest hub and the task that takes over each
/// time it is taken. The task ends when the returned handle is aborted.
pub fn start(
    bus: &Bus,
    stream: StreamSettings,
    settings: &FailoverSettings,
    lease: crate::lease::Lease,
    publisher: Arc<IngestPublisher>,
    own_epoch: Epoch,
    stream_depth: usize,
) -> (Arc<FailoverSink>, tokio::task::JoinHandle<()>) {
    let keeper = LeaseKeeper::start(lease, bus, stream.clone(), own_epoch);
    let sink = Arc::new(
        FailoverSink::new(
            publisher,
            keeper,
            own_epoch,
            stream_depth,
            settings.standby_window_bytes,
        )
        .publishing_derived(settings.derived),
    );
    let task = tokio::spawn(follow(bus.clone(), stream, Arc::clone(&sink)));
    (sink, task)
}

/// How long a failed tail read waits before the next try (pacing, not
/// synchronisation: nothing tells when the bus answers again).
const TAIL_RETRY: Duration = Duration::from_millis(100);

/// Follows the lease: each time this hub takes it, reads the stream's tail
/// and takes over; each time it loses it, stops publishing.
async fn follow(bus: Bus, stream: StreamSettings, sink: Arc<FailoverSink>) {
    let mut state = sink.lease();
    let mut taken = 0;
    loop {
        let now = state.borrow_and_update().clone();
        if !now.active {
            sink.stop_publishing();
        } else if now.takeovers > taken {
            taken = now.takeovers;
            while sink.keeper.is_active() {
                let tails = match Tail::read(&bus, &stream).await {
                    Ok(tail) => DerivedTail::read(&bus, &stream).await.map(|derived| (tail, derived)),
                    Err(error) => Err(error),
                };
                match tails {
                    Ok((tail, derived)) => {
                        if let Some(plan) = sink.take_over(&tail, &derived) {
                            tracing::info!(epoch = %plan.epoch, filled = plan.records(), unmatched = plan.unmatched, ambiguous = plan.ambiguous, "bus lease: took over; publishing in the stream's numbers");
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "bus lease: held, but the stream's tail is unreadable; not publishing yet");
                        tokio::time::sleep(TAIL_RETRY).await;
                    }
                }
            }
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(n: usize) -> Symbol {
        format!("S{n}").parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_symbol_the_hub_never_saw_shows_a_gap_only_if_it_started_after_the_streams_record() {
        use quotehub_proto::{Flags, Quote, QuoteRecord};

        use crate::tail::TailRecord;
        let epoch = Epoch::from_u64(7).unwrap_or_else(|| unreachable!());
        let tail_record = |recv_ts: u64| {
            let quote = Quote {
                symbol: symbol(1),
                bid_price: "1.00".parse().unwrap_or_else(|_| unreachable!()),
                bid_size: 1,
                ask_price: "1.01".parse().unwrap_or_else(|_| unreachable!()),
                ask_size: 1,
                event_ts: recv_ts - 1,
                recv_ts,
                seq: 9,
            };
            let payload = Bytes::from(
                QuoteRecord {
                    quote,
                    flags: Flags::default(),
                    conflated: 0,
                }
                .encode()
                .to_vec(),
            );
            Tail::from_records([(
                symbol(1),
                TailRecord {
                    stream_sequence: 1,
                    epoch: Some(epoch),
                    payload,
                },
            )])
        };
        // TC0: received after this hub started: it would have seen what
        // followed, so 10 is next. TC1: received before: 10 is skipped.
        for (recv_ts, next, unmatched) in [(2_000, 10, 0), (500, 11, 1)] {
            let tail = tail_record(recv_ts);
            let mut plan = TakeoverPlan::new(epoch, &tail, &HashMap::new());
            assert_eq!(mark_unseen(&mut plan, &tail, 1_000), unmatched);
            assert_eq!((plan.symbols[&symbol(1)].next_seq, plan.unmatched), (next, unmatched));
        }
    }

    #[test]
    fn a_symbol_new_to_the_stream_publishes_only_the_newest_the_stream_keeps() {
        use quotehub_proto::record::seq_of;
        let window: Vec<(u64, Bytes)> = (1..=10u8)
            .map(|n| {
                let bytes = Bytes::from(vec![n; quotehub_proto::record::QUOTE_LEN]);
                (u64::from(n), with_seq(&bytes, u64::from(n)))
            })
            .collect();
        // TC0: more than the stream keeps: the newest 4, numbered 1..=4.
        let (mut publish, mut next) = (window.clone(), 11);
        newest_only(&mut publish, &mut next, 4);
        let numbers: Vec<u64> = publish.iter().map(|(seq, _)| *seq).collect();
        let carried: Vec<Option<u64>> = publish.iter().map(|(_, bytes)| seq_of(bytes)).collect();
        assert_eq!((numbers, next), (vec![1, 2, 3, 4], 5));
        assert_eq!(
            carried,
            vec![Some(1), Some(2), Some(3), Some(4)],
            "each record carries its number"
        );
        // TC1: no more than it keeps: unchanged.
        let (mut publish, mut next) = (window.clone(), 11);
        newest_only(&mut publish, &mut next, 64);
        assert_eq!((publish, next), (window, 11));
    }

    #[test]
    fn the_window_keeps_each_symbols_newest_within_its_bounds() {
        let record = |n: u8| Bytes::from(vec![n; 72]);
        // TC0: no count per symbol: a burst of one symbol (a hub resumed
        // after a pause reads what its feed socket buffered) stays whole
        // within the bytes; past them the oldest go.
        let mut inner = Inner::default();
        for n in 0..=255 {
            inner.keep(symbol(0), &record(n), 200 * 72);
        }
        let kept: Vec<u8> = inner.window[&symbol(0)].iter().map(|r| r[0]).collect();
        assert_eq!((kept, inner.window_bytes), ((56..=255).collect(), 200 * 72));
        // TC1: past the bytes, a busy symbol keeps its newest only, and the
        // total stays within the bound plus one record per symbol.
        let mut inner = Inner::default();
        for n in 0..1000 {
            inner.keep(symbol(n % 50), &record((n % 256) as u8), 10 * 72);
        }
        assert!(inner.window_bytes <= 10 * 72 + 50 * 72, "{}", inner.window_bytes);
        assert!(inner.window.values().all(|records| !records.is_empty()));
        let total: usize = inner.window.values().flatten().map(Bytes::len).sum();
        assert_eq!(total, inner.window_bytes, "the count matches what is held");
    }
}
