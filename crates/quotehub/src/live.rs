//! `quotehub serve --feed tcp://… | ws(s)://… | quotehub(+tls)://…`: runs
//! a live source on a thread of its own until the hub shuts down.
//!
//! A source on the hub's runtime shared a worker with the writer tasks it
//! wakes, and got back to its socket only after them: at 440,000 quotes/s
//! it read about every 1.7 ms, so quotes waited in the socket before the
//! hub even saw them. On its own thread (with a single-threaded runtime for
//! its connection, timers and TLS) it reads again as soon as it has handed
//! a read's records to the queues, as a feed handler thread does.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use quotehub_connect::{CA_FILE_ENV, ClientTls};
use quotehub_feed::live::LiveUrl;
use quotehub_proto::Symbol;
use quotehub_server::{Hub, LiveOptions, run_live};
use std::thread::JoinHandle;

use tokio::sync::watch;
use tracing::{error, warn};

/// The API key for a `ws://` upstream's auth action (kept out of
/// command lines and config files, where it would be seen).
pub const UPSTREAM_KEY_ENV: &str = "QUOTEHUB_UPSTREAM_KEY";
/// What to subscribe to on a `ws://` upstream (default `Q.*,T.*`).
pub const UPSTREAM_SUBSCRIBE_ENV: &str = "QUOTEHUB_UPSTREAM_SUBSCRIBE";
/// Seconds of silence after which an upstream connection counts as lost
/// (default 30; WebSocket upstreams are pinged every half of it).
pub const UPSTREAM_IDLE_ENV: &str = "QUOTEHUB_UPSTREAM_IDLE_SECS";

/// What every live source of a hub shares, read once at startup so that a
/// bad CA file or setting stops the hub with an error instead of failing
/// every reconnect.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    key: Option<String>,
    subscription: Option<String>,
    tls: ClientTls,
    idle_timeout: Option<Duration>,
}

impl UpstreamSettings {
    /// From the environment, with `config_ca_file` (the config's
    /// `tls.ca_file`) as the CA file unless `$QUOTEHUB_CA_FILE` names one.
    pub fn load(config_ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let env = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
        let ca_file = env(CA_FILE_ENV);
        let ca_file = ca_file.as_deref().map(Path::new).or(config_ca_file);
        let tls = ClientTls::new(ca_file).context("trust roots for wss:// upstreams")?;
        let idle_timeout = env(UPSTREAM_IDLE_ENV)
            .map(|text| {
                text.parse::<f64>()
                    .ok()
                    .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
                    .map(Duration::from_secs_f64)
                    .with_context(|| {
                        format!("${UPSTREAM_IDLE_ENV}: expected a positive number of seconds, not {text:?}")
                    })
            })
            .transpose()?;
        Ok(Self {
            key: env(UPSTREAM_KEY_ENV),
            subscription: env(UPSTREAM_SUBSCRIBE_ENV),
            tls,
            idle_timeout,
        })
    }
}

/// A live source running on its own thread.
#[derive(Debug)]
pub struct LiveFeed {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl LiveFeed {
    /// Starts feeding `hub` from `url` as feed number `feed`, taking only
    /// `symbols` (all when `None`), on a thread named `feed-N`.
    pub fn spawn(
        hub: &Hub,
        url: LiveUrl,
        feed: u16,
        symbols: Option<HashSet<Symbol>>,
        settings: &UpstreamSettings,
    ) -> anyhow::Result<Self> {
        if matches!(url, LiveUrl::PolygonWs { .. }) && settings.key.is_none() {
            // Said once here; the upstream's refusal then ends each attempt
            // with its own words (see quotehub_feed::live::PolygonWs).
            warn!(source = %url, "no API key for this upstream; set ${UPSTREAM_KEY_ENV} if it asks for one (Polygon's does)");
        }
        let (stop, mut stopped) = watch::channel(false);
        let options = LiveOptions {
            upstream_key: settings.key.clone(),
            subscription: settings.subscription.clone(),
            symbols,
            tls: Some(settings.tls.clone()),
            idle_timeout: settings.idle_timeout,
            ..LiveOptions::default()
        };
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the live source's runtime")?;
        let hub = hub.clone();
        let thread = std::thread::Builder::new()
            .name(format!("feed-{feed}"))
            .spawn(move || runtime.block_on(run_live(hub, url, feed, options, shutdown)))
            .context("starting the live source's thread")?;
        Ok(Self { stop, thread })
    }

    /// Asks the source to stop (it drops its connection at once).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the source and waits for it to end.
    pub fn join(self) {
        self.stop();
        if self.thread.join().is_err() {
            error!("a live source's thread panicked");
        }
    }
}
