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
//!
//! Clients that get exactly the same records of a batch (the same
//! subscriptions, as screens watching one list have) share them: the records
//! are copied once into a body that each of those clients' queues holds by
//! reference, instead of once into every queue. At saturation the copies
//! into queues were a third of the publisher's time, and they were the one
//! part of fan-out done once per client per record.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bytes::Bytes;
use quotehub_table::Fanout;

use crate::client::{ClientHandle, Tally, wanted_by};
use crate::direct;
use crate::send_batch::SendBatch;
use crate::stats::Stats;

/// Records staged at most before they are delivered anyway, so that a
/// source that never pauses still delivers steadily.
const MAX_STAGED_RECORDS: usize = 256;

/// Bytes of records a client must get, at the least, before it shares them
/// with others: below this, copying them into its own buffer costs less than
/// a body and a reference count that other clients' writers also change
/// (about seven quotes).
pub const SHARE_MIN_BYTES: usize = 512;

/// No group: the client's records are copied into its queue.
const ALONE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(crate) struct Staging {
    /// The staged records, in publish order.
    records: Vec<Bytes>,
    /// Per client slot: what it gets of `records`.
    per_client: Vec<Staged>,
    /// The clients with staged records, in the order first staged.
    touched: Vec<ClientHandle>,
    /// At delivery: per touched client, its group in `groups` or `ALONE`.
    group_of: Vec<u32>,
    /// At delivery: clients that get the same records.
    groups: Vec<Group>,
    /// At delivery: a group by its clients' signature.
    by_signature: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// At delivery: the messages written from this thread, counted into
    /// the stats once (see `send_batch.rs`).
    sends: SendBatch,
}

/// What one client gets of a batch.
#[derive(Debug, Default)]
struct Staged {
    /// Which of the staged records, in order.
    indices: Vec<u16>,
    /// A hash of `indices`, kept as they are pushed: clients whose lists
    /// are equal have equal signatures (and are then compared).
    signature: u64,
    /// Bytes of those records.
    bytes: usize,
}

impl Staged {
    fn push(&mut self, index: u16, bytes: usize) {
        self.indices.push(index);
        self.signature = (self.signature.rotate_left(5) ^ u64::from(index)).wrapping_mul(0x517c_c1b7_2722_0a95);
        self.bytes += bytes;
    }

    fn clear(&mut self) {
        self.indices.clear();
        self.signature = 0;
        self.bytes = 0;
    }
}

/// Clients that get the same records of a batch.
#[derive(Debug)]
struct Group {
    /// The slot of the first client, whose list the others match.
    first: usize,
    /// How many clients.
    clients: u32,
    /// The records, once copied for the first of the group delivered.
    body: Option<Bytes>,
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
        let bytes = record.len();
        let wanted = wanted_by(&record);
        self.records.push(record);
        for recipient in subscribers.iter().chain(wildcard.iter().flat_map(|all| all.iter())) {
            if !recipient.wants(wanted) {
                continue;
            }
            let client = &recipient.subscriber;
            let slot = client.slot();
            if slot >= self.per_client.len() {
                self.per_client.resize_with(slot + 1, Staged::default);
            }
            let staged = &mut self.per_client[slot];
            if staged.indices.is_empty() {
                self.touched.push(client.clone());
            }
            staged.push(index, bytes);
        }
        if self.records.len() >= MAX_STAGED_RECORDS {
            self.deliver(stats);
        }
    }

    /// Delivers everything staged: each client's records in publish order,
    /// under one lock of its queue; shared with the clients that get the
    /// same records, else copied.
    pub(crate) fn deliver(&mut self, stats: &Stats) {
        self.group();
        let mut tally = Tally::default();
        let mut direct_left = if self.records.len() <= direct::MAX_BATCH_RECORDS {
            direct::MAX_WRITES_PER_BATCH
        } else {
            0
        };
        for (client, group) in self.touched.drain(..).zip(self.group_of.drain(..)) {
            let direct = direct_left > 0;
            direct_left = direct_left.saturating_sub(1);
            if direct {
                // Each client's message is stamped at its own write: the
                // writes before it are time the record spent in the hub.
                self.sends.restamp();
            }
            let staged = &mut self.per_client[client.slot()];
            match self.groups.get_mut(group as usize).filter(|group| group.clients > 1) {
                Some(group) => {
                    let body = group
                        .body
                        .get_or_insert_with(|| copy_body(&self.records, &staged.indices, staged.bytes));
                    let records = u32::try_from(staged.indices.len()).unwrap_or(u32::MAX);
                    client.deliver_shared(body, records, &mut tally, direct.then_some(&mut self.sends));
                }
                None => {
                    let records = staged
                        .indices
                        .iter()
                        .map(|&index| &self.records[usize::from(index)][..]);
                    client.deliver_all(records, &mut tally, direct.then_some(&mut self.sends));
                }
            }
            staged.clear();
        }
        self.groups.clear();
        self.by_signature.clear();
        // Counted here, once per batch, like the deliveries.
        Stats::add(&stats.events_in, self.records.len() as u64);
        self.records.clear();
        tally.add_to(stats);
        self.sends.finish(stats);
    }

    /// Puts the touched clients that get the same records (enough of them
    /// to share) into groups.
    fn group(&mut self) {
        for client in &self.touched {
            let slot = client.slot();
            let staged = &self.per_client[slot];
            let group = if staged.bytes < SHARE_MIN_BYTES {
                ALONE
            } else {
                match self.by_signature.entry(staged.signature) {
                    Entry::Vacant(entry) => {
                        let group = self.groups.len() as u32;
                        entry.insert(group);
                        self.groups.push(Group {
                            first: slot,
                            clients: 1,
                            body: None,
                        });
                        group
                    }
                    Entry::Occupied(entry) => {
                        let group = &mut self.groups[*entry.get() as usize];
                        // Equal signatures of different lists are rare and
                        // harmless: that client's records are copied.
                        if self.per_client[group.first].indices == staged.indices {
                            group.clients += 1;
                            *entry.get()
                        } else {
                            ALONE
                        }
                    }
                }
            };
            self.group_of.push(group);
        }
    }
}

/// Copies the records at `indices` (`bytes` in all) into one body, in an
/// allocation of its own: a slow client holding a body keeps no more memory
/// than its records.
fn copy_body(records: &[Bytes], indices: &[u16], bytes: usize) -> Bytes {
    let mut body = Vec::with_capacity(bytes);
    for &index in indices {
        body.extend_from_slice(&records[usize::from(index)]);
    }
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use quotehub_proto::{Event, Flags, Price, Quote, Record};
    use quotehub_table::Start;

    use crate::client::ClientHandle;
    use crate::hub::Hub;
    use crate::queue::{Outbound, Run};
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

    /// Takes every run out of the client's queue.
    fn runs(client: &ClientHandle) -> Vec<Run> {
        let mut items = Vec::new();
        if client.queue_depth() > 0 {
            assert!(client.queue().take_now(&mut items, usize::MAX));
        }
        items
            .into_iter()
            .map(|item| match item {
                Outbound::Records(run) => run,
                other => panic!("not records: {other:?}"),
            })
            .collect()
    }

    /// (symbol, event time) of every record in `runs`.
    fn quotes_in(runs: &[Run]) -> Vec<(String, u64)> {
        let mut records = Vec::new();
        for run in runs {
            let bytes = run.contiguous();
            let mut rest = bytes.as_ref();
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

    /// (symbol, event time) of every record in the client's queue.
    fn delivered(client: &ClientHandle) -> Vec<(String, u64)> {
        quotes_in(&runs(client))
    }

    /// A client subscribed to `symbols`, with a queue of `capacity` records.
    fn subscriber(hub: &Hub, symbols: &[&str], capacity: usize, policy: Policy) -> ClientHandle {
        let client = ClientHandle::unconnected(hub, capacity, policy);
        for symbol in symbols {
            hub.table()
                .subscribe(symbol.parse().unwrap(), &client, Start::Snapshot, |_| {});
        }
        client
    }

    /// `count` quotes, AAPL and MSFT in turn, their event times 0, 1, ...
    fn alternating(count: u64) -> Vec<(&'static str, u64)> {
        (0..count)
            .map(|time| (["AAPL", "MSFT"][time as usize % 2], time))
            .collect()
    }

    /// The quotes of `sent` in `symbols`, as [`delivered`] lists them.
    fn only(sent: &[(&str, u64)], symbols: &[&str]) -> Vec<(String, u64)> {
        sent.iter()
            .filter(|(symbol, _)| symbols.contains(symbol))
            .map(|&(symbol, time)| (symbol.to_owned(), time))
            .collect()
    }

    /// Where the one part of the one run in `runs` starts in memory.
    fn body_of(runs: &[Run]) -> *const u8 {
        assert_eq!(runs.len(), 1, "one message");
        assert_eq!(runs[0].parts.len(), 1, "one part");
        runs[0].parts[0].as_ptr()
    }

    #[test]
    fn clients_that_get_the_same_records_share_one_body_and_the_others_get_copies() {
        let hub = Hub::new();
        let twins = [
            subscriber(&hub, &["AAPL", "MSFT"], 100, Policy::Conflate),
            subscriber(&hub, &["MSFT", "AAPL"], 100, Policy::Conflate),
        ];
        let apple = subscriber(&hub, &["AAPL"], 100, Policy::Conflate);
        let mut publisher = hub.publisher(Flags::default(), 0);
        // 20 quotes: 1,440 bytes for each twin, 720 for the AAPL client.
        let sent = alternating(20);
        for &(symbol, time) in &sent {
            publisher.stage(quote(symbol, time));
        }
        publisher.flush();
        let twin_runs = [runs(&twins[0]), runs(&twins[1])];
        let apple_runs = runs(&apple);
        for twin in &twin_runs {
            assert_eq!(quotes_in(twin), only(&sent, &["AAPL", "MSFT"]));
        }
        assert_eq!(quotes_in(&apple_runs), only(&sent, &["AAPL"]));
        assert_eq!(
            body_of(&twin_runs[0]),
            body_of(&twin_runs[1]),
            "the twins hold one body"
        );
        assert_ne!(body_of(&apple_runs), body_of(&twin_runs[0]));
        assert_eq!(
            hub.stats().records_queued.load(std::sync::atomic::Ordering::Relaxed),
            50
        );

        // A few records are cheaper to copy than to share.
        let sent = alternating(2);
        for &(symbol, time) in &sent {
            publisher.stage(quote(symbol, time));
        }
        publisher.flush();
        let twin_runs = [runs(&twins[0]), runs(&twins[1])];
        for twin in &twin_runs {
            assert_eq!(quotes_in(twin), only(&sent, &["AAPL", "MSFT"]));
        }
        assert_ne!(
            body_of(&twin_runs[0]),
            body_of(&twin_runs[1]),
            "each twin has its own copy"
        );
    }

    #[test]
    fn clients_with_the_same_channels_of_a_symbol_share_one_body_per_distinct_set() {
        use quotehub_proto::{Channels, Trade};
        let hub = Hub::new();
        let aapl = "AAPL".parse().unwrap();
        let holding = |channels: Channels| {
            let client = ClientHandle::unconnected(&hub, 100, Policy::Conflate);
            hub.table()
                .hold(aapl, &client, channels, Start::Snapshot, Channels::NONE, |_| {});
            client
        };
        let both = [holding(Channels::DEFAULT), holding(Channels::DEFAULT)];
        let trades = [holding(Channels::TRADES), holding(Channels::TRADES)];
        let mut publisher = hub.publisher(Flags::default(), 0);
        // 20 quotes and 20 trades in turn: 2,720 bytes for each of `both`,
        // 1,280 (trades only) for each of `trades`.
        for time in 0..40 {
            publisher.stage(match time % 2 {
                0 => quote("AAPL", time),
                _ => Event::Trade(Trade {
                    symbol: aapl,
                    price: Price::from_units(1),
                    size: 1,
                    event_ts: time,
                    recv_ts: time,
                    seq: 0,
                }),
            });
        }
        publisher.flush();
        let kinds = |runs: &[Run]| {
            let mut kinds = Vec::new();
            for run in runs {
                let bytes = run.contiguous();
                let mut rest = bytes.as_ref();
                while !rest.is_empty() {
                    let (record, used) = Record::decode(rest).unwrap();
                    kinds.push(matches!(record, Record::Trade(_)));
                    rest = &rest[used..];
                }
            }
            kinds
        };
        let both_runs = [runs(&both[0]), runs(&both[1])];
        let trades_runs = [runs(&trades[0]), runs(&trades[1])];
        for runs in &both_runs {
            assert_eq!(kinds(runs), (0..40).map(|time| time % 2 == 1).collect::<Vec<_>>());
        }
        for runs in &trades_runs {
            assert_eq!(kinds(runs), [true; 20]);
        }
        // One body per distinct set, not per client.
        assert_eq!(body_of(&both_runs[0]), body_of(&both_runs[1]));
        assert_eq!(body_of(&trades_runs[0]), body_of(&trades_runs[1]));
        assert_ne!(body_of(&both_runs[0]), body_of(&trades_runs[0]));
    }

    #[test]
    fn a_client_without_room_for_a_shared_body_gets_its_records_under_its_own_policy() {
        let hub = Hub::new();
        let symbols = ["AAPL", "MSFT"];
        let roomy = subscriber(&hub, &symbols, 100, Policy::Conflate);
        let conflating = subscriber(&hub, &symbols, 4, Policy::Conflate);
        let strict = subscriber(&hub, &symbols, 4, Policy::Disconnect);
        let mut publisher = hub.publisher(Flags::default(), 0);
        let sent = alternating(10);
        for &(symbol, time) in &sent {
            publisher.stage(quote(symbol, time));
        }
        publisher.flush();
        assert_eq!(delivered(&roomy), only(&sent, &symbols));
        // Four fit; then one pending record per symbol, its newest.
        let mut kept = only(&sent[..4], &symbols);
        kept.extend(only(&sent[8..], &symbols));
        assert_eq!(delivered(&conflating), kept);
        assert_eq!(delivered(&strict), only(&sent[..4], &symbols));
        let stats = hub.stats();
        assert_eq!(stats.conflations.load(std::sync::atomic::Ordering::Relaxed), 6);
        assert_eq!(
            stats
                .slow_consumer_disconnects
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn staged_events_reach_each_subscriber_in_publish_order_at_the_flush() {
        let hub = Hub::new();
        let both = subscriber(&hub, &["AAPL", "MSFT"], 100, Policy::Disconnect);
        let apple = subscriber(&hub, &["AAPL"], 100, Policy::Disconnect);
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
        assert_eq!(delivered(&both), only(&sent, &["AAPL", "MSFT"]));
        assert_eq!(delivered(&apple), only(&sent, &["AAPL"]));
        assert_eq!(hub.stats().records_queued.load(std::sync::atomic::Ordering::Relaxed), 8);
    }

    #[test]
    fn a_publisher_delivers_what_it_staged_when_it_publishes_or_ends() {
        let hub = Hub::new();
        let client = subscriber(&hub, &["AAPL"], 100, Policy::Disconnect);
        let mut publisher = hub.publisher(Flags::default(), 0);
        publisher.stage(quote("AAPL", 1));
        publisher.publish(quote("AAPL", 2));
        publisher.stage(quote("AAPL", 3));
        drop(publisher);
        let times: Vec<u64> = delivered(&client).into_iter().map(|(_, time)| time).collect();
        assert_eq!(times, [1, 2, 3]);
    }
}
