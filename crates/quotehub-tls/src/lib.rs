//! TLS for quotehub's outgoing connections: the one place where a `wss://`
//! URL becomes a verified TLS stream, used by the Rust client
//! (`Client::connect("wss://…")`) and by the hub's live sources
//! (`serve --feed wss://…`, `quotehub+tls://…`).
//!
//! | module | holds |
//! |---|---|
//! | [`trust`] | [`ClientTls`]: the roots a server's certificate must chain to (public web roots plus an operator's CA file) |
//! | [`stream`] | [`Stream`]: a TCP connection, plain or inside TLS |
//! | [`connect`] | [`connect`] and [`connect_websocket`]: TCP, then the TLS handshake for `wss://`, then the WebSocket handshake |
//! | [`error`] | [`ConnectError`], with the certificate problems told apart |
//!
//! rustls with the ring provider, as the server side uses. Certificate
//! verification is never turned off: a private deployment adds its CA
//! instead ([`CA_FILE_ENV`], or [`ClientTls::with_ca_file`]).

pub mod connect;
pub mod error;
pub mod stream;
pub mod trust;

pub use connect::{connect, connect_websocket};
pub use error::{CertificateProblem, ConnectError};
pub use stream::Stream;
pub use trust::{CA_FILE_ENV, ClientTls};
