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
}
