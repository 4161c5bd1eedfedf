//! The engine driven as an edge would drive it, with no runtime and no
//! socket: events in through a publisher, a client's requests in through
//! its session, records and replies out of its queue, and the slow-consumer
//! policy applied when the queue is full.

use std::sync::{Arc, Mutex};

use quotehub_proto::{Event, Flags, Price, Quote, QuoteRecord, Record};
use quotehub_table::Start;
use tungstenite::protocol::CloseFrame;

use crate::client::{ClientHandle, Closer};
use crate::hub::Hub;
use crate::queue::{Outbound, Queue};
use crate::slow_consumer::Policy;

fn quote(symbol: &str, event_ts: u64) -> Event {
    Event::Quote(Quote {
        symbol: symbol.parse().unwrap(),
        bid_price: Price::from_units(1),
        bid_size: 1,
        ask_price: Price::from_units(2),
        ask_size: 1,
        event_ts,
        recv_ts: event_ts,
        seq: 0,
    })
}

/// A closer that remembers the frames it was asked to send.
#[derive(Debug, Default, Clone)]
struct Remember(Arc<Mutex<Vec<CloseFrame>>>);

impl Closer for Remember {
    fn close(&self, frame: CloseFrame) {
        self.0.lock().unwrap().push(frame);
    }
}

/// A connected-looking client with a queue of `capacity`, subscribed to `symbols`.
fn client(hub: &Hub, capacity: usize, policy: Policy, symbols: &[&str]) -> (ClientHandle, Remember) {
    let closes = Remember::default();
    let client = ClientHandle::new(
        hub.next_client_id(),
        hub.lease_slot(),
        Arc::new(Queue::new(capacity, policy, crate::queue::DEFAULT_MAX_MESSAGE_BYTES)),
        capacity,
        Box::new(closes.clone()),
        Arc::clone(hub.stats()),
    );
    for symbol in symbols {
        hub.table()
            .subscribe(symbol.parse().unwrap(), &client, Start::Snapshot, |_| {});
    }
    (client, closes)
}

/// Every quote queued for `client`, decoded from the bytes it would be sent.
fn queued_quotes(client: &ClientHandle) -> Vec<QuoteRecord> {
    let mut items = Vec::new();
    while client.queue().take_now(&mut items, usize::MAX) {}
    let mut quotes = Vec::new();
    for item in items {
        let Outbound::Records(run) = item else {
            panic!("not records: {item:?}")
        };
        let bytes = run.contiguous();
        let mut rest = bytes.as_ref();
        while !rest.is_empty() {
            let (record, used) = Record::decode(rest).unwrap();
            let Record::Quote(record) = record else {
                panic!("not a quote: {record:?}")
            };
            quotes.push(record);
            rest = &rest[used..];
        }
    }
    quotes
}

/// (symbol, event time, flags, merged count) of every record queued for `client`.
fn queued(client: &ClientHandle) -> Vec<(String, u64, Flags, u32)> {
    queued_quotes(client)
        .into_iter()
        .map(|record| {
            (
                record.quote.symbol.to_string(),
                record.quote.event_ts,
                record.flags,
                record.conflated,
            )
        })
        .collect()
}

#[test]
fn published_quotes_reach_each_subscriber_queue_in_order_and_only_theirs() {
    let hub = Hub::new();
    let (apple, _) = client(&hub, 100, Policy::Conflate, &["AAPL"]);
    let (both, _) = client(&hub, 100, Policy::Conflate, &["AAPL", "MSFT"]);
    let mut publisher = hub.publisher(Flags::default(), 0);
    for (symbol, time) in [("AAPL", 1), ("MSFT", 2), ("AAPL", 3)] {
        publisher.publish(quote(symbol, time));
    }
    let times = |records: Vec<(String, u64, Flags, u32)>| -> Vec<(String, u64)> {
        records.into_iter().map(|(symbol, time, ..)| (symbol, time)).collect()
    };
    assert_eq!(times(queued(&apple)), [("AAPL".into(), 1), ("AAPL".into(), 3)]);
    assert_eq!(
        times(queued(&both)),
        [("AAPL".into(), 1), ("MSFT".into(), 2), ("AAPL".into(), 3)]
    );
}

#[test]
fn a_full_queue_conflates_to_the_newest_quote_of_each_symbol_under_conflate() {
    let hub = Hub::new();
    let (client, closes) = client(&hub, 2, Policy::Conflate, &["AAPL"]);
    let mut publisher = hub.publisher(Flags::default(), 0);
    for time in 1..=6 {
        publisher.publish(quote("AAPL", time));
    }
    let records = queued(&client);
    // Two fit; the other four become one record, the newest, flagged, with
    // the three merged into it counted.
    assert_eq!(records.len(), 3, "{records:?}");
    let (_, time, flags, merged) = &records[2];
    assert_eq!(*time, 6, "the newest quote is kept");
    assert!(flags.contains(Flags::CONFLATED), "{flags:?}");
    assert_eq!(*merged, 3);
    assert!(closes.0.lock().unwrap().is_empty(), "conflation closes no one");
}

#[test]
fn a_full_queue_closes_the_client_once_through_its_closer_under_disconnect() {
    let hub = Hub::new();
    let (client, closes) = client(&hub, 2, Policy::Disconnect, &["AAPL"]);
    let mut publisher = hub.publisher(Flags::default(), 0);
    for time in 1..=5 {
        publisher.publish(quote("AAPL", time));
    }
    let closes = closes.0.lock().unwrap();
    assert_eq!(closes.len(), 1, "closed once: {closes:?}");
    assert!(closes[0].reason.starts_with("slow consumer"), "{:?}", closes[0]);
    assert_eq!(queued(&client).len(), 2, "nothing past the capacity was queued");
}

/// How many `"*"` walks went through [`counting`].
static WALKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A [`crate::session::Blocking`] that counts the walks it runs.
fn counting(walk: &mut dyn FnMut()) {
    WALKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    walk();
}

#[test]
fn a_subscribe_request_is_answered_and_its_snapshot_queued_and_a_wildcard_walks_through_the_edges_hook() {
    let hub = Hub::new();
    let mut publisher = hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", 7));
    publisher.publish(quote("MSFT", 8));
    let (client, _) = client(&hub, 100, Policy::Conflate, &[]);
    let mut session = crate::session::Session::new(client.clone(), Arc::clone(hub.table()), 100, (20, 40));
    session.run_walks_with(counting);
    session.handle_text(r#"{"op":"subscribe","symbols":["AAPL"],"id":1}"#);
    let mut items = Vec::new();
    while client.queue().take_now(&mut items, usize::MAX) {}
    let replies: Vec<&String> = items
        .iter()
        .filter_map(|item| match item {
            Outbound::Text(text) => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{items:?}");
    assert!(replies[0].contains(r#""id":1"#), "{}", replies[0]);
    let snapshots: Vec<(String, u64, Flags)> = items
        .iter()
        .filter_map(|item| match item {
            Outbound::Records(run) => Some(run.contiguous().into_owned()),
            _ => None,
        })
        .flat_map(|bytes| {
            let mut records = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let (record, used) = Record::decode(rest).unwrap();
                if let Record::Quote(record) = record {
                    records.push((record.quote.symbol.to_string(), record.quote.event_ts, record.flags));
                }
                rest = &rest[used..];
            }
            records
        })
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!((snapshots[0].0.as_str(), snapshots[0].1), ("AAPL", 7));
    assert!(snapshots[0].2.contains(Flags::SNAPSHOT));
    assert_eq!(
        WALKS.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "a named subscribe walks nothing"
    );
    session.handle_text(r#"{"op":"subscribe","symbols":["*"],"id":2}"#);
    assert_eq!(
        WALKS.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "\"*\" walked through the hook"
    );
}

/// A quote record as an ingest hub encoded it: sequence `seq`, stamped `time`.
fn ingest_record(symbol: &str, seq: u64, time: u64) -> Vec<u8> {
    let Event::Quote(quote) = quote(symbol, time) else {
        unreachable!()
    };
    quotehub_proto::QuoteRecord {
        quote: Quote { seq, ..quote },
        flags: Flags::default(),
        conflated: 0,
    }
    .encode()
    .to_vec()
}

/// (sequence, flags) of every quote queued for `client`, read from the bytes.
fn queued_seqs(client: &ClientHandle) -> Vec<(u64, Flags)> {
    queued_quotes(client)
        .into_iter()
        .map(|record| (record.quote.seq, record.flags))
        .collect()
}

#[test]
fn passed_through_records_keep_the_ingest_hubs_numbers_duplicates_are_refused_and_jumps_counted() {
    let hub = Hub::new();
    let (subscriber, _) = client(&hub, 100, Policy::Conflate, &["AAPL"]);
    let mut publisher = hub.publisher(Flags::default(), 0);
    let symbol = "AAPL".parse().unwrap();
    let sent: Vec<Vec<u8>> = [5, 6, 7].map(|seq| ingest_record("AAPL", seq, seq * 10)).into();
    for record in &sent {
        assert!(publisher.publish_passthrough(symbol, true, record));
    }
    assert_eq!(
        queued_seqs(&subscriber),
        [(5, Flags::default()), (6, Flags::default()), (7, Flags::default())]
    );
    let stats = hub.stats();
    assert_eq!(crate::Stats::get(&stats.passthrough_refused), 0);
    assert_eq!(crate::Stats::get(&stats.passthrough_gaps), 0);

    assert!(!publisher.publish_passthrough(symbol, true, &ingest_record("AAPL", 6, 99)));
    assert_eq!(queued_seqs(&subscriber), []);
    assert_eq!(crate::Stats::get(&stats.passthrough_refused), 1);

    let jump = ingest_record("AAPL", 10, 100);
    assert!(publisher.publish_passthrough(symbol, true, &jump));
    // Delivered as received, not flagged: the client sees the jump in the numbers.
    assert_eq!(queued_seqs(&subscriber), [(10, Flags::default())]);
    assert_eq!(crate::Stats::get(&stats.passthrough_gaps), 1);
    assert_eq!(crate::Stats::get(&stats.events_in), 4);
    // The snapshot after holds 10, and the last value is the record's bytes unchanged.
    assert_eq!(hub.table().last_quote(symbol).unwrap(), jump);
    let (late, _) = client(&hub, 100, Policy::Conflate, &[]);
    hub.table().subscribe(symbol, &late, Start::Snapshot, |snapshot| {
        late.deliver(&snapshot);
    });
    assert_eq!(queued_seqs(&late), [(10, Flags::SNAPSHOT)]);
}

#[test]
fn a_record_too_short_to_carry_a_number_is_refused_not_published() {
    let hub = Hub::new();
    let (client, _) = client(&hub, 100, Policy::Conflate, &["AAPL"]);
    let mut publisher = hub.publisher(Flags::default(), 0);
    let record = ingest_record("AAPL", 5, 1);
    assert!(!publisher.publish_passthrough("AAPL".parse().unwrap(), true, &record[..20]));
    assert_eq!(queued_seqs(&client), []);
    assert_eq!(crate::Stats::get(&hub.stats().passthrough_refused), 1);
}

#[test]
fn a_hub_made_in_an_upstreams_epoch_numbers_in_it() {
    let epoch = quotehub_proto::Epoch::from_u64(77).unwrap();
    assert_eq!(Hub::with_history_in(8, epoch).table().epoch(), epoch);
}
