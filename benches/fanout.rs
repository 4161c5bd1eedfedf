//! Criterion benches of fan-out into real client queues, in memory: publish
//! one quote through the table and `try_send` the one encoded record to each
//! of 1, 100, 1,000 and 10,000 subscribers' bounded `tokio::sync::mpsc`
//! queues, as the server's `fanout::Publisher::publish` does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    QueueClient, SlabEncoder, drain, populated_table, sample_quote, subscribe_clients, symbols, timed_in_chunks,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quotehub_proto::{Event, Flags};
use quotehub_table::Table;

/// Records queued in total (over all queues) before a timed chunk ends and
/// the queues are drained.
const QUEUED_PER_CHUNK: u64 = 64 * 1_024;

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    let others = symbols(1_000);
    for subscribers in [1_u64, 100, 1_000, 10_000] {
        // Throughput in deliveries: one publish reaches every subscriber.
        group.throughput(Throughput::Elements(subscribers));
        let table: Table<QueueClient> = populated_table(&others);
        let symbol = sample_quote().symbol;
        let mut queues = subscribe_clients(&table, symbol, 0, subscribers);
        drain(&mut queues);
        let mut encoder = SlabEncoder::new(Flags::REPLAYED);
        let quote = sample_quote();

        // Queues hold the server's 8,192 records. A timed chunk publishes at
        // most QUEUED_PER_CHUNK / subscribers quotes (1,024 for one
        // subscriber, 6 for 10,000), so no queue ever fills; between chunks,
        // untimed, the bench thread drains every queue, as the clients'
        // writer tasks would (in the server they drain concurrently from
        // other threads, which this bench does not model).
        let chunk = (QUEUED_PER_CHUNK / subscribers).clamp(1, 1_024);
        group.bench_with_input(
            BenchmarkId::new("publish_to_queues", subscribers),
            &subscribers,
            |b, _| {
                b.iter_custom(|iters| {
                    timed_in_chunks(
                        iters,
                        chunk,
                        || {
                            let mut event = Event::Quote(quote);
                            let fanout = table.publish(&mut event, |event| encoder.encode(event));
                            for client in fanout.recipients() {
                                client.deliver(fanout.record.clone());
                            }
                        },
                        |published| {
                            assert_eq!(drain(&mut queues), published * subscribers, "no queue filled");
                        },
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
