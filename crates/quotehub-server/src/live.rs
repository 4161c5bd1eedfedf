//! Runs a live source into the hub: chooses the source by the URL's scheme,
//! registers its counters for `/metrics`, and publishes what it receives
//! through a feed publisher (live records are not flagged `REPLAYED`).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use quotehub_connect::ClientTls;
use quotehub_feed::live::polygon_ws::DEFAULT_SUBSCRIPTION;
use quotehub_feed::live::{self, Backoff, DEFAULT_IDLE_TIMEOUT, LiveUrl, PolygonWs, TcpLines};
use quotehub_proto::{Flags, Symbol, now_ns};
use tracing::error;

use crate::relay::QuotehubRelay;
use quotehub_engine::hub::Hub;

/// How often the bars timer runs while a live source does: a bar of a
/// symbol gone quiet closes at most this long after the grace past its end
/// (`quotehub_engine::bars::CLOSE_GRACE_NS`, 2 s), and each tick costs one
/// look at every symbol's open bars.
const BARS_TIMER: Duration = Duration::from_millis(250);

/// Settings of a live source beyond its URL.
#[derive(Clone, Default)]
pub struct LiveOptions {
    /// Reconnect delays (default: 100 ms doubling to 5 s).
    pub backoff: Option<Backoff>,
    /// The API key a WebSocket upstream wants in its auth action (never logged).
    pub upstream_key: Option<String>,
    /// What to subscribe to upstream, e.g. `Q.AAPL,T.AAPL` (default: `Q.*,T.*`).
    pub subscription: Option<String>,
    /// Only these symbols are published (all when `None`).
    pub symbols: Option<HashSet<Symbol>>,
    /// Whom to trust for `wss://` and `quotehub+tls://` upstreams (default:
    /// the public web roots only; the binary adds `$QUOTEHUB_CA_FILE`).
    pub tls: Option<ClientTls>,
    /// A connection over which nothing arrives for this long is treated as
    /// lost and reconnected (default 30 s); WebSocket sources ping every
    /// half of it.
    pub idle_timeout: Option<Duration>,
}

impl std::fmt::Debug for LiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveOptions")
            .field("backoff", &self.backoff)
            .field("upstream_key", &self.upstream_key.as_ref().map(|_| "<redacted>"))
            .field("subscription", &self.subscription)
            .field("symbols", &self.symbols)
            .field("tls", &self.tls)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// Feeds `hub` from the live source `url` names, as feed number `feed` in
/// status records, reconnecting whenever it is lost, until `shutdown` completes.
pub async fn run_live(hub: Hub, url: LiveUrl, feed: u16, options: LiveOptions, shutdown: impl Future) {
    let stats = hub.register_source(&url.to_string());
    // A live source that goes quiet moves no event clock: the wall clock
    // closes its bars (replays need no timer). Stopped with the source.
    let _timer = Timer(tokio::spawn(expire_bars(hub.clone())));
    let publisher = hub.publisher(Flags::default(), feed).only(options.symbols);
    let backoff = options.backoff.unwrap_or_default();
    let idle_timeout = options.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT);
    let tls = match options.tls.map_or_else(ClientTls::web_roots, Ok) {
        Ok(tls) => tls,
        Err(err) => {
            // Only a crypto provider without any TLS version gets here.
            error!(source = %url, %err, "cannot set up TLS; the source does not run");
            return;
        }
    };
    match url {
        LiveUrl::Tcp { addr } => {
            let source = TcpLines::new(addr).with_idle_timeout(idle_timeout);
            live::run(source, publisher, stats, backoff, shutdown).await;
        }
        LiveUrl::PolygonWs { url } => {
            let subscription = options.subscription.unwrap_or_else(|| DEFAULT_SUBSCRIPTION.to_owned());
            let source = PolygonWs::new(url, options.upstream_key, subscription, tls).with_idle_timeout(idle_timeout);
            live::run(source, publisher, stats, backoff, shutdown).await;
        }
        LiveUrl::Quotehub { addr, tls: secure } => {
            let source = QuotehubRelay::new(&addr, secure, tls, idle_timeout).with_key(options.upstream_key);
            live::run(source, publisher, stats, backoff, shutdown).await;
        }
    }
}

/// Closes the bars of symbols gone quiet, every [`BARS_TIMER`], until aborted.
async fn expire_bars(hub: Hub) {
    let mut ticks = tokio::time::interval(BARS_TIMER);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        hub.expire_bars(now_ns());
    }
}

/// A task that ends when this is dropped.
struct Timer(tokio::task::JoinHandle<()>);

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
