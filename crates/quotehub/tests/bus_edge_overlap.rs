//! An edge serving the same symbols to a client that names them and to
//! clients of `"*"` that come and go (bounded: 20 rounds over a 7.5 s
//! replay). Each `"*"` subscription starts a reader of every subject beside
//! the named symbols' readers, so two readers publish the same symbol's
//! records into the edge's table. The named client must still get every
//! record once, in order, with no gap. It failed every run (3 of 3) while
//! the `"*"` reader started at each subject's last record: when that was
//! ahead of where the named reader had got to, the symbol jumped and the
//! named reader's records between were refused (seen: NVDA 1377 then 1383,
//! none conflated); and a reader handed a record to the client queues after
//! leaving the symbol's lock, so two readers could deliver out of order
//! (seen: 9, 11, 10). Found by bus_edge_death.rs; it is the edge's reading,
//! not an edge's death.
//!
//! Still ignored: it fails about 1 run in 2 here for a third reason, which
//! it shares with a named client alone (with `ROUNDS = 0` it failed 2 of 4
//! runs): on this loaded 2-core machine an edge's reader of a busy symbol
//! (SPY, NVDA, QQQ at 40×) falls more than the stream's per-symbol limit
//! (`records_per_symbol`, 64) behind, the stream drops the records it has
//! not yet read, and its client sees the numbers skipped (seen: QQQ 95 then
//! 102, with 63 records still pending for the reader). With edges reading
//! live records over core NATS (2026-12-06) it passed 16 of 20 runs at load
//! 5–10 (with CPU burners and a saturation bench beside it too); the 4 that
//! failed, all while another engineer's saturation benchmarks ran, were a
//! stall instead: the named client got nothing for 30 s mid-replay after
//! 3–5 gaps (e.g. NVDA at 4008, QQQ at 3712), and once a `"*"` client got
//! nothing at all. Not yet
//! explained; the panic now prints where each symbol had got to. Run:
//! `cargo test -p quotehub --test bus_edge_overlap -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, HubProcess, Nats, bundled_feed, feed_events, have_nats, http_get};
use quotehub_client::Client;

/// Busy symbols and quiet ones (one with a `.`): 15,000 events.
const SYMBOLS: [&str; 6] = ["SPY", "NVDA", "QQQ", "ZVZZT", "INTU", "BF.B"];

/// `"*"` subscriptions made and dropped while the named client reads.
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails about 1 run in 2 on a loaded machine: a reader more than records_per_symbol behind a busy subject loses what the stream dropped (see the file's doc)"]
async fn named_and_wildcard_clients_on_one_edge_get_every_record_once_in_order() {
    if !have_nats("bus_edge_overlap") {
        return;
    }
    let expected = feed_events(&SYMBOLS);
    let nats = Nats::start("edge_overlap");
    let feed = bundled_feed().display().to_string();
    let symbols = SYMBOLS.join(",");
    let _ingest = HubProcess::start(
        "ingest",
        &nats,
        "ingest",
        "ingest",
        "",
        &["--feed", &feed, "--symbols", &symbols, "--speed", "40", "--no-loop"],
    );
    let edge = HubProcess::start("edge", &nats, "edge", "edge", "", &[]);
    let monitor = tokio::spawn(monitor(edge.port));
    let mut named = Collector::new("named", Client::connect(&edge.url()).await.unwrap());
    named.client.subscribe(&SYMBOLS).await.unwrap();
    let url = edge.url();
    // Set once the named client has every record: the feed has ended, and
    // a `"*"` client that subscribes after that gets nothing more (on a
    // slow machine the rounds outlast the replay: that was not a stall).
    let (finished, mut done) = tokio::sync::watch::channel(false);
    // A new connection each round: requests on one are rate-limited.
    let toggler = tokio::spawn(async move {
        for _ in 0..ROUNDS {
            if *done.borrow() {
                return;
            }
            let mut all = Collector::new("all", Client::connect(&url).await.unwrap());
            all.client.subscribe(&["*"]).await.unwrap();
            for _ in 0..20 {
                tokio::select! {
                    () = all.read_one() => {}
                    _ = done.wait_for(|done| *done) => return,
                }
            }
        }
    });
    // On its own task, so that a stall's panic can show the edge's log.
    let reading = tokio::spawn(async move {
        named.read_to_end(&expected).await;
        finished.send_replace(true);
        (named, expected)
    });
    let (named, expected) = match reading.await {
        Ok(done) => done,
        Err(error) => {
            eprintln!("the edge's log:\n{}", edge.log());
            std::panic::resume_unwind(error.into_panic());
        }
    };
    toggler.await.unwrap();
    monitor.abort();
    eprintln!("at the end: {}", edge_metrics(edge.port).await);
    named.assert_whole(&expected);
}

/// The edge's bus readers' figures, one line.
async fn edge_metrics(port: u16) -> String {
    const SHOWN: [&str; 9] = [
        "quotehub_bus_connects_total",
        "quotehub_bus_readers",
        "quotehub_bus_received_records_total",
        "quotehub_bus_edge_lag_records",
        "quotehub_bus_edge_repairs_total",
        "quotehub_bus_edge_repeats_total",
        "quotehub_bus_edge_ahead_records_total",
        "quotehub_bus_edge_foreign_records_total",
        "quotehub_passthrough_gaps_total",
    ];
    let body = http_get(port, "/metrics").await;
    SHOWN
        .iter()
        .map(|name| {
            let value = body
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or("?");
            format!("{}={value}", name.trim_start_matches("quotehub_").trim_start_matches("bus_"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints the edge's figures every half second (shown when the test fails):
/// a stall reads differently as a wedged reader (received flat, lag flat)
/// or a repair storm (repairs climbing).
async fn monitor(port: u16) {
    let start = std::time::Instant::now();
    loop {
        // Sampling a process from outside: there is no event to wait on.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        eprintln!("{:>6.1}s {}", start.elapsed().as_secs_f64(), edge_metrics(port).await);
    }
}
