//! Ingest failover with whole hubs (issue 17 item 3): two ingest hubs
//! replay the same recorded feed onto a real nats-server, one edge serves a
//! client; the active ingest hub is killed mid-replay and the standby takes
//! over. The client ends with every symbol numbered 1..n in one sequence
//! space, no gap, no duplicate, no `RESET`, the feed's events in order; the
//! stream holds exactly one record per event. A client of the derived
//! channels (bars, BBO) ends with each numbered 1..n, no gap, no duplicate,
//! the same bars and books as a client of the standby got from the start,
//! although the standby numbers one symbol's records and books one ahead
//! of the stream (a quote only it took).
//! In-process hubs over real sockets, built by `quotehub_bus::join` as
//! `quotehub serve --bus ... --role ingest` builds them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;

use common::nats::NatsServer;
use common::{TestHub, bundled_feed, http_get, metric, metric_reaches, next, quote, sym, within};
use quotehub_bus::join::{JoinPlan, Joined, join};
use quotehub_bus::{Bus, FailoverSettings, Role, StreamSettings};
use quotehub_client::{Client, Update};
use quotehub_proto::{Channels, Event, Flags, Symbol};
use quotehub_server::ServerConfig;

/// Three symbols of the bundled feed (595 events), one with a `.`.
const SYMBOLS: [&str; 3] = ["ZVZZT", "INTU", "BF.B"];

/// Records kept per symbol, in the hubs and the stream: more than any of
/// `SYMBOLS` has in the feed.
const DEPTH: usize = 1024;

/// The feed spans 300 s: at 75× the replay lasts about 4 s, long enough to
/// kill the active hub in the middle of it.
const SPEED: f64 = 75.0;

/// A hub in `role` on the bus at `nats`, served on 127.0.0.1:0.
async fn hub(nats: &NatsServer, role: Role, holder: &str) -> (TestHub, Joined) {
    let plan = JoinPlan {
        servers: nats.url(),
        role,
        ingest_buffer_bytes: 16 << 20,
        storage: quotehub_bus::Storage::File,
        failover: FailoverSettings {
            holder: holder.to_owned(),
            ..FailoverSettings::default()
        },
    };
    let joined = within(join(&plan, DEPTH, 10_000, 100_000)).await;
    let served = TestHub::start_with_hub(joined.hub.clone(), ServerConfig::default()).await;
    (served, joined)
}

/// Replays the bundled feed's `SYMBOLS` into `ingest` at [`SPEED`] on a
/// thread, until the feed ends or the returned sender is dropped.
fn replay(ingest: &TestHub) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let only: HashSet<Symbol> = SYMBOLS.iter().map(|s| sym(s)).collect();
    let mut publisher = ingest.hub.publisher(Flags::REPLAYED, 0).only(Some(only));
    let path = bundled_feed();
    let (keep, stop) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut feed = quotehub_feed::open_recorded(&path).unwrap();
        let options = quotehub_feed::ReplayOptions {
            speed: quotehub_feed::Speed::Factor(SPEED),
            looped: false,
        };
        quotehub_feed::replay(feed.as_mut(), options, &stop, |mut event| {
            event.set_recv_ts(quotehub_proto::now_ns());
            publisher.publish(event);
        })
        .unwrap();
    });
    (keep, thread)
}

/// An event as the feed has it: without the hub's number and stamp.
fn bare(mut event: Event) -> Event {
    event.set_seq(0);
    event.set_recv_ts(0);
    event
}

/// The feed's events of `SYMBOLS`, per symbol, in order.
fn feed_events() -> BTreeMap<String, Vec<Event>> {
    let only: HashSet<Symbol> = SYMBOLS.iter().map(|s| sym(s)).collect();
    let mut feed = quotehub_feed::open_recorded(&bundled_feed()).unwrap();
    let (_keep, stop) = mpsc::channel::<()>();
    let options = quotehub_feed::ReplayOptions {
        speed: quotehub_feed::Speed::Max,
        looped: false,
    };
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    quotehub_feed::replay(feed.as_mut(), options, &stop, |event| {
        if only.contains(&event.symbol()) {
            events.entry(event.symbol().to_string()).or_default().push(bare(event));
        }
    })
    .unwrap();
    events
}

/// A client's record: symbol, number, and the event it carries.
fn record(update: &Update) -> Option<(String, u64, Event)> {
    match update {
        Update::Quote { record, .. } => Some((
            record.quote.symbol.to_string(),
            record.quote.seq,
            bare(Event::Quote(record.quote)),
        )),
        Update::Trade { record, .. } => Some((
            record.trade.symbol.to_string(),
            record.trade.seq,
            bare(Event::Trade(record.trade)),
        )),
        _ => None,
    }
}

/// The derived channels a client asks for.
fn derived() -> Channels {
    Channels::BARS_1S.with(Channels::BARS_1M).with(Channels::BBO)
}

/// A client's derived record: symbol, channel, number, and the bar or book
/// without what the hub that sent it adds (its receive stamp, its number).
type DerivedGot = (String, u32, u64, String);

fn derived_record(update: &Update) -> Option<DerivedGot> {
    match update {
        Update::Bar { record, .. } => {
            let mut bar = record.bar;
            let seq = std::mem::take(&mut bar.seq);
            bar.recv_ts = 0;
            Some((bar.symbol.to_string(), bar.interval.seconds(), seq, format!("{bar:?}")))
        }
        Update::Bbo { record, .. } => {
            let mut bbo = record.bbo;
            let seq = std::mem::take(&mut bbo.seq);
            bbo.recv_ts = 0;
            Some((bbo.symbol.to_string(), 0, seq, format!("{bbo:?}")))
        }
        _ => None,
    }
}

/// Reads `client`'s derived records until each (symbol, channel) of
/// `last` reached its number there.
async fn read_derived_until(client: &mut Client, last: &BTreeMap<(String, u32), u64>) -> Vec<DerivedGot> {
    let mut seen: BTreeMap<(String, u32), u64> = BTreeMap::new();
    let mut all = Vec::new();
    while last.iter().any(|(key, &seq)| seen.get(key).copied().unwrap_or(0) < seq) {
        if let Some(one) = derived_record(&next(client).await) {
            seen.insert((one.0.clone(), one.1), one.2);
            all.push(one);
        }
    }
    all
}

/// Each (symbol, channel)'s last derived number on `hub` (channel: a
/// bar's seconds, 0 for the BBO).
fn derived_lasts(hub: &TestHub) -> BTreeMap<(String, u32), u64> {
    let mut lasts = BTreeMap::new();
    for symbol in SYMBOLS {
        for (channel, key) in [(Channels::BARS_1S, 1), (Channels::BARS_1M, 60), (Channels::BBO, 0)] {
            if let Some(last) = hub.hub.table().last_value(sym(symbol), channel) {
                let seq = u64::from_le_bytes(last[24..32].try_into().unwrap());
                lasts.insert((symbol.to_owned(), key), seq);
            }
        }
    }
    lasts
}

/// The `/metrics` lines of the ingest lease, as `name[{labels}] value`.
async fn lease_metrics(hub: &TestHub) -> Vec<String> {
    let (status, body) = http_get(hub, "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .filter(|line| {
            ["quotehub_bus_lease", "quotehub_bus_takeover"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .map(str::to_owned)
        .collect()
}

/// A quote both ingest hubs take before the replay, so that the edge learns
/// the stream's sequence space before its client subscribes.
fn prime(ingest: &TestHub) {
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("PRIME", "1.00", "1.01", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_active_ingest_hub_leaves_the_edges_client_every_event_once_in_order() {
    let Some(nats) = NatsServer::start("bus_failover_hubs").await else {
        return;
    };
    let expected = feed_events();
    let total: usize = expected.values().map(Vec::len).sum();

    let (a, a_joined) = hub(&nats, Role::Ingest, "ingest-a").await;
    prime(&a);
    within(a_joined.ingest().unwrap().flush()).await;
    let (b, b_joined) = hub(&nats, Role::Ingest, "ingest-b").await;
    prime(&b);
    // A quote only the standby takes, which the feed's first ZVZZT quote
    // then replaces (same feed): the standby numbers ZVZZT's records and
    // its books one ahead of the stream, so its takeover must renumber.
    b.hub
        .publisher(Flags::default(), 0)
        .publish(quote("ZVZZT", "0.01", "0.02", 1));
    assert_eq!(
        lease_metrics(&a).await,
        [
            "quotehub_bus_lease_active 1",
            "quotehub_bus_takeovers_total 1",
            "quotehub_bus_takeovers_after_release_total 0",
            "quotehub_bus_lease_losses_total 0",
            "quotehub_bus_takeover_unmatched_total 0",
            "quotehub_bus_lease_holder_info{holder=\"ingest-a\"} 1",
        ],
        "one ingest hub alone holds the lease"
    );
    assert_eq!(
        lease_metrics(&b).await,
        [
            "quotehub_bus_lease_active 0",
            "quotehub_bus_takeovers_total 0",
            "quotehub_bus_takeovers_after_release_total 0",
            "quotehub_bus_lease_losses_total 0",
            "quotehub_bus_takeover_unmatched_total 0",
            "quotehub_bus_lease_holder_info{holder=\"ingest-a\"} 1",
        ],
        "the second is a standby and names the holder"
    );
    let (edge, _edge_joined) = hub(&nats, Role::Edge, "edge").await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&SYMBOLS).await.unwrap();
    // Bars and books: one client on the edge, and one on the standby, whose
    // own numbers are the stream's once it takes over.
    let mut derived_client = within(Client::connect(&edge.url)).await.unwrap();
    derived_client.subscribe_to(&SYMBOLS, derived()).await.unwrap();
    let mut on_standby = within(Client::connect(&b.url)).await.unwrap();
    on_standby.subscribe_to(&SYMBOLS, derived()).await.unwrap();

    // Both replay the same file from its start: the same events.
    let (stop_a, thread_a) = replay(&a);
    let (_stop_b, thread_b) = replay(&b);

    let mut got: Vec<(String, u64, Event)> = Vec::new();
    while got.len() < total / 3 {
        if let Some(one) = record(&next(&mut client).await) {
            got.push(one);
        }
    }
    // Kill the active hub mid-replay: its feed, its server, its bus side.
    drop(stop_a);
    thread_a.join().unwrap();
    a.shutdown().await;
    drop(a_joined);
    eprintln!(
        "killed the active ingest hub after the client had {} of {total} records",
        got.len()
    );

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (symbol, _, _) in &got {
        *seen.entry(symbol.clone()).or_default() += 1;
    }
    while expected
        .iter()
        .any(|(symbol, events)| seen.get(symbol).copied().unwrap_or(0) < events.len())
    {
        if let Some(one) = record(&next(&mut client).await) {
            *seen.entry(one.0.clone()).or_default() += 1;
            got.push(one);
        }
    }
    for (symbol, events) in &expected {
        let mine: Vec<&(String, u64, Event)> = got.iter().filter(|r| &r.0 == symbol).collect();
        let seqs: Vec<u64> = mine.iter().map(|r| r.1).collect();
        let want: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(seqs, want, "{symbol}: numbered 1..n with no gap and no duplicate");
        let content: Vec<Event> = mine.iter().map(|r| r.2).collect();
        assert_eq!(&content, events, "{symbol}: the feed's events, in order");
    }
    assert_eq!((client.gaps(), client.resets()), (0, 0), "one sequence space");
    assert_eq!(
        lease_metrics(&b).await,
        [
            "quotehub_bus_lease_active 1",
            "quotehub_bus_takeovers_total 1",
            "quotehub_bus_takeovers_after_release_total 0",
            "quotehub_bus_lease_losses_total 0",
            "quotehub_bus_takeover_unmatched_total 0",
            "quotehub_bus_lease_holder_info{holder=\"ingest-b\"} 1",
        ],
        "the standby took over"
    );

    // The stream: exactly one record per event (and the prime).
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    let settings = StreamSettings::new(DEPTH as u32);
    let mut stream = within(bus.jetstream().get_stream(&settings.name)).await.unwrap();
    let messages = within(stream.info()).await.unwrap().state.messages;
    assert_eq!(messages, total as u64 + 1, "one record per event in the stream");

    thread_b.join().unwrap();
    // Bars and books: each channel numbered 1..n once, the standby's bars
    // and books (but ZVZZT's first book, its extra quote's), in the
    // stream's numbers.
    let ahead = |symbol: &str, channel: u32| u64::from(symbol == "ZVZZT" && channel == 0);
    let standby_last = derived_lasts(&b);
    assert_eq!(
        standby_last.len(),
        SYMBOLS.len() * 3,
        "bars and a BBO of every symbol: {standby_last:?}"
    );
    let last: BTreeMap<(String, u32), u64> = standby_last
        .iter()
        .map(|((symbol, channel), n)| ((symbol.clone(), *channel), n - ahead(symbol, *channel)))
        .collect();
    let from_edge = read_derived_until(&mut derived_client, &last).await;
    let from_standby = read_derived_until(&mut on_standby, &standby_last).await;
    for ((symbol, channel), &n) in &last {
        let of = |records: &[DerivedGot], ahead: u64| -> Vec<(u64, String)> {
            records
                .iter()
                .filter(|r| &r.0 == symbol && r.1 == *channel && r.2 > ahead && r.2 <= n + ahead)
                .map(|r| (r.2 - ahead, r.3.clone()))
                .collect()
        };
        let (edge_got, standby_got) = (of(&from_edge, 0), of(&from_standby, ahead(symbol, *channel)));
        let seqs: Vec<u64> = edge_got.iter().map(|r| r.0).collect();
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "{symbol} {channel}: numbered 1..n with no gap and no duplicate"
        );
        assert!(
            edge_got == standby_got,
            "{symbol} {channel}: the standby's bars and books"
        );
    }
    drop(client);
    edge.shutdown().await;
    b.shutdown().await;
    drop(b_joined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_loses_the_lease_stops_publishing_and_fills_in_when_it_takes_it_back() {
    let Some(mut nats) = NatsServer::start("bus_failover_lost").await else {
        return;
    };
    let (ingest, joined) = hub(&nats, Role::Ingest, "ingest-a").await;
    let mut publisher = ingest.hub.publisher(Flags::default(), 0);
    for time in 1..=3 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    within(joined.ingest().unwrap().flush()).await;

    // Cut off from the bus past its deadline, the hub gives the lease up.
    nats.stop().await;
    metric_reaches(&ingest, "quotehub_bus_lease_losses_total", 1).await;
    assert_eq!(metric(&ingest, "quotehub_bus_lease_active").await, 0);
    for time in 4..=8 {
        publisher.publish(quote("AAPL", "271.24", "271.25", time));
    }
    assert_eq!(
        metric(&ingest, "quotehub_bus_ingest_buffered_bytes").await,
        0,
        "a hub without the lease offers nothing to the bus"
    );

    // Back: it takes the lease again and publishes what the stream lacks,
    // in the stream's numbers, once.
    nats.restart().await;
    metric_reaches(&ingest, "quotehub_bus_takeovers_total", 2).await;
    assert_eq!(metric(&ingest, "quotehub_bus_lease_active").await, 1);
    publisher.publish(quote("AAPL", "271.26", "271.27", 9));
    within(joined.ingest().unwrap().flush()).await;
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    let settings = StreamSettings::new(DEPTH as u32);
    let mut stream = within(bus.jetstream().get_stream(&settings.name)).await.unwrap();
    assert_eq!(
        within(stream.info()).await.unwrap().state.messages,
        9,
        "each of the 9 records once"
    );
    let last = within(stream.get_last_raw_message_by_subject("quotehub.rec.AAPL"))
        .await
        .unwrap();
    assert_eq!(
        &last.payload[..],
        &ingest.hub.table().last_quote(sym("AAPL")).unwrap()[..],
        "numbered 9, as the hub numbered it"
    );
    drop(publisher);
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sole_ingest_hub_restarted_continues_the_streams_numbers_with_a_visible_gap() {
    let Some(nats) = NatsServer::start("bus_failover_restart").await else {
        return;
    };
    let (first, first_joined) = hub(&nats, Role::Ingest, "ingest-a").await;
    let mut publisher = first.hub.publisher(Flags::default(), 0);
    for time in 1..=3 {
        publisher.publish(quote("AAPL", "271.22", "271.23", time));
    }
    within(first_joined.ingest().unwrap().flush()).await;
    drop(publisher);
    first.shutdown().await;
    drop(first_joined);

    // Started after the stream's last AAPL record, the new hub cannot know
    // what the feed said while no hub ran: AAPL 4 is skipped, not reused.
    let (restarted, joined) = hub(&nats, Role::Ingest, "ingest-b").await;
    metric_reaches(&restarted, "quotehub_bus_takeovers_total", 1).await;
    assert_eq!(
        metric(&restarted, "quotehub_bus_takeover_unmatched_total").await,
        2,
        "AAPL's records and AAPL's BBO each skip a number"
    );
    restarted
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.30", "271.31", 10));
    within(joined.ingest().unwrap().flush()).await;
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    let settings = StreamSettings::new(DEPTH as u32);
    let stream = within(bus.jetstream().get_stream(&settings.name)).await.unwrap();
    let last = within(stream.get_last_raw_message_by_subject("quotehub.rec.AAPL"))
        .await
        .unwrap();
    let (record, _) = quotehub_proto::Record::decode(&last.payload).unwrap();
    let quotehub_proto::Record::Quote(record) = record else {
        panic!("{record:?}")
    };
    assert_eq!(
        (record.quote.seq, record.quote.event_ts),
        (5, 10),
        "the stream's numbers go on after a visible gap"
    );
    let stream = within(bus.jetstream().get_stream(settings.derived_name()))
        .await
        .unwrap();
    let last = within(stream.get_last_raw_message_by_subject("quotehub.rec-drv.bbo.AAPL"))
        .await
        .unwrap();
    let (record, _) = quotehub_proto::Record::decode(&last.payload).unwrap();
    let quotehub_proto::Record::Bbo(record) = record else {
        panic!("{record:?}")
    };
    assert_eq!(
        (record.bbo.seq, record.bbo.event_ts),
        (3, 10),
        "the BBO's numbers go on after a visible gap too"
    );
    restarted.shutdown().await;
}
