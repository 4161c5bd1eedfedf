//! Slow consumers, both policies, over real sockets. Under `disconnect` a
//! client that stops reading is closed with 1008 and a reason once its queue
//! fills, after receiving only in-sequence records. Under `conflate` (the
//! default) it is kept, its memory stays bounded, and when it reads again it
//! catches up through conflated records whose counts account for every update.
//! Either way, fast clients beside it receive every quote with no gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::attackers::stalled_client;
use common::{TestHub, key, next, quote, until, within};
use futures_util::StreamExt;
use quotehub_proto::{Flags, Message as Records, Record};
use quotehub_server::{ServerConfig, Stats};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "NVDA", "TSLA"];
/// Published per round; below the queue capacity so the fast client, drained
/// between rounds, never overflows.
const ROUND: u64 = 200;

/// Publishes one round of quotes over the four symbols, then reads them all
/// from the fast client, checking it missed none.
async fn publish_round(
    publisher: &mut quotehub_server::Publisher,
    fast: &mut quotehub_client::Client,
    fast_seqs: &mut HashMap<String, u64>,
    published: &mut u64,
) {
    for _ in 0..ROUND {
        publisher.publish(quote(SYMBOLS[(*published % 4) as usize], "1.00", "1.01", *published));
        *published += 1;
    }
    for _ in 0..ROUND {
        let (symbol, seq, _) = key(&next(fast).await);
        let previous = fast_seqs.insert(symbol.clone(), seq).unwrap_or(0);
        assert_eq!(seq, previous + 1, "fast client missed a {symbol} quote");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_closed_with_a_reason_and_fast_clients_lose_nothing() {
    let hub = TestHub::start(ServerConfig {
        queue_capacity: 256,
        ..ServerConfig::default()
    })
    .await;

    // The stalled client asks for the disconnect policy when it connects.
    let mut stalled = stalled_client(&hub, "?policy=disconnect").await;

    let mut fast = hub.connect().await;
    fast.subscribe(&["*"]).await.unwrap();
    // The stalled client reads nothing, not even its ack: wait until the
    // table holds both subscriptions (the ack is queued before the change).
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() >= 2).await;

    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut fast_seqs: HashMap<String, u64> = HashMap::new();
    let mut published = 0u64;
    let mut rounds_after_close = 0;
    while rounds_after_close < 5 {
        assert!(published < 2_000_000, "the stalled client was never closed");
        publish_round(&mut publisher, &mut fast, &mut fast_seqs, &mut published).await;
        if Stats::get(&hub.hub.stats().slow_consumer_disconnects) > 0 {
            rounds_after_close += 1;
        }
    }
    assert_eq!(Stats::get(&hub.hub.stats().slow_consumer_disconnects), 1);
    assert_eq!(fast_seqs.values().sum::<u64>(), published);

    // Now the stalled client reads: in-sequence records, then the close with its reason.
    let mut stalled_seqs: HashMap<String, u64> = HashMap::new();
    let close = loop {
        match within(stalled.next()).await {
            Some(Ok(Message::Binary(bytes))) => {
                for record in Records::decode(&bytes).unwrap() {
                    if let Record::Quote(q) = record.unwrap() {
                        let symbol = q.quote.symbol.to_string();
                        let previous = stalled_seqs.insert(symbol.clone(), q.quote.seq).unwrap_or(0);
                        assert_eq!(
                            q.quote.seq,
                            previous + 1,
                            "stalled client got a gap in {symbol} before its close"
                        );
                    }
                }
            }
            Some(Ok(Message::Text(_))) => {}
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a reason"),
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Policy);
    assert!(
        close.reason.contains("slow consumer") && close.reason.contains("records queued"),
        "the reason counts records, as queue_capacity does: {close:?}"
    );
    assert!(
        stalled_seqs.values().sum::<u64>() < published,
        "the stalled client could not have kept up"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_under_conflation_stays_bounded_and_catches_up_exactly() {
    let capacity = 256;
    let hub = TestHub::start(ServerConfig {
        queue_capacity: capacity,
        ..ServerConfig::default()
    })
    .await;
    let mut stalled = stalled_client(&hub, "").await;
    let mut fast = hub.connect().await;
    fast.subscribe(&["*"]).await.unwrap();
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() >= 2).await;

    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut fast_seqs: HashMap<String, u64> = HashMap::new();
    let mut published = 0u64;
    let mut deepest = 0;
    let mut rounds_conflating = 0;
    while rounds_conflating < 20 {
        assert!(published < 2_000_000, "the stalled client's queue never filled");
        publish_round(&mut publisher, &mut fast, &mut fast_seqs, &mut published).await;
        deepest = deepest.max(hub.hub.max_queue_depth());
        if Stats::get(&hub.hub.stats().conflations) > 0 {
            rounds_conflating += 1;
        }
    }
    assert_eq!(
        Stats::get(&hub.hub.stats().slow_consumer_disconnects),
        0,
        "conflation keeps the client"
    );
    assert!(
        deepest <= capacity + SYMBOLS.len(),
        "queue depth {deepest} exceeds capacity plus one per symbol"
    );

    // The stalled client reads again: every record continues its symbol's
    // sequence, a conflated one by exactly 1 + the updates it stands for.
    let last_seq = published / 4;
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut conflated_records = 0;
    while seqs.len() < 4 || seqs.values().any(|&seq| seq < last_seq) {
        let Some(Ok(message)) = within(stalled.next()).await else {
            panic!("the stalled client was closed")
        };
        let Message::Binary(bytes) = message else { continue };
        for record in Records::decode(&bytes).unwrap() {
            let Record::Quote(q) = record.unwrap() else { continue };
            let symbol = q.quote.symbol.to_string();
            let previous = seqs.insert(symbol.clone(), q.quote.seq).unwrap_or(0);
            if q.flags.contains(Flags::CONFLATED) {
                conflated_records += 1;
                assert_eq!(
                    q.quote.seq,
                    previous + 1 + u64::from(q.conflated),
                    "{symbol}: conflated count is off"
                );
            } else {
                assert_eq!(q.quote.seq, previous + 1, "{symbol}: a gap outside conflation");
            }
        }
    }
    assert!(conflated_records > 0, "the catch-up went through conflated records");
    hub.shutdown().await;
}
