//! Criterion benches of the per-message codec steps, in memory: a JSON feed
//! line to a `Quote` (the decoder as used: its flat fast path; and its
//! simd-json path alone, which every line took before the fast path and
//! which unusual lines still take), and the binary quote record's encode and
//! decode.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;

use common::{LINE, sample_quote};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::JsonLineDecoder;
use quotehub_proto::{Flags, QuoteRecord};

fn decode_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("feed");
    group.throughput(Throughput::Elements(1));
    let mut decoder = JsonLineDecoder::new();
    // The decoder may use the line as scratch space, so each run gets a fresh copy.
    let mut scratch = LINE.to_vec();
    group.bench_function("json_line_to_quote", |b| {
        b.iter(|| {
            scratch.clear();
            scratch.extend_from_slice(LINE);
            black_box(decoder.decode(black_box(&mut scratch)).unwrap())
        })
    });
    group.bench_function("json_line_to_quote_simd_json", |b| {
        b.iter(|| black_box(decoder.decode_with_simd_json(black_box(LINE)).unwrap()))
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

criterion_group!(benches, decode_line, codec);
criterion_main!(benches);
