//! Reconnect delays for every outgoing connection that comes back by itself:
//! the hub's live sources and the Rust client. Exponential, capped,
//! jittered, and reset once a connection has proved healthy.
//!
//! The sequence is backon's ([`ExponentialBuilder`]); this type only fixes
//! the shape both users share and gives it a `reset`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Reconnect delays: nominally from `initial` doubling after every failed
/// attempt up to `max`, each drawn from the upper half of its nominal delay
/// ("equal jitter"), so that hubs and clients that lost the same server at
/// the same moment do not all knock on its door in the same millisecond,
/// yet none retries sooner than half the nominal delay.
#[derive(Debug)]
pub struct Backoff {
    settings: ExponentialBuilder,
    /// Where the sequence is; rebuilt from `settings` by [`Backoff::reset`].
    delays: ExponentialBackoff,
    /// What is handed out should the sequence ever end (it is unbounded).
    max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// A copy starts its own sequence from the initial delay, with the same settings.
impl Clone for Backoff {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings,
            delays: self.settings.build(),
            max: self.max,
        }
    }
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        // backon adds its jitter on top of a delay (up to as much again):
        // from half the nominal delays, each lands between half and all of
        // its nominal delay.
        let settings = ExponentialBuilder::default()
            .with_min_delay(initial / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            settings,
            delays: settings.build(),
            max,
        }
    }

    /// The delay before the next attempt; the one after it will be twice as
    /// long (nominally), up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// Starts over from the initial delay (after a healthy connection).
    pub fn reset(&mut self) {
        self.delays = self.settings.build();
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

    #[test]
    fn a_copy_starts_from_the_initial_delay() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for _ in 0..5 {
            backoff.next_delay();
        }
        assert!(backoff.clone().next_delay() <= Duration::from_millis(100));
    }
}
