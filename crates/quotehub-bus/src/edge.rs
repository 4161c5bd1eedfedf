//! The edge side: one symbol's records from the stream, history first, then
//! live, as the raw SPEC.md bytes the ingest hub published.
//!
//! [`EdgeReader::open_all`] reads every symbol instead: every record the
//! stream holds (each symbol's last records), then every new one (an
//! edge's `"*"`). [`EdgeReader::open_derived`] (`edge_derived.rs`) reads a
//! symbol's (or every symbol's) bars and BBO records from the stream of
//! derived records the same way, through the consumer only.
//!
//! A reader has two ways in. **Live**: a core-NATS subscription on the
//! live subject(s), where the stream republishes each record it *stores*
//! (SPEC.md, "Live subjects"; not a de-duplicated or refused publish), in
//! stream order, with its position (`Nats-Sequence`) and the position of
//! the subject's record before it (`Nats-Last-Sequence`). **Catching up**:
//! an ordered consumer (ephemeral, filtered on the reader's subject(s), no
//! acks), which nats-server serves at more CPU per record (`bus_probe`,
//! benches/README.md). A reader subscribes live first, reads its history
//! through a consumer up to the stream's position when it opened (what
//! arrives live meanwhile waits in the subscription), drops the consumer
//! and reads live. By stream positions, a live record it has read already
//! is a repeat (dropped, counted); one whose predecessor it has not read
//! (a named reader: `Nats-Last-Sequence` past its last; `"*"`: a position
//! not the next) means it missed records: it *repairs*, i.e. asks the
//! stream where it is now and catches up through a consumer from its last
//! record, then reads live again. It repairs the same way after every
//! reconnect (records stored while it was away were never sent to it, and
//! a symbol that went quiet would never show the gap). When the client
//! drops messages of a full subscription
//! ([`crate::connection::SUBSCRIPTION_CAPACITY`]) it reports an event that
//! names no subscription, once per message: every reader then *checks*,
//! once its subscription has run dry (a record lost mid-way shows as a gap
//! before that) and at most once per 200 ms, whether the stream holds a
//! record past its last, and catches up only if it does and the live
//! subscription runs dry again short of it. A reader that lost nothing
//! thus costs the bus one request, not a consumer. Every wait on the bus
//! is bounded: a consumer that brings no record for 5 s while the reader
//! catches up is replaced, and replaced consumers are deleted on the
//! server. What the stream no longer holds (past its per-symbol limit) the
//! consumer skips, as it always did: the numbers jump, the edge counts the
//! jump in `quotehub_passthrough_gaps_total` and the reader logs it.
//!
//! A memory stream does not republish (it costs nats-server 2.9.10 more
//! than the consumers it saves, [`crate::StreamSettings`]), nor does a file
//! stream made before live subjects existed (nats-server 2.9 cannot add it
//! to an existing stream): their readers read through the consumer only,
//! as before. Whenever the consumer fails (the bus
//! restarted, a heartbeat was missed, the consumer vanished) the reader
//! makes a new one that starts right after the last record it saw, after a
//! backoff, so a bus that comes back with its store loses the reader
//! nothing that the stream still holds. A stream made again (one in memory,
//! after nats-server restarted) numbers its positions from 1 anew: the
//! reader then starts at its oldest record, skipping by the symbol's own
//! numbers what it has passed already.

use std::time::Duration;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use quotehub_proto::{Epoch, Record, Symbol};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connection::{Bus, ConnectionState, REQUEST_TIMEOUT};
use crate::error::BusError;
use crate::live::{self, Live, Step};
use crate::message_id;
use crate::stream::StreamSettings;

/// Longest a catching-up reader waits for its consumer's next record. The
/// records it catches up to are in the stream, so a consumer that brings
/// none for this long is wedged (its pull lost, the server overloaded):
/// the reader asks the stream again and makes a new one, rather than wait
/// for async-nats to notice two missed 15 s heartbeats.
const CATCH_UP_IDLE: Duration = Duration::from_secs(5);

/// Least time between two checks of one reader after the client reported
/// dropped messages (see [`EdgeReader::next`]): the event names no
/// subscription and comes once per dropped message, so while one reader's
/// subscription overflows every reader would otherwise ask the stream once
/// per message.
const CHECK_SPACING: Duration = Duration::from_millis(200);

/// Longest the requests of making a consumer (create, subscribe) may take
/// together before the attempt counts as failed.
const CONSUMER_DEADLINE: Duration = REQUEST_TIMEOUT.saturating_mul(2);

#[path = "edge_derived.rs"]
mod derived;

/// One record read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRecord {
    /// Its position in the stream (all symbols share this numbering).
    pub stream_sequence: u64,
    /// The record, byte for byte as the ingest hub published it.
    pub payload: Bytes,
    /// The sequence space its number belongs to, from its message id
    /// (`None` if the message carried no id quotehub writes).
    pub epoch: Option<Epoch>,
    /// While catching up or repairing: records of the reader's subjects the
    /// stream holds after this one and the reader has not yet yielded (the
    /// consumer's pending count). Read live: 0 (what is on its way to the
    /// subscription is not counted).
    pub pending: u64,
}

/// What a reader does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Ask the stream for its newest position of the reader's subject(s),
    /// then catch up to it, or read live if there is nothing to catch up.
    /// `check`: the reader knows of no missed record (the client dropped
    /// messages of some subscription, maybe not this one): a position past
    /// the reader's may still be on its way live, so it reads live on and
    /// catches up only if its subscription runs dry short of it.
    Repair { check: bool },
    /// Read through the consumer until a record at this stream position or
    /// past it (`u64::MAX`: for ever, no live subscription).
    CatchUp { until: u64 },
    /// Read the live subscription.
    Live,
}

/// Where a (re)created consumer starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The oldest record the stream holds for the subject, skipping records
    /// whose per-symbol sequence number is at or below `after_seq` until
    /// one is yielded (see [`EdgeReader::next`]).
    History { after_seq: u64 },
    /// Every record the stream holds, then each new one (a reader of
    /// every symbol).
    Held,
    /// The record after this stream position.
    After(u64),
}

/// The per-symbol sequence number of an encoded record; `None` for a record
/// that has none or that this version cannot read.
fn record_seq(payload: &[u8]) -> Option<u64> {
    match Record::decode(payload).ok()?.0 {
        Record::Quote(quote) => Some(quote.quote.seq),
        Record::Trade(trade) => Some(trade.trade.seq),
        _ => None,
    }
}

/// A catch-up consumer: an ordered consumer and its name on the server,
/// which deletes it when the reader lets go of it (an ordered consumer is
/// ephemeral, but nats-server keeps one whose client went away for 30 s,
/// with a pull of 500 records open: consumers left behind by repairs would
/// cost the server work for every record stored meanwhile).
struct Catching {
    messages: consumer::pull::Ordered,
    name: String,
    stream: String,
    jetstream: jetstream::Context,
}

impl Drop for Catching {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let jetstream = self.jetstream.clone();
        let (name, stream) = (std::mem::take(&mut self.name), std::mem::take(&mut self.stream));
        // The context's request timeout bounds it; a consumer not deleted
        // (the bus away) goes by itself after its inactive threshold.
        runtime.spawn(async move {
            if let Err(error) = jetstream.delete_consumer_from_stream(&name, &stream).await {
                tracing::debug!(%error, consumer = %name, "bus reader: could not delete a catch-up consumer");
            }
        });
    }
}

/// Reads one symbol's records: the last `history` ones, then each new one.
pub struct EdgeReader {
    jetstream: jetstream::Context,
    /// The stream, for its newest positions when repairing.
    handle: jetstream::stream::Stream,
    stream: String,
    subject: String,
    start: Start,
    /// The sequence number of the symbol's newest record when the reader
    /// was opened: once it is read, the history is.
    history_end_seq: Option<u64>,
    /// For a reader of every symbol: the stream's newest position when it
    /// was opened.
    history_end_position: Option<u64>,
    messages: Option<Catching>,
    /// `None` when the stream does not republish to the live subjects.
    live: Option<Live>,
    mode: Mode,
    /// The stream position of the last record read (yielded or skipped):
    /// every record of the reader's subject(s) up to it is accounted for.
    position: u64,
    /// When the stream that `position` and `start` count in was made (ns
    /// since the Unix epoch, by the server's clock).
    stream_made: i128,
    /// The per-symbol number of the last record yielded (a reader of one
    /// symbol; 0 before the first).
    last_seq: u64,
    /// A reader of every symbol ([`EdgeReader::open_all`]).
    every_symbol: bool,
    /// A reader of derived records ([`EdgeReader::open_derived`]): several
    /// channels' sequences, so no one number to skip by; a stream made
    /// again is read from all it holds, as a reader of every symbol does.
    derived: bool,
    /// The bus connection's state: a reconnect means a new consumer, and a
    /// repair.
    state: watch::Receiver<ConnectionState>,
    /// How many connects the bus had when the consumer was made.
    made_at_connect: u64,
    /// The client's slow-consumer count last seen: a new one means a check.
    slow_seen: u64,
    /// When to check, once the live subscription runs dry, that it lost
    /// nothing (the client dropped messages of some subscription since the
    /// last check); `None`: no check owed.
    check_due: Option<Instant>,
    /// When the last check began (checks are [`CHECK_SPACING`] apart).
    checked_at: Option<Instant>,
    /// A check found the stream at this position, past the reader's: read
    /// live until there, or catch up to it if the subscription runs dry
    /// first.
    reach: Option<u64>,
    /// Live records dropped as repeats, ever.
    repeats: u64,
    /// Repairs (a gap, a reconnect, a full subscription), ever.
    repairs: u64,
    retry_min: Duration,
    retry_max: Duration,
}

impl std::fmt::Debug for EdgeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // async-nats's consumer stream has no Debug.
        f.debug_struct("EdgeReader")
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .field("start", &self.start)
            .field("mode", &self.mode)
            .field("position", &self.position)
            .field("consuming", &self.messages.is_some())
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl EdgeReader {
    /// A reader of `symbol` on the stream of `settings`, starting with its
    /// last `history` records (0: only records published from now on).
    pub async fn open(bus: &Bus, settings: &StreamSettings, symbol: &Symbol, history: u64) -> Result<Self, BusError> {
        Self::open_after(bus, settings, symbol, history, 0).await
    }

    /// Like [`EdgeReader::open`] for a caller that holds the symbol's
    /// records up to number `known` already (an edge's table, from a reader
    /// that ran before or runs beside it): skips those, and when `known` is
    /// not 0 yields every later record the stream holds, even past the last
    /// `history`, so that the caller gets no gap the stream could fill (a
    /// reader beside it that is behind then only repeats these, never
    /// skips). The stream holds at most its per-symbol limit of them.
    pub async fn open_after(
        bus: &Bus,
        settings: &StreamSettings,
        symbol: &Symbol,
        history: u64,
        known: u64,
    ) -> Result<Self, BusError> {
        let subject = settings.subjects.of(symbol);
        let jetstream = bus.jetstream().clone();
        let mut state = bus.state();
        let observed = *state.borrow_and_update();
        let stream_failed = |reason: String| BusError::Stream {
            stream: settings.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_stream(&settings.name)
            .await
            .map_err(|error| stream_failed(error.to_string()))?;
        // Live first: whatever the stream stores from here on reaches the
        // subscription, and what it stored before, the history below reads.
        let live = Live::subscribe(bus, settings, &stream, settings.subjects.live_of(symbol), false).await?;
        let mut history_end_seq = None;
        // The stream position to read up to through the consumer, and the
        // last one accounted for.
        let (start, until, position) = if history == 0 {
            // "From now" as a stream position, so that a consumer made again
            // after a failure still starts there and misses nothing.
            let info = stream.info().await.map_err(|error| stream_failed(error.to_string()))?;
            let now = info.state.last_sequence;
            (Start::After(now), now, now)
        } else {
            // The history is counted in the symbol's own sequence numbers,
            // back from its newest record now. (Not in the consumer's pending
            // counts: a 2.9 server does not lower those when the per-subject
            // limit removes a record, so they overstate what is left.)
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(last) => {
                    history_end_seq = record_seq(&last.payload);
                    let after_seq = if known > 0 {
                        known
                    } else {
                        history_end_seq.map_or(0, |seq| seq.saturating_sub(history))
                    };
                    (Start::History { after_seq }, last.sequence, 0)
                }
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    (Start::History { after_seq: known }, 0, 0)
                }
                Err(error) => return Err(stream_failed(format!("the last record of {subject}: {error}"))),
            }
        };
        let mut reader = Self::new(bus, stream, &settings.name, subject, start, live, observed);
        reader.history_end_seq = history_end_seq;
        reader.position = position;
        reader.last_seq = known;
        reader.begin(until).await?;
        Ok(reader)
    }

    /// A reader of every symbol (the stream's whole subject space): every
    /// record the stream holds (at most its per-symbol limit of each
    /// symbol: the history a resume needs), then every new one. Its history
    /// has been read once a record at [`EdgeReader::history_end_position`]
    /// or later has.
    pub async fn open_all(bus: &Bus, settings: &StreamSettings) -> Result<Self, BusError> {
        let subject = settings.subjects.all();
        let jetstream = bus.jetstream().clone();
        let mut state = bus.state();
        let observed = *state.borrow_and_update();
        let stream_failed = |reason: String| BusError::Stream {
            stream: settings.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_stream(&settings.name)
            .await
            .map_err(|error| stream_failed(error.to_string()))?;
        let live = Live::subscribe(bus, settings, &stream, settings.subjects.live_all(), true).await?;
        let info = stream.info().await.map_err(|error| stream_failed(error.to_string()))?;
        let held = info.state.messages > 0;
        let last = info.state.last_sequence;
        let mut reader = Self::new(bus, stream, &settings.name, subject, Start::Held, live, observed);
        reader.every_symbol = true;
        reader.history_end_position = held.then_some(last);
        // An empty stream: the next record it stores is the one after its
        // last position, live.
        reader.position = if held { 0 } else { last };
        reader.begin(if held { last } else { 0 }).await?;
        Ok(reader)
    }

    /// A reader in its first mode, with no consumer yet.
    fn new(
        bus: &Bus,
        handle: jetstream::stream::Stream,
        stream: &str,
        subject: String,
        start: Start,
        live: Option<Live>,
        observed: ConnectionState,
    ) -> Self {
        Self {
            jetstream: bus.jetstream().clone(),
            stream_made: handle.cached_info().created.unix_timestamp_nanos(),
            last_seq: 0,
            every_symbol: false,
            derived: false,
            handle,
            stream: stream.to_owned(),
            subject,
            start,
            history_end_seq: None,
            history_end_position: None,
            messages: None,
            live,
            mode: Mode::Live,
            position: 0,
            state: bus.state(),
            made_at_connect: observed.connects,
            slow_seen: observed.slow_consumers,
            check_due: None,
            checked_at: None,
            reach: None,
            repeats: 0,
            repairs: 0,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        }
    }

    /// Catches up through a consumer to stream position `until` (made now,
    /// so that a bus that fails fails the open, which its caller retries),
    /// or reads live at once if there is nothing to catch up.
    async fn begin(&mut self, until: u64) -> Result<(), BusError> {
        if self.live.is_some() && until <= self.position {
            self.mode = Mode::Live;
            return Ok(());
        }
        self.mode = Mode::CatchUp {
            until: if self.live.is_some() { until } else { u64::MAX },
        };
        self.messages = Some(Self::consumer(&self.jetstream, &self.stream, &self.subject, self.start).await?);
        Ok(())
    }

    /// Live records dropped because the reader had read them already
    /// (through the consumer, or twice live after a repair), ever.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }

    /// Times the reader caught up from the stream after reading live (a
    /// missed record, a reconnect, a full subscription), ever.
    pub fn repairs(&self) -> u64 {
        self.repairs
    }

    /// Whether it reads live records over core NATS (the stream republishes
    /// them); `false`: through the consumer only.
    pub fn reads_live(&self) -> bool {
        self.live.is_some()
    }

    /// For a reader of every symbol or of derived records: the stream
    /// position of the newest record of its subjects when it was opened
    /// (`None`: it held none).
    pub fn history_end_position(&self) -> Option<u64> {
        self.history_end_position
    }

    /// The sequence number of the symbol's newest record when the reader
    /// was opened with history (`None`: no history asked for, or none held):
    /// the history has been read once a record numbered at least this has.
    pub fn history_end_seq(&self) -> Option<u64> {
        self.history_end_seq
    }

    /// The subject it reads.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A new consumer from `start` on. Borrows fields, not `self`: the
    /// consumer stream is not `Sync`, and `&self` held across an await
    /// would keep the reader from moving between threads.
    async fn consumer(
        jetstream: &jetstream::Context,
        stream: &str,
        subject: &str,
        start: Start,
    ) -> Result<Catching, BusError> {
        let failed = |reason: String| BusError::Consumer {
            subject: subject.to_owned(),
            reason,
        };
        let deliver_policy = match start {
            Start::History { .. } | Start::Held => consumer::DeliverPolicy::All,
            Start::After(position) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position + 1,
            },
        };
        let config = consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..Default::default()
        };
        let made = async {
            let consumer: consumer::Consumer<consumer::pull::OrderedConfig> = jetstream
                .create_consumer_on_stream(config, stream)
                .await
                .map_err(|error| failed(format!("creating the consumer: {error}")))?;
            let name = consumer.cached_info().name.clone();
            let messages = consumer
                .messages()
                .await
                .map_err(|error| failed(format!("starting the consumer: {error}")))?;
            Ok(Catching {
                messages,
                name,
                stream: stream.to_owned(),
                jetstream: jetstream.clone(),
            })
        };
        tokio::time::timeout(CONSUMER_DEADLINE, made)
            .await
            .unwrap_or_else(|_| Err(failed(format!("not made within {CONSUMER_DEADLINE:?}"))))
    }

    /// The newest stream position of `subject` (0: none), or of the whole
    /// stream for a reader of every symbol. Borrows fields, not `self` (see
    /// [`EdgeReader::consumer`]).
    async fn newest_position(
        handle: &jetstream::stream::Stream,
        subject: &str,
        every_symbol: bool,
    ) -> Result<u64, String> {
        if every_symbol {
            let info = handle.get_info().await.map_err(|error| error.to_string())?;
            return Ok(info.state.last_sequence);
        }
        match handle.get_last_raw_message_by_subject(subject).await {
            Ok(last) => Ok(last.sequence),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The next record, waiting for it as long as it takes (callers bound
    /// it with a timeout). Failures of the bus are retried, not returned.
    ///
    /// History: the consumer starts at the subject's oldest record and
    /// skips records up to the sequence number that leaves the last
    /// `history` (counted back from the symbol's newest record when the
    /// reader was opened); once one is yielded none is skipped, so what
    /// comes out has no gap even while new records arrive.
    pub async fn next(&mut self) -> BusRecord {
        let mut backoff = self.retry_min;
        // Off once the client is gone for good (its state can change no more).
        let mut watching = true;
        loop {
            match self.mode {
                Mode::Repair { check } => match self.repair_target().await {
                    Ok(until) => {
                        backoff = self.retry_min;
                        if until <= self.position {
                            self.messages = None;
                            self.mode = Mode::Live;
                        } else if check {
                            // Records past the reader's may only be on their
                            // way: read live on, and catch up only if the
                            // subscription runs dry short of them.
                            self.messages = None;
                            self.reach = Some(until);
                            self.mode = Mode::Live;
                        } else {
                            self.mode = Mode::CatchUp { until };
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, subject = %self.subject, "bus reader: cannot ask the stream where it is; retrying");
                        // Pacing the retries while the bus is away.
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.retry_max);
                    }
                },
                Mode::Live => {
                    let Some(live) = self.live.as_mut() else {
                        self.mode = Mode::CatchUp { until: u64::MAX };
                        continue;
                    };
                    let every_symbol = live.every_symbol;
                    // No clock read per record unless a check is owed.
                    let check_now = self.reach.is_some() || self.check_due.is_some_and(|due| due <= Instant::now());
                    let message = if check_now {
                        // Only once the subscription has run dry: a record
                        // it lost mid-way shows as a gap before then, and
                        // what is queued is not asked for again.
                        match live.subscriber.next().now_or_never() {
                            Some(message) => message,
                            None => {
                                if let Some(until) = self.reach.take() {
                                    tracing::debug!(subject = %self.subject, after = self.position, until, "bus reader: the live subscription lost records; repairing from the stream");
                                    self.repairs += 1;
                                    self.mode = Mode::CatchUp { until };
                                } else {
                                    self.check_due = None;
                                    self.checked_at = Some(Instant::now());
                                    self.mode = Mode::Repair { check: true };
                                }
                                continue;
                            }
                        }
                    } else {
                        let due = self.check_due;
                        tokio::select! {
                            message = live.subscriber.next() => message,
                            changed = self.state.changed(), if watching => {
                                watching = changed.is_ok();
                                if self.state_changed() {
                                    // Records stored while it was away never
                                    // reach it live.
                                    self.repair();
                                }
                                continue;
                            }
                            () = async {
                                match due {
                                    Some(due) => tokio::time::sleep_until(due).await,
                                    None => std::future::pending().await,
                                }
                            } => continue,
                        }
                    };
                    let Some(message) = message else {
                        // The client is closed: only the consumer is left.
                        tracing::warn!(subject = %self.subject, "bus reader: the live subscription ended; reading through a consumer");
                        self.live = None;
                        self.mode = Mode::CatchUp { until: u64::MAX };
                        continue;
                    };
                    match live::step(&message, every_symbol, &self.stream, self.position) {
                        Step::Next(position) => {
                            self.position = position;
                            if self.reach.is_some_and(|until| position >= until) {
                                self.reach = None;
                            }
                            self.start = Start::After(position);
                            self.note_yielded(&message.payload);
                            return BusRecord {
                                stream_sequence: position,
                                epoch: epoch_of(message.headers.as_ref()),
                                payload: message.payload,
                                pending: 0,
                            };
                        }
                        Step::Repeat => self.repeats += 1,
                        Step::Gap => {
                            tracing::debug!(subject = %self.subject, after = self.position, "bus reader: missed live records; repairing from the stream");
                            self.repair();
                        }
                        Step::NotOurs => {}
                    }
                }
                Mode::CatchUp { until } => {
                    let Some(catching) = self.messages.as_mut() else {
                        let made = match self.follow_a_remade_stream().await {
                            Ok(()) => Self::consumer(&self.jetstream, &self.stream, &self.subject, self.start).await,
                            Err(error) => Err(error),
                        };
                        match made {
                            Ok(catching) => {
                                self.messages = Some(catching);
                                backoff = self.retry_min;
                            }
                            Err(error) => {
                                tracing::warn!(%error, "bus reader: no consumer yet");
                                // Pacing the retries while the bus is away, not
                                // waiting for an event.
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(self.retry_max);
                            }
                        }
                        continue;
                    };
                    // Bounded only where the records are known to be there: a
                    // reader with no live subscription waits for new ones.
                    let bounded = self.live.is_some();
                    let (failure, pause) = tokio::select! {
                        next = catching.messages.next() => match next {
                            Some(Ok(message)) => match message.info() {
                                Ok(info) => {
                                    let (position, pending) = (info.stream_sequence, info.pending);
                                    self.position = self.position.max(position);
                                    if self.live.is_some() && (position >= until || pending == 0) {
                                        // Caught up: what the stream stores next
                                        // is in (or on its way to) the subscription.
                                        self.messages = None;
                                        self.mode = Mode::Live;
                                    }
                                    if let Start::History { after_seq } = self.start
                                        && record_seq(&message.message.payload).is_some_and(|seq| seq <= after_seq)
                                    {
                                        // Older than the history asked for; a new
                                        // consumer would skip it by the same rule.
                                        if self.mode == Mode::Live {
                                            self.start = Start::After(self.position);
                                        }
                                        continue;
                                    }
                                    self.start = Start::After(position);
                                    self.note_yielded(&message.message.payload);
                                    return BusRecord {
                                        stream_sequence: position,
                                        epoch: epoch_of(message.message.headers.as_ref()),
                                        payload: message.message.payload,
                                        pending,
                                    };
                                }
                                Err(error) => (format!("a message without JetStream info: {error}"), true),
                            },
                            Some(Err(error)) => (error.to_string(), true),
                            None => ("the consumer ended".to_owned(), true),
                        },
                        () = tokio::time::sleep(CATCH_UP_IDLE), if bounded => {
                            // Ask the stream again too: the records may be
                            // gone (the subject purged).
                            self.mode = Mode::Repair { check: false };
                            (format!("no record from the consumer within {CATCH_UP_IDLE:?}"), true)
                        }
                        changed = self.state.changed(), if watching => {
                            watching = changed.is_ok();
                            // Dropped messages are checked for once the reader
                            // reads live again; the catch-up goes on.
                            if !self.state_changed() {
                                continue;
                            }
                            // The bus is back: the consumer (ephemeral, in the
                            // server's memory) may be gone, and the library would
                            // notice only at its next missed heartbeat; and what
                            // it stored meanwhile never reached the subscription.
                            if self.live.is_some() {
                                self.mode = Mode::Repair { check: false };
                            }
                            ("the bus reconnected".to_owned(), false)
                        }
                    };
                    tracing::info!(subject = %self.subject, reason = %failure, "bus reader: making a new consumer");
                    self.made_at_connect = self.state.borrow().connects;
                    self.messages = None;
                    if pause {
                        // A consumer that keeps failing is not re-made in a busy loop.
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.retry_max);
                    }
                }
            }
        }
    }

    /// Takes in the connection's new state: dropped messages (of any
    /// subscription: the event does not say which) owe a check, at most one
    /// per [`CHECK_SPACING`]; true when the bus has come back since the
    /// reader's consumer or last repair was made.
    fn state_changed(&mut self) -> bool {
        let state = *self.state.borrow_and_update();
        if state.slow_consumers != self.slow_seen {
            self.slow_seen = state.slow_consumers;
            if self.check_due.is_none() {
                let now = Instant::now();
                let earliest = self.checked_at.map_or(now, |at| at + CHECK_SPACING);
                self.check_due = Some(earliest.max(now));
            }
        }
        let back = state.connected && state.connects != self.made_at_connect;
        if back {
            self.made_at_connect = state.connects;
        }
        back
    }

    /// The stream position a repair catches up to (see
    /// [`EdgeReader::newest_position`]), once the reader counts in the
    /// stream as it is now.
    async fn repair_target(&mut self) -> Result<u64, String> {
        self.follow_a_remade_stream().await.map_err(|error| error.to_string())?;
        let every_symbol = self.live.as_ref().is_some_and(|live| live.every_symbol);
        Self::newest_position(&self.handle, &self.subject, every_symbol).await
    }

    /// Before the reader counts on its stream positions again (a new
    /// consumer from `start`, a repair): if the stream is not the one they
    /// were read in (it was made again, empty, after nats-server lost it),
    /// starts over from the new stream's oldest record, past what the
    /// reader has yielded by the symbol's own numbers (a reader of every
    /// symbol takes all the new stream holds; the table refuses numbers it
    /// has passed).
    async fn follow_a_remade_stream(&mut self) -> Result<(), BusError> {
        if !matches!(self.start, Start::After(_)) && self.position == 0 {
            return Ok(());
        }
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|error| BusError::Stream {
                stream: self.stream.clone(),
                reason: error.to_string(),
            })?;
        let made = stream.cached_info().created.unix_timestamp_nanos();
        if made != self.stream_made {
            tracing::warn!(subject = %self.subject, "bus reader: the stream was made again; reading it from its oldest record");
            self.stream_made = made;
            self.handle = stream;
            self.position = 0;
            self.start = if self.every_symbol || self.derived {
                Start::Held
            } else {
                Start::History {
                    after_seq: self.last_seq,
                }
            };
        }
        Ok(())
    }

    /// Remembers the number of a record about to be yielded (a reader of
    /// one symbol), for a stream made again; logs a jump over numbers the
    /// stream does not hold (past its per-symbol limit, or never stored).
    fn note_yielded(&mut self, payload: &[u8]) {
        if !self.every_symbol && !self.derived {
            let seq = record_seq(payload).unwrap_or(self.last_seq);
            if self.last_seq > 0 && seq > self.last_seq + 1 {
                tracing::warn!(subject = %self.subject, after = self.last_seq, next = seq, "bus reader: the symbol's numbers jump (the stream does not hold the records between: past its per-symbol limit, or never stored); its clients see the jump");
            }
            self.last_seq = seq;
        }
    }

    /// Reading live, the reader missed records: it catches up from the
    /// stream before it reads live again.
    fn repair(&mut self) {
        self.repairs += 1;
        self.messages = None;
        self.reach = None;
        self.mode = Mode::Repair { check: false };
    }
}

/// The sequence space of a message, from its message id (`None`: none that
/// quotehub writes).
fn epoch_of(headers: Option<&async_nats::HeaderMap>) -> Option<Epoch> {
    headers
        .and_then(|headers| headers.get(message_id::HEADER))
        .and_then(|id| message_id::epoch(id.as_str()))
}
