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
//!
//! Doubling alone measures saturation to a factor of two: on 2026-12-06 the
//! hub and Bun both kept up at 8 M deliveries/s and both failed 16 M, so
//! every ratio read 1.00 though the targets are 1.2× and 1.5×. So after the
//! doubling, `refine_steps` more steps bisect (geometrically) between the
//! highest rate that kept up within the latency bound and the lowest one
//! above it that did not: 3 steps bring the bracket from 2× to 1.09×.

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
    /// Bisecting steps left after the doubling.
    refine_left: u32,
    /// The highest rate that kept up within the latency bound.
    good: Option<f64>,
    /// The rates that fell behind or passed the latency bound.
    failed: Vec<f64>,
}

impl Steps {
    pub fn new(start_rate: f64, max_steps: u32, refine_steps: u32, max_p50_us: f64) -> Self {
        Steps {
            next_rate: start_rate,
            steps_left: max_steps.max(1),
            behind: 0,
            max_p50_us,
            too_slow: false,
            refine_left: refine_steps,
            good: None,
            failed: Vec::new(),
        }
    }

    /// Whether a step with this p50 (µs) counts toward the saturation figure.
    pub fn within_latency(&self, p50_us: Option<f64>) -> bool {
        p50_us.is_none_or(|p50| p50 <= self.max_p50_us)
    }

    /// The offered rate of the next step, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        if self.doubling() {
            return Some(self.next_rate);
        }
        self.bisecting_rate()
    }

    /// The rate of the next bisecting step, if one is left and there is a
    /// bracket to bisect.
    fn bisecting_rate(&self) -> Option<f64> {
        let good = self.good?;
        let bad = self
            .failed
            .iter()
            .copied()
            .filter(|&rate| rate > good)
            .reduce(f64::min)?;
        (self.refine_left > 0).then(|| (good * bad).sqrt())
    }

    /// Whether the doubling search is still on.
    fn doubling(&self) -> bool {
        self.steps_left > 0 && self.behind < BEHIND_STEPS && !self.too_slow
    }

    /// Records what the step at `next_rate` was offered and delivered (in
    /// any one unit: deliveries/s, where the steps' rates are quotes/s), and
    /// its p50 (µs).
    pub fn record(&mut self, offered_per_s: f64, delivered_per_s: f64, p50_us: Option<f64>) {
        let kept_up = delivered_per_s >= KEEPING_UP * offered_per_s;
        let within = self.within_latency(p50_us);
        // The bracket is kept in the steps' own unit.
        let rate = self.next_rate().unwrap_or(self.next_rate);
        if kept_up && within {
            self.good = Some(self.good.map_or(rate, |good| good.max(rate)));
        } else {
            self.failed.push(rate);
        }
        if !self.doubling() {
            self.refine_left = self.refine_left.saturating_sub(1);
            return;
        }
        self.steps_left = self.steps_left.saturating_sub(1);
        self.too_slow |= !within;
        if !kept_up {
            self.behind += 1;
        }
        self.next_rate *= 2.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search (no bisecting) against a target that delivers `delivered(rate)`.
    fn rates(start: f64, max_steps: u32, delivered: impl Fn(f64) -> f64) -> Vec<f64> {
        rates_with_p50(start, max_steps, 0, delivered, |_| 100.0)
    }

    /// The same, with a target whose p50 at `rate` is `p50(rate)` µs, and a 1 ms bound.
    fn rates_with_p50(
        start: f64,
        max_steps: u32,
        refine_steps: u32,
        delivered: impl Fn(f64) -> f64,
        p50: impl Fn(f64) -> f64,
    ) -> Vec<f64> {
        let mut steps = Steps::new(start, max_steps, refine_steps, 1_000.0);
        let mut rates = Vec::new();
        while let Some(rate) = steps.next_rate() {
            rates.push(rate);
            // Offered and delivered in another unit than the rate, as the
            // bench's are (deliveries/s against quotes/s, fan-out 25).
            steps.record(rate * 25.0, delivered(rate) * 25.0, Some(p50(rate)));
        }
        rates
    }

    #[test]
    fn a_step_past_the_latency_bound_ends_the_search_though_it_kept_up() {
        // Delivers its whole offer at every rate, but its backlog grows from 40 on.
        let p50 = |rate: f64| if rate >= 40.0 { 2_000_000.0 } else { 200.0 };
        assert_eq!(rates_with_p50(10.0, 8, 0, |rate| rate, p50), [10.0, 20.0, 40.0]);
        let steps = Steps::new(10.0, 8, 0, 1_000.0);
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
    fn bisecting_narrows_the_last_doubling_to_the_rate_that_keeps_up() {
        // Keeps up to 100 (between the doublings 80 and 160), behind past it.
        let delivered = |rate: f64| if rate <= 100.0 { rate } else { 100.0 };
        let steps = rates_with_p50(10.0, 8, 3, delivered, |_| 100.0);
        let refined: Vec<u64> = steps[6..].iter().map(|rate| rate.round() as u64).collect();
        assert_eq!(&steps[..6], [10.0, 20.0, 40.0, 80.0, 160.0, 320.0]);
        // √(80·160) = 113 fails, √(80·113) = 95 keeps up, √(95·113) = 104 fails.
        assert_eq!(refined, [113, 95, 104]);
    }

    #[test]
    fn bisecting_counts_a_step_past_the_latency_bound_as_failed() {
        let p50 = |rate: f64| if rate > 50.0 { 2_000_000.0 } else { 200.0 };
        let steps = rates_with_p50(10.0, 8, 2, |rate| rate, p50);
        let refined: Vec<u64> = steps.iter().map(|rate| rate.round() as u64).collect();
        // 80 passes the bound; √(40·80) = 57 too; √(40·57) = 48 keeps up.
        assert_eq!(refined, [10, 20, 40, 80, 57, 48]);
    }

    #[test]
    fn nothing_to_bisect_without_a_rate_each_side() {
        // Kept up to the step cap: no failed rate above.
        assert_eq!(rates_with_p50(10.0, 3, 3, |rate| rate, |_| 100.0), [10.0, 20.0, 40.0]);
        // Failed from the start: no rate that kept up below.
        assert_eq!(rates_with_p50(10.0, 8, 3, |_| 0.0, |_| 100.0), [10.0, 20.0]);
    }

    #[test]
    fn exactly_the_keeping_up_share_keeps_up() {
        assert_eq!(rates(10.0, 3, |rate| rate * KEEPING_UP), [10.0, 20.0, 40.0]);
    }
}
