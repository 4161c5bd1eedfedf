//! The feeds clients may replay for themselves at `/v1/replay?feed=NAME`:
//! a configured list of names, each bound to a file by the operator. A
//! client names a feed, never a path; names are checked when configured.
//! `GET /v1/replay/feeds` lists the names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::replay_pool::ReaderPool;

/// Sessions served at once unless configured otherwise.
pub const DEFAULT_MAX_REPLAY_SESSIONS: usize = 16;

/// Name → file of the feeds offered, and the cap on sessions at once
/// (settings only; the sessions open are counted by [`ReplaySessions`]).
#[derive(Debug, Clone)]
pub struct ReplayFeeds {
    feeds: Arc<BTreeMap<String, PathBuf>>,
    max_sessions: usize,
}

impl Default for ReplayFeeds {
    /// None offered.
    fn default() -> Self {
        Self {
            feeds: Arc::default(),
            max_sessions: DEFAULT_MAX_REPLAY_SESSIONS,
        }
    }
}

/// The replay sessions a running server holds (`state.rs`): how many are
/// open and waiting, per client, under the caps of its [`ReplayFeeds`], and
/// the threads that read their feeds.
#[derive(Debug, Default)]
pub struct ReplaySessions {
    max_sessions: usize,
    open: Arc<AtomicUsize>,
    /// Sessions whose replay is waiting for its client to read (backpressure at work).
    waiting: Arc<AtomicUsize>,
    /// Sessions open per client (API key name, or IP address without keys);
    /// no entry for a client with none, so it holds at most `max_sessions` entries.
    per_client: Arc<PerClient>,
    /// The threads that read sessions' feeds, a chunk at a time.
    readers: Arc<ReaderPool>,
}

/// A session's place under the hub's cap and its client's, given back when dropped.
#[derive(Debug)]
pub struct SessionSlot {
    open: Arc<AtomicUsize>,
    /// The client's count, when the session was admitted under it.
    client: Option<(Arc<PerClient>, String)>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        if let Some((per_client, client)) = &self.client {
            let mut per_client = lock(per_client);
            if let Some(held) = per_client.get_mut(client) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    per_client.remove(client);
                }
            }
        }
    }
}

/// Sessions open per client.
type PerClient = Mutex<HashMap<String, usize>>;

/// Why a session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The hub serves its `max_sessions` already.
    Hub,
    /// This client holds its share already.
    Client,
}

fn lock(per_client: &PerClient) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    // Plain counts, consistent after every critical section.
    per_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// The cap on sessions at once.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }
}

impl ReplaySessions {
    /// No session open yet, under the cap of `feeds`.
    pub fn new(feeds: &ReplayFeeds) -> Self {
        Self {
            max_sessions: feeds.max_sessions,
            ..Self::default()
        }
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

    /// The threads that read sessions' feeds.
    pub(crate) fn readers(&self) -> Arc<ReaderPool> {
        Arc::clone(&self.readers)
    }

    /// A place for one more session of `client` (an API key's name, or an
    /// IP address), unless the hub's cap or the client's `per_client` is reached.
    pub(crate) fn try_open(&self, client: &str, per_client: usize) -> Result<SessionSlot, Full> {
        let held = self.open.fetch_add(1, Ordering::AcqRel);
        let mut slot = SessionSlot {
            open: Arc::clone(&self.open),
            client: None,
        };
        if held >= self.max_sessions {
            return Err(Full::Hub);
        }
        let mut counts = lock(&self.per_client);
        let count = counts.entry(client.to_owned()).or_default();
        if *count >= per_client {
            if *count == 0 {
                counts.remove(client);
            }
            return Err(Full::Client);
        }
        *count += 1;
        slot.client = Some((Arc::clone(&self.per_client), client.to_owned()));
        Ok(slot)
    }
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
        let feeds = ReplaySessions::new(&ReplayFeeds::new([("a".to_owned(), PathBuf::from("/a"))], 2).unwrap());
        let first = feeds.try_open("a", 2);
        let second = feeds.try_open("b", 2);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(feeds.try_open("c", 2).err(), Some(Full::Hub), "a third is over the cap");
        drop(first);
        assert!(feeds.try_open("c", 2).is_ok());
        assert_eq!(feeds.open_sessions(), 1);
    }

    #[test]
    fn each_client_holds_its_share_and_frees_it_on_drop() {
        let feeds = ReplaySessions::new(&ReplayFeeds::new([("a".to_owned(), PathBuf::from("/a"))], 10).unwrap());
        let first = feeds.try_open("10.0.0.1", 2).unwrap();
        let _second = feeds.try_open("10.0.0.1", 2).unwrap();
        assert_eq!(feeds.try_open("10.0.0.1", 2).err(), Some(Full::Client));
        assert!(
            feeds.try_open("10.0.0.2", 2).is_ok(),
            "another client has its own share"
        );
        drop(first);
        assert!(feeds.try_open("10.0.0.1", 2).is_ok());
        assert_eq!(feeds.try_open("x", 0).err(), Some(Full::Client));
        assert!(
            !lock(&feeds.per_client).contains_key("x"),
            "no entry for a client with none"
        );
        assert_eq!(feeds.open_sessions(), 1, "the second is held; the others are dropped");
    }
}
