//! The send time (the message header's `send_ts`) is read once per batch of
//! writes (SPEC.md, "Message header"; `send_batch.rs`): the messages the
//! feed thread writes itself to idle clients for one staged batch carry one
//! stamp. Over real sockets, with real clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, next, quote};
use quotehub_client::Update;
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;

/// Clients of one symbol; batches published until one reached them all
/// from the feed thread.
const CLIENTS: usize = 3;
const MOST_BATCHES: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_of_one_staged_batch_to_idle_clients_carry_one_send_time() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = hub.connect().await;
        client.subscribe(&["AAPL"]).await.unwrap();
        clients.push(client);
    }
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // A batch goes to a client's socket from the feed thread only while its
    // writer is idle (it may still be finishing the subscribe's ack): the
    // first batch that every writer left to the feed thread has one stamp
    // in every client's message; each batch before it is checked too.
    let mut one_stamp = None;
    for event_ts in 1..=MOST_BATCHES {
        publisher.stage(quote("AAPL", "270.10", "270.12", event_ts));
        publisher.flush();
        let mut stamps = Vec::new();
        for client in &mut clients {
            let Update::Quote { record, send_ts } = next(client).await else {
                panic!("not a quote")
            };
            assert_eq!(
                record.quote.event_ts, event_ts,
                "every batch reaches every client, in order"
            );
            assert!(send_ts >= record.quote.recv_ts);
            stamps.push(send_ts);
        }
        if stamps.iter().all(|&stamp| stamp == stamps[0]) {
            one_stamp = Some(event_ts);
            break;
        }
    }
    assert!(
        one_stamp.is_some(),
        "in {MOST_BATCHES} batches, none reached its {CLIENTS} clients with one send time"
    );
    hub.shutdown().await;
}
