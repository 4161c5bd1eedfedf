//! The write half of a plain-TCP binary `/v1/quotes` connection, shared by
//! its writer task and the publisher's thread: the publisher writes a
//! message itself when the writer is idle and the socket takes it at once
//! (see `quotehub_engine::direct`; measured in `benches/README.md`, "Where
//! the hub's CPU per delivery goes"). TLS and JSON connections keep their
//! writer alone: a TLS session cannot be written from two threads, and JSON
//! is rendered per client.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use quotehub_engine::direct::{DirectWrite, Written};
use quotehub_engine::frame::{self, opcode};
use quotehub_engine::run::Run;
use quotehub_engine::send_batch::SendBatch;
use quotehub_proto::MessageHeader;
use quotehub_proto::record::MESSAGE_HEADER_LEN;
use tokio::io::AsyncWrite;

use crate::message_slices::MessageSlices;
use tokio::net::tcp::OwnedWriteHalf;

/// The writer task's side: an `AsyncWrite` over the shared write half. The
/// socket's write side is shut when the last handle (this, or the queue's
/// [`DirectTcp`], dropped at the queue's close) goes.
#[derive(Debug)]
pub(crate) struct SharedWrite(pub(crate) Arc<OwnedWriteHalf>);

impl AsyncWrite for SharedWrite {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().as_ref().poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                // The readiness was stale (`try_write` cleared it): wait again.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().as_ref().poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// TCP buffers nothing in user space.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The quotes writer never shuts the socket itself (see the type's docs).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The publisher's side: sends a run as the writer would (frame header,
/// message header stamped with the batch's send time, records), with what
/// the socket takes now.
#[derive(Debug)]
pub(crate) struct DirectTcp {
    pub(crate) out: Arc<OwnedWriteHalf>,
}

impl DirectWrite for DirectTcp {
    fn try_send(&self, run: &Run, batch: &mut SendBatch) -> Written {
        let send_ts = batch.send_ts();
        let (frame_header, len) = frame::header(opcode::BINARY, MESSAGE_HEADER_LEN + run.len());
        let mut head = [0u8; frame::FRAME_HEADER_MAX + MESSAGE_HEADER_LEN];
        head[..len].copy_from_slice(&frame_header[..len]);
        head[len..len + MESSAGE_HEADER_LEN].copy_from_slice(&MessageHeader::encode(send_ts));
        let head = &head[..len + MESSAGE_HEADER_LEN];
        let mut slices = MessageSlices::new();
        match self.out.try_write_vectored(slices.of(head, &run.parts)) {
            // Would block, or failed: the writer meets the error on its own write.
            Ok(0) | Err(_) => Written::Nothing,
            Ok(written) => {
                crate::writer::count_sent(run.parts.iter().map(|part| &part[..]), send_ts, batch);
                if written >= head.len() + run.len() {
                    Written::All
                } else {
                    Written::Part(unwritten(head, &run.parts, written))
                }
            }
        }
    }
}

/// The bytes of `head` then `parts` after the first `written`.
fn unwritten(head: &[u8], parts: &[Bytes], written: usize) -> Bytes {
    let mut rest = BytesMut::new();
    let mut skip = written;
    for slice in std::iter::once(head).chain(parts.iter().map(|part| &part[..])) {
        match slice.get(skip..) {
            Some(tail) => {
                rest.extend_from_slice(tail);
                skip = 0;
            }
            None => skip -= slice.len(),
        }
    }
    rest.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unwritten_rest_starts_where_the_socket_stopped_in_any_slice() {
        let head = [1u8, 2, 3];
        let parts = [Bytes::from_static(&[4, 5]), Bytes::from_static(&[6, 7, 8])];
        let all = [1u8, 2, 3, 4, 5, 6, 7, 8];
        for written in 0..=all.len() {
            assert_eq!(
                unwritten(&head, &parts, written)[..],
                all[written..],
                "after {written} bytes"
            );
        }
    }
}
