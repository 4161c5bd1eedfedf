//! An edge reader's live side: a core-NATS subscription on the live
//! subject(s), where a file stream republishes each record it stores
//! (SPEC.md, "Live subjects"), and what a live message is to a reader that
//! has read the stream up to a position: the next record, a repeat, or the
//! sign of a gap. [`crate::EdgeReader`] decides what to do with each.

use async_nats::jetstream;

use crate::connection::Bus;
use crate::error::BusError;
use crate::stream::StreamSettings;

/// The stream-position header a republished message carries.
const SEQUENCE: &str = "Nats-Sequence";
/// The position of the record of the same subject before it (0: none).
const LAST_SEQUENCE: &str = "Nats-Last-Sequence";
/// The stream that republished it.
const STREAM: &str = "Nats-Stream";

/// A reader's live subscription.
pub(crate) struct Live {
    pub(crate) subscriber: async_nats::Subscriber,
    /// Whether it covers every symbol: then each stored record is the one
    /// after the last (every record of the stream is republished to it);
    /// else a record follows the one its `Nats-Last-Sequence` names.
    pub(crate) every_symbol: bool,
}

/// What a live message is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next record, at this stream position.
    Next(u64),
    /// A record it has read already.
    Repeat,
    /// It follows records the reader has not read.
    Gap,
    /// Not a record the reader's stream republished.
    NotOurs,
}

impl Live {
    /// The live subscription on `subject`, made before the reader reads its
    /// history; `None` when `stream` does not republish to the live
    /// subjects (a memory stream, or one made before they existed), and the
    /// reader reads through consumers only.
    pub(crate) async fn subscribe(
        bus: &Bus,
        settings: &StreamSettings,
        stream: &jetstream::stream::Stream,
        subject: String,
        every_symbol: bool,
    ) -> Result<Option<Self>, BusError> {
        if stream.cached_info().config.republish.as_ref() != Some(&settings.republish()) {
            tracing::debug!(stream = %settings.name, "bus reader: the stream does not republish to the live subjects; reading through a consumer");
            return Ok(None);
        }
        let subscriber = bus
            .client()
            .subscribe(subject.clone())
            .await
            .map_err(|error| BusError::Consumer {
                subject,
                reason: format!("subscribing: {error}"),
            })?;
        Ok(Some(Self {
            subscriber,
            every_symbol,
        }))
    }
}

/// Where a live `message` stands for a reader of stream `stream` that has
/// read every record of its subject(s) up to stream position `position`.
pub(crate) fn step(message: &async_nats::Message, every_symbol: bool, stream: &str, position: u64) -> Step {
    let Some(headers) = message.headers.as_ref() else {
        return Step::NotOurs;
    };
    let number = |name: &str| headers.get(name).and_then(|value| value.as_str().parse::<u64>().ok());
    if headers.get(STREAM).is_none_or(|from| from.as_str() != stream) {
        return Step::NotOurs;
    }
    let Some(at) = number(SEQUENCE) else {
        return Step::NotOurs;
    };
    if at <= position {
        return Step::Repeat;
    }
    let follows = if every_symbol {
        at == position + 1
    } else {
        number(LAST_SEQUENCE).is_some_and(|before| before <= position)
    };
    if follows { Step::Next(at) } else { Step::Gap }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn message(headers: &[(&str, &str)]) -> async_nats::Message {
        let mut map = async_nats::HeaderMap::new();
        for &(name, value) in headers {
            map.insert(name, value);
        }
        async_nats::Message {
            subject: "quotehub.rec-live.AAPL".into(),
            reply: None,
            payload: bytes::Bytes::new(),
            headers: Some(map),
            status: None,
            description: None,
            length: 0,
        }
    }

    // TC0: a named reader follows the subject's chain; "*" the positions.
    #[test]
    fn live_messages_are_next_repeat_gap_or_not_ours() {
        let at = |seq: &str, last: &str| message(&[(STREAM, "QUOTEHUB"), (SEQUENCE, seq), (LAST_SEQUENCE, last)]);
        assert_eq!(step(&at("12", "7"), false, "QUOTEHUB", 7), Step::Next(12));
        assert_eq!(step(&at("12", "7"), false, "QUOTEHUB", 12), Step::Repeat);
        assert_eq!(step(&at("12", "9"), false, "QUOTEHUB", 7), Step::Gap);
        assert_eq!(step(&at("8", "3"), true, "QUOTEHUB", 7), Step::Next(8));
        assert_eq!(step(&at("9", "3"), true, "QUOTEHUB", 7), Step::Gap);
        assert_eq!(step(&at("12", "7"), false, "OTHER", 7), Step::NotOurs);
        assert_eq!(
            step(&message(&[(STREAM, "QUOTEHUB")]), false, "QUOTEHUB", 7),
            Step::NotOurs
        );
        let mut bare = at("12", "7");
        bare.headers = None;
        assert_eq!(step(&bare, false, "QUOTEHUB", 7), Step::NotOurs);
    }
}
