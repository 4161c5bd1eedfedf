//! Hostile row 2: a client that sends big requests under the rate limit and
//! never reads their replies. The replies count against its reply budget:
//! once it is spent the client is closed (1008, "reply budget"), the hub's
//! queued bytes stay under the documented ceiling meanwhile, and a
//! well-behaved client beside it receives every update with no gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::attackers::neighbour;
use common::{TestHub, quote, until, within};
use futures_util::SinkExt;
use quotehub_server::{ForcedClose, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "NVDA", "TSLA"];
/// Requests the attacker may send: with ~62 KB replies, ~25 MB unread if
/// nothing stopped it.
const MAX_REQUESTS: usize = 400;
/// Reply budget for the test, as the default.
const BUDGET: usize = 256 * 1024;

/// A ~62 KB unsubscribe request, answered by an ack that names every symbol.
fn big_unsubscribe(id: usize) -> String {
    let symbols: Vec<String> = (0..4_400).map(|n| format!("\"ZZ{n:05}\"")).collect();
    format!(r#"{{"op":"unsubscribe","symbols":[{}],"id":{id}}}"#, symbols.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_replies_is_closed_once_its_reply_budget_is_spent() {
    let config = ServerConfig {
        // The attacker stays under the rate limit (a request of 4,400
        // symbols weighs 45 tokens).
        requests_per_second: 100_000,
        request_burst: 100_000,
        reply_budget_bytes: BUDGET,
        // Not the write deadline: the reply budget must close it.
        write_timeout: Duration::from_secs(600),
        ..ServerConfig::default()
    };
    let ceiling = config.queue_capacity * 72 + config.max_message_bytes + BUDGET;
    let hub = TestHub::start(config).await;
    let mut received = neighbour(&hub).await;
    let table = hub.hub.table().clone();
    until(|| table.wildcard_count() == 1).await;

    // The attacker: a 4 KiB receive window, and it never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = within(socket.connect(hub.addr().parse().unwrap())).await.unwrap();
    let (mut attacker, _) = within(tokio_tungstenite::client_async(&hub.url, stream)).await.unwrap();
    until(|| hub.hub.client_count() == 2).await;

    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    let mut published = 0u64;
    let mut deepest = 0;
    for id in 0..MAX_REQUESTS {
        if hub.hub.client_count() == 1 {
            break;
        }
        // Once the hub drops it, sending fails: that is the end too.
        if within(attacker.send(Message::text(big_unsubscribe(id)))).await.is_err() {
            break;
        }
        deepest = deepest.max(hub.hub.max_queued_bytes());
        // The neighbour keeps receiving everything meanwhile.
        for _ in 0..20 {
            publisher.publish(quote(SYMBOLS[(published % 4) as usize], "1.00", "1.01", published));
            published += 1;
        }
        let target = published;
        within(received.wait_for(|&n| n >= target)).await.unwrap();
    }
    until(|| hub.hub.client_count() == 1).await;
    assert_eq!(hub.hub.stats().forced_closes(ForcedClose::ReplyBudget), 1);
    assert!(
        deepest <= ceiling,
        "{deepest} bytes queued for one client, over {ceiling}"
    );
    assert!(hub.hub.queued_bytes() <= ceiling, "the neighbour alone is left");
    drop(attacker);
    hub.shutdown().await;
}
