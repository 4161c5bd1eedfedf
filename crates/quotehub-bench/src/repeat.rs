//! `quotehub-bench --repeat N`: the same comparison N times, each run's
//! ratios side by side, and the targets judged on the median ratio.
//!
//! Why: the clients, the feed and the target share the machine's cores, so
//! one run's ratio to the floor can swing by half between two runs of the
//! same build (the floor's own peak does). One run's verdict is a coin
//! toss near a target; the median of several, with every run shown, is not.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::report::{BUS_ADDED_P50_US, BUS_ADDED_P99_US, BusAdded, Machine, Report};

/// One figure across the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub against: String,
    /// e.g. "≥ 0.8"; None when the design sets no target.
    pub target: Option<String>,
    /// Each run's ratio, in run order (NaN where a run lacks it).
    pub ratios: Vec<f64>,
    pub median: f64,
    /// The target judged on the median.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: String,
    pub machine: Machine,
    /// `--pin`: the runs' CPU affinity; None when unpinned.
    pub pinning: Option<String>,
    pub runs: usize,
    pub rows: Vec<Row>,
    /// `--bus`: what the bus added to the standalone hub's p50 and p99 end
    /// to end in each run, in µs (not ratios), judged on the median.
    pub bus: Vec<Row>,
    /// Targets a run did not measure, and why ("run 2: Bun pub/sub peer: ..."),
    /// so that a missing hub / peer row is never silent.
    pub skipped: Vec<String>,
}

impl Summary {
    /// Lines up the runs' ratios by figure, in the first run's order.
    pub fn of(reports: &[Report], command: String) -> Self {
        let mut rows: Vec<Row> = Vec::new();
        for (run, report) in reports.iter().enumerate() {
            for ratio in &report.ratios {
                let row = match rows
                    .iter_mut()
                    .position(|r| r.what == ratio.what && r.against == ratio.against)
                {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            what: ratio.what.clone(),
                            against: ratio.against.clone(),
                            target: ratio.target.clone(),
                            ratios: vec![f64::NAN; reports.len()],
                            median: f64::NAN,
                            met: None,
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.ratios[run] = ratio.ratio;
            }
        }
        let skipped = reports
            .iter()
            .enumerate()
            .flat_map(|(run, report)| {
                report.targets.iter().filter_map(move |target| {
                    let reason = target.skipped.as_ref()?;
                    Some(format!("run {}: {}: skipped: {reason}", run + 1, target.label))
                })
            })
            .collect();
        let added: Vec<Option<BusAdded>> = reports.iter().map(Report::bus_added).collect();
        let mut bus = Vec::new();
        if added.iter().any(Option::is_some) {
            let figures: [(&str, f64, AddedFigure); 2] = [
                ("µs the bus adds at p50", BUS_ADDED_P50_US, |a| a.p50_us),
                ("µs the bus adds at p99", BUS_ADDED_P99_US, |a| a.p99_us),
            ];
            for (what, bound, of) in figures {
                bus.push(Row {
                    what: what.into(),
                    against: "quotehub (standalone)".into(),
                    target: Some(format!("≤ {bound}")),
                    ratios: added.iter().map(|a| a.as_ref().map_or(f64::NAN, of)).collect(),
                    median: f64::NAN,
                    met: None,
                });
            }
        }
        for row in rows.iter_mut().chain(bus.iter_mut()) {
            row.median = median(&row.ratios);
            row.met = row.target.as_deref().and_then(|target| meets(target, row.median));
        }
        Self {
            command,
            machine: reports.last().map_or_else(Machine::here, |r| r.machine.clone()),
            pinning: reports.first().and_then(|r| r.settings.pinning.clone()),
            runs: reports.len(),
            rows,
            bus,
            skipped,
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("summary.json"), json).context("writing summary.json")?;
        std::fs::write(dir.join("summary.md"), self.markdown()).context("writing summary.md")?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# quotehub-bench, {} runs\n", self.runs);
        let _ = writeln!(md, "`{}`\n", self.command);
        let _ = writeln!(
            md,
            "{} ({} cores), Linux {}. Each run is a whole comparison (hub, floor, peers) with its own report in \
             `run-K/`; the verdict is on the median of the runs' ratios. CPU affinity: {}.\n",
            self.machine.cpu,
            self.machine.cores,
            self.machine.kernel,
            self.pinning.as_deref().unwrap_or("unpinned")
        );
        let runs: String = (1..=self.runs).map(|k| format!(" run {k} |")).collect();
        let _ = writeln!(md, "| figure | against |{runs} median | target | verdict |");
        let _ = writeln!(md, "|---|---|{}---:|---|---|", "---:|".repeat(self.runs));
        for row in &self.rows {
            let ratios: String = row.ratios.iter().map(|r| format!(" {} |", ratio(*r))).collect();
            let verdict = match row.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "",
            };
            let _ = writeln!(
                md,
                "| {} | {} |{ratios} {} | {} | {verdict} |",
                row.what,
                row.against,
                ratio(row.median),
                row.target.as_deref().unwrap_or("")
            );
        }
        if !self.bus.is_empty() {
            let _ = writeln!(md, "\nThe bus beside the standalone hub, end to end, each run's µs:\n");
            let _ = writeln!(md, "| figure | against |{runs} median | target | verdict |");
            let _ = writeln!(md, "|---|---|{}---:|---|---|", "---:|".repeat(self.runs));
            let us = |v: f64| {
                if v.is_nan() {
                    "–".to_string()
                } else {
                    format!("{v:.0}")
                }
            };
            for row in &self.bus {
                let values: String = row.ratios.iter().map(|v| format!(" {} |", us(*v))).collect();
                let verdict = match row.met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} |{values} {} | {} | {verdict} |",
                    row.what,
                    row.against,
                    us(row.median),
                    row.target.as_deref().unwrap_or("")
                );
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(md);
        }
        for line in &self.skipped {
            let _ = writeln!(md, "- {line}");
        }
        if self.rows.is_empty() {
            let _ = writeln!(
                md,
                "\nNo ratios: no run measured the hub with the floor or the peer. Each run's figures are in its \
                 report."
            );
        }
        md
    }
}

/// Which of what the bus added a row shows.
type AddedFigure = fn(&BusAdded) -> f64;

/// Three decimals, so that a median just under a target (0.799 against
/// ≥ 0.8) does not print as if it met it.
fn ratio(value: f64) -> String {
    if value.is_nan() {
        "–".into()
    } else {
        format!("{value:.3}")
    }
}

/// The median of the values that are numbers (NaN when none is).
fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Whether `value` meets a target written as the report writes them ("≥ 0.8", "≤ 1.5").
fn meets(target: &str, value: f64) -> Option<bool> {
    if value.is_nan() {
        return None;
    }
    let (at_least, bound) = if let Some(bound) = target.strip_prefix('≥') {
        (true, bound)
    } else {
        (false, target.strip_prefix('≤')?)
    };
    let bound: f64 = bound.trim().parse().ok()?;
    Some(if at_least { value >= bound } else { value <= bound })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Ratio, Settings};

    fn report(ratios: &[(&str, f64, Option<&str>)]) -> Report {
        Report {
            generated_unix_s: 0,
            machine: Machine::here(),
            settings: Settings {
                command: String::new(),
                clients: 1,
                symbols: 1,
                symbols_per_client: 1,
                subscriptions: crate::workload::Layout::Blocks,
                distinct_sets: 1,
                fanout: 1.0,
                mode: "saturation".into(),
                warmup_s: 0.0,
                duration_s: 1.0,
                feed_write_gap_us: 50,
                pinning: None,
                moderate_deliveries: Vec::new(),
            },
            targets: Vec::new(),
            ratios: ratios
                .iter()
                .map(|(what, ratio, target)| Ratio {
                    what: (*what).into(),
                    against: "raw-TCP floor".into(),
                    hub: 0.0,
                    reference: 0.0,
                    ratio: *ratio,
                    target: target.map(Into::into),
                    met: None,
                })
                .collect(),
            idle: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_is_on_the_median_of_the_runs() {
        let runs = [
            report(&[("rate", 0.64, Some("≥ 0.8")), ("p50", 3.07, Some("≤ 1.5"))]),
            report(&[("rate", 0.98, Some("≥ 0.8")), ("p50", 1.03, Some("≤ 1.5"))]),
            report(&[("rate", 0.85, Some("≥ 0.8")), ("p50", 1.60, Some("≤ 1.5"))]),
        ];
        let summary = Summary::of(&runs, "quotehub-bench --repeat 3".into());
        assert_eq!(summary.runs, 3);
        let rate = &summary.rows[0];
        assert_eq!(rate.ratios, [0.64, 0.98, 0.85]);
        assert_eq!((rate.median, rate.met), (0.85, Some(true)));
        let p50 = &summary.rows[1];
        assert_eq!((p50.median, p50.met), (1.60, Some(false)));
        let md = summary.markdown();
        assert!(
            md.contains("| rate | raw-TCP floor | 0.640 | 0.980 | 0.850 | 0.850 | ≥ 0.8 | met |"),
            "{md}"
        );
        assert!(md.contains("| 1.600 | ≤ 1.5 | **missed** |"), "{md}");
        assert!(!md.contains("No ratios"), "{md}");
    }

    #[test]
    fn a_figure_missing_from_a_run_is_shown_and_left_out_of_the_median() {
        let runs = [
            report(&[("rate", 2.0, None)]),
            report(&[]),
            report(&[("rate", 4.0, None)]),
        ];
        let summary = Summary::of(&runs, String::new());
        let row = &summary.rows[0];
        assert!(row.ratios[1].is_nan());
        assert_eq!((row.median, row.met), (3.0, None));
        assert!(summary.markdown().contains("| 2.000 | – | 4.000 | 3.000 |"));
    }

    #[test]
    fn a_median_just_under_its_target_does_not_print_as_the_target() {
        let runs = [report(&[("rate", 0.7989, Some("≥ 0.8"))])];
        let md = Summary::of(&runs, String::new()).markdown();
        assert!(md.contains("| 0.799 | 0.799 | ≥ 0.8 | **missed** |"), "{md}");
    }

    #[test]
    fn runs_without_a_floor_or_peer_say_why_there_is_no_ratio() {
        let md = Summary::of(&[report(&[]), report(&[])], String::new()).markdown();
        assert!(md.contains("No ratios"), "{md}");
    }

    /// A target that ran one fixed-rate phase with this p50 and p99 (µs).
    fn ran(kind: crate::target::Kind, p50_us: f64, p99_us: f64) -> crate::report::TargetResult {
        let mut target = crate::report::TargetResult::skipped(kind, String::new());
        target.skipped = None;
        target.phases.push(crate::report::PhaseResult {
            number: 1,
            purpose: crate::report::FIXED.into(),
            rate: 1.0,
            offered_deliveries_per_s: 1.0,
            duration_s: 1.0,
            deliveries_per_s: 1.0,
            records: 1,
            expected_records: 1,
            latency: Some(crate::report::Percentiles {
                count: 1,
                p50_us,
                p90_us: p99_us,
                p99_us,
                p99_9_us: p99_us,
                max_us: p99_us,
                curve: Vec::new(),
            }),
            hub_latency: None,
            wire_latency: None,
            edges: Vec::new(),
            processes: Vec::new(),
            usage: None,
            cpu_ns_per_delivery: None,
            bench_usage: None,
            records_per_message: 1.0,
            feed_behind_ms: 0.0,
        });
        target
    }

    #[test]
    fn what_the_bus_adds_is_judged_on_the_median_of_the_runs_in_microseconds() {
        use crate::target::Kind;
        let mut runs = [report(&[]), report(&[]), report(&[])];
        for (run, (bus_p50, bus_p99)) in runs
            .iter_mut()
            .zip([(900.0, 3_000.0), (300.0, 2_500.0), (250.0, 1_500.0)])
        {
            run.targets = vec![ran(Kind::Hub, 100.0, 1_000.0), ran(Kind::Bus, bus_p50, bus_p99)];
        }
        let summary = Summary::of(&runs, String::new());
        assert_eq!(summary.bus.len(), 2);
        assert_eq!(summary.bus[0].ratios, [800.0, 200.0, 150.0]);
        assert_eq!((summary.bus[0].median, summary.bus[0].met), (200.0, Some(true)));
        assert_eq!((summary.bus[1].median, summary.bus[1].met), (1_500.0, Some(true)));
        let md = summary.markdown();
        assert!(
            md.contains("| µs the bus adds at p50 | quotehub (standalone) | 800 | 200 | 150 | 200 | ≤ 300 | met |"),
            "{md}"
        );
        assert!(
            Summary::of(&[report(&[])], String::new()).bus.is_empty(),
            "no bus row without a bus run"
        );
    }

    #[test]
    fn targets_read_as_the_report_writes_them() {
        assert_eq!(meets("≥ 0.8", 0.8), Some(true));
        assert_eq!(meets("≥ 0.8", 0.79), Some(false));
        assert_eq!(meets("≤ 1.5", 1.5), Some(true));
        assert_eq!(meets("≤ 2", 2.01), Some(false));
        assert_eq!(meets("≤ 2", f64::NAN), None);
        assert_eq!(meets("about 2", 1.0), None);
    }
}
