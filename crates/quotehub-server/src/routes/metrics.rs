//! The operator's view over plain HTTP on the hub's port: Prometheus text at
//! `GET /metrics`.
//!
//! Written by hand rather than with `prometheus-client`: that crate writes
//! OpenMetrics (a `# EOF` line, `_total` added to counter names, its own
//! formatting of the `le` bounds), which would change the text that
//! scrapers, dashboards and `tests/operating.rs` read today, and it would
//! need a custom collector anyway to keep the engine's batched histogram as
//! the source. Not measured: nothing here is on a hot path (one render per
//! scrape).

use std::fmt::Write as _;

use tokio::io::AsyncWrite;

use quotehub_feed::live::LiveStats;
use quotehub_proto::bar::BarInterval;

use crate::delayed::{DelayedHub, DelayedHubs};
use crate::http::respond;
use quotehub_engine::bus_link::LeaseView;
use quotehub_engine::histogram::Histogram;
use quotehub_engine::hub::Hub;
use quotehub_engine::stats::Stats;

/// Serves `/metrics`: the hub's counters as Prometheus text, and its delay
/// lines'. (With API keys configured the router admits only an admin key here.)
pub(crate) async fn serve<S: AsyncWrite + Unpin>(stream: &mut S, hub: &Hub, delayed: &DelayedHubs) {
    let mut text = render(hub);
    render_delay_lines(&mut text, delayed);
    let _ = respond(
        stream,
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        &[("Cache-Control", "no-cache")],
        text.as_bytes(),
    )
    .await;
}

/// Each delay line (one per distinct delay of the API keys), labelled with
/// its delay in seconds; nothing without delayed keys.
fn render_delay_lines(out: &mut String, delayed: &DelayedHubs) {
    type LineMetric = (&'static str, &'static str, &'static str, fn(&DelayedHub) -> u64);
    let metrics: [LineMetric; 4] = [
        (
            "quotehub_delay_line_held_bytes",
            "gauge",
            "Bytes a delay line holds now (each record's length plus its bookkeeping).",
            |delayed| delayed.line.held_bytes() as u64,
        ),
        (
            "quotehub_delay_line_dropped_total",
            "counter",
            "Records a full delay line dropped, oldest first (delayed clients see the jump in their numbers).",
            |delayed| delayed.line.dropped(),
        ),
        (
            "quotehub_delay_line_released_total",
            "counter",
            "Records a delay line released to its delayed keys' clients.",
            |delayed| delayed.line.released(),
        ),
        (
            "quotehub_delayed_connections",
            "gauge",
            "Connections of delayed keys open now.",
            |delayed| delayed.hub.client_count() as u64,
        ),
    ];
    if delayed.hubs().next().is_none() {
        return;
    }
    for (name, kind, help, read) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for line in delayed.hubs() {
            let _ = writeln!(
                out,
                "{name}{{delay_seconds=\"{}\"}} {}",
                line.line.delay().as_secs_f64(),
                read(line)
            );
        }
    }
}

/// Connections the hub closed on its own, by reason, and those dropped
/// without their close frame.
fn render_forced_closes(out: &mut String, stats: &Stats) {
    let name = "quotehub_forced_closes_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections the hub closed on its own, by reason.\n# TYPE {name} counter"
    );
    for reason in quotehub_engine::stats::ForcedClose::ALL {
        let _ = writeln!(
            out,
            "{name}{{reason=\"{}\"}} {}",
            reason.label(),
            stats.forced_closes(reason)
        );
    }
    let name = "quotehub_closes_abandoned_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections dropped without their close frame: the peer took nothing within the close grace.\n# TYPE {name} counter\n{name} {}",
        Stats::get(&stats.closes_abandoned)
    );
}

/// The Prometheus text exposition of the hub's state.
pub fn render(hub: &Hub) -> String {
    let stats = hub.stats();
    let mut out = String::with_capacity(4096);
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };
    counter(
        "quotehub_events_in_total",
        "Quotes and trades published into the hub.",
        Stats::get(&stats.events_in),
    );
    counter(
        "quotehub_events_filtered_total",
        "Events a feed's symbol filter left out.",
        Stats::get(&stats.events_filtered),
    );
    counter(
        "quotehub_passthrough_refused_total",
        "Passed-through records refused: a number not past the symbol's last, or none.",
        Stats::get(&stats.passthrough_refused),
    );
    counter(
        "quotehub_passthrough_gaps_total",
        "Passed-through records published after a jump in their symbol's numbers.",
        Stats::get(&stats.passthrough_gaps),
    );
    counter(
        "quotehub_records_queued_total",
        "Records placed in client queues, snapshots included.",
        Stats::get(&stats.records_queued),
    );
    counter(
        "quotehub_messages_written_total",
        "Binary messages written to clients.",
        Stats::get(&stats.messages_written),
    );
    counter(
        "quotehub_conflations_total",
        "Records merged into a pending one for a lagging client.",
        Stats::get(&stats.conflations),
    );
    counter(
        "quotehub_slow_consumer_disconnects_total",
        "Clients closed by the disconnect policy.",
        Stats::get(&stats.slow_consumer_disconnects),
    );
    counter(
        "quotehub_connections_opened_total",
        "Streaming connections accepted.",
        Stats::get(&stats.connections_opened),
    );
    counter(
        "quotehub_handshakes_failed_total",
        "Requests refused or failed before streaming.",
        Stats::get(&stats.handshakes_failed),
    );
    counter(
        "quotehub_connections_refused_total",
        "Connections accepted past max_connections or their address's pending share: 503 (operator routes served), or closed at once.",
        Stats::get(&stats.connections_refused),
    );
    counter(
        "quotehub_accept_errors_total",
        "accept() failures (out of file descriptors and the like).",
        Stats::get(&stats.accept_errors),
    );
    render_forced_closes(&mut out, stats);
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(
        "quotehub_connections",
        "Streaming connections open now.",
        hub.client_count() as u64,
    );
    gauge(
        "quotehub_symbols",
        "Symbols the hub knows.",
        hub.table().symbol_count() as u64,
    );
    gauge(
        "quotehub_wildcard_subscribers",
        "Clients subscribed to every symbol.",
        hub.table().wildcard_count() as u64,
    );
    gauge(
        "quotehub_queue_depth_max",
        "The deepest client queue now (records and conflated symbols).",
        hub.max_queue_depth() as u64,
    );
    gauge(
        "quotehub_queued_bytes",
        "Bytes waiting in all client queues (records, conflated records, replies).",
        hub.queued_bytes() as u64,
    );
    gauge(
        "quotehub_queued_bytes_max",
        "Bytes waiting in the fullest client queue now.",
        hub.max_queued_bytes() as u64,
    );
    render_bars_dropped(&mut out, hub);
    render_sources(&mut out, hub);
    render_bus(&mut out, hub);
    render_histogram(
        &stats.ingest_to_send,
        &mut out,
        "quotehub_ingest_to_send_seconds",
        "Per record: hub receive time to the time its message was written.",
    );
    if let Some(recorder) = hub.recorder() {
        let _ = writeln!(
            out,
            "# HELP quotehub_recorded_records_total Events written to the capture (serve --record).\n\
             # TYPE quotehub_recorded_records_total counter\nquotehub_recorded_records_total {}\n\
             # HELP quotehub_recorder_failures_total Capture write errors; recording stops at the first.\n\
             # TYPE quotehub_recorder_failures_total counter\nquotehub_recorder_failures_total {}",
            recorder.records(),
            recorder.failed()
        );
    }
    out
}

/// Trades the bar builders left out, by interval and reason, summed over
/// the symbols: a trade late past its bar's close (event time went back by
/// more than the grace), one of size 0, one past a bar's `u32::MAX` trades.
fn render_bars_dropped(out: &mut String, hub: &Hub) {
    let name = "quotehub_bars_dropped_trades_total";
    let _ = writeln!(
        out,
        "# HELP {name} Trades left out of bars, by interval and reason (late: its bar had closed; zero_size; full: the bar held 2^32-1 trades).\n# TYPE {name} counter"
    );
    for interval in [BarInterval::SECOND, BarInterval::MINUTE] {
        let dropped = hub.bars_dropped(interval);
        let label = interval.name();
        for (reason, value) in [
            ("late", dropped.late),
            ("zero_size", dropped.zero_size),
            ("full", dropped.full),
        ] {
            let _ = writeln!(out, "{name}{{interval=\"{label}\",reason=\"{reason}\"}} {value}");
        }
    }
}

/// A per-source metric: name, Prometheus type, help, how to read it.
type SourceMetric = (&'static str, &'static str, &'static str, fn(&LiveStats) -> u64);

/// Each live source's counters, labelled with its name (its URL without query).
fn render_sources(out: &mut String, hub: &Hub) {
    let sources = hub.sources();
    if sources.is_empty() {
        return;
    }
    let metrics: [SourceMetric; 8] = [
        (
            "quotehub_source_up",
            "gauge",
            "1 while the live source is connected to its upstream.",
            |s| u64::from(s.is_up()),
        ),
        (
            "quotehub_source_connects_total",
            "counter",
            "Connections a live source established.",
            |s| LiveStats::get(&s.connects),
        ),
        (
            "quotehub_source_disconnects_total",
            "counter",
            "Established upstream connections lost.",
            |s| LiveStats::get(&s.disconnects),
        ),
        (
            "quotehub_source_failed_attempts_total",
            "counter",
            "Upstream connection attempts that failed.",
            |s| LiveStats::get(&s.failed_attempts),
        ),
        (
            "quotehub_source_messages_total",
            "counter",
            "Lines or messages received from upstream.",
            |s| LiveStats::get(&s.messages),
        ),
        (
            "quotehub_source_events_total",
            "counter",
            "Quotes and trades a live source delivered.",
            |s| LiveStats::get(&s.events),
        ),
        (
            "quotehub_source_rejected_total",
            "counter",
            "Malformed upstream input counted and skipped.",
            |s| LiveStats::get(&s.rejected),
        ),
        (
            "quotehub_source_bytes_total",
            "counter",
            "Bytes received from upstream.",
            |s| LiveStats::get(&s.bytes),
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (source, stats) in &sources {
            let label = source.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{source=\"{label}\"}} {}", value(stats));
        }
    }
}

/// The bus the hub is joined to, if any.
fn render_bus(out: &mut String, hub: &Hub) {
    let Some(bus) = hub.bus() else { return };
    let view = bus.view();
    let metrics: [(&str, &str, &str, u64); 16] = [
        (
            "quotehub_bus_connected",
            "gauge",
            "1 while the connection to the bus (NATS) is up.",
            u64::from(view.connected),
        ),
        (
            "quotehub_bus_connects_total",
            "counter",
            "Connections to the bus established, the first included.",
            view.connects,
        ),
        (
            "quotehub_bus_published_records_total",
            "counter",
            "Records the bus's stream acknowledged as stored (ingest).",
            view.published_records,
        ),
        (
            "quotehub_bus_published_bytes_total",
            "counter",
            "Their bytes (ingest).",
            view.published_bytes,
        ),
        (
            "quotehub_bus_ingest_dropped_total",
            "counter",
            "Records dropped because the ingest buffer was full while the bus was away.",
            view.ingest_dropped_records,
        ),
        (
            "quotehub_bus_ingest_buffered_bytes",
            "gauge",
            "Bytes queued for the bus and not yet acknowledged (ingest).",
            view.ingest_buffered_bytes,
        ),
        (
            "quotehub_bus_received_records_total",
            "counter",
            "Records read from the bus (edge).",
            view.received_records,
        ),
        (
            "quotehub_bus_received_bytes_total",
            "counter",
            "Their bytes (edge).",
            view.received_bytes,
        ),
        (
            "quotehub_bus_readers",
            "gauge",
            "Readers of the bus now, by clients' interest (edge): one per symbol (or \"*\") read, and one more for its bars and BBO while a client holds one of those channels.",
            view.readers,
        ),
        (
            "quotehub_bus_readers_started_total",
            "counter",
            "Readers started (edge), of symbols' records or of their bars and BBO: each a consumer on the bus.",
            view.readers_started,
        ),
        (
            "quotehub_bus_edge_lag_records",
            "gauge",
            "Records in the stream the edge's readers have yet to read: how far it is behind (edge).",
            view.edge_lag_records,
        ),
        (
            "quotehub_bus_edge_foreign_records_total",
            "counter",
            "Records read and not passed through: another sequence space, or not a quote or trade of the reader's symbol (edge).",
            view.edge_foreign_records,
        ),
        (
            "quotehub_bus_edge_ahead_records_total",
            "counter",
            "Records a reader dropped because they would have jumped over numbers another reader of the symbol was about to pass; that reader brings them (edge).",
            view.edge_ahead_records,
        ),
        (
            "quotehub_bus_edge_repeats_total",
            "counter",
            "Live records a reader dropped because it had read them already (edge).",
            view.edge_repeats,
        ),
        (
            "quotehub_bus_edge_repairs_total",
            "counter",
            "Times a reader caught up from the stream after reading live: a missed live record, a reconnect, a full subscription (edge).",
            view.edge_repairs,
        ),
        (
            "quotehub_bus_info",
            "gauge",
            "Always 1; the hub's role on the bus in its label.",
            1,
        ),
    ];
    for (name, kind, help, value) in metrics {
        let labels = if name == "quotehub_bus_info" {
            format!("{{role=\"{}\"}}", view.role)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}"
        );
    }
    if let Some(lease) = &view.lease {
        render_lease(out, lease);
    }
}

/// The ingest lease of a hub that ingests.
fn render_lease(out: &mut String, lease: &LeaseView) {
    let metrics: [(&str, &str, &str, u64); 6] = [
        (
            "quotehub_bus_lease_active",
            "gauge",
            "1 while this ingest hub holds the lease and publishes.",
            u64::from(lease.active),
        ),
        (
            "quotehub_bus_takeovers_total",
            "counter",
            "Times this ingest hub took the lease over and aligned with the stream.",
            lease.takeovers,
        ),
        (
            "quotehub_bus_takeovers_after_release_total",
            "counter",
            "Of those, takeovers of a lease its holder released on a clean shutdown (at once, not after the TTL).",
            lease.after_release,
        ),
        (
            "quotehub_bus_lease_losses_total",
            "counter",
            "Times it lost the lease (taken, or the bus away past its deadline).",
            lease.losses,
        ),
        (
            "quotehub_bus_takeover_unmatched_total",
            "counter",
            "Symbols a takeover could not align with the stream: a skipped number each.",
            lease.unmatched,
        ),
        (
            "quotehub_bus_lease_holder_info",
            "gauge",
            "1 while a holder of the lease is known; its id in the label.",
            u64::from(lease.holder.is_some()),
        ),
    ];
    for (name, kind, help, value) in metrics {
        let labels = match (&lease.holder, name) {
            (Some(holder), "quotehub_bus_lease_holder_info") => {
                format!("{{holder=\"{}\"}}", holder.replace('\\', "\\\\").replace('"', "\\\""))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {value}"
        );
    }
}

/// A histogram in the Prometheus text exposition.
fn render_histogram(histogram: &Histogram, out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, bucket) in histogram.bucket_counts().into_iter().enumerate() {
        cumulative += bucket;
        let bound = (1u64 << i) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count());
    let _ = writeln!(out, "{name}_sum {}", histogram.sum_ns() as f64 / 1e9);
    let _ = writeln!(out, "{name}_count {}", histogram.count());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets() {
        let histogram = Histogram::default();
        for ns in [1, 1_000, 1_001, 2_000, 3_000, 1_000_000] {
            histogram.observe_ns(ns);
        }
        let mut text = String::new();
        render_histogram(&histogram, &mut text, "x", "help");
        assert!(text.contains("x_bucket{le=\"0.000004\"} 5"), "{text}");
        assert!(text.contains("x_bucket{le=\"+Inf\"} 6"));
    }
}
