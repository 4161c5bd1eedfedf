//! quotehub's outgoing connections (the connecting side; the hub's
//! accepting side, TLS included, is the server's): the one place where a
//! `ws://` or `wss://` URL becomes a verified TLS stream and a WebSocket,
//! and where a lost connection's reconnect delays come from. Used by the
//! Rust client (`Client::connect("wss://…")`) and by the hub's live sources
//! (`serve --feed wss://…`, `quotehub+tls://…`).
//!
//! | module | holds |
//! |---|---|
//! | [`trust`] | [`ClientTls`]: the roots a server's certificate must chain to (public web roots plus an operator's CA file) |
//! | [`stream`] | [`Stream`]: a TCP connection, plain or inside TLS |
//! | [`mod@connect`] | [`fn@connect`] and [`connect_websocket`]: TCP, then the TLS handshake for `wss://`, then the WebSocket handshake |
//! | [`backoff`] | [`Backoff`]: reconnect delays, exponential with jitter (backon's), shared by live sources and the client |
//! | [`error`] | [`ConnectError`], with the certificate problems told apart |
//!
//! rustls with the ring provider, as the server side uses. Certificate
//! verification is never turned off: a private deployment adds its CA
//! instead ([`CA_FILE_ENV`], or [`ClientTls::with_ca_file`]).

pub mod backoff;
pub mod connect;
pub mod error;
pub mod stream;
pub mod trust;

pub use backoff::Backoff;
pub use connect::{connect, connect_websocket};
pub use error::{CertificateProblem, ConnectError};
pub use stream::Stream;
pub use trust::{CA_FILE_ENV, ClientTls};
