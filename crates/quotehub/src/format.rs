//! How `quotehub subscribe` prints updates: a readable line, or JSON.

use quotehub_client::Update;
use quotehub_proto::Flags;

/// `2026-11-20T14:30:00.123456789Z` for ns since the Unix epoch.
pub fn timestamp(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        day_secs / 3_600,
        day_secs / 60 % 60,
        day_secs % 60,
        ns % 1_000_000_000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn flag_names(flags: Flags) -> Vec<&'static str> {
    [
        (Flags::SNAPSHOT, "snapshot"),
        (Flags::CONFLATED, "conflated"),
        (Flags::REPLAYED, "replayed"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect()
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
                flag_names(record.flags).join(" ")
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
                flag_names(record.flags).join(" ")
            )
        }
        _ => String::from("(unknown update)"),
    }
}

/// One JSON line; prices are decimal strings, never floats.
pub fn json(update: &Update) -> String {
    let value = match update {
        Update::Quote { record, send_ts } => {
            let q = &record.quote;
            serde_json::json!({
                "type": "quote", "sym": q.symbol, "seq": q.seq,
                "bp": q.bid_price, "bs": q.bid_size, "ap": q.ask_price, "as": q.ask_size,
                "t": q.event_ts, "recv_ts": q.recv_ts, "send_ts": send_ts,
                "flags": flag_names(record.flags),
            })
        }
        Update::Trade { record, send_ts } => {
            let t = &record.trade;
            serde_json::json!({
                "type": "trade", "sym": t.symbol, "seq": t.seq, "p": t.price, "s": t.size,
                "t": t.event_ts, "recv_ts": t.recv_ts, "send_ts": send_ts,
                "flags": flag_names(record.flags),
            })
        }
        _ => serde_json::json!({ "type": "unknown" }),
    };
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
