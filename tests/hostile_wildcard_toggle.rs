//! A hostile client holding 10,000 named symbols toggles `"*"` over and over
//! while the table holds 100,000 symbols. Each toggle must cost the hub work
//! in the symbols it changes, one slot's lock at a time, so a well-behaved
//! subscriber beside it keeps receiving its symbol with no gap; and the
//! attacker's own named symbols keep flowing across the toggles with no gap
//! and no duplicate (its `"*"` joins bring snapshots, flagged as such).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{TestHub, key, next, quote, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_proto::{Flags, Message as Records, Record};
use quotehub_server::ServerConfig;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Symbols in the table (published through the hub before the attack).
const TABLE: usize = 100_000;
/// Symbols the attacker holds by name.
const NAMED: usize = 10_000;
/// `"*"` subscribe + unsubscribe pairs the attacker sends.
const TOGGLES: usize = 2;
/// The symbol the well-behaved subscriber reads, published all along; the
/// attacker names it too.
const LIVE: &str = "LIVE";

fn name(i: usize) -> String {
    format!("S{i}")
}

/// Sends a request and reads until its reply, returning it with the live
/// (non-snapshot) sequence numbers of `LIVE` seen meanwhile.
async fn request(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    text: String,
    id: u64,
    live: &mut Vec<u64>,
) -> Value {
    ws.send(Message::text(text)).await.unwrap();
    loop {
        match within(ws.next()).await.unwrap().unwrap() {
            Message::Text(text) => {
                let reply: Value = serde_json::from_str(text.as_str()).unwrap();
                if reply["id"] == id {
                    return reply;
                }
            }
            Message::Binary(bytes) => collect_live(&bytes, live),
            _ => {}
        }
    }
}

fn collect_live(bytes: &[u8], live: &mut Vec<u64>) {
    for record in Records::decode(bytes).unwrap() {
        if let Record::Quote(record) = record.unwrap()
            && record.quote.symbol.as_str() == LIVE
            && !record.flags.contains(Flags::SNAPSHOT)
        {
            live.push(record.quote.seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggling_wildcard_under_a_full_table_stalls_no_one_and_loses_nothing() {
    let hub = TestHub::start(ServerConfig {
        // The attack here is the toggle's cost, not the request rate or the
        // attacker's queue: let both through.
        requests_per_second: 100_000,
        request_burst: 100_000,
        queue_capacity: 4 * TABLE,
        ..ServerConfig::default()
    })
    .await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    for i in 0..TABLE {
        publisher.publish(quote(&name(i), "1.00", "1.01", i as u64));
    }
    publisher.publish(quote(LIVE, "1.00", "1.01", 0));

    let mut good = hub.connect().await;
    good.subscribe(&[LIVE]).await.unwrap();
    let (_, first, snapshot) = key(&next(&mut good).await);
    assert!(snapshot && first == 1, "the good client starts from a snapshot");

    let (mut attacker, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap();
    let mut attacker_live = Vec::new();
    let mut id = 0;
    for chunk in (0..NAMED - 1).collect::<Vec<_>>().chunks(2_000) {
        id += 1;
        let symbols: Vec<String> = chunk.iter().map(|&i| format!("\"{}\"", name(i))).collect();
        let text = format!(r#"{{"op":"subscribe","symbols":[{}],"id":{id}}}"#, symbols.join(","));
        let reply = request(&mut attacker, text, id, &mut attacker_live).await;
        assert_eq!(reply["type"], "ack", "{reply}");
    }
    id += 1;
    let text = format!(r#"{{"op":"subscribe","symbols":["{LIVE}"],"id":{id}}}"#);
    assert_eq!(
        request(&mut attacker, text, id, &mut attacker_live).await["type"],
        "ack"
    );

    // LIVE publishes on its own thread for as long as the attack lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = Arc::clone(&stop);
        let mut publisher = hub.hub.publisher(Flags::default(), 0);
        std::thread::spawn(move || {
            let mut published = 0;
            while !stop.load(Ordering::Relaxed) {
                publisher.publish(quote(LIVE, "1.00", "1.01", 1));
                published += 1;
                std::thread::yield_now();
            }
            (publisher, published)
        })
    };
    // The good client reads all along, up to the final record (its sequence
    // number is set before that record is published).
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let reader = {
        let target = Arc::clone(&target);
        tokio::spawn(async move {
            let mut seqs = vec![first];
            loop {
                let (_, seq, snapshot) = key(&next(&mut good).await);
                assert!(!snapshot, "one snapshot only");
                seqs.push(seq);
                if seq == target.load(Ordering::Acquire) {
                    return (good, seqs);
                }
            }
        })
    };

    for round in 0..TOGGLES {
        id += 1;
        let text = format!(r#"{{"op":"subscribe","symbols":["*"],"id":{id}}}"#);
        let reply = request(&mut attacker, text, id, &mut attacker_live).await;
        assert_eq!(reply["type"], "ack", "round {round}: {reply}");
        id += 1;
        let text = format!(r#"{{"op":"unsubscribe","symbols":["*"],"id":{id}}}"#);
        let reply = request(&mut attacker, text, id, &mut attacker_live).await;
        assert_eq!(reply["type"], "ack", "round {round}: {reply}");
    }
    stop.store(true, Ordering::Relaxed);
    let (mut publisher, published) = feeder.join().unwrap();
    // Seq 1 was published before the attack; the final record follows.
    let last = 1 + published + 1;
    target.store(last, Ordering::Release);
    publisher.publish(quote(LIVE, "1.00", "1.01", 2));
    let (good, seqs) = within(reader).await.unwrap();

    // TC0: the good client saw every LIVE sequence number, once, in order.
    assert!(last > 2, "LIVE published during the attack");
    let expected: Vec<u64> = (1..=last).collect();
    assert!(
        seqs == expected,
        "the good client missed or repeated records: {} of {last}",
        seqs.len()
    );
    assert_eq!(good.gaps(), 0);
    // TC1: the attacker's named LIVE kept flowing through every toggle: its
    // live records rise by exactly one (a `"*"` join adds only snapshots).
    while attacker_live.last() != Some(&last) {
        if let Message::Binary(bytes) = within(attacker.next()).await.unwrap().unwrap() {
            collect_live(&bytes, &mut attacker_live);
        }
    }
    let first_live = attacker_live[0];
    let expected: Vec<u64> = (first_live..=last).collect();
    assert!(
        attacker_live == expected,
        "the attacker's named symbol had a gap or duplicate ({} records from {first_live} to {last})",
        attacker_live.len()
    );
    hub.shutdown().await;
}

/// A `"*"` request weighs like 1,000 symbols in the rate limit (11 tokens),
/// so a client cannot toggle it at the rate of small requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_request_weighs_like_a_long_list() {
    // 40 tokens, refilled at 1 a second: three "*" requests fit, not four;
    // forty one-symbol requests would.
    let hub = TestHub::start(ServerConfig {
        requests_per_second: 1,
        request_burst: 40,
        ..ServerConfig::default()
    })
    .await;
    let (mut ws, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap();
    let mut ignored = Vec::new();
    for (id, op) in [(1, "subscribe"), (2, "unsubscribe"), (3, "subscribe")] {
        let text = format!(r#"{{"op":"{op}","symbols":["*"],"id":{id}}}"#);
        assert_eq!(request(&mut ws, text, id, &mut ignored).await["type"], "ack");
    }
    let text = r#"{"op":"unsubscribe","symbols":["*"],"id":4}"#.to_owned();
    let refused = request(&mut ws, text, 4, &mut ignored).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    // Small requests still pass on what is left (7 tokens).
    let text = r#"{"op":"subscribe","symbols":["AAPL"],"id":5}"#.to_owned();
    assert_eq!(request(&mut ws, text, 5, &mut ignored).await["type"], "ack");
    assert_eq!(
        hub.hub.table().wildcard_count(),
        1,
        "the refused request changed nothing"
    );
    hub.shutdown().await;
}
