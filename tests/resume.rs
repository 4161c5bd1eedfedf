//! A client that loses its connection reconnects and resumes: nothing the
//! hub's history still held is lost, and when it no longer held it the
//! client is told with a RESET snapshot. The connection is cut for real, by a
//! TCP proxy between client and hub, or by restarting the hub, whose new
//! sequence space (epoch) no resume may be taken for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::{TestHub, key, next, quote, until, within};
use quotehub_client::{Client, Reconnect, Update};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A loopback TCP proxy whose current connections can be cut at will.
struct Proxy {
    url: String,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let target: SocketAddr = upstream
            .trim_start_matches("ws://")
            .trim_end_matches("/v1/quotes")
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/quotes", listener.local_addr().unwrap());
        let (cut, cuts) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {} // dropping both sockets cuts the connection
                    }
                });
            }
        });
        Self { url, cut }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// A client that reconnects and resumes by itself, connected through `proxy`.
async fn connect_through(proxy: &Proxy) -> Client {
    within(Client::connect(&proxy.url))
        .await
        .unwrap()
        .with_reconnect(Reconnect::default())
}

/// Cuts every connection through `proxy` and waits until the hub has let go of them.
async fn cut(proxy: &Proxy, hub: &TestHub) {
    proxy.cut_all();
    until(|| hub.hub.client_count() == 0).await;
}

async fn publish_quotes(hub: &TestHub, count: u64) {
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    for i in 0..count {
        publisher.publish(quote("AAPL", "271.22", "271.23", i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_cut_loses_nothing_the_history_held() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let proxy = Proxy::start(&hub.url).await;
    let mut client = connect_through(&proxy).await;
    client.subscribe(&["AAPL"]).await.unwrap();
    publish_quotes(&hub, 5).await;
    for seq in 1..=5 {
        assert_eq!(key(&next(&mut client).await), ("AAPL".into(), seq, false));
    }

    // Published while the client is away: the history (64 deep) holds them.
    cut(&proxy, &hub).await;
    publish_quotes(&hub, 5).await;

    assert!(matches!(next(&mut client).await, Update::Reconnected { .. }));
    for seq in 6..=10 {
        assert_eq!(
            key(&next(&mut client).await),
            ("AAPL".into(), seq, false),
            "resumed from history"
        );
    }
    publish_quotes(&hub, 1).await;
    assert_eq!(
        key(&next(&mut client).await),
        ("AAPL".into(), 11, false),
        "then live again"
    );
    assert_eq!((client.gaps(), client.resets()), (0, 0));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_beyond_the_history_says_so_with_a_reset_snapshot() {
    let hub = TestHub::start_with_hub(quotehub_server::Hub::with_history(2), ServerConfig::default()).await;
    let proxy = Proxy::start(&hub.url).await;
    let mut client = connect_through(&proxy).await;
    client.subscribe(&["AAPL"]).await.unwrap();
    publish_quotes(&hub, 1).await;
    assert_eq!(key(&next(&mut client).await), ("AAPL".into(), 1, false));

    cut(&proxy, &hub).await;
    publish_quotes(&hub, 5).await; // seq 2..=6; the history keeps only 5 and 6

    assert!(matches!(next(&mut client).await, Update::Reconnected { .. }));
    let Update::Quote { record, .. } = next(&mut client).await else {
        panic!("a snapshot")
    };
    assert_eq!(record.quote.seq, 6);
    assert!(record.flags.contains(Flags::SNAPSHOT) && record.flags.contains(Flags::RESET));
    assert_eq!((client.gaps(), client.resets()), (0, 1));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_subscription_resumes_every_symbol_it_had_seen() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let proxy = Proxy::start(&hub.url).await;
    let mut client = connect_through(&proxy).await;
    client.subscribe(&["*"]).await.unwrap();
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "1.00", "1.01", 1));
    publisher.publish(quote("MSFT", "2.00", "2.01", 2));
    assert_eq!(key(&next(&mut client).await), ("AAPL".into(), 1, false));
    assert_eq!(key(&next(&mut client).await), ("MSFT".into(), 1, false));

    cut(&proxy, &hub).await;
    publisher.publish(quote("MSFT", "2.01", "2.02", 3));
    publisher.publish(quote("NEWCO", "3.00", "3.01", 4));

    assert!(matches!(next(&mut client).await, Update::Reconnected { .. }));
    // Resumed symbols continue; a symbol first seen while away starts with its snapshot.
    let mut after: Vec<(String, u64, bool)> = Vec::new();
    for _ in 0..2 {
        after.push(key(&next(&mut client).await));
    }
    after.sort();
    assert_eq!(after, [("MSFT".into(), 2, false), ("NEWCO".into(), 1, true)]);
    publisher.publish(quote("AAPL", "1.01", "1.02", 5));
    assert_eq!(
        key(&next(&mut client).await),
        ("AAPL".into(), 2, false),
        "AAPL resumed with nothing missed"
    );
    assert_eq!((client.gaps(), client.resets()), (0, 0));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_under_a_client_ends_in_reset_never_a_backwards_sequence() {
    let first = TestHub::start(ServerConfig::default()).await;
    let addr = first.addr();
    let mut client = within(Client::connect(&first.url))
        .await
        .unwrap()
        .with_reconnect(Reconnect::default());
    client.subscribe(&["AAPL", "MSFT"]).await.unwrap();
    let first_epoch = client.epoch().expect("the ack names the hub's epoch");
    let mut publisher = first.hub.publisher(Flags::default(), 0);
    for i in 0..40 {
        publisher.publish(quote("AAPL", "271.22", "271.23", i));
    }
    publisher.publish(quote("MSFT", "509.84", "509.86", 41));
    let mut seen = 0;
    while seen < 41 {
        if matches!(next(&mut client).await, Update::Quote { .. }) {
            seen += 1;
        }
    }

    // The hub restarts on the same port with nothing of the old numbering;
    // its AAPL is at 5, below the 40 the client saw, and MSFT unknown.
    first.shutdown().await;
    let hub = quotehub_server::Hub::new();
    let mut publisher = hub.publisher(Flags::default(), 0);
    for i in 0..5 {
        publisher.publish(quote("AAPL", "271.30", "271.31", 100 + i));
    }
    let second = TestHub::start_at(&addr, hub, ServerConfig::default()).await;

    // Whatever arrives from the old hub's shutdown, the resume ends in a
    // RESET snapshot of AAPL at the new hub's 5, and never a live record
    // numbered back from 40.
    let reset = loop {
        match next(&mut client).await {
            Update::Quote { record, .. } if record.quote.symbol.as_str() == "AAPL" => {
                assert!(
                    record.flags.contains(Flags::SNAPSHOT) && record.flags.contains(Flags::RESET),
                    "the first AAPL record after the restart is a reset snapshot: {record:?}"
                );
                break record;
            }
            Update::Quote { record, .. } => panic!("no MSFT snapshot: the new hub has none: {record:?}"),
            _ => {}
        }
    };
    assert_eq!(reset.quote.seq, 5);
    assert_ne!(
        client.epoch(),
        Some(first_epoch),
        "the client follows the new sequence space"
    );
    assert_eq!(client.epoch_changes(), 1);

    second
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("MSFT", "509.90", "509.92", 200));
    second
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.31", "271.32", 201));
    let mut live = Vec::new();
    while live.len() < 2 {
        if let Update::Quote { record, .. } = next(&mut client).await {
            live.push((record.quote.symbol.to_string(), record.quote.seq, record.flags));
        }
    }
    assert_eq!(
        live,
        [
            ("MSFT".into(), 1, Flags::default()),
            ("AAPL".into(), 6, Flags::default())
        ],
        "the new space's numbers, live"
    );
    assert_eq!((client.gaps(), client.resets()), (0, 1), "no gap, one reset");
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_another_epoch_or_past_the_hubs_numbers_is_a_reset() {
    use futures_util::{SinkExt, StreamExt};
    use quotehub_proto::{Message as Records, Record};
    use tokio_tungstenite::tungstenite::Message;

    let hub = TestHub::start(ServerConfig::default()).await;
    publish_quotes(&hub, 10).await;
    // TC0: a number this hub never issued, no epoch (a client from before
    // epochs). TC1: a number it did issue, from another epoch. TC2: its own
    // epoch and a number in its history: the records after it.
    let own = {
        let mut probe = hub.connect().await;
        probe.subscribe(&["AAPL"]).await.unwrap();
        probe.epoch().unwrap()
    };
    let other = if own.to_string() == "0000000000000001" {
        "0000000000000002"
    } else {
        "0000000000000001"
    };
    let cases = [
        (
            r#"{"op":"subscribe","symbols":["AAPL"],"resume":{"AAPL":99}}"#.to_owned(),
            vec![(10, true)],
        ),
        (
            format!(r#"{{"op":"subscribe","symbols":["AAPL"],"resume":{{"AAPL":7}},"epoch":"{other}"}}"#),
            vec![(10, true)],
        ),
        (
            format!(r#"{{"op":"subscribe","symbols":["AAPL"],"resume":{{"AAPL":7}},"epoch":"{own}"}}"#),
            vec![(8, false), (9, false), (10, false)],
        ),
    ];
    for (request, expected) in cases {
        let (mut ws, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
            .await
            .unwrap();
        ws.send(Message::text(request.clone())).await.unwrap();
        let mut got = Vec::new();
        while got.len() < expected.len() {
            match within(ws.next()).await.unwrap().unwrap() {
                Message::Text(ack) => assert!(ack.contains(&format!(r#""epoch":"{own}""#)), "{ack}"),
                Message::Binary(bytes) => {
                    for record in Records::decode(&bytes).unwrap() {
                        if let Ok(Record::Quote(record)) = record {
                            got.push((record.quote.seq, record.flags.contains(Flags::RESET)));
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(got, expected, "{request}");
    }
    hub.shutdown().await;
}
