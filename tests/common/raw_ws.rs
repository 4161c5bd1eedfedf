//! A WebSocket client by hand, for tests that must control every byte: no
//! automatic pongs, frames the libraries refuse to write.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TestHub, within};

/// Completes a WebSocket handshake by hand and returns the raw socket.
pub async fn upgrade(hub: &TestHub) -> TcpStream {
    let stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    match upgrade_on(stream, "/v1/quotes").await {
        Ok(stream) => stream,
        Err(status) => panic!("the upgrade got HTTP {status}"),
    }
}

/// Asks for a WebSocket at `path` over `stream`, by hand: the socket once
/// upgraded (101), else the HTTP status of the refusal.
pub async fn upgrade_on(mut stream: TcpStream, path: &str) -> Result<TcpStream, u16> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within(stream.read_exact(&mut byte)).await.unwrap();
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    if status == 101 { Ok(stream) } else { Err(status) }
}

/// Writes one masked client frame.
pub async fn write_frame(stream: &mut TcpStream, first_byte: u8, payload: &[u8]) {
    assert!(payload.len() < 126, "short frames only");
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first_byte, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
}

/// Reads one unmasked server frame: (first byte, payload).
pub async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    within(stream.read_exact(&mut header)).await.unwrap();
    let length = match header[1] & 0x7f {
        126 => {
            let mut extended = [0u8; 2];
            within(stream.read_exact(&mut extended)).await.unwrap();
            usize::from(u16::from_be_bytes(extended))
        }
        127 => {
            let mut extended = [0u8; 8];
            within(stream.read_exact(&mut extended)).await.unwrap();
            usize::try_from(u64::from_be_bytes(extended)).unwrap()
        }
        short => usize::from(short),
    };
    let mut payload = vec![0u8; length];
    within(stream.read_exact(&mut payload)).await.unwrap();
    (header[0], payload)
}

/// Reads frames until the close frame: (code, reason).
pub async fn read_close(stream: &mut TcpStream) -> (u16, String) {
    loop {
        let (first, payload) = read_frame(stream).await;
        if first == 0x88 {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
        }
    }
}
