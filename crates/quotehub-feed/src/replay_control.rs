//! Run-time control of a replay: pause, resume, speed and seek, from any
//! thread, and what the replay is doing, for an admin endpoint or a client.
//!
//! The replay loop ([`crate::replay::replay_controlled`]) reads one atomic
//! per event to learn whether anything changed, so an uncontrolled replay at
//! full speed pays nothing measurable; it takes the lock only to apply a
//! change or to wait. Waits are on a condition variable the commands signal,
//! so a pause, a new speed or a seek takes effect at once, mid-wait.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::replay::Speed;

/// A shared handle on one replay; clones control the same replay.
#[derive(Debug, Clone)]
pub struct ReplayControl(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    commands: Mutex<Commands>,
    /// Signalled on every command, so a waiting replay re-reads them.
    changed: Condvar,
    /// Bumped on every command; the replay compares it with what it applied.
    generation: AtomicU64,
    /// Events delivered so far.
    delivered: AtomicU64,
    /// Event time of the last delivered event (0 before the first).
    position_ts: AtomicU64,
    /// [`Phase`] as a number.
    phase: AtomicU8,
}

/// What was asked of the replay; the replay applies it between events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Commands {
    pub(crate) paused: bool,
    pub(crate) speed: Speed,
    /// Event time to seek to, until the replay takes it.
    pub(crate) seek: Option<u64>,
    pub(crate) stopped: bool,
}

/// What the replay is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    Starting,
    /// Delivering events (or waiting for the next one's due time).
    Running,
    /// Holding still on a pause: nothing is delivered until resumed.
    Paused,
    /// The feed ran out (not looping) or the replay was stopped.
    Ended,
}

impl Phase {
    /// Its name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Ended => "ended",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Phase::Starting,
            1 => Phase::Running,
            2 => Phase::Paused,
            _ => Phase::Ended,
        }
    }
}

/// A snapshot of a replay's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayState {
    /// What the replay is doing; `Paused` only once it has stopped delivering.
    pub phase: Phase,
    /// Whether a pause is asked for (the phase follows between events).
    pub paused: bool,
    /// The pace asked for.
    pub speed: Speed,
    /// Events delivered so far.
    pub delivered: u64,
    /// Event time of the last delivered event, if any.
    pub position_ts: Option<u64>,
    /// A seek not yet carried out.
    pub seeking: Option<u64>,
}

impl ReplayControl {
    /// A control for a replay starting at `speed`, not paused.
    pub fn new(speed: Speed) -> Self {
        Self(Arc::new(Shared {
            commands: Mutex::new(Commands {
                paused: false,
                speed,
                seek: None,
                stopped: false,
            }),
            changed: Condvar::new(),
            generation: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            position_ts: AtomicU64::new(0),
            phase: AtomicU8::new(0),
        }))
    }

    /// Stops delivering after the current event, keeping the replay's place
    /// in recorded time.
    pub fn pause(&self) {
        self.command(|commands| commands.paused = true);
    }

    /// Continues from where the pause held, at the current speed.
    pub fn resume(&self) {
        self.command(|commands| commands.paused = false);
    }

    /// Changes the pace from now on; recorded time already replayed stays.
    pub fn set_speed(&self, speed: Speed) {
        self.command(|commands| commands.speed = speed);
    }

    /// Goes to the first event at or after `event_ts` (backwards or forwards)
    /// and replays from there; a pause stays in force.
    pub fn seek(&self, event_ts: u64) {
        self.command(|commands| commands.seek = Some(event_ts));
    }

    /// Ends the replay (it returns as stopped).
    pub fn stop(&self) {
        self.command(|commands| commands.stopped = true);
    }

    /// The replay's state now.
    pub fn state(&self) -> ReplayState {
        let commands = *self.lock();
        let position = self.0.position_ts.load(Ordering::Relaxed);
        ReplayState {
            phase: Phase::from_u8(self.0.phase.load(Ordering::Acquire)),
            paused: commands.paused,
            speed: commands.speed,
            delivered: self.0.delivered.load(Ordering::Relaxed),
            position_ts: (self.0.delivered.load(Ordering::Relaxed) > 0).then_some(position),
            seeking: commands.seek,
        }
    }

    fn command(&self, change: impl FnOnce(&mut Commands)) {
        let mut commands = self.lock();
        change(&mut commands);
        self.0.generation.fetch_add(1, Ordering::Release);
        drop(commands);
        self.0.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Commands> {
        // Commands are plain values, consistent after every critical section.
        self.0
            .commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // --- the replay loop's side ---

    /// The generation of commands, read once per event.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// The commands and their generation, read together.
    pub(crate) fn commands(&self) -> (Commands, u64) {
        let commands = self.lock();
        (*commands, self.generation())
    }

    /// Takes a pending seek.
    pub(crate) fn take_seek(&self) -> Option<u64> {
        self.lock().seek.take()
    }

    /// Waits up to `timeout` for a command newer than `generation`.
    pub(crate) fn wait_for_change(&self, generation: u64, timeout: Duration) {
        let commands = self.lock();
        let _ = self
            .0
            .changed
            .wait_timeout_while(commands, timeout, |_| self.generation() == generation);
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.0.phase.store(phase as u8, Ordering::Release);
    }

    pub(crate) fn delivered(&self, event_ts: u64) {
        self.0.position_ts.store(event_ts, Ordering::Relaxed);
        self.0.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_seen_in_the_state_and_bump_the_generation() {
        let control = ReplayControl::new(Speed::Factor(1.0));
        let start = control.generation();
        control.pause();
        control.set_speed(Speed::Max);
        control.seek(42);
        let state = control.state();
        assert_eq!((state.paused, state.speed, state.seeking), (true, Speed::Max, Some(42)));
        assert_eq!(
            (state.phase, state.delivered, state.position_ts),
            (Phase::Starting, 0, None)
        );
        assert_eq!(control.generation(), start + 3);
        assert_eq!(control.take_seek(), Some(42));
        assert_eq!(control.state().seeking, None);
    }

    #[test]
    fn a_command_wakes_a_waiting_replay() {
        let control = ReplayControl::new(Speed::Factor(1.0));
        let generation = control.generation();
        let waker = control.clone();
        let thread = std::thread::spawn(move || waker.resume());
        // Would wait an hour if the command did not wake it.
        control.wait_for_change(generation, Duration::from_secs(3_600));
        thread.join().unwrap();
        assert!(control.generation() > generation);
    }
}
