//! What can go wrong on the bus.

/// An error from the bus layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The subject prefix cannot be used.
    #[error("bus subject prefix {prefix:?}: {reason}")]
    Prefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("bus setting {name}: {reason}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The NATS server could not be reached.
    #[error("connecting to the bus at {servers}: {source}")]
    Connect {
        /// The server list as given.
        servers: String,
        /// async-nats's error.
        source: async_nats::ConnectError,
    },
    /// The stream could not be created, checked or updated.
    #[error("bus stream {stream}: {reason}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// async-nats's or the server's words.
        reason: String,
    },
    /// A consumer (an edge's reader) could not be created or read.
    #[error("reading {subject} from the bus: {reason}")]
    Consumer {
        /// The subject read.
        subject: String,
        /// async-nats's or the server's words.
        reason: String,
    },
    /// The ingest lease could not be read, taken or given up.
    #[error("bus lease {key}: {reason}")]
    Lease {
        /// The lease's key.
        key: String,
        /// async-nats's or the server's words.
        reason: String,
    },
}

impl BusError {
    /// Whether retrying later can help (the bus is away or busy), as
    /// opposed to a setting that must be changed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Stream { .. } | Self::Consumer { .. } | Self::Lease { .. }
        )
    }
}
