//! What the accept loop does when `accept` fails (out of descriptors, out of
//! memory): wait, twice as long after each failure in a row up to
//! [`MAX_PAUSE`], instead of spinning on an error that has not gone away;
//! and log one line per [`LOG_INTERVAL`] saying how many failures it did not
//! log, instead of one line per failure (1,051 identical lines in one run).

use std::time::Duration;

use tokio::time::Instant;

/// The pause after a first failure.
pub const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause: a descriptor freed is used within this.
pub const MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most one log line per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The accept loop's failures in a row and its log's rate.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    /// The pause after the next failure; zero after a success.
    pause: Duration,
    /// When the last line was logged.
    logged_at: Option<Instant>,
    /// Failures since then, not logged.
    suppressed: u64,
}

/// What to do after a failed `accept`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Stop accepting for this long.
    pub(crate) pause: Duration,
    /// Log this failure, saying how many were not logged since the last line.
    pub(crate) log: Option<u64>,
}

impl AcceptBackoff {
    /// A failed `accept` at `now`.
    pub(crate) fn failed(&mut self, now: Instant) -> Failed {
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
        let due = self
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_INTERVAL);
        let log = if due {
            self.logged_at = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        };
        Failed { pause: self.pause, log }
    }

    /// A successful `accept`: the next failure pauses briefly again. Returns
    /// the failures not logged yet, if any, for one last line.
    pub(crate) fn succeeded(&mut self) -> Option<u64> {
        self.pause = Duration::ZERO;
        (self.suppressed > 0).then(|| std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let now = Instant::now();
        let pauses: Vec<Duration> = (0..12).map(|_| backoff.failed(now).pause).collect();
        assert_eq!(pauses[..3], [FIRST_PAUSE, FIRST_PAUSE * 2, FIRST_PAUSE * 4]);
        assert_eq!(pauses.last(), Some(&MAX_PAUSE));
        assert!(pauses.windows(2).all(|pair| pair[0] <= pair[1]));
        backoff.succeeded();
        assert_eq!(backoff.failed(now).pause, FIRST_PAUSE);
    }

    #[test]
    fn one_line_per_interval_counts_the_failures_it_did_not_log() {
        let mut backoff = AcceptBackoff::default();
        let start = Instant::now();
        // TC0: the first failure is logged at once.
        assert_eq!(backoff.failed(start).log, Some(0));
        // TC1: a thousand more within the interval: none logged.
        for i in 0..1_000 {
            assert_eq!(backoff.failed(start + Duration::from_millis(i)).log, None);
        }
        // TC2: the next one past the interval says how many were not.
        assert_eq!(backoff.failed(start + LOG_INTERVAL).log, Some(1_000));
        assert_eq!(backoff.failed(start + LOG_INTERVAL).log, None);
        // TC3: a success reports what is left unlogged, once.
        assert_eq!(backoff.succeeded(), Some(1));
        assert_eq!(backoff.succeeded(), None);
    }
}
