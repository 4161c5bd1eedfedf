//! Errors of the client.

use quotehub_proto::ErrorCode;

/// What went wrong talking to a hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting, the handshake, or the socket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The connection could not be made: TCP, a refused certificate
    /// (untrusted, wrong name, expired), an unreadable CA file.
    #[error("{0}")]
    Connect(quotehub_tls::ConnectError),
    /// The hub refused a request.
    #[error("hub refused the request ({code:?}): {message}")]
    Refused {
        /// The hub's error code.
        code: ErrorCode,
        /// The hub's explanation.
        message: String,
    },
    /// The hub sent something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The hub closed the connection.
    #[error("hub closed the connection{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed {
        /// The close code and reason, if the hub sent them.
        reason: Option<String>,
    },
}

impl Error {
    /// True when the connection is gone (reconnecting may help); false when
    /// only a request was refused.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Error::Refused { .. })
    }
}

impl From<quotehub_tls::ConnectError> for Error {
    fn from(error: quotehub_tls::ConnectError) -> Self {
        match error {
            quotehub_tls::ConnectError::WebSocket(error) => Error::WebSocket(error),
            other => Error::Connect(other),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
