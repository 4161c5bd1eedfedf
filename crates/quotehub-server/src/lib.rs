//! The fan-out WebSocket server: accepts clients at `/v1/quotes`, keeps their
//! subscriptions in the table, and pushes every published quote to each
//! subscriber as binary records, encoded once and never waiting on a client.
//!
//! | file | holds |
//! |---|---|
//! | [`hub`] | [`Hub`]: the table, counters and ids shared by feeds and clients |
//! | [`fanout`] | [`Publisher`]: sequence, encode once, `try_send` to each subscriber |
//! | [`client`] | [`ClientHandle`]: a client's bounded queue |
//! | [`slow_consumer`] | what happens when a client's queue is full |
//! | [`session`] | a client's requests and subscriptions |
//! | [`writer`] | a client's writer task: batch records, flush once |
//! | [`handshake`] | path, sub-protocol and buffer sizes |
//! | [`server`] | [`run`]: accept loop, connection driver, shutdown |
//!
//! Data flow: feed thread → [`Publisher::publish`] → table (sequence + last
//! value) → each subscriber's queue → its writer task → socket.

pub mod client;
pub mod config;
pub mod fanout;
pub mod handshake;
pub mod hub;
pub mod server;
pub mod session;
pub mod slow_consumer;
pub mod stats;
pub mod writer;

pub use client::ClientHandle;
pub use config::ServerConfig;
pub use fanout::Publisher;
pub use handshake::{BINARY_PROTOCOL, QUOTES_PATH};
pub use hub::Hub;
pub use server::run;
pub use stats::Stats;
