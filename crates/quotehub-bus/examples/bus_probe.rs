//! Times the bus hop alone: a record published (by the ingest side's
//! [`IngestPublisher`], as an ingest hub sends) until a reader on another
//! connection (as an edge reads) has it, on a real nats-server, at a steady
//! rate across several subjects, for several ways of reading:
//!
//! ```sh
//! nats-server -js -a 127.0.0.1 -p 4222 -sd /tmp/nats-store &
//! cargo run --release -p quotehub-bus --example bus_probe -- nats://127.0.0.1:4222
//! ```
//!
//! Readers (each on every "edge", one connection per edge):
//!
//! - `pull`: one [`EdgeReader`] per subject (an ordered pull consumer each,
//!   what an edge runs for named symbols);
//! - `pull-all`: one [`EdgeReader::open_all`] over the wildcard (an edge's `"*"`);
//! - `push`: one ordered push consumer per subject (async-nats's
//!   `push::OrderedConfig`: flow control, idle heartbeats);
//! - `core`: one plain core-NATS subscription on the stream's subjects
//!   (JetStream stores the message and the server also delivers it to core
//!   subscribers: no store, no consumer, no gap detection);
//! - `live`: one [`EdgeReader`] per subject on a stream that republishes
//!   to the live subjects (what an edge runs since: a core subscription on
//!   the symbol's live subject, the consumer only for history and repair);
//! - `live-all`: one [`EdgeReader::open_all`] on such a stream (an edge's
//!   `"*"`: a core subscription on the live wildcard).
//!
//! The stream republishes only for `live` and `live-all` (a republish costs
//! nats-server a message of its own), as a stream made before live
//! subjects existed, which the other readers measure.
//!
//! Each with the stream on file and in memory. The payload carries the
//! publish call's time; the reader's receive time minus it is the hop.
//! It uses a stream of its own, so a deployment's is untouched.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::{consumer, stream::StorageType};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use quotehub_bus::{Bus, EdgeReader, IngestPublisher, IngestSettings, StreamSettings, Subjects};
use quotehub_proto::{Epoch, Symbol, now_ns};

/// Like the bench's workload: 20 symbols, 10,000 records/s, two edges.
const SYMBOLS: usize = 20;
const EDGES: usize = 2;
/// About a quote record's size.
const PAYLOAD: usize = 80;
const STREAM: &str = "QUOTEHUB_BUS_PROBE";
const PREFIX: &str = "quotehub.probe";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Pull,
    PullAll,
    Push,
    Core,
    Live,
    LiveAll,
}

impl Reader {
    fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull (ordered, per subject)",
            Self::PullAll => "pull-all (ordered, wildcard)",
            Self::Push => "push (ordered, per subject)",
            Self::Core => "core subscription (wildcard)",
            Self::Live => "live (republish + core, per subject)",
            Self::LiveAll => "live-all (republish + core, wildcard)",
        }
    }

    /// Whether it reads the live subjects (the stream must republish).
    fn live(self) -> bool {
        matches!(self, Self::Live | Self::LiveAll)
    }
}

/// The hop's times of one run, in µs.
struct Run {
    reader: Reader,
    storage: StorageType,
    latencies: Vec<u64>,
    expected: u64,
    /// CPU time per record published (nats-server's, this process's), in
    /// µs, over the whole run; `None` where /proc cannot tell.
    cpu_per_record: (Option<f64>, Option<f64>),
    /// Repairs of the live readers (a missed live record, a reconnect, a
    /// full subscription), all of them together.
    repairs: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers = args.first().map_or("nats://127.0.0.1:4222", String::as_str);
    let rate: u64 = args.get(1).and_then(|text| text.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.get(2).and_then(|text| text.parse().ok()).unwrap_or(5);
    // nats-server's pid, for its CPU time (Linux /proc), and a reader to run alone.
    let server_pid = args.get(3).and_then(|text| text.parse::<u32>().ok());
    let only = args.get(4).cloned();
    let mut runs = Vec::new();
    for storage in [StorageType::File, StorageType::Memory] {
        for reader in [
            Reader::Pull,
            Reader::PullAll,
            Reader::Push,
            Reader::Core,
            Reader::Live,
            Reader::LiveAll,
        ] {
            if only.as_deref().is_some_and(|only| !reader.name().starts_with(only)) {
                continue;
            }
            match run(servers, reader, storage, rate, Duration::from_secs(seconds), server_pid).await {
                Ok(run) => {
                    report(&run);
                    runs.push(run);
                }
                Err(error) => {
                    eprintln!("bus_probe: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn report(run: &Run) {
    let mut sorted = run.latencies.clone();
    sorted.sort_unstable();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let cpu = |cpu: Option<f64>| cpu.map_or_else(|| "n/a".to_owned(), |cpu| format!("{cpu:.1}"));
    println!(
        "| {} | {:?} | {} | {} | {} | {} | {} of {} | {} | {} | {} |",
        run.reader.name(),
        run.storage,
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        sorted.len(),
        run.expected,
        cpu(run.cpu_per_record.0),
        cpu(run.cpu_per_record.1),
        run.repairs,
    );
}

async fn run(
    servers: &str,
    reader: Reader,
    storage: StorageType,
    rate: u64,
    measure: Duration,
    server_pid: Option<u32>,
) -> Result<Run, String> {
    let text = |error: quotehub_bus::BusError| error.to_string();
    let settings = StreamSettings {
        name: STREAM.to_owned(),
        subjects: Subjects::new(PREFIX).map_err(text)?,
        ..StreamSettings::new(250)
    };
    let setup = Bus::connect(servers).await.map_err(text)?;
    let js = setup.jetstream();
    let _ = js.delete_stream(STREAM).await;
    let mut config = settings.config();
    config.storage = storage;
    if !reader.live() {
        config.republish = None;
    }
    js.create_stream(config).await.map_err(|error| error.to_string())?;
    let symbols: Vec<Symbol> = (0..SYMBOLS)
        .map(|i| format!("P{i:05}").parse().map_err(|_| "a symbol".to_owned()))
        .collect::<Result<_, _>>()?;
    // A first record, so that every reader has a stream to start from.
    let publisher_bus = Bus::connect(servers).await.map_err(text)?;
    let publisher = IngestPublisher::start(&publisher_bus, settings.subjects.clone(), IngestSettings::default());
    let epoch = Epoch::random();
    publisher.publish(&symbols[0], epoch, 0, payload(0));
    tokio::time::timeout(Duration::from_secs(10), publisher.flush())
        .await
        .map_err(|_| "the first record was not acknowledged".to_owned())?;

    let warmup = Duration::from_secs(1);
    let started = now_ns();
    let window = (
        started + warmup.as_nanos() as u64,
        started + (warmup + measure).as_nanos() as u64,
    );
    let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * measure.as_secs() * 2) as usize)));
    let repairs = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut edges = Vec::new();
    for _ in 0..EDGES {
        let bus = Bus::connect(servers).await.map_err(text)?;
        let record = {
            let latencies = Arc::clone(&latencies);
            move |payload: &[u8]| {
                let received = now_ns();
                let Some(sent) = payload
                    .get(..8)
                    .and_then(|stamp| stamp.try_into().ok())
                    .map(u64::from_le_bytes)
                else {
                    return;
                };
                if sent >= window.0 && sent < window.1 {
                    latencies
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(received.saturating_sub(sent) / 1_000);
                }
            }
        };
        match reader {
            Reader::Pull | Reader::Live => {
                for symbol in &symbols {
                    let mut edge = EdgeReader::open(&bus, &settings, symbol, 0).await.map_err(text)?;
                    if edge.reads_live() != reader.live() {
                        return Err(format!("{}: the reader does not read as asked", reader.name()));
                    }
                    let record = record.clone();
                    let repairs = Arc::clone(&repairs);
                    tasks.push(tokio::spawn(async move {
                        let mut counted = 0;
                        loop {
                            record(&edge.next().await.payload);
                            repairs.fetch_add(edge.repairs() - counted, Ordering::Relaxed);
                            counted = edge.repairs();
                        }
                    }));
                }
            }
            Reader::PullAll | Reader::LiveAll => {
                let mut edge = EdgeReader::open_all(&bus, &settings).await.map_err(text)?;
                if edge.reads_live() != reader.live() {
                    return Err(format!("{}: the reader does not read as asked", reader.name()));
                }
                let repairs = Arc::clone(&repairs);
                tasks.push(tokio::spawn(async move {
                    let mut counted = 0;
                    loop {
                        record(&edge.next().await.payload);
                        repairs.fetch_add(edge.repairs() - counted, Ordering::Relaxed);
                        counted = edge.repairs();
                    }
                }));
            }
            Reader::Push => {
                for symbol in &symbols {
                    let config = consumer::push::OrderedConfig {
                        deliver_subject: bus.client().new_inbox(),
                        filter_subject: settings.subjects.of(symbol),
                        deliver_policy: consumer::DeliverPolicy::New,
                        ..Default::default()
                    };
                    let mut messages = bus
                        .jetstream()
                        .create_consumer_on_stream(config, STREAM)
                        .await
                        .map_err(|error| error.to_string())?
                        .messages()
                        .await
                        .map_err(|error| error.to_string())?;
                    let record = record.clone();
                    tasks.push(tokio::spawn(async move {
                        while let Some(Ok(message)) = messages.next().await {
                            record(&message.payload);
                        }
                    }));
                }
            }
            Reader::Core => {
                let mut subscriber = bus
                    .client()
                    .subscribe(settings.subjects.all())
                    .await
                    .map_err(|error| error.to_string())?;
                tasks.push(tokio::spawn(async move {
                    while let Some(message) = subscriber.next().await {
                        record(&message.payload);
                    }
                }));
            }
        }
        edges.push(bus);
    }

    // Open loop: each record's turn comes at a fixed rate from the start;
    // the timer's tick sets how many go together.
    let server_cpu = || server_pid.and_then(|pid| cpu_seconds(&format!("/proc/{pid}/stat")));
    let own_cpu = || cpu_seconds("/proc/self/stat");
    let cpu_before = (server_cpu(), own_cpu());
    let begin = Instant::now();
    let total = rate * (warmup + measure).as_secs();
    let mut expected = 0;
    for i in 0..total {
        let due = begin + Duration::from_nanos(i * 1_000_000_000 / rate);
        if Instant::now() < due {
            tokio::time::sleep_until(due.into()).await;
        }
        let stamp = now_ns();
        if stamp >= window.0 && stamp < window.1 {
            expected += EDGES as u64;
        }
        let symbol = &symbols[(i as usize) % SYMBOLS];
        publisher.publish(symbol, epoch, i + 1, payload(stamp));
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), publisher.flush()).await;
    // Readers drain what is left; this probe has no event for "all read".
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_record = |before: Option<f64>, after: Option<f64>| Some((after? - before?) * 1e6 / total as f64);
    let cpu_per_record = (
        per_record(cpu_before.0, server_cpu()),
        per_record(cpu_before.1, own_cpu()),
    );
    for task in tasks {
        task.abort();
    }
    drop(edges);
    let _ = js.delete_stream(STREAM).await;
    let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Run {
        reader,
        storage,
        latencies,
        expected,
        cpu_per_record,
        repairs: repairs.load(Ordering::Relaxed),
    })
}

/// User plus system CPU seconds of a process, from its `/proc/PID/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |at: usize| fields.get(at)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

fn payload(stamp: u64) -> Bytes {
    let mut bytes = BytesMut::with_capacity(PAYLOAD);
    bytes.put_u64_le(stamp);
    bytes.put_bytes(0, PAYLOAD - 8);
    bytes.freeze()
}
