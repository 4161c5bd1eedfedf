//! A latency histogram the hot path can feed: lock-free, and cheap in batches.

use std::sync::atomic::{AtomicU64, Ordering};

/// A latency histogram with power-of-two bucket bounds from 1 µs to ~34 s,
/// lock-free: observing is three relaxed atomic adds.
#[derive(Debug)]
pub struct Histogram {
    /// `buckets[i]` counts observations ≤ 2^i µs (and > 2^(i-1) µs).
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

/// Bucket bounds: 2^0 .. 2^25 µs.
pub const BUCKETS: usize = 26;

/// The bucket of a duration: `i` holds durations ≤ 2^i µs.
fn bucket_of(ns: u64) -> usize {
    let micros = ns.div_ceil(1_000).max(1);
    let bucket = (u64::BITS - (micros - 1).leading_zeros()) as usize;
    bucket.min(BUCKETS - 1)
}

/// Observations counted locally, added to a [`Histogram`] at once: a batch
/// of sends (see `send_batch.rs`) costs one atomic add per bucket it
/// touched, not three per message.
#[derive(Debug, Clone)]
pub struct Pending {
    counts: [u64; BUCKETS],
    sum_ns: u64,
    count: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
            sum_ns: 0,
            count: 0,
        }
    }
}

impl Pending {
    /// Counts several durations in ns.
    pub fn observe_all_ns(&mut self, durations: impl IntoIterator<Item = u64>) {
        for ns in durations {
            self.counts[bucket_of(ns)] += 1;
            self.sum_ns = self.sum_ns.wrapping_add(ns);
            self.count += 1;
        }
    }

    /// Adds what was counted to `histogram` and starts again from nothing.
    pub fn add_to(&mut self, histogram: &Histogram) {
        if self.count == 0 {
            return;
        }
        for (bucket, n) in histogram.buckets.iter().zip(&mut self.counts) {
            if *n > 0 {
                bucket.fetch_add(*n, Ordering::Relaxed);
                *n = 0;
            }
        }
        histogram.sum_ns.fetch_add(self.sum_ns, Ordering::Relaxed);
        histogram.count.fetch_add(self.count, Ordering::Relaxed);
        self.sum_ns = 0;
        self.count = 0;
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration in ns.
    pub fn observe_ns(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records several durations in ns, counted locally first so a batch
    /// costs one atomic add per bucket it touches (usually one or two)
    /// instead of three per duration: the writer observes every record of
    /// every message it sends.
    pub fn observe_all_ns(&self, durations: impl IntoIterator<Item = u64>) {
        let mut pending = Pending::default();
        pending.observe_all_ns(durations);
        pending.add_to(self);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The count of each bucket (`i`: observations ≤ 2^i µs and > 2^(i-1) µs).
    pub fn bucket_counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// The sum of every observation, in ns.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_microseconds() {
        let histogram = Histogram::default();
        for ns in [1, 1_000, 1_001, 2_000, 3_000, 1_000_000] {
            histogram.observe_ns(ns);
        }
        let batched = Histogram::default();
        batched.observe_all_ns([1, 1_000, 1_001, 2_000, 3_000, 1_000_000]);
        let counts = histogram.bucket_counts();
        assert_eq!(
            batched.bucket_counts(),
            counts,
            "a batch counts as its observations one by one"
        );
        assert_eq!(batched.sum_ns(), histogram.sum_ns());
        // ≤1 µs: 1 ns and 1,000 ns; ≤2 µs: 1,001 and 2,000; ≤4 µs: 3,000; ≤1,024 µs: 1 ms.
        assert_eq!(&counts[..3], &[2, 2, 1]);
        assert_eq!(counts[10], 1);
        assert_eq!(histogram.count(), 6);
    }
}
