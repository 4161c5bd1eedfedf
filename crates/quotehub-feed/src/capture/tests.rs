use std::io::BufWriter;
use std::path::PathBuf;

use quotehub_proto::{Event, Price, Quote, Symbol, Trade};

use super::layout::{self, BLOCK_RECORDS, HEADER_LEN};
use super::{CaptureFile, CaptureWriter};
use crate::source::RecordedFeed;

/// A scratch directory of this test process, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("quotehub-capture-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Quotes and trades over a few symbols, every field distinct, event times
/// rising 1 µs apart from `start_ts`.
fn events(count: u64, start_ts: u64) -> Vec<Event> {
    let symbols = ["AAPL", "BRK.B", "AA-", "ZVZZT", "ABCDEFGHIJK"];
    (0..count)
        .map(|i| {
            let symbol: Symbol = symbols[(i % 5) as usize].parse().unwrap();
            let event_ts = start_ts + i * 1_000;
            if i % 3 == 2 {
                Event::Trade(Trade {
                    symbol,
                    price: Price::from_units(1_000_000_000 + i as i64),
                    size: i as u32,
                    event_ts,
                    recv_ts: event_ts + 7,
                    seq: i / 5 + 1,
                })
            } else {
                Event::Quote(Quote {
                    symbol,
                    bid_price: Price::from_units(18_730_000_000 + i as i64),
                    bid_size: i as u32,
                    ask_price: Price::from_units(-(i as i64)),
                    ask_size: u32::MAX - i as u32,
                    event_ts,
                    recv_ts: event_ts + 9,
                    seq: i / 5 + 1,
                })
            }
        })
        .collect()
}

fn write(path: &PathBuf, events: &[Event]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = CaptureWriter::new(BufWriter::new(file)).unwrap();
    for event in events {
        writer.write_event(event).unwrap();
    }
    writer.finish().unwrap();
}

fn drain(feed: &mut dyn RecordedFeed) -> Vec<Event> {
    std::iter::from_fn(|| feed.next_event().unwrap()).collect()
}

#[test]
fn replay_gives_back_every_field_of_every_event() {
    let scratch = Scratch::new("roundtrip");
    let path = scratch.file("a.qhc");
    let written = events(3 * BLOCK_RECORDS + 17, 1_700_000_000_000_000_000);
    write(&path, &written);
    let mut capture = CaptureFile::open(&path).unwrap();
    assert_eq!(capture.index().len(), 4);
    assert_eq!(drain(&mut capture), written);
    assert_eq!(capture.stats().rejected, 0);
    // A second pass gives the same again.
    capture.rewind().unwrap();
    assert_eq!(drain(&mut capture), written);
    // The format detector picks captures by their magic.
    let mut detected = crate::open_recorded(&path).unwrap();
    assert_eq!(drain(detected.as_mut()).len(), written.len());
}

#[test]
fn the_same_events_give_the_same_bytes() {
    let scratch = Scratch::new("deterministic");
    let written = events(5_000, 1_700_000_000_000_000_000);
    let (a, b) = (scratch.file("a.qhc"), scratch.file("b.qhc"));
    write(&a, &written);
    // Written again from its own replay: byte for byte the same file.
    let replayed = drain(&mut CaptureFile::open(&a).unwrap());
    write(&b, &replayed);
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    assert_eq!(bytes[..HEADER_LEN], layout::header());
    // The body is the events' v1 wire records, back to back.
    let quote_record = match written[0] {
        Event::Quote(quote) => quotehub_proto::QuoteRecord {
            quote,
            flags: quotehub_proto::Flags::default(),
            conflated: 0,
        }
        .encode(),
        _ => unreachable!("the first test event is a quote"),
    };
    assert_eq!(bytes[HEADER_LEN..HEADER_LEN + 72], quote_record);
}

#[test]
fn seek_finds_the_first_event_at_or_after_a_time() {
    let scratch = Scratch::new("seek");
    let path = scratch.file("a.qhc");
    let start = 1_700_000_000_000_000_000;
    let written = events(4 * BLOCK_RECORDS, start);
    write(&path, &written);
    let mut capture = CaptureFile::open(&path).unwrap();
    for wanted in [
        0,
        1,
        BLOCK_RECORDS - 1,
        BLOCK_RECORDS,
        2 * BLOCK_RECORDS + 5,
        4 * BLOCK_RECORDS - 1,
    ] {
        // Between two events' times: lands on the later one.
        capture.seek_time(start + wanted * 1_000 - 1).unwrap();
        let rest = drain(&mut capture);
        assert_eq!(rest.first(), written.get(wanted as usize), "seek to event {wanted}");
        assert_eq!(rest.len() as u64, 4 * BLOCK_RECORDS - wanted);
    }
    capture.seek_time(u64::MAX).unwrap();
    assert_eq!(capture.next_event().unwrap(), None);
}

#[test]
fn seek_respects_file_order_when_times_are_not_sorted() {
    let scratch = Scratch::new("unsorted");
    let path = scratch.file("a.qhc");
    // Two feeds interleaved as they arrived: one block late, one early.
    let mut written = events(BLOCK_RECORDS, 2_000_000_000_000_000_000);
    written.extend(events(BLOCK_RECORDS, 1_000_000_000_000_000_000));
    write(&path, &written);
    let mut capture = CaptureFile::open(&path).unwrap();
    capture.seek_time(1_000_000_000_000_001_000).unwrap();
    // The first block's events are all later than the time: it starts there.
    assert_eq!(drain(&mut capture), written);
}

#[test]
fn a_capture_cut_short_is_read_up_to_the_cut() {
    let scratch = Scratch::new("truncated");
    let path = scratch.file("a.qhc");
    let written = events(100, 1_700_000_000_000_000_000);
    write(&path, &written);
    let bytes = std::fs::read(&path).unwrap();
    // No index, and the last record only half written (a recorder killed).
    let body_end = bytes.len() - 16 - 16 - 32;
    let cut = &bytes[..body_end - 20];
    std::fs::write(&path, cut).unwrap();
    let mut capture = CaptureFile::open(&path).unwrap();
    assert!(capture.index().is_empty());
    assert_eq!(drain(&mut capture), written[..99]);
    assert_eq!(capture.stats().rejected, 1);
    assert_eq!(capture.stats().first_rejections[0].line, 100);
    // Seeking without an index scans.
    capture.seek_time(1_700_000_000_000_050_000).unwrap();
    assert_eq!(drain(&mut capture), written[50..99]);
}

#[test]
fn damaged_and_unknown_records_are_counted_or_skipped_not_fatal() {
    let scratch = Scratch::new("damaged");
    let path = scratch.file("a.qhc");
    let written = events(10, 1_700_000_000_000_000_000);
    write(&path, &written);
    let mut bytes = std::fs::read(&path).unwrap();
    // Record 2 (a quote, 72 bytes): a symbol byte that no symbol holds.
    bytes[HEADER_LEN + 72 + 8] = b' ';
    // Record 3 becomes a record type from a later minor version: skipped.
    bytes[HEADER_LEN + 2 * 72 + 2] = 0x7F;
    std::fs::write(&path, &bytes).unwrap();
    let mut capture = CaptureFile::open(&path).unwrap();
    let read = drain(&mut capture);
    let mut expected = written.clone();
    expected.drain(1..3);
    assert_eq!(read, expected);
    assert_eq!(capture.stats().rejected, 1);
    assert_eq!(capture.stats().first_rejections[0].line, 2);

    // A record length that cannot be right ends the replay, counted: record
    // 5 starts after quotes 1, 2, 4 and trade 3.
    bytes[HEADER_LEN + 3 * 72 + 64] = 3;
    std::fs::write(&path, &bytes).unwrap();
    let mut capture = CaptureFile::open(&path).unwrap();
    assert_eq!(drain(&mut capture).len(), 2);
    assert_eq!(capture.stats().rejected, 2);
}

#[test]
fn files_that_are_not_captures_are_refused_with_the_reason() {
    let scratch = Scratch::new("refused");
    let path = scratch.file("a.qhc");
    std::fs::write(&path, b"\x89QHCAP\r\n").unwrap();
    let error = CaptureFile::open(&path).unwrap_err().to_string();
    assert!(error.contains("shorter than a capture header"), "{error}");
    let mut header = layout::header();
    header[8] = 2;
    std::fs::write(&path, header).unwrap();
    let error = CaptureFile::open(&path).unwrap_err().to_string();
    assert!(error.contains("major version"), "{error}");
}
