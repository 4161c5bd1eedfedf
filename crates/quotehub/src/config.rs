//! The operator's config file (TOML) for what is set once; command-line
//! flags override it, and it overrides the built-in defaults.
//!
//! ```toml
//! [serve]
//! listen = "0.0.0.0:8080"
//! feed = "/data/iex/20170710_TOPS1.6.pcap.gz"   # "PATH#AAPL,MSFT" takes only those
//! # feeds = ["a.jsonl", "b.qhc#AAPL"]           # or several, merged by event time
//! speed = "1"          # or "max"
//! loop = false
//! align = false        # merged recordings of different days: shift them to the first's start
//! from = "2026-11-20T14:31:00Z"      # replay window (RFC 3339 or ns), optional
//! to = "2026-11-20T14:32:00Z"
//! symbols = ["AAPL", "MSFT"]
//! worker_threads = 1   # absent: one per core
//!
//! [limits]
//! queue_capacity = 8192
//! slow_consumer_policy = "conflate"   # or "disconnect"
//! max_connections = 10000           # every accepted socket counts, from accept on
//! max_pending_per_ip = 256          # connections one address may have still opening
//! max_symbols_per_client = 10000
//! max_symbols = 100000           # symbols the hub tracks before unseen ones are refused
//! max_unseen_symbols_per_client = 1000   # never-published symbols one client may hold
//! max_request_bytes = 65536
//! requests_per_second = 20
//! request_burst = 40
//! handshake_timeout_ms = 10000
//! write_timeout_ms = 5000         # a socket that takes no byte this long is dropped
//! reply_budget_bytes = 262144     # unread replies past this close the client (1008)
//! delay_line_max_bytes = 134217728   # per distinct key delay; past it the oldest record is dropped
//! delay_line_bytes_per_second = 131072   # the feeds' planned peak: start-up refuses a delay past the cap at it
//!
//! [heartbeat]
//! ping_interval_ms = 15000
//! idle_timeout_ms = 45000
//!
//! [history]
//! records_per_symbol = 64
//!
//! [shutdown]
//! drain_timeout_ms = 5000
//!
//! [bus]                              # join NATS JetStream (issue 17); absent: a standalone hub
//! servers = "nats://127.0.0.1:4222"  # several: "nats://a:4222,nats://b:4222"
//! role = "ingest"                    # "ingest" (publishes its feeds), "edge" (no feeds), or "both"
//! ingest_buffer_bytes = 16777216     # kept while the bus is away; past it the oldest are dropped and counted
//! fetch_timeout_ms = 5000            # edge: how long a subscribe waits for its symbols' records
//! lease_ttl_ms = 1500                # ingest: the lease lapses this long after its holder's last refresh
//! lease_refresh_ms = 250             # ingest: how often the active hub refreshes it (under lease_ttl_ms / 2)
//! lease_poll_ms = 250                # ingest: how often a standby looks whether it lapsed
//! holder = "HOSTNAME-RANDOM"         # ingest: this hub's id in the lease, unique per hub (default: host + random suffix)
//! standby_window_bytes = 16777216    # ingest: recent records kept to take over with no gap
//! storage = "file"                   # where nats-server keeps the stream it is made with: "file" or "memory"
//! derived = true                     # ingest: publish the bars and BBO it derives, for edges to serve
//!
//! [replay]                           # sessions clients open at /v1/replay?feed=NAME
//! max_sessions = 16
//! max_sessions_per_client = 4        # per API key, or per IP without keys; more: HTTP 429
//! max_pause_ms = 300000              # a session paused longer is closed (1008)
//! snapshot_index_max_bytes = 134217728   # per feed, for /v1/snapshot?feed=NAME&at=T (422 past it)
//! [replay.feeds]                     # NAME = "path"; "bundled" is offered by default
//! iex = "/data/iex/20170710_TOPS1.6.pcap.gz"
//!
//! [tls]                              # serve wss:// and https://
//! cert = "/etc/quotehub/cert.pem"
//! key = "/etc/quotehub/key.pem"
//! ca_file = "/etc/quotehub/upstream-ca.pem"   # also trusted for wss:// and quotehub+tls://
//!                                             # upstreams ($QUOTEHUB_CA_FILE wins)
//!
//! [auth]
//! allowed_origins = ["https://board.example.com"]   # browsers from elsewhere: 403
//! [[auth.keys]]
//! name = "trading-desk"
//! key_env = "QUOTEHUB_DESK_KEY"     # or key = "..." inline
//! symbols = ["AAPL", "MSFT"]        # entitlements; omit for every symbol
//! max_connections = 10
//! admin = true                      # may use /admin/replay (pause, seek, ...)
//! delay = "15m"                     # delayed data: "90s", "1h30m", "300ms"; "0" or absent: real time
//! ```
//!
//! Keys may also come from the environment: `QUOTEHUB_API_KEYS="desk=SECRET,board=SECRET2"`
//! (every symbol, no per-key cap, real time; a delayed key is an `[[auth.keys]]`
//! entry, whose secret may still come from the environment with `key_env`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use quotehub_server::{Access, ApiKey, Policy, ServerConfig};
use serde::Deserialize;

use crate::feeds::FeedSpec;
use quotehub_bus::IngestSettings;

/// The whole file; every section and key is optional, unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub heartbeat: HeartbeatSection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub shutdown: ShutdownSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub replay: ReplaySection,
    #[serde(default)]
    pub bus: BusSection,
}

/// `[bus]`: joining NATS JetStream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSection {
    pub servers: Option<String>,
    pub role: Option<String>,
    pub ingest_buffer_bytes: Option<usize>,
    pub fetch_timeout_ms: Option<u64>,
    pub lease_ttl_ms: Option<u64>,
    pub lease_refresh_ms: Option<u64>,
    pub lease_poll_ms: Option<u64>,
    pub holder: Option<String>,
    pub standby_window_bytes: Option<usize>,
    pub storage: Option<String>,
    pub derived: Option<bool>,
}

impl FileConfig {
    /// The bus to join, from `[bus]` and the flags (which win); `None`:
    /// a standalone hub. A role without servers is an error.
    pub fn bus_plan(
        &self,
        servers: Option<&str>,
        role: Option<quotehub_bus::Role>,
    ) -> anyhow::Result<Option<quotehub_bus::join::JoinPlan>> {
        let role = match (role, &self.bus.role) {
            (Some(role), _) => Some(role),
            (None, Some(text)) => Some(
                text.parse()
                    .map_err(anyhow::Error::msg)
                    .context("in the config's bus.role")?,
            ),
            (None, None) => None,
        };
        let Some(servers) = servers.or(self.bus.servers.as_deref()) else {
            anyhow::ensure!(
                role.is_none(),
                "a bus role needs a bus: give --bus nats://HOST:PORT (or bus.servers in the config)"
            );
            return Ok(None);
        };
        anyhow::ensure!(
            !servers.trim().is_empty(),
            "the bus's servers are empty: give nats://HOST:PORT"
        );
        Ok(Some(quotehub_bus::join::JoinPlan {
            servers: servers.to_owned(),
            role: role.unwrap_or(quotehub_bus::Role::Ingest),
            ingest_buffer_bytes: self
                .bus
                .ingest_buffer_bytes
                .unwrap_or(IngestSettings::default().max_buffered_bytes),
            failover: self.failover_settings()?,
            storage: match &self.bus.storage {
                Some(text) => text
                    .parse()
                    .map_err(anyhow::Error::msg)
                    .context("in the config's bus.storage")?,
                None => quotehub_bus::Storage::default(),
            },
        }))
    }

    /// The ingest lease from `[bus]`, validated.
    fn failover_settings(&self) -> anyhow::Result<quotehub_bus::FailoverSettings> {
        let mut settings = quotehub_bus::FailoverSettings::default();
        let bus = &self.bus;
        let ms = Duration::from_millis;
        if let Some(ttl) = bus.lease_ttl_ms {
            settings.lease.ttl = ms(ttl);
        }
        if let Some(refresh) = bus.lease_refresh_ms {
            settings.lease.refresh = ms(refresh);
        }
        if let Some(poll) = bus.lease_poll_ms {
            settings.lease.poll = ms(poll);
        }
        anyhow::ensure!(
            settings.lease.ttl >= ms(100) && settings.lease.poll > Duration::ZERO,
            "bus.lease_ttl_ms must be at least 100 and bus.lease_poll_ms at least 1"
        );
        anyhow::ensure!(
            settings.lease.refresh > Duration::ZERO && settings.lease.refresh * 2 <= settings.lease.ttl,
            "bus.lease_refresh_ms must be at least 1 and at most half of bus.lease_ttl_ms"
        );
        if let Some(holder) = &bus.holder {
            anyhow::ensure!(
                quotehub_bus::LeaseValue::valid_holder(holder),
                "bus.holder must be 1 to 64 printable ASCII characters, no spaces"
            );
            settings.holder = holder.clone();
        }
        if let Some(bytes) = bus.standby_window_bytes {
            settings.standby_window_bytes = bytes;
        }
        if let Some(derived) = bus.derived {
            settings.derived = derived;
        }
        Ok(settings)
    }
}

// --- replay: window of the hub's replay ([serve] keys) and per-client sessions ---

/// `[replay]`: the feeds clients may replay for themselves at /v1/replay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySection {
    /// NAME = "path"; the bundled feed is offered as "bundled" unless named here.
    #[serde(default)]
    pub feeds: std::collections::BTreeMap<String, PathBuf>,
    /// Sessions at once; more get HTTP 503.
    pub max_sessions: Option<usize>,
    /// Sessions one client (API key, or IP without keys) may hold; more get HTTP 429.
    pub max_sessions_per_client: Option<usize>,
    /// How long a session may stay paused before it is closed (1008).
    pub max_pause_ms: Option<u64>,
    /// Most bytes one feed's as-of snapshot index may take; a larger feed
    /// answers `/v1/snapshot?feed=NAME&at=T` with HTTP 422.
    pub snapshot_index_max_bytes: Option<usize>,
}

impl FileConfig {
    /// The hub's replay window: `[serve]` from, to, symbols, overridden by flags.
    pub fn replay_window(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        symbols: Option<&str>,
    ) -> anyhow::Result<quotehub_feed::ReplayWindow> {
        let listed = self.serve.symbols.as_ref().map(|list| list.join(","));
        quotehub_feed::ReplayWindow::parse(
            from.or(self.serve.from.as_deref()),
            to.or(self.serve.to.as_deref()),
            symbols.or(listed.as_deref()),
        )
        .map_err(anyhow::Error::msg)
    }

    /// The feeds offered for replay sessions: [replay.feeds], plus the
    /// bundled feed as "bundled" when it is present and not named otherwise.
    pub fn replay_feeds(&self, bundled: Option<PathBuf>) -> anyhow::Result<quotehub_server::ReplayFeeds> {
        let mut feeds = self.replay.feeds.clone();
        if let Some(path) = bundled {
            feeds.entry("bundled".to_owned()).or_insert(path);
        }
        let max = self
            .replay
            .max_sessions
            .unwrap_or(quotehub_server::replay_feeds::DEFAULT_MAX_REPLAY_SESSIONS);
        quotehub_server::ReplayFeeds::new(feeds, max)
            .map_err(anyhow::Error::msg)
            .context("in [replay.feeds]")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// PEM CA certificates trusted (besides the public web roots) for
    /// `wss://` and `quotehub+tls://` upstreams.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub keys: Vec<KeySection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    pub name: String,
    pub key: Option<String>,
    pub key_env: Option<String>,
    pub symbols: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    #[serde(default)]
    pub admin: bool,
    /// `"15m"`, `"90s"`, ... (see `delay.rs`); absent or `"0"`: real time.
    pub delay: Option<String>,
}

/// The environment variable with extra keys: `name=KEY,name2=KEY2`.
pub const KEYS_ENV: &str = "QUOTEHUB_API_KEYS";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// `HOST:PORT`; a name is resolved (see `cli::listen_address`).
    pub listen: Option<String>,
    pub feed: Option<String>,
    /// Several feeds, merged by event time (instead of `feed`).
    pub feeds: Option<Vec<String>>,
    pub speed: Option<String>,
    #[serde(rename = "loop")]
    pub looped: Option<bool>,
    /// Shift merged recordings to the first one's start (`--align`).
    pub align: Option<bool>,
    /// Replay window: RFC 3339 or ns since the epoch; symbols to replay.
    pub from: Option<String>,
    pub to: Option<String>,
    pub symbols: Option<Vec<String>>,
    /// Threads that run the hub's sockets and tasks (the feed's own
    /// thread aside). Absent: one per core (or `TOKIO_WORKER_THREADS`).
    /// Hubs that share a machine with each other or with nats-server do
    /// better with fewer (benches/README.md, the bus section).
    pub worker_threads: Option<usize>,
}

/// Most `[serve] worker_threads`: far past any machine's cores.
const MAX_WORKER_THREADS: usize = 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub queue_capacity: Option<usize>,
    pub slow_consumer_policy: Option<Policy>,
    pub max_connections: Option<usize>,
    pub max_pending_per_ip: Option<usize>,
    pub max_symbols_per_client: Option<usize>,
    pub max_symbols: Option<usize>,
    pub max_unseen_symbols_per_client: Option<usize>,
    pub max_request_bytes: Option<usize>,
    pub requests_per_second: Option<u32>,
    pub request_burst: Option<u32>,
    pub handshake_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub reply_budget_bytes: Option<usize>,
    pub delay_line_max_bytes: Option<usize>,
    pub delay_line_bytes_per_second: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSection {
    pub ping_interval_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    pub records_per_symbol: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSection {
    pub drain_timeout_ms: Option<u64>,
}

impl FileConfig {
    /// The feeds the config names (`serve.feed` or `serve.feeds`), checked.
    pub fn feed_specs(&self) -> anyhow::Result<Vec<FeedSpec>> {
        let texts = match (&self.serve.feed, &self.serve.feeds) {
            (Some(_), Some(_)) => anyhow::bail!("the config sets both serve.feed and serve.feeds; keep one"),
            (Some(one), None) => std::slice::from_ref(one),
            (None, Some(many)) => many.as_slice(),
            (None, None) => &[],
        };
        texts
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(anyhow::Error::msg)
                    .context("in the config's serve.feed(s)")
            })
            .collect()
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let config: FileConfig = toml::from_str(&text).with_context(|| format!("in config {}", path.display()))?;
        config
            .check()
            .with_context(|| format!("in config {}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("limits.queue_capacity", self.limits.queue_capacity),
            ("limits.max_connections", self.limits.max_connections),
            ("limits.max_pending_per_ip", self.limits.max_pending_per_ip),
            ("limits.max_request_bytes", self.limits.max_request_bytes),
            ("limits.reply_budget_bytes", self.limits.reply_budget_bytes),
            ("replay.max_sessions", self.replay.max_sessions),
            ("replay.max_sessions_per_client", self.replay.max_sessions_per_client),
            ("replay.snapshot_index_max_bytes", self.replay.snapshot_index_max_bytes),
            ("bus.ingest_buffer_bytes", self.bus.ingest_buffer_bytes),
            ("bus.standby_window_bytes", self.bus.standby_window_bytes),
            ("limits.delay_line_max_bytes", self.limits.delay_line_max_bytes),
            ("serve.worker_threads", self.serve.worker_threads),
        ];
        for (key, value) in positive {
            anyhow::ensure!(value != Some(0), "{key} must be at least 1");
        }
        // Each is an OS thread with its own stack, started at once.
        anyhow::ensure!(
            self.serve
                .worker_threads
                .is_none_or(|threads| threads <= MAX_WORKER_THREADS),
            "serve.worker_threads must be at most {MAX_WORKER_THREADS}"
        );
        if let (Some(ping), Some(idle)) = (self.heartbeat.ping_interval_ms, self.heartbeat.idle_timeout_ms) {
            anyhow::ensure!(idle > ping, "heartbeat.idle_timeout_ms must exceed ping_interval_ms");
        }
        anyhow::ensure!(
            self.limits.write_timeout_ms != Some(0),
            "limits.write_timeout_ms must be at least 1"
        );
        anyhow::ensure!(
            self.heartbeat.ping_interval_ms != Some(0),
            "heartbeat.ping_interval_ms must be at least 1"
        );
        anyhow::ensure!(
            self.bus.fetch_timeout_ms != Some(0),
            "bus.fetch_timeout_ms must be at least 1"
        );
        anyhow::ensure!(
            self.replay.max_pause_ms != Some(0),
            "replay.max_pause_ms must be at least 1"
        );
        let server = self.server_config();
        anyhow::ensure!(
            server.max_unseen_symbols_per_client <= server.max_symbols,
            "limits.max_unseen_symbols_per_client must not exceed limits.max_symbols"
        );
        Ok(())
    }

    /// The server settings: built-in defaults, overridden by this file.
    pub fn server_config(&self) -> ServerConfig {
        let defaults = ServerConfig::default();
        let ms = Duration::from_millis;
        let limits = &self.limits;
        ServerConfig {
            queue_capacity: limits.queue_capacity.unwrap_or(defaults.queue_capacity),
            default_policy: limits.slow_consumer_policy.unwrap_or(defaults.default_policy),
            max_connections: limits.max_connections.unwrap_or(defaults.max_connections),
            max_pending_per_ip: limits.max_pending_per_ip.unwrap_or(defaults.max_pending_per_ip),
            max_symbols_per_client: limits.max_symbols_per_client.unwrap_or(defaults.max_symbols_per_client),
            max_symbols: limits.max_symbols.unwrap_or(defaults.max_symbols),
            max_unseen_symbols_per_client: limits
                .max_unseen_symbols_per_client
                .unwrap_or(defaults.max_unseen_symbols_per_client),
            max_request_bytes: limits.max_request_bytes.unwrap_or(defaults.max_request_bytes),
            requests_per_second: limits.requests_per_second.unwrap_or(defaults.requests_per_second),
            request_burst: limits.request_burst.unwrap_or(defaults.request_burst),
            handshake_timeout: limits.handshake_timeout_ms.map_or(defaults.handshake_timeout, ms),
            write_timeout: limits.write_timeout_ms.map_or(defaults.write_timeout, ms),
            reply_budget_bytes: limits.reply_budget_bytes.unwrap_or(defaults.reply_budget_bytes),
            ping_interval: self.heartbeat.ping_interval_ms.map_or(defaults.ping_interval, ms),
            idle_timeout: self.heartbeat.idle_timeout_ms.map_or(defaults.idle_timeout, ms),
            drain_timeout: self.shutdown.drain_timeout_ms.map_or(defaults.drain_timeout, ms),
            replay_max_pause: self.replay.max_pause_ms.map_or(defaults.replay_max_pause, ms),
            replay_max_sessions_per_client: self
                .replay
                .max_sessions_per_client
                .unwrap_or(defaults.replay_max_sessions_per_client),
            snapshot_index_max_bytes: self
                .replay
                .snapshot_index_max_bytes
                .unwrap_or(defaults.snapshot_index_max_bytes),
            bus_fetch_timeout: self.bus.fetch_timeout_ms.map_or(defaults.bus_fetch_timeout, ms),
            delay_line_max_bytes: limits.delay_line_max_bytes.unwrap_or(defaults.delay_line_max_bytes),
            delay_line_bytes_per_second: limits
                .delay_line_bytes_per_second
                .unwrap_or(defaults.delay_line_bytes_per_second),
            ..defaults
        }
    }

    /// The access rules: keys from this file (inline or from the environment
    /// variable they name) and from [`KEYS_ENV`], and the allowed origins.
    pub fn access(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Access> {
        let mut keys = Vec::new();
        for entry in &self.auth.keys {
            let key = match (&entry.key, &entry.key_env) {
                (Some(key), None) => key.clone(),
                (None, Some(var)) => {
                    env(var).with_context(|| format!("auth key {:?}: ${var} is not set", entry.name))?
                }
                _ => anyhow::bail!("auth key {:?}: give exactly one of key and key_env", entry.name),
            };
            anyhow::ensure!(!key.is_empty(), "auth key {:?} is empty", entry.name);
            let symbols = match &entry.symbols {
                None => None,
                Some(names) => Some(
                    names
                        .iter()
                        .map(|name| name.parse().with_context(|| format!("auth key {:?}", entry.name)))
                        .collect::<anyhow::Result<_>>()?,
                ),
            };
            let delay = match &entry.delay {
                None => Duration::ZERO,
                Some(text) => crate::delay::parse_delay(text)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("auth key {:?}: delay", entry.name))?,
            };
            keys.push(ApiKey {
                name: entry.name.clone(),
                key,
                symbols,
                max_connections: entry.max_connections,
                admin: entry.admin,
                delay,
            });
        }
        for pair in env(KEYS_ENV)
            .unwrap_or_default()
            .split(',')
            .filter(|pair| !pair.trim().is_empty())
        {
            let (name, key) = pair
                .split_once('=')
                .filter(|(name, key)| !name.is_empty() && !key.is_empty())
                .with_context(|| format!("${KEYS_ENV}: expected name=KEY pairs separated by commas"))?;
            keys.push(ApiKey {
                name: name.trim().to_owned(),
                key: key.trim().to_owned(),
                symbols: None,
                max_connections: None,
                admin: false,
                delay: Duration::ZERO,
            });
        }
        Ok(Access::new(keys, self.auth.allowed_origins.clone()))
    }

    /// Records kept per symbol for resuming clients.
    pub fn history_depth(&self) -> usize {
        self.history
            .records_per_symbol
            .unwrap_or(quotehub_server::Hub::DEFAULT_HISTORY_DEPTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reaches_its_setting() {
        let text = r#"
            [serve]
            listen = "0.0.0.0:9000"
            speed = "max"
            loop = false
            [limits]
            queue_capacity = 100
            slow_consumer_policy = "disconnect"
            requests_per_second = 5
            max_symbols = 500
            max_pending_per_ip = 8
            max_unseen_symbols_per_client = 50
            write_timeout_ms = 250
            reply_budget_bytes = 4096
            [heartbeat]
            ping_interval_ms = 1000
            idle_timeout_ms = 3000
            [history]
            records_per_symbol = 7
            [tls]
            ca_file = "/etc/quotehub/upstream-ca.pem"
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        config.check().unwrap();
        let server = config.server_config();
        assert_eq!(
            (server.queue_capacity, server.default_policy),
            (100, Policy::Disconnect)
        );
        assert_eq!(
            (server.requests_per_second, server.request_burst),
            (5, ServerConfig::default().request_burst)
        );
        assert_eq!(
            (server.ping_interval, server.idle_timeout),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
        assert_eq!(config.history_depth(), 7);
        assert_eq!(server.max_symbols, 500);
        assert_eq!(server.max_pending_per_ip, 8);
        assert_eq!(server.max_unseen_symbols_per_client, 50);
        assert_eq!(
            (server.write_timeout, server.reply_budget_bytes),
            (Duration::from_millis(250), 4096)
        );
        assert_eq!(
            config.tls.ca_file.as_deref(),
            Some(Path::new("/etc/quotehub/upstream-ca.pem"))
        );
        assert_eq!(config.serve.looped, Some(false));
    }

    #[test]
    fn a_key_may_carry_a_delay_and_the_delay_line_its_limits() {
        let text = r#"
            [limits]
            delay_line_max_bytes = 1000
            delay_line_bytes_per_second = 10
            [[auth.keys]]
            name = "late"
            key = "l"
            delay = "15m"
            [[auth.keys]]
            name = "live"
            key = "r"
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        config.check().unwrap();
        let access = config.access(|_| None).unwrap();
        let delays: Vec<Duration> = access.keys.iter().map(|key| key.delay).collect();
        assert_eq!(delays, [Duration::from_secs(900), Duration::ZERO]);
        let server = config.server_config();
        assert_eq!(
            (server.delay_line_max_bytes, server.delay_line_bytes_per_second),
            (1000, 10)
        );
        // TC0: a malformed delay. TC1: an absurd one. TC2: a zero cap.
        for delay in ["soon", "48h"] {
            let bad: FileConfig = toml::from_str(&format!(
                "[[auth.keys]]\nname = \"x\"\nkey = \"a\"\ndelay = \"{delay}\""
            ))
            .unwrap();
            let error = bad.access(|_| None).unwrap_err();
            assert!(format!("{error:#}").contains("delay"), "{error:#}");
        }
        let zero: FileConfig = toml::from_str("[limits]\ndelay_line_max_bytes = 0").unwrap();
        assert!(zero.check().is_err());
    }

    #[test]
    fn keys_come_from_the_file_its_named_variables_and_the_environment() {
        let text = r#"
            [auth]
            allowed_origins = ["https://board.example"]
            [[auth.keys]]
            name = "desk"
            key_env = "DESK_KEY"
            symbols = ["AAPL", "BRK.B"]
            max_connections = 2
            [[auth.keys]]
            name = "ops"
            key = "inline"
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        let env = |var: &str| match var {
            "DESK_KEY" => Some("from-env".to_owned()),
            KEYS_ENV => Some("extra=xyz".to_owned()),
            _ => None,
        };
        let access = config.access(env).unwrap();
        let names: Vec<(&str, &str)> = access.keys.iter().map(|k| (k.name.as_str(), k.key.as_str())).collect();
        assert_eq!(names, [("desk", "from-env"), ("ops", "inline"), ("extra", "xyz")]);
        assert_eq!(access.keys[0].symbols.as_ref().map(|s| s.len()), Some(2));
        assert_eq!(access.allowed_origins, ["https://board.example"]);
        // TC0: the named variable is missing. TC1: both key and key_env. TC2: a malformed env list.
        assert!(config.access(|_| None).is_err());
        let both: FileConfig = toml::from_str("[[auth.keys]]\nname = \"x\"\nkey = \"a\"\nkey_env = \"B\"").unwrap();
        assert!(both.access(|_| None).is_err());
        let bad_env = |var: &str| (var == KEYS_ENV).then(|| "no-equals-sign".to_owned());
        assert!(FileConfig::default().access(bad_env).is_err());
    }

    #[test]
    fn replay_window_and_feeds_come_from_the_file_and_flags_win() {
        let text = r#"
            [serve]
            from = "2026-11-20T14:31:00Z"
            symbols = ["AAPL", "MSFT"]
            [replay]
            max_sessions = 3
            max_sessions_per_client = 2
            max_pause_ms = 60000
            snapshot_index_max_bytes = 1048576
            [replay.feeds]
            iex = "/data/iex.pcap.gz"
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        config.check().unwrap();
        let server = config.server_config();
        assert_eq!(
            (server.replay_max_sessions_per_client, server.replay_max_pause),
            (2, Duration::from_secs(60))
        );
        assert_eq!(server.snapshot_index_max_bytes, 1 << 20);
        assert_eq!(
            FileConfig::default().server_config().snapshot_index_max_bytes,
            ServerConfig::default().snapshot_index_max_bytes
        );
        for zero in [
            "max_sessions_per_client = 0",
            "max_pause_ms = 0",
            "snapshot_index_max_bytes = 0",
        ] {
            let config: FileConfig = toml::from_str(&format!("[replay]\n{zero}")).unwrap();
            assert!(config.check().is_err(), "{zero}");
        }
        let window = config.replay_window(None, Some("1795185120000000000"), None).unwrap();
        assert_eq!(window.from, Some(1_795_185_060_000_000_000));
        assert_eq!(window.to, Some(1_795_185_120_000_000_000));
        assert_eq!(window.symbols.as_ref().map(|s| s.len()), Some(2));
        let flagged = config.replay_window(None, None, Some("NVDA")).unwrap();
        assert_eq!(flagged.symbols.map(|s| s.len()), Some(1));
        assert!(config.replay_window(Some("noon"), None, None).is_err());
        let feeds = config.replay_feeds(Some(PathBuf::from("feeds/b.jsonl"))).unwrap();
        assert_eq!((feeds.names(), feeds.max_sessions()), (vec!["bundled", "iex"], 3));
        let bad: FileConfig = toml::from_str("[replay.feeds]\n\"../up\" = \"/x\"").unwrap();
        assert!(bad.replay_feeds(None).is_err());
    }

    #[test]
    fn mistakes_are_errors_not_silence() {
        // TC0: a typo'd key. TC1: a bad policy. TC2: a zero capacity. TC3: idle below ping. TC4: per-client over hub-wide.
        assert!(toml::from_str::<FileConfig>("[limits]\nqueue_capacty = 5").is_err());
        assert!(toml::from_str::<FileConfig>("[limits]\nslow_consumer_policy = \"drop\"").is_err());
        let zero: FileConfig = toml::from_str("[limits]\nqueue_capacity = 0").unwrap();
        assert!(zero.check().is_err());
        let no_pending: FileConfig = toml::from_str("[limits]\nmax_pending_per_ip = 0").unwrap();
        assert!(no_pending.check().is_err());
        let threads = |n: usize| toml::from_str::<FileConfig>(&format!("[serve]\nworker_threads = {n}")).unwrap();
        assert!(threads(0).check().is_err());
        assert!(threads(1).check().is_ok());
        assert!(threads(1025).check().is_err(), "a thread each, started at once");
        let inverted: FileConfig = toml::from_str("[heartbeat]\nping_interval_ms = 10\nidle_timeout_ms = 5").unwrap();
        assert!(inverted.check().is_err());
        // TC4: one client's unseen budget larger than the hub's.
        let greedy: FileConfig =
            toml::from_str("[limits]\nmax_symbols = 10\nmax_unseen_symbols_per_client = 11").unwrap();
        assert!(greedy.check().is_err());
    }

    #[test]
    fn the_bus_comes_from_its_section_and_flags_win() {
        use quotehub_bus::Role;
        let text = r#"
            [bus]
            servers = "nats://10.0.0.1:4222,nats://10.0.0.2:4222"
            role = "edge"
            ingest_buffer_bytes = 1048576
            fetch_timeout_ms = 750
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        config.check().unwrap();
        let plan = config.bus_plan(None, None).unwrap().unwrap();
        assert_eq!(plan.servers, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
        assert_eq!((plan.role, plan.ingest_buffer_bytes), (Role::Edge, 1 << 20));
        assert_eq!(config.server_config().bus_fetch_timeout, Duration::from_millis(750));
        let flags = config.bus_plan(Some("nats://h:1"), Some(Role::Both)).unwrap().unwrap();
        assert_eq!((flags.servers.as_str(), flags.role), ("nats://h:1", Role::Both));
        // TC0: no bus: a standalone hub. TC1: --bus alone: ingest, the default buffer.
        let none = FileConfig::default();
        assert!(none.bus_plan(None, None).unwrap().is_none());
        let alone = none.bus_plan(Some("nats://h:1"), None).unwrap().unwrap();
        assert_eq!((alone.role, alone.ingest_buffer_bytes), (Role::Ingest, 16 << 20));
        // TC2: a role without a bus. TC3: an unknown role. TC4: empty servers. TC5: zero sizes.
        let err = none.bus_plan(None, Some(Role::Edge)).unwrap_err().to_string();
        assert!(err.contains("needs a bus"), "{err}");
        let unknown: FileConfig = toml::from_str("[bus]\nservers = \"nats://h:1\"\nrole = \"relay\"").unwrap();
        assert!(unknown.bus_plan(None, None).is_err());
        // TC6: storage is file unless memory is asked for; anything else is refused.
        assert_eq!(alone.storage, quotehub_bus::Storage::File);
        let memory: FileConfig = toml::from_str("[bus]\nservers = \"nats://h:1\"\nstorage = \"memory\"").unwrap();
        assert_eq!(
            memory.bus_plan(None, None).unwrap().unwrap().storage,
            quotehub_bus::Storage::Memory
        );
        let disk: FileConfig = toml::from_str("[bus]\nservers = \"nats://h:1\"\nstorage = \"disk\"").unwrap();
        assert!(disk.bus_plan(None, None).is_err());
        assert!(none.bus_plan(Some(" "), None).is_err());
        for zero in [
            "ingest_buffer_bytes = 0",
            "fetch_timeout_ms = 0",
            "standby_window_bytes = 0",
        ] {
            let config: FileConfig = toml::from_str(&format!("[bus]\n{zero}")).unwrap();
            assert!(config.check().is_err(), "{zero}");
        }
    }

    #[test]
    fn the_lease_comes_from_the_bus_section_and_is_checked() {
        let text = "[bus]\nservers = \"nats://h:1\"\nlease_ttl_ms = 3000\nlease_refresh_ms = 500\nlease_poll_ms = 100\nholder = \"hub-7\"\nstandby_window_bytes = 4096\nderived = false";
        let config: FileConfig = toml::from_str(text).unwrap();
        let failover = config.bus_plan(None, None).unwrap().unwrap().failover;
        assert_eq!(
            (failover.lease.ttl, failover.lease.refresh, failover.lease.poll),
            (
                Duration::from_millis(3000),
                Duration::from_millis(500),
                Duration::from_millis(100)
            )
        );
        assert_eq!(
            (
                failover.holder.as_str(),
                failover.standby_window_bytes,
                failover.derived
            ),
            ("hub-7", 4096, false)
        );
        // TC0: defaults: 1.5 s / 250 ms / 250 ms, a holder per hub.
        let none: FileConfig = toml::from_str("[bus]\nservers = \"nats://h:1\"").unwrap();
        let (one, two) = (
            none.bus_plan(None, None).unwrap().unwrap().failover,
            none.bus_plan(None, None).unwrap().unwrap().failover,
        );
        assert_eq!(one.lease.ttl, Duration::from_millis(1500));
        assert!(one.derived, "bars and BBO go onto the bus unless told otherwise");
        assert_ne!(one.holder, two.holder, "two hubs of one host hold different ids");
        // TC1: refresh over half the TTL. TC2: a zero poll. TC3: a holder with a space.
        for bad in ["lease_refresh_ms = 1000", "lease_poll_ms = 0", "holder = \"a b\""] {
            let config: FileConfig = toml::from_str(&format!("[bus]\nservers = \"nats://h:1\"\n{bad}")).unwrap();
            assert!(config.bus_plan(None, None).is_err(), "{bad}");
        }
    }
}
