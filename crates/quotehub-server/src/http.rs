//! The HTTP/1.1 front door: one port serves the WebSocket endpoint, the quote
//! board, its JavaScript module and Server-Sent Events. This file reads a
//! request head (bounded in size; the caller bounds the time) and writes
//! plain responses.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers accepted.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// Header names (lowercase) and values (lossy UTF-8, trimmed).
    pub headers: Vec<(String, String)>,
    /// Bytes read past the head (a client may send a frame right behind it).
    pub rest: Vec<u8>,
}

impl Head {
    /// The first value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// True if a comma-separated header holds `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// A query parameter's raw value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// A query parameter's value, percent-decoded (`%2F` → `/`, `+` → space)
    /// as browsers encode it (`application/x-www-form-urlencoded`, by
    /// `form_urlencoded`; a broken escape such as `%zz` is kept as it is).
    pub fn query_value(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_deref()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// How many times a header appears, by lowercase name.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The socket failed or closed before the head was complete.
    #[error("reading request: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not an HTTP/1.x request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The head is larger than [`MAX_HEAD_BYTES`].
    #[error("request head larger than 16 KiB")]
    TooLarge,
}

/// Reads one request head. The limit holds however the bytes arrive: the
/// buffer never takes more than one byte past [`MAX_HEAD_BYTES`], and a head
/// that ends past the limit is refused even when it arrives complete.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Head, HeadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let room = (MAX_HEAD_BYTES + 1).saturating_sub(buffer.len()).min(chunk.len());
        if room == 0 {
            return Err(HeadError::TooLarge);
        }
        let read = stream.read(&mut chunk[..room]).await?;
        if read == 0 {
            return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(length)) if length > MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Complete(length)) => {
                // RFC 9112 §3.2: a request with two Hosts is refused (400).
                let hosts = request.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("host"));
                if hosts.count() > 1 {
                    return Err(HeadError::Malformed("more than one Host header".into()));
                }
                let target = request.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((path, query)) => (path, Some(query.to_owned())),
                    None => (target, None),
                };
                return Ok(Head {
                    method: request.method.unwrap_or_default().to_owned(),
                    path: path.to_owned(),
                    query,
                    headers: request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).trim().to_owned(),
                            )
                        })
                        .collect(),
                    rest: buffer[length..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(err) => return Err(HeadError::Malformed(err.to_string())),
        }
    }
}

/// Writes a complete response and ends the stream (`Connection: close`).
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // One write, so that head and body leave in one segment: a WebSocket
    // client that reads the refusal of its upgrade keeps only the body bytes
    // that came with the head (tungstenite does), and lost it when the body
    // followed in a second segment (a flaky `tests/auth.rs` in CI).
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    stream.write_all(&response).await?;
    // `Connection: close`: end the stream properly (TLS close_notify, TCP FIN)
    // so the client knows the body is complete.
    stream.shutdown().await
}

/// Most bytes [`linger`] reads and drops.
const LINGER_BYTES: usize = 64 * 1024;
/// How long [`linger`] waits for the client to finish sending.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// After an error response to a request not read to its end (a head over
/// the limit): reads and drops what the client is still sending, bounded in
/// bytes and time, so that closing with unread bytes does not reset the
/// connection before the client has read the response.
pub async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let drain = async {
        let mut sink = [0u8; 2048];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// A plain-text error response.
pub async fn respond_text<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, text: &str) -> std::io::Result<()> {
    respond(stream, status, "text/plain; charset=utf-8", &[], text.as_bytes()).await
}

/// A 503 refusal for a hub at one of its caps, telling the client when to
/// come back.
pub async fn respond_busy<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> std::io::Result<()> {
    respond(
        stream,
        503,
        "text/plain; charset=utf-8",
        &[("Retry-After", "5")],
        text.as_bytes(),
    )
    .await
}

/// A JSON response.
pub async fn respond_json<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    body: &serde_json::Value,
) -> std::io::Result<()> {
    let mut text = body.to_string();
    text.push('\n');
    respond(
        stream,
        status,
        "application/json",
        &[("Cache-Control", "no-store")],
        text.as_bytes(),
    )
    .await
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_head_query_headers_and_leftover() {
        let raw =
            b"GET /v1/sse?symbols=AAPL,MSFT&x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\nEXTRA";
        let head = read_head(&mut &raw[..]).await.unwrap();
        assert_eq!((head.method.as_str(), head.path.as_str()), ("GET", "/v1/sse"));
        assert_eq!(head.query_param("symbols"), Some("AAPL,MSFT"));
        assert_eq!(head.query_param("y"), None);
        assert_eq!(head.query_value("symbols").as_deref(), Some("AAPL,MSFT"));
        assert!(head.header_has_token("connection", "upgrade"));
        assert_eq!(head.rest, b"EXTRA");
    }

    #[tokio::test]
    async fn rejects_garbage_oversized_and_truncated_heads() {
        assert!(matches!(
            read_head(&mut &b"\x16\x03\x01 not http\r\n\r\n"[..]).await,
            Err(HeadError::Malformed(_))
        ));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert!(matches!(
            read_head(&mut huge.as_bytes()).await,
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(HeadError::Io(_))
        ));
        // Complete but past the limit; at the limit, with bytes behind it.
        let padded = |total: usize| {
            let start = "GET / HTTP/1.1\r\nX: ";
            format!("{start}{}\r\n\r\n", "a".repeat(total - start.len() - 4))
        };
        assert!(matches!(
            read_head(&mut padded(MAX_HEAD_BYTES + 1).as_bytes()).await,
            Err(HeadError::TooLarge)
        ));
        let at_limit = read_head(&mut padded(MAX_HEAD_BYTES).as_bytes()).await.unwrap();
        assert!(at_limit.rest.is_empty());
        // Never more than the limit (plus one byte) read: the rest stays in the stream.
        let below = format!("{}FRAME", padded(MAX_HEAD_BYTES - 1));
        let head = read_head(&mut below.as_bytes()).await.unwrap();
        assert_eq!(head.rest, b"F");
        let two_hosts = b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n";
        assert!(matches!(
            read_head(&mut &two_hosts[..]).await,
            Err(HeadError::Malformed(_))
        ));
    }
}
