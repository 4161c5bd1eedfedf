//! `quotehub serve --feed tcp://… | ws://… | wss://… | quotehub://…`: runs a
//! live source on the hub's runtime until the hub shuts down.

use quotehub_feed::live::LiveUrl;
use quotehub_server::{Hub, LiveOptions, run_live};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The API key for a `ws://`/`wss://` upstream's auth action (kept out of
/// command lines and config files, where it would be seen).
pub const UPSTREAM_KEY_ENV: &str = "QUOTEHUB_UPSTREAM_KEY";
/// What to subscribe to on a `ws://`/`wss://` upstream (default `Q.*,T.*`).
pub const UPSTREAM_SUBSCRIBE_ENV: &str = "QUOTEHUB_UPSTREAM_SUBSCRIBE";

/// A live source running on the hub's runtime.
#[derive(Debug)]
pub struct LiveFeed {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LiveFeed {
    /// Starts feeding `hub` from `url`.
    pub fn spawn(runtime: &Runtime, hub: &Hub, url: LiveUrl) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let options = LiveOptions {
            upstream_key: std::env::var(UPSTREAM_KEY_ENV).ok().filter(|key| !key.is_empty()),
            subscription: std::env::var(UPSTREAM_SUBSCRIBE_ENV).ok().filter(|s| !s.is_empty()),
            ..LiveOptions::default()
        };
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let task = runtime.spawn(run_live(hub.clone(), url, 0, options, shutdown));
        Self { stop, task }
    }

    /// Asks the source to stop (it drops its connection at once).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the source and waits for it to end.
    pub fn join(self, runtime: &Runtime) {
        self.stop();
        let _ = runtime.block_on(self.task);
    }
}
