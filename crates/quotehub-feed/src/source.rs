//! What every recorded feed source offers, and the counters it keeps.

use std::fmt;
use std::path::{Path, PathBuf};

use tracing::warn;

use quotehub_proto::Event;

use crate::error::{FeedError, LineError};

/// A recorded feed read in order: JSON lines today; IEX TOPS pcap files and the
/// hub's own capture format implement the same trait. Live sources (TCP,
/// upstream WebSocket) push into the same sink as [`crate::replay()`] does.
pub trait RecordedFeed: Send {
    /// The next event in recorded order, or `None` at the end. Malformed
    /// entries are skipped, counted in [`RecordedFeed::stats`] and logged; an
    /// error here means the source itself failed (unreadable file).
    fn next_event(&mut self) -> Result<Option<Event>, FeedError>;

    /// Starts over from the first event, for looped replay.
    fn rewind(&mut self) -> Result<(), FeedError>;

    /// Moves to a point at or before the first event, in feed order, whose
    /// event time is `event_ts` or later, if the feed has an index to find it
    /// with; reading on from there finds it. Feeds without one stay where
    /// they are (the caller scans).
    fn seek_near(&mut self, _event_ts: u64) -> Result<(), FeedError> {
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> &FeedStats;

    /// A name for logs (usually the file path).
    fn name(&self) -> &str;
}

/// Counters a feed source keeps; "nothing lost" means every entry read is
/// either an event or a counted, reported rejection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Events decoded (a paced replay stopped mid-wait decodes one it does not deliver).
    pub events: u64,
    /// Entries rejected (malformed line, unrepresentable price, ...).
    pub rejected: u64,
    /// The first rejections, with where they were (at most [`FeedStats::KEPT_REJECTIONS`]).
    pub first_rejections: Vec<Rejection>,
    /// Completed passes over the feed (for looped replay).
    pub passes: u64,
    /// Events left out by a symbol filter (decoded, valid, not wanted).
    pub filtered: u64,
}

impl FeedStats {
    /// How many rejections are kept with their details.
    pub const KEPT_REJECTIONS: usize = 100;

    /// Counts a rejection of a file's entry and logs it on the first pass
    /// only (looped replays meet the same damage again: reported once).
    pub fn reject_in_file(&mut self, path: &Path, entry: u64, error: LineError) {
        let rejection = Rejection {
            path: path.to_path_buf(),
            line: entry,
            error,
        };
        if self.passes == 0 {
            warn!(%rejection, "skipped a malformed feed entry");
        }
        self.reject(rejection);
    }

    /// Counts a rejection, keeping its details while there is room.
    pub fn reject(&mut self, rejection: Rejection) {
        self.rejected += 1;
        if self.first_rejections.len() < Self::KEPT_REJECTIONS {
            self.first_rejections.push(rejection);
        }
    }
}

/// One rejected entry and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The feed file.
    pub path: PathBuf,
    /// 1-based line number (or record number for binary feeds).
    pub line: u64,
    /// Why it was rejected.
    pub error: LineError,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.error)
    }
}
