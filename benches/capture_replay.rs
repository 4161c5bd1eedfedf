//! Criterion bench of capture replay: reading the hub's own capture format
//! back as events, as fast as possible (`serve --speed max` on a `.qhc`).
//! The capture is a real file (served from the page cache after the first
//! pass), built from the bundled feed's events; throughput in records.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::io::BufWriter;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quotehub_feed::{CaptureFile, CaptureWriter, RecordedFeed, open_recorded};

/// Records in the benched capture (about 18 MiB).
const RECORDS: u64 = 1 << 18;

/// Writes a capture of `RECORDS` events: the bundled feed, over and over,
/// each pass shifted later so event times keep rising.
fn write_capture() -> PathBuf {
    let feed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("feeds/us-equities-2026-11-20.jsonl");
    let mut source = open_recorded(&feed).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| source.next_event().unwrap()).collect();
    let path = std::env::temp_dir().join(format!("quotehub-bench-{}.qhc", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = CaptureWriter::new(BufWriter::new(file)).unwrap();
    let mut written = 0;
    for pass in 0u64.. {
        for event in &events {
            if written == RECORDS {
                writer.finish().unwrap();
                return path;
            }
            let mut event = *event;
            event.set_seq(written + 1);
            event.set_recv_ts(event.event_ts() + pass);
            writer.write_event(&event).unwrap();
            written += 1;
        }
    }
    unreachable!("the loop returns once RECORDS are written")
}

fn capture_replay(c: &mut Criterion) {
    let path = write_capture();
    let mut capture = CaptureFile::open(&path).unwrap();
    let mut group = c.benchmark_group("capture");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(20);
    group.bench_function("replay_262144_records", |b| {
        b.iter(|| {
            capture.rewind().unwrap();
            let mut count = 0u64;
            while let Some(event) = capture.next_event().unwrap() {
                black_box(&event);
                count += 1;
            }
            assert_eq!(count, RECORDS);
        });
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, capture_replay);
criterion_main!(benches);
