//! The results of a bench run, and their Markdown and JSON forms.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::floor::Sharing;
use super::proc_stats::Usage;
use super::target::Kind;
use super::workload::Layout;

/// What each phase is for, as reports name it.
pub const FIXED: &str = "fixed rate";
pub const STEP: &str = "saturation step";
pub const HALF: &str = "half of saturation";

/// A moderate load (`--moderate-deliveries`) by name: "1 M deliveries/s".
pub fn load_name(deliveries_per_s: f64) -> String {
    if deliveries_per_s >= 1e6 {
        format!("{} M deliveries/s", deliveries_per_s / 1e6)
    } else {
        format!("{} deliveries/s", number(deliveries_per_s))
    }
}

/// The purpose of the phase at a moderate load: "fixed at 1 M deliveries/s".
pub fn moderate(deliveries_per_s: f64) -> String {
    format!("fixed at {}", load_name(deliveries_per_s))
}

/// Percentiles reported for every latency, and plotted.
pub const PLOTTED: [f64; 14] = [
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 99.9999, 100.0,
];

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
    /// (percentile, µs) along the whole distribution, for the plot.
    pub curve: Vec<(f64, f64)>,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
        Some(Self {
            count: histogram.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p99_9_us: us(0.999),
            max_us: histogram.max() as f64 / 1_000.0,
            curve: PLOTTED.iter().map(|&p| (p, us(p / 100.0))).collect(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub number: u32,
    /// [`FIXED`], [`STEP`], [`HALF`] or a [`moderate`] load.
    pub purpose: String,
    /// Offered load: quotes per second into the target.
    pub rate: f64,
    /// Deliveries per second the clients are owed at that rate.
    pub offered_deliveries_per_s: f64,
    pub duration_s: f64,
    /// Quote records received per second over the phase (receive times).
    pub deliveries_per_s: f64,
    pub records: u64,
    /// Quote records owed in the measured part (quotes × subscribers).
    pub expected_records: u64,
    /// Feed-in to client-receive, from each quote's intended send time.
    pub latency: Option<Percentiles>,
    /// The hub's own ingest-to-send, from its record stamps (over the bus:
    /// the ingest hub's receive to the edge's send).
    pub hub_latency: Option<Percentiles>,
    /// The sending hub's send stamp to client receive.
    pub wire_latency: Option<Percentiles>,
    /// The bus deployment's edges, each with the clients on it; empty for the other targets.
    pub edges: Vec<EdgeResult>,
    /// The bus deployment's processes (nats-server, the ingest hub, each
    /// edge), each one's CPU; empty for the other targets, whose one
    /// process is `usage`. For the bus, `usage` is their sum.
    pub processes: Vec<ProcessResult>,
    pub usage: Option<Usage>,
    /// CPU nanoseconds the target process spent per delivered update: its
    /// CPU time over the measured window per update its clients received
    /// in it (from `/proc`; none for a hub given by --url).
    pub cpu_ns_per_delivery: Option<f64>,
    /// The bench process's own CPU (feed and clients), to tell a saturated
    /// target from saturated clients.
    pub bench_usage: Option<Usage>,
    /// Quote records per message received (how the target batched).
    pub records_per_message: f64,
    /// The longest the open-loop feed ran behind its schedule (target back-pressure).
    pub feed_behind_ms: f64,
}

/// One edge of the bus deployment in one phase, as its clients saw it.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeResult {
    pub name: String,
    /// Quote records its clients received in the measured part.
    pub records: u64,
    pub deliveries_per_s: f64,
    pub latency: Option<Percentiles>,
}

/// One process of the bus deployment in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessResult {
    pub name: String,
    pub usage: Option<Usage>,
    /// Its CPU time per update delivered by the whole deployment.
    pub cpu_ns_per_delivery: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub kind: Kind,
    pub label: String,
    /// Why this target did not run, when it did not.
    pub skipped: Option<String>,
    pub phases: Vec<PhaseResult>,
    /// Quotes the feed wrote, warm-ups included.
    pub published: u64,
    /// Updates owed to the clients for them (published × subscribers).
    pub expected_updates: u64,
    /// Updates the clients got: each record counts 1 plus its `conflated`.
    pub delivered_updates: u64,
    pub records_received: u64,
    pub conflated_records: u64,
    pub conflated_updates: u64,
    /// Updates owed but never delivered.
    pub dropped_updates: u64,
    /// Of them, those missing between two records of a symbol a client
    /// did get (lost on the way, not late at the end); the hub and the bus only.
    pub gap_updates: u64,
    pub disconnects: usize,
    pub malformed_messages: u64,
    /// Most deliveries per second seen in any phase (the saturation figure in --saturation runs).
    pub peak_deliveries_per_s: f64,
    /// The offered rate (quotes/s) of that phase.
    pub peak_rate: f64,
    /// The floor's own count of bytes it built and queued, summed over
    /// its starts: how much its bodies were shared.
    pub floor_sharing: Option<Sharing>,
}

impl TargetResult {
    pub fn skipped(kind: Kind, reason: String) -> Self {
        Self {
            kind,
            label: kind.label().into(),
            skipped: Some(reason),
            phases: Vec::new(),
            published: 0,
            expected_updates: 0,
            delivered_updates: 0,
            records_received: 0,
            conflated_records: 0,
            conflated_updates: 0,
            dropped_updates: 0,
            gap_updates: 0,
            disconnects: 0,
            malformed_messages: 0,
            peak_deliveries_per_s: 0.0,
            peak_rate: 0.0,
            floor_sharing: None,
        }
    }

    /// The phase whose latency is compared: the fixed-rate phase, or the
    /// one at half of saturation (the last phase if neither ran).
    pub fn latency_phase(&self) -> Option<&PhaseResult> {
        self.phases
            .iter()
            .find(|p| p.purpose == FIXED || p.purpose == HALF)
            .or_else(|| self.phases.last())
    }

    /// The phase with this purpose.
    pub fn phase(&self, purpose: &str) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| p.purpose == purpose)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub connections: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub per_connection_kib: f64,
    pub target_kib: f64,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub load_average: String,
}

impl Machine {
    pub fn here() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
        Self {
            cpu,
            // Under --pin this thread may use only the bench's CPUs.
            cores: super::pin::current().map_or_else(
                || std::thread::available_parallelism().map_or(1, usize::from),
                |pinning| 1 + pinning.bench.len(),
            ),
            kernel: read("/proc/sys/kernel/osrelease"),
            load_average: read("/proc/loadavg"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub command: String,
    pub clients: usize,
    pub symbols: usize,
    pub symbols_per_client: usize,
    /// How the subscriptions are laid over the symbols.
    pub subscriptions: Layout,
    /// How many different subscription sets the clients hold.
    pub distinct_sets: usize,
    pub fanout: f64,
    pub mode: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// The feed's least time between two writes.
    pub feed_write_gap_us: u64,
    /// `--pin`: which CPUs the servers and the bench ran on; None when unpinned.
    pub pinning: Option<String>,
    /// The moderate loads (deliveries/s) a saturation run measured every target at.
    pub moderate_deliveries: Vec<f64>,
}

/// One ratio of the hub to a reference, and the design's target for it.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub what: String,
    pub against: String,
    pub hub: f64,
    pub reference: f64,
    pub ratio: f64,
    /// e.g. "≥ 0.8", "≤ 1.5"; None when the design sets no target.
    pub target: Option<String>,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_unix_s: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub targets: Vec<TargetResult>,
    pub ratios: Vec<Ratio>,
    pub idle: Option<IdleResult>,
    pub notes: Vec<String>,
}

impl Report {
    /// Ratios of the hub to the floor and to each peer, with the design's targets.
    pub fn compute_ratios(&mut self) {
        let find = |kind: Kind| {
            self.targets
                .iter()
                .find(|t| t.kind == kind && t.skipped.is_none() && !t.phases.is_empty())
        };
        let Some(hub) = find(Kind::Hub) else { return };
        let saturation = self.settings.mode == "saturation";
        let pinned = self.settings.pinning.is_some();
        let mut ratios = Vec::new();
        for reference in [find(Kind::Floor), find(Kind::Peer), find(Kind::Bun)]
            .into_iter()
            .flatten()
        {
            let against = reference.label.clone();
            let floor = reference.kind == Kind::Floor;
            let bun = reference.kind == Kind::Bun;
            let (want, bound) = match reference.kind {
                Kind::Floor => (0.8, "≥ 0.8"),
                Kind::Bun if pinned => (1.2, "≥ 1.2"),
                Kind::Bun => (1.5, "≥ 1.5"),
                _ => (2.0, "≥ 2"),
            };
            let hub_rate = hub.peak_deliveries_per_s;
            let ref_rate = reference.peak_deliveries_per_s;
            let ratio = hub_rate / ref_rate;
            ratios.push(Ratio {
                what: if saturation {
                    "deliveries/s at saturation".into()
                } else {
                    "deliveries/s at the fixed rate (not saturation)".into()
                },
                against: against.clone(),
                hub: hub_rate,
                reference: ref_rate,
                ratio,
                target: saturation.then(|| bound.to_string()),
                met: saturation.then_some(ratio >= want),
            });
            let at = if saturation {
                "at half of saturation"
            } else {
                "at the fixed rate"
            };
            // The floor's latency targets hold at half of saturation.
            let floor_limits = [1.5, 2.0, f64::NAN].map(|limit| (floor && saturation).then_some(limit));
            push_phase_ratios(
                &mut ratios,
                at,
                &against,
                hub.latency_phase(),
                reference.latency_phase(),
                floor_limits,
                None,
            );
            if saturation {
                for &deliveries in &self.settings.moderate_deliveries {
                    let purpose = moderate(deliveries);
                    // Against Bun: p50 ≤ 0.8×, p99 ≤ 1×, CPU per delivery ≤ 0.75×.
                    let limits = [0.8, 1.0, f64::NAN].map(|limit| bun.then_some(limit));
                    push_phase_ratios(
                        &mut ratios,
                        &format!("at {}", load_name(deliveries)),
                        &against,
                        hub.phase(&purpose),
                        reference.phase(&purpose),
                        limits,
                        bun.then_some(0.75),
                    );
                }
            }
        }
        self.ratios = ratios;
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("report.json"), json).context("writing report.json")?;
        std::fs::write(dir.join("report.md"), self.markdown()).context("writing report.md")?;
        std::fs::write(dir.join("latency.svg"), super::svg::plot(self)).context("writing latency.svg")?;
        Ok(())
    }

    /// The percentile table, the ratios and the notes, as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let _ = writeln!(md, "# quotehub-bench\n");
        let _ = writeln!(md, "`{}`\n", s.command);
        let _ = write!(
            md,
            "{} ({} cores), Linux {}, load average at the end: {}. ",
            self.machine.cpu, self.machine.cores, self.machine.kernel, self.machine.load_average
        );
        if self.idle.is_none() {
            let _ = write!(
                md,
                "{} clients, {} symbols, {} per client, laid out as {} ({} distinct sets; fan-out {:.1} \
                 deliveries per quote); mode: {}; {} s warm-up and {} s measured per phase; the feed writes \
                 at most every {} µs. CPU affinity: {}.",
                s.clients,
                s.symbols,
                s.symbols_per_client,
                s.subscriptions.name(),
                s.distinct_sets,
                s.fanout,
                s.mode,
                s.warmup_s,
                s.duration_s,
                s.feed_write_gap_us,
                s.pinning.as_deref().unwrap_or("unpinned")
            );
        }
        let _ = writeln!(md, "\n");
        if !self.targets.is_empty() {
            let _ = writeln!(md, "## Latency: feed-in to client-receive\n");
            let _ = writeln!(
                md,
                "From each quote's intended send time (open loop), at the compared phase.\n\n\
                 | target | rate (quotes/s) | deliveries/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CPU % | CPU ns/delivery | peak RSS MiB |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for target in &self.targets {
                match (&target.skipped, target.latency_phase()) {
                    (Some(reason), _) => {
                        let _ = writeln!(md, "| {} | skipped: {reason} | | | | | | | | | |", target.label);
                    }
                    (None, Some(phase)) => {
                        let _ = writeln!(md, "| {} | {} |", target.label, phase_cells(phase));
                    }
                    (None, None) => {}
                }
            }
            let hub_phase = self
                .targets
                .iter()
                .find(|t| t.kind == Kind::Hub)
                .and_then(TargetResult::latency_phase);
            if let Some(hub) = hub_phase.and_then(|p| p.hub_latency.as_ref()) {
                let _ = writeln!(
                    md,
                    "| quotehub ingest-to-send (its own stamps) | | | {} | {} | {} | {} | {} | | | |",
                    us(hub.p50_us),
                    us(hub.p90_us),
                    us(hub.p99_us),
                    us(hub.p99_9_us),
                    us(hub.max_us)
                );
            }
            let _ = writeln!(md);
        }
        self.bus_markdown(&mut md);
        if !self.ratios.is_empty() {
            let _ = writeln!(
                md,
                "## The hub as ratios\n\n| figure | against | hub | reference | ratio | target | verdict |\n|---|---|---:|---:|---:|---|---|"
            );
            for ratio in &self.ratios {
                let verdict = match ratio.met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.2} | {} | {} |",
                    ratio.what,
                    ratio.against,
                    number(ratio.hub),
                    number(ratio.reference),
                    ratio.ratio,
                    ratio.target.as_deref().unwrap_or(""),
                    verdict
                );
            }
            let _ = writeln!(md);
        }
        if !self.targets.is_empty() {
            let _ = writeln!(
                md,
                "## Deliveries\n\n| target | published quotes | updates owed | delivered | records | conflated records (updates merged) | dropped | disconnects | peak deliveries/s (at quotes/s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for t in self.targets.iter().filter(|t| t.skipped.is_none()) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} ({}) |",
                    t.label,
                    t.published,
                    t.expected_updates,
                    t.delivered_updates,
                    t.records_received,
                    t.conflated_records,
                    t.conflated_updates,
                    t.dropped_updates,
                    t.disconnects,
                    number(t.peak_deliveries_per_s),
                    number(t.peak_rate)
                );
            }
            for t in self.targets.iter() {
                if let Some(sharing) = &t.floor_sharing {
                    let _ = writeln!(md, "\n{}: {}", t.label, sharing.describe());
                }
            }
            let _ = writeln!(md, "\n## Every phase\n");
            let _ = writeln!(
                md,
                "| target | phase | rate (quotes/s) | deliveries/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CPU % | CPU ns/delivery | peak RSS MiB | feed behind ms | records/message | bench CPU % |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for t in self.targets.iter().filter(|t| t.skipped.is_none()) {
                for phase in &t.phases {
                    let _ = writeln!(
                        md,
                        "| {} | {} {} | {} | {:.1} | {:.1} | {} |",
                        t.label,
                        phase.number,
                        phase.purpose,
                        phase_cells(phase),
                        phase.feed_behind_ms,
                        phase.records_per_message,
                        phase
                            .bench_usage
                            .map_or("–".into(), |u| format!("{:.0}", u.cpu_percent))
                    );
                }
            }
            let _ = writeln!(md);
        }
        if let Some(idle) = &self.idle {
            let _ = writeln!(
                md,
                "## Idle connections\n\n{} idle subscribed connections: hub RSS {:.1} MiB before, {:.1} MiB after: \
                 **{:.2} KiB per connection** (target ≤ {} KiB: {}).\n",
                idle.connections,
                idle.rss_before_mib,
                idle.rss_after_mib,
                idle.per_connection_kib,
                idle.target_kib,
                if idle.met { "met" } else { "**missed**" }
            );
        }
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        md
    }
}

/// The targets for what the bus adds end to end, µs.
pub const BUS_ADDED_P50_US: f64 = 300.0;
pub const BUS_ADDED_P99_US: f64 = 2_000.0;

/// What the bus deployment added to the standalone hub's end-to-end
/// latency, each at its compared phase (negative when it was faster).
#[derive(Debug, Clone, Copy)]
pub struct BusAdded {
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Which of a phase's latencies a row shows.
type PhaseLatency = fn(&PhaseResult) -> Option<&Percentiles>;

impl Report {
    /// What the bus added end to end, when both the hub and the bus ran.
    pub fn bus_added(&self) -> Option<BusAdded> {
        let latency = |kind: Kind| {
            self.targets
                .iter()
                .find(|t| t.kind == kind && t.skipped.is_none())
                .and_then(TargetResult::latency_phase)
                .and_then(|p| p.latency.as_ref())
        };
        let (hub, bus) = (latency(Kind::Hub)?, latency(Kind::Bus)?);
        Some(BusAdded {
            p50_us: bus.p50_us - hub.p50_us,
            p99_us: bus.p99_us - hub.p99_us,
        })
    }

    /// The bus beside the standalone hub, at the compared phase of each:
    /// end to end and each hop, and the difference (what the bus adds);
    /// deliveries per edge; losses; CPU per process.
    fn bus_markdown(&self, md: &mut String) {
        let ran = |kind: Kind| self.targets.iter().find(|t| t.kind == kind && t.skipped.is_none());
        let Some(bus) = ran(Kind::Bus) else { return };
        let Some(bus_phase) = bus.latency_phase() else { return };
        let hub = ran(Kind::Hub);
        let hub_phase = hub.and_then(TargetResult::latency_phase);
        let _ = writeln!(
            md,
            "## The bus beside the standalone hub
"
        );
        let _ = writeln!(
            md,
            "One ingest hub fed by the bench, nats-server with JetStream, two edge hubs, the clients split \
             across the edges (client i on edge i mod 2); the standalone hub with the same clients and feed. \
             The records carry the ingest hub's receive stamp and each message the sending hub's send stamp, \
             so the way splits at the (edge) hub's send. Targets (issue 17): the bus adds ≤ 300 µs at p50 \
             and ≤ 2 ms at p99 end to end, and loses nothing.\n\n\
             | latency | standalone p50 µs | bus p50 µs | added p50 µs | standalone p99 µs | bus p99 µs | added p99 µs |\n\
             |---|---:|---:|---:|---:|---:|---:|"
        );
        let rows: [(&str, PhaseLatency); 3] = [
            ("end to end: feed-in to client-receive", |p| p.latency.as_ref()),
            ("hub receive to send (bus: ingest receive to edge send)", |p| {
                p.hub_latency.as_ref()
            }),
            ("send to client receive", |p| p.wire_latency.as_ref()),
        ];
        for (name, of) in rows {
            let hub = hub_phase.and_then(of);
            let bus = of(bus_phase);
            let cell = |l: Option<&Percentiles>, q: fn(&Percentiles) -> f64| l.map_or("–".into(), |l| us(q(l)));
            let added = |q: fn(&Percentiles) -> f64| match (hub, bus) {
                (Some(h), Some(b)) => format!("{:+.0}", q(b) - q(h)),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} |",
                cell(hub, |l| l.p50_us),
                cell(bus, |l| l.p50_us),
                added(|l| l.p50_us),
                cell(hub, |l| l.p99_us),
                cell(bus, |l| l.p99_us),
                added(|l| l.p99_us),
            );
        }
        if let Some(added) = self.bus_added() {
            let verdict = |added: f64, bound: f64| if added <= bound { "met" } else { "**missed**" };
            let _ = writeln!(
                md,
                "\nThe bus adds **{:.0} µs at p50** (target ≤ {BUS_ADDED_P50_US}: {}) and **{:.0} µs at p99** \
                 (target ≤ {BUS_ADDED_P99_US}: {}).",
                added.p50_us,
                verdict(added.p50_us, BUS_ADDED_P50_US),
                added.p99_us,
                verdict(added.p99_us, BUS_ADDED_P99_US),
            );
        }
        let _ = writeln!(
            md,
            "\n| deployment | deliveries/s | records | owed (whole run) | delivered (whole run) | lost | of them, gaps | disconnects |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (target, phase) in [(hub, hub_phase), (Some(bus), Some(bus_phase))] {
            let (Some(t), Some(p)) = (target, phase) else { continue };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                t.label,
                number(p.deliveries_per_s),
                p.records,
                t.expected_updates,
                t.delivered_updates,
                t.dropped_updates,
                t.gap_updates,
                t.disconnects
            );
        }
        for edge in &bus_phase.edges {
            let _ = writeln!(
                md,
                "| {} | {} | {} | | | | | |",
                edge.name,
                number(edge.deliveries_per_s),
                edge.records
            );
        }
        let _ = writeln!(
            md,
            "\n| process | CPU % | CPU ns per delivery (of the deployment's) | peak RSS MiB |\n|---|---:|---:|---:|"
        );
        if let Some(p) = hub_phase {
            let _ = writeln!(
                md,
                "| standalone hub | {} | {} | {} |",
                p.usage.map_or("–".into(), |u| format!("{:.0}", u.cpu_percent)),
                p.cpu_ns_per_delivery.map_or("–".into(), |ns| format!("{ns:.0}")),
                p.usage.map_or("–".into(), |u| format!("{:.1}", u.peak_rss_mib)),
            );
        }
        for process in &bus_phase.processes {
            let _ = writeln!(
                md,
                "| bus: {} | {} | {} | {} |",
                process.name,
                process.usage.map_or("–".into(), |u| format!("{:.0}", u.cpu_percent)),
                process.cpu_ns_per_delivery.map_or("–".into(), |ns| format!("{ns:.0}")),
                process.usage.map_or("–".into(), |u| format!("{:.1}", u.peak_rss_mib)),
            );
        }
        let _ = writeln!(
            md,
            "| bus: all | {} | {} | {} |\n",
            bus_phase.usage.map_or("–".into(), |u| format!("{:.0}", u.cpu_percent)),
            bus_phase
                .cpu_ns_per_delivery
                .map_or("–".into(), |ns| format!("{ns:.0}")),
            bus_phase.usage.map_or("–".into(), |u| format!("{:.1}", u.peak_rss_mib)),
        );
    }
}

/// The hub against a reference at one phase each: p50, p99 and p99.9
/// latency with `limits` (≤, None for no target; NaN is never a target),
/// then CPU per delivery with `cpu_limit`.
fn push_phase_ratios(
    ratios: &mut Vec<Ratio>,
    at: &str,
    against: &str,
    hub: Option<&PhaseResult>,
    reference: Option<&PhaseResult>,
    limits: [Option<f64>; 3],
    cpu_limit: Option<f64>,
) {
    let (Some(hub), Some(reference)) = (hub, reference) else {
        return;
    };
    let mut push = |what: String, hub: f64, reference: f64, limit: Option<f64>| {
        let ratio = hub / reference;
        let limit = limit.filter(|l| !l.is_nan());
        ratios.push(Ratio {
            what,
            against: against.to_string(),
            hub,
            reference,
            ratio,
            target: limit.map(|l| format!("≤ {l}")),
            met: limit.map(|l| ratio <= l),
        });
    };
    if let (Some(hub_latency), Some(ref_latency)) = (hub.latency.as_ref(), reference.latency.as_ref()) {
        for ((name, hub_us, ref_us), limit) in [
            ("p50", hub_latency.p50_us, ref_latency.p50_us),
            ("p99", hub_latency.p99_us, ref_latency.p99_us),
            ("p99.9", hub_latency.p99_9_us, ref_latency.p99_9_us),
        ]
        .into_iter()
        .zip(limits)
        {
            push(format!("{name} latency {at}"), hub_us, ref_us, limit);
        }
    }
    if let (Some(hub_ns), Some(ref_ns)) = (hub.cpu_ns_per_delivery, reference.cpu_ns_per_delivery) {
        push(format!("CPU ns per delivery {at}"), hub_ns, ref_ns, cpu_limit);
    }
}

fn phase_cells(phase: &PhaseResult) -> String {
    let (cpu, rss) = phase.usage.map_or(("–".into(), "–".into()), |u| {
        (format!("{:.0}", u.cpu_percent), format!("{:.1}", u.peak_rss_mib))
    });
    let cpu_ns = phase.cpu_ns_per_delivery.map_or("–".into(), |ns| format!("{ns:.0}"));
    let latency = phase.latency.as_ref().map_or_else(
        || "– | – | – | – | –".to_string(),
        |l| {
            format!(
                "{} | {} | {} | {} | {}",
                us(l.p50_us),
                us(l.p90_us),
                us(l.p99_us),
                us(l.p99_9_us),
                us(l.max_us)
            )
        },
    );
    format!(
        "{} | {} | {latency} | {cpu} | {cpu_ns} | {rss}",
        number(phase.rate),
        number(phase.deliveries_per_s)
    )
}

fn us(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Large counts with thousands separators.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let whole = value.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_separators() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(f64::NAN), "–");
    }
}
