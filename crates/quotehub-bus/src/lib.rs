//! quotehub over NATS JetStream: hubs past one machine.
//!
//! An ingest hub publishes every encoded record (the SPEC.md bytes, never
//! re-encoded) to a JetStream stream, one subject per symbol; edge hubs read
//! them back by symbol, history first, and fan them out as a standalone hub
//! does. The stream keeps the last records of each symbol, which are the
//! edges' snapshots and resume history. SPEC.md, "The bus (NATS JetStream)",
//! is the subject scheme and the message id.
//!
//! | module | holds |
//! |---|---|
//! | [`subject`] | [`Subjects`]: symbol ↔ subject, with the reversible token escape |
//! | [`stream`] | [`StreamSettings`]: the stream's name, per-symbol limit and duplicate window; creating or updating it |
//! | [`ingest`] | [`IngestPublisher`]: records out with bounded acks in flight and a bounded buffer while the bus is away |
//! | [`edge`] | [`EdgeReader`]: one symbol's last records, then the new ones, surviving a bus restart |
//! | [`error`] | [`BusError`] |
//!
//! async-nats 0.50 without its `server_2_10`+ features: Debian ships
//! nats-server 2.9.10, and those features send consumer fields it lacks.

pub mod edge;
pub mod error;
pub mod ingest;
pub mod stream;
pub mod subject;

use std::time::Duration;

pub use edge::{BusRecord, EdgeReader};
pub use error::BusError;
pub use ingest::{IngestCounters, IngestPublisher, IngestSettings};
pub use stream::StreamSettings;
pub use subject::Subjects;

/// How long a JetStream API request or a publish ack may take before it
/// counts as failed (and is retried).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to the bus: `servers` is `nats://HOST:PORT`, several separated
/// by commas. Once connected, the client reconnects by itself, forever,
/// with a growing delay; what was sent meanwhile is re-sent by the callers
/// ([`IngestPublisher`], [`EdgeReader`]).
pub async fn connect(servers: &str) -> Result<(async_nats::Client, async_nats::jetstream::Context), BusError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(REQUEST_TIMEOUT)
        .max_reconnects(None)
        .connect(servers)
        .await
        .map_err(|source| BusError::Connect {
            servers: servers.to_owned(),
            source,
        })?;
    let jetstream = async_nats::jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .ack_timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    Ok((client, jetstream))
}
