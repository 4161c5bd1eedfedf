//! What one connection of a live source reports: that it is up, what it
//! received, what it delivered and what it rejected.

use std::fmt::Display;
use std::sync::atomic::Ordering;

use quotehub_proto::Event;
use tracing::{debug, info, warn};

use super::stats::LiveStats;
use super::{LiveSink, UpstreamState};

/// Rejections logged at `warn` per source; later ones are only counted (and
/// logged at `debug`), so a broken upstream cannot flood the logs.
pub const LOGGED_REJECTIONS: u64 = 100;

/// One connection's view of its source's sink and counters.
#[derive(Debug)]
pub struct Link<'a, S> {
    source: &'a str,
    sink: &'a mut S,
    stats: &'a LiveStats,
    /// The last state told to the sink, shared by the source's connections.
    announced: &'a mut Option<UpstreamState>,
    /// Which connection attempt of the source this is, from 1.
    attempt: u64,
    up: bool,
    events: u64,
}

impl<'a, S: LiveSink> Link<'a, S> {
    pub(crate) fn new(
        source: &'a str,
        sink: &'a mut S,
        stats: &'a LiveStats,
        announced: &'a mut Option<UpstreamState>,
        attempt: u64,
    ) -> Self {
        Self {
            source,
            sink,
            stats,
            announced,
            attempt,
            up: false,
            events: 0,
        }
    }

    /// The connection is ready to receive: counted, logged, and announced as
    /// [`UpstreamState::Up`] unless the sink already knows.
    pub fn up(&mut self) {
        if self.up {
            return;
        }
        self.up = true;
        LiveStats::add(&self.stats.connects, 1);
        self.stats.up.store(true, Ordering::Relaxed);
        info!(source = self.source, attempt = self.attempt, "upstream connected");
        if *self.announced != Some(UpstreamState::Up) {
            *self.announced = Some(UpstreamState::Up);
            self.sink.upstream(UpstreamState::Up);
        }
    }

    /// Counts one line or message of `bytes` bytes.
    pub fn received(&mut self, bytes: usize) {
        LiveStats::add(&self.stats.messages, 1);
        self.add_bytes(bytes);
    }

    /// Counts bytes that are not a whole message (the skipped rest of an over-long line).
    pub fn add_bytes(&mut self, bytes: usize) {
        LiveStats::add(&self.stats.bytes, bytes as u64);
    }

    /// Hands one event to the sink.
    pub fn event(&mut self, event: Event) {
        self.sink.event(event);
        self.delivered();
    }

    /// Lets the sink deliver what it holds; call before waiting for input.
    pub fn flush(&mut self) {
        self.sink.flush();
    }

    /// Counts an event the source delivered through [`Link::sink`] itself.
    pub fn delivered(&mut self) {
        self.events += 1;
        LiveStats::add(&self.stats.events, 1);
    }

    /// Counts and logs one rejected entry: `at` says where (line number,
    /// message and element), `error` why.
    pub fn reject(&mut self, at: impl Display, error: impl Display) {
        let before = self.stats.reject(|| format!("{at}: {error}"));
        if before < LOGGED_REJECTIONS {
            warn!(source = self.source, attempt = self.attempt, %at, %error, "skipped malformed upstream input");
        } else {
            debug!(source = self.source, attempt = self.attempt, %at, %error, "skipped malformed upstream input");
        }
    }

    /// The sink, for sources that deliver something other than [`Event`]s
    /// (count each with [`Link::delivered`]).
    pub fn sink(&mut self) -> &mut S {
        self.sink
    }

    /// The source's name for logs.
    pub fn source(&self) -> &str {
        self.source
    }

    /// Whether [`Link::up`] was called.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Events delivered over this connection.
    pub fn events(&self) -> u64 {
        self.events
    }
}
