//! `quotehub record`: runs feeds into a hub that serves no one, recording
//! what it ingests (sequenced and stamped, as `serve --record` does) into a
//! capture.

use std::sync::mpsc;
use std::time::Duration;

use quotehub_feed::replay::replay_with_status;
use quotehub_feed::{ReplayEnd, ReplayOptions};
use quotehub_proto::Flags;
use quotehub_server::Hub;
use tracing::info;

use crate::cli::RecordArgs;
use crate::feeds::open_recorded_feeds;
use crate::serve::{finish_recording, start_recording};

pub fn run(args: RecordArgs) -> anyhow::Result<()> {
    let duration = match args.duration {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => Some(Duration::from_secs_f64(seconds)),
        Some(seconds) => anyhow::bail!("--duration must be a positive number of seconds, not {seconds}"),
        None => None,
    };
    let mut feed = open_recorded_feeds(&args.feeds)?;
    let mut hub = Hub::new();
    let recorder = start_recording(&mut hub, &args.out)?;
    let publisher = hub.publisher(Flags::REPLAYED, 0);
    let options = ReplayOptions {
        speed: args.speed,
        looped: false,
    };

    // Ctrl-C, SIGTERM or --duration stop the replay; the capture is then
    // finished (indexed) all the same.
    let (stop, stopped) = mpsc::channel::<()>();
    let stopper = stop.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        if let Ok(runtime) = runtime {
            runtime.block_on(async {
                match duration {
                    Some(duration) => {
                        tokio::select! {
                            () = crate::serve::stop_signal() => {}
                            () = tokio::time::sleep(duration) => info!("--duration reached"),
                        }
                    }
                    None => crate::serve::stop_signal().await,
                }
            });
        }
        let _ = stopper.send(());
    })?;
    let ended = replay_with_status(feed.as_mut(), options, &stopped, publisher)?;
    drop(stop);
    let stats = match ended {
        ReplayEnd::Finished(stats) | ReplayEnd::Stopped(stats) => stats,
    };
    finish_recording(&recorder)?;
    eprintln!(
        "recorded {} events into {} ({} rejected, {} filtered out)",
        recorder.records(),
        args.out.display(),
        stats.rejected,
        stats.filtered
    );
    for rejection in &stats.first_rejections {
        eprintln!("  rejected: {rejection}");
    }
    Ok(())
}
