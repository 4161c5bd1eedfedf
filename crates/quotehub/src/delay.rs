//! A key's `delay` as operators write it: `"15m"`, `"90s"`, `"1h30m"`,
//! `"300ms"`, `"0"` (real time). Four units (`h`, `m`, `s`, `ms`) in
//! integers are all a delayed-data licence needs, so this small parser
//! stands in for a dependency (`humantime` takes more forms, floats and
//! years among them, none of which a delay wants).

use std::time::Duration;

use quotehub_server::delayed::MAX_DELAY;

/// Parses a delay; an error names what is wrong. Longer than
/// [`MAX_DELAY`] is refused.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("{text:?} is not a delay: write e.g. \"15m\", \"90s\", \"1h30m\", \"300ms\" or \"0\"");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest.get(..digits).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let after = rest.get(digits..).unwrap_or_default();
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let unit = after.get(..unit_len).unwrap_or_default();
        let part = match unit {
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(number)),
            "ms" => Some(Duration::from_millis(number)),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = after.get(unit_len..).unwrap_or_default();
    }
    if total > MAX_DELAY {
        return Err(format!("{text:?} is longer than the longest delay allowed, 24h"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_as_written_and_mistakes_are_errors() {
        let ok = [
            ("15m", 900_000),
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("300ms", 300),
            ("1m500ms", 60_500),
            ("0", 0),
            ("24h", 86_400_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_delay(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for text in [
            "",
            "15",
            "m",
            "15 m",
            "-5m",
            "1.5m",
            "15min",
            "25h",
            "99999999999999999999h",
            "1d",
        ] {
            assert!(parse_delay(text).is_err(), "{text}");
        }
    }
}
