//! The fan-out WebSocket server: accepts clients at `/v1/quotes`, keeps their
//! subscriptions in the table, and pushes every published quote to each
//! subscriber as binary records, encoded once and never waiting on a client.
//!
//! The engine (sequencing, last-value cache, staging, per-client queues,
//! slow-consumer policy, counters, a client's requests and subscriptions)
//! is the `quotehub-engine` crate: no
//! runtime, no sockets, tested without either. This crate is its edges, and
//! re-exports the engine's modules under the names they have always had
//! here (`quotehub_server::hub`, `::fanout`, `::client`, `::queue`,
//! `::session`, `::rate_limit`, `::slow_consumer`, `::stats`, `::recorder`;
//! the WebSocket frame headers stay the writer's business).
//!
//! Layering, which the code keeps: [`serve`] (`connection.rs`) accepts and
//! reads each request head, `router.rs` (a table of path → route) picks the
//! route, and each route in `routes/` serves its connection using the
//! lifecycle in `connection.rs`, the engine, and the support modules below.
//! Only the router imports a route; no route imports another; paths live in
//! [`paths`], so a client of another hub (`relay.rs`) needs no route either.
//!
//! | file | holds |
//! |---|---|
//! | `connection` | a connection's life for every route: [`serve`] (the accept loop: accept under the cap, drain at shutdown), TLS and request head within the handshake timeout, registration with the engine, close reasons |
//! | `router` | the route table: path → route, what a full hub still serves, which routes need an API key |
//! | [`paths`] | every path the hub serves |
//! | `routes/quotes` | `/v1/quotes`: quotes over WebSocket (reader, writer, heartbeat, close handshake) |
//! | `routes/sse` | `/v1/sse`: Server-Sent Events |
//! | `routes/replay` | `/v1/replay`: a client's own paced replay, with backpressure |
//! | `routes/snapshot` | `/v1/snapshot`: the last values of named symbols as JSON, live or as of a time in a replay feed |
//! | `routes/replay_feeds` | `/v1/replay/feeds`: the feeds clients may replay |
//! | `routes/admin` | `/admin/replay`: the hub's replay's state, pause, resume, seek, speed |
//! | `routes/metrics` | `/metrics`: Prometheus text (the histogram itself is the engine's) |
//! | `routes/health` | `/health`: liveness |
//! | `routes/board` | `/`: the browser quote board and its JavaScript module |
//! | `routes/echo` | the conformance echo route (off by default) |
//! | `bus_interest` | what a connection asks of the hub's bus, if any: a subscribe's symbols fetched before it is answered, let go after |
//! | [`config`] | [`ServerConfig`]: the settings, values only |
//! | [`state`] | [`ServerState`]: the settings and the live handles built from them (TLS acceptor, per-key counts, replay sessions, the replay's control) |
//! | [`writer`] | a client's writer task: each run behind its headers in one vectored write, flush once per batch |
//! | `deadline` | a socket's write half with a write deadline and a close grace |
//! | `direct_tcp` | a plain-TCP binary client's write half, shared by its writer and the publisher's direct writes |
//! | `read_side` | the socket as tungstenite sees it: reads, and its pongs and close answers into the queue |
//! | [`delayed`] | [`DelayedHubs`]: a hub per delay of the delayed API keys, fed by a delay line from the real hub, and its release task |
//! | [`auth`] | API keys, entitlements, per-key caps, the `Origin` allow-list |
//! | [`http`] | the HTTP/1.1 front door: request heads, query values and plain responses |
//! | [`server_tls`] | the accepting side of TLS (`wss://`, `https://`), from PEM files; the connecting side is `quotehub-connect` |
//! | [`upgrade`] | the WebSocket handshake, sub-protocols, buffer sizes |
//! | [`live`] | [`run_live`]: a live source (`tcp://`, `ws(s)://`, `quotehub(+tls)://`) into the hub |
//! | [`relay`] | `quotehub://`: another hub's records republished without re-encoding |
//! | [`replay_admin`] | [`ReplayAdmin`]: the hub's own replay, as the admin route steers it |
//! | [`replay_feeds`] | the feeds clients may replay for themselves, by name; the session caps (hub, client) |
//! | [`snapshot_index`] | the as-of index of a replay feed: per symbol, its records by event time, built once |
//! | `as_of_bars` | bars as of a time in a replay feed: which bar a replaying subscriber holds then, built by the engine's bars builder from the index |
//! | `replay_pool` | the few threads that read replay sessions' feeds, a chunk at a time |
//! | [`admission`] | the connection cap's permits from accept, the refusal reserve, the per-address pending share |
//! | `accept_backoff` | failed `accept`s: exponential pauses and a rate-limited log |
//! | [`descriptors`] | the open-file limit: raised at start-up, checked against `max_connections` |
//!
//! Data flow: feed thread → [`Publisher::publish`] → table (sequence + last
//! value) → each subscriber's queue → its writer task → socket.

mod accept_backoff;
pub mod admission;
mod as_of_bars;
pub mod auth;
mod bus_interest;
pub mod config;
mod connection;
mod deadline;
pub mod delayed;
pub mod descriptors;
mod direct_tcp;
pub mod http;
pub mod live;
mod message_slices;
pub mod paths;
mod read_side;
pub mod relay;
pub mod replay_admin;
pub mod replay_feeds;
mod replay_pool;
mod router;
mod routes;
pub mod server_tls;
pub mod snapshot_index;
pub mod state;
pub mod upgrade;
pub mod writer;

// The engine, under the names the server has always given it.
pub use quotehub_engine::{client, fanout, hub, queue, rate_limit, recorder, session, slow_consumer, stats};

pub use auth::{Access, ApiKey};
pub use config::ServerConfig;
pub use connection::{serve, serve_with};
pub use delayed::{DelayError, DelayedHub, DelayedHubs};
pub use live::{LiveOptions, run_live};
pub use paths::{ADMIN_REPLAY_PATH, QUOTES_PATH, REPLAY_FEEDS_PATH, REPLAY_PATH, SNAPSHOT_PATH, SSE_PATH};
pub use quotehub_engine::ClientHandle;
pub use quotehub_engine::Hub;
pub use quotehub_engine::Policy;
pub use quotehub_engine::Publisher;
pub use quotehub_engine::Recorder;
pub use quotehub_engine::SHARE_MIN_BYTES;
pub use quotehub_engine::{ForcedClose, Stats};
pub use replay_admin::ReplayAdmin;
pub use replay_feeds::{ReplayFeeds, ReplaySessions};
pub use server_tls::{ServerTls, ServerTlsError};
pub use state::ServerState;
pub use upgrade::{BINARY_PROTOCOL, Format, JSON_PROTOCOL};
