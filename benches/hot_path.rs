//! Criterion benches of the hot path: decode a feed line, encode and decode a
//! record, publish through the table to N subscribers. In-memory only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::JsonLineDecoder;
use quotehub_proto::record::QUOTE_LEN;
use quotehub_proto::{Event, Flags, Quote, QuoteRecord};
use quotehub_table::{Start, Subscriber, Table};

const LINE: &[u8] =
    br#"{"ev":"Q","sym":"AAPL","bx":12,"bp":271.22,"bs":1100,"ax":10,"ap":271.23,"as":700,"t":1795185012481269311}"#;

fn sample_quote() -> Quote {
    Quote {
        symbol: "AAPL".parse().unwrap(),
        bid_price: "271.22".parse().unwrap(),
        bid_size: 1_100,
        ask_price: "271.23".parse().unwrap(),
        ask_size: 700,
        event_ts: 1_795_185_012_481_269_311,
        recv_ts: 1_795_185_012_481_300_000,
        seq: 312,
    }
}

fn decode_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("feed");
    group.throughput(Throughput::Elements(1));
    let mut decoder = JsonLineDecoder::new();
    let mut scratch = LINE.to_vec();
    group.bench_function("json_line_to_quote", |b| {
        b.iter(|| {
            scratch.clear();
            scratch.extend_from_slice(LINE);
            black_box(decoder.decode(black_box(&mut scratch)).unwrap())
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let record = QuoteRecord {
        quote: sample_quote(),
        flags: Flags::REPLAYED,
        conflated: 0,
    };
    group.bench_function("encode_quote", |b| b.iter(|| black_box(black_box(&record).encode())));
    let bytes = record.encode();
    group.bench_function("decode_quote", |b| {
        b.iter(|| black_box(QuoteRecord::decode(black_box(&bytes)).unwrap()))
    });
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
        group.bench_with_input(
            BenchmarkId::new("publish_to_subscribers", subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    let mut event = Event::Quote(sample_quote());
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

criterion_group!(benches, decode_line, codec, publish);
criterion_main!(benches);
