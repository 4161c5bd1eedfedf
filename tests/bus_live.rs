//! An edge reader's live records over core NATS (the stream republishes
//! what it stores to the live subjects), against a real nats-server: a
//! record published twice reaches the stream, the reader and an edge's
//! client once; records
//! stored while the reader's connection is cut are repaired from the
//! stream when it is back, a symbol that went quiet included; a burst past
//! the live subscription's bound is repaired with no gap; a stream made
//! before the live subjects is still read, through consumers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::quote_record as record;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use common::nats::NatsServer;
use common::{TestHub, key, next as next_update, quote, sym, until, within};
use quotehub_bus::Role;
use quotehub_bus::join::{JoinPlan, join};
use quotehub_bus::{Bus, BusRecord, EdgeReader, IngestPublisher, IngestSettings, StreamSettings};
use quotehub_client::Client;
use quotehub_proto::{Epoch, Event, Flags, QuoteRecord, Record};
use quotehub_server::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn epoch() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_0002).unwrap()
}

/// The symbol and sequence number of a quote record.
fn quote_of(payload: &[u8]) -> (String, u64) {
    match Record::decode(payload).unwrap().0 {
        Record::Quote(quote) => (quote.quote.symbol.as_str().to_owned(), quote.quote.seq),
        other => panic!("not a quote: {other:?}"),
    }
}

fn seq_of(payload: &[u8]) -> u64 {
    quote_of(payload).1
}

async fn next(reader: &mut EdgeReader) -> BusRecord {
    let record = within(reader.next()).await;
    assert_eq!(record.epoch, Some(epoch()));
    record
}

/// The next `count` records' sequence numbers.
async fn seqs(reader: &mut EdgeReader, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    for _ in 0..count {
        seqs.push(seq_of(&next(reader).await.payload));
    }
    seqs
}

struct TestBus {
    server: NatsServer,
    /// The ingest side's connection (never cut).
    bus: Bus,
    settings: StreamSettings,
}

async fn bus(test: &str) -> Option<TestBus> {
    let server = NatsServer::start(test).await?;
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let settings = StreamSettings::new(1_000);
    within(settings.ensure(bus.jetstream())).await.unwrap();
    Some(TestBus { server, bus, settings })
}

impl TestBus {
    fn publisher(&self) -> IngestPublisher {
        IngestPublisher::start(&self.bus, self.settings.subjects.clone(), IngestSettings::default())
    }

    /// Publishes `seqs` of `symbol` and waits for every ack (all stored).
    async fn publish(&self, publisher: &IngestPublisher, symbol: &str, seqs: std::ops::RangeInclusive<u64>) {
        for seq in seqs {
            publisher.publish(&sym(symbol), epoch(), seq, record(symbol, seq));
        }
        within(publisher.flush()).await;
    }

    async fn stored(&self) -> u64 {
        let mut stream = within(self.bus.jetstream().get_stream(&self.settings.name))
            .await
            .unwrap();
        within(stream.info()).await.unwrap().state.messages
    }
}

/// A loopback TCP gate in front of nats-server: `cut` drops every
/// connection through it and refuses new ones until `open`.
struct Gate {
    url: String,
    open: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Gate {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, watch_cuts) = watch::channel(0u64);
        let is_open = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let mut cut = watch_cuts.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { url, open, cuts }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_published_twice_reaches_the_stream_and_the_reader_once() {
    let Some(bus) = bus("bus_live_duplicate").await else {
        return;
    };
    let edge = within(Bus::connect(&bus.server.url())).await.unwrap();
    let mut reader = within(EdgeReader::open(&edge, &bus.settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    assert!(
        reader.reads_live(),
        "a stream ensured now republishes to the live subjects"
    );
    let jetstream = bus.bus.jetstream();
    let subject = bus.settings.subjects.of(&sym("AAPL"));
    // 1, 1 again (a retry after an ack time-out, or a zombie ingest hub),
    // then 2: what a core subscriber on the stream's own subjects would see
    // three times of, the stream stores twice.
    for seq in [1, 1, 2] {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("AAPL:{}:{seq}", epoch()).as_str());
        let ack = within(jetstream.publish_with_headers(subject.clone(), headers, record("AAPL", seq)))
            .await
            .unwrap();
        within(ack.into_future()).await.unwrap();
    }
    assert_eq!(bus.stored().await, 2, "the stream keeps the duplicate once");
    // Something on the live subject that the stream did not republish (no
    // stream headers): not a record of the stream, never passed.
    edge.client()
        .publish(bus.settings.subjects.live_of(&sym("AAPL")), record("AAPL", 99))
        .await
        .unwrap();
    within(edge.client().flush()).await.unwrap();
    let publisher = bus.publisher();
    bus.publish(&publisher, "AAPL", 3..=3).await;
    assert_eq!(seqs(&mut reader, 3).await, [1, 2, 3], "each record once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edges_client_gets_a_record_published_twice_once() {
    let Some(nats) = NatsServer::start("bus_live_edge_duplicate").await else {
        return;
    };
    let hub = |role| {
        let plan = JoinPlan {
            servers: nats.url(),
            role,
            ingest_buffer_bytes: 16 << 20,
            storage: quotehub_bus::Storage::File,
            failover: quotehub_bus::FailoverSettings::default(),
        };
        async move {
            let joined = within(join(&plan, 100, 10_000, 100_000)).await;
            let served = TestHub::start_with_hub(joined.hub.clone(), ServerConfig::default()).await;
            (served, joined)
        }
    };
    let (ingest, ingest_joined) = hub(Role::Ingest).await;
    ingest
        .hub
        .publisher(Flags::default(), 0)
        .publish(quote("PRIME", "1.00", "1.01", 1));
    within(ingest_joined.ingest().unwrap().flush()).await;
    let (edge, _edge_joined) = hub(Role::Edge).await;
    let mut client = within(Client::connect(&edge.url)).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();
    // AAPL 1, 1 again (a retry, or a zombie ingest hub), 2, 3, in the
    // ingest hub's sequence space, each acknowledged by the stream.
    let epoch = ingest.hub.table().epoch();
    let bus = within(Bus::connect(&nats.url())).await.unwrap();
    for seq in [1, 1, 2, 3] {
        let Event::Quote(mut quote) = quote("AAPL", "271.22", "271.23", seq) else {
            unreachable!()
        };
        quote.seq = seq;
        let bytes = QuoteRecord {
            quote,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode();
        let message = PublishMessage::build()
            .message_id(IngestPublisher::message_id(&sym("AAPL"), epoch, seq))
            .payload(Bytes::copy_from_slice(&bytes));
        let ack = within(bus.jetstream().send_publish("quotehub.rec.AAPL", message))
            .await
            .unwrap();
        within(ack.into_future()).await.unwrap();
    }
    // In order: by the time 3 is here, a second 1 would have been too.
    let mut seqs = Vec::new();
    while seqs.last() != Some(&3) {
        let (symbol, seq, _) = key(&next_update(&mut client).await);
        assert_eq!(symbol, "AAPL");
        seqs.push(seq);
    }
    assert_eq!(seqs, [1, 2, 3], "each record once");
    assert_eq!(client.gaps(), 0);
    edge.shutdown().await;
    ingest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_stored_while_the_connection_is_cut_are_repaired_a_quiet_symbol_included() {
    let Some(bus) = bus("bus_live_cut").await else { return };
    let gate = Gate::start(bus.server.port).await;
    let edge = within(Bus::connect(&gate.url)).await.unwrap();
    let publisher = bus.publisher();
    let mut busy = within(EdgeReader::open(&edge, &bus.settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    let mut quiet = within(EdgeReader::open(&edge, &bus.settings, &sym("QUIET"), 100))
        .await
        .unwrap();
    let mut all = within(EdgeReader::open_all(&edge, &bus.settings)).await.unwrap();
    assert!(busy.reads_live() && quiet.reads_live() && all.reads_live());
    bus.publish(&publisher, "AAPL", 1..=3).await;
    bus.publish(&publisher, "QUIET", 1..=3).await;
    assert_eq!(seqs(&mut busy, 3).await, [1, 2, 3]);
    assert_eq!(seqs(&mut quiet, 3).await, [1, 2, 3]);
    assert_eq!(seqs(&mut all, 6).await, [1, 2, 3, 1, 2, 3]);

    gate.cut();
    let mut state = edge.state();
    within(state.wait_for(|state| !state.connected)).await.unwrap();
    // Stored while the edge is away: never sent to its subscriptions.
    bus.publish(&publisher, "AAPL", 4..=10).await;
    bus.publish(&publisher, "QUIET", 4..=6).await;
    gate.open();

    // QUIET gets nothing more after this: only a repair brings 4..=6.
    assert_eq!(seqs(&mut quiet, 3).await, [4, 5, 6]);
    assert_eq!(seqs(&mut busy, 7).await, (4..=10).collect::<Vec<_>>());
    bus.publish(&publisher, "AAPL", 11..=12).await;
    assert_eq!(seqs(&mut busy, 2).await, [11, 12], "live again after the repair");
    let mut every = Vec::new();
    for _ in 0..12 {
        let record = next(&mut all).await;
        every.push(quote_of(&record.payload));
    }
    let expected: Vec<(String, u64)> = (4..=10)
        .map(|seq| ("AAPL".to_owned(), seq))
        .chain((4..=6).map(|seq| ("QUIET".to_owned(), seq)))
        .chain((11..=12).map(|seq| ("AAPL".to_owned(), seq)))
        .collect();
    assert_eq!(every, expected, "\"*\" in stream order, no gap");
    assert!(busy.repairs() >= 1 && quiet.repairs() >= 1 && all.repairs() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_live_subscriptions_bound_is_repaired_with_no_gap() {
    let Some(bus) = bus("bus_live_burst").await else { return };
    // Each subscription of the edge's client holds at most 600 messages
    // (more than the 500 a consumer asks for at a time).
    let edge = within(Bus::connect_with_capacity(&bus.server.url(), 600))
        .await
        .unwrap();
    let mut reader = within(EdgeReader::open(&edge, &bus.settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    assert!(reader.reads_live());
    let publisher = bus.publisher();
    // Not read while it arrives: the client drops all but 600, and then the
    // symbol goes quiet, so no later record shows the gap.
    let received = edge.client().statistics();
    let before = received.in_messages.load(Ordering::Relaxed);
    bus.publish(&publisher, "AAPL", 1..=1_000).await;
    // Every one has reached the edge's client (queued or dropped) before
    // the reader reads: no late arrival shows the gap.
    until(|| received.in_messages.load(Ordering::Relaxed) >= before + 1_000).await;
    // The client reports the overflow as an event, handled on its own task.
    let mut state = edge.state();
    within(state.wait_for(|state| state.slow_consumers > 0)).await.unwrap();
    assert_eq!(seqs(&mut reader, 1_000).await, (1..=1_000).collect::<Vec<_>>());
    assert!(reader.repairs() >= 1, "the dropped records came from the stream");
    bus.publish(&publisher, "AAPL", 1_001..=1_002).await;
    assert_eq!(seqs(&mut reader, 2).await, [1_001, 1_002]);
}

/// The client's slow-consumer event names no subscription, and comes once
/// per dropped message. A reader that lost nothing must not repair for
/// another subscription's overflow: when every reader repaired at every
/// event, one subscription overflowing under load set every reader making
/// consumers, which loaded the bus more (bus_edge_overlap's stall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subscriptions_overflow_costs_a_reader_that_lost_nothing_no_repair() {
    let Some(bus) = bus("bus_live_overflow_elsewhere").await else {
        return;
    };
    let edge = within(Bus::connect_with_capacity(&bus.server.url(), 600))
        .await
        .unwrap();
    let mut quiet = within(EdgeReader::open(&edge, &bus.settings, &sym("QUIET"), 100))
        .await
        .unwrap();
    let mut noisy = within(EdgeReader::open(&edge, &bus.settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    assert!(quiet.reads_live() && noisy.reads_live());
    let publisher = bus.publisher();
    let received = edge.client().statistics();
    let arrived = || received.in_messages.load(Ordering::Relaxed);
    // AAPL's subscription, not read meanwhile, overflows: 400 events.
    let before = arrived();
    bus.publish(&publisher, "AAPL", 1..=1_000).await;
    until(|| arrived() >= before + 1_000).await;
    let mut state = edge.state();
    within(state.wait_for(|state| state.slow_consumers > 0)).await.unwrap();
    // QUIET's records, each read once it has reached the edge's client.
    for seq in 1..=8 {
        let before = arrived();
        bus.publish(&publisher, "QUIET", seq..=seq).await;
        until(|| arrived() > before).await;
        assert_eq!(seqs(&mut quiet, 1).await, [seq]);
    }
    assert_eq!(quiet.repairs(), 0, "QUIET lost nothing: no repair");
    assert_eq!(seqs(&mut noisy, 1_000).await, (1..=1_000).collect::<Vec<_>>());
    assert!(noisy.repairs() >= 1, "AAPL's dropped records came from the stream");
    // Reading live again, it has let go of its catch-up consumer, and the
    // server deletes it (left alone, nats-server keeps it 30 s, with a pull
    // of 500 records open).
    bus.publish(&publisher, "AAPL", 1_001..=1_001).await;
    assert_eq!(seqs(&mut noisy, 1).await, [1_001]);
    let mut stream = within(bus.bus.jetstream().get_stream(&bus.settings.name))
        .await
        .unwrap();
    within(async {
        while within(stream.info()).await.unwrap().state.consumer_count > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// The first connect is reported by the client's event and by the connect
/// returning; counted twice, every reader took it for a reconnect and
/// repaired once at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_connect_is_counted_once() {
    let Some(bus) = bus("bus_live_first_connect").await else {
        return;
    };
    let edge = within(Bus::connect(&bus.server.url())).await.unwrap();
    let mut reader = within(EdgeReader::open(&edge, &bus.settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    let publisher = bus.publisher();
    bus.publish(&publisher, "AAPL", 1..=3).await;
    assert_eq!(seqs(&mut reader, 3).await, [1, 2, 3]);
    assert_eq!(edge.state().borrow().connects, 1);
    assert_eq!(reader.repairs(), 0, "no reconnect, no repair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_before_the_live_subjects_is_read_through_consumers() {
    let Some(server) = NatsServer::start("bus_live_old_stream").await else {
        return;
    };
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let settings = StreamSettings::new(100);
    let mut old = settings.config();
    old.republish = None;
    within(bus.jetstream().create_stream(old)).await.unwrap();
    // nats-server 2.9 cannot add republish to it: kept as it is, no error.
    within(settings.ensure(bus.jetstream())).await.unwrap();
    let mut reader = within(EdgeReader::open(&bus, &settings, &sym("AAPL"), 100))
        .await
        .unwrap();
    let publisher = IngestPublisher::start(&bus, settings.subjects.clone(), IngestSettings::default());
    for seq in 1..=5 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    within(publisher.flush()).await;
    assert_eq!(seqs(&mut reader, 5).await, [1, 2, 3, 4, 5]);
}
