//! Errors of the client.

use quotehub_proto::ErrorCode;

/// What went wrong talking to a hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting, the handshake, or the socket failed. (Not a `source`:
    /// the message already holds it, and error reports that print the
    /// chain would say it twice.)
    #[error("websocket: {0}")]
    WebSocket(tokio_tungstenite::tungstenite::Error),
    /// The server answered the upgrade with an HTTP response instead of a
    /// WebSocket: no API key (401), a key that may not connect (403), a
    /// full hub (503), or a URL that is not a hub's WebSocket path.
    #[error("the server answered HTTP {status}{}{}", after_colon(reason), hint(*status, reason))]
    Http {
        /// The HTTP status.
        status: u16,
        /// The first line of the response's body (the hub says why there).
        reason: String,
    },
    /// The connection could not be made: TCP, a refused certificate
    /// (untrusted, wrong name, expired), an unreadable CA file.
    #[error("{0}")]
    Connect(quotehub_connect::ConnectError),
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

impl Error {
    /// True when the hub refused the connection for want of a valid API key.
    pub fn needs_api_key(&self) -> bool {
        matches!(self, Error::Http { status: 401, .. })
    }

    /// True when nothing listens at the hub's address (connection refused).
    pub fn nothing_listening(&self) -> bool {
        let io = match self {
            Error::Connect(quotehub_connect::ConnectError::Tcp { source, .. }) => Some(source),
            Error::WebSocket(tokio_tungstenite::tungstenite::Error::Io(source)) => Some(source),
            _ => None,
        };
        io.is_some_and(|err| err.kind() == std::io::ErrorKind::ConnectionRefused)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                let status = response.status().as_u16();
                // A refusal's body says why; a page's (200) is only noise.
                let reason = response
                    .body()
                    .as_deref()
                    .filter(|_| status >= 400)
                    .map(String::from_utf8_lossy)
                    .and_then(|body| body.lines().next().map(str::to_owned))
                    .unwrap_or_default();
                Error::Http { status, reason }
            }
            other => Error::WebSocket(other),
        }
    }
}

impl From<quotehub_connect::ConnectError> for Error {
    fn from(error: quotehub_connect::ConnectError) -> Self {
        match error {
            quotehub_connect::ConnectError::WebSocket(error) => error.into(),
            other => Error::Connect(other),
        }
    }
}

/// `": reason"`, or nothing.
fn after_colon(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// What a person can do about an HTTP answer to the upgrade, where the
/// server's own reason does not already say it.
fn hint(status: u16, reason: &str) -> &'static str {
    match status {
        401 => " (this hub needs an API key: --api-key or QUOTEHUB_API_KEY)",
        200 | 404 if reason.is_empty() => " (not a hub's WebSocket path: quotes are at ws://HOST:PORT/v1/quotes)",
        _ => "",
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
