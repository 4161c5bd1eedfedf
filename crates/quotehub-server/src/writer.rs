//! A client's writer task: drains its queue in batches and writes each run
//! of records (one binary message, see `run.rs`) to the socket behind its
//! headers in one vectored write, then flushes once per batch.
//!
//! The writer owns the socket's write half; tungstenite only reads (see
//! `read_side.rs`). So a run goes out as it is: its parts (copied records,
//! and bodies shared with other clients) are never gathered into a write
//! buffer, and a run costs one write.

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt};
use quotehub_proto::json::message_to_json;
use quotehub_proto::record::{MESSAGE_HEADER_LEN, rtype};
use quotehub_proto::{Message as Records, MessageHeader};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::deadline::{self, Deadline};
use crate::message_slices::MessageSlices;
use crate::upgrade::Format;
use quotehub_engine::frame::{self, opcode};
use quotehub_engine::queue::{Outbound, Queue};
use quotehub_engine::run::{self, Run};
use quotehub_engine::send_batch::SendBatch;
use quotehub_engine::stats::Stats;

/// About the most records written between two flushes, so a flood of
/// records cannot delay a flush without bound.
const MAX_RECORDS_PER_FLUSH: usize = 4_096;

/// Where a writer's messages come from and where they go.
pub(crate) struct Writer<'a, W> {
    /// The socket's write half, every write under a deadline.
    pub(crate) out: Deadline<W>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) close: watch::Receiver<Option<CloseFrame>>,
    pub(crate) stats: &'a Stats,
    pub(crate) format: Format,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    /// Runs until the client is closed (sending its close frame) or the
    /// socket fails, a write timing out included (see `deadline.rs`).
    pub(crate) async fn run(mut self) -> io::Result<()> {
        let result = self.write_batches().await;
        // Whatever ended the writer, nothing more may be queued for it.
        self.queue.close();
        if let Err(err) = &result {
            deadline::count(self.stats, err);
        }
        result
    }

    /// Whether the client was told to close since the writer last looked: the
    /// rest of a batch then waits no more (one atomic load per item).
    fn close_signalled(&self) -> bool {
        self.close.has_changed().unwrap_or(true)
    }

    async fn write_batches(&mut self) -> io::Result<()> {
        let mut batch = Vec::new();
        // What the drain sends, counted into the stats once (see
        // `send_batch.rs`).
        let mut sends = SendBatch::default();
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
                // The rest of a message the publisher began must still go out whole.
                if self.close_signalled() && !matches!(item, Outbound::Unfinished(_)) {
                    break;
                }
                let written = match item {
                    Outbound::Records(run) => {
                        // Stamped at its own write.
                        sends.restamp();
                        self.send_run(&run, &mut sends).await
                    }
                    Outbound::Text(text) => self.out.write_all(&frame::frame(opcode::TEXT, text.as_bytes())).await,
                    Outbound::Ping => self.out.write_all(&frame::frame(opcode::PING, &[])).await,
                    Outbound::Control(frames) => {
                        // tungstenite answered the client's close: nothing may follow.
                        if frame::holds_close(&frames) {
                            sends.finish(self.stats);
                            self.out.begin_closing();
                            self.out.write_all(&frames).await?;
                            return self.out.flush().await;
                        }
                        self.out.write_all(&frames).await
                    }
                    Outbound::Close(frame) => {
                        sends.finish(self.stats);
                        return self.send_close(Some(frame)).await;
                    }
                    // Begun by a push from the publisher's thread (see `direct.rs`).
                    Outbound::Unfinished(rest) => self.out.write_all(&rest).await,
                };
                if let Err(err) = written {
                    // What the drain sent before the failure still counts.
                    sends.finish(self.stats);
                    return Err(err);
                }
            }
            sends.finish(self.stats);
            self.out.flush().await?;
        }
        let frame = self.close.borrow().clone();
        self.send_close(frame).await
    }

    /// Stamps a run's message header with the send time and sends
    /// it behind its frame header (binary), or renders it as JSON text.
    async fn send_run(&mut self, run: &Run, sends: &mut SendBatch) -> io::Result<()> {
        if run.parts.is_empty() {
            return Ok(());
        }
        let send_ts = sends.send_ts();
        // Snapshots and resumed history carry old receive times: untimed.
        let timed = (!run.catch_up).then(|| run.parts.iter().map(|part| &part[..]));
        count_sent(timed.into_iter().flatten(), send_ts, sends);
        let header = MessageHeader::encode(send_ts);
        match self.format {
            Format::Binary => {
                let (frame_header, len) = frame::header(opcode::BINARY, MESSAGE_HEADER_LEN + run.len());
                let mut head = [0u8; frame::FRAME_HEADER_MAX + MESSAGE_HEADER_LEN];
                head[..len].copy_from_slice(&frame_header[..len]);
                head[len..len + MESSAGE_HEADER_LEN].copy_from_slice(&header);
                self.write_parts(&head[..len + MESSAGE_HEADER_LEN], &run.parts).await
            }
            // JSON clients are for people and debugging: render per client.
            Format::Json => {
                let message = [&header[..], &run.contiguous()].concat();
                match Records::decode(&message).map(message_to_json) {
                    Ok(Ok(text)) => self.out.write_all(&frame::frame(opcode::TEXT, text.as_bytes())).await,
                    _ => Ok(()),
                }
            }
        }
    }

    /// Writes `head` and then `parts`, in one vectored write when the
    /// socket takes them (plain TCP, and TLS through rustls), else gathered
    /// into one buffer first, so that a stream without vectored writes does
    /// not make a write (or a TLS record) per part.
    async fn write_parts(&mut self, head: &[u8], parts: &[Bytes]) -> io::Result<()> {
        if !self.out.is_write_vectored() {
            let mut gathered = Vec::with_capacity(head.len() + parts.iter().map(Bytes::len).sum::<usize>());
            gathered.extend_from_slice(head);
            parts.iter().for_each(|part| gathered.extend_from_slice(part));
            return self.out.write_all(&gathered).await;
        }
        let mut slices = MessageSlices::new();
        let mut unwritten = slices.of(head, parts);
        while !unwritten.is_empty() {
            let written = self.out.write_vectored(unwritten).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut unwritten, written);
        }
        Ok(())
    }

    /// Sends the close frame within the close grace. The peer may have gone
    /// already; then this fails and that is fine, unless the grace passed
    /// (counted: the connection is dropped without its close frame).
    async fn send_close(&mut self, close: Option<CloseFrame>) -> io::Result<()> {
        // Nothing the publisher writes may follow the close frame (and the
        // rest of a message it began goes before it, in `write_close`).
        self.queue.stop_direct_writes();
        self.out.begin_closing();
        let result = self.write_close(close).await;
        match result {
            Err(err) if deadline::Expired::of(&err).is_some() => Err(err),
            _ => Ok(()),
        }
    }

    async fn write_close(&mut self, close: Option<CloseFrame>) -> io::Result<()> {
        if let Some(rest) = self.queue.take_unfinished() {
            self.out.write_all(&rest).await?;
        }
        let mut payload = Vec::new();
        if let Some(close) = close {
            payload.extend_from_slice(&u16::from(close.code).to_be_bytes());
            payload.extend_from_slice(close.reason.as_bytes());
        }
        self.out.write_all(&frame::frame(opcode::CLOSE, &payload)).await?;
        self.out.flush().await
    }
}

/// The header of a message sent now, alone (a batch of one); observes the
/// time in the hub of each record in `parts` (the live records of the
/// message) and counts the message.
fn message_header<'a>(parts: impl Iterator<Item = &'a [u8]>, stats: &Stats) -> [u8; MESSAGE_HEADER_LEN] {
    let mut sends = SendBatch::default();
    let send_ts = sends.send_ts();
    count_sent(parts, send_ts, &mut sends);
    sends.finish(stats);
    MessageHeader::encode(send_ts)
}

/// Counts in `sends` a message sent at `send_ts`, with the time in the hub
/// of each quote or trade record in `parts` (the live records of the
/// message): from its `recv_ts` (bytes 40..48) to `send_ts`.
pub(crate) fn count_sent<'a>(parts: impl Iterator<Item = &'a [u8]>, send_ts: u64, sends: &mut SendBatch) {
    sends.sent(
        parts.flat_map(|records| RecvTimes(run::Records(records)).map(move |recv_ts| send_ts.saturating_sub(recv_ts))),
    );
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
    if let Some((header, rest)) = records.split_at_mut_checked(MESSAGE_HEADER_LEN) {
        header.copy_from_slice(&message_header(std::iter::once(&*rest), stats));
    }
    let message = records.split().freeze();
    match format {
        Format::Binary => sink.feed(Message::Binary(message)).await,
        Format::Json => match Records::decode(&message).map(message_to_json) {
            Ok(Ok(text)) => sink.feed(Message::text(text)).await,
            _ => Ok(()),
        },
    }
}

/// The hub receive times of the quote and trade records in a run of records.
struct RecvTimes<'a>(run::Records<'a>);

impl Iterator for RecvTimes<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.0.find_map(|record| {
            let kind = record[2];
            let recv = record
                .get(40..48)
                .filter(|_| kind == rtype::QUOTE || kind == rtype::TRADE)?;
            let recv_ts = u64::from_le_bytes(recv.try_into().ok()?);
            (recv_ts > 0).then_some(recv_ts)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use quotehub_proto::record::rtype;
    use tokio::io::{AsyncRead, AsyncReadExt};

    use super::*;
    use quotehub_engine::slow_consumer::Policy;

    /// A stream that takes one slice per write, as a stream without
    /// vectored writes does.
    struct OneSliceAtATime<W>(W);

    impl<W: AsyncWrite + Unpin> AsyncWrite for OneSliceAtATime<W> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// An 8-byte record.
    fn record(fill: u8) -> Vec<u8> {
        quotehub_engine::run::test_record(8, fill)
    }

    /// Everything a writer sends for a copied record, a shared body and
    /// another copied record (one message), then its close frame.
    async fn written<W, R>(out: W, mut read: R) -> Vec<u8>
    where
        W: AsyncWrite + Unpin,
        R: AsyncRead + Unpin,
    {
        let stats = Stats::default();
        let queue = Arc::new(Queue::new(100, Policy::Disconnect, 64 * 1024));
        queue.push_records(std::iter::once(&record(1)[..]));
        queue.push_shared(&Bytes::from([record(2), record(3)].concat()), 2);
        queue.push_records(std::iter::once(&record(4)[..]));
        queue.close();
        // Held until the writer is done: a dropped sender reads as a close.
        let (_close, close) = watch::channel(None);
        let writer = Writer {
            out: Deadline::new(out, Duration::from_secs(10), Duration::from_secs(1), &close),
            queue,
            close,
            stats: &stats,
            format: Format::Binary,
        };
        let mut bytes = Vec::new();
        let (sent, received) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(writer.run(), read.read_to_end(&mut bytes))
        })
        .await
        .expect("the writer finished");
        sent.expect("written");
        received.expect("read");
        assert_eq!(Stats::get(&stats.messages_written), 1);
        bytes
    }

    /// Checks the frames [`written`] sends.
    fn check(bytes: &[u8]) {
        let records = [record(1), record(2), record(3), record(4)].concat();
        let message_len = MESSAGE_HEADER_LEN + records.len();
        assert_eq!(bytes.len(), 2 + message_len + 2, "{bytes:?}");
        assert_eq!(bytes[..2], [0x80 | opcode::BINARY, message_len as u8]);
        assert_eq!(bytes[2 + 2], rtype::MESSAGE_HEADER, "the message header");
        assert_eq!(bytes[2 + MESSAGE_HEADER_LEN..2 + message_len], records[..]);
        assert_eq!(bytes[2 + message_len..], [0x80 | opcode::CLOSE, 0]);
    }

    #[tokio::test]
    async fn a_run_of_copied_and_shared_parts_goes_out_as_one_message_through_short_vectored_writes() {
        // A 7-byte pipe: every vectored write is cut short, mid-slice.
        let (out, read) = tokio::io::duplex(7);
        assert!(out.is_write_vectored());
        check(&written(out, read).await);
    }

    #[tokio::test]
    async fn a_stream_without_vectored_writes_gets_the_same_message_gathered() {
        let (out, read) = tokio::io::duplex(7);
        let out = OneSliceAtATime(out);
        assert!(!out.is_write_vectored());
        check(&written(out, read).await);
    }
}
