//! The WebSocket upgrade at `/v1/quotes`: validate the handshake, pick the
//! sub-protocol, answer 101, and hand the socket to tungstenite.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::config::ServerConfig;
use crate::http::{Head, respond_text};

/// The binary sub-protocol, the default when a client names none.
pub const BINARY_PROTOCOL: &str = "quotehub.v1.binary";
/// The JSON sub-protocol: the same content as JSON text.
pub const JSON_PROTOCOL: &str = "quotehub.v1.json";

/// How a client receives records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Binary records (`quotehub.v1.binary`).
    Binary,
    /// JSON text (`quotehub.v1.json`).
    Json,
}

/// Completes the handshake and hands the socket to tungstenite, or answers
/// why not (returning `None`).
pub(crate) async fn accept<S>(stream: S, head: Head, config: &ServerConfig) -> Option<(WebSocketStream<S>, Format)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (stream, rest, format) = handshake(stream, head).await?;
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(websocket_config(config))).await;
    Some((ws, format))
}

/// Validates the upgrade request and answers 101, or answers why not
/// (returning `None`). Returns the socket, the bytes the client sent after
/// its request head, and the format.
pub(crate) async fn handshake<S>(mut stream: S, head: Head) -> Option<(S, Vec<u8>, Format)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let refusal = |text: &'static str| (400, text.to_owned());
    let checked = (|| {
        if head.method != "GET" {
            return Err((405, "the WebSocket endpoint takes GET\n".to_owned()));
        }
        if !head
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
            || !head.header_has_token("connection", "upgrade")
        {
            return Err((
                426,
                "this is a WebSocket endpoint: send Upgrade: websocket\n".to_owned(),
            ));
        }
        if head.header("sec-websocket-version") != Some("13") {
            return Err(refusal("Sec-WebSocket-Version must be 13\n"));
        }
        let key = head
            .header("sec-websocket-key")
            .ok_or_else(|| refusal("Sec-WebSocket-Key is missing\n"))?;
        let format = choose_format(&head)?;
        Ok((derive_accept_key(key.as_bytes()), format))
    })();
    let (accept_key, format) = match checked {
        Ok(accepted) => accepted,
        Err((status, text)) => {
            let _ = respond_text(&mut stream, status, &text).await;
            return None;
        }
    };
    let protocol_line = match (head.header("sec-websocket-protocol"), format) {
        (None, _) => String::new(),
        (Some(_), Format::Binary) => format!("Sec-WebSocket-Protocol: {BINARY_PROTOCOL}\r\n"),
        (Some(_), Format::Json) => format!("Sec-WebSocket-Protocol: {JSON_PROTOCOL}\r\n"),
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n{protocol_line}\r\n"
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    Some((stream, head.rest, format))
}

/// The first sub-protocol the client offers that the hub speaks; binary when
/// it offers none; an error naming both when it offers only others.
fn choose_format(head: &Head) -> Result<Format, (u16, String)> {
    let Some(offered) = head.header("sec-websocket-protocol") else {
        return Ok(Format::Binary);
    };
    for protocol in offered.split(',').map(str::trim) {
        match protocol {
            BINARY_PROTOCOL => return Ok(Format::Binary),
            JSON_PROTOCOL => return Ok(Format::Json),
            _ => {}
        }
    }
    Err((
        400,
        format!("unsupported sub-protocol {offered:?}; this hub speaks {BINARY_PROTOCOL} and {JSON_PROTOCOL}\n"),
    ))
}

/// Per-connection WebSocket settings. tungstenite allocates its read buffer
/// eagerly (128 KiB by default); requests are small JSON, so 1 KiB serves
/// (a larger message is read in several chunks) and ten thousand idle
/// clients cost 10 MiB of it instead of 1.25 GiB.
pub(crate) fn websocket_config(config: &ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(config.max_message_bytes)
        .max_write_buffer_size(config.max_message_bytes * 16)
        .max_message_size(Some(config.max_request_bytes))
        .max_frame_size(Some(config.max_request_bytes))
}
