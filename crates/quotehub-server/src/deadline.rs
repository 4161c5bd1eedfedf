//! A socket's write half with a deadline: a write (or flush) that the
//! socket takes no byte of for [`ServerConfig::write_timeout`] fails, and
//! once the connection is told to close, everything still to be written
//! (the frame under way, then the close frame) has a short grace, however
//! the peer reads. So a peer that stops reading (TCP window at zero) holds
//! its connection's slot, descriptor and queue for a bounded time only.
//!
//! The deadline costs nothing while the socket takes what it is given: the
//! timer is armed at the first write the socket cannot take (it returns
//! `Pending`) and re-armed only at the next such write after some progress,
//! and the close signal is polled only then too. A write that returns at
//! once registers no timer and no waker.
//!
//! [`ServerConfig::write_timeout`]: crate::config::ServerConfig::write_timeout

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use quotehub_engine::stats::{ForcedClose, Stats};

/// Why a write failed on its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The socket took no byte for the write timeout.
    WriteTimeout,
    /// The connection was closing and what was left (the close frame
    /// included) was not written within the grace.
    CloseGrace,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expired::WriteTimeout => "write timeout: the peer took no byte",
            Expired::CloseGrace => "close grace passed: the peer did not take its close frame",
        })
    }
}

impl std::error::Error for Expired {}

impl Expired {
    /// Which deadline, if any, failed a write with `err`.
    pub(crate) fn of(err: &io::Error) -> Option<Expired> {
        err.get_ref()?.downcast_ref::<Expired>().copied()
    }
}

/// Counts a write that failed on a deadline: a write timeout is a forced
/// close, a missed grace an abandoned close frame.
pub(crate) fn count(stats: &Stats, err: &io::Error) {
    match Expired::of(err) {
        Some(Expired::WriteTimeout) => stats.forced_close(ForcedClose::WriteTimeout),
        Some(Expired::CloseGrace) => Stats::add(&stats.closes_abandoned, 1),
        None => {}
    }
}

/// Completes once the connection is told to close (or its handle is gone).
type Closed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `W` with a write deadline and a close grace (see the module docs).
pub(crate) struct Deadline<W> {
    inner: W,
    /// How long a write may go without the socket taking a byte.
    timeout: Duration,
    /// How long, from the close, the rest may take.
    grace: Duration,
    /// The current deadline; meaningful while `armed`.
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` holds a deadline for the writes now waiting.
    armed: bool,
    /// The close signal, until it fires.
    closed: Option<Closed>,
    /// Once closing: the deadline for everything left, never extended.
    closing: Option<Instant>,
}

impl<W> fmt::Debug for Deadline<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("timeout", &self.timeout)
            .field("armed", &self.armed)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl<W> Deadline<W> {
    /// Wraps `inner`; `close` is the connection's close signal (a change, or
    /// the sender dropped, starts the grace). Needs a tokio runtime.
    pub(crate) fn new<T>(inner: W, timeout: Duration, grace: Duration, close: &watch::Receiver<T>) -> Self
    where
        T: Send + Sync + 'static,
    {
        let mut close = close.clone();
        Self {
            inner,
            timeout,
            grace: grace.min(timeout),
            timer: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            closed: Some(Box::pin(async move {
                let _ = close.changed().await;
            })),
            closing: None,
        }
    }

    /// Starts the grace now (the writer is about to send its close frame),
    /// unless it started already.
    pub(crate) fn begin_closing(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let at = Instant::now() + self.grace;
        self.closing = Some(at);
        self.closed = None;
        // A stall that began earlier keeps its earlier deadline.
        if !self.armed || self.timer.deadline() > at {
            self.timer.as_mut().reset(at);
            self.armed = true;
        }
    }

    /// After `inner` returned `Pending`: arms the deadline if this is a new
    /// stall, and fails once it passes.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if let Some(closed) = self.closed.as_mut()
            && closed.as_mut().poll(cx).is_ready()
        {
            self.begin_closing();
        }
        if !self.armed {
            self.timer.as_mut().reset(Instant::now() + self.timeout);
            self.armed = true;
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let expired = if self.closing.is_some() {
                    Expired::CloseGrace
                } else {
                    Expired::WriteTimeout
                };
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, expired))
            }
        }
    }

    /// The socket took `n` bytes: a stall that follows is a new one, unless
    /// the connection is closing (the grace is never extended).
    fn progressed(&mut self, n: usize) {
        if n > 0 && self.closing.is_none() {
            self.armed = false;
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Deadline<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.progressed(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.stalled(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.progressed(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.stalled(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // Everything buffered went out: progress too.
                this.progressed(1);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.stalled(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Shutting down is part of closing: within the grace.
        this.begin_closing();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.stalled(cx).map(Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Bounds every test: a deadline that never fires fails it.
    const LIMIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_write_the_peer_takes_nothing_of_fails_on_the_timeout() {
        // 16 bytes fit; nobody reads.
        let (out, _never_read) = tokio::io::duplex(16);
        let (_close, close) = watch::channel(());
        let mut out = Deadline::new(out, Duration::from_millis(100), Duration::from_millis(100), &close);
        let err = tokio::time::timeout(LIMIT, out.write_all(&[0; 64]))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(Expired::of(&err), Some(Expired::WriteTimeout));
    }

    #[tokio::test]
    async fn a_close_cuts_a_stalled_write_short_to_the_grace() {
        let (out, _never_read) = tokio::io::duplex(16);
        let (close_tx, close) = watch::channel(());
        // The timeout alone would outlast the test.
        let mut out = Deadline::new(out, Duration::from_secs(600), Duration::from_millis(100), &close);
        let close_once_stalled = async {
            // The write was polled first and is waiting now.
            tokio::task::yield_now().await;
            close_tx.send_replace(());
        };
        let (written, ()) = tokio::time::timeout(LIMIT, async {
            tokio::join!(out.write_all(&[0; 64]), close_once_stalled)
        })
        .await
        .unwrap();
        assert_eq!(Expired::of(&written.unwrap_err()), Some(Expired::CloseGrace));
        // Shutting down afterwards is bounded by the same grace.
        let shut = tokio::time::timeout(LIMIT, out.shutdown()).await.unwrap();
        assert!(shut.is_ok() || shut.is_err_and(|err| Expired::of(&err) == Some(Expired::CloseGrace)));
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_taking_bytes_is_not_timed_out() {
        let (out, mut slow) = tokio::io::duplex(8);
        let (_close, close) = watch::channel(());
        let mut out = Deadline::new(out, Duration::from_secs(2), Duration::from_secs(1), &close);
        // 8 bytes every 100 ms: each stall is far shorter than the timeout,
        // the whole write (3.2 s) longer.
        let reader = async {
            let mut buf = [0u8; 8];
            let mut total = 0;
            while total < 256 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                total += slow.read(&mut buf).await.unwrap();
            }
            total
        };
        let (written, read) = tokio::time::timeout(LIMIT, async { tokio::join!(out.write_all(&[0; 256]), reader) })
            .await
            .unwrap();
        written.unwrap();
        assert_eq!(read, 256);
    }
}
