//! The WebSocket handshake: path, sub-protocol, and per-connection buffers.

use tokio_tungstenite::tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::ServerConfig;

/// The path quotes are served on.
pub const QUOTES_PATH: &str = "/v1/quotes";
/// The binary sub-protocol, the default when a client names none.
pub const BINARY_PROTOCOL: &str = "quotehub.v1.binary";

/// Checks a handshake request and picks the sub-protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handshake;

impl Callback for Handshake {
    fn on_request(self, request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        if request.uri().path() != QUOTES_PATH {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("quotehub serves WebSocket quotes at {QUOTES_PATH}\n"),
            ));
        }
        if let Some(offered) = request.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
            let offered = offered.to_str().unwrap_or_default();
            if !offered.split(',').map(str::trim).any(|p| p == BINARY_PROTOCOL) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("unsupported sub-protocol {offered:?}; this hub speaks {BINARY_PROTOCOL}\n"),
                ));
            }
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(BINARY_PROTOCOL),
            );
        }
        Ok(response)
    }
}

fn refuse(status: StatusCode, body: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Per-connection WebSocket settings. tungstenite allocates its read buffer
/// eagerly (128 KiB by default); requests are small, so 4 KiB serves and ten
/// thousand idle clients cost 40 MiB instead of 1.25 GiB.
pub(crate) fn websocket_config(config: &ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(config.max_message_bytes)
        .max_write_buffer_size(config.max_message_bytes * 16)
        .max_message_size(Some(config.max_request_bytes))
        .max_frame_size(Some(config.max_request_bytes))
}
