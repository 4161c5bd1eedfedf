//! Tests of the whole IEX reader on synthetic pcap files built here, byte by
//! byte: every container variant, damage of every kind, rewinding, flat memory.

use std::io::{Cursor, Write};

use quotehub_proto::{Event, Quote, Trade};
use rust_decimal::Decimal;

use super::packet::{LINKTYPE_ETHERNET, LINKTYPE_IPV4};
use super::pcap::{Format, MAX_FRAME_BYTES};
use super::transport::TOPS_1_6;
use super::*;

// ---------------------------------------------------------------- builders

const TS: i64 = 1_499_697_227_199_519_142; // 2017-07-10 14:33:47 UTC

fn quote_msg(symbol: &str, bid_size: u32, bid_price: i64, ask_price: i64, ask_size: u32, ts: i64) -> Vec<u8> {
    let mut m = vec![b'Q', 0];
    m.extend_from_slice(&ts.to_le_bytes());
    m.extend_from_slice(&padded(symbol));
    m.extend_from_slice(&bid_size.to_le_bytes());
    m.extend_from_slice(&bid_price.to_le_bytes());
    m.extend_from_slice(&ask_price.to_le_bytes());
    m.extend_from_slice(&ask_size.to_le_bytes());
    m
}

fn trade_msg(symbol: &str, size: u32, price: i64, ts: i64) -> Vec<u8> {
    let mut m = vec![b'T', 0];
    m.extend_from_slice(&ts.to_le_bytes());
    m.extend_from_slice(&padded(symbol));
    m.extend_from_slice(&size.to_le_bytes());
    m.extend_from_slice(&price.to_le_bytes());
    m.extend_from_slice(&42i64.to_le_bytes());
    m
}

/// A message of another type, of the given length, with a symbol where the
/// known layouts have one.
fn other_msg(kind: u8, len: usize, symbol: &str) -> Vec<u8> {
    let mut m = vec![kind, 0];
    m.extend_from_slice(&TS.to_le_bytes());
    m.extend_from_slice(&padded(symbol));
    m.resize(len, 0);
    m
}

fn padded(symbol: &str) -> [u8; 8] {
    let mut raw = [b' '; 8];
    raw[..symbol.len()].copy_from_slice(symbol.as_bytes());
    raw
}

/// An IEX-TP segment around `messages`.
fn segment(protocol: u16, first_seq: i64, messages: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = messages
        .iter()
        .flat_map(|m| (m.len() as u16).to_le_bytes().into_iter().chain(m.iter().copied()))
        .collect();
    let mut s = vec![1, 0];
    s.extend_from_slice(&protocol.to_le_bytes());
    s.extend_from_slice(&1u32.to_le_bytes()); // channel
    s.extend_from_slice(&1_137_508_352u32.to_le_bytes()); // session
    s.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    s.extend_from_slice(&(messages.len() as u16).to_le_bytes());
    s.extend_from_slice(&0i64.to_le_bytes());
    s.extend_from_slice(&first_seq.to_le_bytes());
    s.extend_from_slice(&TS.to_le_bytes());
    s.extend_from_slice(&payload);
    s
}

/// IPv4 + UDP around `payload`.
fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&[23, 226, 155, 132, 233, 215, 21, 4]);
    p.extend_from_slice(&10378u16.to_be_bytes());
    p.extend_from_slice(&10378u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Ethernet (optionally with one 802.1Q tag) + IPv4 + UDP around `payload`.
fn ethernet(payload: &[u8], vlan: bool) -> Vec<u8> {
    let mut f = vec![0x01, 0x00, 0x5e, 0x57, 0x15, 0x04, 0x00, 0x1e, 0x67, 0x9f, 0xc8, 0xef];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ipv4_udp(payload));
    f
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Pcap { big_endian: bool, nanosecond: bool },
    PcapNg { big_endian: bool },
}

const CONTAINERS: [Container; 6] = [
    Container::Pcap {
        big_endian: false,
        nanosecond: false,
    },
    Container::Pcap {
        big_endian: true,
        nanosecond: false,
    },
    Container::Pcap {
        big_endian: false,
        nanosecond: true,
    },
    Container::Pcap {
        big_endian: true,
        nanosecond: true,
    },
    Container::PcapNg { big_endian: false },
    Container::PcapNg { big_endian: true },
];

fn u16e(v: u16, big_endian: bool) -> [u8; 2] {
    if big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
}

fn u32e(v: u32, big_endian: bool) -> [u8; 4] {
    if big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
}

fn pcap_header(big_endian: bool, nanosecond: bool, link_type: u32) -> Vec<u8> {
    let magic = if nanosecond { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
    let mut out = u32e(magic, big_endian).to_vec();
    out.extend_from_slice(&u16e(2, big_endian));
    out.extend_from_slice(&u16e(4, big_endian));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32e(65_535, big_endian));
    out.extend_from_slice(&u32e(link_type, big_endian));
    out
}

fn pcap_record(big_endian: bool, frame: &[u8]) -> Vec<u8> {
    let mut out = u32e(1_499_697_155, big_endian).to_vec();
    out.extend_from_slice(&u32e(434_080, big_endian));
    out.extend_from_slice(&u32e(frame.len() as u32, big_endian));
    out.extend_from_slice(&u32e(frame.len() as u32, big_endian));
    out.extend_from_slice(frame);
    out
}

fn pcapng_block(big_endian: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let total = (body.len() + 12) as u32;
    let mut out = u32e(block_type, big_endian).to_vec();
    out.extend_from_slice(&u32e(total, big_endian));
    out.extend_from_slice(&body);
    out.extend_from_slice(&u32e(total, big_endian));
    out
}

fn pcapng_section(big_endian: bool) -> Vec<u8> {
    let mut body = u32e(0x1A2B_3C4D, big_endian).to_vec();
    body.extend_from_slice(&u16e(1, big_endian));
    body.extend_from_slice(&u16e(0, big_endian));
    body.extend_from_slice(&[0xFF; 8]); // section length unknown
    pcapng_block(big_endian, 0x0A0D_0D0A, &body)
}

fn pcapng_interface(big_endian: bool, link_type: u16) -> Vec<u8> {
    let mut body = u16e(link_type, big_endian).to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&u32e(0, big_endian));
    // an option (if_tsresol = 9) and the end of options, to be skipped
    body.extend_from_slice(&u16e(9, big_endian));
    body.extend_from_slice(&u16e(1, big_endian));
    body.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
    pcapng_block(big_endian, 1, &body)
}

fn pcapng_enhanced(big_endian: bool, interface: u32, frame: &[u8]) -> Vec<u8> {
    let mut body = u32e(interface, big_endian).to_vec();
    body.extend_from_slice(&u32e(349_175, big_endian));
    body.extend_from_slice(&u32e(1_234_567, big_endian));
    body.extend_from_slice(&u32e(frame.len() as u32, big_endian));
    body.extend_from_slice(&u32e(frame.len() as u32, big_endian));
    body.extend_from_slice(frame);
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    // an opts_comment option, to be skipped
    body.extend_from_slice(&u16e(1, big_endian));
    body.extend_from_slice(&u16e(3, big_endian));
    body.extend_from_slice(b"hi\0\0");
    pcapng_block(big_endian, 6, &body)
}

fn pcapng_simple(big_endian: bool, frame: &[u8]) -> Vec<u8> {
    let mut body = u32e(frame.len() as u32, big_endian).to_vec();
    body.extend_from_slice(frame);
    pcapng_block(big_endian, 3, &body)
}

/// A pcap of Ethernet frames in the given container.
fn pcap_file(container: Container, frames: &[Vec<u8>]) -> Vec<u8> {
    match container {
        Container::Pcap { big_endian, nanosecond } => {
            let mut out = pcap_header(big_endian, nanosecond, LINKTYPE_ETHERNET);
            for frame in frames {
                out.extend_from_slice(&pcap_record(big_endian, frame));
            }
            out
        }
        Container::PcapNg { big_endian } => {
            let mut out = pcapng_section(big_endian);
            out.extend_from_slice(&pcapng_interface(big_endian, LINKTYPE_ETHERNET as u16));
            for frame in frames {
                out.extend_from_slice(&pcapng_enhanced(big_endian, 0, frame));
            }
            out
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The sample's two known messages and a few others, in two packets.
fn sample_frames(vlan: bool) -> Vec<Vec<u8>> {
    vec![
        ethernet(
            &segment(
                TOPS_1_6,
                1,
                &[
                    quote_msg("GOOD", 993, 187_300, 187_500, 297, TS),
                    other_msg(b'S', 10, ""),
                    trade_msg("AAPL", 283, 1_489_100, TS + 1),
                ],
            ),
            vlan,
        ),
        ethernet(&segment(TOPS_1_6, 4, &[]), vlan), // heartbeat
        ethernet(
            &segment(TOPS_1_6, 4, &[quote_msg("ZVZZT", 0, 0, 100_001, 5, TS + 2)]),
            vlan,
        ),
    ]
}

// ----------------------------------------------------------------- drivers

fn feed(bytes: Vec<u8>) -> IexTopsFile<Cursor<Vec<u8>>> {
    IexTopsFile::from_reader(Cursor::new(bytes), "synthetic.pcap").unwrap()
}

/// Every event until the end; fails the test if the feed errs or runs on.
fn drain<R: Read + Seek + Send>(feed: &mut IexTopsFile<R>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        events.push(event);
        assert!(events.len() < 1_000_000, "the feed does not end");
    }
    events
}

/// Opens and drains whatever the bytes are, never failing on damage: the
/// number of events and rejections, or `None` if the pcap did not open.
fn drain_anything(bytes: Vec<u8>) -> Option<(usize, u64)> {
    let mut feed = IexTopsFile::from_reader(Cursor::new(bytes), "fuzz").ok()?;
    let mut events = 0;
    loop {
        match feed.next_event() {
            Ok(Some(_)) => events += 1,
            Ok(None) => break,
            Err(error) => panic!("a cursor never fails to read: {error}"),
        }
        assert!(events < 1_000_000, "the feed does not end");
    }
    // Once over, it stays over.
    assert!(matches!(feed.next_event(), Ok(None)));
    Some((events, feed.stats().rejected))
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn as_quote(event: &Event) -> Quote {
    match event {
        Event::Quote(q) => *q,
        other => panic!("expected a quote, got {other:?}"),
    }
}

fn as_trade(event: &Event) -> Trade {
    match event {
        Event::Trade(t) => *t,
        other => panic!("expected a trade, got {other:?}"),
    }
}

fn assert_sample_events(events: &[Event]) {
    assert_eq!(events.len(), 3, "{events:?}");
    let good = as_quote(&events[0]);
    assert_eq!(good.symbol.as_str(), "GOOD");
    assert_eq!((good.bid_size, good.bid_price.to_decimal()), (993, dec("18.73")));
    assert_eq!((good.ask_size, good.ask_price.to_decimal()), (297, dec("18.75")));
    assert_eq!((good.event_ts, good.recv_ts, good.seq), (TS as u64, 0, 0));
    let aapl = as_trade(&events[1]);
    assert_eq!(aapl.symbol.as_str(), "AAPL");
    assert_eq!((aapl.size, aapl.price.to_decimal()), (283, dec("148.91")));
    assert_eq!((aapl.event_ts, aapl.recv_ts, aapl.seq), (TS as u64 + 1, 0, 0));
    let zvzzt = as_quote(&events[2]);
    assert_eq!((zvzzt.bid_size, zvzzt.bid_price.to_decimal()), (0, Decimal::ZERO));
    assert_eq!((zvzzt.ask_size, zvzzt.ask_price.to_decimal()), (5, dec("10.0001")));
}

/// A small deterministic generator (xorshift64*): enough for fuzzing shapes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ------------------------------------------------------------------- tests

#[test]
fn quotes_and_trades_round_trip_with_exact_prices() {
    let mut feed = feed(pcap_file(CONTAINERS[0], &sample_frames(false)));
    let events = drain(&mut feed);
    assert_sample_events(&events);
    let counts = feed.counts();
    assert_eq!(
        (counts.messages, counts.quote_updates(), counts.trade_reports()),
        (4, 2, 1)
    );
    assert_eq!(
        (counts.of_type(b'S'), counts.segments, counts.unknown_types()),
        (1, 3, 0)
    );
    assert_eq!((feed.stats().events, feed.stats().rejected), (3, 0));
}

#[test]
fn every_container_byte_order_and_compression_reads_the_same() {
    for container in CONTAINERS {
        for vlan in [false, true] {
            for gzipped in [false, true] {
                let plain = pcap_file(container, &sample_frames(vlan));
                let bytes = if gzipped { gzip(&plain) } else { plain };
                let mut feed = feed(bytes);
                let label = format!("{container:?} vlan={vlan} gzip={gzipped}");
                assert_eq!(feed.is_gzip(), gzipped, "{label}");
                let expected = match container {
                    Container::Pcap { big_endian, nanosecond } => Format::Pcap { big_endian, nanosecond },
                    Container::PcapNg { .. } => Format::PcapNg,
                };
                assert_eq!(feed.format(), Some(expected), "{label}");
                assert_sample_events(&drain(&mut feed));
                assert_eq!(feed.stats().rejected, 0, "{label}: {:?}", feed.stats().first_rejections);
            }
        }
    }
}

#[test]
fn pcapng_interfaces_sections_and_other_blocks() {
    let frames = sample_frames(false);
    let mut bytes = pcapng_section(false);
    bytes.extend_from_slice(&pcapng_interface(false, LINKTYPE_ETHERNET as u16));
    bytes.extend_from_slice(&pcapng_interface(false, LINKTYPE_IPV4 as u16));
    // A name resolution block and a custom block, skipped by their length.
    bytes.extend_from_slice(&pcapng_block(false, 4, &[0, 0, 0, 0]));
    bytes.extend_from_slice(&pcapng_block(false, 0x0000_0BAD, &[7; 13]));
    // Interface 1 is raw IPv4: strip the Ethernet header.
    bytes.extend_from_slice(&pcapng_enhanced(false, 1, &frames[0][14..]));
    // A simple packet block uses interface 0.
    bytes.extend_from_slice(&pcapng_simple(false, &frames[1]));
    // A new big-endian section with its own interface.
    bytes.extend_from_slice(&pcapng_section(true));
    bytes.extend_from_slice(&pcapng_interface(true, LINKTYPE_ETHERNET as u16));
    bytes.extend_from_slice(&pcapng_enhanced(true, 0, &frames[2]));
    // A packet of an interface the section does not declare.
    bytes.extend_from_slice(&pcapng_enhanced(true, 1, &frames[2]));
    let mut feed = feed(bytes);
    assert_sample_events(&drain(&mut feed));
    let rejections = &feed.stats().first_rejections;
    assert_eq!(rejections.len(), 1);
    assert_eq!(
        (rejections[0].line, rejections[0].error.to_string()),
        (4, "pcapng packet of an undeclared interface".into())
    );
}

#[test]
fn other_types_and_unknown_types_are_counted_not_rejected() {
    let messages = vec![
        other_msg(b'D', 31, "AAPL"),
        other_msg(b'H', 22, "AAPL"),
        other_msg(b'O', 18, "AAPL"),
        other_msg(b'P', 19, "AAPL"),
        other_msg(b'E', 18, "AAPL"),
        other_msg(b'X', 26, "AAPL"),
        other_msg(b'B', 38, "AAPL"),
        other_msg(b'A', 80, "AAPL"),
        other_msg(b'I', 18, "AAPL"),
        other_msg(b'z', 5, ""),
        vec![0xFE],
        trade_msg("AAPL", 1, 10_000, TS),
    ];
    let frames = vec![ethernet(&segment(TOPS_1_6, 1, &messages), false)];
    let mut feed = feed(pcap_file(CONTAINERS[4], &frames));
    let events = drain(&mut feed);
    assert_eq!(events.len(), 1);
    let counts = feed.counts();
    assert_eq!(
        (counts.messages, counts.unknown_types(), counts.trade_reports()),
        (12, 2, 1)
    );
    for kind in *b"DHOPEXBAIz" {
        assert_eq!(counts.of_type(kind), 1, "{}", char::from(kind));
    }
    assert_eq!(feed.stats().rejected, 0);
}

#[test]
fn copies_from_the_redundant_feed_are_dropped_and_gaps_counted() {
    let first = ethernet(
        &segment(TOPS_1_6, 1, &[trade_msg("A", 1, 1, TS), trade_msg("B", 1, 1, TS)]),
        false,
    );
    let overlap = ethernet(
        &segment(TOPS_1_6, 2, &[trade_msg("B", 1, 1, TS), trade_msg("C", 1, 1, TS)]),
        false,
    );
    let after_gap = ethernet(&segment(TOPS_1_6, 9, &[trade_msg("D", 1, 1, TS)]), false);
    let frames = vec![first.clone(), first, overlap, after_gap];
    let mut feed = feed(pcap_file(CONTAINERS[0], &frames));
    let symbols: Vec<String> = drain(&mut feed).iter().map(|e| e.symbol().to_string()).collect();
    assert_eq!(symbols, ["A", "B", "C", "D"]);
    let counts = feed.counts();
    assert_eq!(
        (counts.duplicate_messages, counts.missing_messages, counts.messages),
        (3, 5, 4)
    );
}

#[test]
fn damaged_messages_segments_and_frames_are_counted_with_their_packet() {
    let mut arp = ethernet(b"", false);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut short_quote = quote_msg("AAPL", 1, 1, 1, 1, TS);
    short_quote.truncate(30);
    let mut not_udp = ethernet(b"xyz", false);
    not_udp[14 + 9] = 6; // TCP
    let frames = vec![
        arp,                                                                              // 1: other traffic
        ethernet(&segment(0x8004, 1, &[trade_msg("A", 1, 1, TS)]), false),                // 2: DEEP
        ethernet(&segment(TOPS_1_6, 1, &[short_quote, trade_msg("A", 1, 1, TS)]), false), // 3
        ethernet(
            &segment(TOPS_1_6, 3, &[quote_msg("AAPL", 1, i64::MAX, 1, 1, TS)]),
            false,
        ), // 4
        ethernet(&segment(TOPS_1_6, 4, &[trade_msg("a b", 1, 1, TS)]), false),            // 5
        ethernet(b"short", false),                                                        // 6
        not_udp,                                                                          // 7
        ethernet(&segment(TOPS_1_6, 5, &[vec![]]), false),                                // 8
        ethernet(&segment(TOPS_1_6, 6, &[trade_msg("B", 2, 20_000, TS)]), false),         // 9
    ];
    let mut feed = feed(pcap_file(CONTAINERS[0], &frames));
    let symbols: Vec<String> = drain(&mut feed).iter().map(|e| e.symbol().to_string()).collect();
    assert_eq!(symbols, ["A", "B"]);
    let rejected: Vec<(u64, String)> = feed
        .stats()
        .first_rejections
        .iter()
        .map(|r| (r.line, r.error.to_string()))
        .collect();
    let lines: Vec<u64> = rejected.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 8], "{rejected:#?}");
    assert!(
        rejected[1].1.contains("quote update shorter than 42 bytes"),
        "{rejected:?}"
    );
    assert!(rejected[2].1.contains("bid_price"), "{rejected:?}");
    assert!(rejected[3].1.contains("symbol"), "{rejected:?}");
    assert_eq!(feed.counts().other_frames, 2);
    assert_eq!(feed.stats().rejected, 6);
}

#[test]
fn an_oversized_record_is_skipped_without_allocating_it() {
    let frames = sample_frames(false);
    let mut bytes = pcap_header(false, false, LINKTYPE_ETHERNET);
    bytes.extend_from_slice(&pcap_record(false, &frames[0]));
    // 300 KiB really there: skipped, and the next packet is read.
    bytes.extend_from_slice(&pcap_record(false, &vec![0u8; 300 * 1024]));
    bytes.extend_from_slice(&pcap_record(false, &frames[2]));
    // 4 GiB announced at the end: skipped until the data runs out.
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    bytes.extend_from_slice(&[0; 100]);
    let mut feed = feed(bytes);
    assert_eq!(drain(&mut feed).len(), 3);
    let errors: Vec<(u64, String)> = feed
        .stats()
        .first_rejections
        .iter()
        .map(|r| (r.line, r.error.to_string()))
        .collect();
    assert_eq!(
        errors,
        [
            (2, "captured length over 256 KiB".to_owned()),
            (4, "captured length over 256 KiB".to_owned())
        ]
    );
    assert!(feed.frame_capacity() < 4096, "{}", feed.frame_capacity());
}

#[test]
fn every_truncation_ends_cleanly_with_at_most_one_rejection() {
    for container in [CONTAINERS[0], CONTAINERS[3], CONTAINERS[4], CONTAINERS[5]] {
        let full = pcap_file(container, &sample_frames(true));
        let boundaries = record_boundaries(container, &full);
        for cut in 0..=full.len() {
            let Some((events, rejected)) = drain_anything(full[..cut].to_vec()) else {
                // Only a cut inside the file header fails to open.
                assert!(cut < boundaries[0], "{container:?} cut at {cut} did not open");
                continue;
            };
            assert!(events <= 3);
            let expected = u64::from(!boundaries.contains(&cut));
            assert_eq!(rejected, expected, "{container:?} cut at {cut}");
        }
        // Compressed, a cut stream (even one cut in its checksum) ends with
        // one rejection too.
        let compressed = gzip(&full);
        for cut in 2..compressed.len() {
            if let Some((_, rejected)) = drain_anything(compressed[..cut].to_vec()) {
                assert_eq!(rejected, 1, "{container:?} gzip cut at {cut}");
            }
        }
    }
}

#[test]
fn a_corrupt_gzip_stream_ends_with_a_counted_rejection() {
    let compressed = gzip(&pcap_file(CONTAINERS[0], &sample_frames(false)));
    let mut rng = XorShift(7);
    let mut corrupt = 0;
    for _ in 0..200 {
        let mut bytes = compressed.clone();
        // Past the 10-byte gzip header: the deflate data or the trailer.
        let at = 10 + rng.below(bytes.len() - 10);
        bytes[at] ^= 1 << rng.below(8);
        let Ok(mut feed) = IexTopsFile::from_reader(Cursor::new(bytes), "corrupt.gz") else {
            continue;
        };
        while let Ok(Some(_)) = feed.next_event() {}
        let errors: Vec<String> = feed
            .stats()
            .first_rejections
            .iter()
            .map(|r| r.error.to_string())
            .collect();
        corrupt += usize::from(errors.iter().any(|e| e == "corrupt gzip stream"));
        assert!(matches!(feed.next_event(), Ok(None)));
    }
    assert!(corrupt > 0, "no flip was detected as corruption");
}

/// Offsets where a record (or the file header) ends.
fn record_boundaries(container: Container, bytes: &[u8]) -> Vec<usize> {
    let big_endian = matches!(
        container,
        Container::Pcap { big_endian: true, .. } | Container::PcapNg { big_endian: true }
    );
    let read_u32 = |at: usize| {
        let raw: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    };
    // The pcapng header is the section block; the interface block follows.
    let (mut at, mut ends) = match container {
        Container::Pcap { .. } => (24, vec![24]),
        Container::PcapNg { .. } => {
            let section = read_u32(4) as usize;
            let header = section + read_u32(section + 4) as usize;
            (header, vec![section, header])
        }
    };
    while at < bytes.len() {
        at += match container {
            Container::Pcap { .. } => 16 + read_u32(at + 8) as usize,
            Container::PcapNg { .. } => read_u32(at + 4) as usize,
        };
        ends.push(at);
    }
    ends
}

#[test]
fn random_bytes_behind_valid_headers_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let good = pcap_file(CONTAINERS[0], &sample_frames(false));
    for round in 0..3000 {
        let len = rng.below(600);
        let noise = rng.bytes(len);
        let bytes = match round % 6 {
            // Random records behind a pcap header.
            0 => [pcap_header(false, false, LINKTYPE_ETHERNET), noise].concat(),
            // Random blocks behind a pcapng header.
            1 => [pcapng_section(round % 12 == 1), noise].concat(),
            // A well-formed record holding a random frame.
            2 => [pcap_header(false, false, LINKTYPE_ETHERNET), pcap_record(false, &noise)].concat(),
            // A well-formed UDP datagram holding a random segment.
            3 => pcap_file(CONTAINERS[4], &[ethernet(&noise, false)]),
            // A valid segment header over random message blocks.
            4 => {
                let mut segment = segment(TOPS_1_6, 1, &[]);
                segment[12..14].copy_from_slice(&(noise.len() as u16).to_le_bytes());
                segment[14..16].copy_from_slice(&(rng.below(40) as u16).to_le_bytes());
                segment.extend_from_slice(&noise);
                pcap_file(CONTAINERS[1], &[ethernet(&segment, true)])
            }
            // A valid pcap with a few bytes flipped.
            _ => {
                let mut bytes = good.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = 24 + rng.below(bytes.len() - 24);
                    bytes[at] ^= 1 << rng.below(8);
                }
                bytes
            }
        };
        if let Some((events, _)) = drain_anything(bytes) {
            assert!(events <= 64, "round {round}");
        }
    }
}

#[test]
fn rewinding_reads_the_capture_again_and_counts_the_pass() {
    for gzipped in [false, true] {
        let plain = pcap_file(CONTAINERS[4], &sample_frames(false));
        let mut bytes = b"ignored prefix".to_vec();
        bytes.extend_from_slice(&if gzipped { gzip(&plain) } else { plain });
        let mut cursor = Cursor::new(bytes);
        cursor.set_position(14);
        let mut feed = IexTopsFile::from_reader(cursor, "rewound").unwrap();
        let first = drain(&mut feed);
        feed.rewind().unwrap();
        let second = drain(&mut feed);
        assert_eq!(first, second);
        assert_sample_events(&second);
        assert_eq!((feed.stats().passes, feed.stats().events), (1, 6));
    }
}

#[test]
fn the_frame_buffer_is_reused_across_many_packets() {
    // 20,000 packets of growing then shrinking sizes, one pcap in memory.
    let mut bytes = pcap_header(false, false, LINKTYPE_ETHERNET);
    let mut largest = 0;
    for i in 0..20_000u32 {
        let count = 1 + (i % 30) as usize;
        let messages = vec![quote_msg("SPY", i, 2_430_000, 2_430_100, 100, TS); count];
        let frame = ethernet(&segment(TOPS_1_6, 1 + i64::from(i) * 30, &messages), false);
        largest = largest.max(frame.len());
        bytes.extend_from_slice(&pcap_record(false, &frame));
    }
    let mut feed = feed(bytes);
    let mut events = 0u64;
    let mut capacity = 0;
    while feed.next_event().unwrap().is_some() {
        events += 1;
        capacity = capacity.max(feed.frame_capacity());
    }
    let expected: u64 = (0..20_000u64).map(|i| 1 + i % 30).sum();
    assert_eq!(events, expected);
    assert!(
        capacity >= largest && capacity <= 2 * largest,
        "capacity {capacity}, largest frame {largest}"
    );
    assert!(capacity < MAX_FRAME_BYTES);
}

#[test]
fn files_are_told_apart_by_magic_not_name() {
    let dir = std::env::temp_dir().join(format!("quotehub-iex-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = pcap_file(CONTAINERS[0], &sample_frames(false));
    let cases: [(&str, Vec<u8>); 4] = [
        ("pcap.jsonl", pcap.clone()),
        ("pcap.pcap", gzip(&pcap_file(CONTAINERS[5], &sample_frames(true)))),
        (
            "feed.pcapng.gz",
            br#"{"ev":"T","sym":"A","p":1.5,"s":1,"t":1700000000000}"#.to_vec(),
        ),
        ("feed.gz", gzip(b"\n{\"ev\":\"T\"}\n")),
    ];
    for (name, bytes) in &cases {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    for name in ["pcap.jsonl", "pcap.pcap"] {
        let mut feed = crate::open_recorded(&dir.join(name)).unwrap();
        let mut events = Vec::new();
        while let Some(event) = feed.next_event().unwrap() {
            events.push(event);
        }
        assert_sample_events(&events);
    }
    let mut json = crate::open_recorded(&dir.join("feed.pcapng.gz")).unwrap();
    assert!(json.next_event().unwrap().is_some());
    let Err(error) = crate::open_recorded(&dir.join("feed.gz")) else {
        panic!("gzipped JSON lines are not read")
    };
    assert!(error.to_string().contains("gzip"), "{error}");
    std::fs::write(dir.join("garbage"), b"\x00\x01\x02\x03garbage").unwrap();
    let Err(error) = crate::open_recorded(&dir.join("garbage")) else {
        panic!("garbage is not a feed")
    };
    assert!(error.to_string().contains("pcap"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Decodes a pcap of about 1 GiB streamed from disk and checks that the
/// process's peak memory grows by no more than a few MiB while doing so.
/// Ignored by default (it writes 1 GiB to the temp dir); run with
/// `cargo test -p quotehub-feed --release -- --ignored flat_memory`.
#[test]
#[ignore = "writes and reads a 1 GiB pcap"]
fn flat_memory_on_a_gigabyte_capture() {
    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
    let dir = std::env::temp_dir().join(format!("quotehub-iex-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.pcap");
    let messages: Vec<Vec<u8>> = (0..20)
        .map(|i| quote_msg("SPY", i, 2_430_000 + i64::from(i), 2_430_100, 100, TS))
        .collect();
    let mut packets = 0u64;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all(&pcap_header(false, false, LINKTYPE_ETHERNET)).unwrap();
        let mut written = 0u64;
        while written < 1 << 30 {
            let frame = ethernet(&segment(TOPS_1_6, 1 + packets as i64 * 20, &messages), false);
            let record = pcap_record(false, &frame);
            out.write_all(&record).unwrap();
            written += record.len() as u64;
            packets += 1;
        }
        out.flush().unwrap();
    }
    let before = peak_rss_kib();
    let mut feed = IexTopsFile::open(&path).unwrap();
    let mut events = 0u64;
    while feed.next_event().unwrap().is_some() {
        events += 1;
    }
    let grown = peak_rss_kib().saturating_sub(before);
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{events} events from {packets} packets; peak memory grew by {grown} KiB");
    assert_eq!(events, packets * 20);
    assert_eq!(feed.stats().rejected, 0);
    assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
}
