//! Criterion benches of the records the hub derives from its feeds (issue
//! 19), in memory: one trade into its symbol's bars builder (both intervals),
//! and one quote into its symbol's BBO consolidator across three feeds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_engine::{BarBuilder, Consolidator};
use quotehub_proto::{Price, Quote, Symbol, Trade};

/// 2026-11-20T14:30:00Z, ns since the epoch.
const T0: u64 = 1_795_185_000_000_000_000;

fn price(cents: i64) -> Price {
    Price::from_units(cents * 10_000_000)
}

fn bars(c: &mut Criterion) {
    let mut group = c.benchmark_group("derived");
    group.throughput(Throughput::Elements(1));
    let symbol = Symbol::from_bytes(b"AAPL").unwrap();
    let mut builder = BarBuilder::new(symbol);
    // Trades 10 ms apart, as in a busy symbol: a 1 s bar closes every 100th
    // trade, a 1 min bar every 6,000th; prices and sizes vary so that high,
    // low and the notional move.
    let (mut event_ts, mut n) = (T0, 0u64);
    group.bench_function("bar_trade", |b| {
        b.iter(|| {
            event_ts += 10_000_000;
            n += 1;
            let trade = Trade {
                symbol,
                price: price(27_000 + (n % 17) as i64),
                size: 100 + (n % 7) as u32 * 10,
                event_ts,
                recv_ts: event_ts,
                seq: n,
            };
            black_box(builder.trade(black_box(&trade), event_ts))
        })
    });
    group.finish();
}

fn bbo(c: &mut Criterion) {
    let mut group = c.benchmark_group("derived");
    group.throughput(Throughput::Elements(1));
    let symbol = Symbol::from_bytes(b"AAPL").unwrap();
    let mut consolidator = Consolidator::new(symbol);
    // 3 feeds quoting in turn around the same prices, each moving by a cent
    // now and then, with sizes that move: 5 quotes in 6 change the
    // consolidated book (printed below), so most iterations build a record.
    let quotes: Vec<(u16, Quote)> = (0..96u64)
        .map(|n| {
            let feed = (n % 3) as u16 + 1;
            let step = ((n / 3) % 4) as i64;
            let bid = price(27_000 - step % 2 - i64::from(feed == 2));
            (
                feed,
                Quote {
                    symbol,
                    bid_price: bid,
                    bid_size: 100 * (1 + (n % 5) as u32),
                    ask_price: price(27_001 + step / 2),
                    ask_size: 100,
                    event_ts: T0 + n,
                    recv_ts: T0 + n,
                    seq: n,
                },
            )
        })
        .collect();
    let changes = quotes
        .iter()
        .cycle()
        .take(quotes.len() * 2)
        .filter(|(feed, quote)| consolidator.quote(*feed, quote).is_some())
        .count();
    eprintln!(
        "derived/bbo_quote: {changes} of {} quotes change the book",
        quotes.len() * 2
    );
    let mut i = 0;
    group.bench_function("bbo_quote", |b| {
        b.iter(|| {
            let (feed, quote) = &quotes[i % quotes.len()];
            i += 1;
            black_box(consolidator.quote(*feed, black_box(quote)))
        })
    });
    group.finish();
}

criterion_group!(benches, bars, bbo);
criterion_main!(benches);
