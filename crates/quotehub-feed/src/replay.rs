//! Replay pacing: hands a recorded feed's events to a sink at their recorded
//! rhythm, scaled by a speed factor, or as fast as possible.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use quotehub_proto::Event;
use tracing::info;

use crate::error::FeedError;
use crate::source::{FeedStats, RecordedFeed};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the sink takes events.
    Max,
    /// Recorded time divided by this factor: 1.0 is real time, 10.0 ten times faster.
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let trimmed = s.strip_suffix(['x', 'X']).unwrap_or(s);
        match trimmed.parse::<f64>() {
            Ok(factor) if factor.is_finite() && factor > 0.0 => Ok(Speed::Factor(factor)),
            _ => Err(format!(
                "speed must be a positive number (1, 10, 0.5) or \"max\", not {s:?}"
            )),
        }
    }
}

/// Replay settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayOptions {
    /// Pace.
    pub speed: Speed,
    /// Start over at the end, forever (until stopped).
    pub looped: bool,
}

/// Why a replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// The feed ran out (not looping).
    Finished(FeedStats),
    /// The stop signal came.
    Stopped(FeedStats),
}

/// Paces a recorded feed into a sink, on the calling thread.
///
/// Every event's due time is computed from the pass's start instant and the
/// event's offset from the pass's first event, so waits never add up to
/// drift. An event whose due time has passed goes out at once (a slow sink
/// shows up as lag, not as a slower replay). Each new pass of a looped replay
/// starts where the previous one's last event was due.
pub fn replay(
    feed: &mut dyn RecordedFeed,
    options: ReplayOptions,
    stop: &Receiver<()>,
    mut sink: impl FnMut(Event),
) -> Result<ReplayEnd, FeedError> {
    let mut pass_start = Instant::now();
    loop {
        let mut first_ts = None;
        let mut last_due = pass_start;
        while let Some(event) = feed.next_event()? {
            if let Speed::Factor(factor) = options.speed {
                let first = *first_ts.get_or_insert(event.event_ts());
                let offset_ns = event.event_ts().saturating_sub(first) as f64 / factor;
                let due = pass_start + Duration::from_nanos(offset_ns as u64);
                last_due = last_due.max(due);
                if wait_until(due, stop) {
                    return Ok(ReplayEnd::Stopped(feed.stats().clone()));
                }
            } else if stopped(stop) {
                return Ok(ReplayEnd::Stopped(feed.stats().clone()));
            }
            sink(event);
        }
        let stats = feed.stats();
        info!(
            feed = feed.name(),
            events = stats.events,
            rejected = stats.rejected,
            "replay pass finished"
        );
        if !options.looped || stats.events == 0 {
            return Ok(ReplayEnd::Finished(stats.clone()));
        }
        feed.rewind()?;
        pass_start = last_due.max(pass_start);
    }
}

/// Sleeps until `due`; true if the stop signal came first.
fn wait_until(due: Instant, stop: &Receiver<()>) -> bool {
    let now = Instant::now();
    if due <= now {
        return stopped(stop);
    }
    !matches!(stop.recv_timeout(due - now), Err(RecvTimeoutError::Timeout))
}

/// True once a stop was sent or the stopping side hung up.
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_parses_numbers_and_max() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("0.5x".parse::<Speed>(), Ok(Speed::Factor(0.5)));
        for bad in ["0", "-1", "fast", "NaN", "inf"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}
