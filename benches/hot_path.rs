//! Criterion bench of the whole in-process hot path, in memory: one JSON feed
//! line is decoded, stamped with the hub's receive time, and published through
//! the server's real `Publisher` (sequenced and encoded once through the
//! table) into the queue of its one subscriber, a real `ClientHandle`, as a
//! feed thread does. The steps are benched one by one in `codec.rs`,
//! `table.rs` and `fanout.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{LINE, QUEUE_CAPACITY, sample_quote, symbols, timed_in_chunks};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::JsonLineDecoder;
use quotehub_proto::{Event, Flags, Quote, now_ns};
use quotehub_server::{ClientHandle, Hub, Policy};
use quotehub_table::Start;

fn in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    let hub = Hub::new();
    let mut publisher = hub.publisher(Flags::default(), 0);
    for symbol in symbols(1_000) {
        publisher.publish(Event::Quote(Quote {
            symbol,
            ..sample_quote()
        }));
    }
    let client = ClientHandle::unconnected(&hub, QUEUE_CAPACITY, Policy::Conflate);
    hub.table()
        .subscribe(sample_quote().symbol, &client, Start::Snapshot, |record| {
            client.deliver(&record);
        });
    client.discard_queued();
    let mut decoder = JsonLineDecoder::new();
    let mut line = Vec::with_capacity(LINE.len());

    // At most 1,024 records wait in the 8,192-record queue before it is
    // emptied, untimed, between timed chunks.
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
                    publisher.publish(event);
                },
                |published| {
                    assert_eq!(
                        client.discard_queued() as u64,
                        published,
                        "every line reached the queue"
                    )
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, in_process);
criterion_main!(benches);
