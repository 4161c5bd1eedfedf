use super::*;
use crate::bar::{Bar, BarInterval, BarRecord, vwap};
use crate::bbo::{Bbo, BboRecord, BboSide};

/// The trades behind V5's 1 s bar, as (price, size): the bar's fields are
/// computed from them here, so the vector also pins the VWAP rounding.
pub(crate) const V5_TRADES: [(&str, u32); 4] = [("148.90", 100), ("148.95", 250), ("148.88", 50), ("148.91", 283)];

/// V5 and V6 carry records of minor version 1, so their header says so.
fn minor_1_header(send_ts: u64) -> [u8; MESSAGE_HEADER_LEN] {
    let mut header = MessageHeader::encode(send_ts);
    header[5] = 1;
    header
}

/// V1 to V4 were written at minor version 0 (a hub of today says 1; a
/// reader accepts either), so their header says 0.
fn minor_0_header(send_ts: u64) -> [u8; MESSAGE_HEADER_LEN] {
    let mut header = MessageHeader::encode(send_ts);
    header[5] = 0;
    header
}

/// V5's 1 s bar of AAPL, built from [`V5_TRADES`] with plain code.
fn v5_bar() -> Bar {
    let prices: Vec<Price> = V5_TRADES.iter().map(|(p, _)| p.parse().unwrap()).collect();
    let notional: i128 = V5_TRADES
        .iter()
        .zip(&prices)
        .map(|((_, size), price)| i128::from(price.units()) * i128::from(*size))
        .sum();
    let volume: u64 = V5_TRADES.iter().map(|(_, size)| u64::from(*size)).sum();
    Bar {
        symbol: "AAPL".parse().unwrap(),
        interval: BarInterval::SECOND,
        start_ts: 1_499_697_122_000_000_000,
        recv_ts: 1_499_697_123_000_002_000,
        open: prices[0],
        high: *prices.iter().max().unwrap(),
        low: *prices.iter().min().unwrap(),
        close: prices[3],
        vwap: vwap(notional, volume).unwrap(),
        volume,
        trade_count: 4,
        seq: 1,
    }
}

/// The inputs behind SPEC.md's test vectors; the test below checks the
/// document's hex against what this code encodes, so the two cannot drift.
pub(crate) fn spec_vectors() -> Vec<(&'static str, Vec<u8>)> {
    let good = Quote {
        symbol: "GOOD".parse().unwrap(),
        bid_price: "18.73".parse().unwrap(),
        bid_size: 993,
        ask_price: "18.75".parse().unwrap(),
        ask_size: 297,
        event_ts: 1_499_697_120_000_000_000,
        recv_ts: 1_499_697_120_000_005_000,
        seq: 1,
    };
    let brk = Quote {
        symbol: "BRK.B".parse().unwrap(),
        bid_price: "-0.0001".parse().unwrap(),
        bid_size: 0,
        ask_price: "165.1234".parse().unwrap(),
        ask_size: 4_294_967_295,
        event_ts: 1_499_697_121_000_000_001,
        recv_ts: 1_499_697_121_000_100_000,
        seq: 42,
    };
    let aapl = Trade {
        symbol: "AAPL".parse().unwrap(),
        price: "148.91".parse().unwrap(),
        size: 283,
        event_ts: 1_499_697_122_500_000_000,
        recv_ts: 1_499_697_122_500_004_000,
        seq: 7,
    };
    let send_ts = 1_499_697_123_000_000_000;
    let one_quote = [
        &minor_0_header(send_ts)[..],
        &QuoteRecord {
            quote: good,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    let snapshot_and_trade = [
        &minor_0_header(send_ts)[..],
        &QuoteRecord {
            quote: brk,
            flags: Flags::SNAPSHOT,
            conflated: 0,
        }
        .encode(),
        &TradeRecord {
            trade: aapl,
            flags: Flags::REPLAYED,
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    let unknown_then_quote = [
        &minor_0_header(send_ts)[..],
        &[0x08, 0x00, 0x7f, 0x00, 0xde, 0xad, 0xbe, 0xef],
        &QuoteRecord {
            quote: good,
            flags: Flags::CONFLATED,
            conflated: 3,
        }
        .encode(),
    ]
    .concat();
    let looped = StatusRecord {
        code: StatusCode::ReplayLooped,
        feed: 0,
        ts: 1_499_697_124_000_000_000,
        detail: 1,
    };
    let status_and_reset = [
        &minor_0_header(send_ts)[..],
        &looped.encode(),
        &QuoteRecord {
            quote: good,
            flags: Flags::SNAPSHOT.with(Flags::RESET),
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    let brk_minute = Bar {
        symbol: "BRK.B".parse().unwrap(),
        interval: BarInterval::MINUTE,
        start_ts: 1_499_697_060_000_000_000,
        recv_ts: 1_499_697_120_000_003_000,
        open: "165.1234".parse().unwrap(),
        high: "165.1234".parse().unwrap(),
        low: "165.1234".parse().unwrap(),
        close: "165.1234".parse().unwrap(),
        vwap: "165.1234".parse().unwrap(),
        volume: 7,
        trade_count: 1,
        seq: 12,
    };
    let two_bars = [
        &minor_1_header(send_ts)[..],
        &BarRecord {
            bar: v5_bar(),
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
        &BarRecord {
            bar: brk_minute,
            flags: Flags::SNAPSHOT.with(Flags::REPLAYED),
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    let good_bbo = Bbo {
        symbol: "GOOD".parse().unwrap(),
        bid: BboSide {
            price: "18.73".parse().unwrap(),
            size: 1_293,
            feed: 1,
            feeds: 2,
        },
        ask: BboSide {
            price: "18.75".parse().unwrap(),
            size: 297,
            feed: 2,
            feeds: 1,
        },
        event_ts: 1_499_697_120_000_000_000,
        recv_ts: 1_499_697_120_000_005_000,
        seq: 5,
    };
    let one_sided = Bbo {
        symbol: "ZVZZT".parse().unwrap(),
        bid: BboSide::default(),
        ask: BboSide {
            price: "10.01".parse().unwrap(),
            size: 4_294_967_296,
            feed: 3,
            feeds: 1,
        },
        event_ts: 1_499_697_121_000_000_000,
        recv_ts: 1_499_697_121_000_007_000,
        seq: 1,
    };
    let two_bbos = [
        &minor_1_header(send_ts)[..],
        &BboRecord {
            bbo: good_bbo,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
        &BboRecord {
            bbo: one_sided,
            flags: Flags::SNAPSHOT,
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    vec![
        ("V1 one quote", one_quote),
        ("V2 snapshot quote and replayed trade", snapshot_and_trade),
        ("V3 unknown record then conflated quote", unknown_then_quote),
        ("V4 status then reset snapshot", status_and_reset),
        ("V5 a 1 s bar and a 1 min snapshot bar", two_bars),
        ("V6 a consolidated bbo and a one-sided snapshot bbo", two_bbos),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| line.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The hex block that follows the heading `### <name>` in SPEC.md.
fn spec_block(spec: &str, name: &str) -> Option<String> {
    let after = spec.split(&format!("### {name}\n")).nth(1)?;
    let block = after.split("```hex\n").nth(1)?.split("```").next()?;
    Some(block.trim().to_owned())
}

#[test]
fn spec_vectors_match_the_encoder() {
    let spec = include_str!("../SPEC.md");
    if std::env::var_os("QUOTEHUB_PRINT_VECTORS").is_some() {
        // scripts/print_spec_vectors.sh: the blocks to paste into SPEC.md.
        for (name, bytes) in spec_vectors() {
            println!("### {name}\n\n```hex\n{}\n```\n", hex(&bytes));
        }
    }
    for (name, bytes) in spec_vectors() {
        let written =
            spec_block(spec, name).unwrap_or_else(|| panic!("SPEC.md lacks vector {name:?}; it is:\n{}", hex(&bytes)));
        assert_eq!(written, hex(&bytes), "SPEC.md vector {name:?} differs from the encoder");
    }
}

#[test]
fn spec_vectors_decode_to_their_inputs() {
    let vectors = spec_vectors();
    let records: Vec<Record> = Message::decode(&vectors[1].1).unwrap().map(Result::unwrap).collect();
    let [Record::Quote(snapshot), Record::Trade(trade)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert!(snapshot.flags.contains(Flags::SNAPSHOT));
    assert_eq!(snapshot.quote.symbol.as_str(), "BRK.B");
    assert_eq!(snapshot.quote.bid_price.to_decimal().to_string(), "-0.0001");
    assert_eq!(snapshot.quote.ask_size, u32::MAX);
    assert_eq!(trade.trade.price.to_decimal().to_string(), "148.91");
    assert!(trade.flags.contains(Flags::REPLAYED));

    let records: Vec<Record> = Message::decode(&vectors[2].1).unwrap().map(Result::unwrap).collect();
    assert_eq!(records[0], Record::Unknown { rtype: 0x7f, length: 8 });
    let Record::Quote(conflated) = records[1] else {
        panic!("{records:?}")
    };
    assert_eq!((conflated.flags, conflated.conflated), (Flags::CONFLATED, 3));
}

#[test]
fn status_records_and_reset_flags_decode() {
    let vectors = spec_vectors();
    let records: Vec<Record> = Message::decode(&vectors[3].1).unwrap().map(Result::unwrap).collect();
    let [Record::Status(status), Record::Quote(reset)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!(
        (status.code, status.feed, status.detail),
        (StatusCode::ReplayLooped, 0, 1)
    );
    assert_eq!(reset.flags.names(), ["snapshot", "reset"]);
    // Unknown status codes survive a round trip.
    let other = StatusRecord {
        code: StatusCode::Other(999),
        feed: 3,
        ts: 5,
        detail: 6,
    };
    assert_eq!(StatusRecord::decode(&other.encode()), other);
}

#[test]
fn json_form_carries_the_same_content() {
    let vectors = spec_vectors();
    let text = crate::json::message_to_json(Message::decode(&vectors[1].1).unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["send_ts"], 1_499_697_123_000_000_000_u64);
    let quote = &value["records"][0];
    assert_eq!(
        (quote["sym"].as_str(), quote["bp"].as_str(), quote["as"].as_u64()),
        (Some("BRK.B"), Some("-0.0001"), Some(4_294_967_295))
    );
    assert_eq!(quote["flags"], serde_json::json!(["snapshot"]));
    assert_eq!(
        (value["records"][1]["p"].as_str(), value["records"][1]["type"].as_str()),
        (Some("148.91"), Some("trade"))
    );
}

#[test]
fn longer_known_records_decode_their_known_prefix() {
    // A newer minor version may append fields: length grows, offsets stay.
    let quote = spec_vectors()[0].1[MESSAGE_HEADER_LEN..].to_vec();
    let mut longer = quote.clone();
    longer[0] = (QUOTE_LEN + 8) as u8;
    longer.extend_from_slice(&[0xaa; 8]);
    let message = [&MessageHeader::encode(1)[..], &longer].concat();
    let records: Vec<Record> = Message::decode(&message).unwrap().map(Result::unwrap).collect();
    let expected = QuoteRecord::decode(quote.as_slice().try_into().unwrap()).unwrap();
    assert_eq!(records, vec![Record::Quote(expected)]);
}

#[test]
fn broken_messages_are_errors_not_panics() {
    let good = &spec_vectors()[1].1;
    // TC0: every truncation of a valid message either decodes or errors.
    for cut in 0..good.len() {
        if let Ok(message) = Message::decode(&good[..cut]) {
            let results: Vec<_> = message.collect();
            if cut % 8 != 0 || cut == MESSAGE_HEADER_LEN + 4 {
                assert!(results.iter().any(Result::is_err) || results.is_empty(), "cut {cut}");
            }
        }
    }
    // TC1: wrong first record, bad version, zero length, embedded header.
    assert!(Message::decode(&good[MESSAGE_HEADER_LEN..]).is_err());
    let mut bad_version = good.clone();
    bad_version[4] = 2;
    assert_eq!(Message::decode(&bad_version).unwrap_err(), Error::UnsupportedVersion(2));
    let mut zero_length = good.clone();
    zero_length[MESSAGE_HEADER_LEN] = 0;
    zero_length[MESSAGE_HEADER_LEN + 1] = 0;
    assert!(Message::decode(&zero_length).unwrap().next().unwrap().is_err());
    let doubled = [&MessageHeader::encode(1)[..], &MessageHeader::encode(2)].concat();
    assert!(Message::decode(&doubled).unwrap().next().unwrap().is_err());
    // TC2: pseudo-random bytes behind a valid header never panic.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2_000 {
        let mut bytes = MessageHeader::encode(0).to_vec();
        for _ in 0..(state % 200) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        if let Ok(message) = Message::decode(&bytes) {
            for record in message {
                let _ = record;
            }
        }
    }
}

#[test]
fn snapshot_restamp_sets_flags_and_sequence() {
    let mut record = QuoteRecord {
        quote: Quote {
            seq: 5,
            ..decode_first_quote()
        },
        flags: Flags::default(),
        conflated: 0,
    }
    .encode();
    assert_eq!(seq_of(&record), Some(5));
    restamp(&mut record, Flags::SNAPSHOT, 9);
    let decoded = QuoteRecord::decode(&record).unwrap();
    assert_eq!((decoded.flags, decoded.quote.seq), (Flags::SNAPSHOT, 9));
    assert_eq!(seq_of(&record), Some(9), "read where restamp writes");
    assert_eq!(seq_of(&record[..31]), None, "too short to hold one");
}

fn decode_first_quote() -> Quote {
    let vectors = spec_vectors();
    match Message::decode(&vectors[0].1).unwrap().next() {
        Some(Ok(Record::Quote(record))) => record.quote,
        other => panic!("{other:?}"),
    }
}

#[test]
fn spec_documents_every_record_layout() {
    // The document, not only its vectors: each record's byte table heading
    // names the type byte and the length the code uses.
    let spec = include_str!("../SPEC.md");
    for (name, kind, length) in [
        ("Message header", rtype::MESSAGE_HEADER, MESSAGE_HEADER_LEN),
        ("Quote", rtype::QUOTE, QUOTE_LEN),
        ("Trade", rtype::TRADE, TRADE_LEN),
        ("Status", rtype::STATUS, STATUS_LEN),
        ("Bar", rtype::BAR, crate::bar::BAR_LEN),
        ("BBO", rtype::BBO, crate::bbo::BBO_LEN),
    ] {
        let heading = format!("### {name}, `rtype = 0x{kind:02x}`, {length} bytes");
        assert!(spec.contains(&heading), "SPEC.md lacks the table heading {heading:?}");
    }
    for section in [
        "## Requests",
        "## Replies",
        "## Ordering guarantees",
        "### Versioning rules",
        "## The JSON form",
    ] {
        assert!(spec.contains(section), "SPEC.md lacks {section:?}");
    }
}

#[test]
fn bar_and_bbo_vectors_decode_to_their_inputs() {
    let vectors = spec_vectors();
    let message = Message::decode(&vectors[4].1).unwrap();
    assert_eq!((message.header.version, message.header.minor), (1, 1));
    let records: Vec<Record> = message.map(Result::unwrap).collect();
    let [Record::Bar(second), Record::Bar(minute)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!(second.bar, v5_bar());
    // The VWAP of V5_TRADES is 101713.03 / 683 = 148.92098096632.., rounded to 9 decimals.
    assert_eq!(second.bar.vwap.to_string(), "148.920980966");
    assert_eq!(
        (second.bar.volume, second.bar.open.to_string()),
        (683, "148.90".to_owned())
    );
    assert_eq!(minute.bar.interval, BarInterval::MINUTE);
    assert_eq!(minute.flags.names(), ["snapshot", "replayed"]);
    assert_eq!(crate::Channels::of_wire(&vectors[4].1[16..]), crate::Channels::BARS_1S);
    assert_eq!(
        crate::Channels::of_wire(&vectors[4].1[16 + crate::bar::BAR_LEN..]),
        crate::Channels::BARS_1M
    );

    let records: Vec<Record> = Message::decode(&vectors[5].1).unwrap().map(Result::unwrap).collect();
    let [Record::Bbo(both), Record::Bbo(one_sided)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!(
        (both.bbo.bid.size, both.bbo.bid.feed, both.bbo.bid.feeds),
        (1_293, 1, 2)
    );
    assert_eq!(
        (both.bbo.ask.price.to_string(), both.bbo.ask.feed),
        ("18.75".to_owned(), 2)
    );
    assert_eq!(one_sided.bbo.bid, crate::bbo::BboSide::default());
    assert_eq!(one_sided.bbo.ask.size, 1 << 32);
    assert_eq!(crate::Channels::of_wire(&vectors[5].1[16..]), crate::Channels::BBO);
}

#[test]
fn bar_and_bbo_records_round_trip_and_restamp() {
    let vectors = spec_vectors();
    for vector in [&vectors[4].1, &vectors[5].1] {
        let mut offset = MESSAGE_HEADER_LEN;
        for record in Message::decode(vector).unwrap() {
            let encoded = match record.unwrap() {
                Record::Bar(bar) => bar.encode().to_vec(),
                Record::Bbo(bbo) => bbo.encode().to_vec(),
                other => panic!("{other:?}"),
            };
            assert_eq!(encoded, vector[offset..offset + encoded.len()]);
            offset += encoded.len();
        }
        assert_eq!(offset, vector.len());
    }
    // Extremes survive: every field at its largest.
    let bar = BarRecord {
        bar: Bar {
            seq: u64::MAX,
            start_ts: u64::MAX,
            recv_ts: u64::MAX,
            open: Price::from_units(i64::MIN),
            high: Price::from_units(i64::MAX),
            low: Price::from_units(-1),
            close: Price::from_units(0),
            vwap: Price::from_units(i64::MAX),
            volume: u64::MAX,
            trade_count: u32::MAX,
            interval: BarInterval::from_seconds(u32::MAX),
            ..v5_bar()
        },
        flags: Flags(0xff),
        conflated: u32::MAX,
    };
    assert_eq!(BarRecord::decode(&bar.encode()).unwrap(), bar);
    // The snapshot restamp writes the same offsets in every record with a sequence.
    let mut bytes = bar.encode();
    restamp(&mut bytes, Flags::SNAPSHOT, 3);
    let restamped = BarRecord::decode(&bytes).unwrap();
    assert_eq!((restamped.flags, restamped.bar.seq), (Flags::SNAPSHOT, 3));
    let Some(Ok(Record::Bbo(bbo))) = Message::decode(&vectors[5].1).unwrap().next() else {
        panic!("a bbo")
    };
    let mut bytes = bbo.encode();
    restamp(&mut bytes, Flags::SNAPSHOT.with(Flags::RESET), 77);
    let restamped = BboRecord::decode(&bytes).unwrap();
    assert_eq!(
        (restamped.flags.names(), restamped.bbo.seq),
        (vec!["snapshot", "reset"], 77)
    );
    assert_eq!(restamped.bbo.bid, bbo.bbo.bid);
}

#[test]
fn short_bar_and_bbo_records_are_refused_and_longer_ones_read() {
    let vectors = spec_vectors();
    for (vector, length) in [
        (&vectors[4].1, crate::bar::BAR_LEN),
        (&vectors[5].1, crate::bbo::BBO_LEN),
    ] {
        let record = &vector[MESSAGE_HEADER_LEN..MESSAGE_HEADER_LEN + length];
        // TC0: a length 8 short of the layout (the bytes are there) is an error.
        let mut short = record[..length - 8].to_vec();
        short[0] = (length - 8) as u8;
        assert!(
            matches!(Record::decode(&short), Err(Error::Truncated { .. })),
            "{length}"
        );
        // TC1: 8 bytes appended by a later minor version are skipped.
        let mut longer = record.to_vec();
        longer[0] = (length + 8) as u8;
        longer.extend_from_slice(&[0xaa; 8]);
        let (from_longer, used) = Record::decode(&longer).unwrap();
        assert_eq!(used, length + 8);
        assert_eq!(from_longer, Record::decode(record).unwrap().0);
        // TC2: a bad symbol is an error, not a panic.
        let mut bad = record.to_vec();
        bad[8] = b' ';
        assert!(Record::decode(&bad).is_err());
    }
}

#[test]
fn json_form_of_bars_and_bbos() {
    let vectors = spec_vectors();
    let text = crate::json::message_to_json(Message::decode(&vectors[4].1).unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["records"][0],
        serde_json::json!({
            "type": "bar", "sym": "AAPL", "seq": 1, "interval": "1s", "interval_s": 1,
            "o": "148.90", "h": "148.95", "l": "148.88", "c": "148.91", "vw": "148.920980966",
            "v": 683, "n": 4, "t": 1_499_697_122_000_000_000_u64, "recv_ts": 1_499_697_123_000_002_000_u64,
            "flags": [], "conflated": 0,
        })
    );
    assert_eq!(value["records"][1]["interval"], "1m");
    let text = crate::json::message_to_json(Message::decode(&vectors[5].1).unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["records"][0],
        serde_json::json!({
            "type": "bbo", "sym": "GOOD", "seq": 5,
            "bp": "18.73", "bs": 1293, "bx": 1, "bn": 2, "ap": "18.75", "as": 297, "ax": 2, "an": 1,
            "t": 1_499_697_120_000_000_000_u64, "recv_ts": 1_499_697_120_000_005_000_u64,
            "flags": [], "conflated": 0,
        })
    );
    assert_eq!(
        (
            value["records"][1]["bp"].as_str(),
            value["records"][1]["bn"].as_u64(),
            value["records"][1]["as"].as_u64()
        ),
        (Some("0.00"), Some(0), Some(4_294_967_296))
    );
}
