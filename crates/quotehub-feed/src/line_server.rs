//! Serves a recorded feed as JSON lines over TCP, paced like a replay, to
//! every hub that connects (`quotehub replay FEED --listen ADDR`, read by
//! `quotehub serve --feed tcp://ADDR`). Each connection gets its own replay
//! from the start, on its own thread; a connection that goes away ends its
//! replay and nothing else.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};

use tracing::{info, warn};

use crate::error::FeedError;
use crate::jsonl_writer::write_event;
use crate::replay::{ReplayEnd, ReplayOptions, replay};
use crate::source::RecordedFeed;

/// Accepts connections on `listener` forever, replaying a feed from `open`
/// into each. Returns only if accepting fails.
pub fn serve_json_lines<F>(listener: TcpListener, open: F, options: ReplayOptions) -> std::io::Result<()>
where
    F: Fn() -> Result<Box<dyn RecordedFeed>, FeedError> + Send + Sync + 'static,
{
    let open = std::sync::Arc::new(open);
    loop {
        let (stream, peer) = listener.accept()?;
        let open = std::sync::Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("line-replay".into())
            .spawn(move || match open() {
                Ok(mut feed) => replay_to(stream, feed.as_mut(), options, &peer.to_string()),
                Err(err) => warn!(%peer, %err, "cannot open the feed for a connection"),
            });
        if let Err(err) = spawned {
            warn!(%peer, %err, "cannot start a replay thread");
        }
    }
}

/// Replays `feed` into one connection until the feed ends or the peer leaves.
fn replay_to(stream: TcpStream, feed: &mut dyn RecordedFeed, options: ReplayOptions, peer: &str) {
    info!(peer, "replaying to a new connection");
    let _ = stream.set_nodelay(true);
    let mut out = std::io::BufWriter::new(stream);
    let (stop_tx, stop) = std::sync::mpsc::channel();
    let mut failed = None;
    let ended = replay(feed, options, &stop, |event| {
        if failed.is_some() {
            return;
        }
        // Flush per line when paced (a hub should see each event when due);
        // at full speed the buffer fills and flushes by itself.
        let flush = options.speed != crate::Speed::Max;
        let written = write_event(&mut out, &event).and_then(|()| if flush { out.flush() } else { Ok(()) });
        if let Err(err) = written {
            failed = Some(err);
            let _ = stop_tx.send(());
        }
    });
    let _ = out.flush();
    match (failed, ended) {
        (Some(err), _) => info!(peer, %err, "connection ended; its replay stops"),
        (None, Ok(ReplayEnd::Finished(stats) | ReplayEnd::Stopped(stats))) => {
            info!(peer, events = stats.events, "replay to connection finished");
        }
        (None, Err(err)) => warn!(peer, %err, "feed failed"),
    }
}
