//! A client's writer task: drains its queue in batches, each run of records
//! already one binary message (see `queue.rs`), and flushes the socket once
//! per batch.
//!
//! One write syscall per client per batch, not per record, is what makes
//! fan-out cheap: the queue absorbs bursts and the writer catches up in few,
//! large writes.

use bytes::BytesMut;
use futures_util::{Sink, SinkExt};
use quotehub_proto::json::message_to_json;
use quotehub_proto::record::{MESSAGE_HEADER_LEN, rtype};
use quotehub_proto::{Message as Records, MessageHeader, now_ns};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::queue::{Outbound, Queue};
use crate::stats::Stats;
use crate::upgrade::Format;

/// About the most records written between two flushes, so a flood of
/// records cannot delay a flush without bound.
const MAX_RECORDS_PER_FLUSH: usize = 4_096;

/// Where a writer's messages come from and where they go.
pub(crate) struct Writer<'a, S> {
    pub(crate) sink: S,
    pub(crate) queue: Arc<Queue>,
    pub(crate) close: watch::Receiver<Option<CloseFrame>>,
    pub(crate) stats: &'a Stats,
    pub(crate) format: Format,
}

impl<S> Writer<'_, S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    /// Runs until the client is closed (sending its close frame) or the socket fails.
    pub(crate) async fn run(mut self) -> Result<(), WsError> {
        let result = self.write_batches().await;
        // Whatever ended the writer, nothing more may be queued for it.
        self.queue.close();
        result
    }

    async fn write_batches(&mut self) -> Result<(), WsError> {
        let mut batch = Vec::new();
        loop {
            batch.clear();
            let queue = Arc::clone(&self.queue);
            let more = tokio::select! {
                biased;
                _ = self.close.changed() => false,
                more = queue.drain(&mut batch, MAX_RECORDS_PER_FLUSH) => more,
            };
            if !more {
                break;
            }
            let mut closing = None;
            for item in batch.drain(..) {
                match item {
                    // The queue built the message; only its header is left.
                    Outbound::Records(mut run) => {
                        send_records(&mut self.sink, &mut run.bytes, self.format, self.stats).await?;
                    }
                    Outbound::Text(text) => self.sink.feed(Message::text(text)).await?,
                    Outbound::Ping => self.sink.feed(Message::Ping(bytes::Bytes::new())).await?,
                    Outbound::Close(frame) => {
                        closing = Some(frame);
                        break;
                    }
                }
            }
            self.sink.flush().await?;
            if let Some(frame) = closing {
                let _ = self.sink.send(Message::Close(Some(frame))).await;
                let _ = self.sink.close().await;
                return Ok(());
            }
        }
        let frame = self.close.borrow().clone();
        // The peer may have closed first; then these fail and that is fine.
        let _ = self.sink.send(Message::Close(frame)).await;
        let _ = self.sink.close().await;
        Ok(())
    }
}

/// Stamps the message header of `records` (header space first, then
/// records) with the send time and feeds it as one message, binary or as
/// JSON text; leaves `records` empty. Nothing to send is no message.
pub(crate) async fn send_records<S>(
    sink: &mut S,
    records: &mut BytesMut,
    format: Format,
    stats: &Stats,
) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if records.is_empty() {
        return Ok(());
    }
    let send_ts = now_ns();
    records[..MESSAGE_HEADER_LEN].copy_from_slice(&MessageHeader::encode(send_ts));
    observe_latency(&stats.ingest_to_send, &records[MESSAGE_HEADER_LEN..], send_ts);
    let message = records.split().freeze();
    Stats::add(&stats.messages_written, 1);
    match format {
        Format::Binary => sink.feed(Message::Binary(message)).await,
        // JSON clients are for people and debugging: render per client.
        Format::Json => match Records::decode(&message).map(message_to_json) {
            Ok(Ok(text)) => sink.feed(Message::text(text)).await,
            _ => Ok(()),
        },
    }
}

/// Observes, for each quote or trade record of a message, how long it spent
/// in the hub: from its `recv_ts` (bytes 40..48) to the message's send time.
fn observe_latency(histogram: &crate::metrics::Histogram, records: &[u8], send_ts: u64) {
    histogram.observe_all_ns(RecvTimes(records).map(|recv_ts| send_ts.saturating_sub(recv_ts)));
}

/// The hub receive times of the quote and trade records in a run of records.
struct RecvTimes<'a>(&'a [u8]);

impl Iterator for RecvTimes<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        while self.0.len() >= 4 {
            let records = self.0;
            let length = usize::from(u16::from_le_bytes([records[0], records[1]]));
            if length < 4 || length > records.len() {
                return None;
            }
            self.0 = &records[length..];
            let kind = records[2];
            if (kind == rtype::QUOTE || kind == rtype::TRADE) && length >= 48 {
                let mut recv = [0u8; 8];
                recv.copy_from_slice(&records[40..48]);
                let recv_ts = u64::from_le_bytes(recv);
                if recv_ts > 0 {
                    return Some(recv_ts);
                }
            }
        }
        None
    }
}
