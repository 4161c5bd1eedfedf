//! `quotehub serve`: replays a feed into a hub and serves it over WebSocket.

use std::path::{Path, PathBuf};

use anyhow::Context;
use quotehub_feed::replay::replay_with_status;
use quotehub_feed::{ReplayEnd, ReplayOptions, open_recorded};
use quotehub_proto::Flags;
use quotehub_server::{Hub, QUOTES_PATH, ServerConfig};
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
    let bundled = args.feed.is_none();
    let path = match args.feed {
        Some(path) => path,
        None => bundled_feed()?,
    };
    let mut feed = open_recorded(&path).with_context(|| format!("opening feed {}", path.display()))?;
    let options = ReplayOptions {
        speed: args.speed,
        looped: if args.no_loop { false } else { args.looped || bundled },
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    info!(url = %format!("ws://{addr}{QUOTES_PATH}"), feed = %path.display(), speed = ?options.speed, looped = options.looped, "quotehub ready; try: quotehub subscribe AAPL MSFT");

    let hub = Hub::new();
    let (stop_feed, feed_stop) = std::sync::mpsc::channel::<()>();
    let publisher = hub.publisher(Flags::REPLAYED, 0);
    let feed_thread = std::thread::Builder::new().name("feed".into()).spawn(move || {
        let ended = replay_with_status(feed.as_mut(), options, &feed_stop, publisher);
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

    let shutdown = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        info!("Ctrl-C: shutting down");
    };
    runtime.block_on(quotehub_server::run(listener, hub, ServerConfig::default(), shutdown))?;
    drop(stop_feed);
    let _ = feed_thread.join();
    Ok(())
}
