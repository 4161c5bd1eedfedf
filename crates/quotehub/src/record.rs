//! `quotehub record`: runs feeds into a hub that serves no one, recording
//! what it ingests (sequenced and stamped, as `serve --record` does) into a
//! capture.

use std::time::Duration;

use quotehub_feed::replay::replay_with_status;
use quotehub_feed::{FeedStats, ReplayEnd, ReplayOptions};
use quotehub_proto::Flags;
use quotehub_server::Hub;
use tracing::info;

use crate::cli::RecordArgs;
use crate::feeds::{FeedPlan, MergeTimes};
use crate::live::{LiveFeed, UpstreamSettings};
use crate::serve::{finish_recording, start_recording, stop_signal};

pub fn run(args: RecordArgs) -> anyhow::Result<()> {
    let duration = match args.duration {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => Some(Duration::from_secs_f64(seconds)),
        Some(seconds) => anyhow::bail!("--duration must be a positive number of seconds, not {seconds}"),
        None => None,
    };
    let plan = FeedPlan::new(args.feeds)?;
    // Read before anything starts, so that a bad CA file is a clear error at once.
    let upstreams = UpstreamSettings::load(None)?;
    let recorded = plan.open_recordings(MergeTimes::AsRecorded)?;
    let mut hub = Hub::new();
    let recorder = start_recording(&mut hub, &args.out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let stop_requested = {
        let _runtime = runtime.enter();
        stop_signal()?
    };
    let live: Vec<LiveFeed> = plan
        .live
        .into_iter()
        .map(|(number, url, spec)| LiveFeed::spawn(&hub, url, number, spec.symbols, &upstreams))
        .collect::<anyhow::Result<_>>()?;

    let options = ReplayOptions {
        speed: args.speed,
        looped: false,
    };
    let (stop_replay, replay_stop) = std::sync::mpsc::channel::<()>();
    let (replay_done, replay_finished) = tokio::sync::oneshot::channel::<()>();
    let replay = match recorded {
        Some(mut feed) => {
            let publisher = hub.publisher(Flags::REPLAYED, plan.recorded_number);
            Some(std::thread::Builder::new().name("feed".into()).spawn(move || {
                let ended = replay_with_status(feed.as_mut(), options, &replay_stop, publisher);
                let _ = replay_done.send(());
                ended
            })?)
        }
        None => None,
    };

    // Recording stops on Ctrl-C or SIGTERM, after --duration, or when the
    // recordings end and no live source is left to wait for.
    let recordings_only = replay.is_some() && live.is_empty();
    runtime.block_on(async {
        let ended = async {
            match recordings_only {
                true => drop(replay_finished.await),
                false => std::future::pending().await,
            }
        };
        let timer = async {
            match duration {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop_requested => {}
            () = timer => info!("--duration reached"),
            () = ended => {}
        }
    });
    drop(stop_replay);
    let stats = match replay.map(|thread| thread.join()) {
        Some(Ok(Ok(ReplayEnd::Finished(stats) | ReplayEnd::Stopped(stats)))) => stats,
        Some(Ok(Err(err))) => return Err(err.into()),
        Some(Err(_)) => anyhow::bail!("the feed thread panicked"),
        None => FeedStats::default(),
    };
    for source in live {
        source.join();
    }
    finish_recording(&recorder)?;
    eprintln!(
        "recorded {} events into {} ({} rejected, {} filtered out)",
        recorder.records(),
        args.out.display(),
        stats.rejected,
        stats.filtered + quotehub_server::Stats::get(&hub.stats().events_filtered)
    );
    for rejection in &stats.first_rejections {
        eprintln!("  rejected: {rejection}");
    }
    Ok(())
}
