//! Criterion bench of the whole in-process hot path, in memory: one JSON feed
//! line is decoded, stamped with the hub's receive time, sequenced and encoded
//! once through the table, and queued (`try_send`) for its one subscriber, as
//! a feed thread and the server's publisher do. The steps are benched one by
//! one in `codec.rs`, `table.rs` and `fanout.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    LINE, QueueClient, SlabEncoder, drain, populated_table, sample_quote, subscribe_clients, symbols, timed_in_chunks,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::JsonLineDecoder;
use quotehub_proto::{Flags, now_ns};
use quotehub_table::Table;

fn in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    let table: Table<QueueClient> = populated_table(&symbols(1_000));
    let mut queues = subscribe_clients(&table, sample_quote().symbol, 0, 1);
    drain(&mut queues);
    let mut decoder = JsonLineDecoder::new();
    let mut encoder = SlabEncoder::new(Flags::default());
    let mut line = Vec::with_capacity(LINE.len());

    // At most 1,024 records wait in the 8,192-record queue before it is
    // drained, untimed, between timed chunks.
    group.bench_function("json_line_to_queued_record", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                1_024,
                || {
                    line.clear();
                    line.extend_from_slice(LINE);
                    let mut event = decoder.decode(&mut line).unwrap();
                    event.set_recv_ts(now_ns());
                    let fanout = table.publish(&mut event, |event| encoder.encode(event));
                    for client in fanout.recipients() {
                        client.deliver(fanout.record.clone());
                    }
                },
                |published| assert_eq!(drain(&mut queues), published, "every line reached the queue"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, in_process);
criterion_main!(benches);
