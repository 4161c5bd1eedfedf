//! Read-idle detection: a connection over which nothing at all arrives for
//! a while is treated as lost. A peer that vanished without closing (power
//! cut, a NAT that forgot the flow, a cable pulled) leaves a half-open TCP
//! connection that would otherwise be read from forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream whose reads fail with [`io::ErrorKind::TimedOut`] once nothing
/// has been received for `limit`. Any byte counts (for WebSocket upstreams
/// that includes pings and pongs); writes do not.
#[derive(Debug)]
pub struct IdleTimeout<S> {
    inner: S,
    limit: Duration,
    /// When the last bytes arrived (reads only note the time; the timer is
    /// moved only when it fires early, so a busy stream costs no timer work).
    last_received: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: S, limit: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            limit,
            last_received: now,
            deadline: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_received = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => loop {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let due = this.last_received + this.limit;
                if due <= Instant::now() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "nothing received for {:?} (read-idle timeout; the upstream may be gone)",
                            this.limit
                        ),
                    )));
                }
                this.deadline.as_mut().reset(due);
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// With the clock paused, tokio advances time only when every task
    /// waits, so these are exact and take no real time.
    #[tokio::test(start_paused = true)]
    async fn silence_times_out_and_each_arrival_restarts_the_clock() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut reader = IdleTimeout::new(reader, Duration::from_secs(30));
        let mut byte = [0u8; 1];
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(20)).await;
            writer.write_all(b"x").await.unwrap();
            reader.read_exact(&mut byte).await.unwrap();
        }
        let start = Instant::now();
        let error = reader.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(30), "30 s after the last byte");
    }
}
