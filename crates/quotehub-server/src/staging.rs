//! A publisher's batch of events: each event's record is staged for its
//! subscribers, then each client gets all of its records under one lock of
//! its queue.
//!
//! Delivering record by record costs one lock of the client's queue per
//! delivery, and on x86 every lock is a full barrier that waits for the
//! previous delivery's copy to reach the cache: the publisher's profile
//! showed most of its time on that lock. A live source stages what one
//! read brought (often dozens of lines) and delivers before it reads again,
//! so nothing waits longer than the read that brought it.

use bytes::Bytes;
use quotehub_table::Fanout;

use crate::client::{ClientHandle, Tally};
use crate::stats::Stats;

/// Records staged at most before they are delivered anyway, so that a
/// source that never pauses still delivers steadily.
const MAX_STAGED_RECORDS: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Staging {
    /// The staged records, in publish order.
    records: Vec<Bytes>,
    /// Per client slot: which of `records` it gets, in order.
    per_client: Vec<Vec<u16>>,
    /// The clients with staged records, in the order first staged.
    touched: Vec<ClientHandle>,
}

impl Staging {
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Stages one event's record for its subscribers; delivers the batch
    /// when it is full.
    pub(crate) fn stage(&mut self, fanout: Fanout<ClientHandle>, stats: &Stats) {
        let Fanout {
            record,
            subscribers,
            wildcard,
            ..
        } = fanout;
        let index = self.records.len() as u16;
        self.records.push(record);
        for client in subscribers.iter().chain(wildcard.iter()) {
            let slot = client.slot();
            if slot >= self.per_client.len() {
                self.per_client.resize_with(slot + 1, Vec::new);
            }
            let staged = &mut self.per_client[slot];
            if staged.is_empty() {
                self.touched.push(client.clone());
            }
            staged.push(index);
        }
        if self.records.len() >= MAX_STAGED_RECORDS {
            self.deliver(stats);
        }
    }

    /// Delivers everything staged: each client's records in publish order,
    /// under one lock of its queue.
    pub(crate) fn deliver(&mut self, stats: &Stats) {
        let mut tally = Tally::default();
        for client in self.touched.drain(..) {
            let staged = &mut self.per_client[client.slot()];
            let records = staged.iter().map(|&index| &self.records[usize::from(index)][..]);
            client.deliver_all(records, &mut tally);
            staged.clear();
        }
        // Counted here, once per batch, like the deliveries.
        Stats::add(&stats.events_in, self.records.len() as u64);
        self.records.clear();
        tally.add_to(stats);
    }
}

#[cfg(test)]
mod tests {
    use quotehub_proto::{Event, Flags, Price, Quote, Record};
    use quotehub_table::Start;

    use crate::client::ClientHandle;
    use crate::hub::Hub;
    use crate::queue::Outbound;
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

    /// (symbol, event time) of every record in the client's queue.
    async fn delivered(client: &ClientHandle) -> Vec<(String, u64)> {
        let mut items = Vec::new();
        if client.queue_depth() > 0 {
            assert!(client.queue().drain(&mut items, usize::MAX).await);
        }
        let mut records = Vec::new();
        for item in items {
            let Outbound::Records(run) = item else {
                panic!("not records: {item:?}")
            };
            let mut rest = run.records_bytes();
            while !rest.is_empty() {
                let (record, used) = Record::decode(rest).unwrap();
                let Record::Quote(quote) = record else {
                    panic!("not a quote: {record:?}")
                };
                records.push((quote.quote.symbol.to_string(), quote.quote.event_ts));
                rest = &rest[used..];
            }
        }
        records
    }

    #[tokio::test]
    async fn staged_events_reach_each_subscriber_in_publish_order_at_the_flush() {
        let hub = Hub::new();
        let both = ClientHandle::unconnected(&hub, 100, Policy::Disconnect);
        let apple = ClientHandle::unconnected(&hub, 100, Policy::Disconnect);
        for (client, symbols) in [(&both, &["AAPL", "MSFT"][..]), (&apple, &["AAPL"][..])] {
            for symbol in symbols {
                hub.table()
                    .subscribe(symbol.parse().unwrap(), client, Start::Snapshot, |_| {});
            }
        }
        let mut publisher = hub.publisher(Flags::default(), 0);
        let sent = [
            ("AAPL", 1),
            ("MSFT", 2),
            ("AAPL", 3),
            ("TSLA", 4),
            ("MSFT", 5),
            ("AAPL", 6),
        ];
        for (symbol, time) in sent {
            publisher.stage(quote(symbol, time));
        }
        assert_eq!(
            both.queue_depth() + apple.queue_depth(),
            0,
            "nothing delivered before the flush"
        );
        publisher.flush();
        let expect = |symbols: &[&str]| -> Vec<(String, u64)> {
            sent.iter()
                .filter(|(symbol, _)| symbols.contains(symbol))
                .map(|&(symbol, time)| (symbol.to_owned(), time))
                .collect()
        };
        assert_eq!(delivered(&both).await, expect(&["AAPL", "MSFT"]));
        assert_eq!(delivered(&apple).await, expect(&["AAPL"]));
        assert_eq!(hub.stats().records_queued.load(std::sync::atomic::Ordering::Relaxed), 8);
    }

    #[tokio::test]
    async fn a_publisher_delivers_what_it_staged_when_it_publishes_or_ends() {
        let hub = Hub::new();
        let client = ClientHandle::unconnected(&hub, 100, Policy::Disconnect);
        hub.table()
            .subscribe("AAPL".parse().unwrap(), &client, Start::Snapshot, |_| {});
        let mut publisher = hub.publisher(Flags::default(), 0);
        publisher.stage(quote("AAPL", 1));
        publisher.publish(quote("AAPL", 2));
        publisher.stage(quote("AAPL", 3));
        drop(publisher);
        let times: Vec<u64> = delivered(&client).await.into_iter().map(|(_, time)| time).collect();
        assert_eq!(times, [1, 2, 3]);
    }
}
