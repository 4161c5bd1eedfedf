//! Criterion bench of the IEX TOPS decoder: a synthetic pcap file built in
//! memory (pcap, Ethernet/IPv4/UDP, IEX-TP, TOPS 1.6) read through
//! `IexTopsFile` from a `Cursor`, so no disk I/O; throughput in TOPS
//! messages. When the shared real sample is present, it is benched too,
//! from memory, gzip decompression included.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::io::Cursor;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::{IexTopsFile, RecordedFeed};

const TS: i64 = 1_499_697_227_199_519_142;
const SYMBOLS: [&str; 8] = ["AAPL", "GOOD", "SPY", "BRK.B", "ZVZZT", "MSFT", "QQQ", "IWM"];

fn header(kind: u8, symbol: &str, ts: i64) -> Vec<u8> {
    let mut m = vec![kind, 0];
    m.extend_from_slice(&ts.to_le_bytes());
    let mut padded = [b' '; 8];
    padded[..symbol.len()].copy_from_slice(symbol.as_bytes());
    m.extend_from_slice(&padded);
    m
}

fn quote(symbol: &str, i: u32, ts: i64) -> Vec<u8> {
    let mut m = header(b'Q', symbol, ts);
    let bid = 1_872_300 + i64::from(i % 100);
    m.extend_from_slice(&(100 * (i % 50)).to_le_bytes());
    m.extend_from_slice(&bid.to_le_bytes());
    m.extend_from_slice(&(bid + 100).to_le_bytes());
    m.extend_from_slice(&300u32.to_le_bytes());
    m
}

fn trade(symbol: &str, i: u32, ts: i64) -> Vec<u8> {
    let mut m = header(b'T', symbol, ts);
    m.extend_from_slice(&(1 + i % 500).to_le_bytes());
    m.extend_from_slice(&(1_489_100 + i64::from(i % 100)).to_le_bytes());
    m.extend_from_slice(&i64::from(i).to_le_bytes());
    m
}

/// Ethernet / IPv4 / UDP / IEX-TP frame around `messages`.
fn frame(first_seq: i64, messages: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = messages
        .iter()
        .flat_map(|m| (m.len() as u16).to_le_bytes().into_iter().chain(m.iter().copied()))
        .collect();
    let mut segment = vec![1, 0, 0x03, 0x80];
    segment.extend_from_slice(&1u32.to_le_bytes());
    segment.extend_from_slice(&1_137_508_352u32.to_le_bytes());
    segment.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    segment.extend_from_slice(&(messages.len() as u16).to_le_bytes());
    segment.extend_from_slice(&0i64.to_le_bytes());
    segment.extend_from_slice(&first_seq.to_le_bytes());
    segment.extend_from_slice(&TS.to_le_bytes());
    segment.extend_from_slice(&payload);

    let mut f = vec![
        0x01, 0x00, 0x5e, 0x57, 0x15, 0x04, 0x00, 0x1e, 0x67, 0x9f, 0xc8, 0xef, 0x08, 0x00,
    ];
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&((20 + 8 + segment.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 23, 226, 155, 132, 233, 215, 21, 4]);
    f.extend_from_slice(&[0x28, 0x8a, 0x28, 0x8a]);
    f.extend_from_slice(&((8 + segment.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&segment);
    f
}

/// A classic pcap of `packets` packets of 1 to 12 messages: mostly quotes,
/// some trades, an occasional trading-status message. Returns the bytes and
/// the number of messages.
fn synthetic_pcap(packets: u32) -> (Vec<u8>, u64) {
    let mut out = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    let mut seq = 1i64;
    let mut messages = 0u64;
    for p in 0..packets {
        let count = 1 + p % 12;
        let batch: Vec<Vec<u8>> = (0..count)
            .map(|k| {
                let i = p * 12 + k;
                let symbol = SYMBOLS[(i % 8) as usize];
                let ts = TS + i64::from(i);
                match i % 10 {
                    0..=6 => quote(symbol, i, ts),
                    7 | 8 => trade(symbol, i, ts),
                    _ => {
                        let mut status = header(b'H', symbol, ts);
                        status.extend_from_slice(b"    ");
                        status
                    }
                }
            })
            .collect();
        let f = frame(seq, &batch);
        seq += i64::from(count);
        messages += u64::from(count);
        out.extend_from_slice(&1_499_697_155u32.to_le_bytes());
        out.extend_from_slice(&434_080u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    (out, messages)
}

/// Opens the pcap file and drains every event; returns the messages read.
fn decode_all(bytes: &[u8]) -> u64 {
    let mut feed = IexTopsFile::from_reader(Cursor::new(bytes), "bench").unwrap();
    while let Some(event) = feed.next_event().unwrap() {
        black_box(event);
    }
    assert_eq!(feed.stats().rejected, 0);
    feed.counts().messages
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("iex");
    let (bytes, messages) = synthetic_pcap(16_000);
    assert_eq!(decode_all(&bytes), messages);
    group.throughput(Throughput::Elements(messages));
    group.bench_function("decode_synthetic_pcap", |b| b.iter(|| decode_all(black_box(&bytes))));

    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/iex/TOPS16.pcapng.gz");
    if let Ok(compressed) = std::fs::read(&sample) {
        let messages = decode_all(&compressed);
        group.throughput(Throughput::Elements(messages));
        group.bench_function("decode_sample_gzip", |b| b.iter(|| decode_all(black_box(&compressed))));
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
