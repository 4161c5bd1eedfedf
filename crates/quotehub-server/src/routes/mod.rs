//! One file per route. Each is reached only through the router's table
//! (`router.rs`); a route uses the connection's lifecycle
//! (`connection.rs`), the engine and the server's support modules, and never
//! another route.

pub(crate) mod admin;
pub(crate) mod board;
pub(crate) mod echo;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod quotes;
pub(crate) mod replay;
pub(crate) mod replay_feeds;
pub(crate) mod snapshot;
pub(crate) mod sse;
