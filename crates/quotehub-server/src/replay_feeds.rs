//! The feeds clients may replay for themselves at `/v1/replay?feed=NAME`:
//! a configured list of names, each bound to a file by the operator. A
//! client names a feed, never a path; names are checked when configured.
//! `GET /v1/replay/feeds` lists the names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWrite;

use crate::http::{Head, respond_json, respond_text};

/// Where the list of replayable feeds is served.
pub const REPLAY_FEEDS_PATH: &str = "/v1/replay/feeds";

/// Sessions served at once unless configured otherwise.
pub const DEFAULT_MAX_REPLAY_SESSIONS: usize = 16;

/// Name → file of the feeds offered, and the cap on sessions at once.
#[derive(Debug, Clone)]
pub struct ReplayFeeds {
    feeds: Arc<BTreeMap<String, PathBuf>>,
    max_sessions: usize,
    open: Arc<AtomicUsize>,
    /// Sessions whose replay is waiting for its client to read (backpressure at work).
    waiting: Arc<AtomicUsize>,
}

impl Default for ReplayFeeds {
    /// None offered.
    fn default() -> Self {
        Self {
            feeds: Arc::default(),
            max_sessions: DEFAULT_MAX_REPLAY_SESSIONS,
            open: Arc::default(),
            waiting: Arc::default(),
        }
    }
}

/// A session's place under the cap, given back when dropped.
#[derive(Debug)]
pub struct SessionSlot(Arc<AtomicUsize>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `name` may name a feed: 1 to 64 letters, digits, `-`, `_` or
/// `.`, not starting with `.` (so never a path, nor `..`).
pub fn valid_feed_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ReplayFeeds {
    /// Offers these feeds, at most `max_sessions` sessions at once; a bad
    /// name is an error that names it.
    pub fn new(feeds: impl IntoIterator<Item = (String, PathBuf)>, max_sessions: usize) -> Result<Self, String> {
        let feeds: BTreeMap<String, PathBuf> = feeds.into_iter().collect();
        if let Some(bad) = feeds.keys().find(|name| !valid_feed_name(name)) {
            return Err(format!(
                "replay feed name {bad:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
            ));
        }
        Ok(Self {
            feeds: Arc::new(feeds),
            max_sessions,
            open: Arc::default(),
            waiting: Arc::default(),
        })
    }

    /// The names offered, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.feeds.keys().map(String::as_str).collect()
    }

    /// The file of a feed offered under `name`.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.feeds.get(name).map(PathBuf::as_path)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Sessions whose replay waits for its client to read right now.
    pub fn waiting_sessions(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The counter of waiting sessions, for a session's replay thread.
    pub(crate) fn waiting_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.waiting)
    }

    /// The cap on sessions at once.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// A place for one more session, unless the cap is reached.
    pub(crate) fn try_open(&self) -> Option<SessionSlot> {
        let held = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = SessionSlot(Arc::clone(&self.open));
        (held < self.max_sessions).then_some(slot)
    }
}

/// Serves the list at [`REPLAY_FEEDS_PATH`]; false for other paths.
pub(crate) async fn serve_list<S: AsyncWrite + Unpin>(stream: &mut S, head: &Head, feeds: &ReplayFeeds) -> bool {
    if head.path != REPLAY_FEEDS_PATH {
        return false;
    }
    if head.method != "GET" {
        let _ = respond_text(stream, 405, "the list of replay feeds takes GET\n").await;
        return true;
    }
    let body = serde_json::json!({
        "feeds": feeds.names(),
        "open_sessions": feeds.open_sessions(),
        "waiting_sessions": feeds.waiting_sessions(),
        "max_sessions": feeds.max_sessions(),
    });
    let _ = respond_json(stream, 200, &body).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_names_never_paths() {
        for good in ["bundled", "iex-2017.07.10", "A_1"] {
            assert!(valid_feed_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "../etc/passwd",
            "a\\b",
            "a b",
            "%2e%2e",
            &"x".repeat(65),
        ] {
            assert!(!valid_feed_name(bad), "{bad}");
        }
        assert!(ReplayFeeds::new([("../x".to_owned(), PathBuf::from("/x"))], 1).is_err());
    }

    #[test]
    fn the_cap_counts_open_sessions_and_frees_on_drop() {
        let feeds = ReplayFeeds::new([("a".to_owned(), PathBuf::from("/a"))], 2).unwrap();
        let first = feeds.try_open();
        let second = feeds.try_open();
        assert!(first.is_some() && second.is_some());
        assert!(feeds.try_open().is_none(), "a third is over the cap");
        drop(first);
        assert!(feeds.try_open().is_some());
        assert_eq!(feeds.open_sessions(), 1);
    }
}
