//! Replay pacing: hands a recorded feed's events to a sink at their recorded
//! rhythm, scaled by a speed factor, or as fast as possible.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use quotehub_proto::Event;
use tracing::{debug, info};

use crate::error::FeedError;
use crate::replay_control::{Phase, ReplayControl};
use crate::replay_window::ReplayWindow;
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

/// `max`, or the factor (`10`, `0.5`): what [`Speed::from_str`](std::str::FromStr) reads.
impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => f.write_str("max"),
            Speed::Factor(factor) => write!(f, "{factor}"),
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
    /// An event read but not delivered (outside the replay's window, or
    /// passed over by a seek); a sink that numbers events may count it.
    fn skipped(&mut self, _event: &Event) {}
    /// True when the sink must see every event a seek passes over (it
    /// numbers them), so a seek may not jump through a feed's index.
    fn counts_skipped(&self) -> bool {
        false
    }
    /// A seek went back in event time, to or before an event already
    /// delivered: events as old as those delivered come again, as at the
    /// start of a looped replay's next pass, so what the sink derives from
    /// the event clock (a hub's bars) starts over rather than taking them
    /// for late ones.
    fn rewound(&mut self) {}
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
/// the replay starts, loops and ends; see [`replay_controlled`] for the rules.
pub fn replay_with_status(
    feed: &mut dyn RecordedFeed,
    options: ReplayOptions,
    stop: &Receiver<()>,
    sink: impl ReplaySink,
) -> Result<ReplayEnd, FeedError> {
    let control = ReplayControl::new(options.speed);
    replay_controlled(feed, options.looped, &ReplayWindow::default(), &control, stop, sink)
}

/// Paces the events of a recorded feed that `window` selects into a sink, on
/// the calling thread, obeying `control` (pause, resume, speed, seek, stop)
/// between events; `control`'s speed is the pace. Returns when the feed runs
/// out (unless `looped`), or when `stop` fires or hangs up, or on
/// [`ReplayControl::stop`].
///
/// Pacing: every event's due time is computed from one base (an instant and
/// the event time replayed at that instant) and the event's distance from it
/// in recorded time, so waits never add up to drift. The base is set by the
/// first delivered event of a pass, and moved on resume, speed change and
/// seek to the recorded time reached at that moment, so nothing bursts out
/// after a pause and nothing jumps on a speed change. An event whose due time
/// has passed goes out at once (a slow sink shows up as lag, not as a slower
/// replay). Each new pass of a looped replay starts where the previous one's
/// last event was due. Events the window leaves out are read, shown to
/// [`ReplaySink::skipped`], and neither paced nor delivered.
pub fn replay_controlled(
    feed: &mut dyn RecordedFeed,
    looped: bool,
    window: &ReplayWindow,
    control: &ReplayControl,
    stop: &Receiver<()>,
    mut sink: impl ReplaySink,
) -> Result<ReplayEnd, FeedError> {
    let mut run = ReplayRun::new(looped, window.clone(), control.clone());
    loop {
        // At full speed, look for the stop before reading on, so nothing
        // is decoded that will not be delivered.
        if stopped(stop) {
            return Ok(run.stopped(feed));
        }
        match run.step(feed, &mut sink)? {
            ReplayStep::Continue => {}
            ReplayStep::Wait { generation, wait } => {
                control.wait_for_change(generation, wait.map_or(STOP_POLL, |wait| wait.min(STOP_POLL)));
            }
            ReplayStep::End(end) => return Ok(end),
        }
    }
}

/// A replay advanced one step at a time by its caller, never waiting
/// itself: [`replay_controlled`] waits between steps on a thread, a server's
/// replay session on a timer of its async runtime, so a session that is
/// paused or waiting for its next event's due time holds no thread. The
/// pacing rules are [`replay_controlled`]'s.
#[derive(Debug)]
pub struct ReplayRun {
    looped: bool,
    window: ReplayWindow,
    control: ReplayControl,
    clock: Clock,
    /// The generation of commands last applied.
    applied: Option<u64>,
    delivered: u64,
    delivered_before_pass: u64,
    /// An event read but not delivered yet: not due, or the first after a seek.
    held: Option<Event>,
    started: bool,
    /// The latest event time delivered since the pass began or the replay
    /// last went back (`None`: nothing since): a seek to it or before it
    /// goes back.
    reached_ts: Option<u64>,
}

/// What one [`ReplayRun::step`] came to.
#[derive(Debug)]
pub enum ReplayStep {
    /// An event was delivered, or a pass started, or a seek was done: step again.
    Continue,
    /// The next event is not due: step again after `wait`, or at once when
    /// the control's generation moves past `generation` (a command came).
    /// `wait` is `None` while paused: only a command changes anything.
    Wait {
        /// The control's generation of commands when the wait began.
        generation: u64,
        /// How long until the next event is due; `None` while paused.
        wait: Option<Duration>,
    },
    /// The replay is over.
    End(ReplayEnd),
}

impl ReplayRun {
    /// A replay of the events `window` selects, obeying `control`, looping
    /// if `looped`; nothing happens until the first [`ReplayRun::step`].
    pub fn new(looped: bool, window: ReplayWindow, control: ReplayControl) -> Self {
        let clock = Clock::new(control.commands().0.speed);
        Self {
            looped,
            window,
            control,
            clock,
            applied: None,
            delivered: 0,
            delivered_before_pass: 0,
            held: None,
            started: false,
            reached_ts: None,
        }
    }

    /// Does what is due now on `feed` (which must be the same feed at every
    /// step) into `sink`: delivers one event, or says how long to wait, or
    /// that the replay is over. Reads the feed (file IO) but never sleeps.
    pub fn step(&mut self, feed: &mut dyn RecordedFeed, sink: &mut impl ReplaySink) -> Result<ReplayStep, FeedError> {
        if !self.started {
            self.started = true;
            self.control.set_phase(Phase::Running);
            sink.status(ReplayStatus::Started);
            if let Some(from) = self.window.from {
                self.held = skip_to(feed, from, &self.window, sink)?;
            }
            return Ok(ReplayStep::Continue);
        }
        let event = match self.held.take() {
            Some(event) => event,
            None => match next_selected(feed, &self.window, sink)? {
                Some(event) => event,
                None => return self.end_pass(feed, sink),
            },
        };
        match pace(&event, &mut self.clock, &self.control, &mut self.applied) {
            Paced::Due => {
                let event_ts = event.event_ts();
                sink.event(event);
                self.control.delivered(event_ts);
                self.delivered += 1;
                self.reached_ts = self.reached_ts.max(Some(event_ts));
            }
            Paced::Seek => match self.control.take_seek() {
                Some(target) => {
                    if self.reached_ts.is_some_and(|reached| target <= reached) {
                        self.reached_ts = None;
                        sink.rewound();
                    }
                    self.held = seek(feed, target, &self.window, sink)?;
                    self.clock.rebase_at_next();
                }
                None => self.held = Some(event),
            },
            Paced::Stopped => return Ok(ReplayStep::End(self.stopped(feed))),
            Paced::Wait { generation, wait } => {
                self.held = Some(event);
                return Ok(ReplayStep::Wait { generation, wait });
            }
        }
        Ok(ReplayStep::Continue)
    }

    /// Ends the replay as stopped.
    pub fn stopped(&mut self, feed: &mut dyn RecordedFeed) -> ReplayEnd {
        self.control.set_phase(Phase::Ended);
        ReplayEnd::Stopped(feed.stats().clone())
    }

    /// The feed ran out: the replay ends, or a looped one starts over.
    fn end_pass(&mut self, feed: &mut dyn RecordedFeed, sink: &mut impl ReplaySink) -> Result<ReplayStep, FeedError> {
        let stats = feed.stats();
        // Passes 1, 10, 100... at INFO: a loop at `max` finishes a pass
        // every fraction of a second, and a line each would flood the log.
        let pass = stats.passes + 1;
        if is_power_of_ten(pass) {
            info!(
                feed = feed.name(),
                pass,
                events = stats.events,
                rejected = stats.rejected,
                delivered = self.delivered,
                "replay pass finished (logged at passes 1, 10, 100, ...)"
            );
        } else {
            debug!(
                feed = feed.name(),
                pass,
                delivered = self.delivered,
                "replay pass finished"
            );
        }
        // A pass that delivered nothing would loop reading forever.
        if !self.looped || self.delivered == self.delivered_before_pass {
            sink.status(ReplayStatus::Ended { events: self.delivered });
            self.control.set_phase(Phase::Ended);
            return Ok(ReplayStep::End(ReplayEnd::Finished(feed.stats().clone())));
        }
        feed.rewind()?;
        sink.status(ReplayStatus::Looped {
            pass: feed.stats().passes,
        });
        self.clock.new_pass();
        self.delivered_before_pass = self.delivered;
        self.reached_ts = None;
        if let Some(from) = self.window.from {
            self.held = skip_to(feed, from, &self.window, sink)?;
        }
        Ok(ReplayStep::Continue)
    }
}

/// The next event the window selects, past those it does not.
fn next_selected(
    feed: &mut dyn RecordedFeed,
    window: &ReplayWindow,
    sink: &mut impl ReplaySink,
) -> Result<Option<Event>, FeedError> {
    while let Some(event) = feed.next_event()? {
        if window.admits(&event) {
            return Ok(Some(event));
        }
        sink.skipped(&event);
    }
    Ok(None)
}

/// Goes to the first selected event at or after `event_ts`, from the start
/// of the feed. The only place a replay moves in a feed other than reading
/// on: an indexed feed skips most of the scan.
fn seek(
    feed: &mut dyn RecordedFeed,
    event_ts: u64,
    window: &ReplayWindow,
    sink: &mut impl ReplaySink,
) -> Result<Option<Event>, FeedError> {
    feed.rewind()?;
    // An indexed feed (a capture) jumps close to the time; the rest is read.
    if !sink.counts_skipped() {
        feed.seek_near(event_ts)?;
    }
    skip_to(feed, event_ts, window, sink)
}

/// Reads on to the first selected event at or after `event_ts`.
fn skip_to(
    feed: &mut dyn RecordedFeed,
    event_ts: u64,
    window: &ReplayWindow,
    sink: &mut impl ReplaySink,
) -> Result<Option<Event>, FeedError> {
    while let Some(event) = next_selected(feed, window, sink)? {
        if event.event_ts() >= event_ts {
            return Ok(Some(event));
        }
        sink.skipped(&event);
    }
    Ok(None)
}

/// What came of looking at an event's due time.
enum Paced {
    /// Deliver it now.
    Due,
    /// A seek came: the event is not delivered.
    Seek,
    /// Stop the replay.
    Stopped,
    /// Not due yet: see [`ReplayStep::Wait`].
    Wait { generation: u64, wait: Option<Duration> },
}

/// Longest wait between two looks at the stop channel (commands, including
/// [`ReplayControl::stop`], wake the wait at once).
const STOP_POLL: Duration = Duration::from_millis(50);

/// Applies new commands, then says whether `event` is due.
fn pace(event: &Event, clock: &mut Clock, control: &ReplayControl, applied: &mut Option<u64>) -> Paced {
    let generation = control.generation();
    if *applied != Some(generation) {
        let (commands, generation) = control.commands();
        *applied = Some(generation);
        if commands.stopped {
            return Paced::Stopped;
        }
        let now = Instant::now();
        clock.set_speed(now, commands.speed, event.event_ts());
        if commands.paused {
            clock.pause(now, event.event_ts());
            control.set_phase(Phase::Paused);
        } else {
            clock.resume(now);
            control.set_phase(Phase::Running);
        }
        if commands.seek.is_some() {
            return Paced::Seek;
        }
    }
    if clock.is_paused() {
        return Paced::Wait { generation, wait: None };
    }
    let now = Instant::now();
    match clock.due(event.event_ts()) {
        Some(due) if due > now => Paced::Wait {
            generation,
            wait: Some(due - now),
        },
        _ => Paced::Due,
    }
}

/// Maps event time to instants: `event_ts` is due at
/// `base_instant + (event_ts - base_ts) / factor`.
#[derive(Debug)]
struct Clock {
    speed: Speed,
    /// (instant, event time replayed at that instant); set by the next event when `None`.
    base: Option<(Instant, u64)>,
    /// Where the next base's instant must be, at the earliest (a new pass
    /// starts where the last one's last event was due).
    start_at: Option<Instant>,
    /// The latest due time handed out.
    last_due: Option<Instant>,
    /// While paused: the recorded time to resume from (`None`: from the next
    /// event, as after a seek or before anything was paced).
    paused_at: Option<Option<u64>>,
}

impl Clock {
    fn new(speed: Speed) -> Self {
        Self {
            speed,
            base: None,
            start_at: None,
            last_due: None,
            paused_at: None,
        }
    }

    /// When `event_ts` is due; `None` at full speed (now).
    fn due(&mut self, event_ts: u64) -> Option<Instant> {
        let Speed::Factor(factor) = self.speed else { return None };
        let start_at = self.start_at.take();
        let (instant, base_ts) = *self
            .base
            .get_or_insert_with(|| (start_at.unwrap_or_else(Instant::now), event_ts));
        let due = instant + offset_from_start(base_ts, event_ts, factor);
        self.last_due = Some(self.last_due.map_or(due, |last| last.max(due)));
        Some(due)
    }

    /// The event time replayed at `now`, no later than `next_ts` (the event
    /// waited for): a replay running late does not skip ahead.
    fn position(&self, now: Instant, next_ts: u64) -> Option<u64> {
        let (instant, base_ts) = self.base?;
        let Speed::Factor(factor) = self.speed else { return None };
        let elapsed = now.saturating_duration_since(instant).as_nanos() as f64 * factor;
        Some(base_ts.saturating_add(elapsed as u64).min(next_ts).max(base_ts))
    }

    fn set_speed(&mut self, now: Instant, speed: Speed, next_ts: u64) {
        if speed == self.speed {
            return;
        }
        let position = self.position(now, next_ts);
        self.speed = speed;
        self.base = match (speed, position) {
            (Speed::Factor(_), Some(ts)) if self.paused_at.is_none() => Some((now, ts)),
            // From full speed the next event sets it; while paused, the resume.
            _ => None,
        };
    }

    fn pause(&mut self, now: Instant, next_ts: u64) {
        if self.paused_at.is_none() {
            self.paused_at = Some(self.position(now, next_ts));
            self.base = None;
            self.start_at = None;
        }
    }

    fn resume(&mut self, now: Instant) {
        if let Some(held) = self.paused_at.take() {
            self.base = match (self.speed, held) {
                (Speed::Factor(_), Some(ts)) => Some((now, ts)),
                _ => None,
            };
        }
    }

    fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// After a seek: the next event is due at once (or at the resume) and sets the base.
    fn rebase_at_next(&mut self) {
        self.base = None;
        self.start_at = None;
        if self.paused_at.is_some() {
            self.paused_at = Some(None);
        }
    }

    /// A looped replay's next pass starts where the last one's last event was due.
    fn new_pass(&mut self) {
        self.base = None;
        self.start_at = self.last_due;
    }
}

/// How long after its pass starts an event is due: its distance from the
/// pass's first event in recorded time, divided by the speed factor. Events
/// stamped before the first one are due at once.
fn offset_from_start(first_ts: u64, event_ts: u64, factor: f64) -> Duration {
    Duration::from_nanos((event_ts.saturating_sub(first_ts) as f64 / factor) as u64)
}

/// True once a stop was sent or the stopping side hung up.
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty))
}

/// 1, 10, 100, ...
fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JsonLinesFile;

    #[test]
    fn only_passes_1_10_100_are_logged_at_info() {
        let logged: Vec<u64> = (1..=2_000).filter(|&pass| is_power_of_ten(pass)).collect();
        assert_eq!(logged, [1, 10, 100, 1_000]);
    }

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

    /// A feed of `n` trades, symbols S0, S1, S0, ... one second apart.
    fn numbered_feed(tag: &str, n: u64) -> (std::path::PathBuf, JsonLinesFile) {
        let dir = std::env::temp_dir().join(format!("quotehub-replay-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.jsonl");
        let lines: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"ev":"T","sym":"S{}","p":1.5,"s":1,"t":{}}}"#, i % 2, at(i + 1)))
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let feed = JsonLinesFile::open(&path).unwrap();
        (dir, feed)
    }

    const SECOND: u64 = 1_000_000_000;

    /// `second` seconds into the test feeds' day.
    fn at(second: u64) -> u64 {
        1_700_000_000 * SECOND + second * SECOND
    }

    fn second_of(ts: u64) -> u64 {
        ts / SECOND - 1_700_000_000
    }

    /// Records delivered event times (in s), counts skipped events, and
    /// notes how many events were delivered at each rewind; runs `on_event`
    /// after each delivery.
    struct Recorder<F: FnMut(u64)> {
        delivered: Vec<u64>,
        skipped: u64,
        rewound_after: Vec<usize>,
        on_event: F,
    }

    impl<F: FnMut(u64)> ReplaySink for &mut Recorder<F> {
        fn event(&mut self, event: Event) {
            self.delivered.push(second_of(event.event_ts()));
            (self.on_event)(second_of(event.event_ts()));
        }
        fn status(&mut self, _status: ReplayStatus) {}
        fn skipped(&mut self, _event: &Event) {
            self.skipped += 1;
        }
        fn rewound(&mut self) {
            self.rewound_after.push(self.delivered.len());
        }
    }

    #[test]
    fn a_window_delivers_exactly_its_events() {
        let (dir, mut feed) = numbered_feed("window", 10);
        let window = ReplayWindow::parse(Some(&at(3).to_string()), Some(&at(9).to_string()), Some("S0")).unwrap();
        let control = ReplayControl::new(Speed::Max);
        let (_keep, stop) = std::sync::mpsc::channel();
        let mut recorder = Recorder {
            delivered: vec![],
            skipped: 0,
            rewound_after: vec![],
            on_event: |_| {},
        };
        let end = replay_controlled(&mut feed, false, &window, &control, &stop, &mut recorder).unwrap();
        // S0 is at odd seconds (1, 3, 5, ...): 3, 5 and 7 are in [3, 9).
        assert_eq!(recorder.delivered, [3, 5, 7]);
        assert_eq!(recorder.skipped, 7);
        assert!(matches!(end, ReplayEnd::Finished(_)));
        let state = control.state();
        assert_eq!(
            (state.phase, state.delivered, state.position_ts),
            (Phase::Ended, 3, Some(at(7)))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Replays `feed` at full speed, seeking to second 2 when second 3 is
    /// first delivered and to second 8 when it comes again; returns the
    /// seconds delivered, how many events the replay loop skipped, and how
    /// many were delivered at each rewind.
    fn replay_seeking_at_3(feed: &mut dyn RecordedFeed) -> (Vec<u64>, u64, Vec<usize>) {
        let control = ReplayControl::new(Speed::Max);
        let commander = control.clone();
        let (_keep, stop) = std::sync::mpsc::channel();
        let mut seeks = vec![at(8), at(2)];
        let mut recorder = Recorder {
            delivered: vec![],
            skipped: 0,
            rewound_after: vec![],
            on_event: move |second| {
                if second == 3
                    && let Some(target) = seeks.pop()
                {
                    commander.seek(target);
                }
            },
        };
        replay_controlled(feed, false, &ReplayWindow::default(), &control, &stop, &mut recorder).unwrap();
        (recorder.delivered, recorder.skipped, recorder.rewound_after)
    }

    #[test]
    fn a_seek_jumps_backwards_and_forwards() {
        let (dir, mut feed) = numbered_feed("seek", 10);
        let (delivered, skipped, rewound_after) = replay_seeking_at_3(&mut feed);
        // 1..3, back to 2 (the first delivery of 3 asks), and when 3 comes
        // again forward to 8, then on to the end.
        assert_eq!(delivered, [1, 2, 3, 2, 3, 8, 9, 10]);
        // The sink is told of the seek back, before 2 comes again, and not
        // of the seek forward.
        assert_eq!(rewound_after, [3]);
        assert!(skipped > 0, "JSON lines are read up to the time");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_seek_in_a_capture_jumps_through_its_index() {
        let (dir, mut lines) = numbered_feed("seek-capture", 10);
        let path = dir.join("feed.qhc");
        let mut writer = crate::CaptureWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        while let Some(event) = lines.next_event().unwrap() {
            writer.write_event(&event).unwrap();
        }
        writer.finish().unwrap();
        let (delivered, skipped, rewound_after) = replay_seeking_at_3(&mut crate::CaptureFile::open(&path).unwrap());
        assert_eq!(delivered, [1, 2, 3, 2, 3, 8, 9, 10]);
        assert_eq!(rewound_after, [3]);
        // The index found the events; none was read through the replay loop.
        assert_eq!(skipped, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pause_holds_until_resumed_and_a_new_speed_takes_effect_mid_wait() {
        let (dir, mut feed) = numbered_feed("pause", 6);
        // A pace no test would finish at: only the speed change lets it end.
        let control = ReplayControl::new(Speed::Max);
        let commander = control.clone();
        let (_keep, stop) = std::sync::mpsc::channel();
        let mut recorder = Recorder {
            delivered: vec![],
            skipped: 0,
            rewound_after: vec![],
            on_event: move |second| match second {
                2 => commander.pause(),
                4 => commander.set_speed(Speed::Factor(1e-6)),
                _ => {}
            },
        };
        let watcher = control.clone();
        let driver = std::thread::spawn(move || {
            // Wait for the replay to hold still, and see it deliver nothing more.
            while watcher.state().phase != Phase::Paused {
                std::thread::yield_now();
            }
            let held = watcher.state().delivered;
            watcher.resume();
            // Now crawling at a millionth of real time: event 6 is due in
            // eleven days unless the new speed applies at once.
            while watcher.state().delivered < 4 || watcher.state().phase != Phase::Running {
                std::thread::yield_now();
            }
            watcher.set_speed(Speed::Factor(1e9));
            held
        });
        replay_controlled(
            &mut feed,
            false,
            &ReplayWindow::default(),
            &control,
            &stop,
            &mut recorder,
        )
        .unwrap();
        assert_eq!(driver.join().unwrap(), 2, "nothing delivered while paused");
        assert_eq!(recorder.delivered, [1, 2, 3, 4, 5, 6]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn speed_parses_numbers_and_max() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("0.5x".parse::<Speed>(), Ok(Speed::Factor(0.5)));
        assert_eq!(Speed::Factor(2.5).to_string().parse::<Speed>(), Ok(Speed::Factor(2.5)));
        assert_eq!(Speed::Max.to_string(), "max");
        for bad in ["0", "-1", "fast", "NaN", "inf"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}
