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

/// A change of a replay's state, for status records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStatus {
    /// The first pass begins.
    Started,
    /// A looped replay starts pass `pass` (1 for the second pass).
    Looped {
        /// The pass now starting.
        pass: u64,
    },
    /// The feed ran out and the replay stops.
    Ended {
        /// Events decoded over all passes.
        events: u64,
    },
}

/// Where [`replay_with_status`] delivers events and state changes.
pub trait ReplaySink {
    /// One event, at its due time.
    fn event(&mut self, event: Event);
    /// A state change.
    fn status(&mut self, status: ReplayStatus);
}

/// Adapts an event closure for [`replay`], which has no use for states.
struct EventsOnly<F>(F);

impl<F: FnMut(Event)> ReplaySink for EventsOnly<F> {
    fn event(&mut self, event: Event) {
        (self.0)(event);
    }
    fn status(&mut self, _status: ReplayStatus) {}
}

/// Why a replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// The feed ran out (not looping).
    Finished(FeedStats),
    /// The stop signal came.
    Stopped(FeedStats),
}

/// Paces a recorded feed into `sink`, on the calling thread; see
/// [`replay_with_status`] for the pacing rules.
pub fn replay(
    feed: &mut dyn RecordedFeed,
    options: ReplayOptions,
    stop: &Receiver<()>,
    sink: impl FnMut(Event),
) -> Result<ReplayEnd, FeedError> {
    replay_with_status(feed, options, stop, EventsOnly(sink))
}

/// Paces a recorded feed into a sink, on the calling thread, telling it when
/// the replay starts, loops and ends.
///
/// Every event's due time is computed from the pass's start instant and the
/// event's offset from the pass's first event, so waits never add up to
/// drift. An event whose due time has passed goes out at once (a slow sink
/// shows up as lag, not as a slower replay). Each new pass of a looped replay
/// starts where the previous one's last event was due.
pub fn replay_with_status(
    feed: &mut dyn RecordedFeed,
    options: ReplayOptions,
    stop: &Receiver<()>,
    mut sink: impl ReplaySink,
) -> Result<ReplayEnd, FeedError> {
    let mut pass_start = Instant::now();
    sink.status(ReplayStatus::Started);
    loop {
        let mut first_ts = None;
        let mut last_due = pass_start;
        loop {
            // At full speed, look for the stop before reading on, so nothing
            // is decoded that will not be delivered.
            if options.speed == Speed::Max && stopped(stop) {
                return Ok(ReplayEnd::Stopped(feed.stats().clone()));
            }
            let Some(event) = feed.next_event()? else { break };
            if let Speed::Factor(factor) = options.speed {
                let first = *first_ts.get_or_insert(event.event_ts());
                let due = pass_start + offset_from_start(first, event.event_ts(), factor);
                last_due = last_due.max(due);
                if wait_until(due, stop) {
                    return Ok(ReplayEnd::Stopped(feed.stats().clone()));
                }
            }
            sink.event(event);
        }
        let stats = feed.stats();
        info!(
            feed = feed.name(),
            events = stats.events,
            rejected = stats.rejected,
            "replay pass finished"
        );
        if !options.looped || stats.events == 0 {
            sink.status(ReplayStatus::Ended { events: stats.events });
            return Ok(ReplayEnd::Finished(stats.clone()));
        }
        feed.rewind()?;
        sink.status(ReplayStatus::Looped {
            pass: feed.stats().passes,
        });
        pass_start = last_due.max(pass_start);
    }
}

/// How long after its pass starts an event is due: its distance from the
/// pass's first event in recorded time, divided by the speed factor. Events
/// stamped before the first one are due at once.
fn offset_from_start(first_ts: u64, event_ts: u64, factor: f64) -> Duration {
    Duration::from_nanos((event_ts.saturating_sub(first_ts) as f64 / factor) as u64)
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
    use crate::JsonLinesFile;

    #[test]
    fn due_times_come_from_recorded_offsets_scaled_by_speed() {
        let second = 1_000_000_000;
        // TC0: real time. TC1: ten times faster. TC2: half speed. TC3: out of order.
        assert_eq!(offset_from_start(5 * second, 7 * second, 1.0), Duration::from_secs(2));
        assert_eq!(
            offset_from_start(5 * second, 7 * second, 10.0),
            Duration::from_millis(200)
        );
        assert_eq!(offset_from_start(5 * second, 7 * second, 0.5), Duration::from_secs(4));
        assert_eq!(offset_from_start(5 * second, 4 * second, 1.0), Duration::ZERO);
        // Offsets are absolute, not summed: the millionth event of a 1 µs
        // rhythm is due at exactly one second.
        assert_eq!(offset_from_start(0, 1_000_000 * 1_000, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn looped_replay_starts_over_until_stopped() {
        let dir = std::env::temp_dir().join(format!("quotehub-replay-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.jsonl");
        let lines: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    r#"{{"ev":"T","sym":"S{i}","p":1.5,"s":1,"t":{}}}"#,
                    1_700_000_000_000_000_000u64 + i
                )
            })
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let mut feed = JsonLinesFile::open(&path).unwrap();
        let (stop_tx, stop) = std::sync::mpsc::channel();
        let mut seen = Vec::new();
        let end = replay(
            &mut feed,
            ReplayOptions {
                speed: Speed::Max,
                looped: true,
            },
            &stop,
            |event| {
                seen.push(event.symbol().to_string());
                if seen.len() == 7 {
                    stop_tx.send(()).unwrap();
                }
            },
        )
        .unwrap();
        assert_eq!(seen, ["S0", "S1", "S2", "S0", "S1", "S2", "S0"]);
        let ReplayEnd::Stopped(stats) = end else {
            panic!("{end:?}")
        };
        assert_eq!((stats.passes, stats.events), (2, 7));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A sink that records events and state changes in one shared timeline.
    #[derive(Default, Clone)]
    struct Timeline(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl ReplaySink for Timeline {
        fn event(&mut self, event: Event) {
            self.0.borrow_mut().push(event.symbol().to_string());
        }
        fn status(&mut self, status: ReplayStatus) {
            self.0.borrow_mut().push(format!("{status:?}"));
        }
    }

    #[test]
    fn replay_reports_start_loops_and_end() {
        let dir = std::env::temp_dir().join(format!("quotehub-replay-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.jsonl");
        std::fs::write(
            &path,
            "{\"ev\":\"T\",\"sym\":\"A\",\"p\":1,\"s\":1,\"t\":1700000000000}\n",
        )
        .unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let once = Timeline::default();
        let options = ReplayOptions {
            speed: Speed::Max,
            looped: false,
        };
        replay_with_status(&mut JsonLinesFile::open(&path).unwrap(), options, &stop, once.clone()).unwrap();
        assert_eq!(*once.0.borrow(), ["Started", "A", "Ended { events: 1 }"]);

        // A looped replay reports each new pass; stop it from the sink.
        #[derive(Clone)]
        struct Stopping(Timeline, std::sync::mpsc::Sender<()>);
        impl ReplaySink for Stopping {
            fn event(&mut self, event: Event) {
                self.0.event(event);
                if self.0.0.borrow().len() >= 5 {
                    let _ = self.1.send(());
                }
            }
            fn status(&mut self, status: ReplayStatus) {
                self.0.status(status);
            }
        }
        let (stop_tx, stop) = std::sync::mpsc::channel();
        let looped = Timeline::default();
        let options = ReplayOptions {
            speed: Speed::Max,
            looped: true,
        };
        let end = replay_with_status(
            &mut JsonLinesFile::open(&path).unwrap(),
            options,
            &stop,
            Stopping(looped.clone(), stop_tx),
        );
        assert!(matches!(end, Ok(ReplayEnd::Stopped(_))));
        assert_eq!(
            *looped.0.borrow(),
            ["Started", "A", "Looped { pass: 1 }", "A", "Looped { pass: 2 }", "A"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unlooped_replay_finishes_with_its_counts() {
        let dir = std::env::temp_dir().join(format!("quotehub-replay-once-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.jsonl");
        std::fs::write(
            &path,
            "{\"ev\":\"T\",\"sym\":\"A\",\"p\":1,\"s\":1,\"t\":1700000000000}\nbad\n",
        )
        .unwrap();
        let mut feed = JsonLinesFile::open(&path).unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let mut count = 0;
        let end = replay(
            &mut feed,
            ReplayOptions {
                speed: Speed::Factor(1.0),
                looped: false,
            },
            &stop,
            |_| count += 1,
        );
        let Ok(ReplayEnd::Finished(stats)) = end else {
            panic!("{end:?}")
        };
        assert_eq!((count, stats.events, stats.rejected, stats.passes), (1, 1, 1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
