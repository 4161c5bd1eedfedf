//! The slow-consumer policy: what happens when a client's queue is full.
//!
//! The publisher never waits for a client, so a client that reads slower than
//! its symbols publish must lose something. Today's policy is to close it with
//! close code 1008 (policy violation) and a reason saying so, sent ahead of
//! anything still queued, and to count it. A client is never skipped
//! silently: every record it does receive is in sequence, and a close tells it
//! that more were not sent.

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::warn;

use crate::client::ClientHandle;
use crate::stats::Stats;

/// Applies the policy to a client whose queue of `capacity` is full.
pub(crate) fn on_queue_full(client: &ClientHandle, capacity: usize) {
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: format!("slow consumer: {capacity} messages queued").into(),
    };
    if client.close(frame) {
        Stats::add(&client.stats().slow_consumer_disconnects, 1);
        warn!(client = client.id(), capacity, "closing slow consumer");
    }
}
