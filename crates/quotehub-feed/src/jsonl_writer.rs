//! Writes events as Polygon-style JSON lines, the format [`crate::JsonLineDecoder`]
//! reads: exact decimal prices, integer sizes, event time in ns.

use std::io::{self, Write};

use quotehub_proto::Event;

/// Writes one event as a JSON line (with its newline). Lossless for every
/// field a JSON-lines feed holds: symbol, prices, sizes and event time; the
/// hub's own stamps (`seq`, `recv_ts`) have no place in the format.
pub fn write_event(out: &mut impl Write, event: &Event) -> io::Result<()> {
    match event {
        Event::Quote(q) => writeln!(
            out,
            r#"{{"ev":"Q","sym":"{}","bp":{},"bs":{},"ap":{},"as":{},"t":{}}}"#,
            q.symbol, q.bid_price, q.bid_size, q.ask_price, q.ask_size, q.event_ts
        ),
        Event::Trade(t) => writeln!(
            out,
            r#"{{"ev":"T","sym":"{}","p":{},"s":{},"t":{}}}"#,
            t.symbol, t.price, t.size, t.event_ts
        ),
        // An event kind JSON lines cannot hold yet is left out.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JsonLineDecoder;
    use quotehub_proto::{Price, Quote, Symbol, Trade};

    #[test]
    fn written_lines_decode_to_the_same_events() {
        let symbol = |s: &str| s.parse::<Symbol>().unwrap();
        let price = |s: &str| s.parse::<Price>().unwrap();
        let events = [
            Event::Quote(Quote {
                symbol: symbol("BRK.B"),
                bid_price: price("412.0001"),
                bid_size: 3,
                ask_price: price("12345678.123456789"),
                ask_size: u32::MAX,
                event_ts: 1_499_697_120_000_000_001,
                recv_ts: 0,
                seq: 0,
            }),
            Event::Trade(Trade {
                symbol: symbol("AA-"),
                price: price("0.000000001"),
                size: 1,
                event_ts: 1_700_000_000_000_000_000,
                recv_ts: 0,
                seq: 0,
            }),
        ];
        let mut decoder = JsonLineDecoder::new();
        for event in events {
            let mut line = Vec::new();
            write_event(&mut line, &event).unwrap();
            assert_eq!(line.pop(), Some(b'\n'));
            assert_eq!(decoder.decode(&mut line), Ok(event));
        }
    }
}
