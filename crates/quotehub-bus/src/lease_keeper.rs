//! The lease kept on a task: a standby polls the key and takes it when it
//! lapses; the holder refreshes it. The publish path asks
//! [`LeaseKeeper::is_active`] before every record; `/metrics` reads
//! [`LeaseState`]. The steps and the timing bound are in [`crate::lease`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quotehub_proto::Epoch;
use tokio::sync::{oneshot, watch};

use crate::connection::{Bus, REQUEST_TIMEOUT};
use crate::lease::{Lease, LostReason, Refresh, Seen};
use crate::stream::StreamSettings;
use crate::tail;

/// The lease as one hub sees it, for the ingest role and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseState {
    /// Whether this hub holds the lease (may publish).
    pub active: bool,
    /// Who holds it, as last seen (this hub's id while active).
    pub holder: Option<String>,
    /// The epoch the holder publishes in, as last seen.
    pub epoch: Option<Epoch>,
    /// How many times this hub became the holder.
    pub takeovers: u64,
    /// How many times it stopped being the holder other than by
    /// releasing it (taken, or the bus unreachable past the deadline).
    pub losses: u64,
    /// How many of its takeovers were of a lease its holder had released
    /// (a clean shutdown: taken at the next poll, not after the TTL).
    pub after_release: u64,
    /// How many times it has looked at the key as a standby.
    pub checks: u64,
}

/// The one thing the publish path reads: until when this hub may publish,
/// in nanoseconds after `base` (0: not active).
#[derive(Debug)]
struct Deadline {
    base: Instant,
    until_ns: AtomicU64,
}

impl Deadline {
    fn set(&self, until: Option<Instant>) {
        let ns = until.map_or(0, |until| {
            u64::try_from(until.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
        });
        self.until_ns.store(ns, Ordering::Release);
    }

    fn open(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.until_ns.load(Ordering::Acquire)
    }
}

/// Runs a [`Lease`] on a task: as a standby it polls and takes the lease
/// when it lapses; as the holder it refreshes it. Dropped, it stops the
/// task (the lease then lapses after its TTL); [`LeaseKeeper::release`]
/// hands it over at once.
#[derive(Debug)]
pub struct LeaseKeeper {
    state: watch::Receiver<LeaseState>,
    deadline: Arc<Deadline>,
    /// Asks the task to release the lease and end; taken by the first
    /// [`LeaseKeeper::release`].
    stop: Mutex<Option<oneshot::Sender<()>>>,
    /// The task; it answers whether it deleted the key. Taken by
    /// [`LeaseKeeper::release`], else aborted on drop.
    task: Mutex<Option<tokio::task::JoinHandle<bool>>>,
}

impl LeaseKeeper {
    /// Starts keeping `lease` on the current runtime. On taking the lease
    /// it publishes in the epoch of the stream's newest record, so that
    /// numbers continue in the same sequence space (clients see no
    /// `RESET`), or in `own_epoch` when the stream is empty.
    pub fn start(lease: Lease, bus: &Bus, stream: StreamSettings, own_epoch: Epoch) -> Self {
        let (tell, state) = watch::channel(LeaseState::default());
        let deadline = Arc::new(Deadline {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(keep(
            lease,
            bus.clone(),
            stream,
            own_epoch,
            tell,
            Arc::clone(&deadline),
            stopped,
        ));
        Self {
            state,
            deadline,
            stop: Mutex::new(Some(stop)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Whether this hub may publish now: it holds the lease and its
    /// deadline has not passed (checked against the clock, so a starved
    /// keeper task cannot leave it publishing late). Cheap: for every record.
    pub fn is_active(&self) -> bool {
        self.deadline.open()
    }

    /// A watch on the lease's state.
    pub fn state(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }

    /// Stops keeping the lease and, if held, deletes the key (only if it is
    /// still this hub's revision) so that a standby takes over at its next
    /// poll rather than after the TTL. Publishing stops first. Bounded: if
    /// the bus does not answer in time the lease lapses after its TTL as it
    /// would had the hub died. Returns whether the key was deleted; later
    /// calls do nothing and return false.
    pub async fn release(&self) -> bool {
        self.deadline.set(None);
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        let Some(mut task) = lock(&self.task).take() else {
            return false;
        };
        match tokio::time::timeout(REQUEST_TIMEOUT * 2, &mut task).await {
            Ok(released) => released.unwrap_or(false),
            Err(_) => {
                task.abort();
                false
            }
        }
    }
}

/// A poisoned lock holds plain data: go on with it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

async fn keep(
    mut lease: Lease,
    bus: Bus,
    stream: StreamSettings,
    own_epoch: Epoch,
    tell: watch::Sender<LeaseState>,
    deadline: Arc<Deadline>,
    mut stopped: oneshot::Receiver<()>,
) -> bool {
    let settings = lease.settings().clone();
    let key = settings.key.clone();
    // The first look at the key is at once.
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            stop = &mut stopped => {
                deadline.set(None);
                if stop.is_err() {
                    // The keeper was dropped: stop refreshing, and let the
                    // lease lapse as if this hub had died.
                    return false;
                }
                if lease.valid_until().is_none() {
                    // A standby has nothing to give up.
                    return false;
                }
                let released = match lease.release().await {
                    Ok(()) => {
                        tracing::info!(key = %key, holder = %lease.holder(), "bus lease: released; a standby takes over at its next poll");
                        true
                    }
                    Err(error) => {
                        tracing::warn!(%error, "bus lease: not released; it lapses after its TTL");
                        false
                    }
                };
                tell.send_modify(|state| {
                    state.active = false;
                    state.holder = None;
                });
                return released;
            }
        }
        if lease.valid_until().is_some() {
            next = tokio::time::Instant::now() + settings.refresh;
            match lease.refresh().await {
                Refresh::Refreshed => deadline.set(lease.valid_until()),
                Refresh::Failed(error) => {
                    tracing::warn!(%error, key = %key, "bus lease: refresh failed; still held until its deadline");
                }
                Refresh::Lost(reason) => {
                    deadline.set(None);
                    tracing::warn!(?reason, key = %key, "bus lease: lost; publishing stops");
                    tell.send_modify(|state| {
                        state.active = false;
                        state.losses += 1;
                        if reason == LostReason::Unreachable {
                            state.holder = None;
                        }
                    });
                    next = tokio::time::Instant::now();
                }
            }
            continue;
        }
        next = tokio::time::Instant::now() + settings.poll;
        let seen = lease.current().await;
        tell.send_modify(|state| state.checks += 1);
        match seen {
            Ok(Seen::Held(value)) => tell.send_if_modified(|state| {
                let changed = state.holder.as_deref() != Some(&value.holder) || state.epoch != Some(value.epoch);
                state.holder = Some(value.holder);
                state.epoch = Some(value.epoch);
                changed
            }),
            Ok(Seen::Unreadable) => tell.send_if_modified(|state| state.holder.take().is_some()),
            Ok(seen @ (Seen::Free | Seen::Released)) => {
                let released = seen == Seen::Released;
                let epoch = match tail::latest_epoch(&bus, &stream).await {
                    Ok(epoch) => epoch.unwrap_or(own_epoch),
                    Err(error) => {
                        tracing::warn!(%error, "bus lease: the lease is free but the stream's epoch is unknown; not taking it yet");
                        continue;
                    }
                };
                match lease.acquire(epoch).await {
                    Ok(true) => {
                        deadline.set(lease.valid_until());
                        let after = if released {
                            "released by its holder"
                        } else {
                            "free (lapsed or never held)"
                        };
                        tracing::info!(key = %key, holder = %lease.holder(), %epoch, after, "bus lease: taken; this hub publishes");
                        tell.send_modify(|state| {
                            state.active = true;
                            state.holder = Some(lease.holder().to_owned());
                            state.epoch = Some(epoch);
                            state.takeovers += 1;
                            state.after_release += u64::from(released);
                        });
                        // The first refresh one period after the create.
                        next = tokio::time::Instant::now() + settings.refresh;
                    }
                    Ok(false) => {
                        // Someone was quicker: the next poll names them.
                        next = tokio::time::Instant::now();
                    }
                    Err(error) => tracing::warn!(%error, "bus lease: taking it failed"),
                }
                true
            }
            Err(error) => {
                tracing::debug!(%error, "bus lease: cannot read the key");
                false
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_deadline_closes_by_the_clock() {
        let deadline = Deadline {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
        };
        assert!(!deadline.open());
        deadline.set(Some(Instant::now() + Duration::from_secs(60)));
        assert!(deadline.open());
        deadline.set(Some(deadline.base));
        assert!(!deadline.open());
        deadline.set(None);
        assert!(!deadline.open());
    }
}
