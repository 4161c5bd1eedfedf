//! What WebSocket upstreams (`ws://`/`wss://` Polygon-style, `quotehub://`
//! and `quotehub+tls://` relays) share: opening the connection through the
//! shared TLS client with a read-idle timeout under it, and reading with
//! heartbeat pings so that a quiet but healthy upstream keeps talking.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quotehub_connect::ClientTls;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message};

use super::LiveError;
use super::idle::IdleTimeout;

/// A WebSocket connection to an upstream, plain or TLS, that fails once
/// nothing has arrived for its idle timeout.
pub type UpstreamSocket = WebSocketStream<IdleTimeout<quotehub_connect::Stream>>;

/// Connects (TCP, then TLS for `wss://`, verified against `tls`) and
/// performs the WebSocket handshake of `request`.
pub async fn open(
    request: Request,
    config: WebSocketConfig,
    tls: &ClientTls,
    idle_timeout: Duration,
) -> Result<UpstreamSocket, LiveError> {
    let stream = quotehub_connect::connect(request.uri(), tls).await?;
    let stream = IdleTimeout::new(stream, idle_timeout);
    let (ws, _response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// Pings the upstream twice per idle timeout, so that a healthy one answers
/// (a pong resets the idle clock) and one that missed two pongs in a row
/// is declared lost by the [`IdleTimeout`] under the socket.
#[derive(Debug)]
pub struct Heartbeat {
    pings: Interval,
}

impl Heartbeat {
    /// Pings every half of `idle_timeout`, the first one half an idle
    /// timeout from now.
    pub fn new(idle_timeout: Duration) -> Self {
        let period = (idle_timeout / 2).max(Duration::from_millis(1));
        let mut pings = tokio::time::interval_at(Instant::now() + period, period);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { pings }
    }

    /// The next message from `ws`, sending pings while waiting for it.
    pub async fn next(&mut self, ws: &mut UpstreamSocket) -> Option<Result<Message, Error>> {
        loop {
            tokio::select! {
                message = ws.next() => return message,
                _ = self.pings.tick() => {
                    if let Err(error) = ws.send(Message::Ping(Default::default())).await {
                        return Some(Err(error));
                    }
                }
            }
        }
    }
}
