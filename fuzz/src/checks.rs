//! The checks of every fuzz target, one function per target, each taking the
//! raw fuzz input. A check panics when the code under test panics or when a
//! property below does not hold; it returns normally otherwise.
//!
//! This file is compiled twice: as the `quotehub_fuzz` library that the
//! cargo-fuzz targets in `fuzz/fuzz_targets/` call, and, through `#[path]`, as
//! a module of `tests/fuzz_regressions.rs`, which replays the committed seeds
//! and regressions through these same functions in the normal (stable) test
//! suite. It therefore uses only the project crates' public APIs, `tokio` and
//! `serde_json`, which both packages depend on.

use std::io::Cursor;
use std::sync::OnceLock;

use quotehub_feed::{IexTopsFile, JsonLineDecoder, RecordedFeed};
use quotehub_proto::{Event, Message, Price, Record, Reply, Request};
use quotehub_server::http::{HeadError, MAX_HEAD_BYTES, read_head};
use serde_json::Value;

/// `control_request`: a client's text message, as `Request::parse` gets it.
///
/// - Never panics, on any UTF-8 (invalid UTF-8 is mapped lossily first).
/// - An accepted request re-parses from its own `to_json()` to an equal request.
/// - A refused one is an `error` reply whose `to_json()` is valid JSON: an
///   object with `"type":"error"` and a string `code`.
pub fn control_request(data: &[u8]) {
    match std::str::from_utf8(data) {
        Ok(text) => check_request(text),
        Err(_) => check_request(&String::from_utf8_lossy(data)),
    }
}

fn check_request(text: &str) {
    match Request::parse(text) {
        Ok(request) => {
            let json = request.to_json();
            let again = Request::parse(&json);
            assert_eq!(
                again.as_ref(),
                Ok(&request),
                "an accepted request must re-parse from its own JSON {json}"
            );
        }
        Err(reply) => {
            assert!(
                matches!(reply, Reply::Error { .. }),
                "a refusal is an error reply: {reply:?}"
            );
            let json = reply.to_json();
            let value: Value = serde_json::from_str(&json)
                .unwrap_or_else(|err| panic!("the error reply is not valid JSON ({err}): {json}"));
            assert_eq!(value.get("type").and_then(Value::as_str), Some("error"), "{json}");
            assert!(value.get("code").is_some_and(Value::is_string), "{json}");
        }
    }
}

/// `binary_message`: a binary WebSocket message, as `Message::decode` gets it.
///
/// - Never panics, decoding or iterating the records.
/// - Each record the iterator yields is what `Record::decode` finds at the
///   same offset, its length is the record's declared length (a multiple of 8
///   inside the message), and the records cover the message exactly; after a
///   broken record the iterator yields nothing more.
/// - Round trip: a decoded quote, trade, status, bar or BBO record re-encodes
///   (`QuoteRecord::encode`, ...) to the bytes it was decoded from: all 72, 64,
///   24, 104 or 88 of them when the record has its documented length, the known
///   prefix (length field aside) when it is longer (a newer minor version).
///   Only what SPEC.md says writers zero and readers ignore is left out of the
///   comparison: the trade's two reserved words and the status record's flags.
/// - Every price's `Display` text parses back to the same price.
/// - `json::message_to_json` succeeds exactly when every record decodes, and
///   then yields valid JSON with one entry per record.
pub fn binary_message(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    assert_eq!(message.header.version, 1, "only major version 1 is accepted");
    let json = quotehub_proto::json::message_to_json(message.clone());
    let mut offset = declared_length(data);
    assert!((16..=data.len()).contains(&offset), "message header length {offset}");
    let mut records = message;
    let mut count = 0usize;
    let mut broken = false;
    for item in records.by_ref() {
        let rest = &data[offset..];
        let direct = Record::decode(rest);
        let Ok(record) = item else {
            assert!(direct.is_err(), "Record::decode accepts what the iterator refused");
            broken = true;
            break;
        };
        let Ok((again, length)) = direct else {
            panic!("Record::decode refuses a record the iterator accepted: {record:?}");
        };
        assert_eq!(again, record, "Record::decode and the iterator disagree");
        assert_eq!(length, declared_length(rest), "a record's length is its length field");
        assert!(
            length >= 8 && length.is_multiple_of(8) && length <= rest.len(),
            "record length {length}"
        );
        check_record(&record, &rest[..length]);
        offset += length;
        count += 1;
    }
    if broken {
        assert!(records.next().is_none(), "records after a broken record");
        assert!(json.is_err(), "the JSON form hides a broken record");
    } else {
        assert_eq!(offset, data.len(), "the records do not cover the message");
        let text = json.unwrap_or_else(|err| panic!("the JSON form fails ({err}) on a message that decodes"));
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("the JSON form is not JSON ({err}): {text}"));
        let records = value.get("records").and_then(Value::as_array).map(Vec::len);
        assert_eq!(records, Some(count), "{text}");
    }
}

fn declared_length(record: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([record[0], record[1]]))
}

fn check_record(record: &Record, wire: &[u8]) {
    match record {
        Record::Quote(quote) => {
            check_price(quote.quote.bid_price);
            check_price(quote.quote.ask_price);
            check_re_encoding("quote", &quote.encode(), wire, &[]);
        }
        Record::Trade(trade) => {
            check_price(trade.trade.price);
            check_re_encoding("trade", &trade.encode(), wire, &[(4, 8), (60, 64)]);
        }
        Record::Status(status) => check_re_encoding("status", &status.encode(), wire, &[(3, 4)]),
        Record::Bar(bar) => {
            let b = &bar.bar;
            for price in [b.open, b.high, b.low, b.close, b.vwap] {
                check_price(price);
            }
            check_re_encoding("bar", &bar.encode(), wire, &[]);
        }
        Record::Bbo(bbo) => {
            check_price(bbo.bbo.bid.price);
            check_price(bbo.bbo.ask.price);
            check_re_encoding("BBO", &bbo.encode(), wire, &[]);
        }
        Record::Unknown { rtype, length } => {
            assert_eq!(*rtype, wire[2], "unknown record type byte");
            assert_eq!(*length, wire.len(), "unknown record length");
            assert!(!(1..=6).contains(rtype), "a known rtype {rtype} decoded as unknown");
        }
        _ => {}
    }
}

/// `encoded` must equal the first `encoded.len()` bytes of `wire`, except the
/// length field of a longer record and the `ignored` byte ranges, `(start,
/// end)`: fields documented as written 0 and ignored by readers, which the
/// decoder drops and the encoder writes as 0.
fn check_re_encoding(what: &str, encoded: &[u8], wire: &[u8], ignored: &[(usize, usize)]) {
    assert!(
        wire.len() >= encoded.len(),
        "a {what} record shorter than its layout decoded"
    );
    let mut expected = wire[..encoded.len()].to_vec();
    if wire.len() > encoded.len() {
        expected[..2].copy_from_slice(&encoded[..2]);
    }
    for &(start, end) in ignored {
        expected[start..end].fill(0);
    }
    assert_eq!(
        encoded,
        &expected[..],
        "a {what} record does not re-encode to its bytes {wire:02x?}"
    );
}

/// A price's `Display` text parses back to the same price.
fn check_price(price: Price) {
    let text = price.to_string();
    assert_eq!(
        text.parse::<Price>().ok(),
        Some(price),
        "{price:?} does not re-parse from {text:?}"
    );
}

/// `json_feed_line`: JSON feed lines, as `JsonLineDecoder::decode` gets them.
///
/// The input is decoded whole as one line, then, if it holds newlines, piece
/// by piece, all with one decoder (as a file reader does).
///
/// - Never panics.
/// - A decoder's result does not depend on the lines it decoded before: each
///   result equals a fresh decoder's on the same bytes.
/// - The prices of a decoded quote (and trade) re-parse exactly from their
///   `Display` text: `Price::from_str(&p.to_string()) == p`.
pub fn json_feed_line(data: &[u8]) {
    let mut decoder = JsonLineDecoder::new();
    check_line(&mut decoder, data);
    if data.contains(&b'\n') {
        for line in data.split(|&b| b == b'\n') {
            check_line(&mut decoder, line);
        }
    }
}

fn check_line(decoder: &mut JsonLineDecoder, line: &[u8]) {
    json_line_paths(line);
    let decoded = decoder.decode(&mut line.to_vec());
    let fresh = JsonLineDecoder::new().decode(&mut line.to_vec());
    assert_eq!(decoded, fresh, "a reused decoder differs from a fresh one");
    match decoded {
        Ok(Event::Quote(quote)) => {
            check_price(quote.bid_price);
            check_price(quote.ask_price);
        }
        Ok(Event::Trade(trade)) => check_price(trade.price),
        _ => {}
    }
}

/// `json_line_paths`: one feed line through both paths of `JsonLineDecoder`,
/// the flat fast path (`decode_flat`) and the simd-json path
/// (`decode_with_simd_json`). Also run on every line `json_feed_line` checks.
///
/// - Whatever the fast path accepts, the simd-json path decodes to the same event.
/// - `decode` (fast path first, simd-json for the rest) gives exactly what the
///   simd-json path alone gives: the same event or the same error.
pub fn json_line_paths(line: &[u8]) {
    let reference = JsonLineDecoder::new().decode_with_simd_json(line);
    if let Some(event) = JsonLineDecoder::decode_flat(line) {
        assert_eq!(
            Ok(&event),
            reference.as_ref(),
            "the fast path accepts what simd-json reads otherwise"
        );
    }
    let decoded = JsonLineDecoder::new().decode(&mut line.to_vec());
    assert_eq!(decoded, reference, "decode differs from the simd-json path");
}

/// `iex_pcap`: a pcap file's bytes, as `IexTopsFile::from_reader` reads them.
///
/// - Never panics, opening the pcap file or pulling events with `next_event`
///   until `Ok(None)` or `Err`.
/// - Never loops forever: the number of events is bounded by the input. Every
///   event comes from its own TOPS message block (2 length bytes and at least
///   38 message bytes) inside a frame read from the pcap file, frames never
///   overlap, and a gzip stream inflates at most 1,032-fold (deflate's
///   limit), so a pcap file of `n` bytes yields at most `1032 * n / 40` events;
///   exceeding that fails the check.
/// - The end is sticky: after `Ok(None)` the next call says `Ok(None)` again.
/// - Rewinding replays exactly the same events, and `stats().events` counts them.
/// - Every event's prices re-parse from their `Display` text.
pub fn iex_pcap(data: &[u8]) {
    let Ok(mut feed) = IexTopsFile::from_reader(Cursor::new(data), "fuzz") else {
        return;
    };
    let bound = max_iex_events(data.len());
    let first = drain(&mut feed, bound);
    assert_eq!(
        feed.stats().events,
        first.0.len() as u64,
        "stats().events after one pass"
    );
    if feed.rewind().is_ok() {
        let second = drain(&mut feed, bound);
        assert_eq!(first, second, "a rewound pcap file replays other events");
        assert_eq!(
            feed.stats().events,
            2 * first.0.len() as u64,
            "stats().events after two passes"
        );
    }
}

/// The most events a pcap file of `len` bytes can hold (see [`iex_pcap`]).
pub fn max_iex_events(len: usize) -> usize {
    len.saturating_mul(1032) / 40
}

/// Pulls every event; returns them and whether the pass ended in an error.
fn drain(feed: &mut IexTopsFile<Cursor<&[u8]>>, bound: usize) -> (Vec<Event>, bool) {
    let mut events = Vec::new();
    loop {
        match feed.next_event() {
            Ok(Some(event)) => {
                match event {
                    Event::Quote(quote) => {
                        check_price(quote.bid_price);
                        check_price(quote.ask_price);
                    }
                    Event::Trade(trade) => check_price(trade.price),
                    _ => {}
                }
                events.push(event);
                assert!(events.len() <= bound, "more than {bound} events from the pcap file");
            }
            Ok(None) => {
                assert!(
                    matches!(feed.next_event(), Ok(None)),
                    "next_event goes on after saying the pcap file ended"
                );
                return (events, false);
            }
            Err(_) => return (events, true),
        }
    }
}

/// `http_head`: the bytes a client sends, as `http::read_head` reads them
/// from any `AsyncRead` (here a `&[u8]`, driven by one current-thread runtime).
///
/// - Never panics.
/// - A head read whole: the bytes after it (`rest`) are the tail of what was
///   read, the head itself ends with a newline, the path holds no `?`, header
///   names are lowercase, and there are at most 64 headers.
/// - `TooLarge` only past `MAX_HEAD_BYTES` bytes.
pub fn http_head(data: &[u8]) {
    let mut reader = data;
    let result = runtime().block_on(read_head(&mut reader));
    let consumed = &data[..data.len() - reader.len()];
    match result {
        Ok(head) => {
            assert!(consumed.ends_with(&head.rest), "rest is not the tail of the bytes read");
            let head_bytes = &consumed[..consumed.len() - head.rest.len()];
            assert!(head_bytes.ends_with(b"\n"), "a complete head ends with a newline");
            assert!(!head.path.contains('?'), "the path keeps its query: {:?}", head.path);
            assert!(head.headers.len() <= 64, "{} headers", head.headers.len());
            for (name, _) in &head.headers {
                assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "header name {name:?}");
            }
        }
        Err(HeadError::TooLarge) => assert!(consumed.len() > MAX_HEAD_BYTES, "TooLarge after {}", consumed.len()),
        Err(_) => {}
    }
}

/// One current-thread runtime for every input, built on first use.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|err| panic!("a current-thread tokio runtime: {err}"))
    })
}
