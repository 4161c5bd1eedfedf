//! Issue 14, row 5: a hub chained to an upstream hub (`quotehub://`) keeps
//! the sequence rule `seq == last + 1 + conflated` for its own clients even
//! when the upstream conflated what it sent the relay. The upstream gives
//! its clients (the relay among them) a tiny queue and a publisher at full
//! speed, so the relay is certain to lag and receive conflated records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{TestHub, within};
use quotehub_client::Update;
use quotehub_feed::live::LiveUrl;
use quotehub_proto::Flags;
use quotehub_server::{LiveOptions, Policy, ServerConfig, run_live};
use tokio::sync::watch;

const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "BRK.B", "ZVZZT"];
/// Quotes published per symbol; the last one is told by its event time.
const PER_SYMBOL: u64 = 25_000;
const FIRST_TS: u64 = 1_795_185_001_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chained_hub_advances_its_sequence_by_what_the_upstream_conflated() {
    // The upstream: every client (the relay) conflates past 16 queued records.
    let upstream = TestHub::start(ServerConfig {
        queue_capacity: 16,
        default_policy: Policy::Conflate,
        ..ServerConfig::default()
    })
    .await;
    // The chained hub: its client never lags, so any jump it sees is the relay's.
    let chained = TestHub::start(ServerConfig {
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    })
    .await;
    let mut client = chained.connect().await;
    client.subscribe(&["*"]).await.unwrap();
    let url = LiveUrl::parse(&format!("quotehub://{}", upstream.addr()))
        .unwrap()
        .unwrap();
    let (stop, mut stopped) = watch::channel(false);
    let source = tokio::spawn(run_live(
        chained.hub.clone(),
        url,
        0,
        LiveOptions::default(),
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    // The relay holds "*" on the upstream (connected is not yet subscribed:
    // a quote published in between would be missed, and the hubs would not
    // number alike). The upstream's table is empty, so the join is whole.
    let table = upstream.hub.table().clone();
    common::until(|| table.wildcard_count() == 1).await;

    let mut publisher = upstream.hub.publisher(Flags::default(), 0);
    let publishing = std::thread::spawn(move || {
        for n in 0..PER_SYMBOL {
            for (i, symbol) in SYMBOLS.iter().enumerate() {
                let bid = format!("{}.{:02}", 100 + i, n % 100);
                let ask = format!("{}.{:02}", 101 + i, n % 100);
                publisher.publish(common::quote(symbol, &bid, &ask, FIRST_TS + n));
            }
        }
    });

    let mut last_ts: HashMap<String, u64> = HashMap::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let (mut conflated_records, mut broken) = (0u64, Vec::new());
    within(async {
        while SYMBOLS
            .iter()
            .any(|symbol| last_ts.get(*symbol) != Some(&(FIRST_TS + PER_SYMBOL - 1)))
        {
            match client.next_update().await.unwrap().unwrap() {
                Update::Quote { record, .. } => {
                    let symbol = record.quote.symbol.to_string();
                    let count = if record.flags.contains(Flags::CONFLATED) {
                        conflated_records += 1;
                        u64::from(record.conflated)
                    } else {
                        assert_eq!(record.conflated, 0, "a count without the flag: {record:?}");
                        0
                    };
                    let expected = last_seq.get(&symbol).map_or(1 + count, |last| last + 1 + count);
                    if record.quote.seq != expected && broken.len() < 5 {
                        broken.push(format!(
                            "{symbol}: seq {} after {:?}, conflated {count}",
                            record.quote.seq,
                            last_seq.get(&symbol)
                        ));
                    }
                    last_seq.insert(symbol.clone(), record.quote.seq);
                    last_ts.insert(symbol, record.quote.event_ts);
                }
                Update::Status { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    publishing.join().unwrap();

    assert!(
        conflated_records > 0,
        "the upstream conflated nothing for the relay; the test proves nothing"
    );
    assert!(broken.is_empty(), "the sequence rule broke: {broken:?}");
    assert_eq!(client.gaps(), 0, "the reference client counts no gap");
    for symbol in SYMBOLS {
        // Nothing published before the relay subscribed, so both hubs number alike.
        assert_eq!(
            last_seq[symbol], PER_SYMBOL,
            "{symbol}: the chained hub counts every upstream update"
        );
    }

    stop.send(true).unwrap();
    within(source).await.unwrap();
    chained.shutdown().await;
    upstream.shutdown().await;
}
