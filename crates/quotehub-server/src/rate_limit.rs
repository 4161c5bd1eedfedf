//! A per-connection token bucket for client requests: a sustained rate with
//! a burst above it. A request over the limit gets an error reply; a client
//! that keeps pushing past it is closed.

use std::time::Instant;

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

    /// Takes a token for one request at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
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
            assert_eq!(limit.check(start), Verdict::Allow);
        }
        // TC1: then refusals, and after as many refusals as the burst, a close.
        assert_eq!(limit.check(start), Verdict::Refuse);
        assert_eq!(limit.check(start), Verdict::Refuse);
        assert_eq!(limit.check(start), Verdict::Refuse);
        assert_eq!(limit.check(start), Verdict::Close);
        // TC2: a tenth of a second later one token (10/s) has come back.
        let later = start + Duration::from_millis(100);
        assert_eq!(limit.check(later), Verdict::Allow);
        assert_eq!(limit.check(later), Verdict::Refuse);
    }
}
