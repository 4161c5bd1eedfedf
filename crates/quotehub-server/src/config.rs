//! Server settings an operator may tune.

use std::time::Duration;

use crate::auth::Access;
use crate::replay_feeds::ReplayFeeds;
use crate::server_tls::ServerTls;
use quotehub_engine::slow_consumer::Policy;

/// Server settings, values only (the live handles built from them are the
/// server's state, [`crate::ServerState`]); [`ServerConfig::default`] suits
/// a hub of thousands of clients.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Records a client may have waiting before its slow-consumer policy
    /// applies (each costs one `Bytes` handle, 32 bytes, plus its share of the
    /// record). Under conflation a client holds at most this many plus one
    /// record per subscribed symbol.
    pub queue_capacity: usize,
    /// The slow-consumer policy of clients that do not choose one.
    pub default_policy: Policy,
    /// Most record bytes batched into one binary message.
    pub max_message_bytes: usize,
    /// Most bytes of replies (acks, errors) a client may leave unread in its
    /// queue; a request whose reply would pass it closes the client with
    /// 1008 "reply budget: ...". Replies are written as soon as the socket
    /// takes them, so only a client that does not read comes near it; 256
    /// KiB holds four replies to the largest requests.
    pub reply_budget_bytes: usize,
    /// Largest client message accepted (requests are small JSON).
    pub max_request_bytes: usize,
    /// Most symbols one connection may hold by name.
    pub max_symbols_per_client: usize,
    /// Most symbols the hub tracks before a subscription naming a symbol no
    /// feed has sent is refused (`symbol_limit`); feeds are never refused.
    pub max_symbols: usize,
    /// Most symbols one connection may hold by name that no feed has sent
    /// yet (each keeps a slot in the table while held, so this is the share
    /// of `max_symbols` one client can borrow); past it, `symbol_limit`.
    pub max_unseen_symbols_per_client: usize,
    /// How long a client has to send its request head (a slowloris defence).
    pub handshake_timeout: Duration,
    /// Connections served at once; more are refused with HTTP 503. Every
    /// accepted socket counts from `accept` on (TLS handshake and request
    /// head included), whatever its route.
    pub max_connections: usize,
    /// Connections one address (an IPv6 /64) may have accepted and not yet
    /// upgraded or answered (TLS handshake or request head still coming);
    /// more are refused with HTTP 503, so one address cannot fill
    /// `max_connections` with sockets that never send a head.
    pub max_pending_per_ip: usize,
    /// How often the hub pings each WebSocket client.
    pub ping_interval: Duration,
    /// A client heard from (any frame, pongs included) less recently than
    /// this is closed with 1001 "idle timeout".
    pub idle_timeout: Duration,
    /// Requests a client may send per second, sustained.
    pub requests_per_second: u32,
    /// Requests a client may send in a burst above the sustained rate.
    pub request_burst: u32,
    /// How long a write to a client may go without the socket taking a
    /// byte before the connection is dropped (a peer that stopped reading).
    /// Also bounds how long a closing connection (slow consumer, idle
    /// timeout) may hold its slot: its close frame gets at most 1 s, or this
    /// if shorter. Longer than a healthy client's pauses (a GC, a phone
    /// switching networks), short enough that a stalled peer gives its slot,
    /// descriptor and queue back in seconds.
    pub write_timeout: Duration,
    /// How long shutdown waits for clients to take their close frames.
    pub drain_timeout: Duration,
    /// API keys and allowed origins (none by default: an open hub).
    pub access: Access,
    /// TLS for `wss://` and `https://`; plain text when `None`.
    pub tls: Option<ServerTls>,
    /// Serve the conformance echo route (WebSocket upgrades at `/`).
    pub echo: bool,
    /// Feeds clients may replay for themselves at `/v1/replay` (none by default).
    pub replay_feeds: ReplayFeeds,
    /// How long a replay session may stay paused; past it the hub closes it
    /// with 1008 "paused too long: ..." so a paused session cannot hold one
    /// of the `replay_feeds` slots for ever.
    pub replay_max_pause: Duration,
    /// Replay sessions one client may hold at once: per API key when keys
    /// are in use, else per IP address. More are refused with HTTP 429.
    pub replay_max_sessions_per_client: usize,
    /// Most bytes the as-of index of one replay feed may take
    /// (`/v1/snapshot?feed=NAME&at=T`; 80 bytes per quote, 72 per trade,
    /// 8 per 1 s or 1 min bar and per second of the feed with events,
    /// built on the feed's first as-of request and kept): a larger feed
    /// answers as-of requests with HTTP 422 `feed_too_large`. Each feed
    /// offered may hold this much.
    pub snapshot_index_max_bytes: usize,
    /// On an edge hub (joined to a bus): how long a subscribe waits for its
    /// symbols' last records from the bus before it is answered. Past it
    /// (the bus is away) the client gets what the hub has, and the bus's
    /// records as they come.
    pub bus_fetch_timeout: Duration,
    /// Most bytes one delay line may hold (one line per distinct delay of
    /// the API keys; each record counts its length plus 56 bytes of
    /// bookkeeping: 128 for a quote, 144 for a BBO, 160 for a bar). Past it
    /// the oldest record is dropped and counted, and delayed clients see the
    /// jump in its symbol's numbers. The bundled feed at 1x brings 65.9 KB/s
    /// of these bytes on average and 98.4 KB/s in its busiest minute (its
    /// quotes and trades about half, the BBOs and bars they make the rest):
    /// 15 minutes are 59.3 MB, 88.6 MB at the busiest minute's rate; 128 MiB
    /// holds that with half again to spare.
    pub delay_line_max_bytes: usize,
    /// The feeds' peak rate the operator plans for, in delay-line bytes per
    /// second (as `delay_line_max_bytes` counts them): start-up refuses a
    /// delay that cannot fit in `delay_line_max_bytes` at this rate. 128
    /// KiB/s covers the bundled feed's busiest minute at 1x (98.4 KB/s);
    /// with the default cap, delays up to 17 minutes pass.
    pub delay_line_bytes_per_second: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8_192,
            default_policy: Policy::Conflate,
            max_message_bytes: quotehub_engine::queue::DEFAULT_MAX_MESSAGE_BYTES,
            max_request_bytes: 64 * 1024,
            reply_budget_bytes: 256 * 1024,
            max_symbols_per_client: 10_000,
            max_symbols: 100_000,
            max_unseen_symbols_per_client: 1_000,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_pending_per_ip: 256,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            requests_per_second: 20,
            request_burst: 40,
            write_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            access: Access::default(),
            tls: None,
            echo: false,
            replay_feeds: ReplayFeeds::default(),
            replay_max_pause: Duration::from_secs(300),
            replay_max_sessions_per_client: 4,
            snapshot_index_max_bytes: crate::snapshot_index::DEFAULT_SNAPSHOT_INDEX_MAX_BYTES,
            bus_fetch_timeout: Duration::from_secs(5),
            delay_line_max_bytes: 128 * 1024 * 1024,
            delay_line_bytes_per_second: 128 * 1024,
        }
    }
}
