//! An echo route for conformance testing, off unless configured: WebSocket
//! upgrades at `/` echo every message back, over the same front door,
//! handshake and WebSocket settings as the quote stream, so that the Autobahn
//! test suite's cases exercise the hub's own connection machinery.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

use crate::config::ServerConfig;
use crate::connection::close_for;
use crate::http::Head;
use crate::upgrade;

/// Largest message echoed: Autobahn's 9.x cases send up to 16 MiB.
const MAX_ECHO_BYTES: usize = 16 * 1024 * 1024;

/// Echoes messages until the peer closes, or answers a broken frame with
/// the close code the quote stream would use.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, head: Head, config: &ServerConfig) {
    let echo_config = ServerConfig {
        max_request_bytes: MAX_ECHO_BYTES,
        max_message_bytes: MAX_ECHO_BYTES,
        ..config.clone()
    };
    let Some((mut ws, _)) = upgrade::accept(stream, head, &echo_config).await else {
        return;
    };
    while let Some(message) = ws.next().await {
        let reply = match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => message,
            // tungstenite answers pings and the close handshake itself.
            Ok(_) => continue,
            Err(err) => {
                if let Some(frame) = close_for(&err) {
                    let _ = ws.send(Message::Close(Some(frame))).await;
                }
                break;
            }
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
    let _ = ws.close(None).await;
}
