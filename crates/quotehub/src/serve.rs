//! `quotehub serve`: replays a feed into a hub and serves it over WebSocket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use quotehub_feed::Speed;
use quotehub_feed::{ReplayControl, ReplayEnd, ReplayOptions, open_recorded, replay_controlled};
use quotehub_proto::Flags;
use quotehub_server::{Hub, QUOTES_PATH, ReplayAdmin, Tls};

use crate::config::FileConfig;
use tracing::{error, info};

use crate::cli::ServeArgs;

/// The bundled session, named relative to the repository.
const BUNDLED_FEED: &str = "feeds/us-equities-2026-11-20.jsonl";

/// Finds the bundled feed: beside the working directory, or in the source
/// tree this binary was built from.
fn bundled_feed() -> anyhow::Result<PathBuf> {
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(BUNDLED_FEED);
    [PathBuf::from(BUNDLED_FEED), in_tree]
        .into_iter()
        .find(|path| path.is_file())
        .with_context(|| format!("the bundled feed {BUNDLED_FEED} is missing; pass --feed PATH"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Built-in defaults, then the config file, then flags.
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let mut server_config = file.server_config();
    server_config.access = file.access(|var| std::env::var(var).ok())?;
    server_config.echo = args.echo;
    let tls_files = match (
        args.tls_cert.as_ref().or(file.tls.cert.as_ref()),
        args.tls_key.as_ref().or(file.tls.key.as_ref()),
    ) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => {
            anyhow::bail!("TLS needs both a certificate and a key (tls.cert and tls.key, or --tls-cert and --tls-key)")
        }
    };
    if let Some((cert, key)) = &tls_files {
        server_config.tls = Some(Tls::from_pem_files(cert, key)?);
    }
    let (ws, http) = if tls_files.is_some() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    if let Some(policy) = &args.policy {
        server_config.default_policy = policy.parse().map_err(anyhow::Error::msg)?;
    }
    let listen = args
        .listen
        .or(file.serve.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let feed_path = args.feed.or_else(|| file.serve.feed.clone());
    let bundled = feed_path.is_none();
    let path = match feed_path {
        Some(path) => path,
        None => bundled_feed()?,
    };
    let speed = match (args.speed, &file.serve.speed) {
        (Some(speed), _) => speed,
        (None, Some(text)) => text
            .parse()
            .map_err(anyhow::Error::msg)
            .context("in the config's serve.speed")?,
        (None, None) => Speed::Factor(1.0),
    };
    let looped = if args.no_loop {
        false
    } else if args.looped {
        true
    } else {
        file.serve.looped.unwrap_or(bundled)
    };
    let mut feed = open_recorded(&path).with_context(|| format!("opening feed {}", path.display()))?;
    let options = ReplayOptions { speed, looped };

    // --- replay window, admin control and per-client sessions ---
    let window = file.replay_window(args.from.as_deref(), args.to.as_deref(), args.symbols.as_deref())?;
    let control = ReplayControl::new(options.speed);
    server_config.replay_admin = Some(ReplayAdmin {
        control: control.clone(),
        window: window.clone(),
        feed: path.display().to_string(),
    });
    server_config.replay_feeds = file.replay_feeds(bundled_feed().ok())?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    info!(
        url = %format!("{ws}://{addr}{QUOTES_PATH}"),
        board = %format!("{http}://{addr}/"),
        feed = %path.display(),
        speed = ?options.speed,
        looped = options.looped,
        policy = ?server_config.default_policy,
        replay_feeds = ?server_config.replay_feeds.names(),
        "quotehub ready; try: quotehub subscribe AAPL MSFT"
    );

    let hub = Hub::with_history(file.history_depth());
    let (stop_feed, feed_stop) = std::sync::mpsc::channel::<()>();
    let publisher = hub.publisher(Flags::REPLAYED, 0);
    let feed_thread = std::thread::Builder::new().name("feed".into()).spawn(move || {
        let ended = replay_controlled(feed.as_mut(), options.looped, &window, &control, &feed_stop, publisher);
        match ended {
            Ok(ReplayEnd::Finished(stats)) => info!(
                events = stats.events,
                rejected = stats.rejected,
                "feed finished; still serving last values"
            ),
            Ok(ReplayEnd::Stopped(_)) => {}
            Err(err) => error!(%err, "feed failed"),
        }
    })?;

    runtime.block_on(quotehub_server::run(listener, hub, server_config, stop_signal()))?;
    drop(stop_feed);
    let _ = feed_thread.join();
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, the signals that ask for a graceful stop.
async fn stop_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => info!("SIGINT: shutting down"),
        () = terminate => info!("SIGTERM: shutting down"),
    }
}
