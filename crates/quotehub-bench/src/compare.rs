//! The comparison: for each target in turn (the hub, with `--bus` the hub
//! over NATS, the raw-TCP floor, the Node `ws` peer, the Bun pub/sub peer)
//! it starts the target as a
//! child process, lets it connect to an open-loop feed, connects the same
//! clients with the same subscriptions, drives the same quotes through it
//! phase by phase, and measures at the clients.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use quotehub_proto::now_ns;

use crate::cli::BenchArgs;
use crate::clients::{self, Fleet};
use crate::feeder::{FeedFormat, Feeder, Phase};
use crate::report::{EdgeResult, Machine, PhaseResult, ProcessResult, Report, Settings, TargetResult};
use crate::target::{self, Kind, Target};
use crate::workload::Workload;
use crate::{bus, floor, idle, pin, proc_stats, progress, repeat, report, soak, steps, tally};

/// After a phase, how long deliveries may stall before what is missing counts as dropped.
const DRAIN_STALL: Duration = Duration::from_secs(3);
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// What rates a target is driven at.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Fixed {
        rate: f64,
    },
    /// Double from `start` until saturated, then measure latency at `latency_rate`
    /// (or, for the hub, at half of its own saturation rate).
    Saturation {
        start: f64,
        latency_rate: Option<f64>,
    },
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(minutes) = args.soak {
        return soak::run(&args, minutes);
    }
    if let Some(connections) = args.idle_connections {
        return idle::run(&args, connections, command);
    }
    if args.pin {
        // Before the first thread: threads inherit the main thread's CPUs.
        let pinning = pin::pin_this_run()?;
        eprintln!("{}", pinning.describe());
    }
    if args.repeat <= 1 {
        let report = compare(&args, command)?;
        println!("{}", report.markdown());
        println!("report: {}", args.out.join("report.md").display());
        return Ok(());
    }
    let mut reports = Vec::new();
    for run in 1..=args.repeat {
        eprintln!("== run {run} of {}", args.repeat);
        let mut run_args = args.clone();
        run_args.out = args.out.join(format!("run-{run}"));
        std::fs::create_dir_all(&run_args.out).with_context(|| format!("creating {}", run_args.out.display()))?;
        reports.push(compare(&run_args, command.clone())?);
    }
    let summary = repeat::Summary::of(&reports, command);
    summary.write(&args.out)?;
    println!("{}", summary.markdown());
    println!("summary: {}", args.out.join("summary.md").display());
    Ok(())
}

/// One comparison: the hub, then the floor and the peer, into `args.out`.
fn compare(args: &BenchArgs, command: String) -> anyhow::Result<Report> {
    let workload = Workload::new(args.clients, args.symbols, args.symbols_per_client, args.subscriptions)?;
    target::raise_file_limit(args.clients as u64 + 256)?;
    let mut report = Report {
        generated_unix_s: now_ns() / 1_000_000_000,
        machine: Machine::here(),
        settings: Settings {
            command,
            clients: args.clients,
            symbols: args.symbols,
            symbols_per_client: args.symbols_per_client,
            subscriptions: args.subscriptions,
            distinct_sets: workload.distinct_sets(),
            fanout: workload.fanout(),
            mode: if args.saturation { "saturation" } else { "fixed rate" }.into(),
            warmup_s: args.warmup,
            duration_s: args.duration,
            feed_write_gap_us: args.feed_write_gap_us,
            pinning: pin::current().map(pin::Pinning::describe),
            moderate_deliveries: if args.saturation {
                moderate_loads(args)
            } else {
                Vec::new()
            },
        },
        targets: Vec::new(),
        ratios: Vec::new(),
        idle: None,
        notes: Vec::new(),
    };
    let mut plan = if args.saturation {
        Plan::Saturation {
            start: args.rate,
            latency_rate: None,
        }
    } else {
        Plan::Fixed { rate: args.rate }
    };
    let hub = if args.skip_hub {
        TargetResult::skipped(Kind::Hub, "--skip-hub was given".into())
    } else {
        run_target(Kind::Hub, args, &workload, plan)?
    };
    if let Plan::Saturation { start, .. } = plan {
        plan = Plan::Saturation {
            start,
            latency_rate: hub.phase(report::HALF).map(|p| p.rate),
        };
    }
    report.targets.push(hub);
    if args.bus {
        let result = run_target(Kind::Bus, args, &workload, plan)?;
        if let Some(reason) = &result.skipped {
            eprintln!("{}: skipped: {reason}", Kind::Bus.label());
        }
        report.targets.push(result);
    }
    for kind in [Kind::Floor, Kind::Peer, Kind::Bun] {
        let skip = match kind {
            Kind::Floor => args.skip_floor.then_some("--skip-floor"),
            Kind::Bun => args.skip_bun.then_some("--skip-bun"),
            _ => args.skip_peer.then_some("--skip-peer"),
        };
        let result = match skip {
            Some(flag) => TargetResult::skipped(kind, format!("{flag} was given")),
            None => run_target(kind, args, &workload, plan)?,
        };
        if let Some(reason) = &result.skipped {
            eprintln!("{}: skipped: {reason}", kind.label());
        }
        report.targets.push(result);
    }
    report.machine.load_average = Machine::here().load_average;
    report.notes.push(
        "Every process (clients, feed, target) shares this machine's cores; the figures are relative to a floor \
         and a peer measured the same way in the same run."
            .into(),
    );
    report.compute_ratios();
    report.write(&args.out)?;
    Ok(report)
}

/// One start of a target: the phases it is driven through.
#[derive(Debug, Clone)]
enum Stint {
    /// One phase at this rate.
    Rate { rate: f64, purpose: String },
    /// Double the rate from `start` until deliveries fall behind (`steps.rs`).
    Steps { start: f64 },
}

/// What one stint delivered.
struct StintTotals {
    published: u64,
    expected: u64,
    disconnects: usize,
    tallies: tally::Tally,
    /// The floor's count of the bytes it built and queued.
    floor_sharing: Option<floor::Sharing>,
}

/// Runs one target through its plan, or reports it skipped. In a saturation
/// run the latency phase and each moderate load get a fresh target, so the
/// backlog and the memory of the saturating steps do not weigh on them.
fn run_target(kind: Kind, args: &BenchArgs, workload: &Workload, plan: Plan) -> anyhow::Result<TargetResult> {
    let mut result = TargetResult::skipped(kind, String::new());
    result.skipped = None;
    let first = match plan {
        Plan::Fixed { rate } => Stint::Rate {
            rate,
            purpose: report::FIXED.into(),
        },
        Plan::Saturation { start, .. } => Stint::Steps { start },
    };
    // Run in order from the back.
    let mut stints = vec![first];
    while let Some(stint) = stints.pop() {
        let steps = matches!(stint, Stint::Steps { .. });
        let totals = match run_stint(kind, args, workload, stint, &mut result.phases)? {
            Ok(totals) => totals,
            Err(reason) => return Ok(TargetResult::skipped(kind, reason)),
        };
        result.published += totals.published;
        result.expected_updates += totals.expected;
        result.delivered_updates += totals.tallies.updates;
        result.records_received += totals.tallies.records;
        result.conflated_records += totals.tallies.conflated_records;
        result.conflated_updates += totals.tallies.conflated_updates;
        result.malformed_messages += totals.tallies.malformed;
        result.gap_updates += totals.tallies.gap_updates;
        result.disconnects += totals.disconnects;
        if let Some(sharing) = totals.floor_sharing {
            result.floor_sharing.get_or_insert_default().add(&sharing);
        }
        if let (true, Plan::Saturation { latency_rate, .. }) = (steps, plan) {
            for &deliveries in moderate_loads(args).iter().rev() {
                stints.push(Stint::Rate {
                    rate: deliveries / workload.fanout(),
                    purpose: report::moderate(deliveries),
                });
            }
            let rate = latency_rate.unwrap_or_else(|| {
                let peak = saturation_phase(&result.phases, args.max_step_p50_ms).map_or(0.0, |p| p.deliveries_per_s);
                peak / workload.fanout() / 2.0
            });
            stints.push(Stint::Rate {
                rate: rate.max(1.0),
                purpose: report::HALF.into(),
            });
        }
    }
    result.dropped_updates = result.expected_updates.saturating_sub(result.delivered_updates);
    if let Some(peak) = saturation_phase(&result.phases, args.max_step_p50_ms) {
        result.peak_deliveries_per_s = peak.deliveries_per_s;
        result.peak_rate = peak.rate;
    }
    Ok(result)
}

/// The moderate loads to measure, deliveries/s (a 0 asks for none).
fn moderate_loads(args: &BenchArgs) -> Vec<f64> {
    args.moderate_deliveries
        .iter()
        .copied()
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect()
}

/// The phase whose deliveries/s is the target's figure: the best of the
/// saturation steps (or the fixed-rate phase) whose p50 stayed within
/// `max_p50_ms`; the best of them all if none did.
fn saturation_phase(phases: &[PhaseResult], max_p50_ms: f64) -> Option<&PhaseResult> {
    let steps = steps::Steps::new(0.0, 0, 0, max_p50_ms * 1e3);
    let candidates = || {
        phases
            .iter()
            .filter(|p| p.purpose == report::STEP || p.purpose == report::FIXED)
    };
    let best = |within: bool| {
        candidates()
            .filter(|p| !within || steps.within_latency(p.latency.as_ref().map(|l| l.p50_us)))
            .max_by(|a, b| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
    };
    best(true).or_else(|| best(false))
}

/// Starts the target, connects the clients, runs the stint's phases, stops it all.
fn run_stint(
    kind: Kind,
    args: &BenchArgs,
    workload: &Workload,
    stint: Stint,
    phases: &mut Vec<PhaseResult>,
) -> anyhow::Result<Result<StintTotals, String>> {
    let external = kind == Kind::Hub && args.url.is_some();
    let listen = if external {
        args.feed_listen
    } else {
        "127.0.0.1:0".parse()?
    };
    // The hub and the peer decode the same JSON lines; the floor, a floor,
    // only forwards the records it would send.
    let format = if kind == Kind::Floor {
        FeedFormat::Records
    } else {
        FeedFormat::JsonLines
    };
    let write_gap = Duration::from_micros(args.feed_write_gap_us);
    let mut feeder = Feeder::listen(listen, format, workload.clone(), write_gap)?;
    let feed_addr = feeder.local_addr()?;
    eprintln!("{}: starting", kind.label());
    let mut target = match (kind, &args.url) {
        (Kind::Bus, _) => {
            let hub = target::hub_binary(args.hub_binary.as_deref())?;
            // The deployment waits for its ingest hub to connect to the feed.
            match bus::Deployment::start(
                &hub,
                &mut feeder,
                &args.out,
                args.clients + 256,
                args.bus_storage.as_deref(),
            )? {
                Ok(deployment) => Running::Bus(deployment),
                Err(reason) => return Ok(Err(reason)),
            }
        }
        (Kind::Hub, Some(url)) => {
            eprintln!(
                "waiting for the hub at {url} to connect to the feed: start it with `quotehub serve --feed tcp://{feed_addr}`"
            );
            Running::One(Target::external_hub(url, args.api_key.clone())?)
        }
        (Kind::Hub, None) => {
            let hub = target::hub_binary(args.hub_binary.as_deref())?;
            Running::One(Target::start_hub(&hub, feed_addr, &args.out, args.clients + 256)?)
        }
        (Kind::Floor, _) => Running::One(Target::start_floor(feed_addr, &args.out)?),
        (Kind::Peer, _) => match Target::start_peer(feed_addr, &args.out)? {
            Ok(target) => Running::One(target),
            Err(reason) => return Ok(Err(reason)),
        },
        (Kind::Bun, _) => match Target::start_bun(feed_addr, &args.out)? {
            Ok(target) => Running::One(target),
            Err(reason) => return Ok(Err(reason)),
        },
    };
    if let Running::One(_) = target {
        let accept_timeout = if external {
            Duration::from_secs(120)
        } else {
            Duration::from_secs(15)
        };
        feeder
            .accept(accept_timeout)
            .with_context(|| format!("{}:\n{}", kind.label(), target.log_tail()))?;
    }
    let samplers: Vec<(String, Option<proc_stats::Sampler>)> = target
        .processes()
        .into_iter()
        .map(|(name, pid)| (name, pid.map(proc_stats::Sampler::start)))
        .collect();
    let bench_sampler = proc_stats::Sampler::start(std::process::id());
    let source_addrs = args
        .source_addrs
        .unwrap_or_else(|| clients::default_source_addrs(args.clients));
    let fleet = Fleet::start_split(&target.endpoints(), workload, args.client_threads, source_addrs)?;
    let connect_timeout = Duration::from_secs(30) + Duration::from_millis(10 * args.clients as u64);
    fleet
        .wait_ready(connect_timeout, |ready| {
            if args.clients >= 1_000 && ready.is_multiple_of(1_000) && ready > 0 {
                eprintln!("  {ready} of {} clients subscribed", args.clients);
            }
        })
        .with_context(|| format!("{}: connecting clients\n{}", kind.label(), target.log_tail()))?;

    let mut runner = Runner {
        kind,
        args,
        workload,
        feeder: &mut feeder,
        fleet: &fleet,
        samplers: &samplers,
        bench_sampler: &bench_sampler,
        first_number: phases.len(),
        phases,
    };
    match stint {
        Stint::Rate { rate, purpose } => {
            runner.phase(rate, &purpose)?;
        }
        Stint::Steps { start } => {
            let mut steps = steps::Steps::new(start, args.max_steps, args.refine_steps, args.max_step_p50_ms * 1e3);
            while let Some(rate) = steps.next_rate() {
                let phase = runner.phase(rate, report::STEP)?;
                steps.record(
                    phase.offered_deliveries_per_s,
                    phase.deliveries_per_s,
                    phase.latency.as_ref().map(|l| l.p50_us),
                );
            }
        }
    }
    let published = feeder.published.load(Ordering::Relaxed);
    let disconnects = fleet.counters.disconnected.load(Ordering::Relaxed);
    let first_error = fleet.counters.first_error();
    let tallies = fleet.stop();
    target.stop();
    drop(feeder);
    let floor_sharing = match &target {
        Running::One(one) if kind == Kind::Floor => floor::Sharing::from_log(&one.log),
        _ => None,
    };
    if let Some(error) = first_error.filter(|_| disconnects > 0) {
        eprintln!("{}: {disconnects} clients disconnected; first: {error}", kind.label());
    }
    Ok(Ok(StintTotals {
        published,
        expected: workload.expected_deliveries(published),
        disconnects,
        tallies,
        floor_sharing,
    }))
}

/// Drives one connected target through its phases.
struct Runner<'a> {
    kind: Kind,
    args: &'a BenchArgs,
    workload: &'a Workload,
    feeder: &'a mut Feeder,
    fleet: &'a Fleet,
    /// The target's processes (one, or the bus deployment's), each sampled
    /// (none for a hub given by --url).
    samplers: &'a [(String, Option<proc_stats::Sampler>)],
    bench_sampler: &'a proc_stats::Sampler,
    /// Phases of earlier stints; this stint's are numbered from 1 for its
    /// clients (the number travels in the quotes) and listed after them.
    first_number: usize,
    phases: &'a mut Vec<PhaseResult>,
}

impl Runner<'_> {
    /// Feeds one phase, waits for its deliveries, and measures it.
    fn phase(&mut self, rate: f64, purpose: &str) -> anyhow::Result<PhaseResult> {
        let number = u32::try_from(self.phases.len() - self.first_number + 1).unwrap_or(u32::MAX);
        let listed = u32::try_from(self.phases.len() + 1).unwrap_or(u32::MAX);
        let phase = Phase {
            number,
            rate,
            warmup: Duration::from_secs_f64(self.args.warmup.max(0.0)),
            duration: Duration::from_secs_f64(self.args.duration.max(0.1)),
        };
        let total = (phase.warmup + phase.duration).as_secs_f64();
        let started = Instant::now();
        let published = Arc::clone(&self.feeder.published);
        let counters = Arc::clone(&self.fleet.counters);
        let workload = self.workload.clone();
        let label = format!(
            "{} phase {listed} ({purpose}, {} quotes/s)",
            self.kind.label(),
            report::number(rate)
        );
        let ticker = progress::Ticker::start(move || {
            let published = published.load(Ordering::Relaxed);
            let owed = workload.expected_deliveries(published);
            let got = counters.updates.load(Ordering::Relaxed);
            let elapsed = started.elapsed().as_secs_f64();
            format!(
                "{label} {} {:.0}/{total:.0} s  published {published}  delivered {:.1}%",
                progress::bar(elapsed, total, 20),
                elapsed.min(total),
                if owed > 0 {
                    100.0 * got as f64 / owed as f64
                } else {
                    100.0
                }
            )
        });
        let fed = self.feeder.run_phase(phase);
        let drained = fed.as_ref().ok().map(|fed| self.drain(fed.published_total));
        drop(ticker);
        let fed = fed.with_context(|| format!("{} phase {number}", self.kind.label()))?;
        let drained_at = drained.unwrap_or_else(now_ns);
        let tallies = self.fleet.snapshot();
        let measured = tallies.phases.get(number as usize).and_then(Option::as_ref);
        let (records, deliveries_per_s) = measured.map_or((0, 0.0), |m| (m.records, delivery_rate(m, rate)));
        let usage_end = measured.map_or(fed.measure_end_ns, |m| m.last_receive_ns.max(fed.measure_end_ns));
        let window = (fed.measure_start_ns, usage_end.min(drained_at));
        let per_process: Vec<(String, Option<proc_stats::Usage>)> = self
            .samplers
            .iter()
            .map(|(name, sampler)| (name.clone(), sampler.as_ref().and_then(|s| s.usage(window.0, window.1))))
            .collect();
        let usage = proc_stats::Usage::sum(per_process.iter().map(|(_, usage)| *usage));
        let cpu_ns = |usage: Option<proc_stats::Usage>| {
            // CPU per second over deliveries per second: both over the
            // measured window, so a target's idle start-up is not in it.
            usage
                .filter(|_| deliveries_per_s > 0.0)
                .map(|u| u.cpu_percent / 100.0 * 1e9 / deliveries_per_s)
        };
        let processes = if self.kind == Kind::Bus {
            per_process
                .into_iter()
                .map(|(name, usage)| ProcessResult {
                    name,
                    usage,
                    cpu_ns_per_delivery: cpu_ns(usage),
                })
                .collect()
        } else {
            Vec::new()
        };
        let edges = if self.kind == Kind::Bus {
            (0..self.fleet.endpoints)
                .map(|part| {
                    let tally = self.fleet.snapshot_of(part);
                    let measured = tally.phases.get(number as usize).and_then(Option::as_ref);
                    EdgeResult {
                        name: format!("edge {}", part + 1),
                        records: measured.map_or(0, |m| m.records),
                        deliveries_per_s: measured.map_or(0.0, |m| delivery_rate(m, rate)),
                        latency: measured.and_then(|m| report::Percentiles::of(&m.latency)),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let result = PhaseResult {
            number: listed,
            purpose: purpose.into(),
            rate,
            offered_deliveries_per_s: rate * self.workload.fanout(),
            duration_s: phase.duration.as_secs_f64(),
            deliveries_per_s,
            records,
            expected_records: self.workload.expected_deliveries(fed.published_total)
                - self.workload.expected_deliveries(fed.published_total - fed.measured),
            latency: measured.and_then(|m| report::Percentiles::of(&m.latency)),
            hub_latency: measured.and_then(|m| report::Percentiles::of(&m.hub_latency)),
            wire_latency: measured.and_then(|m| report::Percentiles::of(&m.wire_latency)),
            edges,
            processes,
            usage,
            cpu_ns_per_delivery: cpu_ns(usage),
            bench_usage: self.bench_sampler.usage(window.0, window.1),
            records_per_message: measured.map_or(0.0, |m| m.records as f64 / m.messages.max(1) as f64),
            feed_behind_ms: fed.max_behind.as_secs_f64() * 1e3,
        };
        let latency = result.latency.as_ref();
        eprintln!(
            "{} phase {listed} ({purpose}): {} quotes/s -> {} deliveries/s (offered {}), p50 {} µs, p99 {} µs, \
             target CPU {}% ({} ns/delivery), bench CPU {}%, {:.1} records/message, {:.1} quotes/feed write",
            self.kind.label(),
            report::number(rate),
            report::number(result.deliveries_per_s),
            report::number(result.offered_deliveries_per_s),
            latency.map_or("–".into(), |l| format!("{:.1}", l.p50_us)),
            latency.map_or("–".into(), |l| format!("{:.1}", l.p99_us)),
            // An external hub (--url) has no process here to sample.
            result.usage.map_or("–".into(), |u| format!("{:.0}", u.cpu_percent)),
            result.cpu_ns_per_delivery.map_or("–".into(), |ns| format!("{ns:.0}")),
            result
                .bench_usage
                .map_or("–".into(), |u| format!("{:.0}", u.cpu_percent)),
            result.records_per_message,
            fed.quotes_per_write,
        );
        self.phases.push(result.clone());
        Ok(result)
    }

    /// Waits until every update owed so far has arrived, or deliveries stall;
    /// returns when (ns since the epoch).
    fn drain(&self, published: u64) -> u64 {
        let owed = self.workload.expected_deliveries(published);
        let started = Instant::now();
        let mut last = self.fleet.counters.updates.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        loop {
            let got = self.fleet.counters.updates.load(Ordering::Relaxed);
            if got >= owed || last_change.elapsed() > DRAIN_STALL || started.elapsed() > DRAIN_LIMIT {
                return now_ns();
            }
            if got != last {
                last = got;
                last_change = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Quote records per second over a phase, from the clients' receive times.
fn delivery_rate(measured: &tally::PhaseTally, rate: f64) -> f64 {
    let span = measured.last_receive_ns.saturating_sub(measured.first_receive_ns) as f64 / 1e9;
    // The span between first and last receipt misses one inter-arrival gap.
    if span > 0.0 {
        measured.records as f64 / (span + 1.0 / rate)
    } else {
        0.0
    }
}

/// What a stint started: one process, or the bus deployment.
enum Running {
    One(Target),
    Bus(bus::Deployment),
}

impl Running {
    /// Where the clients connect, split evenly over more than one.
    fn endpoints(&self) -> Vec<clients::Endpoint> {
        match self {
            Running::One(target) => vec![target.endpoint.clone()],
            Running::Bus(deployment) => deployment.endpoints(),
        }
    }

    /// Its processes by name, each with its pid where this run started it.
    fn processes(&self) -> Vec<(String, Option<u32>)> {
        match self {
            Running::One(target) => vec![(target.kind.label().to_string(), target.pid())],
            Running::Bus(deployment) => deployment.processes(),
        }
    }

    fn log_tail(&self) -> String {
        match self {
            Running::One(target) => target.log_tail(),
            Running::Bus(deployment) => deployment.log_tail(),
        }
    }

    fn stop(&mut self) {
        match self {
            Running::One(target) => target.stop(),
            Running::Bus(deployment) => deployment.stop(),
        }
    }
}
