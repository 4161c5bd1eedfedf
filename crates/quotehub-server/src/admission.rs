//! Admission at accept: every accepted socket holds a permit of the
//! connection cap from `accept` to its close (TLS handshake and request head
//! included), so the hub never holds more than `max_connections` sockets it
//! serves, and taking the permit is the check: no check-then-register race.
//!
//! Past the cap the hub still accepts, and answers: a small reserve of
//! permits lets it read the head of a few refused connections for a short
//! while and answer 503 (or serve `/health`, `/metrics` and `/admin`, so an
//! operator can see and steer a full hub). Stopping `accept` instead would
//! leave every newcomer, health probes included, hanging in the kernel's
//! backlog with no answer. When the reserve is taken too, a socket is closed
//! at once: the cheapest answer there is, and never a descriptor held.
//!
//! Each address (an IPv6 /64, which one host usually holds whole) may have
//! only `max_pending_per_ip` connections accepted and not yet upgraded, and
//! only [`REFUSALS_PER_ADDRESS`] of the reserve: one address cannot fill the
//! cap, or the reserve, with sockets that never send a head.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections accepted past the cap (or past their address's pending
/// share) only to be told so: how many may wait for their head at once.
pub const REFUSAL_RESERVE: usize = 32;

/// The most of [`REFUSAL_RESERVE`] one address may hold.
pub const REFUSALS_PER_ADDRESS: usize = 4;

/// How long a connection accepted to be refused has to send its request
/// head (at most the handshake timeout).
pub const REFUSAL_HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// Why an accepted connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Every permit of the connection cap (this many) is held.
    HubFull(usize),
    /// Its address already has this many connections opening (`max_pending_per_ip`).
    AddressBusy(usize),
}

/// The permits of the connection cap, the refusal reserve and the per-address
/// count of connections still opening.
#[derive(Debug)]
pub(crate) struct Gate {
    /// One permit per connection served: `max_connections` in all.
    served: Arc<Semaphore>,
    /// Permits of connections accepted only to be refused, [`REFUSAL_RESERVE`] in all.
    reserve: Arc<Semaphore>,
    /// Connections accepted and not yet upgraded, per address.
    pending: Arc<Pending>,
    /// Connections holding a permit of the reserve, per address.
    refusing: Arc<Pending>,
    /// The connection cap: `served`'s permits.
    max_connections: usize,
    /// The most connections one address may have opening.
    max_pending_per_ip: usize,
}

/// An accepted connection's place: its permit (held until it closes), its
/// place among its address's pending connections (given back once it is
/// upgraded), and why it is refused, if it is.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Held for the connection's life; dropping it frees its place.
    pub(crate) permit: OwnedSemaphorePermit,
    /// Held while the connection is still opening (or, refused, for its life).
    pub(crate) pending: Option<PendingGuard>,
    /// Set when the connection was accepted only to be refused.
    pub(crate) busy: Option<Busy>,
}

impl Gate {
    /// A gate of `max_connections` permits and a pending share of
    /// `max_pending_per_ip` per address.
    pub(crate) fn new(max_connections: usize, max_pending_per_ip: usize) -> Self {
        Self {
            served: Arc::new(Semaphore::new(max_connections)),
            reserve: Arc::new(Semaphore::new(REFUSAL_RESERVE)),
            pending: Arc::default(),
            refusing: Arc::default(),
            max_connections,
            max_pending_per_ip,
        }
    }

    /// A place for a connection just accepted from `peer`, or `None` when it
    /// must be closed at once (refused, with the refusal reserve taken too).
    pub(crate) fn enter(&self, peer: SocketAddr) -> Option<Admitted> {
        let busy = match Pending::enter(&self.pending, peer.ip(), self.max_pending_per_ip) {
            None => Busy::AddressBusy(self.max_pending_per_ip),
            Some(pending) => match Arc::clone(&self.served).try_acquire_owned() {
                Ok(permit) => {
                    return Some(Admitted {
                        permit,
                        pending: Some(pending),
                        busy: None,
                    });
                }
                Err(_) => Busy::HubFull(self.max_connections),
            },
        };
        let refusing = Pending::enter(&self.refusing, peer.ip(), REFUSALS_PER_ADDRESS)?;
        let permit = Arc::clone(&self.reserve).try_acquire_owned().ok()?;
        Some(Admitted {
            permit,
            pending: Some(refusing),
            busy: Some(busy),
        })
    }
}

/// Connections still opening, per address.
#[derive(Debug, Default)]
pub(crate) struct Pending(Mutex<HashMap<IpAddr, usize>>);

/// A connection's place among its address's pending ones; given back on drop.
#[derive(Debug)]
pub(crate) struct PendingGuard {
    pending: Arc<Pending>,
    address: IpAddr,
}

impl Pending {
    fn enter(this: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PendingGuard> {
        let address = address_of(ip);
        let mut counts = this.0.lock().unwrap_or_else(PoisonError::into_inner);
        // No entry is made for a refusal: the map holds only addresses with
        // a guard alive, so it is bounded by the connections in flight.
        let count = counts.get(&address).copied().unwrap_or(0);
        if count >= max {
            return None;
        }
        counts.insert(address, count + 1);
        Some(PendingGuard {
            pending: Arc::clone(this),
            address,
        })
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut counts = self.pending.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// The address a connection counts against: IPv4 as it is (mapped IPv6
/// included), IPv6 by its /64, the block one host or home usually has.
fn address_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 1)
    }

    #[test]
    fn permits_bound_the_total_and_the_reserve_answers_past_it() {
        let gate = Gate::new(2, 100);
        let first = gate.enter(peer("10.0.0.1"));
        let second = gate.enter(peer("10.0.0.2"));
        assert!(first.as_ref().is_some_and(|a| a.busy.is_none()));
        assert!(second.as_ref().is_some_and(|a| a.busy.is_none()));
        // Each address has its share of the reserve...
        let refused: Vec<_> = (0..REFUSAL_RESERVE)
            .map(|i| gate.enter(peer(&format!("10.0.1.{}", i / REFUSALS_PER_ADDRESS))))
            .collect();
        assert!(
            refused
                .iter()
                .all(|a| a.as_ref().is_some_and(|a| a.busy == Some(Busy::HubFull(2))))
        );
        assert!(gate.enter(peer("10.0.1.0")).is_none(), "past its share: closed at once");
        // ...and once the reserve is taken, everyone is closed at once.
        assert!(gate.enter(peer("10.0.0.3")).is_none());
        // A connection that ends gives its place back.
        drop(first);
        assert!(gate.enter(peer("10.0.0.4")).is_some_and(|a| a.busy.is_none()));
    }

    #[test]
    fn an_address_has_its_pending_share_until_upgraded() {
        let gate = Gate::new(100, 2);
        let mut first = gate.enter(peer("10.0.0.1"));
        let _second = gate.enter(peer("10.0.0.1"));
        let third = gate.enter(peer("10.0.0.1"));
        assert_eq!(third.and_then(|a| a.busy), Some(Busy::AddressBusy(2)));
        // Another address is not concerned; an IPv6 /64 counts as one.
        assert!(gate.enter(peer("10.0.0.2")).is_some_and(|a| a.busy.is_none()));
        let _v6 = [gate.enter(peer("2001:db8::1")), gate.enter(peer("2001:db8::2"))];
        let third_v6 = gate.enter(peer("2001:db8::3"));
        assert_eq!(third_v6.and_then(|a| a.busy), Some(Busy::AddressBusy(2)));
        // Upgraded: no longer pending, still holding its permit.
        if let Some(admitted) = first.as_mut() {
            admitted.pending = None;
        }
        assert!(gate.enter(peer("10.0.0.1")).is_some_and(|a| a.busy.is_none()));
    }

    #[test]
    fn only_addresses_with_connections_in_flight_are_remembered() {
        let gate = Gate::new(1, 0);
        for i in 0..100 {
            drop(gate.enter(peer(&format!("10.0.2.{i}"))));
        }
        let remembered = |pending: &Pending| pending.0.lock().unwrap().len();
        assert_eq!((remembered(&gate.pending), remembered(&gate.refusing)), (0, 0));
    }
}
