//! The route table: which handler serves a request head, and what the
//! connection may do there before its handler runs (be served from the
//! refusal reserve of a full hub, stop counting as pending, need an API key).
//! The only file that knows the routes; they know neither it nor each other.

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use quotehub_engine::stats::Stats;

use crate::admission::{Busy, PendingGuard};
use crate::config::ServerConfig;
use crate::connection::{Conn, busy_text};
use crate::http::{Head, respond, respond_busy, respond_text};
use crate::paths::{HEALTH_PATH, METRICS_PATH, QUOTES_PATH, REPLAY_FEEDS_PATH, REPLAY_PATH, SNAPSHOT_PATH, SSE_PATH};
use crate::routes::{admin, board, echo, health, metrics, quotes, replay, replay_feeds, snapshot, sse};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Quotes over WebSocket (`routes/quotes.rs`).
    Quotes,
    /// Quotes as Server-Sent Events (`routes/sse.rs`).
    Sse,
    /// A client's own replay session (`routes/replay.rs`).
    Replay,
    /// The feeds clients may replay (`routes/replay_feeds.rs`).
    ReplayFeeds,
    /// The last values of named symbols, live or as of a time (`routes/snapshot.rs`).
    Snapshot,
    /// The replay's admin endpoints (`routes/admin.rs`).
    Admin,
    /// Prometheus text (`routes/metrics.rs`).
    Metrics,
    /// Liveness (`routes/health.rs`).
    Health,
    /// The browser quote board (`routes/board.rs`).
    Board,
    /// The conformance echo (`routes/echo.rs`), when configured.
    Echo,
}

/// Exact paths and their routes. (Also `/admin/...`, and the echo's upgrade
/// at `/`: see [`Route::find`].)
const TABLE: &[(&str, Route)] = &[
    (QUOTES_PATH, Route::Quotes),
    (SSE_PATH, Route::Sse),
    (REPLAY_PATH, Route::Replay),
    (REPLAY_FEEDS_PATH, Route::ReplayFeeds),
    (SNAPSHOT_PATH, Route::Snapshot),
    ("/admin", Route::Admin),
    (METRICS_PATH, Route::Metrics),
    (HEALTH_PATH, Route::Health),
    (board::BOARD_PATHS[0], Route::Board),
    (board::BOARD_PATHS[1], Route::Board),
    (board::BOARD_PATHS[2], Route::Board),
    (board::BOARD_PATHS[3], Route::Board),
    (board::BOARD_PATHS[4], Route::Board),
];

impl Route {
    /// The route of `head`, if any.
    fn find(head: &Head, config: &ServerConfig) -> Option<Route> {
        if config.echo && head.path == "/" && head.header_has_token("upgrade", "websocket") {
            return Some(Route::Echo);
        }
        if head.path.starts_with("/admin/") {
            return Some(Route::Admin);
        }
        TABLE
            .iter()
            .find(|(path, _)| *path == head.path)
            .map(|&(_, route)| route)
    }

    /// Streams to a client for a long time: admitted by API key (when keys
    /// are configured), and no longer pending once its head is in (its
    /// upgrade is one write away).
    fn streams(self) -> bool {
        matches!(self, Route::Quotes | Route::Sse | Route::Replay)
    }

    /// Admitted by API key (when keys are configured) under the same rules
    /// as the streams: the routes that serve market data.
    fn needs_key(self) -> bool {
        self.streams() || self == Route::Snapshot
    }

    /// Served even by a full hub, from its refusal reserve, so that an
    /// operator can see and steer it.
    fn for_operators(self) -> bool {
        matches!(self, Route::Metrics | Route::Health | Route::Admin)
    }
}

/// Serves the route `head` names. `pending` is the connection's place among
/// its address's connections still opening; `busy`, why it was accepted only
/// to be refused (unless its route is for operators).
pub(crate) async fn dispatch<S>(
    mut stream: S,
    head: Head,
    conn: Conn,
    pending: Option<PendingGuard>,
    busy: Option<Busy>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Conn {
        peer,
        local,
        hub,
        state,
        stopping,
    } = conn;
    let config = &state.config;
    let route = Route::find(&head, config);
    if let Some(busy) = busy
        && !route.is_some_and(Route::for_operators)
    {
        Stats::add(&hub.stats().handshakes_failed, 1);
        let _ = respond_busy(&mut stream, &busy_text(busy)).await;
        return;
    }
    let streaming = route.is_some_and(Route::streams);
    // A plain request stays pending until answered.
    let _pending = pending.filter(|_| !streaming && route != Some(Route::Echo));
    let admission = if route.is_some_and(Route::needs_key) {
        match config.access.admit(&head, &state.open_per_key) {
            Ok(admission) => Some(admission),
            Err(refusal) => {
                Stats::add(&hub.stats().handshakes_failed, 1);
                debug!(%peer, status = refusal.status, reason = %refusal.reason, "refused");
                let challenge: &[(&str, &str)] = if refusal.status == 401 {
                    &[("WWW-Authenticate", "Bearer")]
                } else {
                    &[]
                };
                let text = format!("{}\n", refusal.reason);
                let _ = respond(
                    &mut stream,
                    refusal.status,
                    "text/plain; charset=utf-8",
                    challenge,
                    text.as_bytes(),
                )
                .await;
                return;
            }
        }
    } else {
        None
    };
    let entitled = admission.as_ref().and_then(|admission| admission.symbols.clone());
    // A delayed key's quotes, SSE and snapshots come from its delay's hub
    // (`delayed.rs`); everything else (its own replays, metrics) from the real one.
    let delayed = admission
        .as_ref()
        .and_then(|admission| state.delayed.hub_for(admission.delay))
        .cloned();
    let data_hub = delayed.as_ref().unwrap_or(&hub);
    // Long-lived routes are boxed so that a connection's task holds the
    // state of its own route only, not the largest of all the routes'.
    // `max_connections` was enforced at accept (this connection holds a
    // permit); replay sessions also have their own cap (`ReplayFeeds`).
    match route {
        Some(Route::Echo) => Box::pin(echo::serve(stream, head, config)).await,
        Some(Route::Quotes) => Box::pin(quotes::serve(stream, head, entitled, peer, data_hub, config, stopping)).await,
        Some(Route::Sse) => Box::pin(sse::serve(stream, head, entitled, peer, data_hub, config, stopping)).await,
        Some(Route::Replay) => {
            let key = admission.as_ref().and_then(|admission| admission.key_name.as_deref());
            Box::pin(replay::serve(stream, head, entitled, key, peer, &hub, &state, stopping)).await
        }
        Some(Route::Snapshot) => snapshot::serve(&mut stream, &head, entitled.as_deref(), data_hub, &state).await,
        Some(Route::ReplayFeeds) => {
            replay_feeds::serve(&mut stream, &head, &config.replay_feeds, &state.replay_sessions).await
        }
        Some(Route::Admin) => {
            admin::serve(
                &mut stream,
                &head,
                peer,
                local,
                &config.access,
                state.replay_admin.as_ref(),
            )
            .await
        }
        // With keys configured, the hub's figures are for its operators (an
        // admin key) like the admin endpoints; /health stays open.
        Some(Route::Metrics) if !config.access.keys.is_empty() => match config.access.admit_admin(&head, peer, local) {
            Ok(()) => metrics::serve(&mut stream, &hub, &state.delayed).await,
            Err(refusal) => {
                let _ = respond_text(&mut stream, refusal.status, &format!("{}\n", refusal.reason)).await;
            }
        },
        Some(Route::Metrics) => metrics::serve(&mut stream, &hub, &state.delayed).await,
        Some(Route::Health) => health::serve(&mut stream, &hub).await,
        Some(Route::Board) => board::serve(&mut stream, &head).await,
        None => {
            let text = format!(
                "no such path {:?}; quotes are at {QUOTES_PATH} (WebSocket) and {SSE_PATH} (SSE), the board at /\n",
                head.path
            );
            let _ = respond_text(&mut stream, 404, &text).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::ADMIN_REPLAY_PATH;

    fn head(path: &str, upgrade: bool) -> Head {
        let mut headers = vec![("host".to_owned(), "hub".to_owned())];
        if upgrade {
            headers.push(("upgrade".to_owned(), "websocket".to_owned()));
            headers.push(("connection".to_owned(), "Upgrade".to_owned()));
        }
        Head {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers,
            rest: Vec::new(),
        }
    }

    #[test]
    fn every_path_finds_its_route_and_the_echo_takes_only_upgrades_at_the_root_when_on() {
        let off = ServerConfig::default();
        let on = ServerConfig {
            echo: true,
            ..ServerConfig::default()
        };
        // TC0..: (path, upgrade, echo on, route).
        let cases = [
            (QUOTES_PATH, true, false, Some(Route::Quotes)),
            (SSE_PATH, false, false, Some(Route::Sse)),
            (REPLAY_PATH, true, false, Some(Route::Replay)),
            (REPLAY_FEEDS_PATH, false, false, Some(Route::ReplayFeeds)),
            (SNAPSHOT_PATH, false, false, Some(Route::Snapshot)),
            ("/admin", false, false, Some(Route::Admin)),
            (ADMIN_REPLAY_PATH, false, false, Some(Route::Admin)),
            ("/admin/replay/seek", false, false, Some(Route::Admin)),
            ("/administrator", false, false, None),
            (METRICS_PATH, false, false, Some(Route::Metrics)),
            (HEALTH_PATH, false, false, Some(Route::Health)),
            ("/", false, true, Some(Route::Board)),
            ("/quotehub.mjs", false, false, Some(Route::Board)),
            ("/vendor/lightweight-charts.mjs", false, false, Some(Route::Board)),
            ("/", true, false, Some(Route::Board)),
            ("/", true, true, Some(Route::Echo)),
            ("/v1/quotes/", false, false, None),
        ];
        for (label, (path, upgrade, echo, route)) in cases.into_iter().enumerate() {
            let config = if echo { &on } else { &off };
            assert_eq!(Route::find(&head(path, upgrade), config), route, "TC{label}: {path}");
        }
    }

    /// The layering rule of the crate map, checked on the sources: only the
    /// router (and `lib.rs`, which declares the module) names a route, and
    /// a route names neither the router nor another route.
    #[test]
    fn only_the_router_imports_a_route_and_no_route_imports_another() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let rust_files = |dir: std::path::PathBuf| {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .collect();
            files.sort();
            files
        };
        let edges = rust_files(src.clone());
        let routes = rust_files(src.join("routes"));
        assert!(routes.len() >= 9, "every route has its file: {routes:?}");
        for file in &edges {
            let name = file.file_name().unwrap().to_string_lossy();
            if name == "router.rs" || name == "lib.rs" {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            assert!(!text.contains("routes::"), "{name} imports a route");
        }
        for file in &routes {
            let name = file.file_name().unwrap().to_string_lossy();
            if name == "mod.rs" {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            for forbidden in ["crate::router", "crate::routes", "super::super", "routes::"] {
                assert!(!text.contains(forbidden), "routes/{name} names {forbidden}");
            }
            let reaches_up = text
                .lines()
                .any(|line| line.contains("super::") && !line.trim_start().starts_with("use super::*;"));
            assert!(!reaches_up, "routes/{name} reaches another route through super::");
        }
    }
}
