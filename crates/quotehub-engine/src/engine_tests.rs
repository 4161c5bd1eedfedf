//! The engine driven as an edge would drive it, with no runtime and no
//! socket: events in through a publisher, records out of a client's queue,
//! and the slow-consumer policy applied when the queue is full.

use std::sync::{Arc, Mutex};

use quotehub_proto::{Event, Flags, Price, Quote, Record};
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

/// (symbol, event time, flags, merged count) of every record queued for `client`.
fn queued(client: &ClientHandle) -> Vec<(String, u64, Flags, u32)> {
    let mut items = Vec::new();
    while client.queue().take_now(&mut items, usize::MAX) {}
    let mut records = Vec::new();
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
            records.push((
                record.quote.symbol.to_string(),
                record.quote.event_ts,
                record.flags,
                record.conflated,
            ));
            rest = &rest[used..];
        }
    }
    records
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
