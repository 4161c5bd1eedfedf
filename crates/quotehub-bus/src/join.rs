//! A hub joined to NATS JetStream as an ingest hub (it
//! publishes every record it sequences), an edge (it has no feeds and reads
//! the stream by its clients' interest, in the ingest hub's sequence space)
//! or both.
//!
//! Start-up waits for the bus: an unreachable bus is said once, then tried
//! again every `RETRY` (2 s) until it answers (the listener is bound meanwhile,
//! so the port is held); an edge also waits for the stream's first record,
//! whose message id names the sequence space it serves. Once up, the bus's
//! client reconnects by itself and the hub's clients are told
//! (`upstream_down` / `upstream_up`).

use std::sync::Arc;
use std::time::Duration;

use quotehub_engine::Hub;
use quotehub_proto::Epoch;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::connection::Bus;
use crate::failover::{FailoverSettings, FailoverSink, HAND_OVER_FLUSH};
use crate::ingest::{IngestPublisher, IngestSettings};
use crate::interest::EdgeInterest;
use crate::lease::Lease;
use crate::link::{HubLink, Role, announce_bus_state};
use crate::stream::{Storage, StreamSettings};

/// How often start-up tries the bus again.
const RETRY: Duration = Duration::from_secs(2);

/// What to join (`quotehub serve`'s `[bus]`, `--bus` and `--role`).
#[derive(Debug, Clone)]
pub struct JoinPlan {
    /// `nats://HOST:PORT`, several separated by commas.
    pub servers: String,
    /// What the hub does on the bus.
    pub role: Role,
    /// Bytes the ingest side keeps while the bus is away.
    pub ingest_buffer_bytes: usize,
    /// How an ingest hub takes part in the lease (ingest and both).
    pub failover: FailoverSettings,
    /// Where nats-server keeps the stream, when this hub is the one that
    /// makes it.
    pub storage: Storage,
}

/// A hub joined to the bus, and what must live as long as it.
pub struct Joined {
    /// The hub, numbering in its own sequence space (ingest) or the
    /// stream's (edge); serve it.
    pub hub: Hub,
    /// An edge's: becomes `Some` when the ingest hub's sequence space changes.
    pub epoch_changed: Option<watch::Receiver<Option<Epoch>>>,
    /// Sends the records (ingest); dropped, it stops.
    ingest: Option<Arc<IngestPublisher>>,
    /// Publishes them while this hub holds the lease (ingest).
    failover: Option<Arc<FailoverSink>>,
    /// Takes over each time the lease is taken; aborted when dropped.
    follower: Option<tokio::task::JoinHandle<()>>,
    /// Makes the stream again when the bus comes back without it (ingest);
    /// aborted when dropped.
    stream_keeper: Option<tokio::task::JoinHandle<()>>,
    /// Tells clients about the bus's state; aborted when dropped.
    announcer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("epoch", &self.hub.table().epoch())
            .field("ingest", &self.ingest.is_some())
            .finish_non_exhaustive()
    }
}

impl Joined {
    /// The ingest side's publisher (ingest and both), e.g. to wait for the
    /// stream to have what was published ([`IngestPublisher::flush`]).
    pub fn ingest(&self) -> Option<&Arc<IngestPublisher>> {
        self.ingest.as_ref()
    }

    /// The ingest side's lease and takeover (ingest and both).
    pub fn failover(&self) -> Option<&Arc<FailoverSink>> {
        self.failover.as_ref()
    }

    /// Leaves the bus cleanly (a stop signal, after the feeds have
    /// stopped): an ingest hub flushes what it queued for the stream, at
    /// most [`HAND_OVER_FLUSH`], and releases the lease if it holds it, so
    /// that a standby takes over at once instead of after the lease's TTL.
    /// An edge has nothing to hand over. Dropping `Joined` without this is
    /// what a crash does: the lease lapses after its TTL.
    pub async fn leave(&self) {
        let Some(failover) = &self.failover else { return };
        let done = failover.hand_over(HAND_OVER_FLUSH).await;
        if !done.held {
            return;
        }
        if !done.flushed {
            warn!(
                "bus: the stream did not acknowledge every queued record within {HAND_OVER_FLUSH:?}; the standby fills in from its own window"
            );
        }
        if done.released {
            info!("bus: left cleanly; the lease is released for a standby");
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.announcer.abort();
        if let Some(follower) = &self.follower {
            follower.abort();
        }
        if let Some(keeper) = &self.stream_keeper {
            keeper.abort();
        }
    }
}

/// Connects (waiting for the bus), then builds the hub for `plan.role`
/// keeping `depth` records per symbol (also the stream's per-symbol limit).
/// Call it inside the runtime.
/// `max_per_client` and `max_readers` bound an edge's readers (the
/// server's `max_symbols_per_client` and `max_symbols`).
pub async fn join(plan: &JoinPlan, depth: usize, max_per_client: usize, max_readers: usize) -> Joined {
    let records_per_symbol = u32::try_from(depth.max(1)).unwrap_or(u32::MAX);
    let settings = StreamSettings {
        storage: plan.storage,
        ..StreamSettings::new(records_per_symbol)
    };
    let bus = connect(&plan.servers).await;
    let mut failover = None;
    let mut follower = None;
    let mut stream_keeper = None;
    let (hub, ingest, epoch_changed) = match plan.role {
        Role::Ingest | Role::Both => {
            let connects = bus.state().borrow().connects;
            retry("the bus's stream", || settings.ensure(bus.jetstream())).await;
            let (stream_ready, ready) = watch::channel(connects);
            stream_keeper = Some(keep_stream(&bus, settings.clone(), stream_ready));
            let mut hub = Hub::with_history(depth);
            let publisher = Arc::new(IngestPublisher::start(
                &bus,
                settings.subjects.clone(),
                IngestSettings {
                    max_buffered_bytes: plan.ingest_buffer_bytes,
                    stream_ready: Some(ready),
                    ..IngestSettings::default()
                },
            ));
            let holder = &plan.failover.holder;
            let lease = retry("the bus's lease bucket", || {
                Lease::open(&bus, plan.failover.lease.clone(), holder)
            })
            .await;
            let (sink, task) = crate::failover::start(
                &bus,
                settings.clone(),
                &plan.failover,
                lease,
                Arc::clone(&publisher),
                hub.table().epoch(),
                depth,
            );
            await_first_look(&sink).await;
            hub.sink_to(Arc::clone(&sink) as _);
            hub.join_bus(Arc::new(
                HubLink::new(plan.role, bus.clone(), Some(Arc::clone(&publisher)), None)
                    .with_failover(Arc::clone(&sink)),
            ));
            failover = Some(sink);
            follower = Some(task);
            (hub, Some(publisher), None)
        }
        Role::Edge => {
            let (epoch, learned_at) = retry(
                "the ingest hub's sequence space (the stream's newest record)",
                || async {
                    match crate::epoch::newest_epoch(&bus, &settings).await {
                        Ok(Some(found)) => Ok(found),
                        Ok(None) => Err("the stream holds no record yet".to_owned()),
                        Err(error) => Err(error.to_string()),
                    }
                },
            )
            .await;
            info!(%epoch, "bus: serving the ingest hub's sequence space");
            let mut hub = Hub::with_history_in(depth, epoch);
            let interest = Arc::new(EdgeInterest::new(
                bus.clone(),
                settings,
                hub.clone(),
                learned_at,
                max_per_client,
                max_readers,
            ));
            let epoch_changed = interest.epoch_changed();
            hub.join_bus(Arc::new(HubLink::new(plan.role, bus.clone(), None, Some(interest))));
            (hub, None, Some(epoch_changed))
        }
    };
    let announcer = announce_bus_state(&bus, hub.clone());
    Joined {
        hub,
        epoch_changed,
        ingest,
        failover,
        follower,
        stream_keeper,
        announcer,
    }
}

/// Each time the bus comes back, makes sure the stream is there: a stream
/// in memory (`storage = "memory"`) is gone once nats-server restarts, and
/// until it is made again every publish fails (the ingest side keeps and
/// re-sends them) and edges have nothing to read. For a stream on disk
/// this is one lookup per reconnect. Tells `ready` the connect count it
/// made sure of: the ingest side sends nothing after a reconnect until then.
fn keep_stream(bus: &Bus, settings: StreamSettings, ready: watch::Sender<u64>) -> tokio::task::JoinHandle<()> {
    let bus = bus.clone();
    tokio::spawn(async move {
        let mut state = bus.state();
        // From the connect the stream was last made sure of, so that a
        // reconnect between that and now is caught up at once (the ingest
        // side waits for it).
        let mut seen = *ready.borrow();
        loop {
            match state.wait_for(|now| now.connected && now.connects > seen).await {
                Ok(back) => seen = back.connects,
                Err(_) => return,
            }
            if crate::stream::exists(bus.jetstream(), &settings.name).await == Some(false) {
                warn!(
                    stream = %settings.name,
                    "bus: the stream is gone after the bus came back (a stream in memory does not outlive nats-server); making it again"
                );
            }
            retry("the bus's stream", || settings.ensure(bus.jetstream())).await;
            ready.send_replace(seen);
        }
    })
}

/// The longest start-up waits for the lease's first answer.
const FIRST_LOOK: Duration = Duration::from_secs(5);

/// Waits until this hub knows whether it is the active ingest hub (and,
/// if it is, has aligned with the stream) or another holds the lease, so
/// that one ingest hub alone publishes from its first record. Bounded: a
/// slow bus only means the records go out at the takeover.
async fn await_first_look(sink: &FailoverSink) {
    let mut lease = sink.lease();
    let mut taken = sink.taken();
    let decided = async {
        let active = lease
            .wait_for(|state| state.active || state.holder.is_some())
            .await
            .is_ok_and(|state| state.active);
        if active {
            let _ = taken.wait_for(|taken| *taken > 0).await;
        }
    };
    if tokio::time::timeout(FIRST_LOOK, decided).await.is_err() {
        warn!("bus lease: no answer from the lease within {FIRST_LOOK:?}; serving meanwhile");
    }
}

/// The bus's client, once the bus answers.
async fn connect(servers: &str) -> Bus {
    retry(&format!("the bus at {servers}"), || Bus::connect(servers)).await
}

/// `attempt` until it succeeds: its first failure is logged as a warning,
/// later ones at debug level, every `RETRY`.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let mut said = false;
    loop {
        match attempt().await {
            Ok(value) => {
                if said {
                    info!("bus: {what} is there now");
                }
                return value;
            }
            Err(error) if !said => {
                warn!(%error, "bus: waiting for {what}; trying again every {RETRY:?} (the hub serves once it is there)");
                said = true;
            }
            Err(error) => tracing::debug!(%error, "bus: still waiting for {what}"),
        }
        // Pacing the attempts, not synchronisation: nothing tells us when it comes.
        tokio::time::sleep(RETRY).await;
    }
}
