//! Bars and the BBO from live sources (issue 19): two TCP upstreams feed
//! one hub as feeds 1 and 2; a `bbo` client sees the book across both, and
//! when feed 2's upstream goes down (`upstream_down`) its quotes leave the
//! book at once; a symbol that goes quiet still gets its bar, closed by the
//! hub's wall-clock timer (no later trade, no event clock). Over real
//! sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, next, within};
use quotehub_client::{Client, Update};
use quotehub_feed::live::LiveUrl;
use quotehub_proto::bbo::Bbo;
use quotehub_proto::{Channels, Price};
use quotehub_server::{LiveOptions, ServerConfig, run_live};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A stand-in upstream's listener and the `tcp://` URL of it.
async fn upstream() -> (TcpListener, LiveUrl) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    (listener, LiveUrl::parse(&url).unwrap().unwrap())
}

async fn accept(listener: &TcpListener) -> TcpStream {
    within(listener.accept()).await.unwrap().0
}

/// The next BBO or bar the client gets (status records, which every client
/// gets, are skipped).
async fn next_derived(client: &mut Client) -> Update {
    loop {
        match next(client).await {
            Update::Status { .. } => {}
            update @ (Update::Bbo { .. } | Update::Bar { .. }) => return update,
            other => panic!("a bbo and bars client got {other:?}"),
        }
    }
}

async fn next_bbo(client: &mut Client) -> Bbo {
    match next_derived(client).await {
        Update::Bbo { record, .. } => record.bbo,
        other => panic!("not a bbo: {other:?}"),
    }
}

fn price(text: &str) -> Price {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feeds_consolidate_a_feed_going_down_leaves_and_a_quiet_symbol_gets_its_bar() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = hub.connect().await;
    client
        .subscribe_to(&["GOOD"], Channels::BBO.with(Channels::BARS_1S))
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let (first, first_url) = upstream().await;
    let (second, second_url) = upstream().await;
    for (url, feed) in [(first_url, 1), (second_url, 2)] {
        let mut stopped = stopped.clone();
        tokio::spawn(run_live(
            hub.hub.clone(),
            url,
            feed,
            LiveOptions::default(),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ));
    }

    let mut one = accept(&first).await;
    one.write_all(
        concat!(
            r#"{"ev":"Q","sym":"GOOD","bp":10.00,"bs":100,"ap":10.02,"as":200,"t":1795185000100000000}"#,
            "\n",
            r#"{"ev":"T","sym":"GOOD","p":10.01,"s":30,"t":1795185000200000000}"#,
            "\n",
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // TC0: one feed's book.
    let bbo = next_bbo(&mut client).await;
    assert_eq!(
        (bbo.seq, bbo.bid.price, bbo.bid.feed, bbo.ask.feed),
        (1, price("10.00"), 1, 1)
    );

    // TC1: feed 2 betters the bid.
    let mut two = accept(&second).await;
    two.write_all(
        concat!(
            r#"{"ev":"Q","sym":"GOOD","bp":10.01,"bs":50,"ap":10.03,"as":100,"t":1795185000300000000}"#,
            "\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let bbo = next_bbo(&mut client).await;
    assert_eq!(
        (bbo.seq, bbo.bid.price, bbo.bid.feed, bbo.ask.price),
        (2, price("10.01"), 2, price("10.02"))
    );

    // TC2: GOOD trades no more: the timer closes its 1 s bar.
    match next_derived(&mut client).await {
        Update::Bar { record, .. } => {
            assert_eq!((record.bar.seq, record.bar.trade_count, record.bar.volume), (1, 1, 30));
            assert_eq!(record.bar.close, price("10.01"));
        }
        other => panic!("not a bar: {other:?}"),
    }

    // TC3: feed 2's upstream goes away: its bid leaves the book.
    drop(two);
    drop(second);
    let bbo = next_bbo(&mut client).await;
    assert_eq!(
        (bbo.seq, bbo.bid.price, bbo.bid.size, bbo.bid.feed, bbo.bid.feeds),
        (3, price("10.00"), 100, 1, 1)
    );
    stop.send(true).unwrap();
    drop(one);
    hub.shutdown().await;
}
