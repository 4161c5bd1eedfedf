//! Measures how long a standby ingest hub takes to hold the lease after the
//! active one dies, with the default lease settings:
//!
//! ```sh
//! nats-server -js -a 127.0.0.1 -p 4222 -sd /tmp/nats-store &
//! cargo run --release -p quotehub-bus --example takeover_time -- nats://127.0.0.1:4222 10
//! ```
//!
//! Each round starts a holder and a standby (each on its own connection),
//! lets the standby see the holder, then drops the holder without giving
//! the lease up (as a crash would) and times until the standby holds it.
//! It uses a stream and bucket of its own, so a deployment's are untouched.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use quotehub_bus::{Bus, BusError, Lease, LeaseKeeper, LeaseSettings, StreamSettings, Subjects};
use quotehub_proto::Epoch;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers = args.first().map_or("nats://127.0.0.1:4222", String::as_str);
    let rounds: usize = match args.get(1).map(|text| text.parse()) {
        None => 5,
        Some(Ok(rounds)) if rounds > 0 => rounds,
        Some(_) => {
            eprintln!("usage: takeover_time [nats://HOST:PORT] [rounds > 0]");
            return ExitCode::from(2);
        }
    };
    match measure(servers, rounds).await {
        Ok(mut times) => {
            times.sort();
            let settings = LeaseSettings::default();
            println!(
                "takeover after the active died, {rounds} rounds (ttl {:?}, refresh {:?}, poll {:?}): min {:?}, median {:?}, max {:?}",
                settings.ttl,
                settings.refresh,
                settings.poll,
                times[0],
                times[times.len() / 2],
                times[times.len() - 1]
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("takeover_time: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(servers: &str, rounds: usize) -> Result<Vec<Duration>, String> {
    let stream = StreamSettings {
        name: "QUOTEHUB_TAKEOVER_TIME".to_owned(),
        subjects: Subjects::new("quotehub.takeover-time").map_err(|error| error.to_string())?,
        ..StreamSettings::new(1)
    };
    let setup = Bus::connect(servers).await.map_err(|error| error.to_string())?;
    stream
        .ensure(setup.jetstream())
        .await
        .map_err(|error| error.to_string())?;
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // A key per round: no round waits for the last one's to lapse.
        let settings = LeaseSettings {
            bucket: "QUOTEHUB_TAKEOVER_TIME".to_owned(),
            key: format!("round-{round}"),
            ..LeaseSettings::default()
        };
        let epoch = Epoch::random();
        let active = keeper(servers, &settings, &stream, "active", epoch)
            .await
            .map_err(|error| error.to_string())?;
        wait(&active, |state| state.active).await?;
        let standby = keeper(servers, &settings, &stream, "standby", epoch)
            .await
            .map_err(|error| error.to_string())?;
        wait(&standby, |state| {
            state.checks >= 2 && state.holder.as_deref() == Some("active")
        })
        .await?;
        let died = Instant::now();
        drop(active);
        wait(&standby, |state| state.active).await?;
        let took = died.elapsed();
        println!("round {round}: {took:?}");
        times.push(took);
        standby.release().await;
    }
    Ok(times)
}

async fn keeper(
    servers: &str,
    settings: &LeaseSettings,
    stream: &StreamSettings,
    holder: &str,
    epoch: Epoch,
) -> Result<LeaseKeeper, BusError> {
    let bus = Bus::connect(servers).await?;
    let lease = Lease::open(&bus, settings.clone(), holder).await?;
    Ok(LeaseKeeper::start(lease, &bus, stream.clone(), epoch))
}

async fn wait(keeper: &LeaseKeeper, what: impl Fn(&quotehub_bus::LeaseState) -> bool) -> Result<(), String> {
    let mut state = keeper.state();
    match tokio::time::timeout(WAIT, state.wait_for(|state| what(state))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("the keeper stopped".to_owned()),
        Err(_) => Err(format!("nothing within {WAIT:?}")),
    }
}
