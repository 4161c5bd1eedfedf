//! Bars and BBO over the bus (issues 17 and 19): an edge serves the
//! `bars.1s`, `bars.1m` and `bbo` channels as the ingest hub does. The
//! ingest hub replays the bundled feed and derives them; a client of those
//! channels on the edge gets the same records (same bytes but the send
//! stamps) with the same per-channel numbers as a client of the ingest hub,
//! and a newcomer's snapshots of them, by name and through `"*"`, are the
//! ingest hub's. In-process hubs over real sockets and a real nats-server,
//! built by `quotehub_bus::join` as `quotehub serve --bus ... --role ...`
//! builds them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::nats::NatsServer;
use common::{TestHub, bundled_feed, metric, metric_reaches, next, quote, sym, trade, within};
use quotehub_bus::join::{JoinPlan, Joined, join};
use quotehub_bus::{Bus, Role, StreamSettings};
use quotehub_client::{Client, Update};
use quotehub_proto::{Channels, Flags};
use quotehub_server::ServerConfig;
use quotehub_server::slow_consumer::Policy;

/// Three symbols of the bundled feed (about 600 events), one with a `.`.
const SYMBOLS: [&str; 3] = ["ZVZZT", "INTU", "BF.B"];

/// Records kept per symbol (and per derived channel of a symbol).
const DEPTH: usize = 1024;

/// The derived channels, each on its own.
const DERIVED: [Channels; 3] = [Channels::BARS_1S, Channels::BARS_1M, Channels::BBO];

/// Far past the bundled session: a trade stamped here moves the event
/// clock past every open bar, which closes them all.
const FAR: u64 = 1_900_000_000_000_000_000;

fn derived() -> Channels {
    Channels::BARS_1S.with(Channels::BARS_1M).with(Channels::BBO)
}

/// A hub in `role` on the bus at `nats`, served on 127.0.0.1:0, whose
/// clients are never conflated (a merged record would differ between hubs
/// by timing alone).
async fn hub(nats: &NatsServer, role: Role) -> (TestHub, Joined) {
    hub_with(nats, role, quotehub_bus::FailoverSettings::default()).await
}

/// As [`hub`], an ingest hub taking part in the lease by `failover`.
async fn hub_with(nats: &NatsServer, role: Role, failover: quotehub_bus::FailoverSettings) -> (TestHub, Joined) {
    let plan = JoinPlan {
        servers: nats.url(),
        role,
        ingest_buffer_bytes: 16 << 20,
        storage: quotehub_bus::Storage::File,
        failover,
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let config = ServerConfig {
        queue_capacity: 1 << 20,
        default_policy: Policy::Disconnect,
        ..ServerConfig::default()
    };
    let served = TestHub::start_with_hub(joined.hub.clone(), config).await;
    (served, joined)
}

/// Replays the bundled feed's `SYMBOLS` at full speed into the ingest hub,
/// then closes every open bar (a trade of another symbol far later).
fn replay_and_close(ingest: &TestHub) {
    common::replay_only_at_max(&ingest.hub, bundled_feed(), Some(&SYMBOLS))
        .join()
        .unwrap();
    ingest
        .hub
        .publisher(Flags::REPLAYED, 0)
        .publish(trade("ZZZZ", "1.00", FAR));
}

/// The name of a derived channel, as in requests.
fn name(channel: Channels) -> &'static str {
    channel.names()[0]
}

/// One derived record as a client got it: symbol, channel, number, whether
/// it is a snapshot, and every field of the record (all but the message's
/// send stamp).
type Got = (String, &'static str, u64, bool, String);

fn got(update: &Update) -> Option<Got> {
    match update {
        Update::Bar { record, .. } => {
            let channel = match record.bar.interval.seconds() {
                1 => "bars.1s",
                60 => "bars.1m",
                other => panic!("a bar of {other} s"),
            };
            let snapshot = record.flags.contains(Flags::SNAPSHOT);
            Some((
                record.bar.symbol.to_string(),
                channel,
                record.bar.seq,
                snapshot,
                format!("{record:?}"),
            ))
        }
        Update::Bbo { record, .. } => {
            let snapshot = record.flags.contains(Flags::SNAPSHOT);
            Some((
                record.bbo.symbol.to_string(),
                "bbo",
                record.bbo.seq,
                snapshot,
                format!("{record:?}"),
            ))
        }
        _ => None,
    }
}

/// Each (symbol, channel)'s last number on `hub`, for `symbols`; absent
/// where the hub has no record of it.
fn lasts(hub: &TestHub, symbols: &[&str]) -> BTreeMap<(String, &'static str), u64> {
    let mut lasts = BTreeMap::new();
    for symbol in symbols {
        for channel in DERIVED {
            if let Some(last) = hub.hub.table().last_value(sym(symbol), channel) {
                let seq = u64::from_le_bytes(last[24..32].try_into().unwrap());
                lasts.insert(((*symbol).to_owned(), name(channel)), seq);
            }
        }
    }
    lasts
}

/// Reads `client`'s derived records until it has each (symbol, channel)'s
/// record numbered `last[..]`.
async fn read_until(client: &mut Client, last: &BTreeMap<(String, &'static str), u64>) -> Vec<Got> {
    let mut seen: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    let mut all = Vec::new();
    while last.iter().any(|(key, &seq)| seen.get(key).copied().unwrap_or(0) < seq) {
        if let Some(record) = got(&next(client).await) {
            seen.insert((record.0.clone(), record.1), record.2);
            all.push(record);
        }
    }
    all
}

/// `count` derived records of `client`, by symbol and channel (each once).
async fn snapshots(client: &mut Client, count: usize) -> BTreeMap<(String, &'static str), Got> {
    let mut all = BTreeMap::new();
    while all.len() < count {
        if let Some(record) = got(&next(client).await) {
            assert!(record.3, "snapshots come first: {record:?}");
            let key = (record.0.clone(), record.1);
            assert!(all.insert(key, record).is_none(), "one snapshot per channel");
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edges_bars_and_bbo_clients_get_the_ingest_hubs_records_numbers_and_snapshots() {
    let Some(nats) = NatsServer::start("bus_derived_same").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("PRIME", "1.00", "1.01", 1));
    within(ingest_joined.ingest().unwrap().flush()).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;

    let mut on_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut on_edge = within(Client::connect(&edge.url)).await.unwrap();
    on_ingest.subscribe_to(&SYMBOLS, derived()).await.unwrap();
    on_edge.subscribe_to(&SYMBOLS, derived()).await.unwrap();
    replay_and_close(&ingest);
    let last = lasts(&ingest, &SYMBOLS);
    assert_eq!(
        last.len(),
        SYMBOLS.len() * DERIVED.len(),
        "the replay gave every symbol bars and a BBO: {last:?}"
    );

    // Live: the same records, each channel numbered 1..n, once each.
    let from_ingest = read_until(&mut on_ingest, &last).await;
    let from_edge = read_until(&mut on_edge, &last).await;
    for ((symbol, channel), &n) in &last {
        let of = |records: &[Got]| -> Vec<Got> {
            records
                .iter()
                .filter(|r| &r.0 == symbol && r.1 == *channel)
                .cloned()
                .collect()
        };
        let seqs: Vec<u64> = of(&from_edge).iter().map(|r| r.2).collect();
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "{symbol} {channel}: every number, once"
        );
        assert!(
            of(&from_edge) == of(&from_ingest),
            "{symbol} {channel}: the same records, field for field, as the ingest hub's client got"
        );
    }
    assert_eq!(from_edge.len(), from_ingest.len(), "nothing else");

    // A newcomer's snapshots on the edge are the ingest hub's, by name...
    let mut late_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut late_edge = within(Client::connect(&edge.url)).await.unwrap();
    late_ingest.subscribe_to(&SYMBOLS, derived()).await.unwrap();
    late_edge.subscribe_to(&SYMBOLS, derived()).await.unwrap();
    let expected = snapshots(&mut late_ingest, last.len()).await;
    assert_eq!(snapshots(&mut late_edge, last.len()).await, expected);

    // ...and through `"*"`, for symbols no client of the edge named.
    let everything = ["ZVZZT", "INTU", "BF.B", "PRIME", "ZZZZ"];
    let all = lasts(&ingest, &everything);
    assert!(all.len() > last.len(), "PRIME's BBO and ZZZZ's bars too: {all:?}");
    let mut wild_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut wild_edge = within(Client::connect(&edge.url)).await.unwrap();
    wild_ingest.subscribe_to(&["*"], derived()).await.unwrap();
    wild_edge.subscribe_to(&["*"], derived()).await.unwrap();
    let expected = snapshots(&mut wild_ingest, all.len()).await;
    assert_eq!(snapshots(&mut wild_edge, all.len()).await, expected);
    for symbol in everything {
        for channel in DERIVED {
            assert_eq!(
                edge.hub.table().last_value(sym(symbol), channel),
                ingest.hub.table().last_value(sym(symbol), channel),
                "{symbol} {}: the same last value, byte for byte",
                name(channel)
            );
        }
    }
    edge.shutdown().await;
    ingest.shutdown().await;
}

/// A client holds the reader of a symbol's derived records only while it
/// holds one of its derived channels: dropping them (keeping quotes), or
/// leaving, ends it, so no client keeps readers it has no subscription for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbols_derived_reader_lives_while_a_client_holds_a_derived_channel_of_it() {
    let Some(nats) = NatsServer::start("bus_derived_readers").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.22", "271.23", 1));
    within(ingest_joined.ingest().unwrap().flush()).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;
    const READERS: &str = "quotehub_bus_readers";

    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();
    metric_reaches(&edge, READERS, 1).await;
    client
        .subscribe_to(&["AAPL"], Channels::QUOTES.with(Channels::BBO))
        .await
        .unwrap();
    assert_eq!(
        metric(&edge, READERS).await,
        2,
        "AAPL's records, and its derived records"
    );
    // The BBO's snapshot is the ingest hub's, read from the bus.
    let snapshot = loop {
        if let Some(record) = got(&next(&mut client).await) {
            break record;
        }
    };
    assert_eq!((snapshot.1, snapshot.2, snapshot.3), ("bbo", 1, true));
    assert_eq!(
        edge.hub.table().last_value(sym("AAPL"), Channels::BBO),
        ingest.hub.table().last_value(sym("AAPL"), Channels::BBO)
    );

    client.unsubscribe_from(&["AAPL"], Channels::BBO).await.unwrap();
    metric_reaches(&edge, READERS, 1).await;
    client.subscribe_to(&["*"], Channels::BARS_1M).await.unwrap();
    assert_eq!(
        metric(&edge, READERS).await,
        3,
        "\"*\": every record, and every derived one"
    );
    client.close().await.unwrap();
    metric_reaches(&edge, READERS, 0).await;
    edge.shutdown().await;
    ingest.shutdown().await;
}

/// `[bus] derived = false`: the ingest hub publishes its quotes and trades
/// only; its own clients still get its bars and BBO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_hub_told_not_to_publishes_no_bar_or_bbo() {
    let Some(nats) = NatsServer::start("bus_derived_off").await else {
        return;
    };
    let failover = quotehub_bus::FailoverSettings {
        derived: false,
        ..quotehub_bus::FailoverSettings::default()
    };
    let (ingest, joined) = hub_with(&nats, Role::Ingest, failover).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "271.22", "271.23", 1));
    publisher.publish(quote("AAPL", "271.24", "271.25", 2));
    within(joined.ingest().unwrap().flush()).await;
    assert!(
        ingest.hub.table().last_value(sym("AAPL"), Channels::BBO).is_some(),
        "the hub derives its BBO for its own clients"
    );
    assert_eq!(metric(&ingest, "quotehub_bus_published_records_total").await, 2);
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    let settings = StreamSettings::new(DEPTH as u32);
    let mut derived = within(bus.jetstream().get_stream(settings.derived_name()))
        .await
        .unwrap();
    assert_eq!(within(derived.info()).await.unwrap().state.messages, 0);
    ingest.shutdown().await;
}
