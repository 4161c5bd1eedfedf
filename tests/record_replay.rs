//! Record → replay is bit-identical: a hub recording what it ingests writes a
//! capture holding exactly the records its clients received, and a hub
//! replaying that capture sends the same records again, byte for byte, but
//! for the receive time it stamps anew.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{TestHub, bundled_feed, next, replay_at_max};
use quotehub_client::{Client, Update};
use quotehub_feed::{CaptureFile, RecordedFeed};
use quotehub_proto::{Event, Flags, QuoteRecord, TradeRecord};
use quotehub_server::{Hub, Recorder, ServerConfig};

/// Events in the bundled feed.
const BUNDLED_EVENTS: usize = 74_900;
/// Where the receive time sits in quote and trade records (SPEC.md).
const RECV_TS: std::ops::Range<usize> = 40..48;

/// A queue deep enough that a client reading a whole feed replayed at full
/// speed is never conflated, so every record arrives as published.
fn roomy() -> ServerConfig {
    ServerConfig {
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    }
}

/// The wire bytes of a received quote or trade record.
fn wire(update: &Update) -> Vec<u8> {
    match update {
        Update::Quote { record, .. } => record.encode().to_vec(),
        Update::Trade { record, .. } => record.encode().to_vec(),
        other => panic!("expected a quote or trade, got {other:?}"),
    }
}

/// The wire bytes a hub sends for a captured event, replayed.
fn as_sent(event: &Event) -> Vec<u8> {
    match *event {
        Event::Quote(quote) => QuoteRecord {
            quote,
            flags: Flags::REPLAYED,
            conflated: 0,
        }
        .encode()
        .to_vec(),
        Event::Trade(trade) => TradeRecord {
            trade,
            flags: Flags::REPLAYED,
            conflated: 0,
        }
        .encode()
        .to_vec(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Replays `feed` into a served `hub` and returns the record bytes a
/// client subscribed to everything received.
async fn received(hub: Hub, feed: PathBuf) -> Vec<Vec<u8>> {
    let served = TestHub::start_with_hub(hub, roomy()).await;
    let mut client: Client = served.connect().await;
    client.subscribe(&["*"]).await.unwrap();
    let feeder = replay_at_max(&served.hub, feed);
    let mut records = Vec::with_capacity(BUNDLED_EVENTS);
    for _ in 0..BUNDLED_EVENTS {
        records.push(wire(&next(&mut client).await));
    }
    feeder.join().unwrap();
    assert_eq!(client.gaps(), 0);
    served.shutdown().await;
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_capture_replays_the_same_records_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("quotehub-record-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("bundled.qhc");
    let _ = std::fs::remove_file(&capture);

    // A hub replaying the bundled feed records what it ingests.
    let mut original = Hub::new();
    let recorder = Arc::new(Recorder::create(&capture).unwrap());
    original.record_to(Arc::clone(&recorder));
    let first = received(original, bundled_feed()).await;
    assert_eq!(recorder.finish().unwrap(), BUNDLED_EVENTS as u64);

    // The capture holds exactly what the clients received: every byte,
    // receive times and sequence numbers included (flags aside: a capture
    // records ingest, not delivery).
    let mut file = CaptureFile::open(&capture).unwrap();
    let mut captured = Vec::new();
    while let Some(event) = file.next_event().unwrap() {
        captured.push(as_sent(&event));
    }
    assert_eq!(file.stats().rejected, 0);
    assert_eq!(captured.len(), BUNDLED_EVENTS);
    for (index, (sent, kept)) in first.iter().zip(&captured).enumerate() {
        assert_eq!(sent, kept, "record {index} differs between the hub and its capture");
    }

    // A fresh hub replaying the capture sends the same records again; only
    // the receive time is its own.
    let second = received(Hub::new(), capture.clone()).await;
    for (index, (before, again)) in first.iter().zip(&second).enumerate() {
        assert_eq!(before[..RECV_TS.start], again[..RECV_TS.start], "record {index}");
        assert_eq!(before[RECV_TS.end..], again[RECV_TS.end..], "record {index}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
