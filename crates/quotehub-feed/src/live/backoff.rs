//! Reconnect delays: exponential, capped, jittered, reset once a connection
//! has proved healthy.

use std::time::Duration;

/// Reconnect delays for a live source.
///
/// The delay starts at `initial` and doubles after every failed attempt up
/// to `max`. Each delay handed out is drawn uniformly from its upper half
/// ("equal jitter"), so hubs that lost the same upstream at the same moment
/// do not all knock on its door in the same millisecond, yet none retries
/// sooner than half the nominal delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// The nominal delay of the next attempt.
    next: Duration,
    /// xorshift64 state for the jitter (no cryptographic need; not zero).
    rng: u64,
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = quotehub_proto::now_ns() ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; the one after it will be twice as
    /// long (nominally), up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (nominal * 2).min(self.max);
        let half = nominal / 2;
        let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.random() % jitter_ns.saturating_add(1))
    }

    /// Starts over from the initial delay (after a healthy connection).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_within_their_upper_half_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        let nominal = [100, 200, 400, 800, 1_000, 1_000];
        for millis in nominal {
            let delay = backoff.next_delay();
            let nominal = Duration::from_millis(millis);
            assert!(delay >= nominal / 2 && delay <= nominal, "{delay:?} for {nominal:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let delays: std::collections::HashSet<Duration> = (0..16).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 8, "{delays:?}");
    }
}
