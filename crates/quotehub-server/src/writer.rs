//! A client's writer task: drains its queue in batches and writes each run
//! of records (already one binary message with room for its headers, see
//! `queue.rs`) straight to the socket, then flushes once per batch.
//!
//! The writer owns the socket's write half; tungstenite only reads (see
//! `read_side.rs`). So a run goes out as it is, with its frame header
//! written in the space before it: no copy into a write buffer, and one
//! write per run.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{Sink, SinkExt};
use quotehub_proto::json::message_to_json;
use quotehub_proto::record::{MESSAGE_HEADER_LEN, rtype};
use quotehub_proto::{Message as Records, MessageHeader, now_ns};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::frame::{self, opcode};
use crate::queue::{FRAME_SPACE, Outbound, Queue, RUN_HEADER_LEN};
use crate::stats::Stats;
use crate::upgrade::Format;

/// About the most records written between two flushes, so a flood of
/// records cannot delay a flush without bound.
const MAX_RECORDS_PER_FLUSH: usize = 4_096;

/// Where a writer's messages come from and where they go.
pub(crate) struct Writer<'a, W> {
    /// The socket's write half.
    pub(crate) out: W,
    pub(crate) queue: Arc<Queue>,
    pub(crate) close: watch::Receiver<Option<CloseFrame>>,
    pub(crate) stats: &'a Stats,
    pub(crate) format: Format,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    /// Runs until the client is closed (sending its close frame) or the socket fails.
    pub(crate) async fn run(mut self) -> io::Result<()> {
        let result = self.write_batches().await;
        // Whatever ended the writer, nothing more may be queued for it.
        self.queue.close();
        result
    }

    async fn write_batches(&mut self) -> io::Result<()> {
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
            for item in batch.drain(..) {
                match item {
                    Outbound::Records(mut run) => self.send_run(&mut run.bytes).await?,
                    Outbound::Text(text) => self.out.write_all(&frame::frame(opcode::TEXT, text.as_bytes())).await?,
                    Outbound::Ping => self.out.write_all(&frame::frame(opcode::PING, &[])).await?,
                    Outbound::Control(frames) => {
                        self.out.write_all(&frames).await?;
                        // tungstenite answered the client's close: nothing may follow.
                        if frame::holds_close(&frames) {
                            return self.out.flush().await;
                        }
                    }
                    Outbound::Close(frame) => {
                        // The peer may have gone already; then this fails and that is fine.
                        let _ = self.send_close(Some(frame)).await;
                        return Ok(());
                    }
                }
            }
            self.out.flush().await?;
        }
        let frame = self.close.borrow().clone();
        let _ = self.send_close(frame).await;
        Ok(())
    }

    /// Stamps a run's message header, writes its frame header in the space
    /// before it and sends it (binary), or renders it as JSON text.
    async fn send_run(&mut self, run: &mut BytesMut) -> io::Result<()> {
        if run.len() <= RUN_HEADER_LEN {
            return Ok(());
        }
        stamp(&mut run[FRAME_SPACE..], self.stats);
        match self.format {
            Format::Binary => {
                let (header, len) = frame::header(opcode::BINARY, run.len() - FRAME_SPACE);
                let start = FRAME_SPACE - len;
                run[start..FRAME_SPACE].copy_from_slice(&header[..len]);
                self.out.write_all(&run[start..]).await
            }
            // JSON clients are for people and debugging: render per client.
            Format::Json => match Records::decode(&run[FRAME_SPACE..]).map(message_to_json) {
                Ok(Ok(text)) => self.out.write_all(&frame::frame(opcode::TEXT, text.as_bytes())).await,
                _ => Ok(()),
            },
        }
    }

    async fn send_close(&mut self, close: Option<CloseFrame>) -> io::Result<()> {
        let mut payload = Vec::new();
        if let Some(close) = close {
            payload.extend_from_slice(&u16::from(close.code).to_be_bytes());
            payload.extend_from_slice(close.reason.as_bytes());
        }
        self.out.write_all(&frame::frame(opcode::CLOSE, &payload)).await?;
        self.out.flush().await
    }
}

/// Stamps `message` (message header space, then records) with the send
/// time, observes each record's time in the hub and counts the message.
fn stamp(message: &mut [u8], stats: &Stats) {
    let send_ts = now_ns();
    message[..MESSAGE_HEADER_LEN].copy_from_slice(&MessageHeader::encode(send_ts));
    observe_latency(&stats.ingest_to_send, &message[MESSAGE_HEADER_LEN..], send_ts);
    Stats::add(&stats.messages_written, 1);
}

/// For sessions written through tungstenite (replays): stamps `records`
/// (message header space first, then records) and feeds it as one message,
/// binary or as JSON text; leaves `records` empty. Nothing to send is no message.
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
    stamp(records, stats);
    let message = records.split().freeze();
    match format {
        Format::Binary => sink.feed(Message::Binary(message)).await,
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
