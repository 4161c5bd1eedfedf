//! The latency plot: percentile curves of each target (and the hub's own
//! ingest-to-send) on the usual HDR axes, percentiles spread by their
//! "nines" and latency on a log scale. Hand-written SVG: a few polylines
//! need no plotting crate.

use std::fmt::Write as _;

use super::report::{Percentiles, Report};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Where "max" sits on the nines axis, a little beyond 99.9999 %.
const MAX_NINES: f64 = 6.5;

fn nines(percentile: f64) -> f64 {
    if percentile >= 100.0 {
        MAX_NINES
    } else {
        -(1.0 - percentile / 100.0).log10()
    }
}

/// The curves to draw: (label, colour, dashed, percentiles).
fn series(report: &Report) -> Vec<(String, &'static str, bool, &Percentiles)> {
    let colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let mut out = Vec::new();
    for (target, colour) in report.targets.iter().zip(colours) {
        let Some(phase) = target.latency_phase() else { continue };
        if let Some(latency) = &phase.latency {
            out.push((target.label.clone(), colour, false, latency));
        }
        if let Some(hub) = &phase.hub_latency {
            out.push(("quotehub ingest-to-send".into(), colour, true, hub));
        }
    }
    out
}

pub fn plot(report: &Report) -> String {
    let curves = series(report);
    let values = curves
        .iter()
        .flat_map(|c| c.3.curve.iter().map(|p| p.1))
        .filter(|v| *v > 0.0);
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low_exp, high_exp) = if low <= high {
        (low.log10().floor(), high.log10().ceil().max(low.log10().floor() + 1.0))
    } else {
        (0.0, 3.0)
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |p: f64| LEFT + nines(p) / MAX_NINES * plot_w;
    let y = |us: f64| TOP + plot_h - (us.max(1e-3).log10() - low_exp) / (high_exp - low_exp) * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="15">Latency by percentile, feed-in to client-receive ({} clients, fan-out {:.1})</text>"#,
        report.settings.clients, report.settings.fanout
    );
    // Horizontal grid: one line per power of ten.
    let mut exp = low_exp;
    while exp <= high_exp {
        let value = 10f64.powf(exp);
        let label = if value >= 1_000.0 {
            format!("{} ms", value / 1_000.0)
        } else {
            format!("{value} µs")
        };
        let yy = y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0
        );
        exp += 1.0;
    }
    for (p, label) in [
        (0.0, "0%"),
        (50.0, "50%"),
        (90.0, "90%"),
        (99.0, "99%"),
        (99.9, "99.9%"),
        (99.99, "99.99%"),
        (99.999, "99.999%"),
        (100.0, "max"),
    ] {
        let xx = x(p);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    for (i, (label, colour, dashed, percentiles)) in curves.iter().enumerate() {
        let points: Vec<String> = percentiles
            .curve
            .iter()
            .map(|&(p, us)| format!("{:.1},{:.1}", x(p), y(us)))
            .collect();
        let dash = if *dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + plot_w + 12.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            escape(label)
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
