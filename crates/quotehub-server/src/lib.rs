//! The fan-out WebSocket server: accepts clients at `/v1/quotes`, keeps their
//! subscriptions in the table, and pushes every published quote to each
//! subscriber as binary records, encoded once and never waiting on a client.
//!
//! | file | holds |
//! |---|---|
//! | [`hub`] | [`Hub`]: the table, counters and ids shared by feeds and clients |
//! | [`fanout`] | [`Publisher`]: sequence, encode once, push the same bytes to each subscriber's queue (never waiting) |
//! | [`client`] | [`ClientHandle`]: how the publisher reaches a client |
//! | [`queue`] | a client's bounded outbound queue, drained in batches |
//! | `run` | the records of one message, copied or shared with other clients |
//! | [`recorder`] | [`Recorder`]: what the hub ingests, written to a capture |
//! | [`slow_consumer`] | what happens when a client's queue is full: conflate or disconnect |
//! | [`session`] | a client's requests and subscriptions |
//! | [`rate_limit`] | the per-connection request rate limit |
//! | [`writer`] | a client's writer task: each run behind its headers in one vectored write, flush once per batch |
//! | `deadline` | a socket's write half with a write deadline and a close grace |
//! | `frame` | WebSocket frame headers as the writer writes them |
//! | `read_side` | the socket as tungstenite sees it: reads, and its pongs and close answers into the queue |
//! | [`auth`] | API keys, entitlements, per-key caps, the `Origin` allow-list |
//! | [`http`] | the HTTP/1.1 front door: request heads and plain responses |
//! | [`tls`] | TLS (`wss://`, `https://`) from PEM files |
//! | [`upgrade`] | the WebSocket handshake, sub-protocols, buffer sizes |
//! | [`sse`] | Server-Sent Events at `/v1/sse` |
//! | [`web`] | the browser quote board at `/` and its JavaScript module |
//! | [`echo`] | the conformance echo route (off by default) |
//! | [`live`] | [`run_live`]: a live source (`tcp://`, `ws(s)://`, `quotehub(+tls)://`) into the hub |
//! | [`admin`] | `/admin/replay`: the hub's replay's state, pause, resume, seek, speed |
//! | [`replay_feeds`] | the feeds clients may replay for themselves, by name; the session caps (hub, client) |
//! | `replay_pool` | the few threads that read replay sessions' feeds, a chunk at a time |
//! | [`replay_session`] | `/v1/replay`: a client's own paced replay, with backpressure |
//! | [`metrics`] | Prometheus text at `/metrics`, `/health` |
//! | [`relay`] | `quotehub://`: another hub's records republished without re-encoding |
//! | [`server`] | [`run`]: accept loop, routing, connection driver, shutdown |
//! | [`admission`] | the connection cap's permits from accept, the refusal reserve, the per-address pending share |
//! | `accept_backoff` | failed `accept`s: exponential pauses and a rate-limited log |
//! | [`descriptors`] | the open-file limit: raised at start-up, checked against `max_connections` |
//!
//! Data flow: feed thread → [`Publisher::publish`] → table (sequence + last
//! value) → each subscriber's queue → its writer task → socket.

mod accept_backoff;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod client;
pub mod config;
mod deadline;
pub mod descriptors;
pub mod echo;
pub mod fanout;
mod frame;
pub mod http;
pub mod hub;
pub mod live;
pub mod metrics;
pub mod queue;
pub mod rate_limit;
mod read_side;
pub mod recorder;
pub mod relay;
pub mod replay_feeds;
mod replay_pool;
pub mod replay_session;
mod run;
pub mod server;
pub mod session;
mod slots;
pub mod slow_consumer;
pub mod sse;
mod staging;
pub mod stats;
pub mod tls;
pub mod upgrade;
pub mod web;
pub mod writer;

pub use admin::{ADMIN_REPLAY_PATH, ReplayAdmin};
pub use auth::{Access, ApiKey};
pub use client::ClientHandle;
pub use config::ServerConfig;
pub use fanout::Publisher;
pub use hub::Hub;
pub use live::{LiveOptions, run_live};
pub use recorder::Recorder;
pub use replay_feeds::{REPLAY_FEEDS_PATH, ReplayFeeds};
pub use replay_session::REPLAY_PATH;
pub use server::{QUOTES_PATH, SSE_PATH, run};
pub use slow_consumer::Policy;
pub use staging::SHARE_MIN_BYTES;
pub use stats::{ForcedClose, Stats};
pub use tls::{Tls, TlsError};
pub use upgrade::{BINARY_PROTOCOL, Format, JSON_PROTOCOL};
