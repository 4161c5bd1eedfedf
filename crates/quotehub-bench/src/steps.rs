//! The rate steps of a saturation search.
//!
//! The rate doubles from a start until a target falls behind. One step that
//! falls behind does not end the search: a target that batches harder under
//! load can deliver more at the next doubling (on this machine the hub
//! delivered 78–81 % of 640,000 quotes/s in some runs, then its peak at
//! 1.28 M), so the search ends at the second step that falls behind, or after
//! `max_steps` steps.
//!
//! A step whose p50 latency passes a bound also ends the search, and does
//! not count as the target's saturation: delivering the offer while a
//! backlog grows (the Node peer did, to p50s of seconds) is not a rate the
//! target sustains, and half of it is not a moderate load.

/// A step keeps up when it delivers at least this share of what it was offered.
pub const KEEPING_UP: f64 = 0.9;
/// Steps that fall behind before the search ends.
const BEHIND_STEPS: u32 = 2;

/// Chooses the rate of each saturation step from how the earlier ones went.
#[derive(Debug, Clone)]
pub struct Steps {
    next_rate: f64,
    steps_left: u32,
    behind: u32,
    /// The p50 (µs) past which a step ends the search.
    max_p50_us: f64,
    /// A step passed `max_p50_us`.
    too_slow: bool,
}

impl Steps {
    pub fn new(start_rate: f64, max_steps: u32, max_p50_us: f64) -> Self {
        Steps {
            next_rate: start_rate,
            steps_left: max_steps.max(1),
            behind: 0,
            max_p50_us,
            too_slow: false,
        }
    }

    /// Whether a step with this p50 (µs) counts toward the saturation figure.
    pub fn within_latency(&self, p50_us: Option<f64>) -> bool {
        p50_us.is_none_or(|p50| p50 <= self.max_p50_us)
    }

    /// The offered rate of the next step, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        (self.steps_left > 0 && self.behind < BEHIND_STEPS && !self.too_slow).then_some(self.next_rate)
    }

    /// Records what the step at `next_rate` was offered and delivered, and its p50 (µs).
    pub fn record(&mut self, offered_per_s: f64, delivered_per_s: f64, p50_us: Option<f64>) {
        self.steps_left = self.steps_left.saturating_sub(1);
        self.too_slow |= !self.within_latency(p50_us);
        if delivered_per_s < KEEPING_UP * offered_per_s {
            self.behind += 1;
        }
        self.next_rate *= 2.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a target that delivers `delivered(rate)`.
    fn rates(start: f64, max_steps: u32, delivered: impl Fn(f64) -> f64) -> Vec<f64> {
        rates_with_p50(start, max_steps, delivered, |_| 100.0)
    }

    /// The same, with a target whose p50 at `rate` is `p50(rate)` µs, and a 1 ms bound.
    fn rates_with_p50(
        start: f64,
        max_steps: u32,
        delivered: impl Fn(f64) -> f64,
        p50: impl Fn(f64) -> f64,
    ) -> Vec<f64> {
        let mut steps = Steps::new(start, max_steps, 1_000.0);
        let mut rates = Vec::new();
        while let Some(rate) = steps.next_rate() {
            rates.push(rate);
            steps.record(rate, delivered(rate), Some(p50(rate)));
        }
        rates
    }

    #[test]
    fn a_step_past_the_latency_bound_ends_the_search_though_it_kept_up() {
        // Delivers its whole offer at every rate, but its backlog grows from 40 on.
        let p50 = |rate: f64| if rate >= 40.0 { 2_000_000.0 } else { 200.0 };
        assert_eq!(rates_with_p50(10.0, 8, |rate| rate, p50), [10.0, 20.0, 40.0]);
        let steps = Steps::new(10.0, 8, 1_000.0);
        assert!(steps.within_latency(Some(1_000.0)));
        assert!(!steps.within_latency(Some(1_000.5)));
        assert!(
            steps.within_latency(None),
            "a step with no latency is judged on its rate"
        );
    }

    #[test]
    fn a_target_that_keeps_up_is_driven_to_the_step_cap() {
        assert_eq!(rates(10.0, 4, |rate| rate), [10.0, 20.0, 40.0, 80.0]);
    }

    #[test]
    fn the_search_goes_one_step_past_the_first_that_falls_behind() {
        // Keeps up to 40, delivers 78 % of 80 and more (but under 90 %) at 160.
        let delivered = |rate: f64| if rate <= 40.0 { rate } else { 62.0 + (rate - 80.0) * 0.5 };
        assert_eq!(rates(10.0, 8, delivered), [10.0, 20.0, 40.0, 80.0, 160.0]);
    }

    #[test]
    fn a_step_that_keeps_up_again_continues_the_search() {
        // Falls behind once at 20 (a stall), keeps up at 40, behind from 80.
        let delivered = |rate: f64| if rate == 20.0 || rate >= 80.0 { rate * 0.5 } else { rate };
        assert_eq!(rates(10.0, 8, delivered), [10.0, 20.0, 40.0, 80.0]);
    }

    #[test]
    fn the_cap_ends_the_search_even_right_after_falling_behind() {
        assert_eq!(
            rates(10.0, 3, |rate| if rate >= 40.0 { 0.0 } else { rate }),
            [10.0, 20.0, 40.0]
        );
        assert_eq!(rates(10.0, 0, |rate| rate), [10.0], "at least one step is run");
    }

    #[test]
    fn exactly_the_keeping_up_share_keeps_up() {
        assert_eq!(rates(10.0, 3, |rate| rate * KEEPING_UP), [10.0, 20.0, 40.0]);
    }
}
