//! An edge reader of derived records (bars, BBO): [`EdgeReader::open_derived`].
//! A child of `edge.rs`, so that it builds the reader as the other openers
//! do; the reading itself is the consumer path of `edge.rs`.

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use quotehub_proto::Symbol;

use super::{EdgeReader, Start};
use crate::connection::Bus;
use crate::error::BusError;
use crate::stream::StreamSettings;

impl EdgeReader {
    /// A reader of the derived records (bars, BBO) of `symbol`, every
    /// derived channel of it, or of every symbol (`None`), from the stream
    /// of derived records: every record it holds of them (its per-subject
    /// limit of each channel), then every new one, through a consumer only
    /// (no live subjects: these channels are low-rate). Each channel is
    /// numbered in its own sequence, which the caller checks; its history
    /// has been read once a record at [`EdgeReader::history_end_position`]
    /// or later has.
    pub async fn open_derived(bus: &Bus, settings: &StreamSettings, symbol: Option<&Symbol>) -> Result<Self, BusError> {
        let name = settings.derived_name();
        let subject = symbol.map_or_else(
            || settings.subjects.derived_all(),
            |symbol| settings.subjects.derived_channels_of(symbol),
        );
        let mut state = bus.state();
        let observed = *state.borrow_and_update();
        let stream_failed = |reason: String| BusError::Stream {
            stream: name.clone(),
            reason,
        };
        let mut stream = bus
            .jetstream()
            .get_stream(&name)
            .await
            .map_err(|error| stream_failed(error.to_string()))?;
        // The newest position among the reader's subjects: the end of its history.
        let newest = match symbol {
            None => {
                let info = stream.info().await.map_err(|error| stream_failed(error.to_string()))?;
                (info.state.messages > 0).then_some(info.state.last_sequence)
            }
            Some(symbol) => {
                let mut newest = None;
                for (channel, _) in crate::subject::DERIVED_TOKENS {
                    let Some(one) = settings.subjects.derived_of(channel, symbol) else {
                        continue;
                    };
                    match stream.get_last_raw_message_by_subject(&one).await {
                        Ok(last) => newest = newest.max(Some(last.sequence)),
                        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                        Err(error) => return Err(stream_failed(format!("the last record of {one}: {error}"))),
                    }
                }
                newest
            }
        };
        let mut reader = Self::new(bus, stream, &name, subject, Start::Held, None, observed);
        reader.derived = true;
        reader.history_end_position = newest;
        reader.begin(u64::MAX).await?;
        Ok(reader)
    }
}
