//! Opening a connection for a `ws://` or `wss://` URL: TCP, then (for
//! `wss://`) the TLS handshake with the host name verified, then, for
//! [`connect_websocket`], the WebSocket handshake over that stream with
//! tokio-tungstenite's `client_async` (so tokio-tungstenite needs no TLS
//! feature of its own).

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::ConnectError;
use crate::stream::Stream;
use crate::trust::ClientTls;

/// Connects to the server of `uri` (`ws://` or `wss://`), with TLS for
/// `wss://` verified against `tls`. Nagle's algorithm is off: quotes are
/// small and latency matters more than packet count.
pub async fn connect(uri: &Uri, tls: &ClientTls) -> Result<Stream, ConnectError> {
    let url_error = |reason| ConnectError::Url {
        url: format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            uri.path()
        ),
        reason,
    };
    let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(url_error("expected a ws:// or wss:// URL")),
    };
    let host = uri.host().ok_or_else(|| url_error("the URL names no host"))?;
    // `[::1]` in a URL is `::1` to the resolver and to the certificate check.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let server = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|source| ConnectError::Tcp {
            server: server.clone(),
            source,
        })?;
    tcp.set_nodelay(true).map_err(|source| ConnectError::Tcp {
        server: server.clone(),
        source,
    })?;
    if !secure {
        return Ok(Stream::Plain(tcp));
    }
    let name =
        ServerName::try_from(host.to_owned()).map_err(|_| url_error("the host is not a valid TLS server name"))?;
    let tls_stream = tls
        .connector()
        .connect(name, tcp)
        .await
        .map_err(|error| ConnectError::handshake(server, error))?;
    Ok(Stream::Tls(Box::new(tls_stream)))
}

/// Connects and performs the WebSocket handshake of `request` (a URL, or a
/// request with extra headers such as `Sec-WebSocket-Protocol`).
pub async fn connect_websocket(
    request: impl IntoClientRequest,
    config: Option<WebSocketConfig>,
    tls: &ClientTls,
) -> Result<(WebSocketStream<Stream>, Response), ConnectError> {
    let request = request.into_client_request()?;
    let stream = connect(request.uri(), tls).await?;
    Ok(tokio_tungstenite::client_async_with_config(request, stream, config).await?)
}
