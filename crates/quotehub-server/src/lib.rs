//! The fan-out WebSocket server: accepts clients at `/v1/quotes`, keeps their
//! subscriptions in the table, and pushes every published quote to each
//! subscriber as binary records, encoded once and never waiting on a client.
//!
//! The engine (sequencing, last-value cache, staging, per-client queues,
//! slow-consumer policy, counters) is the `quotehub-engine` crate: no
//! runtime, no sockets, tested without either. This crate is its edges, and
//! re-exports the engine's modules under the names they have always had
//! here (`quotehub_server::hub`, `::fanout`, `::client`, `::queue`,
//! `::slow_consumer`, `::stats`, `::recorder`, `::frame`).
//!
//! | file | holds |
//! |---|---|
//! | [`session`] | a client's requests and subscriptions |
//! | [`rate_limit`] | the per-connection request rate limit |
//! | [`writer`] | a client's writer task: each run behind its headers in one vectored write, flush once per batch |
//! | `deadline` | a socket's write half with a write deadline and a close grace |
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
//! | [`metrics`] | Prometheus text at `/metrics`, `/health` (the histogram itself is the engine's) |
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
pub mod config;
mod deadline;
pub mod descriptors;
pub mod echo;
pub mod http;
pub mod live;
pub mod metrics;
pub mod rate_limit;
mod read_side;
pub mod relay;
pub mod replay_feeds;
mod replay_pool;
pub mod replay_session;
pub mod server;
pub mod session;
pub mod sse;
pub mod tls;
pub mod upgrade;
pub mod web;
pub mod writer;

// The engine, under the names the server has always given it.
pub use quotehub_engine::{client, fanout, frame, hub, queue, recorder, slow_consumer, stats};

pub use admin::{ADMIN_REPLAY_PATH, ReplayAdmin};
pub use auth::{Access, ApiKey};
pub use config::ServerConfig;
pub use live::{LiveOptions, run_live};
pub use quotehub_engine::ClientHandle;
pub use quotehub_engine::Hub;
pub use quotehub_engine::Policy;
pub use quotehub_engine::Publisher;
pub use quotehub_engine::Recorder;
pub use quotehub_engine::SHARE_MIN_BYTES;
pub use quotehub_engine::{ForcedClose, Stats};
pub use replay_feeds::{REPLAY_FEEDS_PATH, ReplayFeeds};
pub use replay_session::REPLAY_PATH;
pub use server::{QUOTES_PATH, SSE_PATH, run};
pub use tls::{Tls, TlsError};
pub use upgrade::{BINARY_PROTOCOL, Format, JSON_PROTOCOL};
