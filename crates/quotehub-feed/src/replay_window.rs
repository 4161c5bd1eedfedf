//! Which events of a feed a replay delivers: a window of event time and a
//! set of symbols. Events outside it are read (the feed is in recorded order)
//! but neither paced nor delivered.

use std::collections::HashSet;

use quotehub_proto::{Event, Symbol};

use crate::event_time::{format_event_time, parse_event_time};

/// A replay's selection: `from <= event time < to`, and only `symbols`.
/// Every part is optional; the default selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// First event time delivered (inclusive), ns since the Unix epoch.
    pub from: Option<u64>,
    /// Event time where delivery ends (exclusive), so that adjacent windows
    /// never deliver an event twice.
    pub to: Option<u64>,
    /// Symbols delivered; `None` for all.
    pub symbols: Option<HashSet<Symbol>>,
}

impl ReplayWindow {
    /// A window from the texts people give: times as RFC 3339 or ns since
    /// the epoch, symbols separated by commas. Errors name the bad part.
    pub fn parse(from: Option<&str>, to: Option<&str>, symbols: Option<&str>) -> Result<Self, String> {
        let time = |name: &str, text: Option<&str>| {
            text.map(parse_event_time)
                .transpose()
                .map_err(|err| format!("{name}: {err}"))
        };
        let window = Self {
            from: time("from", from)?,
            to: time("to", to)?,
            symbols: symbols.map(parse_symbols).transpose()?,
        };
        if let (Some(from), Some(to)) = (window.from, window.to)
            && from >= to
        {
            return Err(format!(
                "the window is empty: from {} is not before to {}",
                format_event_time(from),
                format_event_time(to)
            ));
        }
        Ok(window)
    }

    /// Whether the replay delivers `event`.
    pub fn admits(&self, event: &Event) -> bool {
        let ts = event.event_ts();
        self.from.is_none_or(|from| ts >= from)
            && self.to.is_none_or(|to| ts < to)
            && self.symbols.as_ref().is_none_or(|set| set.contains(&event.symbol()))
    }

    /// Whether it selects everything.
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }
}

/// `AAPL,MSFT` (blanks around names ignored) into a set; an empty list or a
/// bad name is an error.
pub fn parse_symbols(text: &str) -> Result<HashSet<Symbol>, String> {
    let names: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if names.is_empty() {
        return Err("symbols: name at least one symbol (AAPL,MSFT)".into());
    }
    names
        .into_iter()
        .map(|name| name.parse().map_err(|err| format!("symbols: {err}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quotehub_proto::Trade;

    fn trade(symbol: &str, ts: u64) -> Event {
        Event::Trade(Trade {
            symbol: symbol.parse().unwrap(),
            price: "1".parse().unwrap(),
            size: 1,
            event_ts: ts,
            recv_ts: 0,
            seq: 0,
        })
    }

    #[test]
    fn window_is_from_inclusive_to_exclusive_and_filters_symbols() {
        let window = ReplayWindow::parse(Some("100"), Some("200"), Some("AAPL, BRK.B")).unwrap();
        assert!(!window.admits(&trade("AAPL", 99)));
        assert!(window.admits(&trade("AAPL", 100)));
        assert!(window.admits(&trade("BRK.B", 199)));
        assert!(!window.admits(&trade("AAPL", 200)));
        assert!(!window.admits(&trade("MSFT", 150)));
        assert!(ReplayWindow::default().admits(&trade("MSFT", 0)));
        assert!(ReplayWindow::default().is_everything() && !window.is_everything());
    }

    #[test]
    fn bad_windows_are_errors_naming_the_part() {
        assert!(
            ReplayWindow::parse(Some("soon"), None, None)
                .unwrap_err()
                .starts_with("from:")
        );
        assert!(
            ReplayWindow::parse(None, Some("x"), None)
                .unwrap_err()
                .starts_with("to:")
        );
        assert!(
            ReplayWindow::parse(Some("5"), Some("5"), None)
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            ReplayWindow::parse(None, None, Some(" , "))
                .unwrap_err()
                .starts_with("symbols:")
        );
        assert!(
            ReplayWindow::parse(None, None, Some("MUCH-TOO-LONG-A-SYMBOL"))
                .unwrap_err()
                .starts_with("symbols:")
        );
    }
}
