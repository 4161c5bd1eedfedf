//! `quotehub serve --feed tcp://… | ws(s)://… | quotehub(+tls)://…`: runs
//! a live source on the hub's runtime until the hub shuts down.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use quotehub_feed::live::LiveUrl;
use quotehub_proto::Symbol;
use quotehub_server::{Hub, LiveOptions, run_live};
use quotehub_tls::{CA_FILE_ENV, ClientTls};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// A live source running on the hub's runtime.
#[derive(Debug)]
pub struct LiveFeed {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LiveFeed {
    /// Starts feeding `hub` from `url` as feed number `feed`, taking only
    /// `symbols` (all when `None`).
    pub fn spawn(
        runtime: &Runtime,
        hub: &Hub,
        url: LiveUrl,
        feed: u16,
        symbols: Option<HashSet<Symbol>>,
        settings: &UpstreamSettings,
    ) -> Self {
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
        let task = runtime.spawn(run_live(hub.clone(), url, feed, options, shutdown));
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
