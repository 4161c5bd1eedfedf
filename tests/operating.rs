//! The operator's view: Prometheus metrics and a health answer over plain
//! HTTP on the hub's own port, reflecting what actually happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, http_get, next, quote};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;

/// The value of an unlabelled sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_report_the_hubs_state() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = hub.connect().await;
    client.subscribe(&["AAPL", "MSFT"]).await.unwrap();
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    for i in 0..10 {
        publisher.publish(quote(if i % 2 == 0 { "AAPL" } else { "MSFT" }, "1.00", "1.01", i));
    }
    publisher.publish(quote("TSLA", "1.00", "1.01", 99));
    for _ in 0..10 {
        next(&mut client).await;
    }

    let (status, metrics) = http_get(&hub, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&metrics, "quotehub_events_in_total"), 11.0);
    assert_eq!(sample(&metrics, "quotehub_connections"), 1.0);
    assert_eq!(sample(&metrics, "quotehub_symbols"), 3.0);
    // The 10 records; the ack is a reply, not a record.
    assert_eq!(sample(&metrics, "quotehub_records_queued_total"), 10.0);
    // Every delivered record was observed once, from receive to send.
    assert_eq!(sample(&metrics, "quotehub_ingest_to_send_seconds_count"), 10.0);
    assert!(metrics.contains("# TYPE quotehub_ingest_to_send_seconds histogram"));

    let (status, health) = http_get(&hub, "/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        (health["status"].as_str(), health["clients"].as_u64()),
        (Some("ok"), Some(1))
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_live_records_are_timed_from_ingest_to_send() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // Received long before anyone asks: a snapshot of it is no live latency.
    let mut old = quote("AAPL", "1.00", "1.01", 1);
    old.set_recv_ts(quotehub_proto::now_ns() - 3_600_000_000_000);
    hub.hub.publisher(Flags::default(), 0).publish(old);
    let mut client = hub.connect().await;
    client.subscribe(&["AAPL"]).await.unwrap();
    let (_, snapshot, _) = common::key(&next(&mut client).await);
    assert_eq!(snapshot, 1);
    // A resume that the history answers is catch-up too.
    publisher.publish(quote("AAPL", "1.01", "1.02", 2));
    next(&mut client).await;
    let mut resuming = hub.connect().await;
    resuming
        .send_text(r#"{"op":"subscribe","symbols":["AAPL"],"resume":{"AAPL":0}}"#)
        .await
        .unwrap();
    for seq in 1..=2 {
        assert_eq!(common::key(&next(&mut resuming).await).1, seq);
    }
    publisher.publish(quote("AAPL", "1.02", "1.03", 3));
    next(&mut client).await;
    next(&mut resuming).await;

    let (_, metrics) = http_get(&hub, "/metrics").await;
    // Live: seq 2 to the first client, seq 3 to both. Not the snapshot nor
    // the two resumed records, whose receive times are old.
    assert_eq!(
        sample(&metrics, "quotehub_ingest_to_send_seconds_count"),
        3.0,
        "{metrics}"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_recorder_wrote() {
    let capture = std::env::temp_dir().join(format!("quotehub-metrics-{}.qhc", std::process::id()));
    let _ = std::fs::remove_file(&capture);
    let recorder = std::sync::Arc::new(quotehub_server::Recorder::create(&capture).unwrap());
    let mut recording = quotehub_server::Hub::new();
    recording.record_to(recorder.clone());
    let hub = TestHub::start_with_hub(recording, ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    for i in 0..3 {
        publisher.publish(quote("AAPL", "1.00", "1.01", i));
    }
    let (_, metrics) = http_get(&hub, "/metrics").await;
    assert_eq!(sample(&metrics, "quotehub_recorded_records_total"), 3.0);
    assert_eq!(sample(&metrics, "quotehub_recorder_failures_total"), 0.0);
    assert_eq!(recorder.finish().unwrap(), 3);
    hub.shutdown().await;
    let _ = std::fs::remove_file(&capture);
}
