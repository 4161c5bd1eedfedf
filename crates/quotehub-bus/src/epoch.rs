//! Which sequence space the stream's records are numbered in: an edge serves
//! the ingest hub's epoch, so it reads it from the newest record's message
//! id (`<symbol>:<epoch>:<seq>`) before it builds its hub.

use quotehub_proto::Epoch;

use crate::connection::Bus;
use crate::error::BusError;
use crate::message_id;
use crate::stream::StreamSettings;

/// The epoch of the stream's newest record, and that record's stream
/// position; `None` while the stream holds no record with a quotehub id.
pub async fn newest_epoch(bus: &Bus, settings: &StreamSettings) -> Result<Option<(Epoch, u64)>, BusError> {
    let failed = |reason: String| BusError::Stream {
        stream: settings.name.clone(),
        reason,
    };
    let mut stream = bus
        .jetstream()
        .get_stream(&settings.name)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let info = stream.info().await.map_err(|error| failed(error.to_string()))?;
    if info.state.messages == 0 {
        return Ok(None);
    }
    let position = info.state.last_sequence;
    let newest = stream
        .get_raw_message(position)
        .await
        .map_err(|error| failed(format!("reading record {position}: {error}")))?;
    Ok(newest
        .headers
        .get(message_id::HEADER)
        .and_then(|id| message_id::epoch(id.as_str()))
        .map(|epoch| (epoch, position)))
}
