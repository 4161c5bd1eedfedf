//! Symbols no feed has sent are borrowed, not kept: a client that subscribes
//! to many of them and leaves gives their slots back, so later clients can
//! still subscribe to new symbols; and a client that hits its own budget of
//! such symbols does not use up the hub's, so another client's subscribe
//! still succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, key, next, quote, until, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(hub: &TestHub) -> Ws {
    within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap()
        .0
}

/// Subscribes to `symbols` and returns the reply.
async fn subscribe(ws: &mut Ws, id: u64, symbols: &[String]) -> Value {
    let list: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(r#"{{"op":"subscribe","symbols":[{}],"id":{id}}}"#, list.join(","));
    ws.send(Message::text(text)).await.unwrap();
    loop {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            if reply["id"] == id {
                return reply;
            }
        }
    }
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unseen_symbols_are_released_when_their_last_subscriber_leaves() {
    const UNSEEN: usize = 800;
    let hub = TestHub::start(ServerConfig {
        // Room for the first client's symbols, not for both clients' at once.
        max_symbols: UNSEEN + 1,
        requests_per_second: 1_000,
        request_burst: 1_000,
        ..ServerConfig::default()
    })
    .await;
    let table = hub.hub.table();
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "1.00", "1.01", 1));
    assert_eq!(table.symbol_count(), 1);

    // TC0: a client borrows UNSEEN never-published symbols (and AAPL), then leaves.
    let mut borrower = connect(&hub).await;
    let mut symbols = names("U", UNSEEN);
    symbols.push("AAPL".into());
    assert_eq!(subscribe(&mut borrower, 1, &symbols).await["type"], "ack");
    assert_eq!(table.symbol_count(), UNSEEN + 1);
    // A symbol that is published while borrowed is kept: it has a sequence now.
    publisher.publish(quote("U0", "1.00", "1.01", 2));
    drop(borrower);
    // TC1: the table gives back every unseen slot, keeps the published ones.
    until(|| table.symbol_count() == 2).await;
    assert!(table.is_known(common::sym("U0")) && table.is_known(common::sym("AAPL")));
    assert!(!table.is_known(common::sym("U1")));

    // TC2: a later client may subscribe to as many new symbols again.
    let mut later = hub.connect().await;
    let fresh = names("V", UNSEEN - 1);
    let fresh: Vec<&str> = fresh.iter().map(String::as_str).collect();
    later.subscribe(&fresh).await.unwrap();
    later.subscribe(&["U0"]).await.unwrap();
    // U0 kept its sequence: the snapshot is seq 1, the next record seq 2.
    assert_eq!(key(&next(&mut later).await), ("U0".into(), 1, true));
    publisher.publish(quote("U0", "1.00", "1.01", 3));
    publisher.publish(quote("V0", "1.00", "1.01", 3));
    assert_eq!(key(&next(&mut later).await), ("U0".into(), 2, false));
    assert_eq!(key(&next(&mut later).await), ("V0".into(), 1, false));
    assert_eq!(table.symbol_count(), UNSEEN + 1);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_unseen_budget_does_not_fail_anothers_subscribe() {
    let hub = TestHub::start(ServerConfig {
        max_symbols: 30,
        max_unseen_symbols_per_client: 10,
        requests_per_second: 1_000,
        request_burst: 1_000,
        ..ServerConfig::default()
    })
    .await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    let mut greedy = connect(&hub).await;
    // TC0: up to its budget, in any number of requests.
    assert_eq!(subscribe(&mut greedy, 1, &names("G", 6)).await["type"], "ack");
    assert_eq!(subscribe(&mut greedy, 2, &names("H", 4)).await["type"], "ack");
    // TC1: past it, refused, whether in one request or a symbol at a time,
    // and the refusal changes nothing.
    let refused = subscribe(&mut greedy, 3, &names("I", 20)).await;
    assert_eq!(refused["code"], "symbol_limit", "{refused}");
    for (i, symbol) in names("J", 20).into_iter().enumerate() {
        let refused = subscribe(&mut greedy, 10 + i as u64, &[symbol]).await;
        assert_eq!(refused["code"], "symbol_limit", "{refused}");
    }
    assert_eq!(hub.hub.table().symbol_count(), 10);
    // TC2: another client's subscribe to new symbols succeeds.
    let mut other = connect(&hub).await;
    assert_eq!(subscribe(&mut other, 1, &names("K", 10)).await["type"], "ack");
    // TC3: symbols a feed has sent since no longer count: greedy may borrow again.
    for symbol in names("G", 6) {
        publisher.publish(quote(&symbol, "1.00", "1.01", 1));
    }
    assert_eq!(subscribe(&mut greedy, 40, &names("L", 6)).await["type"], "ack");
    // TC4: already-published symbols are never refused.
    publisher.publish(quote("PUB", "1.00", "1.01", 1));
    assert_eq!(subscribe(&mut greedy, 41, &["PUB".to_owned()]).await["type"], "ack");
    hub.shutdown().await;
}
