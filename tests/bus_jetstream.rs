//! The bus crate against a real nats-server with JetStream: records go out
//! through the ingest publisher and come back byte for byte through the
//! edge reader; re-published records are stored once; the stream keeps the
//! last records of each symbol; a bus restart loses nothing the stream held;
//! while the bus is away the publisher's buffer stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::quote_record as record;

use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use common::nats::NatsServer;
use common::{sym, until, within};
use quotehub_bus::{Bus, EdgeReader, IngestPublisher, IngestSettings, Storage, StreamSettings};
use quotehub_proto::Epoch;

fn epoch() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap()
}

/// The per-symbol sequence number inside a quote record.
fn seq_of(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload[24..32].try_into().unwrap())
}

struct TestBus {
    server: NatsServer,
    bus: Bus,
    jetstream: async_nats::jetstream::Context,
    settings: StreamSettings,
}

async fn bus(test: &str, records_per_symbol: u32) -> Option<TestBus> {
    let server = NatsServer::start(test).await?;
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let jetstream = bus.jetstream().clone();
    let settings = StreamSettings::new(records_per_symbol);
    within(settings.ensure(&jetstream)).await.unwrap();
    Some(TestBus {
        server,
        bus,
        jetstream,
        settings,
    })
}

impl TestBus {
    fn publisher(&self, settings: IngestSettings) -> IngestPublisher {
        IngestPublisher::start(&self.bus, self.settings.subjects.clone(), settings)
    }

    async fn reader(&self, symbol: &str, history: u64) -> EdgeReader {
        within(EdgeReader::open(&self.bus, &self.settings, &sym(symbol), history))
            .await
            .unwrap()
    }

    /// How many messages the stream holds.
    async fn stored(&self) -> u64 {
        let mut stream = within(self.jetstream.get_stream(&self.settings.name)).await.unwrap();
        within(stream.info()).await.unwrap().state.messages
    }
}

async fn read(reader: &mut EdgeReader, count: usize) -> Vec<Bytes> {
    let mut payloads = Vec::with_capacity(count);
    for _ in 0..count {
        let record = within(reader.next()).await;
        // Every record names the ingest hub's sequence space.
        assert_eq!(record.epoch, Some(epoch()));
        payloads.push(record.payload);
    }
    payloads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_back_byte_identical_in_order_history_then_live() {
    let Some(bus) = bus("bus_round_trip", 100).await else {
        return;
    };
    let publisher = bus.publisher(IngestSettings::default());
    const N: u64 = 40;
    for seq in 1..=N {
        for symbol in ["AAPL", "BRK.B"] {
            assert!(publisher.publish(&sym(symbol), epoch(), seq, record(symbol, seq)));
        }
    }
    within(publisher.flush()).await;
    assert_eq!(publisher.counters().published, 2 * N);
    assert_eq!(bus.stored().await, 2 * N);

    // BRK.B is stored under its escaped subject, which SPEC.md gives.
    let stream = within(bus.jetstream.get_stream("QUOTEHUB")).await.unwrap();
    let last = within(stream.get_last_raw_message_by_subject("quotehub.rec.BRK_2EB"))
        .await
        .unwrap();
    assert_eq!(last.payload, record("BRK.B", N));

    let mut readers = [
        ("AAPL", bus.reader("AAPL", 1000).await),
        ("BRK.B", bus.reader("BRK.B", 1000).await),
    ];
    for (symbol, reader) in &mut readers {
        let history = read(reader, N as usize).await;
        let expected: Vec<Bytes> = (1..=N).map(|seq| record(symbol, seq)).collect();
        assert_eq!(
            history, expected,
            "{symbol}: the whole history, byte for byte, in order"
        );
    }
    // Then live records, each reader only its own symbol's.
    for seq in N + 1..=N + 5 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
        publisher.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq));
    }
    for (symbol, reader) in &mut readers {
        let live = read(reader, 5).await;
        let expected: Vec<Bytes> = (N + 1..=N + 5).map(|seq| record(symbol, seq)).collect();
        assert_eq!(live, expected, "{symbol}: live records follow the history with no gap");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_with_no_history_gets_only_new_records() {
    let Some(bus) = bus("bus_no_history", 100).await else {
        return;
    };
    let publisher = bus.publisher(IngestSettings::default());
    for seq in 1..=3 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    within(publisher.flush()).await;
    let mut reader = bus.reader("AAPL", 0).await;
    publisher.publish(&sym("MSFT"), epoch(), 1, record("MSFT", 1));
    publisher.publish(&sym("AAPL"), epoch(), 4, record("AAPL", 4));
    assert_eq!(read(&mut reader, 1).await, [record("AAPL", 4)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_published_record_is_stored_once() {
    let Some(bus) = bus("bus_dedup", 100).await else { return };
    let active = bus.publisher(IngestSettings::default());
    for seq in 1..=10 {
        active.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq));
    }
    within(active.flush()).await;
    assert_eq!(bus.stored().await, 10);

    // A standby taking over re-publishes the same records (same symbol,
    // epoch and sequence, so the same message ids) and one new one.
    let standby = bus.publisher(IngestSettings::default());
    for seq in 6..=11 {
        standby.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq));
    }
    within(standby.flush()).await;
    let counters = standby.counters();
    assert_eq!((counters.duplicates, counters.published), (5, 1), "{counters:?}");
    assert_eq!(bus.stored().await, 11, "the duplicates were not stored");

    let mut reader = bus.reader("BRK.B", 100).await;
    let seqs: Vec<u64> = read(&mut reader, 11).await.iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_keeps_only_the_last_records_of_each_symbol() {
    const KEPT: u32 = 5;
    let Some(bus) = bus("bus_per_subject_limit", KEPT).await else {
        return;
    };
    let publisher = bus.publisher(IngestSettings::default());
    for seq in 1..=20 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    publisher.publish(&sym("MSFT"), epoch(), 1, record("MSFT", 1));
    within(publisher.flush()).await;
    assert_eq!(bus.stored().await, u64::from(KEPT) + 1, "5 of AAPL's, MSFT's one");

    let mut all_kept = bus.reader("AAPL", 100).await;
    let seqs: Vec<u64> = read(&mut all_kept, KEPT as usize)
        .await
        .iter()
        .map(|p| seq_of(p))
        .collect();
    assert_eq!(seqs, [16, 17, 18, 19, 20]);

    // Fewer than the stream keeps: the last 3, then the next live one.
    let mut last_three = bus.reader("AAPL", 3).await;
    let seqs: Vec<u64> = read(&mut last_three, 3).await.iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, [18, 19, 20]);
    publisher.publish(&sym("AAPL"), epoch(), 21, record("AAPL", 21));
    assert_eq!(seq_of(&within(last_three.next()).await.payload), 21);

    // Records that arrive while a reader catches up (and push its oldest
    // history out of the stream): it starts at 19, or later if the stream
    // dropped those first, and what it yields has no gap.
    let mut racing = bus.reader("AAPL", 3).await;
    for seq in 22..=26 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    let mut seqs = vec![seq_of(&within(racing.next()).await.payload)];
    while seqs.last() != Some(&26) {
        seqs.push(seq_of(&within(racing.next()).await.payload));
    }
    assert!((19..=22).contains(&seqs[0]), "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gap: {seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_and_a_publisher_ride_out_a_bus_restart() {
    let Some(mut bus) = bus("bus_restart", 100).await else {
        return;
    };
    let publisher = bus.publisher(IngestSettings::default());
    let mut reader = bus.reader("BRK.B", 100).await;
    for seq in 1..=10 {
        publisher.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq));
    }
    let before: Vec<u64> = read(&mut reader, 10).await.iter().map(|p| seq_of(p)).collect();
    assert_eq!(before, (1..=10).collect::<Vec<_>>());
    within(publisher.flush()).await;

    // The reader waits for more on a task of its own while the bus goes.
    let follow = tokio::spawn(async move { read(&mut reader, 10).await });
    bus.server.stop().await;
    for seq in 11..=20 {
        assert!(publisher.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq)));
    }
    bus.server.restart().await;

    within(publisher.flush()).await;
    let after: Vec<u64> = within(follow).await.unwrap().iter().map(|p| seq_of(p)).collect();
    assert_eq!(after, (11..=20).collect::<Vec<_>>(), "no record lost or repeated");
    assert_eq!(publisher.counters().dropped, 0);
    // The store survived the restart: the first ten are still there.
    assert_eq!(bus.stored().await, 20);
    let mut fresh = bus.reader("BRK.B", 100).await;
    let all: Vec<Bytes> = read(&mut fresh, 20).await;
    assert_eq!(all, (1..=20).map(|seq| record("BRK.B", seq)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_bus_is_away_the_buffer_is_bounded_and_drops_are_counted() {
    let Some(mut bus) = bus("bus_away_buffer", 100).await else {
        return;
    };
    // Room for 10 records: each costs its 72 bytes, the subject and the id.
    let one = 72 + "quotehub.rec.AAPL".len() + IngestPublisher::message_id(&sym("AAPL"), epoch(), 10).len();
    let settings = IngestSettings {
        max_in_flight: 2,
        max_buffered_bytes: 10 * one,
        ..IngestSettings::default()
    };
    let publisher = bus.publisher(settings);
    bus.server.stop().await;
    for seq in 10..40 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
        let buffered = publisher.counters().buffered_bytes;
        assert!(
            buffered <= 10 * one as u64,
            "buffered {buffered} bytes, more than 10 records"
        );
    }
    let counters = publisher.counters();
    assert!(counters.dropped >= 20, "30 records into room for 10: {counters:?}");
    assert_eq!(counters.dropped_bytes, counters.dropped * one as u64);

    bus.server.restart().await;
    within(publisher.flush()).await;
    let counters = publisher.counters();
    assert_eq!(
        counters.published + counters.dropped,
        30,
        "each record stored or counted: {counters:?}"
    );
    assert_eq!(counters.buffered_bytes, 0);
    // The newest records are the ones kept, in order.
    let mut reader = bus.reader("AAPL", 100).await;
    let kept: Vec<u64> = read(&mut reader, counters.published as usize)
        .await
        .iter()
        .map(|p| seq_of(p))
        .collect();
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
    assert_eq!(kept.last(), Some(&39), "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_brings_an_existing_stream_to_the_settings() {
    let Some(bus) = bus("bus_ensure", 5).await else { return };
    // The same settings again: the stream and its records stay.
    let publisher = bus.publisher(IngestSettings::default());
    for seq in 1..=6 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    within(publisher.flush()).await;
    within(bus.settings.ensure(&bus.jetstream)).await.unwrap();
    assert_eq!(bus.stored().await, 5);

    // A hub restarted with a shorter history: the running stream follows.
    let shorter = StreamSettings::new(3);
    within(shorter.ensure(&bus.jetstream)).await.unwrap();
    let mut stream = within(bus.jetstream.get_stream("QUOTEHUB")).await.unwrap();
    let info = within(stream.info()).await.unwrap();
    assert_eq!(info.config.max_messages_per_subject, 3);
    assert_eq!(info.config.subjects, ["quotehub.rec.>"]);
    assert_eq!(
        info.state.messages, 3,
        "the server applies the new limit to what it holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_stream_serves_like_a_file_one_and_keeps_its_storage() {
    let Some(bus) = bus("bus_memory", 5).await else { return };
    // A stream of its own beside the file one the helper made.
    let memory = StreamSettings {
        name: "QUOTEHUB_MEMORY".to_owned(),
        subjects: quotehub_bus::Subjects::new("quotehub.mem").unwrap(),
        storage: Storage::Memory,
        ..StreamSettings::new(5)
    };
    within(memory.ensure(&bus.jetstream)).await.unwrap();
    let storage_of = |name: &'static str| {
        let jetstream = bus.jetstream.clone();
        async move {
            let mut stream = within(jetstream.get_stream(name)).await.unwrap();
            within(stream.info()).await.unwrap().config.storage
        }
    };
    assert_eq!(storage_of("QUOTEHUB_MEMORY").await, StorageType::Memory);
    assert_eq!(storage_of("QUOTEHUB").await, StorageType::File, "file unless asked");

    // History then live, byte for byte, as from the file stream.
    let publisher = IngestPublisher::start(&bus.bus, memory.subjects.clone(), IngestSettings::default());
    for seq in 1..=3 {
        publisher.publish(&sym("AAPL"), epoch(), seq, record("AAPL", seq));
    }
    within(publisher.flush()).await;
    let mut reader = within(EdgeReader::open(&bus.bus, &memory, &sym("AAPL"), 2))
        .await
        .unwrap();
    publisher.publish(&sym("AAPL"), epoch(), 4, record("AAPL", 4));
    let got = read(&mut reader, 3).await;
    assert_eq!(got, [record("AAPL", 2), record("AAPL", 3), record("AAPL", 4)]);

    // A hub asking for the other storage: JetStream cannot move a stream,
    // so it is used as it is, records and all.
    let on_file = StreamSettings {
        storage: Storage::File,
        ..memory.clone()
    };
    within(on_file.ensure(&bus.jetstream)).await.unwrap();
    assert_eq!(storage_of("QUOTEHUB_MEMORY").await, StorageType::Memory);
    let mut stream = within(bus.jetstream.get_stream("QUOTEHUB_MEMORY")).await.unwrap();
    assert_eq!(within(stream.info()).await.unwrap().state.messages, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_whose_acks_time_out_are_re_sent_and_stored_once() {
    let Some(bus) = bus("bus_ack_timeout", 100).await else {
        return;
    };
    let publisher = bus.publisher(IngestSettings::default());
    // Frozen, not stopped: the connection stays up, so the records are sent
    // and their acks never come (a stopped server's dropped connection
    // would hold them back until it is back).
    bus.server.pause().await;
    // More records than ack timeouts fit in the deadline, were they
    // awaited one after another.
    const N: u64 = 12;
    for seq in 1..=N {
        publisher.publish(&sym("BRK.B"), epoch(), seq, record("BRK.B", seq));
    }
    // The bus stays silent past the ack timeout: the publisher gives up on
    // those acks and queues the records again.
    until(|| publisher.counters().retries >= N).await;
    bus.server.resume();
    within(publisher.flush()).await;

    // The client may also have sent its own copies on reconnect: the
    // message ids keep the stream at one of each, in order. A record the
    // stream holds by the time of the re-send is not sent again.
    let counters = publisher.counters();
    assert_eq!(
        counters.published + counters.duplicates + counters.not_resent,
        N,
        "{counters:?}"
    );
    assert_eq!(counters.dropped, 0);
    assert_eq!(bus.stored().await, N);
    let mut reader = bus.reader("BRK.B", 100).await;
    assert_eq!(
        read(&mut reader, N as usize).await,
        (1..=N).map(|seq| record("BRK.B", seq)).collect::<Vec<_>>()
    );
}
