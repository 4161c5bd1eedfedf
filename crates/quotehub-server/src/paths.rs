//! The paths the hub serves, in one place: the router's table, the routes'
//! own messages, and the clients of another hub (`relay.rs`) name them from
//! here, so no file needs a route to know where it lives.

/// The path quotes are served on over WebSocket.
pub const QUOTES_PATH: &str = "/v1/quotes";
/// The path of the Server-Sent Events stream.
pub const SSE_PATH: &str = "/v1/sse";
/// Where a client's own replay session is served (WebSocket).
pub const REPLAY_PATH: &str = "/v1/replay";
/// The list of feeds clients may replay.
pub const REPLAY_FEEDS_PATH: &str = "/v1/replay/feeds";
/// Snapshots over HTTP: the last values of named symbols, live or as of a
/// time in a replay feed.
pub const SNAPSHOT_PATH: &str = "/v1/snapshot";
/// Where the admin endpoints of the replay live.
pub const ADMIN_REPLAY_PATH: &str = "/admin/replay";
/// Prometheus text.
pub const METRICS_PATH: &str = "/metrics";
/// The liveness answer.
pub const HEALTH_PATH: &str = "/health";
