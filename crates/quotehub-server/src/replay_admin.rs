//! The hub's own replay as the admin endpoints steer it: a live handle the
//! binary hands the server when it starts a replay.

use quotehub_feed::{ReplayControl, ReplayWindow};

/// The hub's own replay, as the admin endpoints see it.
#[derive(Debug, Clone)]
pub struct ReplayAdmin {
    /// Its control handle.
    pub control: ReplayControl,
    /// What it delivers (shown in the state).
    pub window: ReplayWindow,
    /// The feed, for people (a path or a name).
    pub feed: String,
}
