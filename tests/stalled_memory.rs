//! Hostile row 9, measured: the hub's resident memory before, with, and
//! after 1,500 stalled `"*"` clients, each with a full queue. Ignored by
//! default (it holds about a gigabyte for a few seconds); run with
//! `cargo test --release -p quotehub-suite --test stalled_memory -- --ignored --nocapture`
//! and see benches/README.md for the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, quote, raw_ws, until};
use quotehub_server::ServerConfig;

/// Stalled clients, as in the issue.
const CLIENTS: usize = 1_500;
/// Symbols published, so a conflating client also holds its map.
const SYMBOLS: usize = 500;

/// This process's resident set in KiB (the hub and the clients' sockets; the
/// clients never read, so they hold next to nothing in user space).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures memory of 1,500 stalled clients; run on demand"]
async fn memory_of_stalled_wildcard_clients_is_returned_when_they_leave() {
    let config = ServerConfig {
        // Held until the test lets them go, not dropped on the deadline.
        write_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..ServerConfig::default()
    };
    let capacity = config.queue_capacity;
    let hub = TestHub::start(config).await;
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let symbol = |n: usize| format!("S{n:04}");
    // Every symbol known before anyone connects, as on a running hub.
    for n in 0..SYMBOLS {
        publisher.publish(quote(&symbol(n), "1.00", "1.01", n as u64));
    }
    let before = rss_kib();

    let mut stalled = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut stream = raw_ws::upgrade(&hub).await;
        raw_ws::write_frame(&mut stream, 0x81, br#"{"op":"subscribe","symbols":["*"]}"#).await;
        stalled.push(stream);
    }
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() == CLIENTS).await;
    // Until every queue is full and conflating: each client holds its most.
    let mut ts = SYMBOLS as u64;
    while hub.hub.queued_bytes() < CLIENTS * capacity * 72 {
        for n in 0..SYMBOLS {
            publisher.publish(quote(&symbol(n), "1.00", "1.01", ts));
            ts += 1;
        }
        tokio::task::yield_now().await;
    }
    let with = rss_kib();
    let queued = hub.hub.queued_bytes();

    drop(stalled);
    until(|| hub.hub.client_count() == 0).await;
    // Every connection's task has ended once the server has (their last
    // writers may still be within their close grace until then).
    let table = hub.hub.table().clone();
    hub.shutdown().await;
    let after = rss_kib();
    assert_eq!(table.wildcard_count(), 0);
    println!(
        "RSS: before {before} KiB, with {CLIENTS} stalled clients {with} KiB ({} KiB each; {} KiB queued each), after {after} KiB",
        (with - before) / CLIENTS as u64,
        queued / 1024 / CLIENTS,
    );
    assert!(with > before, "the clients held memory");
    // Each client's share, whatever it is queued for: its queue (8,192
    // records of 72 B), the batch its writer is stuck on (4,096 records),
    // its conflated symbols, its task and buffers. README's ceiling.
    let each = (with - before) / CLIENTS as u64;
    assert!(each <= 1_300, "{each} KiB per stalled client");
    // What the hub held is freed when they leave; whether the allocator
    // gives it back to the system is its choice. glibc keeps freed chunks
    // of its heaps (see benches/README.md) unless told to map buffers of
    // 32 KiB and more on their own, as below; then they must go back.
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.mmap_threshold=32768"));
    if tuned {
        assert!(
            after - before <= (with - before) / 10,
            "{} KiB of {} KiB not returned",
            after - before,
            with - before
        );
    }
}
