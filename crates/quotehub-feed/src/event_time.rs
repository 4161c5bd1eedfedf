//! Event times as people write them: RFC 3339 (`2026-11-20T14:31:00Z`,
//! fractions to the nanosecond, any UTC offset) or plain nanoseconds since
//! the Unix epoch; and back to RFC 3339 in UTC for display.

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

fn parse_rfc3339(text: &str) -> Result<u64, &'static str> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return Err("too short");
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let digits = bytes.get(range).ok_or("too short")?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err("a date or time field is not digits");
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, want)| bytes[at] != want) || !matches!(bytes[10], b'T' | b't' | b' ') {
        return Err("not in the form YYYY-MM-DDTHH:MM:SS");
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("no such time of day (leap seconds are not accepted)");
    }
    let mut rest = &bytes[19..];
    let mut nanos = 0i64;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err("a fraction of a second needs 1 to 9 digits");
        }
        let fraction = rest[1..=digits].iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'));
        nanos = fraction * 10i64.pow(9 - digits as u32);
        rest = &rest[1 + digits..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err("a UTC offset is ±HH:MM");
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return Err("no such UTC offset");
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err("it needs a UTC offset: Z or ±HH:MM"),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset_seconds;
    if seconds < 0 {
        return Err("it is before 1970-01-01T00:00:00Z");
    }
    u64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|ns| ns.checked_add(nanos as u64))
        .ok_or("it is too far in the future")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), the inverse of [`days_from_civil`].
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

/// `2026-11-20T14:30:00.123456789Z` for ns since the Unix epoch.
pub fn format_event_time(ns: u64) -> String {
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
