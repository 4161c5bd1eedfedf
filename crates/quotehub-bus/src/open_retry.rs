//! Opening an edge's reader, tried again (paced) while it fails, with the
//! failure said once rather than at every attempt.

use std::time::Duration;

use crate::BusError;

/// Longest one attempt to open a reader may take (its requests to the
/// stream, its subscription and its first consumer).
const OPEN_DEADLINE: Duration = crate::REQUEST_TIMEOUT.saturating_mul(4);

/// Longest pause between two attempts.
const MOST_BACKOFF: Duration = Duration::from_secs(2);

/// Opens `what` by `open`, trying again (paced, up to [`MOST_BACKOFF`]
/// apart) until it opens. A failure is logged as a warning once, and again
/// only when its reason changes: a bus that is away, or a stream that does
/// not exist (an ingest hub older than the stream of derived records),
/// fails the same way at every attempt, and an operator needs it said, not
/// repeated every 2 s. The repeats are debug lines; the eventual success
/// after failures is an info line.
pub(crate) async fn open_retrying<T, F>(what: &str, mut open: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, BusError>>,
{
    let mut backoff = Duration::from_millis(50);
    let mut said: Option<String> = None;
    let mut failed = 0u32;
    loop {
        // A few requests and a subscribe, each bounded but not together.
        let opened = tokio::time::timeout(OPEN_DEADLINE, open()).await.unwrap_or_else(|_| {
            Err(BusError::Consumer {
                subject: what.to_owned(),
                reason: format!("not opened within {OPEN_DEADLINE:?}"),
            })
        });
        match opened {
            Ok(opened) => {
                if failed > 0 {
                    tracing::info!(reading = what, failed, "bus: reading, after failed attempts");
                }
                return opened;
            }
            Err(error) => {
                failed = failed.saturating_add(1);
                let reason = error.to_string();
                if said.as_ref() == Some(&reason) {
                    tracing::debug!(%error, reading = what, failed, "bus: cannot start reading; retrying");
                } else {
                    tracing::warn!(%error, reading = what, "bus: cannot start reading; retrying (said again only if the reason changes)");
                    said = Some(reason);
                }
                // Pacing the retries while the bus is away.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the warnings logged.
    struct Warnings(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn failure(reason: &str) -> BusError {
        BusError::Consumer {
            subject: "quotehub-drv.>".to_owned(),
            reason: reason.to_owned(),
        }
    }

    // OR0: five failures for one reason and two for another are two
    // warnings, not seven; the attempts go on until one opens. With the
    // clock paused the backoff takes no real time.
    #[tokio::test(start_paused = true)]
    async fn a_failure_that_repeats_is_warned_once_per_reason() {
        let warnings = Arc::new(AtomicUsize::new(0));
        let _logging =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(Warnings(Arc::clone(&warnings))));
        let mut attempts = 0;
        let opened = open_retrying("*", || {
            attempts += 1;
            let result = match attempts {
                1..=5 => Err(failure("stream not found")),
                6..=7 => Err(failure("no responders")),
                _ => Ok(attempts),
            };
            async move { result }
        })
        .await;
        assert_eq!(opened, 8);
        assert_eq!(warnings.load(Ordering::Relaxed), 2);
    }
}
