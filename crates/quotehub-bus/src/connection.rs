//! The connection to the bus, and what the rest of the crate learns of its
//! state: whether it is up, and how many times it has come (back) up, so
//! that an edge reader re-makes its consumer the moment the bus is back
//! (and, next, so that hubs can tell their clients `upstream_down` / `up`).

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::watch;

use crate::error::BusError;

/// How long a JetStream API request or a publish ack may take before it
/// counts as failed (and is retried).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest wait between two attempts to reconnect.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Most messages one subscription of the bus client holds before the
/// client drops the newest for it (and reports a slow consumer): the bound
/// of an edge's live subscription while its reader is busy (catching up
/// from the stream, or behind): at a quote record's ~80 bytes plus the
/// message and its five republish headers (a few hundred bytes in
/// async-nats), about 5 MiB for a full subscription; each message is at
/// most nats-server's `max_payload` (1 MiB by default), which only a
/// hostile publisher on the bus would reach. 8,192 is 16 s of one symbol
/// at 500 records/s, 0.8 s of `"*"` at 10,000/s. A reader that loses
/// messages this way repairs them from the stream ([`crate::EdgeReader`]).
/// It must stay above the
/// 500 messages an ordered pull consumer asks for at a time (async-nats's
/// batch), or the client drops the consumer's messages too.
pub const SUBSCRIPTION_CAPACITY: usize = 8_192;

/// The bus connection's state, as the client last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionState {
    /// Whether it is connected now.
    pub connected: bool,
    /// How many times it has connected, the first time included.
    pub connects: u64,
    /// How many messages the client dropped for a full subscription (its
    /// slow-consumer events, counted over every subscription: the event
    /// does not say which reader's it was).
    pub slow_consumers: u64,
}

/// A connection to the bus: the NATS client, its JetStream context and a
/// watch on its state.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    state: watch::Receiver<ConnectionState>,
}

impl Bus {
    /// Connects: `servers` is `nats://HOST:PORT`, several separated by
    /// commas. Once connected, the client reconnects by itself, forever,
    /// at most 2 s apart; what was lost meanwhile is re-sent
    /// by the callers ([`crate::IngestPublisher`], [`crate::EdgeReader`]).
    pub async fn connect(servers: &str) -> Result<Self, BusError> {
        Self::connect_with_capacity(servers, SUBSCRIPTION_CAPACITY).await
    }

    /// Like [`Bus::connect`], with each subscription holding at most
    /// `subscription_capacity` messages (tests make it small to overflow
    /// it; see [`SUBSCRIPTION_CAPACITY`] for how small it may be).
    pub async fn connect_with_capacity(servers: &str, subscription_capacity: usize) -> Result<Self, BusError> {
        let (tell, state) = watch::channel(ConnectionState {
            connected: false,
            connects: 0,
            slow_consumers: 0,
        });
        let tell = std::sync::Arc::new(tell);
        let events = std::sync::Arc::clone(&tell);
        // The first connect is reported twice: by the event, and by this
        // function returning, in either order. Whichever comes second must
        // not count it again (each reader would take the second for a
        // reconnect and repair).
        let first_event = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(REQUEST_TIMEOUT)
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .subscription_capacity(subscription_capacity.max(1))
            .event_callback(move |event| {
                let tell = std::sync::Arc::clone(&events);
                let first = matches!(event, async_nats::Event::Connected)
                    && first_event.swap(false, std::sync::atomic::Ordering::Relaxed);
                async move {
                    match event {
                        async_nats::Event::Connected => tell.send_modify(|state| {
                            state.connected = true;
                            if !first || state.connects == 0 {
                                state.connects += 1;
                            }
                        }),
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            tell.send_modify(|state| state.connected = false);
                        }
                        async_nats::Event::SlowConsumer(_) => tell.send_modify(|state| state.slow_consumers += 1),
                        _ => {}
                    }
                }
            })
            .connect(servers)
            .await
            .map_err(|source| BusError::Connect {
                servers: servers.to_owned(),
                source,
            })?;
        // The first connect may be reported before or after this returns.
        tell.send_if_modified(|state| {
            let first = state.connects == 0;
            if first {
                state.connected = true;
                state.connects = 1;
            }
            first
        });
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .ack_timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Self {
            client,
            jetstream,
            state,
        })
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (API requests and publish acks time out after
    /// [`REQUEST_TIMEOUT`]).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// A watch on the connection's state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

/// The wait before reconnect attempt `attempts` (1-based): at once, then
/// doubling from 50 ms up to [`RECONNECT_MAX`].
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    Duration::from_millis(50)
        .saturating_mul(1 << doublings)
        .min(RECONNECT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_start_at_once_and_stay_bounded() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(50));
        assert_eq!(reconnect_delay(3), Duration::from_millis(100));
        assert_eq!(reconnect_delay(1000), RECONNECT_MAX);
        assert_eq!(reconnect_delay(usize::MAX), RECONNECT_MAX);
    }
}
