//! The load's WebSocket client: the handshake, then frames read the way the
//! floor's clients read theirs (header, then the payload with one
//! `read_exact` into a reused buffer).
//!
//! Why not tungstenite here: the clients share the machine's cores with the
//! target, so what a client spends per message is taken from the target.
//! tungstenite reads at most its read-buffer size per call (4 KiB, kept
//! small for 10,000 connections) and allocates each message, so a 12 KiB
//! message cost the hub's clients four reads and an allocation where the
//! floor's cost one read. With the same reading for every target, the
//! ratios compare the servers, not their clients.

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Longest response head the handshake reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Any fixed key does (16 bytes, base64): it only proves the server speaks WebSocket.
const HANDSHAKE_KEY: &str = "cXVvdGVodWIgYmVuY2ghIQ==";
/// Client frames must be masked (RFC 6455 §5.3); the key need not be secret here.
const MASK: [u8; 4] = [0x5a, 0x3c, 0xa5, 0xc3];

/// The frame kinds the clients read and send (RFC 6455 §5.2), as bytes to
/// match on.
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A connected client: frames in, masked frames out.
#[derive(Debug)]
pub struct WsClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    max_frame: usize,
}

impl WsClient {
    /// Upgrades `stream` to WebSocket at `url` (`ws://host:port/path`),
    /// reading through a buffer of `read_buffer` bytes.
    /// `api_key`, for a hub that requires one, goes in the `Authorization` header.
    pub async fn handshake(
        stream: TcpStream,
        url: &str,
        api_key: Option<&str>,
        read_buffer: usize,
        max_frame: usize,
    ) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .context("the bench's clients speak ws:// only")?;
        let (host, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let (read, mut writer) = stream.into_split();
        let authorization = api_key
            .map(|key| format!("Authorization: Bearer {key}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n{authorization}\r\n"
        );
        writer.write_all(request.as_bytes()).await?;
        let mut reader = BufReader::with_capacity(read_buffer, read);
        let head = read_head(&mut reader).await?;
        let mut lines = head.lines();
        let status = lines.next().unwrap_or_default();
        anyhow::ensure!(
            status.split_whitespace().nth(1) != Some("401"),
            "the server refused the upgrade: {status}: this hub needs an API key: --api-key or QUOTEHUB_API_KEY"
        );
        anyhow::ensure!(
            status.split_whitespace().nth(1) == Some("101"),
            "the server refused the upgrade: {status}"
        );
        let accept = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, value)| value.trim().to_string());
        anyhow::ensure!(
            accept.as_deref() == Some(derive_accept_key(HANDSHAKE_KEY.as_bytes()).as_str()),
            "the server's Sec-WebSocket-Accept is missing or wrong"
        );
        Ok(Self {
            reader,
            writer,
            max_frame,
        })
    }

    /// Reads the next frame into `payload` and returns its opcode.
    /// Fragmented messages are refused: neither the hub nor the peer sends them.
    pub async fn read_frame(&mut self, payload: &mut Vec<u8>) -> anyhow::Result<u8> {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).await?;
        let fin = head[0] & 0x80 != 0;
        let kind = head[0] & 0x0f;
        anyhow::ensure!(
            fin && kind != 0,
            "a fragmented message (the bench expects whole frames)"
        );
        anyhow::ensure!(head[1] & 0x80 == 0, "a masked frame from the server");
        let length = match head[1] & 0x7f {
            126 => u64::from(self.reader.read_u16().await?),
            127 => self.reader.read_u64().await?,
            short => u64::from(short),
        };
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        anyhow::ensure!(length <= self.max_frame, "a frame of {length} bytes");
        payload.resize(length, 0);
        self.reader.read_exact(payload).await?;
        Ok(kind)
    }

    /// Sends one masked frame (writing, unlike reading, is off the measured
    /// path: one subscribe and the odd pong per client).
    pub async fn send(&mut self, kind: u8, payload: &[u8]) -> anyhow::Result<()> {
        let header = FrameHeader {
            opcode: OpCode::from(kind),
            mask: Some(MASK),
            ..FrameHeader::default()
        };
        let mut frame = Vec::with_capacity(14 + payload.len());
        Frame::from_payload(header, Bytes::copy_from_slice(payload)).format(&mut frame)?;
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// Sends a close frame (normal closure); the server's answer is not awaited.
    pub async fn close(&mut self) {
        let _ = self.send(opcode::CLOSE, &1000u16.to_be_bytes()).await;
    }
}

/// Reads the HTTP response head, up to and including the blank line.
async fn read_head(reader: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<String> {
    let mut head = String::new();
    loop {
        let before = head.len();
        let read = reader
            .read_line(&mut head)
            .await
            .context("reading the upgrade response")?;
        anyhow::ensure!(read > 0, "the server closed the connection during the upgrade");
        anyhow::ensure!(
            head.len() <= MAX_RESPONSE_HEAD,
            "an upgrade response head over {MAX_RESPONSE_HEAD} bytes"
        );
        if head[before..].trim().is_empty() {
            return Ok(head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    /// A tungstenite server on 127.0.0.1 that echoes text, sends `binary`
    /// and then a ping, and reports the pong's payload.
    async fn server(binary: Vec<u8>) -> (String, tokio::task::JoinHandle<Option<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/quotes", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                return None;
            };
            ws.send(Message::text(format!("echo {text}"))).await.unwrap();
            ws.send(Message::binary(binary)).await.unwrap();
            ws.send(Message::Ping(b"beat".to_vec().into())).await.unwrap();
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Pong(payload) = message {
                    return Some(payload.to_vec());
                }
            }
            None
        });
        (url, task)
    }

    #[tokio::test]
    async fn speaks_to_a_websocket_server_in_both_directions() {
        // 70,000 bytes needs the 8-byte length; the request a 2-byte one at 200.
        let binary: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let (url, server) = server(binary.clone()).await;
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = WsClient::handshake(stream, &url, None, 4096, 1 << 20).await.unwrap();
        let request = "x".repeat(200);
        client.send(opcode::TEXT, request.as_bytes()).await.unwrap();

        let mut payload = Vec::new();
        assert_eq!(client.read_frame(&mut payload).await.unwrap(), opcode::TEXT);
        assert_eq!(payload, format!("echo {request}").as_bytes());
        assert_eq!(client.read_frame(&mut payload).await.unwrap(), opcode::BINARY);
        assert_eq!(payload, binary);
        assert_eq!(client.read_frame(&mut payload).await.unwrap(), opcode::PING);
        client.send(opcode::PONG, &payload).await.unwrap();
        assert_eq!(server.await.unwrap().as_deref(), Some(&b"beat"[..]));
    }

    #[tokio::test]
    async fn refuses_a_frame_over_the_limit() {
        let (url, _server) = server(vec![7; 5_000]).await;
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = WsClient::handshake(stream, &url, None, 4096, 1_000).await.unwrap();
        client.send(opcode::TEXT, b"hi").await.unwrap();
        let mut payload = Vec::new();
        assert_eq!(client.read_frame(&mut payload).await.unwrap(), opcode::TEXT);
        let error = client.read_frame(&mut payload).await.unwrap_err();
        assert!(error.to_string().contains("5000 bytes"), "{error}");
    }

    #[tokio::test]
    async fn reports_a_refused_upgrade() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let error = WsClient::handshake(stream, &format!("ws://{addr}/nope"), None, 4096, 1_000)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
    }
}
