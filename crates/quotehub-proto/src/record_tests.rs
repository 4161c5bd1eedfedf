use super::*;

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
        &MessageHeader::encode(send_ts)[..],
        &QuoteRecord {
            quote: good,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
    ]
    .concat();
    let snapshot_and_trade = [
        &MessageHeader::encode(send_ts)[..],
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
        &MessageHeader::encode(send_ts)[..],
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
        &MessageHeader::encode(send_ts)[..],
        &looped.encode(),
        &QuoteRecord {
            quote: good,
            flags: Flags::SNAPSHOT.with(Flags::RESET),
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
    restamp(&mut record, Flags::SNAPSHOT, 9);
    let decoded = QuoteRecord::decode(&record).unwrap();
    assert_eq!((decoded.flags, decoded.quote.seq), (Flags::SNAPSHOT, 9));
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
