//! The edge side: one symbol's records from the stream, history first, then
//! live, as the raw SPEC.md bytes the ingest hub published.
//!
//! [`EdgeReader::open_all`] reads every symbol instead: every record the
//! stream holds (each symbol's last records), then every new one (an
//! edge's `"*"`).
//!
//! An [`EdgeReader`] reads through an ordered consumer (ephemeral, filtered
//! on the symbol's subject, no acks): the server sends the records in stream
//! order and the client checks that none is missed. Whenever the consumer
//! fails (the bus restarted, a heartbeat was missed, the consumer vanished)
//! the reader makes a new one that starts right after the last record it
//! saw, after a backoff, so a bus that comes back with its store loses the
//! reader nothing that the stream still holds. A stream made again (one in
//! memory, after nats-server restarted) numbers its positions from 1 anew:
//! the reader then starts at its oldest record, skipping by the symbol's own
//! numbers what it has passed already.

use std::time::Duration;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::StreamExt;
use quotehub_proto::{Epoch, Record, Symbol};
use tokio::sync::watch;

use crate::connection::{Bus, ConnectionState};
use crate::error::BusError;
use crate::message_id;
use crate::stream::StreamSettings;

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
    /// Records of the reader's subjects the stream holds after this one and
    /// the reader has not yet yielded (the consumer's pending count): how far
    /// the reader is behind the stream.
    pub pending: u64,
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

/// Reads one symbol's records: the last `history` ones, then each new one.
pub struct EdgeReader {
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    start: Start,
    /// The sequence number of the symbol's newest record when the reader
    /// was opened: once it is read, the history is.
    history_end_seq: Option<u64>,
    /// For a reader of every symbol: the stream's newest position when it
    /// was opened.
    history_end_position: Option<u64>,
    messages: Option<consumer::pull::Ordered>,
    /// When the stream the positions in `start` belong to was made (ns
    /// since the Unix epoch, by the server's clock).
    stream_made: Option<i128>,
    /// The per-symbol number of the last record yielded (a reader of one
    /// symbol; 0 before the first).
    last_seq: u64,
    /// A reader of every symbol ([`EdgeReader::open_all`]).
    every_symbol: bool,
    /// The bus connection's state: a reconnect means a new consumer.
    state: watch::Receiver<ConnectionState>,
    /// How many connects the bus had when the consumer was made.
    made_at_connect: u64,
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
            .field("consuming", &self.messages.is_some())
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
        let made_at_connect = state.borrow_and_update().connects;
        let stream_failed = |reason: String| BusError::Stream {
            stream: settings.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_stream(&settings.name)
            .await
            .map_err(|error| stream_failed(error.to_string()))?;
        let stream_made = Some(stream.cached_info().created.unix_timestamp_nanos());
        let mut history_end_seq = None;
        let start = if history == 0 {
            // "From now" as a stream position, so that a consumer made again
            // after a failure still starts there and misses nothing.
            let info = stream.info().await.map_err(|error| stream_failed(error.to_string()))?;
            Start::After(info.state.last_sequence)
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
                    Start::History { after_seq }
                }
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    Start::History { after_seq: known }
                }
                Err(error) => return Err(stream_failed(format!("the last record of {subject}: {error}"))),
            }
        };
        let mut reader = Self {
            jetstream,
            stream: settings.name.clone(),
            subject,
            start,
            history_end_seq,
            history_end_position: None,
            messages: None,
            stream_made,
            last_seq: known,
            every_symbol: false,
            state,
            made_at_connect,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        };
        reader.messages = Some(Self::consumer(&reader.jetstream, &reader.stream, &reader.subject, start).await?);
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
        let made_at_connect = state.borrow_and_update().connects;
        let stream_failed = |reason: String| BusError::Stream {
            stream: settings.name.clone(),
            reason,
        };
        let mut stream = jetstream
            .get_stream(&settings.name)
            .await
            .map_err(|error| stream_failed(error.to_string()))?;
        let info = stream.info().await.map_err(|error| stream_failed(error.to_string()))?;
        let mut reader = Self {
            jetstream,
            stream: settings.name.clone(),
            subject,
            start: Start::Held,
            history_end_seq: None,
            history_end_position: (info.state.messages > 0).then_some(info.state.last_sequence),
            messages: None,
            stream_made: Some(info.created.unix_timestamp_nanos()),
            last_seq: 0,
            every_symbol: true,
            state,
            made_at_connect,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        };
        reader.messages = Some(Self::consumer(&reader.jetstream, &reader.stream, &reader.subject, reader.start).await?);
        Ok(reader)
    }

    /// For a reader of every symbol: the stream position of the newest
    /// record when it was opened (`None`: the stream was empty).
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

    /// Before a consumer is made again from a stream position: if the
    /// stream is not the one that position was read in (it was made again,
    /// empty, after nats-server lost it), starts at the new stream's oldest
    /// record instead, past what the reader has yielded by the symbol's own
    /// numbers (a reader of every symbol takes all the new stream holds;
    /// the table refuses numbers it has passed).
    async fn follow_a_remade_stream(&mut self) -> Result<(), BusError> {
        if !matches!(self.start, Start::After(_)) {
            return Ok(());
        }
        let made = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|error| BusError::Stream {
                stream: self.stream.clone(),
                reason: error.to_string(),
            })?
            .cached_info()
            .created
            .unix_timestamp_nanos();
        if self.stream_made != Some(made) {
            tracing::warn!(subject = %self.subject, "bus reader: the stream was made again; reading it from its oldest record");
            self.stream_made = Some(made);
            self.start = if self.every_symbol {
                Start::Held
            } else {
                Start::History {
                    after_seq: self.last_seq,
                }
            };
        }
        Ok(())
    }

    /// A new consumer from `start` on. Borrows fields, not `self`: the
    /// consumer stream is not `Sync`, and `&self` held across an await
    /// would keep the reader from moving between threads.
    async fn consumer(
        jetstream: &jetstream::Context,
        stream: &str,
        subject: &str,
        start: Start,
    ) -> Result<consumer::pull::Ordered, BusError> {
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
        let consumer: consumer::Consumer<consumer::pull::OrderedConfig> = jetstream
            .create_consumer_on_stream(config, stream)
            .await
            .map_err(|error| failed(format!("creating the consumer: {error}")))?;
        consumer
            .messages()
            .await
            .map_err(|error| failed(format!("starting the consumer: {error}")))
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
            let Some(messages) = self.messages.as_mut() else {
                let remade = self.follow_a_remade_stream().await;
                let made = match remade {
                    Ok(()) => Self::consumer(&self.jetstream, &self.stream, &self.subject, self.start).await,
                    Err(error) => Err(error),
                };
                match made {
                    Ok(messages) => {
                        self.messages = Some(messages);
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
            let (failure, pause) = tokio::select! {
                next = messages.next() => match next {
                    Some(Ok(message)) => match message.info() {
                        Ok(info) => {
                            let (position, pending) = (info.stream_sequence, info.pending);
                            if let Start::History { after_seq } = self.start
                                && record_seq(&message.message.payload).is_some_and(|seq| seq <= after_seq)
                            {
                                // Older than the history asked for; a new
                                // consumer would skip it by the same rule.
                                continue;
                            }
                            self.start = Start::After(position);
                            if !self.every_symbol {
                                self.last_seq = record_seq(&message.message.payload).unwrap_or(self.last_seq);
                            }
                            let epoch = message
                                .message
                                .headers
                                .as_ref()
                                .and_then(|headers| headers.get(message_id::HEADER))
                                .and_then(|id| message_id::parse(id.as_str()))
                                .map(|(_, epoch, _)| epoch);
                            return BusRecord {
                                stream_sequence: position,
                                payload: message.message.payload,
                                epoch,
                                pending,
                            };
                        }
                        Err(error) => (format!("a message without JetStream info: {error}"), true),
                    },
                    Some(Err(error)) => (error.to_string(), true),
                    None => ("the consumer ended".to_owned(), true),
                },
                changed = self.state.changed(), if watching => {
                    watching = changed.is_ok();
                    let state = *self.state.borrow_and_update();
                    if !watching || !state.connected || state.connects == self.made_at_connect {
                        continue;
                    }
                    // The bus is back: the consumer (ephemeral, in the
                    // server's memory) may be gone, and the library would
                    // notice only at its next missed heartbeat.
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
