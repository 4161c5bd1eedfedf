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
//! It was ignored for two later failures. First, on this loaded 2-core
//! machine an edge's reader of a busy symbol fell more than the stream's
//! per-symbol limit (`records_per_symbol`, 64) behind through its consumer
//! (seen: QQQ 95 then 102); edges now read live records over core NATS
//! (2026-12-06), and that is gone. Second, 4 of 20 runs "stalled" (a
//! client got nothing for 30 s). Reproduced on 2026-12-06 (3 of 3 runs, 3
//! at once beside a build and 2 `yes`): the named client had every record,
//! and the `"*"` client of a late round got nothing, because under load
//! the 20 rounds outlast the 7.5 s replay and a `"*"` client that
//! subscribes after the feed ended gets nothing more. The rounds now stop
//! once the named client has everything; with that, the code before the
//! edge fixes of that day passed 18 of 18 runs (up to 6 at once, 6 `yes`)
//! and the code after them 52 of 54 (up to 10 at once, 8 `yes`, load
//! 25-33). The 2 failures, in the heaviest round (each run 78 s instead of
//! 10), were a named client that got nothing more near the replay's end,
//! one after NVDA 681 then 683, QQQ 695 then 697, SPY 762 then 764 within
//! 0.4 s. The edge had no repair and no reconnect, its readers read live
//! with no lag, and a named reader passes a live record only if the
//! stream's previous record of the subject is one it has read: so the
//! stream never held those three records, and took nothing more at the
//! end. The ingest hub is the suspect: the jumps fit the known limit in
//! `quotehub-bus/src/ingest.rs` (a record whose ack failed is re-sent
//! after later records of its symbol were stored, and the edge refuses it
//! as behind), which the same day was seen doing exactly that in
//! `bus_hubs::a_memory_stream_is_made_again_…` (it fails about 1 run in 6
//! here, before and after the edge fixes: the re-made stream held AAPL
//! 52..=60 at positions 1..=17 and 21..=51 after them, so the edge's table
//! jumped to 52); a lease that lapses after 1.25 s without a write on a
//! starved machine is another candidate. That evening the ingest hub
//! stopped both ways a record lands behind later ones of its symbol: after
//! a reconnect it sends nothing until its stream keeper has made sure of
//! the stream (records sent before a memory stream was made again failed,
//! later ones were stored), and it does not re-send a failed record once
//! the stream holds it or a later one of its symbol (`overtaken.rs`): the
//! memory-stream test then passed 12 of 12 runs, 3 at once beside 2 `yes`,
//! and this one 3 of 3 beside a `yes`. The monitor below now prints the
//! ingest hub's figures and lease counts, and a stall prints both hubs'
//! logs (its warnings on failed acks among them). The edge's
//! old repair storm (every reader repairing at each dropped message) is
//! fixed and tested in `tests/bus_live.rs`.
//!
//! A passing run once read `quotehub_passthrough_gaps_total` 1 at
//! start-up. 15 runs on 2026-12-06 (8 alone, 4 beside a `yes`, 3 beside
//! two or three, the machine shared with a build: load 4-10) counted none at
//! start-up; 2 failed, both with the ingest hub losing its lease under
//! load (`Unreachable`): 8 gaps from its own takeovers in one, a stall
//! with none in the other. In a passing run such a jump reached no
//! client: the named client holds every symbol the ingest hub publishes
//! and saw no gap from its snapshots on, so the jump came before its
//! subscribe was answered (only its readers, reading their history, on
//! the edge): only a count. The case that can reach clients, a reader in
//! step whose own numbers jump past what another reader of the symbol has
//! read and not yet passed, is `pass_order.rs`'s TC2. The gaps from the
//! ingest hub's own takeovers after losing its lease are reproduced by
//! `bus_paused_ingest.rs` (its window kept only 64 records per symbol, and
//! a starved or paused hub sequences more than that of a busy symbol
//! before it takes the lease back; fixed 2026-12-06); one run here beside
//! three `yes` lost no lease, so that fix is not confirmed here. A run whose edge
//! counts a jump prints both hubs' warnings (the reader's warning names
//! the symbol and numbers). Run alone:
//! `cargo test -p quotehub --test bus_edge_overlap -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, HubProcess, Nats, bundled_feed, feed_events, have_nats, http_get};
use quotehub_client::Client;

/// Busy symbols and quiet ones (one with a `.`): 15,000 events.
const SYMBOLS: [&str; 6] = ["SPY", "NVDA", "QQQ", "ZVZZT", "INTU", "BF.B"];

/// `"*"` subscriptions made and dropped while the named client reads.
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_and_wildcard_clients_on_one_edge_get_every_record_once_in_order() {
    if !have_nats("bus_edge_overlap") {
        return;
    }
    let expected = feed_events(&SYMBOLS);
    let nats = Nats::start("edge_overlap");
    let feed = bundled_feed().display().to_string();
    let symbols = SYMBOLS.join(",");
    let ingest = HubProcess::start(
        "ingest",
        &nats,
        "ingest",
        "ingest",
        "",
        &["--feed", &feed, "--symbols", &symbols, "--speed", "40", "--no-loop"],
    );
    let edge = HubProcess::start("edge", &nats, "edge", "edge", "", &[]);
    let monitor = tokio::spawn(monitor(ingest.port, edge.port));
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
            eprintln!("the ingest hub's log:\n{}", ingest.log());
            eprintln!("the edge's log:\n{}", edge.log());
            std::panic::resume_unwind(error.into_panic());
        }
    };
    toggler.await.unwrap();
    monitor.abort();
    eprintln!("at the end: {}", figures(ingest.port, edge.port).await);
    if edge.metric("quotehub_passthrough_gaps_total").await.unwrap_or(0) > 0 {
        eprintln!("the edge counted a jump; its warnings:\n{}", warnings(&edge));
        eprintln!("the ingest hub's warnings:\n{}", warnings(&ingest));
    }
    named.assert_whole(&expected);
}

/// A hub's warning and error lines.
fn warnings(hub: &HubProcess) -> String {
    let log = hub.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    lines.join("\n")
}

/// The ingest hub's and the edge's bus figures, one line.
async fn figures(ingest: u16, edge: u16) -> String {
    const INGEST: [&str; 7] = [
        "quotehub_bus_published_records_total",
        "quotehub_bus_ingest_dropped_total",
        "quotehub_bus_ingest_buffered_bytes",
        "quotehub_bus_connects_total",
        "quotehub_bus_lease_active",
        "quotehub_bus_lease_losses_total",
        "quotehub_bus_takeovers_total",
    ];
    format!(
        "ingest: {} edge: {}",
        metrics(ingest, &INGEST).await,
        metrics(edge, &EDGE).await
    )
}

/// The edge's bus readers' figures.
const EDGE: [&str; 9] = [
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

/// The values of `/metrics` lines `shown` of the hub on `port`, one line.
async fn metrics(port: u16, shown: &[&str]) -> String {
    let body = http_get(port, "/metrics").await;
    shown
        .iter()
        .map(|name| {
            let value = body
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or("?");
            format!(
                "{}={value}",
                name.trim_start_matches("quotehub_").trim_start_matches("bus_")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints the edge's figures every half second (shown when the test fails):
/// a stall reads differently as a wedged reader (received flat, lag flat)
/// or a repair storm (repairs climbing).
async fn monitor(ingest: u16, edge: u16) {
    let start = std::time::Instant::now();
    loop {
        // Sampling a process from outside: there is no event to wait on.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        eprintln!(
            "{:>6.1}s {}",
            start.elapsed().as_secs_f64(),
            figures(ingest, edge).await
        );
    }
}
