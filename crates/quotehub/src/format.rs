//! How `quotehub subscribe` prints updates: a readable line, or JSON.

use quotehub_client::Update;
use quotehub_proto::Record;
use quotehub_proto::json::record_to_json;

/// `2026-11-20T14:30:00.123456789Z` for ns since the Unix epoch.
pub fn timestamp(ns: u64) -> String {
    quotehub_feed::format_event_time(ns)
}

/// One human-readable line.
pub fn line(update: &Update) -> String {
    match update {
        Update::Quote { record, .. } => {
            let q = &record.quote;
            format!(
                "{} {:<8} seq {:>6}  bid {:>6} @ {:<10} ask {:>6} @ {:<10} {}",
                timestamp(q.event_ts),
                q.symbol,
                q.seq,
                q.bid_size,
                q.bid_price,
                q.ask_size,
                q.ask_price,
                record.flags.names().join(" ")
            )
        }
        Update::Trade { record, .. } => {
            let t = &record.trade;
            format!(
                "{} {:<8} seq {:>6}  trade {:>4} @ {:<10} {}",
                timestamp(t.event_ts),
                t.symbol,
                t.seq,
                t.size,
                t.price,
                record.flags.names().join(" ")
            )
        }
        Update::Status { record, .. } => {
            format!(
                "{} status   {} (feed {}, detail {})",
                timestamp(record.ts),
                record.code.name(),
                record.feed,
                record.detail
            )
        }
        Update::Bar { record, .. } => {
            let b = &record.bar;
            format!(
                "{} {:<8} seq {:>6}  bar {:<3} o {} h {} l {} c {} vwap {} vol {} n {} {}",
                timestamp(b.start_ts),
                b.symbol,
                b.seq,
                b.interval.name(),
                b.open,
                b.high,
                b.low,
                b.close,
                b.vwap,
                b.volume,
                b.trade_count,
                record.flags.names().join(" ")
            )
        }
        Update::Bbo { record, .. } => {
            let b = &record.bbo;
            format!(
                "{} {:<8} seq {:>6}  bbo bid {:>6} @ {:<10} (feed {} of {}) ask {:>6} @ {:<10} (feed {} of {}) {}",
                timestamp(b.event_ts),
                b.symbol,
                b.seq,
                b.bid.size,
                b.bid.price,
                b.bid.feed,
                b.bid.feeds,
                b.ask.size,
                b.ask.price,
                b.ask.feed,
                b.ask.feeds,
                record.flags.names().join(" ")
            )
        }
        Update::Reconnected { attempts } => format!("reconnected after {attempts} attempt(s); subscriptions resumed"),
        _ => String::from("(unknown update)"),
    }
}

/// One JSON line: the record's JSON form from the spec, plus the message's `send_ts`.
pub fn json(update: &Update) -> String {
    let (record, send_ts) = match update {
        Update::Quote { record, send_ts } => (Record::Quote(*record), *send_ts),
        Update::Trade { record, send_ts } => (Record::Trade(*record), *send_ts),
        Update::Status { record, send_ts } => (Record::Status(*record), *send_ts),
        Update::Bar { record, send_ts } => (Record::Bar(*record), *send_ts),
        Update::Bbo { record, send_ts } => (Record::Bbo(*record), *send_ts),
        Update::Reconnected { attempts } => {
            return serde_json::json!({ "type": "reconnected", "attempts": attempts }).to_string();
        }
        _ => return serde_json::json!({ "type": "unknown" }).to_string(),
    };
    let mut value = record_to_json(&record);
    value["send_ts"] = send_ts.into();
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(timestamp(1_795_185_000_123_456_789), "2026-11-20T14:30:00.123456789Z");
        assert_eq!(timestamp(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn bars_and_bbos_print_readably_and_as_their_json_form() {
        use quotehub_proto::{Bar, BarInterval, BarRecord, Bbo, BboRecord, BboSide, Flags};
        let price = |text: &str| text.parse().unwrap();
        let bar = BarRecord {
            bar: Bar {
                symbol: "AAPL".parse().unwrap(),
                interval: BarInterval::MINUTE,
                start_ts: 1_795_185_000_000_000_000,
                recv_ts: 1_795_185_060_000_001_000,
                open: price("10.00"),
                high: price("10.50"),
                low: price("9.75"),
                close: price("10.25"),
                vwap: price("10.1"),
                volume: 300,
                trade_count: 3,
                seq: 2,
            },
            flags: Flags::default(),
            conflated: 0,
        };
        let update = Update::Bar {
            record: bar,
            send_ts: 7,
        };
        let text = line(&update);
        assert!(text.starts_with("2026-11-20T14:30:00.000000000Z AAPL"), "{text}");
        assert!(
            text.contains("bar 1m  o 10.00 h 10.50 l 9.75 c 10.25 vwap 10.10 vol 300 n 3"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&json(&update)).unwrap();
        assert_eq!(
            (value["type"].as_str(), value["vw"].as_str(), value["send_ts"].as_u64()),
            (Some("bar"), Some("10.10"), Some(7))
        );
        let bbo = BboRecord {
            bbo: Bbo {
                symbol: "AAPL".parse().unwrap(),
                bid: BboSide {
                    price: price("10.00"),
                    size: 500,
                    feed: 1,
                    feeds: 2,
                },
                ask: BboSide::default(),
                event_ts: 1_795_185_000_000_000_000,
                recv_ts: 1_795_185_000_000_001_000,
                seq: 9,
            },
            flags: Flags::SNAPSHOT,
            conflated: 0,
        };
        let update = Update::Bbo {
            record: bbo,
            send_ts: 8,
        };
        let text = line(&update);
        assert!(text.contains("bbo bid    500 @ 10.00      (feed 1 of 2)"), "{text}");
        assert!(text.ends_with("snapshot"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&json(&update)).unwrap();
        assert_eq!((value["type"].as_str(), value["bn"].as_u64()), (Some("bbo"), Some(2)));
    }
}
