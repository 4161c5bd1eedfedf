//! `quotehub-bench --soak MINUTES`: a mixed, hostile load against one hub,
//! to show that no client can hurt another over time.
//!
//! The hub replays the bundled session in a loop (at `--soak-speed`) while
//! these run side by side, each a set of tasks on this process's runtime:
//!
//! | actor | what it does |
//! |---|---|
//! | readers | well-behaved clients (half `"*"`, half five symbols) that read everything for the whole run and count gaps |
//! | stalled | subscribe to `"*"` and never read again (half under `policy=disconnect`), replaced every few seconds |
//! | flooders | send long unsubscribe requests just under the rate limit and never read the replies |
//! | churners | connect, subscribe, wait for the first record, leave; again and again |
//! | replays | open a replay session, read, pause, leave |
//! | silent | open TCP connections and never send a request head |
//!
//! The attackers stop a cool-down before the end, so the last samples show
//! what the hub gives back. Every few seconds the hub's resident memory, its
//! open descriptors and its `/metrics` counters are sampled. The report
//! (`soak.md` and `soak.csv` in `--out`) says whether memory came back,
//! whether descriptors grew, and how many gaps the readers saw (must be 0);
//! the command fails if a reader saw a gap or was dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::SinkExt;
use quotehub_client::{Client, ReplaySession, Update};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::proc_stats;
use super::target::{self, Target};
use crate::cli::BenchArgs;

/// How often the hub is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Well-behaved readers, connected for the whole run.
const READERS: usize = 20;
/// Stalled `"*"` clients held at once.
const STALLED: usize = 200;
/// Request flooders held at once.
const FLOODERS: usize = 10;
/// Connect-subscribe-leave loops.
const CHURNERS: usize = 8;
/// Replay session loops.
const REPLAYS: usize = 4;
/// Silent TCP connections held at once.
const SILENT: usize = 50;
/// Symbols the five-symbol readers and the churners ask for (in the bundled session).
const SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "SPY", "TSLA"];

/// What the actors did, counted as they go.
#[derive(Debug, Default)]
struct Counts {
    stalled_opened: AtomicU64,
    flood_requests: AtomicU64,
    churn_cycles: AtomicU64,
    replay_sessions: AtomicU64,
    silent_opened: AtomicU64,
    /// Attacker connections that failed to open (refused, 503, reset).
    refused: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One reading of the hub.
#[derive(Debug, Clone)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: usize,
    /// `/metrics` values by name (labels dropped, first series kept).
    metrics: BTreeMap<String, f64>,
}

/// What one well-behaved reader saw.
#[derive(Debug, Default)]
struct ReaderResult {
    updates: u64,
    gaps: u64,
    resets: u64,
    /// Why it stopped before the end, if it did.
    dropped: Option<String>,
}

pub fn run(args: &BenchArgs, minutes: f64) -> anyhow::Result<()> {
    anyhow::ensure!(args.url.is_none(), "--soak starts its own hub; drop --url");
    anyhow::ensure!(minutes > 0.0, "--soak takes a positive number of minutes");
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    target::raise_file_limit(4_096)?;
    let binary = target::hub_binary(args.hub_binary.as_deref())?;
    let hub = Target::start_bundled_hub(&binary, &args.out, &args.soak_speed)?;
    let pid = hub.pid().context("no hub process")?;
    let addr = hub.endpoint.addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let total = Duration::from_secs_f64(minutes * 60.0);
    let cool_down = (total / 5).min(Duration::from_secs(60));
    eprintln!(
        "soak: {minutes} min against the hub at {addr} (pid {pid}); attackers stop {}s before the end",
        cool_down.as_secs()
    );
    let (samples, readers, counts) = runtime.block_on(soak(addr, pid, total, cool_down))?;
    let report = report(args, minutes, cool_down, &samples, &readers, &counts);
    std::fs::write(args.out.join("soak.md"), &report)?;
    std::fs::write(args.out.join("soak.csv"), csv(&samples))?;
    println!("{report}");
    println!("report: {}", args.out.join("soak.md").display());
    let gaps: u64 = readers.iter().map(|r| r.gaps).sum();
    let dropped = readers.iter().filter(|r| r.dropped.is_some()).count();
    anyhow::ensure!(
        gaps == 0 && dropped == 0,
        "well-behaved readers saw {gaps} gap(s) and {dropped} were dropped"
    );
    Ok(())
}

async fn soak(
    addr: SocketAddr,
    pid: u32,
    total: Duration,
    cool_down: Duration,
) -> anyhow::Result<(Vec<Sample>, Vec<ReaderResult>, Arc<Counts>)> {
    let start = Instant::now();
    let end = start + total;
    let attack_end = end - cool_down;
    let url = format!("ws://{addr}/v1/quotes");
    let counts = Arc::new(Counts::default());
    let mut samples = vec![sample(addr, pid, start).await?];

    let readers: Vec<_> = (0..READERS)
        .map(|n| tokio::spawn(reader(url.clone(), n.is_multiple_of(2), end)))
        .collect();
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..STALLED {
        attackers.spawn(stalled(addr, n, attack_end, Arc::clone(&counts)));
    }
    for _ in 0..FLOODERS {
        attackers.spawn(flooder(addr, attack_end, Arc::clone(&counts)));
    }
    for _ in 0..CHURNERS {
        attackers.spawn(churner(url.clone(), attack_end, Arc::clone(&counts)));
    }
    for _ in 0..REPLAYS {
        attackers.spawn(replayer(url.clone(), attack_end, Arc::clone(&counts)));
    }
    for n in 0..SILENT {
        attackers.spawn(silent(addr, n, attack_end, Arc::clone(&counts)));
    }

    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
    while Instant::now() < end {
        tick.tick().await;
        let reading = sample(addr, pid, start).await?;
        eprintln!(
            "  {:>6.0}s  rss {:>7.1} MiB  fds {:>5}  connections {:>5}",
            reading.at_s,
            reading.rss_kib as f64 / 1024.0,
            reading.fds,
            reading.metrics.get("quotehub_connections").copied().unwrap_or(f64::NAN)
        );
        samples.push(reading);
    }
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}
    let mut results = Vec::new();
    for reader in readers {
        results.push(reader.await.unwrap_or_else(|err| ReaderResult {
            dropped: Some(format!("reader task failed: {err}")),
            ..ReaderResult::default()
        }));
    }
    Ok((samples, results, counts))
}

/// A client that reads everything until `end`, counting gaps.
async fn reader(url: String, wildcard: bool, end: Instant) -> ReaderResult {
    let mut result = ReaderResult::default();
    let mut client = match Client::connect(&url).await {
        Ok(client) => client,
        Err(err) => {
            result.dropped = Some(format!("connect: {err}"));
            return result;
        }
    };
    let symbols: &[&str] = if wildcard { &["*"] } else { &SYMBOLS };
    if let Err(err) = client.subscribe(symbols).await {
        result.dropped = Some(format!("subscribe: {err}"));
        return result;
    }
    let until = tokio::time::Instant::from_std(end);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => break,
            update = client.next_update() => match update {
                Ok(Some(Update::Quote { .. } | Update::Trade { .. })) => result.updates += 1,
                Ok(Some(_)) => {}
                Ok(None) => {
                    result.dropped = Some("the hub closed the connection".into());
                    break;
                }
                Err(err) => {
                    result.dropped = Some(err.to_string());
                    break;
                }
            },
        }
    }
    result.gaps = client.gaps();
    result.resets = client.resets();
    result
}

/// A WebSocket connection on a socket with a small receive buffer, so
/// that a client that stops reading stalls the hub's writes quickly.
async fn raw_websocket(addr: SocketAddr, query: &str) -> anyhow::Result<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4 * 1024)?;
    let stream = socket.connect(addr).await?;
    let url = format!("ws://{addr}/v1/quotes{query}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(ws)
}

/// Subscribes to `"*"`, then never reads; leaves after a few seconds and comes back.
async fn stalled(addr: SocketAddr, n: usize, end: Instant, counts: Arc<Counts>) {
    let query = if n.is_multiple_of(2) { "?policy=disconnect" } else { "" };
    // Staggered lifetimes, so the stalled clients do not all leave at once.
    let hold = Duration::from_secs(5 + (n % 20) as u64);
    while Instant::now() + hold < end {
        match raw_websocket(addr, query).await {
            Ok(mut ws) => {
                Counts::add(&counts.stalled_opened);
                let _ = ws.send(Message::text(r#"{"op":"subscribe","symbols":["*"]}"#)).await;
                tokio::time::sleep(hold).await;
            }
            Err(_) => {
                Counts::add(&counts.refused);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Sends long unsubscribe requests at 15 a second (under the default
/// limit of 20) and never reads the replies.
async fn flooder(addr: SocketAddr, end: Instant, counts: Arc<Counts>) {
    let symbols: Vec<String> = (0..6_000).map(|n| format!("\"Z{n:05}\"")).collect();
    let request = format!(r#"{{"op":"unsubscribe","symbols":[{}]}}"#, symbols.join(","));
    while Instant::now() < end {
        let Ok(mut ws) = raw_websocket(addr, "").await else {
            Counts::add(&counts.refused);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut every = tokio::time::interval(Duration::from_millis(1000 / 15));
        let leave = Instant::now() + Duration::from_secs(20);
        while Instant::now() < leave.min(end) {
            every.tick().await;
            // The send waits once the hub stops reading (or has closed us).
            let sent = tokio::time::timeout(Duration::from_secs(2), ws.send(Message::text(request.clone()))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
            Counts::add(&counts.flood_requests);
        }
    }
}

/// Connects, subscribes, waits for the first record, leaves.
async fn churner(url: String, end: Instant, counts: Arc<Counts>) {
    while Instant::now() < end {
        let cycle = async {
            let mut client = Client::connect(&url).await.ok()?;
            client.subscribe(&SYMBOLS[..3]).await.ok()?;
            client.next_update().await.ok()?;
            client.close().await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(10), cycle).await {
            Ok(Some(())) => {
                Counts::add(&counts.churn_cycles);
                // Churn, not a connection flood: about 20 cycles a second each.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {
                Counts::add(&counts.refused);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Opens a replay session of the bundled feed, reads a while, pauses, leaves.
async fn replayer(url: String, end: Instant, counts: Arc<Counts>) {
    let session = ReplaySession {
        speed: Some("20".into()),
        looped: true,
        ..ReplaySession::default()
    };
    while Instant::now() < end {
        let cycle = async {
            let mut client = Client::replay(&url, "bundled", &session).await.ok()?;
            for _ in 0..500 {
                client.next_update().await.ok()??;
            }
            client.pause_replay().await.ok()?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            client.close().await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(30), cycle).await {
            Ok(Some(())) => Counts::add(&counts.replay_sessions),
            _ => {
                Counts::add(&counts.refused);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Opens a TCP connection and says nothing until the hub drops it (or a
/// while passes), then opens another.
async fn silent(addr: SocketAddr, n: usize, end: Instant, counts: Arc<Counts>) {
    let hold = Duration::from_secs(10 + (n % 10) as u64);
    while Instant::now() + hold < end {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            Counts::add(&counts.refused);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        Counts::add(&counts.silent_opened);
        let mut byte = [0u8; 1];
        // Ends early when the hub drops the connection (its head timeout).
        let _ = tokio::time::timeout(hold, stream.read(&mut byte)).await;
    }
}

/// The hub's memory, descriptors and counters now.
async fn sample(addr: SocketAddr, pid: u32, start: Instant) -> anyhow::Result<Sample> {
    let rss_kib = proc_stats::read(pid).context("the hub has exited")?.rss_kib;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let metrics = match tokio::time::timeout(Duration::from_secs(5), scrape(addr)).await {
        Ok(Ok(text)) => parse_metrics(&text),
        _ => BTreeMap::new(),
    };
    Ok(Sample {
        at_s: start.elapsed().as_secs_f64(),
        rss_kib,
        fds,
        metrics,
    })
}

async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

/// `name value` lines of Prometheus text; a labelled series keeps its first value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    for line in text.lines().filter(|line| line.starts_with("quotehub_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(value) = value.parse::<f64>() {
            metrics.entry(name.to_owned()).or_insert(value);
        }
    }
    metrics
}

/// Counters worth a column, when the hub has them.
const COLUMNS: [&str; 5] = [
    "quotehub_connections",
    "quotehub_slow_consumer_disconnects_total",
    "quotehub_forced_closes_total",
    "quotehub_handshakes_failed_total",
    "quotehub_queue_depth_max",
];

fn csv(samples: &[Sample]) -> String {
    let mut text = format!("seconds,rss_kib,fds,{}\n", COLUMNS.join(","));
    for s in samples {
        let values: Vec<String> = COLUMNS
            .iter()
            .map(|name| s.metrics.get(*name).map_or(String::new(), f64::to_string))
            .collect();
        let _ = writeln!(text, "{:.1},{},{},{}", s.at_s, s.rss_kib, s.fds, values.join(","));
    }
    text
}

fn report(
    args: &BenchArgs,
    minutes: f64,
    cool_down: Duration,
    samples: &[Sample],
    readers: &[ReaderResult],
    counts: &Counts,
) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let first = &samples[0];
    let last = samples.last().unwrap_or(first);
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let fds_peak = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    // The first sample after a minute (or a fifth of the run) of load: the
    // level memory should come back to once the attackers have gone.
    let settle = (minutes * 60.0 / 5.0).min(60.0);
    let loaded = samples.iter().find(|s| s.at_s >= settle).unwrap_or(last);
    let gaps: u64 = readers.iter().map(|r| r.gaps).sum();
    let resets: u64 = readers.iter().map(|r| r.resets).sum();
    let updates: u64 = readers.iter().map(|r| r.updates).sum();
    let dropped: Vec<&str> = readers.iter().filter_map(|r| r.dropped.as_deref()).collect();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let _ = writeln!(out, "# Soak: {minutes} min, one hub, mixed hostile load\n");
    let _ = writeln!(
        out,
        "Hub: the bundled session looped at speed {}; attackers stop {} s before the end.\n",
        args.soak_speed,
        cool_down.as_secs()
    );
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let rows = [
        ("well-behaved readers", format!("{READERS} (half `*`, half 5 symbols)")),
        ("updates they received", updates.to_string()),
        ("gaps they saw (must be 0)", gaps.to_string()),
        ("resets they saw", resets.to_string()),
        ("readers dropped (must be 0)", dropped.len().to_string()),
        (
            "stalled `*` clients opened",
            format!("{} ({STALLED} at once)", load(&counts.stalled_opened)),
        ),
        (
            "flood requests sent",
            format!("{} ({FLOODERS} at once)", load(&counts.flood_requests)),
        ),
        ("churn cycles", load(&counts.churn_cycles).to_string()),
        ("replay sessions", load(&counts.replay_sessions).to_string()),
        (
            "silent connections",
            format!("{} ({SILENT} at once)", load(&counts.silent_opened)),
        ),
        (
            "attacker connections refused or failed",
            load(&counts.refused).to_string(),
        ),
        ("RSS at start", format!("{:.1} MiB", mib(first.rss_kib))),
        (
            "RSS under load (at the settle mark)",
            format!("{:.1} MiB at {:.0} s", mib(loaded.rss_kib), loaded.at_s),
        ),
        ("RSS peak", format!("{:.1} MiB", mib(peak))),
        (
            "RSS at the end (after the cool-down)",
            format!("{:.1} MiB", mib(last.rss_kib)),
        ),
        (
            "descriptors at start / peak / end",
            format!("{} / {fds_peak} / {}", first.fds, last.fds),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    for name in COLUMNS.iter().skip(1) {
        if let Some(value) = last.metrics.get(*name) {
            let _ = writeln!(out, "| `{name}` at the end | {value} |");
        }
    }
    if !dropped.is_empty() {
        let _ = writeln!(out, "\nReaders dropped: {}", dropped.join("; "));
    }
    let _ = writeln!(out, "\nSamples every {} s are in soak.csv.", SAMPLE_EVERY.as_secs());
    out
}
