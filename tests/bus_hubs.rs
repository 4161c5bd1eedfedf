//! Hubs joined over a real nats-server with JetStream (issue 17): an ingest
//! hub replaying the bundled feed publishes every record it sequences; edge
//! hubs, with no feeds of their own, read the stream by their clients'
//! interest and pass the ingest hub's records through with its numbers.
//! In-process hubs over real sockets, real clients; the roles are built by
//! `quotehub_bus::join`, as `quotehub serve --bus ... --role ...` builds them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};

use async_nats::jetstream::message::PublishMessage;
use common::gate::Gate;
use common::nats::NatsServer;
use common::switch::Switch;
use common::{TestHub, bundled_feed, http_get, key, metric, metric_reaches, next, quote, sym, within};
use quotehub_bus::join::{JoinPlan, Joined, join};
use quotehub_bus::{BUS_FEED, Bus, IngestPublisher, Role};
use quotehub_client::{Client, Reconnect, Update};
use quotehub_proto::{Event, Flags, QuoteRecord, StatusCode, Symbol};
use quotehub_server::ServerConfig;

/// Three symbols of the bundled feed (about 600 events), one with a `.`.
const SYMBOLS: [&str; 3] = ["ZVZZT", "INTU", "BF.B"];

/// Records kept per symbol: more than any of `SYMBOLS` has in the feed,
/// so a resume anywhere in the replay finds its history.
const DEPTH: usize = 1024;

/// A hub in `role` on the bus at `nats`, served on 127.0.0.1:0.
async fn hub(nats: &NatsServer, role: Role) -> (TestHub, Joined) {
    hub_storing(nats, role, quotehub_bus::Storage::File).await
}

/// A hub in `role` that makes the stream (if it is the first) in `storage`.
async fn hub_storing(nats: &NatsServer, role: Role, storage: quotehub_bus::Storage) -> (TestHub, Joined) {
    hub_at(&nats.url(), role, storage).await
}

/// A hub in `role` on the bus at `servers`.
async fn hub_at(servers: &str, role: Role, storage: quotehub_bus::Storage) -> (TestHub, Joined) {
    let plan = JoinPlan {
        servers: servers.to_owned(),
        role,
        ingest_buffer_bytes: 16 << 20,
        storage,
        failover: quotehub_bus::FailoverSettings::default(),
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let served = TestHub::start_with_hub(joined.hub.clone(), ServerConfig::default()).await;
    (served, joined)
}

/// Publishes one quote on the ingest hub and waits until the stream has it,
/// so that an edge can learn the ingest hub's sequence space.
async fn prime(ingest: &TestHub, joined: &Joined) {
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("PRIME", "1.00", "1.01", 1));
    within(joined.ingest().unwrap().flush()).await;
}

/// Replays the bundled feed's `SYMBOLS` at full speed into the ingest hub.
fn replay(ingest: &TestHub) -> std::thread::JoinHandle<()> {
    let only: HashSet<Symbol> = SYMBOLS.iter().map(|s| sym(s)).collect();
    let mut publisher = ingest.hub.publisher(Flags::REPLAYED, 0).only(Some(only));
    let path = bundled_feed();
    std::thread::spawn(move || {
        let mut feed = quotehub_feed::open_recorded(&path).unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let options = quotehub_feed::ReplayOptions {
            speed: quotehub_feed::Speed::Max,
            looped: false,
        };
        quotehub_feed::replay(feed.as_mut(), options, &stop, |mut event| {
            event.set_recv_ts(quotehub_proto::now_ns());
            publisher.publish(event);
        })
        .unwrap();
    })
}

/// One record as a client got it: symbol, seq, flags and the record's
/// fields (everything but the message's send stamp).
type Got = (String, u64, String);

fn got(update: &Update) -> Option<Got> {
    match update {
        Update::Quote { record, .. } => {
            Some((record.quote.symbol.to_string(), record.quote.seq, format!("{record:?}")))
        }
        Update::Trade { record, .. } => {
            Some((record.trade.symbol.to_string(), record.trade.seq, format!("{record:?}")))
        }
        _ => None,
    }
}

/// Reads `client` until it has each symbol's record numbered `last[symbol]`.
async fn read_until(client: &mut Client, last: &BTreeMap<String, u64>) -> Vec<Got> {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut all = Vec::new();
    while last
        .iter()
        .any(|(symbol, &seq)| seen.get(symbol).copied().unwrap_or(0) < seq)
    {
        if let Some(record) = got(&next(client).await) {
            seen.insert(record.0.clone(), record.1);
            all.push(record);
        }
    }
    all
}

/// Each symbol's last sequence number on `hub` once the replay is done.
fn lasts(hub: &TestHub) -> BTreeMap<String, u64> {
    SYMBOLS
        .iter()
        .map(|s| ((*s).to_owned(), hub.hub.table().last_seq(sym(s))))
        .collect()
}

/// Reads `client` for 100 records of the replay, moves it to `edge_b`
/// through `switch`, lets the replay end, and reads on until it has each
/// symbol's last record: every record it got, each symbol's last number,
/// and whether it reconnected.
async fn move_mid_replay(
    client: &mut Client,
    switch: &Switch,
    edge_b: &TestHub,
    replaying: std::thread::JoinHandle<()>,
    ingest: &TestHub,
) -> (Vec<Got>, BTreeMap<String, u64>, bool) {
    let mut records = Vec::new();
    while records.len() < 100 {
        if let Some(record) = got(&next(client).await) {
            records.push(record);
        }
    }
    switch.move_to(edge_b);
    replaying.join().unwrap();
    let last = lasts(ingest);
    let mut moved = false;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for record in &records {
        seen.insert(record.0.clone(), record.1);
    }
    while last
        .iter()
        .any(|(symbol, &seq)| seen.get(symbol).copied().unwrap_or(0) < seq)
    {
        let update = next(client).await;
        if matches!(update, Update::Reconnected { .. }) {
            moved = true;
            continue;
        }
        if let Some(record) = got(&update) {
            seen.insert(record.0.clone(), record.1);
            records.push(record);
        }
    }
    (records, last, moved)
}

/// Every seq of `symbol` in `records`, in order.
fn seqs(records: &[Got], symbol: &str) -> Vec<u64> {
    records.iter().filter(|r| r.0 == symbol).map(|r| r.1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edges_client_gets_the_ingest_hubs_records_and_snapshots() {
    let Some(nats) = NatsServer::start("bus_hubs_same").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;
    assert_eq!(
        edge.hub.table().epoch(),
        ingest.hub.table().epoch(),
        "the edge serves the ingest hub's space"
    );

    let mut on_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut on_edge = within(Client::connect(&edge.url)).await.unwrap();
    on_ingest.subscribe(&SYMBOLS).await.unwrap();
    on_edge.subscribe(&SYMBOLS).await.unwrap();
    common::until(|| SYMBOLS.iter().all(|s| edge.hub.table().subscriber_count(sym(s)) == 1)).await;
    replay(&ingest).join().unwrap();
    let last = lasts(&ingest);
    assert!(
        last.values().all(|&seq| seq > 80),
        "the replay sequenced every symbol: {last:?}"
    );

    let from_ingest = read_until(&mut on_ingest, &last).await;
    let from_edge = read_until(&mut on_edge, &last).await;
    assert_eq!(from_edge.len(), from_ingest.len());
    for symbol in SYMBOLS {
        // Each symbol is read on its own, so only each symbol's order is kept.
        let of = |records: &[Got]| -> Vec<Got> { records.iter().filter(|r| r.0 == symbol).cloned().collect() };
        let expected: Vec<u64> = (1..=last[symbol]).collect();
        assert_eq!(seqs(&from_edge, symbol), expected, "{symbol}: every number, once");
        assert!(
            of(&from_edge) == of(&from_ingest),
            "{symbol}: the same records, field for field, as the ingest hub's client got"
        );
    }
    assert_eq!((on_edge.gaps(), on_ingest.gaps()), (0, 0));

    // A newcomer's snapshot on the edge is the ingest hub's.
    let mut late_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut late_edge = within(Client::connect(&edge.url)).await.unwrap();
    late_ingest.subscribe(&SYMBOLS).await.unwrap();
    late_edge.subscribe(&SYMBOLS).await.unwrap();
    let mut snapshots = (BTreeMap::new(), BTreeMap::new());
    for _ in SYMBOLS {
        let (a, b) = (next(&mut late_ingest).await, next(&mut late_edge).await);
        assert!(key(&a).2 && key(&b).2, "snapshots first: {a:?} {b:?}");
        let (a, b) = (got(&a).unwrap(), got(&b).unwrap());
        snapshots.0.insert(a.0.clone(), a);
        snapshots.1.insert(b.0.clone(), b);
    }
    assert_eq!(snapshots.0, snapshots.1);
    for symbol in SYMBOLS {
        assert_eq!(
            edge.hub.table().last_quote(sym(symbol)),
            ingest.hub.table().last_quote(sym(symbol)),
            "{symbol}: the same last value, byte for byte"
        );
    }
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_from_one_edge_to_another_resumes_with_no_gap() {
    let Some(nats) = NatsServer::start("bus_hubs_move").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge_a, _a) = hub(&nats, Role::Edge).await;
    let (edge_b, _b) = hub(&nats, Role::Edge).await;

    let switch = Switch::start(&edge_a).await;
    let mut client = within(Client::connect(&switch.url))
        .await
        .unwrap()
        .with_reconnect(Reconnect::default());
    client.subscribe(&SYMBOLS).await.unwrap();
    common::until(|| SYMBOLS.iter().all(|s| edge_a.hub.table().subscriber_count(sym(s)) == 1)).await;
    let replaying = replay(&ingest);

    // Part of the replay from edge A, then the client is moved to edge B
    // (which has never read these symbols) and resumes there.
    let (records, last, moved) = move_mid_replay(&mut client, &switch, &edge_b, replaying, &ingest).await;
    assert!(moved, "the client was moved");
    assert!(
        edge_b.hub.table().subscriber_count(sym("INTU")) == 1,
        "it reads from edge B now"
    );
    for symbol in SYMBOLS {
        let expected: Vec<u64> = (1..=last[symbol]).collect();
        assert_eq!(
            seqs(&records, symbol),
            expected,
            "{symbol}: every number once, across the move"
        );
    }
    assert_eq!((client.gaps(), client.resets()), (0, 0));
    edge_b.shutdown().await;
    edge_a.shutdown().await;
    ingest.shutdown().await;
}

/// The same for `"*"`, moved to an edge where nobody holds `"*"`: its new
/// `"*"` reader must bring the stream's history before the resume is
/// answered, not only each symbol's last record (which left a gap or a
/// `RESET` at the move).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_client_moved_to_an_edge_nobody_reads_wildcard_on_resumes_with_no_gap() {
    let Some(nats) = NatsServer::start("bus_hubs_move_all").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge_a, _a) = hub(&nats, Role::Edge).await;
    let (edge_b, _b) = hub(&nats, Role::Edge).await;

    let switch = Switch::start(&edge_a).await;
    let mut client = within(Client::connect(&switch.url))
        .await
        .unwrap()
        .with_reconnect(Reconnect::default());
    client.subscribe(&["*"]).await.unwrap();
    let replaying = replay(&ingest);

    // Part of the replay from edge A; the rest is published while the
    // client is away, so its resume on edge B needs the stream's history.
    let (records, last, moved) = move_mid_replay(&mut client, &switch, &edge_b, replaying, &ingest).await;
    assert!(moved, "the client was moved");
    for symbol in SYMBOLS {
        let expected: Vec<u64> = (1..=last[symbol]).collect();
        assert_eq!(
            seqs(&records, symbol),
            expected,
            "{symbol}: every number once, across the move"
        );
    }
    assert_eq!((client.gaps(), client.resets()), (0, 0));
    edge_b.shutdown().await;
    edge_a.shutdown().await;
    ingest.shutdown().await;
}

/// The next status update about the bus, skipping records.
async fn bus_status(client: &mut Client) -> StatusCode {
    loop {
        if let Update::Status { record, .. } = next(client).await
            && record.feed == BUS_FEED
        {
            return record.code;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_told_when_the_bus_goes_and_comes_back_and_miss_nothing_it_held() {
    let Some(mut nats) = NatsServer::start("bus_hubs_restart").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;
    let mut on_ingest = within(Client::connect(&ingest.url)).await.unwrap();
    let mut on_edge = within(Client::connect(&edge.url)).await.unwrap();
    on_ingest.subscribe(&["AAPL"]).await.unwrap();
    on_edge.subscribe(&["AAPL"]).await.unwrap();
    common::until(|| edge.hub.table().subscriber_count(sym("AAPL")) == 1).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    let mut publish = |range: std::ops::RangeInclusive<u64>| {
        for time in range {
            publisher.publish(quote("AAPL", "271.22", "271.23", time));
        }
    };
    publish(1..=20);
    let mut from_edge = Vec::new();
    while from_edge.len() < 20 {
        from_edge.extend(got(&next(&mut on_edge).await));
    }

    nats.stop().await;
    assert_eq!(bus_status(&mut on_edge).await, StatusCode::UpstreamDown);
    assert_eq!(bus_status(&mut on_ingest).await, StatusCode::UpstreamDown);
    let (status, body) = http_get(&edge, "/health").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""status":"degraded""#), "{body}");
    // Sequenced while the bus is away: the ingest hub keeps them for it.
    publish(21..=40);
    assert!(metric(&ingest, "quotehub_bus_ingest_buffered_bytes").await >= 20 * 72);
    assert_eq!(metric(&ingest, "quotehub_bus_connected").await, 0);

    nats.restart().await;
    let mut up = false;
    while from_edge.len() < 40 {
        match next(&mut on_edge).await {
            Update::Status { record, .. } if record.feed == BUS_FEED => {
                assert_eq!(record.code, StatusCode::UpstreamUp);
                up = true;
            }
            update => from_edge.extend(got(&update)),
        }
    }
    let seqs: Vec<u64> = from_edge.iter().map(|r| r.1).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "nothing the stream held is missed");
    assert_eq!(on_edge.gaps(), 0);
    if !up {
        assert_eq!(bus_status(&mut on_edge).await, StatusCode::UpstreamUp);
    }
    assert_eq!(bus_status(&mut on_ingest).await, StatusCode::UpstreamUp);
    let (_, body) = http_get(&edge, "/health").await;
    assert!(body.contains(r#""status":"ok""#), "{body}");
    // The edge's reader read live and caught up from the stream once the
    // bus was back.
    assert!(metric(&edge, "quotehub_bus_edge_repairs_total").await >= 1);
    // PRIME and AAPL 1..=40, each stored once, and the BBO each symbol's
    // first quote made (the later ones leave the book as it is); nothing
    // dropped.
    metric_reaches(&ingest, "quotehub_bus_published_records_total", 43).await;
    assert_eq!(metric(&ingest, "quotehub_bus_ingest_dropped_total").await, 0);
    assert_eq!(metric(&ingest, "quotehub_bus_ingest_buffered_bytes").await, 0);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_stream_is_made_again_after_the_bus_restarts_and_clients_miss_nothing_the_ingest_hub_kept() {
    let Some(mut nats) = NatsServer::start("bus_hubs_memory_restart").await else {
        return;
    };
    let (ingest, ingest_joined) = hub_storing(&nats, Role::Ingest, quotehub_bus::Storage::Memory).await;
    prime(&ingest, &ingest_joined).await;
    let gate = Gate::start(&nats.url()["nats://".len()..]).await;
    let (edge, _edge_joined) = hub_at(
        &format!("nats://{}", gate.addr),
        Role::Edge,
        quotehub_bus::Storage::File,
    )
    .await;
    let mut on_edge = within(Client::connect(&edge.url)).await.unwrap();
    on_edge.subscribe(&["AAPL"]).await.unwrap();
    common::until(|| edge.hub.table().subscriber_count(sym("AAPL")) == 1).await;
    // A reader of every symbol, beside the reader of AAPL: MSFT reaches the
    // edge through it alone.
    let mut everything = within(Client::connect(&edge.url)).await.unwrap();
    everything.subscribe(&["*"]).await.unwrap();
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    let mut publish = |range: std::ops::RangeInclusive<u64>| {
        for time in range {
            publisher.publish(quote("AAPL", "271.22", "271.23", time));
            publisher.publish(quote("MSFT", "474.01", "474.02", time));
        }
    };
    publish(1..=20);
    let mut from_edge = Vec::new();
    while from_edge.len() < 20 {
        from_edge.extend(got(&next(&mut on_edge).await));
    }

    // The restarted server has no memory stream: the ingest hub makes it
    // again and publishes what it kept meanwhile. The edge comes back only
    // once the new stream holds all of it, so its positions (which start
    // again at 1) have passed the ones the edge had read in the old stream.
    gate.shut();
    nats.stop().await;
    assert_eq!(bus_status(&mut on_edge).await, StatusCode::UpstreamDown);
    publish(21..=40);
    nats.restart().await;
    publish(41..=60);
    within(ingest_joined.ingest().unwrap().flush()).await;
    metric_reaches(&ingest, "quotehub_bus_ingest_buffered_bytes", 0).await;
    gate.open();
    while from_edge.len() < 60 {
        if let Some(record) = got(&next(&mut on_edge).await) {
            from_edge.push(record);
        }
    }
    let seqs: Vec<u64> = from_edge.iter().map(|r| r.1).collect();
    assert_eq!(
        seqs,
        (1..=60).collect::<Vec<_>>(),
        "nothing the ingest hub kept is missed"
    );
    assert_eq!((on_edge.gaps(), on_edge.resets()), (0, 0));
    let mut msft = Vec::new();
    while msft.last() != Some(&60) {
        if let Some((symbol, seq, _)) = got(&next(&mut everything).await)
            && symbol == "MSFT"
        {
            msft.push(seq);
        }
    }
    assert_eq!(
        msft,
        (1..=60).collect::<Vec<_>>(),
        "the \"*\" reader misses nothing either"
    );
    assert_eq!((everything.gaps(), everything.resets()), (0, 0));
    // A client that joins now gets the newest record as its snapshot.
    let mut late = within(Client::connect(&edge.url)).await.unwrap();
    late.subscribe(&["AAPL"]).await.unwrap();
    let first = loop {
        if let Some(record) = got(&next(&mut late).await) {
            break record;
        }
    };
    assert_eq!(first.1, 60, "the snapshot is the newest record");
    metric_reaches(&ingest, "quotehub_bus_ingest_buffered_bytes", 0).await;
    assert_eq!(metric(&ingest, "quotehub_bus_ingest_dropped_total").await, 0);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_start_with_a_symbols_first_client_and_end_after_its_last() {
    let Some(nats) = NatsServer::start("bus_hubs_interest").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;
    const READERS: &str = "quotehub_bus_readers";
    assert_eq!(metric(&edge, READERS).await, 0);

    let mut one = within(Client::connect(&edge.url)).await.unwrap();
    let mut two = within(Client::connect(&edge.url)).await.unwrap();
    one.subscribe(&["AAPL", "MSFT"]).await.unwrap();
    metric_reaches(&edge, READERS, 2).await;
    two.subscribe(&["AAPL"]).await.unwrap();
    common::until(|| edge.hub.table().subscriber_count(sym("AAPL")) == 2).await;
    assert_eq!(
        metric(&edge, READERS).await,
        2,
        "a second client of AAPL starts no reader"
    );

    one.unsubscribe(&["AAPL"]).await.unwrap();
    common::until(|| edge.hub.table().subscriber_count(sym("AAPL")) == 1).await;
    assert_eq!(
        metric(&edge, READERS).await,
        2,
        "AAPL is still held by the second client"
    );
    one.close().await.unwrap();
    metric_reaches(&edge, READERS, 1).await;
    two.unsubscribe(&["AAPL"]).await.unwrap();
    metric_reaches(&edge, READERS, 0).await;

    // A symbol read again resumes after what the table holds.
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.22", "271.23", 7));
    two.subscribe(&["AAPL"]).await.unwrap();
    let update = next(&mut two).await;
    assert_eq!(got(&update).unwrap().1, 1, "AAPL's first record, from the stream");
    assert_eq!(metric(&edge, READERS).await, 1);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_client_of_an_edge_gets_every_symbols_last_record_then_everything() {
    let Some(nats) = NatsServer::start("bus_hubs_wildcard").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=3 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
        publisher.publish(quote("BRK.B", "480.10", "480.20", time));
    }
    within(ingest_joined.ingest().unwrap().flush()).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;

    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["*"]).await.unwrap();
    let mut snapshots = BTreeMap::new();
    for _ in 0..3 {
        let update = next(&mut client).await;
        let (symbol, seq, snapshot) = key(&update);
        assert!(snapshot, "{update:?}");
        snapshots.insert(symbol, seq);
    }
    let expected: BTreeMap<String, u64> = [("AAPL", 3), ("BRK.B", 3), ("PRIME", 1)]
        .into_iter()
        .map(|(s, n)| (s.to_owned(), n))
        .collect();
    assert_eq!(
        snapshots, expected,
        "every symbol's last record, as the ingest hub has it"
    );
    assert_eq!(metric(&edge, "quotehub_bus_readers").await, 1, "one reader for \"*\"");

    // Then every new record, of known symbols and new ones alike.
    publisher.publish(quote("AAPL", "271.22", "271.23", 4));
    publisher.publish(quote("MSFT", "410.00", "410.10", 1));
    let mut live = Vec::new();
    while live.len() < 2 {
        live.push(key(&next(&mut client).await));
    }
    live.sort();
    assert_eq!(live, [("AAPL".into(), 4, false), ("MSFT".into(), 1, false)]);
    assert_eq!(client.gaps(), 0);
    // The edge has read everything the stream holds: no lag.
    metric_reaches(&edge, "quotehub_bus_edge_lag_records", 0).await;
    client.unsubscribe(&["*"]).await.unwrap();
    metric_reaches(&edge, "quotehub_bus_readers", 0).await;
    // A reader that ended took its share of the lag with it (no wrap below 0).
    assert_eq!(metric(&edge, "quotehub_bus_edge_lag_records").await, 0);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_never_passes_a_new_sequence_spaces_numbers_into_the_old_one() {
    let Some(nats) = NatsServer::start("bus_hubs_epoch").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge, edge_joined) = hub(&nats, Role::Edge).await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=3 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    for seq in 1..=3 {
        assert_eq!(key(&next(&mut client).await), ("AAPL".into(), seq, false));
    }
    drop(publisher);
    ingest.shutdown().await;
    drop(ingest_joined);

    // A publisher in a new sequence space, AAPL numbered from 1 (a
    // restarted quotehub ingest hub continues the stream's space through
    // the lease; a new one comes from a stream emptied meanwhile, or a hub
    // outside the lease).
    let new_space = quotehub_proto::Epoch::random();
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    let outsider = IngestPublisher::start(
        &bus,
        quotehub_bus::StreamSettings::new(DEPTH as u32).subjects,
        quotehub_bus::IngestSettings::default(),
    );
    // Numbers 1..=5: 4 and 5 would look like the old space going on.
    for seq in 1..=5 {
        let Event::Quote(mut record) = quote("AAPL", "271.30", "271.31", 10 + seq) else {
            unreachable!()
        };
        record.seq = seq;
        let bytes = QuoteRecord {
            quote: record,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode();
        outsider.publish(&sym("AAPL"), new_space, seq, bytes.to_vec().into());
    }
    let mut changed = edge_joined.epoch_changed.clone().unwrap();
    let seen = within(changed.wait_for(Option::is_some)).await.unwrap().unwrap();
    assert_eq!(seen, new_space, "the edge names the new space");
    metric_reaches(&edge, "quotehub_bus_received_records_total", 3 + 5).await;
    assert_eq!(
        edge.hub.table().last_seq(sym("AAPL")),
        3,
        "none of the new space's records was passed into the old one"
    );
    assert_eq!(metric(&edge, "quotehub_bus_edge_foreign_records_total").await, 5);
    assert_eq!(metric(&edge, "quotehub_bus_edge_ahead_records_total").await, 0);
    assert_eq!(client.gaps(), 0);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_a_subscribe_is_refused_are_not_read_from_the_bus() {
    let Some(nats) = NatsServer::start("bus_hubs_refused").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let plan = JoinPlan {
        servers: nats.url(),
        role: Role::Edge,
        ingest_buffer_bytes: 16 << 20,
        storage: quotehub_bus::Storage::File,
        failover: quotehub_bus::FailoverSettings::default(),
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let config = ServerConfig {
        max_unseen_symbols_per_client: 5,
        ..ServerConfig::default()
    };
    let edge = TestHub::start_with_hub(joined.hub.clone(), config).await;

    // An attacker names symbols nobody publishes, past its share: the
    // subscribe is refused whole, and must leave no reader (each is a
    // consumer on the bus and a task on the edge) behind until it leaves.
    let mut attacker = within(Client::connect(&edge.url)).await.unwrap();
    let names: Vec<String> = (0..20).map(|n| format!("NOPE{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let refused = attacker.subscribe(&names).await;
    assert!(refused.is_err(), "symbol_limit: {refused:?}");
    assert_eq!(metric(&edge, "quotehub_bus_readers").await, 0);
    // Within its share, the symbols are read while held.
    attacker.subscribe(&names[..5]).await.unwrap();
    assert_eq!(metric(&edge, "quotehub_bus_readers").await, 5);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_passes_exactly_one_record_per_message_and_nothing_behind_it() {
    let Some(nats) = NatsServer::start("bus_hubs_trailing").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();

    // Someone else on the bus publishes AAPL 1 in the ingest hub's space
    // with 4 KiB behind the record: stored and sent as it is, the junk
    // would reach every client of the edge and sit in its history.
    let epoch = ingest.hub.table().epoch();
    let record = |seq: u64, junk: usize| {
        let Event::Quote(mut quote) = quote("AAPL", "271.22", "271.23", seq) else {
            unreachable!()
        };
        quote.seq = seq;
        let mut bytes = QuoteRecord {
            quote,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode()
        .to_vec();
        bytes.resize(bytes.len() + junk, 0xAB);
        bytes
    };
    let bus = Bus::connect(&nats.url()).await.unwrap();
    for (seq, junk) in [(1, 4096), (2, 0)] {
        let message = PublishMessage::build()
            .message_id(IngestPublisher::message_id(&sym("AAPL"), epoch, seq))
            .payload(record(seq, junk).into());
        bus.jetstream()
            .send_publish("quotehub.rec.AAPL", message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let update = next(&mut client).await;
    assert_eq!(
        got(&update).unwrap().1,
        2,
        "AAPL 1 with bytes behind it is not passed: {update:?}"
    );
    assert_eq!(edge.hub.table().last_quote(sym("AAPL")).unwrap().len(), 72);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_rate_limit_comes_before_any_work_on_the_bus() {
    let Some(nats) = NatsServer::start("bus_hubs_rate").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let plan = JoinPlan {
        servers: nats.url(),
        role: Role::Edge,
        ingest_buffer_bytes: 16 << 20,
        storage: quotehub_bus::Storage::File,
        failover: quotehub_bus::FailoverSettings::default(),
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let config = ServerConfig {
        requests_per_second: 1,
        request_burst: 5,
        ..ServerConfig::default()
    };
    let edge = TestHub::start_with_hub(joined.hub.clone(), config).await;

    // 50 subscribes, each naming a new symbol, as fast as they go: the
    // limit answers all but the first few with rate_limited (then closes
    // the client), and none of those may have started a reader first.
    let mut attacker = within(Client::connect(&edge.url)).await.unwrap();
    for n in 0..50 {
        let request = format!(r#"{{"op":"subscribe","symbols":["FLOOD{n}"],"id":{n}}}"#);
        if attacker.send_text(&request).await.is_err() {
            break;
        }
    }
    common::until(|| edge.hub.client_count() == 0).await;
    let started = metric(&edge, "quotehub_bus_readers_started_total").await;
    assert!(
        started <= 6,
        "{started} readers started for 50 requests over a burst of 5"
    );
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_client_of_an_edge_gets_the_streams_snapshot_and_its_reader_ends_with_it() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let Some(nats) = NatsServer::start("bus_hubs_sse").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=3 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    within(ingest_joined.ingest().unwrap().flush()).await;
    let (edge, _edge_joined) = hub(&nats, Role::Edge).await;

    let mut stream = within(tokio::net::TcpStream::connect(edge.addr())).await.unwrap();
    stream
        .write_all(b"GET /v1/sse?symbols=AAPL HTTP/1.1\r\nHost: edge\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut data = Vec::new();
    while data.len() < 2 {
        let mut line = String::new();
        assert!(
            within(reader.read_line(&mut line)).await.unwrap() > 0,
            "the stream ended early"
        );
        if let Some(json) = line.strip_prefix("data: ") {
            data.push(serde_json::from_str::<serde_json::Value>(json.trim()).unwrap());
        }
    }
    assert_eq!(data[0]["type"], "ack", "{data:?}");
    assert_eq!(data[1]["seq"], 3, "the ingest hub's last AAPL: {data:?}");
    assert_eq!(data[1]["flags"], serde_json::json!(["snapshot"]));
    assert_eq!(metric(&edge, "quotehub_bus_readers").await, 1);
    drop(reader);
    metric_reaches(&edge, "quotehub_bus_readers", 0).await;
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_hub_keeps_at_most_its_buffer_while_the_bus_is_away_and_counts_what_it_drops() {
    let Some(mut nats) = NatsServer::start("bus_hubs_buffer").await else {
        return;
    };
    let plan = JoinPlan {
        servers: nats.url(),
        role: Role::Ingest,
        // About ten quote records with their subjects and ids.
        ingest_buffer_bytes: 1_500,
        storage: quotehub_bus::Storage::File,
        // A lease that outlives the outage: this hub stays the publisher
        // throughout, so everything it sequences is offered to the buffer.
        failover: quotehub_bus::FailoverSettings {
            lease: quotehub_bus::LeaseSettings {
                ttl: std::time::Duration::from_secs(60),
                ..quotehub_bus::LeaseSettings::default()
            },
            ..quotehub_bus::FailoverSettings::default()
        },
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let ingest = TestHub::start_with_hub(joined.hub.clone(), ServerConfig::default()).await;
    prime(&ingest, &joined).await;
    nats.stop().await;
    metric_reaches(&ingest, "quotehub_bus_connected", 0).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=100 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    assert!(metric(&ingest, "quotehub_bus_ingest_buffered_bytes").await <= 1_500);
    let dropped = metric(&ingest, "quotehub_bus_ingest_dropped_total").await;
    assert!(
        dropped >= 80,
        "most of 100 records cannot wait in 1,500 bytes: {dropped}"
    );

    nats.restart().await;
    within(joined.ingest().unwrap().flush()).await;
    // PRIME, then the newest AAPL records that fitted: every one offered is
    // either stored or counted as dropped. Offered: PRIME and its BBO, and
    // AAPL's 100 quotes and the one BBO they make (all alike: the first sets
    // the book, the others leave it as it is).
    let published = metric(&ingest, "quotehub_bus_published_records_total").await;
    assert_eq!(published + dropped, 2 + 100 + 1);
    // What reached the bus is the newest: AAPL 100 is there.
    let bus = Bus::connect(&nats.url()).await.unwrap();
    let stream = bus.jetstream().get_stream("QUOTEHUB").await.unwrap();
    let last = stream
        .get_last_raw_message_by_subject("quotehub.rec.AAPL")
        .await
        .unwrap();
    assert_eq!(
        &last.payload[..],
        &ingest.hub.table().last_quote(sym("AAPL")).unwrap()[..]
    );
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_an_edge_cannot_fetch_while_its_bus_is_away_is_refused_not_answered_wrongly() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Some(mut nats) = NatsServer::start("bus_hubs_unavailable").await else {
        return;
    };
    let (ingest, ingest_joined) = hub(&nats, Role::Ingest).await;
    prime(&ingest, &ingest_joined).await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=10 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    within(ingest_joined.ingest().unwrap().flush()).await;
    let plan = JoinPlan {
        servers: nats.url(),
        role: Role::Edge,
        ingest_buffer_bytes: 16 << 20,
        storage: quotehub_bus::Storage::File,
        failover: quotehub_bus::FailoverSettings::default(),
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let config = ServerConfig {
        bus_fetch_timeout: std::time::Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let edge = TestHub::start_with_hub(joined.hub.clone(), config).await;
    nats.stop().await;
    metric_reaches(&edge, "quotehub_bus_connected", 0).await;

    // A client moved here with AAPL at 7 (from another edge): this edge
    // has never read AAPL and cannot now. Answering the resume from an
    // empty table would say nothing, and AAPL 4..=10 would arrive later as
    // live records at or below the client's 7.
    let epoch = edge.hub.table().epoch();
    let (mut ws, _) = within(tokio_tungstenite::connect_async(edge.url.as_str()))
        .await
        .unwrap();
    let request = format!(r#"{{"op":"subscribe","symbols":["AAPL"],"resume":{{"AAPL":7}},"epoch":"{epoch}","id":1}}"#);
    ws.send(Message::Text(request.clone().into())).await.unwrap();
    let reply = loop {
        match within(ws.next()).await.unwrap().unwrap() {
            Message::Text(text) => break serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "upstream_unavailable", "{reply}");
    assert_eq!(
        edge.hub.table().subscriber_count(sym("AAPL")),
        0,
        "nothing was carried out"
    );
    metric_reaches(&edge, "quotehub_bus_readers", 0).await;

    // Once the bus is back, the same resume continues at 8.
    nats.restart().await;
    metric_reaches(&edge, "quotehub_bus_connected", 1).await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.send_text(&request).await.unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        if let Some(record) = got(&next(&mut client).await) {
            seqs.push(record.1);
        }
    }
    assert_eq!(seqs, [8, 9, 10]);
    edge.shutdown().await;
    ingest.shutdown().await;
}
