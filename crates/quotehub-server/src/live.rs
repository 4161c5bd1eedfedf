//! Runs a live source into the hub: chooses the source by the URL's scheme,
//! registers its counters for `/metrics`, and publishes what it receives
//! through a feed publisher (live records are not flagged `REPLAYED`).

use std::future::Future;

use quotehub_feed::live::{self, Backoff, LiveUrl, TcpLines};
use quotehub_proto::Flags;

use crate::hub::Hub;

/// Settings of a live source beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Reconnect delays.
    pub backoff: Option<Backoff>,
}

/// Feeds `hub` from the live source `url` names, as feed number `feed` in
/// status records, reconnecting whenever it is lost, until `shutdown` completes.
pub async fn run_live(hub: Hub, url: LiveUrl, feed: u16, options: LiveOptions, shutdown: impl Future) {
    let stats = hub.register_source(&url.to_string());
    let publisher = hub.publisher(Flags::default(), feed);
    let backoff = options.backoff.unwrap_or_default();
    match url {
        LiveUrl::Tcp { addr } => live::run(TcpLines::new(addr), publisher, stats, backoff, shutdown).await,
        LiveUrl::PolygonWs { .. } | LiveUrl::Quotehub { .. } => {
            tracing::error!(source = %url, "this live source is not built yet");
        }
    }
}
