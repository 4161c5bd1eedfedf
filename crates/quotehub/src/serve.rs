//! `quotehub serve`: replays a feed into a hub and serves it over WebSocket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use quotehub_feed::Speed;
use quotehub_feed::{ReplayControl, ReplayEnd, ReplayOptions, replay_controlled};
use quotehub_proto::Flags;
use quotehub_server::{Hub, QUOTES_PATH, Recorder, ReplayAdmin, Tls};

use crate::config::FileConfig;
use crate::feeds::{FeedPlan, FeedSpec};
use crate::live::{LiveFeed, UpstreamSettings};
use tracing::{error, info, warn};

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
    let specs = if args.feeds.is_empty() {
        file.feed_specs()?
    } else {
        args.feeds
    };
    let bundled = specs.is_empty();
    let specs = if bundled {
        vec![FeedSpec {
            location: bundled_feed()?.display().to_string(),
            symbols: None,
        }]
    } else {
        specs
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
    let plan = FeedPlan::new(specs)?;
    // Read before anything starts, so that a bad CA file is a clear error at once.
    let upstreams = UpstreamSettings::load(file.tls.ca_file.as_deref())?;
    let recorded = plan.open_recordings()?;
    let options = ReplayOptions { speed, looped };

    // --- replay window, admin control and per-client sessions ---
    let window = file.replay_window(args.from.as_deref(), args.to.as_deref(), args.symbols.as_deref())?;
    let control = ReplayControl::new(options.speed);
    // The admin endpoint steers the hub's replay of its recordings, if any.
    server_config.replay_admin = recorded.as_ref().map(|feed| ReplayAdmin {
        control: control.clone(),
        window: window.clone(),
        feed: feed.name().to_owned(),
    });
    server_config.replay_feeds = file.replay_feeds(bundled_feed().ok())?;

    // Every connection is a descriptor: take all the kernel allows us.
    match quotehub_server::descriptors::raise_open_file_limit() {
        Ok(limit) => info!(soft = ?limit.soft, hard = ?limit.hard, "open-file limit (RLIMIT_NOFILE)"),
        Err(err) => warn!(%err, "could not raise the open-file limit (RLIMIT_NOFILE)"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let stop_signal = {
        let _runtime = runtime.enter();
        stop_signal()?
    };
    let feed_names: Vec<String> = plan
        .live
        .iter()
        .map(|(_, url, _)| url.to_string())
        .chain(recorded.as_ref().map(|feed| feed.name().to_owned()))
        .collect();
    info!(
        url = %format!("{ws}://{addr}{QUOTES_PATH}"),
        board = %format!("{http}://{addr}/"),
        feed = %feed_names.join(" + "),
        speed = ?options.speed,
        looped = options.looped,
        policy = ?server_config.default_policy,
        replay_feeds = ?server_config.replay_feeds.names(),
        "quotehub ready; try: quotehub subscribe AAPL MSFT"
    );

    let mut hub = Hub::with_history(file.history_depth());
    let recorder = match &args.record {
        Some(path) => Some(start_recording(&mut hub, path)?),
        None => None,
    };
    let (stop_feed, feed_stop) = std::sync::mpsc::channel::<()>();
    let live: Vec<LiveFeed> = plan
        .live
        .into_iter()
        .map(|(number, url, spec)| LiveFeed::spawn(&hub, url, number, spec.symbols, &upstreams))
        .collect::<anyhow::Result<_>>()?;
    let feed_thread = recorded
        .map(|mut feed| {
            let publisher = hub.publisher(Flags::REPLAYED, plan.recorded_number);
            std::thread::Builder::new().name("feed".into()).spawn(move || {
                let ended = replay_controlled(feed.as_mut(), options.looped, &window, &control, &feed_stop, publisher);
                match ended {
                    Ok(ReplayEnd::Finished(stats)) => info!(
                        events = stats.events,
                        rejected = stats.rejected,
                        filtered = stats.filtered,
                        "feed finished; still serving last values"
                    ),
                    Ok(ReplayEnd::Stopped(_)) => {}
                    Err(err) => error!(%err, "feed failed"),
                }
            })
        })
        .transpose()?;

    let shutdown = async {
        stop_signal.await;
        for source in &live {
            source.stop();
        }
    };
    runtime.block_on(quotehub_server::run(listener, hub, server_config, shutdown))?;
    drop(stop_feed);
    if let Some(thread) = feed_thread {
        let _ = thread.join();
    }
    for source in live {
        source.join();
    }
    if let Some(recorder) = recorder {
        finish_recording(&recorder)?;
    }
    Ok(())
}

/// Makes `hub` record what it ingests into a new capture at `path`.
pub fn start_recording(hub: &mut Hub, path: &Path) -> anyhow::Result<Arc<Recorder>> {
    let recorder = Recorder::create(path).with_context(|| format!("creating capture {}", path.display()))?;
    let recorder = Arc::new(recorder);
    hub.record_to(Arc::clone(&recorder));
    info!(capture = %path.display(), "recording what the hub ingests");
    Ok(recorder)
}

/// Writes the capture's index and closes it, saying what it holds.
pub fn finish_recording(recorder: &Recorder) -> anyhow::Result<()> {
    let path = recorder.path().display();
    let records = recorder.finish().with_context(|| format!("finishing capture {path}"))?;
    if recorder.failed() > 0 {
        anyhow::bail!("capture {path} is incomplete: writing it failed after {records} records (see the log)");
    }
    info!(capture = %path, records, "capture written");
    Ok(())
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM, the signals that ask for a
/// graceful stop, from the moment it is called (so a signal sent as soon as
/// the ready line appears is not missed); the future completes on the first.
/// Call it inside the runtime.
pub fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => info!("SIGINT: shutting down"),
            _ = terminate.recv() => info!("SIGTERM: shutting down"),
        }
    })
}
