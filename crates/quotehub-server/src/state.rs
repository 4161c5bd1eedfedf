//! What a running server holds: its settings ([`ServerConfig`], values
//! only) and the live handles built from them or handed to it: the TLS
//! acceptor, the connections open per API key, the replay sessions open and
//! the threads reading their feeds, and the control of the hub's own replay.
//! Built once when the server starts; every connection shares it.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::auth::OpenPerKey;
use crate::config::ServerConfig;
use crate::delayed::{DelayError, DelayedHubs};
use crate::replay_admin::ReplayAdmin;
use crate::replay_feeds::ReplaySessions;
use crate::server_tls::ServerTlsError;
use crate::snapshot_index::SnapshotIndexes;

/// A server's settings and live handles.
pub struct ServerState {
    /// The settings, as the operator gave them.
    pub(crate) config: ServerConfig,
    /// The acceptor built from `config.tls`; plain text when `None`.
    pub(crate) tls: Option<TlsAcceptor>,
    /// Connections open per API key, for the keys' caps (`config.access`).
    pub(crate) open_per_key: OpenPerKey,
    /// Replay sessions open, per client, under `config.replay_feeds`'s caps.
    pub(crate) replay_sessions: ReplaySessions,
    /// The hub's own replay, steered at `/admin/replay` (`None`: no replay to control).
    pub(crate) replay_admin: Option<ReplayAdmin>,
    /// The as-of indexes of the replay feeds, built on first use by
    /// `/v1/snapshot?feed=...` (shared, so a test can watch the builds).
    pub(crate) snapshot_indexes: Arc<SnapshotIndexes>,
    /// The hubs serving delayed keys, one per distinct delay (none without
    /// delayed keys): where a delayed connection is routed.
    pub(crate) delayed: DelayedHubs,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .field("open_per_key", &self.open_per_key)
            .field("replay_sessions", &self.replay_sessions)
            .field("replay_admin", &self.replay_admin)
            .field("snapshot_indexes", &self.snapshot_indexes)
            .field("delayed", &self.delayed)
            .finish()
    }
}

impl ServerState {
    /// The live handles `config` asks for; an error if its TLS credentials
    /// are refused.
    pub fn new(config: ServerConfig) -> Result<Self, ServerTlsError> {
        let tls = config
            .tls
            .as_ref()
            .map(crate::server_tls::ServerTls::acceptor)
            .transpose()?;
        Ok(Self {
            tls,
            open_per_key: OpenPerKey::default(),
            replay_sessions: ReplaySessions::new(&config.replay_feeds),
            replay_admin: None,
            snapshot_indexes: Arc::default(),
            delayed: DelayedHubs::default(),
            config,
        })
    }

    /// Lets the admin endpoints steer the hub's own replay.
    pub fn with_replay_admin(mut self, admin: ReplayAdmin) -> Self {
        self.replay_admin = Some(admin);
        self
    }

    /// Serves the delayed keys of the settings (`ApiKey::delay`): a hub
    /// per distinct delay, keeping `depth` records per symbol, fed from
    /// `hub` (the one given to `serve_with`; make its publishers after
    /// this). An error when a delay is too long or cannot fit in
    /// `delay_line_max_bytes` at `delay_line_bytes_per_second`.
    pub fn with_delays(mut self, hub: &mut quotehub_engine::Hub, depth: usize) -> Result<Self, DelayError> {
        let config = &self.config;
        self.delayed = DelayedHubs::attach(
            hub,
            &config.access.delays(),
            depth,
            config.delay_line_max_bytes,
            config.delay_line_bytes_per_second,
        )?;
        Ok(self)
    }

    /// The hubs serving delayed keys.
    pub fn delayed(&self) -> &DelayedHubs {
        &self.delayed
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The as-of indexes of the replay feeds (how many were built).
    pub fn snapshot_indexes(&self) -> &Arc<SnapshotIndexes> {
        &self.snapshot_indexes
    }

    /// Replay sessions open now (as `/v1/replay/feeds` shows them).
    pub fn replay_sessions(&self) -> &ReplaySessions {
        &self.replay_sessions
    }
}
