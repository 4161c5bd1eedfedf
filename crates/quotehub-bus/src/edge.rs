//! The edge side: one symbol's records from the stream, history first, then
//! live, as the raw SPEC.md bytes the ingest hub published.
//!
//! An [`EdgeReader`] reads through an ordered consumer (ephemeral, filtered
//! on the symbol's subject, no acks): the server sends the records in stream
//! order and the client checks that none is missed. Whenever the consumer
//! fails (the bus restarted, a heartbeat was missed, the consumer vanished)
//! the reader makes a new one that starts right after the last record it
//! saw, after a backoff, so a bus that comes back with its store loses the
//! reader nothing that the stream still holds.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::StreamExt;
use quotehub_proto::Symbol;

use crate::error::BusError;
use crate::stream::StreamSettings;

/// One record read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRecord {
    /// Its position in the stream (all symbols share this numbering).
    pub stream_sequence: u64,
    /// The record, byte for byte as the ingest hub published it.
    pub payload: Bytes,
}

/// Where a (re)created consumer starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The oldest record the stream holds for the subject, skipping until
    /// the last `history` remain (see [`EdgeReader::next`]).
    History { history: u64 },
    /// The record after this stream position.
    After(u64),
}

/// Reads one symbol's records: the last `history` ones, then each new one.
pub struct EdgeReader {
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    start: Start,
    messages: Option<consumer::pull::Ordered>,
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
    pub async fn open(
        jetstream: jetstream::Context,
        settings: &StreamSettings,
        symbol: &Symbol,
        history: u64,
    ) -> Result<Self, BusError> {
        let subject = settings.subjects.of(symbol);
        let start = if history == 0 {
            // "From now" as a stream position, so that a consumer made again
            // after a failure still starts there and misses nothing.
            let mut stream = jetstream
                .get_stream(&settings.name)
                .await
                .map_err(|error| BusError::Stream {
                    stream: settings.name.clone(),
                    reason: error.to_string(),
                })?;
            let info = stream.info().await.map_err(|error| BusError::Stream {
                stream: settings.name.clone(),
                reason: error.to_string(),
            })?;
            Start::After(info.state.last_sequence)
        } else {
            Start::History { history }
        };
        let mut reader = Self {
            jetstream,
            stream: settings.name.clone(),
            subject,
            start,
            messages: None,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        };
        reader.messages = Some(Self::consumer(&reader.jetstream, &reader.stream, &reader.subject, start).await?);
        Ok(reader)
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
    ) -> Result<consumer::pull::Ordered, BusError> {
        let failed = |reason: String| BusError::Consumer {
            subject: subject.to_owned(),
            reason,
        };
        let deliver_policy = match start {
            Start::History { .. } => consumer::DeliverPolicy::All,
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
    /// History: the consumer starts at the subject's oldest record, and
    /// records are skipped while more than `history` remain after them (the
    /// server's pending count); once one is yielded none is skipped, so what
    /// comes out has no gap even while new records arrive.
    pub async fn next(&mut self) -> BusRecord {
        let mut backoff = self.retry_min;
        loop {
            let failure = match self.messages.as_mut() {
                Some(messages) => match messages.next().await {
                    Some(Ok(message)) => match message.info() {
                        Ok(info) => {
                            let position = info.stream_sequence;
                            if let Start::History { history } = self.start
                                && info.pending >= history
                            {
                                // Older than the history asked for; a new
                                // consumer would skip it by the same rule.
                                continue;
                            }
                            self.start = Start::After(position);
                            return BusRecord {
                                stream_sequence: position,
                                payload: message.message.payload,
                            };
                        }
                        Err(error) => format!("a message without JetStream info: {error}"),
                    },
                    Some(Err(error)) => error.to_string(),
                    None => "the consumer ended".to_owned(),
                },
                None => "no consumer".to_owned(),
            };
            tracing::warn!(subject = %self.subject, reason = %failure, "bus reader: making a new consumer");
            self.messages = None;
            // Pacing the retries while the bus is away, not waiting for an event.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry_max);
            match Self::consumer(&self.jetstream, &self.stream, &self.subject, self.start).await {
                Ok(messages) => self.messages = Some(messages),
                Err(error) => tracing::warn!(%error, "bus reader: no consumer yet"),
            }
        }
    }
}
