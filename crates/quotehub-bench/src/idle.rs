//! `quotehub-bench --idle-connections N`: the hub's resident memory per
//! idle subscribed connection: RSS with N clients each subscribed to one
//! symbol, less RSS before they came, over N.

use std::time::Duration;

use anyhow::Context;
use quotehub_proto::now_ns;

use super::clients::Fleet;
use super::feeder::{FeedFormat, Feeder};
use super::proc_stats;
use super::report::{IdleResult, Machine, Report, Settings};
use super::target::{self, Target};
use super::workload::{Layout, Workload};
use crate::cli::BenchArgs;

/// The design's target.
const TARGET_KIB: f64 = 16.0;
/// Time for memory to settle after connections open (allocator, kernel).
const SETTLE: Duration = Duration::from_secs(2);

pub fn run(args: &BenchArgs, connections: usize, command: String) -> anyhow::Result<()> {
    anyhow::ensure!(args.url.is_none(), "--idle-connections starts its own hub; drop --url");
    let workload = Workload::new(connections, args.symbols, 1, Layout::Blocks)?;
    target::raise_file_limit(connections as u64 + 256)?;
    let write_gap = Duration::from_micros(args.feed_write_gap_us);
    let mut feeder = Feeder::listen(
        "127.0.0.1:0".parse()?,
        FeedFormat::JsonLines,
        workload.clone(),
        write_gap,
    )?;
    let binary = target::hub_binary(args.hub_binary.as_deref())?;
    let mut hub = Target::start_hub(&binary, feeder.local_addr()?, &args.out, connections + 256)?;
    feeder
        .accept(Duration::from_secs(15))
        .context("the hub did not connect to the feed")?;
    let pid = hub.pid().context("no hub process")?;
    std::thread::sleep(SETTLE);
    let before = proc_stats::read(pid).context("reading the hub's /proc status")?;
    let source_addrs = args
        .source_addrs
        .unwrap_or_else(|| super::clients::default_source_addrs(connections));
    eprintln!("opening {connections} idle subscribed connections to the hub");
    let fleet = Fleet::start(&hub.endpoint, &workload, args.client_threads, source_addrs)?;
    fleet
        .wait_ready(Duration::from_secs(120), |ready| {
            if ready.is_multiple_of(1_000) && ready > 0 {
                eprintln!("  {ready} of {connections} subscribed");
            }
        })
        .with_context(|| format!("opening connections\n{}", hub.log_tail()))?;
    std::thread::sleep(SETTLE);
    let after = proc_stats::read(pid).context("reading the hub's /proc status")?;
    let disconnected = fleet.counters.disconnected.load(std::sync::atomic::Ordering::Relaxed);
    drop(fleet.stop());
    hub.stop();
    anyhow::ensure!(
        disconnected == 0,
        "{disconnected} idle connections were closed by the hub"
    );
    let per_connection_kib = after.rss_kib.saturating_sub(before.rss_kib) as f64 / connections as f64;
    let mut report = Report {
        generated_unix_s: now_ns() / 1_000_000_000,
        machine: Machine::here(),
        settings: Settings {
            command,
            clients: connections,
            symbols: args.symbols,
            symbols_per_client: 1,
            subscriptions: Layout::Blocks,
            distinct_sets: workload.distinct_sets(),
            fanout: workload.fanout(),
            mode: "idle connections".into(),
            warmup_s: 0.0,
            duration_s: 0.0,
            feed_write_gap_us: args.feed_write_gap_us,
            pinning: None,
            moderate_deliveries: Vec::new(),
        },
        targets: Vec::new(),
        ratios: Vec::new(),
        idle: Some(IdleResult {
            connections,
            rss_before_mib: before.rss_kib as f64 / 1024.0,
            rss_after_mib: after.rss_kib as f64 / 1024.0,
            per_connection_kib,
            target_kib: TARGET_KIB,
            met: per_connection_kib <= TARGET_KIB,
        }),
        notes: vec![format!(
            "Each connection holds a WebSocket subscribed to one symbol; the hub's RSS (VmRSS) is read {SETTLE:?} after \
             the last subscribe was acknowledged."
        )],
    };
    report.compute_ratios();
    report.write(&args.out)?;
    println!("{}", report.markdown());
    println!("report: {}", args.out.join("report.md").display());
    Ok(())
}
