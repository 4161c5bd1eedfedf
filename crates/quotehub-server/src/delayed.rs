//! Delayed entitlements: API keys with a `delay` are served by a second hub
//! per distinct delay, fed by a [`DelayLine`] from the real hub.
//!
//! The real hub hands the line every record it sequences, every bar and BBO
//! it derives and every feed's status record (its record sink, teed with a
//! bus's if there is one); a task releases each into the delayed hub once
//! it is `delay` older than the hub's stamp on it, with the real hub's
//! numbers and epoch (`Publisher::publish_passthrough`, and its derived and
//! status variants), so a delayed client sees the same records, bytes and
//! numbers as a real-time one, later. The delayed hub builds no bars or BBO
//! of its own: the real hub's are its only ones. Its table is its
//! snapshots (quotes, trades, bars, BBO), resume history and HTTP
//! `/v1/snapshot`, all as of `delay` ago. Real-time clients never touch it;
//! the real hub's publishers pay one queue push per record, and only when
//! some key has a delay.
//!
//! The `shutdown` status is the server's, not a feed's: it is sent to the
//! delayed hubs' clients at once, not through a line.

use std::sync::Arc;
use std::time::Duration;

use quotehub_engine::{DelayLine, Hub, RecordSink, SinkTee};
use quotehub_proto::{Flags, now_ns};
use tokio::sync::watch;

pub use quotehub_engine::delay_line::HELD_OVERHEAD_BYTES;

/// How often a line releases what is due: the granularity of the delay
/// (a record is released at most this much after it is due).
pub const RELEASE_TICK: Duration = Duration::from_millis(5);

/// The longest delay a key may have.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// One delay's hub and the line that feeds it.
#[derive(Debug, Clone)]
pub struct DelayedHub {
    /// Serves the connections of keys with this delay.
    pub hub: Hub,
    /// Holds the real hub's records until they are due.
    pub line: Arc<DelayLine>,
}

/// Why the delays configured cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DelayError {
    /// A key's delay is longer than [`MAX_DELAY`].
    #[error("a key's delay of {delay:?} is longer than the most allowed, {MAX_DELAY:?}")]
    TooLong {
        /// The delay asked for.
        delay: Duration,
    },
    /// At the feeds' planned rate, the delay needs more than the line may hold.
    #[error(
        "a key's delay of {delay:?} needs about {needed} bytes of delay line at the planned feed rate of \
         {rate} bytes/s (delay_line_bytes_per_second), more than delay_line_max_bytes = {max}: \
         raise delay_line_max_bytes or shorten the delay"
    )]
    DoesNotFit {
        /// The delay asked for.
        delay: Duration,
        /// Bytes it needs at the planned rate.
        needed: u128,
        /// The planned rate.
        rate: u64,
        /// The cap.
        max: usize,
    },
}

/// Every delayed hub of a server, by delay.
#[derive(Debug, Default)]
pub struct DelayedHubs {
    hubs: Vec<(Duration, DelayedHub)>,
}

impl DelayedHubs {
    /// One delayed hub per distinct delay of `delays`, each keeping `depth`
    /// records per symbol in `real`'s sequence space, fed by a line of at
    /// most `max_bytes` that `real` hands every record it sequences from
    /// now on (make publishers after this). An error, and `real` untouched,
    /// when a delay is too long or cannot fit at `rate` bytes/s.
    pub fn attach(
        real: &mut Hub,
        delays: &[Duration],
        depth: usize,
        max_bytes: usize,
        rate: u64,
    ) -> Result<Self, DelayError> {
        Self::check(delays, max_bytes, rate)?;
        let hubs: Vec<(Duration, DelayedHub)> = delays
            .iter()
            .filter(|delay| !delay.is_zero())
            .map(|&delay| {
                let hub = Hub::with_history_in(depth, real.table().epoch());
                let line = Arc::new(DelayLine::new(delay, max_bytes));
                (delay, DelayedHub { hub, line })
            })
            .collect();
        if !hubs.is_empty() {
            let mut sinks: Vec<Arc<dyn RecordSink>> = real.record_sink().cloned().into_iter().collect();
            sinks.extend(
                hubs.iter()
                    .map(|(_, delayed)| Arc::clone(&delayed.line) as Arc<dyn RecordSink>),
            );
            real.sink_to(Arc::new(SinkTee(sinks)));
        }
        Ok(Self { hubs })
    }

    /// Whether each of `delays` can be served by a line of `max_bytes` when
    /// the feeds bring `rate` bytes/s (as the line counts them): the
    /// start-up check, also made by [`DelayedHubs::attach`].
    pub fn check(delays: &[Duration], max_bytes: usize, rate: u64) -> Result<(), DelayError> {
        for &delay in delays {
            if delay > MAX_DELAY {
                return Err(DelayError::TooLong { delay });
            }
            let needed = delay.as_nanos() * u128::from(rate) / 1_000_000_000;
            if needed > max_bytes as u128 {
                return Err(DelayError::DoesNotFit {
                    delay,
                    needed,
                    rate,
                    max: max_bytes,
                });
            }
        }
        Ok(())
    }

    /// The hub serving connections with `delay`; `None` for real time (or a
    /// delay with no hub, which `attach` never leaves).
    pub fn hub_for(&self, delay: Duration) -> Option<&Hub> {
        self.hubs
            .iter()
            .find(|(this, _)| *this == delay)
            .map(|(_, delayed)| &delayed.hub)
    }

    /// Every delayed hub, shortest delay first.
    pub fn hubs(&self) -> impl Iterator<Item = &DelayedHub> {
        self.hubs.iter().map(|(_, delayed)| delayed)
    }

    /// Starts each line's release task on the current runtime; each ends
    /// when `stopping` turns true.
    pub(crate) fn spawn_releases(&self, stopping: &watch::Receiver<bool>) {
        for (_, delayed) in &self.hubs {
            let line = Arc::clone(&delayed.line);
            let mut publisher = delayed.hub.publisher(Flags::default(), 0);
            let mut stopping = stopping.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(RELEASE_TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            line.release_due(now_ns(), &mut publisher);
                        }
                        _ = stopping.changed() => break,
                    }
                }
            });
        }
    }
}
