//! The stream's tail: the last record of every symbol, which a standby
//! that takes the ingest lease continues from; and the derived stream's
//! (bars, BBO), the last record of every channel of every symbol.
//!
//! One ordered consumer over every symbol's subject with "deliver the last
//! message per subject" hands them over in one pass, however many symbols
//! there are (not one request per symbol), in stream order. The read ends
//! at the stream's last message as it was when the read began (or when
//! the consumer says nothing is pending): records a zombie ingest hub still
//! publishes meanwhile may be in it or not, and the stream's duplicate
//! window takes care of them.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{ErrorCode, consumer};
use bytes::Bytes;
use futures_util::StreamExt;
use quotehub_proto::{Channels, Epoch, Record, Symbol};

use crate::connection::{Bus, REQUEST_TIMEOUT};
use crate::error::BusError;
use crate::message_id;
use crate::stream::StreamSettings;

/// The longest wait for the next message of the tail before the read
/// counts as failed (the bus went away mid-read).
const NEXT_TIMEOUT: Duration = Duration::from_secs(5);

/// The last record of one symbol in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// Its position in the stream.
    pub stream_sequence: u64,
    /// The sequence space of its number, from its message id (`None`
    /// without an id quotehub writes).
    pub epoch: Option<Epoch>,
    /// The record, as published.
    pub payload: Bytes,
}

impl TailRecord {
    /// Its per-symbol sequence number (a bar's or BBO's: its channel's;
    /// `None` for a record this version does not read).
    pub fn seq(&self) -> Option<u64> {
        match Record::decode(&self.payload).ok()?.0 {
            Record::Quote(quote) => Some(quote.quote.seq),
            Record::Trade(trade) => Some(trade.trade.seq),
            Record::Bar(bar) => Some(bar.bar.seq),
            Record::Bbo(bbo) => Some(bbo.bbo.seq),
            _ => None,
        }
    }
}

/// The last record of every symbol the stream holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    records: HashMap<Symbol, TailRecord>,
}

impl Tail {
    /// A tail of these records (the newest by stream position wins for a
    /// symbol named twice): how the reader builds it, and how tests do.
    pub fn from_records(records: impl IntoIterator<Item = (Symbol, TailRecord)>) -> Self {
        let mut tail = Self::default();
        for (symbol, record) in records {
            tail.insert(symbol, record);
        }
        tail
    }

    fn insert(&mut self, symbol: Symbol, record: TailRecord) {
        match self.records.get(&symbol) {
            Some(held) if held.stream_sequence >= record.stream_sequence => {}
            _ => {
                self.records.insert(symbol, record);
            }
        }
    }

    /// The last record of `symbol`.
    pub fn get(&self, symbol: &Symbol) -> Option<&TailRecord> {
        self.records.get(symbol)
    }

    /// Every symbol's last record, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Symbol, &TailRecord)> {
        self.records.iter()
    }

    /// How many symbols.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the stream held nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The epoch of the newest record in the stream: the sequence space a
    /// hub that takes over continues.
    pub fn epoch(&self) -> Option<Epoch> {
        self.records
            .values()
            .filter(|record| record.epoch.is_some())
            .max_by_key(|record| record.stream_sequence)
            .and_then(|record| record.epoch)
    }

    /// Reads the last record of every symbol from the stream of `settings`.
    pub async fn read(bus: &Bus, settings: &StreamSettings) -> Result<Self, BusError> {
        let mut tail = Self::default();
        let subjects = &settings.subjects;
        last_per_subject(
            bus,
            &settings.name,
            &subjects.all(),
            false,
            |subject, record| match subjects.symbol_of(subject) {
                Some(symbol) => tail.insert(symbol, record),
                None => tracing::warn!(%subject, "bus tail: a subject that names no symbol; skipped"),
            },
        )
        .await?;
        Ok(tail)
    }
}

/// The last record of every derived channel (bars, BBO) of every symbol:
/// what a standby that takes the lease continues each channel's own
/// sequence from, as [`Tail`] is for the symbols' records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DerivedTail {
    records: HashMap<(Symbol, Channels), TailRecord>,
}

impl DerivedTail {
    /// A tail of these records (the newest by stream position wins for a
    /// channel named twice).
    pub fn from_records(records: impl IntoIterator<Item = ((Symbol, Channels), TailRecord)>) -> Self {
        let mut tail = Self::default();
        for (key, record) in records {
            tail.insert(key, record);
        }
        tail
    }

    fn insert(&mut self, key: (Symbol, Channels), record: TailRecord) {
        match self.records.get(&key) {
            Some(held) if held.stream_sequence >= record.stream_sequence => {}
            _ => {
                self.records.insert(key, record);
            }
        }
    }

    /// The last record of `symbol`'s derived `channel`.
    pub fn get(&self, symbol: Symbol, channel: Channels) -> Option<&TailRecord> {
        self.records.get(&(symbol, channel))
    }

    /// Every channel's last record, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&(Symbol, Channels), &TailRecord)> {
        self.records.iter()
    }

    /// Reads the last record of every derived channel of every symbol from
    /// the stream of derived records of `settings`. A stream that is not
    /// there (not made yet, or gone with a restarted nats-server) holds
    /// nothing: an empty tail, so that the derived channels never hold up a
    /// takeover of the records.
    pub async fn read(bus: &Bus, settings: &StreamSettings) -> Result<Self, BusError> {
        let mut tail = Self::default();
        let subjects = &settings.subjects;
        last_per_subject(
            bus,
            &settings.derived_name(),
            &subjects.derived_all(),
            true,
            |subject, record| match subjects.derived_symbol_of(subject) {
                Some((channel, symbol)) => tail.insert((symbol, channel), record),
                None => {
                    tracing::warn!(%subject, "bus tail: a derived subject that names no channel and symbol; skipped")
                }
            },
        )
        .await?;
        Ok(tail)
    }
}

/// Reads the last message of every subject under `filter` of the stream
/// `name` in one pass, handing each to `each` with its subject; a stream
/// that is not there reads as empty when `missing_is_empty`.
async fn last_per_subject(
    bus: &Bus,
    name: &str,
    filter: &str,
    missing_is_empty: bool,
    mut each: impl FnMut(&str, TailRecord),
) -> Result<(), BusError> {
    let failed = |reason: String| BusError::Consumer {
        subject: filter.to_owned(),
        reason,
    };
    let mut stream = match bus.jetstream().get_stream(name).await {
        Ok(stream) => stream,
        Err(error) => {
            let missing = matches!(
                error.kind(),
                GetStreamErrorKind::JetStream(server) if server.error_code() == ErrorCode::STREAM_NOT_FOUND
            );
            if missing && missing_is_empty {
                return Ok(());
            }
            return Err(failed(format!("the stream {name}: {error}")));
        }
    };
    let state = stream
        .info()
        .await
        .map_err(|error| failed(format!("the stream's state: {error}")))?
        .state
        .clone();
    if state.messages == 0 {
        // Nothing would be delivered, not even a last message to stop on.
        return Ok(());
    }
    let config = consumer::pull::OrderedConfig {
        filter_subject: filter.to_owned(),
        deliver_policy: consumer::DeliverPolicy::LastPerSubject,
        ..Default::default()
    };
    let consumer: consumer::Consumer<consumer::pull::OrderedConfig> = bus
        .jetstream()
        .create_consumer_on_stream(config, name)
        .await
        .map_err(|error| failed(format!("creating the consumer: {error}")))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| failed(format!("starting the consumer: {error}")))?;
    loop {
        let message = match tokio::time::timeout(NEXT_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => return Err(failed(error.to_string())),
            Ok(None) => return Err(failed("the consumer ended".to_owned())),
            Err(_) => return Err(failed(format!("no message within {NEXT_TIMEOUT:?}"))),
        };
        let info = message
            .info()
            .map_err(|error| failed(format!("a message without JetStream info: {error}")))?;
        let (position, pending) = (info.stream_sequence, info.pending);
        let epoch = message
            .message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(message_id::HEADER))
            .and_then(|id| message_id::epoch(id.as_str()));
        each(
            message.message.subject.as_str(),
            TailRecord {
                stream_sequence: position,
                epoch,
                payload: message.message.payload.clone(),
            },
        );
        // Messages come in stream order, so the stream's last message
        // when the read began ends the tail as it was then: a zombie
        // publishing meanwhile cannot keep the read going.
        if pending == 0 || position >= state.last_sequence {
            return Ok(());
        }
    }
}

/// The epoch of the stream's newest record (`None` if the stream is empty
/// or that record has no quotehub id): two requests, whatever the size.
pub async fn latest_epoch(bus: &Bus, settings: &StreamSettings) -> Result<Option<Epoch>, BusError> {
    let failed = |reason: String| BusError::Stream {
        stream: settings.name.clone(),
        reason,
    };
    let mut stream = tokio::time::timeout(REQUEST_TIMEOUT, bus.jetstream().get_stream(&settings.name))
        .await
        .map_err(|_| failed("timed out".to_owned()))?
        .map_err(|error| failed(error.to_string()))?;
    let last = stream
        .info()
        .await
        .map_err(|error| failed(error.to_string()))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(None);
    }
    let message = stream
        .get_raw_message(last)
        .await
        .map_err(|error| failed(format!("message {last}: {error}")))?;
    Ok(message
        .headers
        .get(message_id::HEADER)
        .and_then(|id| message_id::epoch(id.as_str())))
}
