//! How a push wakes a client's writer task without the engine naming a
//! runtime: one waiter (the writer), any number of notifiers (the publisher,
//! the session), and a permit kept when nobody waits, so a notification sent
//! between the writer finding its queue empty and its waiting is not lost
//! (what `tokio::sync::Notify::notify_one` gives, for one waiter).

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// A wake-up for one waiting task, runtime-agnostic.
#[derive(Debug, Default)]
pub struct Wake {
    /// Set by [`Wake::notify`], taken by the waiter.
    permit: AtomicBool,
    /// The waiting task, if it waits.
    waker: AtomicWaker,
}

impl Wake {
    /// Wakes the waiter, or leaves it a permit if it is not waiting.
    pub fn notify(&self) {
        self.permit.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Waits for a notification (at once if a permit was left). One waiter
    /// at a time.
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| {
            if self.permit.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A notify between the first look and the registration woke no one.
            if self.permit.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Runs a future to completion on this thread: for tests that drive a
/// writer's side without a runtime.
#[cfg(test)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Wake as StdWake, Waker};

    struct Unpark(std::thread::Thread);
    impl StdWake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_notification_before_the_wait_is_kept_and_one_from_another_thread_wakes_it() {
        let wake = Arc::new(Wake::default());
        wake.notify();
        block_on(wake.notified());
        let notifier = Arc::clone(&wake);
        let thread = std::thread::spawn(move || notifier.notify());
        block_on(wake.notified());
        thread.join().unwrap();
    }
}
