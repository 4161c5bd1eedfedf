//! `GET /v1/replay/feeds`: the feeds clients may replay for themselves, and
//! how many sessions are open and waiting.

use tokio::io::AsyncWrite;

use crate::http::{Head, respond_json, respond_text};
use crate::replay_feeds::{ReplayFeeds, ReplaySessions};

/// Serves the list of feeds clients may replay.
pub(crate) async fn serve<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &Head,
    feeds: &ReplayFeeds,
    sessions: &ReplaySessions,
) {
    if head.method != "GET" {
        let _ = respond_text(stream, 405, "the list of replay feeds takes GET\n").await;
        return;
    }
    let body = serde_json::json!({
        "feeds": feeds.names(),
        "open_sessions": sessions.open_sessions(),
        "waiting_sessions": sessions.waiting_sessions(),
        "max_sessions": feeds.max_sessions(),
    });
    let _ = respond_json(stream, 200, &body).await;
}
