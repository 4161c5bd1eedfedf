//! One batch of sends: the messages a publisher writes itself for one staged
//! batch (see `direct.rs`), or those a writer writes in one drain of its
//! queue. What its messages observe (ingest to send per record, messages
//! written) is counted locally and added to the hub's stats once, at its
//! end, instead of three atomic adds per message on a cache line every
//! thread writes.
//!
//! Each message is stamped at its own write (SPEC.md, the message header's
//! `send_ts`): callers [`SendBatch::restamp`] before each. Reading the clock
//! once per batch instead was measured (issue 18, `benches/README.md`,
//! "stamp once per batch") and dropped: a read costs ~40 ns here, about 1 %
//! of a delivery, and the shared stamp moved the feed thread's serial
//! writes to a batch's later recipients out of the hub's ingest-to-send
//! figure, where they belong.

use crate::histogram::Pending;
use crate::stats::Stats;

/// A batch's send time and what its messages observed (see the module docs).
#[derive(Debug, Default)]
pub struct SendBatch {
    /// The batch's send time, once its first message took it.
    send_ts: Option<u64>,
    /// Per record sent: hub receive time to `send_ts`.
    ingest_to_send: Pending,
    /// Messages sent.
    messages: u64,
}

impl SendBatch {
    /// The send time of the batch's messages: read from the clock at the
    /// batch's first message (or its first since [`SendBatch::restamp`]).
    pub fn send_ts(&mut self) -> u64 {
        *self.send_ts.get_or_insert_with(quotehub_proto::now_ns)
    }

    /// The next message takes a new send time: the hub waited since the
    /// last one was taken (a writer's socket was full).
    pub fn restamp(&mut self) {
        self.send_ts = None;
    }

    /// Counts one message sent, whose live records spent `in_hub` (ns each,
    /// receive time to send time) in the hub.
    pub fn sent(&mut self, in_hub: impl IntoIterator<Item = u64>) {
        self.ingest_to_send.observe_all_ns(in_hub);
        self.messages += 1;
    }

    /// Adds what the batch counted to `stats` and ends it: the next message
    /// takes a new send time.
    pub fn finish(&mut self, stats: &Stats) {
        self.ingest_to_send.add_to(&stats.ingest_to_send);
        if self.messages > 0 {
            Stats::add(&stats.messages_written, std::mem::take(&mut self.messages));
        }
        self.send_ts = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stamps_every_message_alike_and_counts_them_into_the_stats_at_its_end() {
        let stats = Stats::default();
        let mut batch = SendBatch::default();
        let first = batch.send_ts();
        batch.sent([1_000, 2_000]);
        assert_eq!(batch.send_ts(), first, "one clock read per batch");
        batch.sent([3_000]);
        assert_eq!(Stats::get(&stats.messages_written), 0, "nothing counted before the end");
        batch.finish(&stats);
        assert_eq!(Stats::get(&stats.messages_written), 2);
        assert_eq!(stats.ingest_to_send.count(), 3);
        assert_eq!(stats.ingest_to_send.sum_ns(), 6_000);
        // The next batch counts from nothing, and reads the clock again.
        batch.finish(&stats);
        assert_eq!(Stats::get(&stats.messages_written), 2);
        assert_eq!(stats.ingest_to_send.count(), 3);
        assert!(batch.send_ts() >= first);
    }
}
