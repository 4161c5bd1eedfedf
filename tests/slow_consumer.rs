//! A client that stops reading is closed with 1008 and a reason once its
//! queue fills, after receiving only in-sequence records; fast clients beside
//! it receive every quote with no gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{TestHub, key, next, quote, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_proto::{Flags, Message as Records, Record};
use quotehub_server::{ServerConfig, Stats};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "NVDA", "TSLA"];
/// Published per round; below the queue capacity so the fast client, drained
/// between rounds, never overflows.
const ROUND: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_closed_with_a_reason_and_fast_clients_lose_nothing() {
    let hub = TestHub::start(ServerConfig {
        queue_capacity: 256,
        ..ServerConfig::default()
    })
    .await;

    // The stalled client: a tiny receive window, subscribed to everything, never reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = hub
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/quotes")
        .parse()
        .unwrap();
    let stream = within(socket.connect(addr)).await.unwrap();
    let (mut stalled, _) = within(tokio_tungstenite::client_async(hub.url.as_str(), stream))
        .await
        .unwrap();
    stalled
        .send(Message::text(r#"{"op":"subscribe","symbols":["*"],"id":1}"#))
        .await
        .unwrap();

    let mut fast = hub.connect().await;
    fast.subscribe(&["*"]).await.unwrap();
    // The stalled client reads nothing, not even its ack: wait until the
    // table holds both subscriptions (the ack is queued before the change).
    let table = hub.hub.table().clone();
    within(async {
        while table.wildcard_count() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;

    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut fast_seqs: HashMap<String, u64> = HashMap::new();
    let mut published = 0u64;
    let mut rounds_after_close = 0;
    while rounds_after_close < 5 {
        assert!(published < 2_000_000, "the stalled client was never closed");
        for _ in 0..ROUND {
            publisher.publish(quote(SYMBOLS[(published % 4) as usize], "1.00", "1.01", published));
            published += 1;
        }
        for _ in 0..ROUND {
            let (symbol, seq, _) = key(&next(&mut fast).await);
            let previous = fast_seqs.insert(symbol.clone(), seq).unwrap_or(0);
            assert_eq!(seq, previous + 1, "fast client missed a {symbol} quote");
        }
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
    assert!(close.reason.contains("slow consumer"), "{close:?}");
    assert!(
        stalled_seqs.values().sum::<u64>() < published,
        "the stalled client could not have kept up"
    );
    hub.shutdown().await;
}
