//! Live sources: connections to an upstream that pushes quotes as they
//! happen, kept up by reconnecting with backoff.
//!
//! | module | holds |
//! |---|---|
//! | [`url`] | [`LiveUrl`]: which source a `--feed` URL names (`tcp://`, `ws://`, `wss://`, `quotehub://`, `quotehub+tls://`) |
//! | [`stats`] | [`LiveStats`]: connects, disconnects, messages, events, rejections, bytes |
//! | [`link`] | [`Link`]: what a connection reports to its sink and counters |
//! | [`tcp`] | [`TcpLines`]: newline-delimited JSON over a TCP connection |
//! | [`polygon_ws`] | [`PolygonWs`]: a Polygon-style WebSocket upstream (auth, subscribe, arrays of events) |
//! | [`json_array`] | splits a JSON array of objects into its elements, for the per-object decoder |
//! | [`idle`] | [`IdleTimeout`]: a connection over which nothing arrives for a while counts as lost |
//! | [`websocket`] | opening WebSocket upstreams (TLS through `quotehub-connect`) and pinging them |
//!
//! A source is an [`Upstream`]: one call of [`Upstream::session`] connects
//! and reads until the connection ends. [`run`] calls it again and again,
//! waiting [`Backoff`] delays between attempts (quotehub-connect's, which
//! the Rust client's reconnects use too), tells the sink when the
//! upstream goes down and comes back (the hub turns that into
//! `UpstreamDown`/`UpstreamUp` status records for every client), and stops
//! as soon as its shutdown future completes, whatever it is waiting on.
//!
//! Every source reads through an [`IdleTimeout`] ([`DEFAULT_IDLE_TIMEOUT`]
//! unless configured): a connection over which nothing arrives for that
//! long is a lost one, so a half-open connection (the peer vanished without
//! closing) ends in a reconnect instead of an endless wait. WebSocket
//! sources ping twice per idle timeout, so a quiet upstream that is alive
//! keeps answering.

pub mod idle;
pub mod json_array;
pub mod link;
pub mod polygon_ws;
pub mod stats;
pub mod tcp;
pub mod url;
pub mod websocket;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quotehub_proto::Event;
use tracing::{info, warn};

pub use idle::IdleTimeout;
pub use link::Link;
pub use polygon_ws::PolygonWs;
pub use quotehub_connect::Backoff;
pub use stats::LiveStats;
pub use tcp::TcpLines;
pub use url::LiveUrl;

/// How long a connection attempt (TCP connect, TLS and WebSocket handshakes,
/// authentication) may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay silent before it counts as lost: JSON
/// lines over TCP may legitimately be quiet for a while (a closed market,
/// a thin symbol list), so this is generous; WebSocket sources ping every
/// half of it, so for them it means two missed pongs.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a live source delivers what it receives.
pub trait LiveSink: Send {
    /// One event, its `recv_ts` stamped when its bytes arrived. The sink
    /// may hold it until [`LiveSink::flush`].
    fn event(&mut self, event: Event);
    /// Delivers every event handed over so far. Sources call it before
    /// anything that may wait for the upstream, so a sink can deliver what
    /// one read brought in one go.
    fn flush(&mut self) {}
    /// The upstream's state changed (only changes are reported).
    fn upstream(&mut self, state: UpstreamState);
}

/// Whether a live source is receiving from its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Connected (and authenticated and subscribed, where that applies).
    Up,
    /// The connection was lost or could not be made; reconnecting.
    Down,
}

/// One kind of live upstream.
pub trait Upstream<S: LiveSink>: Send {
    /// A name for logs and metrics (the URL without any query).
    fn name(&self) -> &str;

    /// Connects, calls [`Link::up`] once ready to receive, then reads until
    /// the connection ends: `Ok` when the upstream closed it, `Err` when it
    /// failed. Malformed input is counted with [`Link::reject`], not returned.
    fn session(&mut self, link: &mut Link<'_, S>) -> impl Future<Output = Result<(), LiveError>> + Send;
}

/// Why a connection attempt or an established connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// A socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A WebSocket error (handshake, protocol).
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// Connecting failed: TCP, or TLS (an untrusted certificate, a name mismatch).
    #[error("{0}")]
    Connect(quotehub_connect::ConnectError),
    /// A step took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The upstream said or did something the source cannot go on from.
    #[error("{0}")]
    Protocol(String),
}

impl From<quotehub_connect::ConnectError> for LiveError {
    fn from(error: quotehub_connect::ConnectError) -> Self {
        match error {
            quotehub_connect::ConnectError::WebSocket(error) => LiveError::WebSocket(error),
            other => LiveError::Connect(other),
        }
    }
}

/// Runs `upstream` into `sink` until `shutdown` completes: connects,
/// reconnects after every loss with `backoff` delays (reset after a
/// connection that delivered events), and reports each change of state to
/// the sink once. Stopping is prompt: the connection, a pending read or a
/// backoff wait are all dropped when `shutdown` completes.
pub async fn run<U, S>(mut upstream: U, mut sink: S, stats: Arc<LiveStats>, mut backoff: Backoff, shutdown: impl Future)
where
    U: Upstream<S>,
    S: LiveSink,
{
    let name = upstream.name().to_owned();
    tokio::select! {
        () = supervise(&mut upstream, &mut sink, &stats, &mut backoff) => {}
        _ = shutdown => {}
    }
    stats.up.store(false, Ordering::Relaxed);
    info!(
        source = %name,
        connects = LiveStats::get(&stats.connects),
        events = LiveStats::get(&stats.events),
        rejected = LiveStats::get(&stats.rejected),
        bytes = LiveStats::get(&stats.bytes),
        "live source stopped"
    );
}

/// Connect, read, and on any ending wait and start over, forever.
async fn supervise<U, S>(upstream: &mut U, sink: &mut S, stats: &LiveStats, backoff: &mut Backoff)
where
    U: Upstream<S>,
    S: LiveSink,
{
    let name = upstream.name().to_owned();
    let mut announced = None;
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let (ended, was_up, events) = {
            let mut link = Link::new(&name, sink, stats, &mut announced, attempt);
            let ended = upstream.session(&mut link).await;
            (ended, link.is_up(), link.events())
        };
        if was_up {
            LiveStats::add(&stats.disconnects, 1);
            stats.up.store(false, Ordering::Relaxed);
            match &ended {
                Ok(()) => warn!(source = %name, events, "upstream closed the connection; reconnecting"),
                Err(err) => warn!(source = %name, events, %err, "upstream connection lost; reconnecting"),
            }
        } else {
            LiveStats::add(&stats.failed_attempts, 1);
            match &ended {
                Ok(()) => warn!(source = %name, attempt, "upstream closed before it was ready"),
                Err(err) => warn!(source = %name, attempt, %err, "cannot reach upstream"),
            }
        }
        if announced != Some(UpstreamState::Down) {
            announced = Some(UpstreamState::Down);
            sink.upstream(UpstreamState::Down);
        }
        // An upstream that accepts and drops connections at once must not be
        // hammered: only a connection that delivered something starts the
        // delays over.
        if was_up && events > 0 {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
