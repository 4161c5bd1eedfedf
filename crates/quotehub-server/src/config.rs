//! Server settings an operator may tune.

use std::time::Duration;

/// Server settings; [`ServerConfig::default`] suits a hub of thousands of clients.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Records and replies a client may have waiting before it counts as a slow
    /// consumer (each waiting record costs one `Bytes` handle, 32 bytes, plus
    /// its share of the record).
    pub queue_capacity: usize,
    /// Most record bytes batched into one binary message.
    pub max_message_bytes: usize,
    /// Largest client message accepted (requests are small JSON).
    pub max_request_bytes: usize,
    /// Most symbols one connection may hold by name.
    pub max_symbols_per_client: usize,
    /// How long a client has to complete the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for clients to take their close frames.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8_192,
            max_message_bytes: 64 * 1024,
            max_request_bytes: 64 * 1024,
            max_symbols_per_client: 10_000,
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }
}
