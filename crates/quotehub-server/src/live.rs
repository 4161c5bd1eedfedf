//! Runs a live source into the hub: chooses the source by the URL's scheme,
//! registers its counters for `/metrics`, and publishes what it receives
//! through a feed publisher (live records are not flagged `REPLAYED`).

use std::future::Future;

use quotehub_feed::live::polygon_ws::DEFAULT_SUBSCRIPTION;
use quotehub_feed::live::{self, Backoff, LiveUrl, PolygonWs, TcpLines};
use quotehub_proto::Flags;

use crate::hub::Hub;

/// Settings of a live source beyond its URL.
#[derive(Clone, Default)]
pub struct LiveOptions {
    /// Reconnect delays (default: 100 ms doubling to 5 s).
    pub backoff: Option<Backoff>,
    /// The API key a WebSocket upstream wants in its auth action (never logged).
    pub upstream_key: Option<String>,
    /// What to subscribe to upstream, e.g. `Q.AAPL,T.AAPL` (default: `Q.*,T.*`).
    pub subscription: Option<String>,
}

impl std::fmt::Debug for LiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveOptions")
            .field("backoff", &self.backoff)
            .field("upstream_key", &self.upstream_key.as_ref().map(|_| "<redacted>"))
            .field("subscription", &self.subscription)
            .finish()
    }
}

/// Feeds `hub` from the live source `url` names, as feed number `feed` in
/// status records, reconnecting whenever it is lost, until `shutdown` completes.
pub async fn run_live(hub: Hub, url: LiveUrl, feed: u16, options: LiveOptions, shutdown: impl Future) {
    let stats = hub.register_source(&url.to_string());
    let publisher = hub.publisher(Flags::default(), feed);
    let backoff = options.backoff.unwrap_or_default();
    match url {
        LiveUrl::Tcp { addr } => live::run(TcpLines::new(addr), publisher, stats, backoff, shutdown).await,
        LiveUrl::PolygonWs { url } => {
            let subscription = options.subscription.unwrap_or_else(|| DEFAULT_SUBSCRIPTION.to_owned());
            let source = PolygonWs::new(url, options.upstream_key, subscription);
            live::run(source, publisher, stats, backoff, shutdown).await;
        }
        LiveUrl::Quotehub { .. } => {
            tracing::error!(source = %url, "this live source is not built yet");
        }
    }
}
