//! WebSocket frames as the hub's writer puts them on the socket (RFC 6455
//! §5.2): a server's frames are never masked, and the hub never fragments.

/// The longest unmasked frame header: 2 bytes, then a 64-bit length.
pub const FRAME_HEADER_MAX: usize = 10;

/// The frame kinds (RFC 6455 §5.2).
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    /// Only the tests write one: the read side's pongs are tungstenite's.
    #[cfg(test)]
    pub const PONG: u8 = 0xA;
}

/// The header of a final, unmasked frame of `payload_len` bytes: `header[..len]`.
pub fn header(kind: u8, payload_len: usize) -> ([u8; FRAME_HEADER_MAX], usize) {
    let mut header = [0u8; FRAME_HEADER_MAX];
    header[0] = 0x80 | kind;
    let len = match payload_len {
        short @ 0..=125 => {
            header[1] = short as u8;
            2
        }
        medium @ 126..=0xffff => {
            header[1] = 126;
            header[2..4].copy_from_slice(&(medium as u16).to_be_bytes());
            4
        }
        long => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(long as u64).to_be_bytes());
            10
        }
    };
    (header, len)
}

/// A whole frame: header and payload in one buffer, for the small frames
/// (replies, pings, closes).
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let (header, len) = header(kind, payload.len());
    let mut frame = Vec::with_capacity(len + payload.len());
    frame.extend_from_slice(&header[..len]);
    frame.extend_from_slice(payload);
    frame
}

/// Whether `frames` (whole frames, as tungstenite writes them) hold a close frame.
pub fn holds_close(mut frames: &[u8]) -> bool {
    while frames.len() >= 2 {
        if frames[0] & 0x0f == opcode::CLOSE {
            return true;
        }
        let (header, length): (usize, usize) = match frames[1] & 0x7f {
            126 if frames.len() >= 4 => (4, usize::from(u16::from_be_bytes([frames[2], frames[3]]))),
            127 if frames.len() >= 10 => {
                let mut length = [0u8; 8];
                length.copy_from_slice(&frames[2..10]);
                (10, usize::try_from(u64::from_be_bytes(length)).unwrap_or(usize::MAX))
            }
            126 | 127 => return false,
            short => (2, usize::from(short)),
        };
        // A masked frame (never written by a server) would carry 4 more bytes.
        let mask = if frames[1] & 0x80 != 0 { 4 } else { 0 };
        frames = frames
            .get(header.saturating_add(mask).saturating_add(length)..)
            .unwrap_or_default();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::Message;
    use tungstenite::protocol::{Role, WebSocket};

    /// What tungstenite, as a client, reads from `bytes`.
    fn read_as_client(bytes: Vec<u8>) -> Vec<Message> {
        let mut socket = WebSocket::from_raw_socket(std::io::Cursor::new(bytes), Role::Client, None);
        let mut messages = Vec::new();
        while let Ok(message) = socket.read() {
            messages.push(message);
        }
        messages
    }

    #[test]
    fn frames_of_every_length_class_read_back() {
        let mut wire = Vec::new();
        let payloads: Vec<Vec<u8>> = [0usize, 125, 126, 65_535, 65_536, 200_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        for payload in &payloads {
            let (header, len) = header(opcode::BINARY, payload.len());
            wire.extend_from_slice(&header[..len]);
            wire.extend_from_slice(payload);
        }
        wire.extend(frame(opcode::TEXT, br#"{"type":"ack"}"#));
        wire.extend(frame(opcode::PING, b""));
        let messages = read_as_client(wire);
        assert_eq!(messages.len(), payloads.len() + 2);
        for (message, payload) in messages.iter().zip(&payloads) {
            assert_eq!(message, &Message::binary(payload.clone()));
        }
        assert_eq!(messages[payloads.len()], Message::text(r#"{"type":"ack"}"#));
        assert_eq!(messages[payloads.len() + 1], Message::Ping(Vec::new().into()));
    }

    #[test]
    fn a_close_is_found_among_frames_and_not_in_payloads() {
        // Payload bytes that look like a close frame's first byte.
        let mut frames = frame(opcode::BINARY, &[0x88; 300]);
        assert!(!holds_close(&frames), "a close byte inside a payload is not a close");
        frames.extend(frame(opcode::CLOSE, &1000u16.to_be_bytes()));
        assert!(holds_close(&frames));
        assert!(!holds_close(&frame(opcode::PING, b"x")));
        assert!(!holds_close(&[]));
    }
}
