//! A per-connection token bucket for client requests: a sustained rate with
//! a burst above it. A request over the limit gets an error reply; a client
//! that keeps pushing past it is closed.
//!
//! Requests are weighed by the work they cause: one token, plus one per
//! full `SYMBOLS_PER_TOKEN` symbols named (a request naming fewer than
//! 100 takes one), `"*"` counting as
//! `WILDCARD_WEIGHT` symbols (subscribing to it walks every symbol of the
//! table), and never more than the burst (so any request passes on a full
//! bucket). With the defaults (20/s, burst 40) a client may toggle `"*"`
//! about once a second, or (un)subscribe 1,000 symbols twice a second.

use std::time::Instant;

use quotehub_proto::Selection;

/// Symbols a request names per token it takes beyond the first.
pub(crate) const SYMBOLS_PER_TOKEN: u32 = 100;

/// How many symbols `"*"` weighs as.
pub(crate) const WILDCARD_WEIGHT: u32 = 1_000;

/// Tokens a request naming `symbols` takes: 1 + ⌊weight / 100⌋, where each
/// symbol weighs 1 and `"*"` weighs 1,000.
pub(crate) fn request_weight(symbols: &[Selection]) -> u32 {
    let weight = symbols.iter().fold(0u32, |sum, selection| {
        sum.saturating_add(match selection {
            Selection::All => WILDCARD_WEIGHT,
            Selection::Symbol(_) => 1,
        })
    });
    1 + weight / SYMBOLS_PER_TOKEN
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: handle it.
    Allow,
    /// Over the limit: answer `rate_limited`, do not handle it.
    Refuse,
    /// Over the limit again and again: close the connection.
    Close,
}

/// A token bucket refilled continuously.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Refusals since the client last stayed within the limit.
    refused: u32,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(per_second),
            burst,
            tokens: burst,
            last: Instant::now(),
            refused: 0,
        }
    }

    /// Takes `tokens` (at most the burst) for one request at `now`.
    pub(crate) fn check(&mut self, now: Instant, tokens: u32) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let cost = f64::from(tokens.max(1)).min(self.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            self.refused = 0;
            return Verdict::Allow;
        }
        self.refused += 1;
        // A client that ignores as many refusals as its burst is abusive.
        if f64::from(self.refused) > self.burst {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_refuses_then_closes_and_refills_over_time() {
        let start = Instant::now();
        let mut limit = RateLimit::new(10, 3);
        // TC0: the burst passes at once.
        for _ in 0..3 {
            assert_eq!(limit.check(start, 1), Verdict::Allow);
        }
        // TC1: then refusals, and after as many refusals as the burst, a close.
        assert_eq!(limit.check(start, 1), Verdict::Refuse);
        assert_eq!(limit.check(start, 1), Verdict::Refuse);
        assert_eq!(limit.check(start, 1), Verdict::Refuse);
        assert_eq!(limit.check(start, 1), Verdict::Close);
        // TC2: a tenth of a second later one token (10/s) has come back.
        let later = start + Duration::from_millis(100);
        assert_eq!(limit.check(later, 1), Verdict::Allow);
        assert_eq!(limit.check(later, 1), Verdict::Refuse);
    }

    #[test]
    fn heavy_requests_take_more_tokens_but_never_more_than_the_burst() {
        let symbols = |n: usize| -> Vec<Selection> {
            (0..n)
                .map(|i| Selection::Symbol(format!("S{i}").parse().unwrap()))
                .collect()
        };
        // TC0: weights: 1 token plus one per full 100 symbols; "*" as 1,000 symbols.
        assert_eq!(request_weight(&symbols(1)), 1);
        assert_eq!(request_weight(&symbols(99)), 1);
        assert_eq!(request_weight(&symbols(100)), 2);
        assert_eq!(request_weight(&symbols(250)), 3);
        assert_eq!(request_weight(&symbols(10_000)), 101);
        assert_eq!(request_weight(&[Selection::All]), 11);
        assert_eq!(request_weight(&[]), 1);
        // TC1: a "*" toggle pair drains a burst of 40 by 22.
        let start = Instant::now();
        let mut limit = RateLimit::new(20, 40);
        assert_eq!(limit.check(start, 11), Verdict::Allow);
        assert_eq!(limit.check(start, 11), Verdict::Allow);
        assert_eq!(limit.check(start, 11), Verdict::Allow);
        assert_eq!(limit.check(start, 11), Verdict::Refuse);
        // TC2: a request heavier than the burst passes on a full bucket only.
        let full = start + Duration::from_secs(10);
        assert_eq!(limit.check(full, 101), Verdict::Allow);
        assert_eq!(limit.check(full, 1), Verdict::Refuse);
    }
}
