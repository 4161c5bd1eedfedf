//! Event times as people write them: RFC 3339 (`2026-11-20T14:31:00Z`,
//! fractions to the nanosecond, any UTC offset) or plain nanoseconds since
//! the Unix epoch; and back to RFC 3339 in UTC for display.
//!
//! The calendar is the `time` crate's (already in the build for `quotehub
//! cert`); what is checked here is only where this hub is stricter than RFC
//! 3339 allows: at most 9 fraction digits (a 10th would be dropped, not
//! rounded), no leap seconds (feeds stamp in Unix time, which has none), and
//! the date and time joined by `T` or a space.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Parses an RFC 3339 time or a count of nanoseconds since the Unix epoch.
/// The error says what was expected.
pub fn parse_event_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("{text:?} is too large for ns since the Unix epoch"));
    }
    parse_rfc3339(text).map_err(|why| {
        format!("time {text:?}: {why}; expected RFC 3339 (2026-11-20T14:31:00Z, 2026-11-20T09:31:00.5-05:00) or ns since the Unix epoch")
    })
}

fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bytes = text.as_bytes();
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return Err("not in the form YYYY-MM-DDTHH:MM:SS".into());
    }
    if bytes.get(17..19) == Some(b"60") {
        return Err("no such time of day (leap seconds are not accepted)".into());
    }
    if bytes.get(19) == Some(&b'.') {
        let digits = bytes[20..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return Err("a fraction of a second needs 1 to 9 digits".into());
        }
    }
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| error.to_string())?;
    let ns = time.unix_timestamp_nanos();
    if ns < 0 {
        return Err("it is before 1970-01-01T00:00:00Z".into());
    }
    u64::try_from(ns).map_err(|_| "it is too far in the future".into())
}

/// `2026-11-20T14:30:00.123456789Z` for ns since the Unix epoch: always nine
/// fraction digits, so that times line up in a column.
pub fn format_event_time(ns: u64) -> String {
    // Every u64 of ns (up to 2554) is within the `time` crate's range.
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: u64 = 1_795_185_000_000_000_000; // 2026-11-20T14:30:00Z

    #[test]
    fn rfc3339_and_nanoseconds_name_the_same_instant() {
        assert_eq!(parse_event_time("2026-11-20T14:30:00Z"), Ok(OPEN));
        assert_eq!(parse_event_time("1795185000000000000"), Ok(OPEN));
        assert_eq!(parse_event_time("2026-11-20T09:30:00-05:00"), Ok(OPEN));
        assert_eq!(parse_event_time("2026-11-20t14:30:00.5z"), Ok(OPEN + 500_000_000));
        assert_eq!(parse_event_time("2026-11-20T14:30:00.000000001Z"), Ok(OPEN + 1));
        assert_eq!(parse_event_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_event_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000_000_000));
        assert_eq!(format_event_time(OPEN + 1), "2026-11-20T14:30:00.000000001Z");
        for ns in [0, OPEN, OPEN + 123_456_789, 4_102_444_800_000_000_000] {
            assert_eq!(parse_event_time(&format_event_time(ns)), Ok(ns));
        }
    }

    #[test]
    fn malformed_times_are_errors_that_say_what_is_expected() {
        for bad in [
            "",
            "yesterday",
            "2026-11-20",
            "2026-11-20T14:30:00",
            "2026-13-20T14:30:00Z",
            "2026-02-30T14:30:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T14:30:60Z",
            "2026-11-20T14:30:00.Z",
            "2026-11-20T14:30:00.1234567891Z",
            "2026-11-20T14:30:00+5:00",
            "1969-12-31T23:59:59Z",
            "99999999999999999999",
            "-5",
        ] {
            let err = parse_event_time(bad).expect_err(bad);
            assert!(err.contains(bad.trim()), "{err}");
        }
        assert!(
            parse_event_time("2026-11-20T14:30:00")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
