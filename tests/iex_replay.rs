//! The real IEX sample replays through the hub to a subscribed client with
//! every quote update and trade exactly as in the pcap file: same order, same
//! exact prices, sizes and venue timestamps, no sequence gaps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{TestHub, next, replay_at_max};
use quotehub_client::Update;
use quotehub_feed::open_recorded;
use quotehub_proto::{Event, Flags};
use quotehub_server::ServerConfig;

fn sample() -> Option<PathBuf> {
    common::shared_data::find(common::shared_data::IEX_SAMPLE)
}

/// The pcap's events read straight from the decoder, with the hub's
/// stamps cleared so they compare with what a client receives.
fn pcap_events(path: &Path) -> Vec<Event> {
    let mut feed = open_recorded(path).unwrap();
    let mut events = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        events.push(event);
    }
    assert_eq!(feed.stats().rejected, 0);
    events
}

/// A received update as the event it carries, hub stamps cleared.
fn as_event(update: &Update, seqs: &mut HashMap<String, u64>) -> Event {
    let (mut event, flags) = match update {
        Update::Quote { record, .. } => (Event::Quote(record.quote), record.flags),
        Update::Trade { record, .. } => (Event::Trade(record.trade), record.flags),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(flags, Flags::REPLAYED);
    let symbol = event.symbol().to_string();
    let seq = match &event {
        Event::Quote(q) => q.seq,
        Event::Trade(t) => t.seq,
        _ => unreachable!(),
    };
    let previous = seqs.insert(symbol.clone(), seq).unwrap_or(0);
    assert_eq!(seq, previous + 1, "sequence gap for {symbol}");
    event.set_seq(0);
    event.set_recv_ts(0);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quote_update_and_trade_of_the_sample_reaches_a_client_exactly() {
    let Some(path) = sample() else { return };
    let expected = pcap_events(&path);
    let quotes = expected.iter().filter(|e| matches!(e, Event::Quote(_))).count();
    let trades = expected.iter().filter(|e| matches!(e, Event::Trade(_))).count();
    assert_eq!((quotes, trades), (27_217, 6_390), "the sample's documented counts");

    let hub = TestHub::start(ServerConfig {
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    })
    .await;
    let mut client = hub.connect().await;
    client.subscribe(&["*"]).await.unwrap();
    let feeder = replay_at_max(&hub.hub, path);

    let mut seqs = HashMap::new();
    for (index, want) in expected.iter().enumerate() {
        let got = as_event(&next(&mut client).await, &mut seqs);
        assert_eq!(&got, want, "event {index} differs from the pcap file");
    }
    feeder.join().unwrap();
    assert_eq!(client.gaps(), 0);
    hub.shutdown().await;
}
