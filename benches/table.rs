//! Criterion benches of the subscription table, in memory: lookup by symbol
//! (alone, and with reader threads busy on the other cores), subscribe and
//! unsubscribe one symbol, and publish through the table to N subscribers
//! whose delivery is a counter (the table's own cost; `fanout.rs` measures
//! delivery into real client queues).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use bytes::Bytes;
use common::{QUEUE_CAPACITY, QueueClient, drain, populated_table, sample_quote, symbols, timed_in_chunks};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quotehub_proto::record::QUOTE_LEN;
use quotehub_proto::{Event, Quote};
use quotehub_table::{Start, Subscriber, Table};

/// Symbols the table holds in the lookup and subscribe benches.
const SYMBOLS: usize = 1_000;

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(1));
    let names = symbols(SYMBOLS);
    let table: Table<QueueClient> = populated_table(&names);

    // Each run looks up the next of the 1,000 symbols, so the bench walks the
    // whole map rather than one hot entry.
    let mut next = 0;
    group.bench_function("lookup_alone", |b| {
        b.iter(|| {
            next = (next + 1) % names.len();
            assert!(table.is_known(black_box(names[next])));
        })
    });

    // One reader per other core loops over the same symbols (from another
    // starting point) for as long as the measurement runs, as feed threads
    // publishing on other cores do.
    let readers = thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
    let stop = AtomicBool::new(false);
    let running = AtomicUsize::new(0);
    thread::scope(|scope| {
        for reader in 0..readers {
            let (table, names, stop, running) = (&table, &names, &stop, &running);
            scope.spawn(move || {
                let mut at = (reader * 397 + 500) % names.len();
                let mut first = true;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        at = (at + 1) % names.len();
                        black_box(table.is_known(names[at]));
                    }
                    if std::mem::take(&mut first) {
                        running.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // The measurement starts once every reader is looking symbols up.
        while running.load(Ordering::Relaxed) < readers {
            thread::yield_now();
        }
        group.bench_function("lookup_with_readers", |b| {
            b.iter(|| {
                next = (next + 1) % names.len();
                assert!(table.is_known(black_box(names[next])));
            })
        });
        stop.store(true, Ordering::Relaxed);
    });
    group.finish();
}

/// Subscribe and unsubscribe one client to one symbol that already has
/// `others` subscribers and a last quote (so a snapshot goes into the
/// client's queue). The client cycles through a pool of symbols; subscribing
/// is undone (and the queue drained) untimed between chunks, and the other
/// way round for the unsubscribe bench.
fn subscribe(c: &mut Criterion) {
    const POOL: usize = 256;
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(1));
    let names = symbols(SYMBOLS);
    for others in [0_u64, 100, 1_000] {
        let table: Table<QueueClient> = populated_table(&names);
        let pool = &names[..POOL];
        // The other subscribers share one queue: only their ids and handles
        // differ, which is all the table sees.
        let (crowd, _crowd_rx) = QueueClient::new(u64::MAX, 1);
        for (k, &symbol) in pool.iter().enumerate() {
            for other in 0..others {
                let id = 1_000_000 * (k as u64 + 1) + other;
                table.subscribe(symbol, &crowd.sharing_queue(id), Start::Snapshot, |_| {});
            }
        }
        let (client, rx) = QueueClient::new(1, QUEUE_CAPACITY);
        let mut queues = [rx];
        let subscribe_one = |symbol| {
            table.subscribe(symbol, &client, Start::Snapshot, |snapshot| {
                client.deliver(snapshot);
            });
        };

        group.bench_with_input(BenchmarkId::new("subscribe", others), &others, |b, _| {
            b.iter_custom(|iters| {
                let at = Cell::new(0);
                timed_in_chunks(
                    iters,
                    POOL as u64,
                    || {
                        subscribe_one(pool[at.get()]);
                        at.set(at.get() + 1);
                    },
                    |done| {
                        for &symbol in &pool[..at.replace(0)] {
                            table.unsubscribe(symbol, client.subscriber_id());
                        }
                        assert_eq!(drain(&mut queues), done, "one snapshot per subscribe");
                    },
                )
            })
        });

        for &symbol in pool {
            subscribe_one(symbol);
        }
        drain(&mut queues);
        group.bench_with_input(BenchmarkId::new("unsubscribe", others), &others, |b, _| {
            b.iter_custom(|iters| {
                let at = Cell::new(0);
                timed_in_chunks(
                    iters,
                    POOL as u64,
                    || {
                        table.unsubscribe(pool[at.get()], client.subscriber_id());
                        at.set(at.get() + 1);
                    },
                    |_| {
                        for &symbol in &pool[..at.replace(0)] {
                            subscribe_one(symbol);
                        }
                        drain(&mut queues);
                    },
                )
            })
        });
        assert_eq!(table.subscriber_count(pool[0]), others as usize + 1);
    }
    group.finish();
}

/// A subscriber whose delivery is one atomic add, so the bench measures the
/// table and the fan-out loop rather than a queue.
#[derive(Clone)]
struct Counter(u64, Arc<AtomicU64>);

impl Subscriber for Counter {
    fn subscriber_id(&self) -> u64 {
        self.0
    }
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(1));
    for subscribers in [0_u64, 1, 100, 1_000] {
        let table = Table::new();
        let symbol = "AAPL".parse().unwrap();
        let delivered = Arc::new(AtomicU64::new(0));
        for id in 0..subscribers {
            table.subscribe(symbol, &Counter(id, Arc::clone(&delivered)), Start::Snapshot, |_| {});
        }
        for other in 0..1_000 {
            table.publish(
                &mut Event::Quote(Quote {
                    symbol: format!("S{other}").parse().unwrap(),
                    ..sample_quote()
                }),
                |_| Bytes::new(),
            );
        }
        let encoded = Bytes::copy_from_slice(&[0u8; QUOTE_LEN]);
        let quote = sample_quote();
        group.bench_with_input(
            BenchmarkId::new("publish_to_subscribers", subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    let mut event = Event::Quote(quote);
                    let fanout = table.publish(&mut event, |_| encoded.clone());
                    for subscriber in fanout.recipients() {
                        let _record = fanout.record.clone();
                        subscriber.1.fetch_add(1, Ordering::Relaxed);
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, lookup, subscribe, publish);
criterion_main!(benches);
