//! A hub joined to the bus: its role, what its routes ask of the bus
//! ([`BusLink`]: an edge's interest, the state for `/metrics` and
//! `/health`), and the status records that tell its clients when the bus
//! goes away and comes back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quotehub_engine::Hub;
use quotehub_engine::bus_link::{Acquired, BusLink, BusView, LeaseView};
use quotehub_proto::{Channels, Selection, StatusCode, StatusRecord, now_ns};

use crate::connection::Bus;
use crate::failover::FailoverSink;
use crate::ingest::IngestPublisher;
use crate::interest::EdgeInterest;

/// The `feed` number of the status records about the bus
/// (`upstream_down` / `upstream_up`): SPEC.md, status records.
pub const BUS_FEED: u16 = u16::MAX;

/// What a hub does on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads feeds, sequences, publishes every record to the stream.
    Ingest,
    /// No feeds: reads the stream by its clients' interest.
    Edge,
    /// Reads feeds and publishes like an ingest hub, and serves its own
    /// clients from its own table (which holds what it publishes).
    Both,
}

impl Role {
    /// The name in settings and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Edge => "edge",
            Self::Both => "both",
        }
    }

    /// Whether it publishes what it sequences.
    pub fn ingests(self) -> bool {
        matches!(self, Self::Ingest | Self::Both)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ingest" => Ok(Self::Ingest),
            "edge" => Ok(Self::Edge),
            "both" => Ok(Self::Both),
            other => Err(format!(
                "unknown bus role {other:?}; expected \"ingest\", \"edge\" or \"both\""
            )),
        }
    }
}

/// A hub's side of the bus, as [`Hub::join_bus`] takes it.
#[derive(Debug)]
pub struct HubLink {
    role: Role,
    bus: Bus,
    ingest: Option<Arc<IngestPublisher>>,
    edge: Option<Arc<EdgeInterest>>,
    /// The ingest side's lease, for `/metrics`.
    failover: Option<Arc<FailoverSink>>,
}

impl HubLink {
    /// The link of a hub with `role`, publishing through `ingest` and/or
    /// reading through `edge`.
    pub fn new(role: Role, bus: Bus, ingest: Option<Arc<IngestPublisher>>, edge: Option<Arc<EdgeInterest>>) -> Self {
        Self {
            role,
            bus,
            ingest,
            edge,
            failover: None,
        }
    }

    /// The same link, showing `failover`'s lease in its view.
    #[must_use]
    pub fn with_failover(mut self, failover: Arc<FailoverSink>) -> Self {
        self.failover = Some(failover);
        self
    }
}

impl BusLink for HubLink {
    fn acquire(&self, client: u64, selections: &[Selection], channels: Channels) -> Acquired {
        match &self.edge {
            Some(edge) => edge.acquire(client, selections, channels),
            None => Box::pin(std::future::ready(())),
        }
    }

    fn release(&self, client: u64, selections: &[Selection]) {
        if let Some(edge) = &self.edge {
            edge.release(client, selections);
        }
    }

    fn release_derived(&self, client: u64, selections: &[Selection]) {
        if let Some(edge) = &self.edge {
            edge.release_derived(client, selections);
        }
    }

    fn release_all(&self, client: u64) {
        if let Some(edge) = &self.edge {
            edge.release_all(client);
        }
    }

    fn view(&self) -> BusView {
        let state = *self.bus.state().borrow();
        let mut view = BusView {
            role: self.role.name(),
            connected: state.connected,
            connects: state.connects,
            ..BusView::default()
        };
        if let Some(ingest) = &self.ingest {
            let counters = ingest.counters();
            view.published_records = counters.published;
            view.published_bytes = counters.published_bytes;
            view.ingest_dropped_records = counters.dropped;
            view.ingest_buffered_bytes = counters.buffered_bytes;
        }
        if let Some(failover) = &self.failover {
            let lease = failover.lease().borrow().clone();
            let counters = failover.counters();
            view.lease = Some(LeaseView {
                holder: lease.holder,
                active: failover.is_publishing(),
                takeovers: counters.takeovers.load(Ordering::Relaxed),
                after_release: lease.after_release,
                losses: lease.losses,
                unmatched: counters.unmatched.load(Ordering::Relaxed),
            });
        }
        if let Some(edge) = &self.edge {
            let counters = edge.counters();
            view.received_records = counters.received.load(Ordering::Relaxed);
            view.received_bytes = counters.received_bytes.load(Ordering::Relaxed);
            view.readers = edge.running() as u64;
            view.readers_started = counters.started.load(Ordering::Relaxed);
            view.edge_lag_records = counters.lag.load(Ordering::Relaxed);
            view.edge_foreign_records = counters.foreign.load(Ordering::Relaxed);
            view.edge_ahead_records = counters.ahead.load(Ordering::Relaxed);
            view.edge_repeats = counters.repeats.load(Ordering::Relaxed);
            view.edge_repairs = counters.repairs.load(Ordering::Relaxed);
        }
        view
    }
}

/// Tells `hub`'s clients when the bus goes away (`upstream_down`) and
/// comes back (`upstream_up`), feed [`BUS_FEED`], until the bus's client
/// is dropped. Call it inside the runtime.
pub fn announce_bus_state(bus: &Bus, hub: Hub) -> tokio::task::JoinHandle<()> {
    let mut state = bus.state();
    tokio::spawn(async move {
        let mut connected = state.borrow_and_update().connected;
        while state.changed().await.is_ok() {
            let now = state.borrow_and_update().connected;
            if now == connected {
                continue;
            }
            connected = now;
            let code = if now {
                tracing::info!("bus: connected again");
                StatusCode::UpstreamUp
            } else {
                tracing::warn!("bus: connection lost; reconnecting");
                StatusCode::UpstreamDown
            };
            hub.announce(StatusRecord {
                code,
                feed: BUS_FEED,
                ts: now_ns(),
                detail: 0,
            });
        }
    })
}
