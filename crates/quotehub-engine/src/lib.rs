//! quotehub's engine: what happens to an event between a feed and a
//! client's socket, with no runtime and no sockets. Events come in through a
//! [`Publisher`] (from any source: a replayed file, a live feed, another hub);
//! they are sequenced into the table (last value, history), encoded once, and
//! pushed without waiting into each subscriber's bounded queue, where the
//! client's slow-consumer policy applies. A client's requests come in
//! through its [`Session`] (subscribe, unsubscribe, policy), answered in
//! the same queue. What comes out is each client's
//! queue of encoded records, replies and WebSocket control frames, drained
//! by whatever edge owns the connection (`quotehub-server`'s writer task).
//!
//! Its own crate, rather than a module tree of the server, so that the fence
//! is the compiler's: tokio and the server are not among its dependencies, so
//! nothing here can name a runtime, open a socket, spawn a task or reach a
//! route. (`quotehub-feed`, for the sink traits below, still brings tokio
//! into the build; the engine's code cannot use it.) The edge
//! supplies what the engine cannot name: how to wake a writer is a
//! runtime-agnostic waker (`wake.rs`), how to close a connection is a
//! [`Closer`], how a `"*"` join may block its runtime is a
//! [`session::Blocking`]. Its tests run without a runtime, as `quinn-proto`'s do without
//! `quinn`.
//!
//! | file | holds |
//! |---|---|
//! | [`hub`] | [`Hub`]: the table, counters and ids shared by feeds and clients |
//! | [`fanout`] | [`Publisher`]: sequence, encode once, push the same bytes to each subscriber's queue (never waiting) |
//! | `staging` | records of one event loop turn, shared by clients that get them alike |
//! | [`bus_link`] | [`RecordSink`] and [`BusLink`]: how a bus (`quotehub-bus`) takes sequenced records and serves an edge's interest, without the engine naming it |
//! | [`sink_tee`] | [`SinkTee`]: one record sink that forwards to several (a bus and delay lines) |
//! | [`delay_line`] | [`DelayLine`]: a hub's records (sequenced, derived, status) held for a delayed entitlement, bounded in bytes, released into a second hub |
//! | [`client`] | [`ClientHandle`]: how the publisher reaches a client; [`Closer`]: how it closes one |
//! | [`queue`] | a client's bounded outbound queue, drained in batches |
//! | [`direct`] | [`direct::DirectWrite`]: a message written from the pushing thread when the writer is idle and the socket takes it at once |
//! | [`run`] | the records of one message, copied or shared with other clients |
//! | `wake` | how a push wakes the client's writer, without a runtime |
//! | [`session`] | a client's requests and subscriptions: parse, validate, apply to the table, answer |
//! | [`rate_limit`] | the per-connection request rate limit |
//! | [`slow_consumer`] | what happens when a client's queue is full: conflate or disconnect |
//! | `slots` | dense numbers of connected clients |
//! | [`stats`] | the hub's counters |
//! | [`histogram`] | the ingest-to-send latency histogram, fed in batches |
//! | `engine_tests` | the engine driven as an edge drives it: publish, requests, take from a queue, slow consumers |
//! | [`recorder`] | [`Recorder`]: what the hub ingests, written to a capture |
//! | [`frame`] | WebSocket frame headers, as the queue holds and the writer writes them |
//! | [`bars`] | [`BarBuilder`]: one symbol's trades into 1 s and 1 min bars, closed by trade, event clock or timer |
//! | [`consolidation`] | [`Consolidator`]: one symbol's quotes across feeds into its best bid and offer |
//! | `derived` | each symbol's bars builder and consolidator, shared by the feeds, and their records published |
//!
//! Depends on `quotehub-proto` (records), `quotehub-table` (subscriptions,
//! sequence, last value) and `quotehub-feed` for the seams events come in
//! through (`LiveSink`, `ReplaySink`, a live source's counters, the capture
//! writer); never on the server.

pub mod bars;
pub mod bus_link;
pub mod client;
pub mod consolidation;
pub mod delay_line;
mod derived;
pub mod direct;
pub mod fanout;
pub mod frame;
pub mod histogram;
pub mod hub;
pub mod queue;
pub mod rate_limit;
pub mod recorder;
pub mod run;
pub mod send_batch;
pub mod session;
pub mod sink_tee;
mod slots;
pub mod slow_consumer;
mod staging;
pub mod stats;
mod wake;

#[cfg(test)]
mod engine_tests;

pub use bars::BarBuilder;
pub use bus_link::{BusLink, BusView, RecordSink};
pub use client::{ClientHandle, Closer};
pub use consolidation::Consolidator;
pub use delay_line::DelayLine;
pub use fanout::Publisher;
pub use hub::Hub;
pub use recorder::Recorder;
pub use session::Session;
pub use sink_tee::SinkTee;
pub use slow_consumer::Policy;
pub use staging::SHARE_MIN_BYTES;
pub use stats::{ForcedClose, Stats};
