//! The few threads that read replay sessions' feeds. Reading a feed is
//! file IO and decoding (CPU), so it may not run on the runtime's workers;
//! the runtime's own blocking pool would do, but it grows a thread for
//! every job that finds none idle (up to 512) and keeps each for seconds,
//! so the thread count would follow the number of sessions. A session
//! hands this pool one chunk of records at a time and waits for it on the
//! runtime; a paused or pacing session holds no thread at all.
//!
//! The threads start with the first job and end when the pool is dropped.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

/// Threads reading feeds: decoding is CPU bound, so more than a couple would
/// only compete with the runtime's workers on a small machine.
pub const READER_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of [`READER_THREADS`] threads, started on first use.
#[derive(Debug, Default)]
pub(crate) struct ReaderPool {
    /// Where jobs go; `None` if the threads could not be started.
    jobs: OnceLock<Option<Sender<Job>>>,
}

impl ReaderPool {
    /// Runs `job` on one of the pool's threads; its result, or `None` if the
    /// pool cannot run it (no thread could be started, or the job panicked).
    pub(crate) async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        let jobs = self.jobs.get_or_init(start).as_ref()?;
        jobs.send(job).ok()?;
        result.await.ok()
    }
}

/// Starts the threads; `None` (logged) if not even one can be.
fn start() -> Option<Sender<Job>> {
    let (jobs, queue) = channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for n in 0..READER_THREADS {
        let queue = Arc::clone(&queue);
        match std::thread::Builder::new()
            .name(format!("replay-reader-{n}"))
            .spawn(move || serve(&queue))
        {
            Ok(_) => started += 1,
            Err(err) => tracing::error!(%err, "cannot start a replay reader thread"),
        }
    }
    (started > 0).then_some(jobs)
}

/// One thread's life: jobs until the pool is dropped.
fn serve(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        match job {
            // A panicking job drops its result sender: its session sees `None`.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_and_a_panic_is_a_none() {
        let pool = ReaderPool::default();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("replay-reader-"));
        #[allow(clippy::panic)]
        let panicked = pool.run(|| panic!("a broken feed")).await;
        assert_eq!(panicked, None::<()>);
        assert_eq!(pool.run(|| 7).await, Some(7), "the pool survives a panic");
    }
}
