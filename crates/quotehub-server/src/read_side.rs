//! The socket as tungstenite sees it in a quote session: the read half, and
//! a write side that hands whatever tungstenite writes (pongs, the answer to
//! a client's close: whole frames) to the client's queue, in order with
//! everything else. The writer task owns the real write half and sends each
//! run of records straight from the queue: tungstenite never copies a
//! message into its write buffer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use quotehub_engine::queue::Queue;

pub(crate) struct ReadSide<R> {
    pub(crate) read: R,
    pub(crate) queue: Arc<Queue>,
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadSide<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadSide<R> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, frames: &[u8]) -> Poll<io::Result<usize>> {
        // Once the writer is gone nothing reaches the client any more; the
        // reader finds out from the socket.
        let _ = self.queue.push_control(Bytes::copy_from_slice(frames));
        Poll::Ready(Ok(frames.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
