//! Criterion benches of fan-out through the server's real publish path, in
//! memory: `quotehub_server::Publisher::stage` + `flush` (live sources) and
//! `Publisher::publish` (one at a time) of one quote on a real `Hub`
//! (sequence, encode once, last value) to 1, 100, 1,000 and 10,000 real
//! `ClientHandle`s, each delivery going into the client's own queue
//! (`queue.rs`, conflate policy, the server's default capacity) exactly as
//! for a connected client.
//!
//! Every subscriber here gets the same records, so a staged batch of 512
//! bytes or more per client is copied once into a body their queues share
//! (`staging.rs`): `publish_to_queues` measures that, the best case, as
//! for screens watching one list. `publish_copied_to_queues` flushes before
//! a client's records reach `SHARE_MIN_BYTES`, so each is copied into each
//! queue: what a batch costs when every client's subscriptions differ.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{QUEUE_CAPACITY, sample_quote, symbols, timed_batches, timed_in_chunks};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quotehub_proto::record::QUOTE_LEN;
use quotehub_proto::{Channels, Event, Flags, Quote};
use quotehub_server::{ClientHandle, Hub, Policy, Publisher, SHARE_MIN_BYTES};
use quotehub_table::Start;

/// Records queued in total (over all queues) before a timed chunk ends and
/// the queues are drained.
const QUEUED_PER_CHUNK: u64 = 64 * 1_024;

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    let others = symbols(1_000);
    for subscribers in [1_u64, 100, 1_000, 10_000] {
        // Throughput in deliveries: one publish reaches every subscriber.
        group.throughput(Throughput::Elements(subscribers));
        let hub = Hub::new();
        let mut publisher = hub.publisher(Flags::REPLAYED, 0);
        // A hub that has seen 1,000 other symbols, as after a while.
        for &symbol in &others {
            publisher.publish(Event::Quote(Quote {
                symbol,
                ..sample_quote()
            }));
        }
        let quote = sample_quote();
        let clients: Vec<ClientHandle> = (0..subscribers)
            .map(|_| {
                let client = ClientHandle::unconnected(&hub, QUEUE_CAPACITY, Policy::Conflate);
                hub.table().subscribe(quote.symbol, &client, Start::Snapshot, |record| {
                    client.deliver(&record);
                });
                client
            })
            .collect();
        let drain = || clients.iter().map(|client| client.discard_queued() as u64).sum::<u64>();
        drain();

        // A timed chunk publishes at most QUEUED_PER_CHUNK / subscribers
        // quotes (1,024 for one subscriber, 6 for 10,000), so no queue ever
        // reaches its capacity and nothing is conflated; between chunks,
        // untimed, the bench thread empties every queue as the clients'
        // writer tasks would (in the server they drain concurrently from
        // other threads, which this bench does not model).
        let chunk = (QUEUED_PER_CHUNK / subscribers).clamp(1, 1_024);
        // The live path: a source stages what one read brought and the
        // publisher delivers it per client under one lock (`staging.rs`);
        // here a read brings one chunk (or 256 quotes, the staging limit).
        group.bench_with_input(
            BenchmarkId::new("publish_to_queues", subscribers),
            &subscribers,
            |b, _| b.iter_custom(|iters| staged(&mut publisher, quote, iters, chunk, &drain, subscribers)),
        );
        if subscribers > 1 {
            // Batches just under what clients share: records are copied.
            let unshared = ((SHARE_MIN_BYTES - 1) / QUOTE_LEN) as u64;
            group.bench_with_input(
                BenchmarkId::new("publish_copied_to_queues", subscribers),
                &subscribers,
                |b, _| b.iter_custom(|iters| staged(&mut publisher, quote, iters, unshared, &drain, subscribers)),
            );
        }
        group.bench_with_input(
            BenchmarkId::new("publish_each_to_queues", subscribers),
            &subscribers,
            |b, _| {
                b.iter_custom(|iters| {
                    timed_in_chunks(
                        iters,
                        chunk,
                        || publisher.publish(Event::Quote(quote)),
                        |published| assert_eq!(drain(), published * subscribers, "every record queued"),
                    )
                })
            },
        );
    }
    delayed(&mut group, &others);
    filtered(&mut group, &others);
    bbo_changing(&mut group, &others);
    group.finish();
}

/// One quote of each of `others`, so that the table holds them as a busy
/// hub's does before the measured symbol is published.
fn publish_others(publisher: &mut Publisher, others: &[quotehub_proto::Symbol]) {
    for &symbol in others {
        publisher.publish(Event::Quote(Quote {
            symbol,
            ..sample_quote()
        }));
    }
}

/// `publish_to_queues/1` with quotes whose book changes every time (the
/// bid size alternates), as a venue's quotes usually do: each one moves the
/// symbol's BBO, so beside the quote the hub encodes a BBO record, keeps it
/// as the channel's snapshot and fans it out (here to nobody: the client
/// holds the default channels). `publish_to_queues/1` repeats one quote, so
/// its BBO never changes; the difference is what a BBO change costs.
fn bbo_changing(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    others: &[quotehub_proto::Symbol],
) {
    group.throughput(Throughput::Elements(1));
    let hub = Hub::new();
    let mut publisher = hub.publisher(Flags::REPLAYED, 0);
    publish_others(&mut publisher, others);
    let quote = sample_quote();
    let quotes = [
        quote,
        Quote {
            bid_size: quote.bid_size + 100,
            ..quote
        },
    ];
    let client = ClientHandle::unconnected(&hub, QUEUE_CAPACITY, Policy::Conflate);
    hub.table().subscribe(quote.symbol, &client, Start::Snapshot, |record| {
        client.deliver(&record);
    });
    client.discard_queued();
    let mut n = 0usize;
    group.bench_function(BenchmarkId::new("publish_bbo_changing_to_queues", 1), |b| {
        b.iter_custom(|iters| {
            timed_batches(
                iters,
                1_024,
                |batch| {
                    for _ in 0..batch {
                        n += 1;
                        publisher.stage(Event::Quote(quotes[n % 2]));
                    }
                    publisher.flush();
                },
                |batch| assert_eq!(client.discard_queued() as u64, batch, "every quote queued"),
            )
        })
    });
}

/// The channel filter alone (issue 19: it may add at most 10 ns per record
/// to publish), on the staged path of `publish_to_queues/1`: the same quote
/// published on three hubs whose one client of the symbol holds it with
/// `quotes` (`included`: the record passes and is queued, as in
/// `publish_to_queues/1`), with `trades` only (`excluded`: the filter runs
/// and drops it, nothing is queued), or that has no client of it
/// (`unsubscribed`: no recipient to test). `excluded` minus `unsubscribed`
/// is what testing one recipient costs; the record's channel, read once per
/// record, is in all three (its cost is in the callgrind figures of
/// benches/README.md). `included` minus `excluded` is the delivery, not the
/// filter.
fn filtered(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    others: &[quotehub_proto::Symbol],
) {
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("included", Some(Channels::QUOTES), 1),
        ("excluded", Some(Channels::TRADES), 0),
        ("unsubscribed", None, 0),
    ];
    for (name, channels, queued_per_quote) in cases {
        let hub = Hub::new();
        let mut publisher = hub.publisher(Flags::REPLAYED, 0);
        publish_others(&mut publisher, others);
        let quote = sample_quote();
        let client = ClientHandle::unconnected(&hub, QUEUE_CAPACITY, Policy::Conflate);
        if let Some(channels) = channels {
            hub.table()
                .hold(quote.symbol, &client, channels, Start::Snapshot, channels, |record| {
                    client.deliver(&record);
                });
        }
        client.discard_queued();
        let drain = || client.discard_queued() as u64;
        group.bench_function(BenchmarkId::new("publish_filtered", name), |b| {
            b.iter_custom(|iters| staged(&mut publisher, quote, iters, 1_024, &drain, queued_per_quote))
        });
    }
}

/// `publish_each_to_queues/1` on a hub with a delayed key: every record is
/// also pushed into a 15-minute delay line (default cap; once full, each
/// push drops the oldest, as a line does when its release cannot keep up).
fn delayed(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    others: &[quotehub_proto::Symbol],
) {
    group.throughput(Throughput::Elements(1));
    let mut hub = Hub::new();
    let line = std::sync::Arc::new(quotehub_engine::DelayLine::new(
        Duration::from_secs(15 * 60),
        quotehub_server::ServerConfig::default().delay_line_max_bytes,
    ));
    hub.sink_to(line);
    let mut publisher = hub.publisher(Flags::REPLAYED, 0);
    publish_others(&mut publisher, others);
    let quote = sample_quote();
    let client = ClientHandle::unconnected(&hub, QUEUE_CAPACITY, Policy::Conflate);
    hub.table().subscribe(quote.symbol, &client, Start::Snapshot, |record| {
        client.deliver(&record);
    });
    client.discard_queued();
    group.bench_function(BenchmarkId::new("publish_each_to_queues_delayed", 1), |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                1_024,
                || publisher.publish(Event::Quote(quote)),
                |published| assert_eq!(client.discard_queued() as u64, published, "every record queued"),
            )
        })
    });
}

/// Times `iters` quotes staged and flushed `batch` at a time (as a live
/// source flushes per read); drains the queues untimed after each batch.
fn staged(
    publisher: &mut Publisher,
    quote: Quote,
    iters: u64,
    batch: u64,
    drain: &impl Fn() -> u64,
    subscribers: u64,
) -> Duration {
    timed_batches(
        iters,
        batch,
        |n| {
            for _ in 0..n {
                publisher.stage(Event::Quote(quote));
            }
            publisher.flush();
        },
        |n| assert_eq!(drain(), n * subscribers, "every record queued"),
    )
}

criterion_group!(benches, publish);
criterion_main!(benches);
