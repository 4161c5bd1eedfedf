//! The JSON form of records: what the `quotehub.v1.json` sub-protocol sends
//! and what `quotehub subscribe --json` prints. The same content as the binary
//! records; prices are decimal strings, never floats.

use serde_json::{Value, json};

use crate::record::{Message, Record};

/// One record as a JSON object.
pub fn record_to_json(record: &Record) -> Value {
    match record {
        Record::Quote(r) => {
            let q = &r.quote;
            json!({
                "type": "quote", "sym": q.symbol, "seq": q.seq,
                "bp": q.bid_price, "bs": q.bid_size, "ap": q.ask_price, "as": q.ask_size,
                "t": q.event_ts, "recv_ts": q.recv_ts,
                "flags": r.flags.names(), "conflated": r.conflated,
            })
        }
        Record::Trade(r) => {
            let t = &r.trade;
            json!({
                "type": "trade", "sym": t.symbol, "seq": t.seq, "p": t.price, "s": t.size,
                "t": t.event_ts, "recv_ts": t.recv_ts, "flags": r.flags.names(), "conflated": r.conflated,
            })
        }
        Record::Bar(r) => {
            let b = &r.bar;
            json!({
                "type": "bar", "sym": b.symbol, "seq": b.seq,
                "interval": b.interval.name(), "interval_s": b.interval.seconds(),
                "o": b.open, "h": b.high, "l": b.low, "c": b.close, "vw": b.vwap,
                "v": b.volume, "n": b.trade_count,
                "t": b.start_ts, "recv_ts": b.recv_ts, "flags": r.flags.names(), "conflated": r.conflated,
            })
        }
        Record::Bbo(r) => {
            let b = &r.bbo;
            json!({
                "type": "bbo", "sym": b.symbol, "seq": b.seq,
                "bp": b.bid.price, "bs": b.bid.size, "bx": b.bid.feed, "bn": b.bid.feeds,
                "ap": b.ask.price, "as": b.ask.size, "ax": b.ask.feed, "an": b.ask.feeds,
                "t": b.event_ts, "recv_ts": b.recv_ts, "flags": r.flags.names(), "conflated": r.conflated,
            })
        }
        Record::Status(s) => json!({
            "type": "status", "code": s.code.name(), "code_num": s.code.to_u16(),
            "feed": s.feed, "ts": s.ts, "detail": s.detail,
        }),
        Record::Unknown { rtype, length } => json!({ "type": "unknown", "rtype": rtype, "length": length }),
    }
}

/// A whole binary message as one JSON text message:
/// `{"type":"records","send_ts":N,"records":[...]}`.
pub fn message_to_json(message: Message<'_>) -> crate::Result<String> {
    let send_ts = message.header.send_ts;
    let records = message
        .map(|record| record.map(|r| record_to_json(&r)))
        .collect::<crate::Result<Vec<_>>>()?;
    Ok(json!({ "type": "records", "send_ts": send_ts, "records": records }).to_string())
}
