//! IEX Transport Protocol (IEX-TP) 1.0: one segment per UDP datagram, a
//! 40-byte little-endian header, then length-prefixed message blocks.
//!
//! Sequence numbers let a reader drop the copies that arrive when both
//! redundant multicast feeds were captured: [`Sequencer`] keeps the next
//! expected number per stream and says how many leading messages of a
//! segment were already seen.

use std::ops::Range;

/// Bytes in a segment header.
pub const HEADER_LEN: usize = 40;
/// The IEX-TP version this decoder reads.
pub const VERSION: u8 = 1;
/// Message protocol id of TOPS 1.5.
pub const TOPS_1_5: u16 = 0x8002;
/// Message protocol id of TOPS 1.6.
pub const TOPS_1_6: u16 = 0x8003;

/// An IEX-TP segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// IEX-TP version (1).
    pub version: u8,
    /// The protocol of the messages (TOPS 1.6 = 0x8003).
    pub protocol_id: u16,
    /// The stream of messages; copies on other feeds share it.
    pub channel_id: u32,
    /// The session; sequence numbers restart with a new one.
    pub session_id: u32,
    /// Bytes of message blocks after the header.
    pub payload_len: u16,
    /// Message blocks in the segment (0 for a heartbeat).
    pub message_count: u16,
    /// Byte offset of the payload in the stream.
    pub stream_offset: i64,
    /// Sequence number of the first message; the others follow by one.
    pub first_seq: i64,
    /// When the segment was sent, ns since the Unix epoch.
    pub send_time: i64,
}

impl SegmentHeader {
    /// Reads a segment header and checks that this decoder speaks it: IEX-TP
    /// 1 carrying TOPS 1.5 or 1.6, with its payload all there.
    pub fn parse(segment: &[u8]) -> Result<Self, &'static str> {
        let Some(h) = segment.first_chunk::<HEADER_LEN>() else {
            return Err("IEX-TP segment shorter than its 40-byte header");
        };
        let header = SegmentHeader {
            version: h[0],
            protocol_id: u16::from_le_bytes([h[2], h[3]]),
            channel_id: u32::from_le_bytes(array(h, 4)),
            session_id: u32::from_le_bytes(array(h, 8)),
            payload_len: u16::from_le_bytes([h[12], h[13]]),
            message_count: u16::from_le_bytes([h[14], h[15]]),
            stream_offset: i64::from_le_bytes(array(h, 16)),
            first_seq: i64::from_le_bytes(array(h, 24)),
            send_time: i64::from_le_bytes(array(h, 32)),
        };
        if header.version != VERSION {
            return Err("not an IEX-TP 1 segment (version byte is not 1)");
        }
        if !matches!(header.protocol_id, TOPS_1_5 | TOPS_1_6) {
            return Err("IEX-TP segment of another protocol than TOPS 1.5/1.6");
        }
        if HEADER_LEN + usize::from(header.payload_len) > segment.len() {
            return Err("IEX-TP payload length past the end of the datagram");
        }
        Ok(header)
    }
}

/// Where a reader is among a segment's message blocks, as offsets into the
/// buffer holding the segment: a feed hands out one message per call, and
/// offsets let it resume without keeping a borrow of its own buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCursor {
    pos: usize,
    end: usize,
    remaining: u16,
}

impl MessageCursor {
    /// The message blocks of a segment whose header (already checked with
    /// [`SegmentHeader::parse`]) starts at `segment_start` in the buffer.
    pub fn new(segment_start: usize, header: &SegmentHeader) -> Self {
        let pos = segment_start + HEADER_LEN;
        Self {
            pos,
            end: pos + usize::from(header.payload_len),
            remaining: header.message_count,
        }
    }

    /// True when no block is left to read.
    pub fn is_done(&self) -> bool {
        self.remaining == 0 && self.pos == self.end
    }

    /// The range of the next message in `buf`, `None` after the last, or an
    /// error when the blocks do not fit the payload (the rest of the segment
    /// is then dropped: without a trustworthy length there is no next block).
    pub fn next_range(&mut self, buf: &[u8]) -> Option<Result<Range<usize>, &'static str>> {
        if self.remaining == 0 {
            if self.pos == self.end {
                return None;
            }
            self.pos = self.end;
            return Some(Err("bytes left in an IEX-TP segment after its last message"));
        }
        let start = self.pos + 2;
        let length = match buf.get(self.pos..start) {
            Some(&[lo, hi]) if start <= self.end => usize::from(u16::from_le_bytes([lo, hi])),
            _ => return Some(Err(self.abandon("IEX-TP message length past the segment payload"))),
        };
        let stop = start + length;
        if stop > self.end || stop > buf.len() {
            return Some(Err(self.abandon("IEX-TP message past the segment payload")));
        }
        self.pos = stop;
        self.remaining -= 1;
        Some(Ok(start..stop))
    }

    fn abandon(&mut self, reason: &'static str) -> &'static str {
        self.pos = self.end;
        self.remaining = 0;
        reason
    }
}

/// Iterates the messages of one segment held in a slice.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    segment: &'a [u8],
    cursor: MessageCursor,
}

impl<'a> Messages<'a> {
    /// Parses the segment header and iterates its messages.
    pub fn parse(segment: &'a [u8]) -> Result<(SegmentHeader, Self), &'static str> {
        let header = SegmentHeader::parse(segment)?;
        let cursor = MessageCursor::new(0, &header);
        Ok((header, Self { segment, cursor }))
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let segment = self.segment;
        self.cursor
            .next_range(segment)
            .map(|range| range.map(|r| segment.get(r).unwrap_or_default()))
    }
}

/// Drops messages already seen, by sequence number, per stream.
///
/// IEX sends every segment on two redundant feeds; a pcap of both holds
/// each message twice. Messages of one channel and session are numbered
/// consecutively, so any number below the next expected one is a copy.
#[derive(Debug, Clone, Default)]
pub struct Sequencer {
    streams: Vec<Stream>,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    channel_id: u32,
    session_id: u32,
    next_seq: i64,
}

/// What [`Sequencer::admit`] found about a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    /// Leading messages of the segment seen before: skip them.
    pub duplicates: u16,
    /// Messages missing between the previous segment and this one.
    pub missing: u64,
}

impl Sequencer {
    /// Streams tracked at most; a pcap with more (damage, or an unusual
    /// mix) simply goes undeduplicated for the extra ones.
    const MAX_STREAMS: usize = 64;

    /// Records a segment and says how many of its messages are new.
    pub fn admit(&mut self, header: &SegmentHeader) -> Admission {
        let count = i64::from(header.message_count);
        let end = header.first_seq.saturating_add(count);
        let found = self
            .streams
            .iter_mut()
            .find(|s| s.channel_id == header.channel_id && s.session_id == header.session_id);
        let Some(stream) = found else {
            if self.streams.len() < Self::MAX_STREAMS {
                self.streams.push(Stream {
                    channel_id: header.channel_id,
                    session_id: header.session_id,
                    next_seq: end,
                });
            }
            return Admission::default();
        };
        let admission = if header.first_seq < stream.next_seq {
            let seen = stream.next_seq.saturating_sub(header.first_seq).min(count);
            Admission {
                duplicates: u16::try_from(seen).unwrap_or(header.message_count),
                missing: 0,
            }
        } else {
            Admission {
                duplicates: 0,
                missing: u64::try_from(header.first_seq - stream.next_seq).unwrap_or(0),
            }
        };
        stream.next_seq = stream.next_seq.max(end);
        admission
    }

    /// Forgets every stream (for a new pass over the pcap).
    pub fn reset(&mut self) {
        self.streams.clear();
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes.get(at..at + N).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first_seq: i64, messages: &[&[u8]]) -> Vec<u8> {
        let payload: Vec<u8> = messages
            .iter()
            .flat_map(|m| (m.len() as u16).to_le_bytes().into_iter().chain(m.iter().copied()))
            .collect();
        let mut s = vec![1, 0];
        s.extend_from_slice(&TOPS_1_6.to_le_bytes());
        s.extend_from_slice(&1u32.to_le_bytes());
        s.extend_from_slice(&7u32.to_le_bytes());
        s.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        s.extend_from_slice(&(messages.len() as u16).to_le_bytes());
        s.extend_from_slice(&0i64.to_le_bytes());
        s.extend_from_slice(&first_seq.to_le_bytes());
        s.extend_from_slice(&1_499_697_155_788_781_000i64.to_le_bytes());
        s.extend_from_slice(&payload);
        s
    }

    #[test]
    fn reads_the_header_and_every_message() {
        let bytes = segment(5, &[b"Sabc", b"", b"Q12345"]);
        let (header, messages) = Messages::parse(&bytes).unwrap();
        assert_eq!((header.channel_id, header.session_id, header.first_seq), (1, 7, 5));
        assert_eq!(header.message_count, 3);
        let got: Vec<_> = messages.collect();
        assert_eq!(got, vec![Ok(&b"Sabc"[..]), Ok(&b""[..]), Ok(&b"Q12345"[..])]);
    }

    #[test]
    fn blocks_that_do_not_fit_the_payload_end_the_segment() {
        let mut bytes = segment(1, &[b"Sabc", b"Tdef"]);
        // Claim three messages: the third block is missing.
        bytes[14] = 3;
        let got: Vec<_> = Messages::parse(&bytes).unwrap().1.collect();
        assert_eq!(got.len(), 3);
        assert!(got[2].is_err());
        // Claim one message: bytes are left over.
        bytes[14] = 1;
        let got: Vec<_> = Messages::parse(&bytes).unwrap().1.collect();
        assert_eq!((got.len(), got[1].is_err()), (2, true));
        // A payload length past the datagram is refused up front.
        bytes[12] = 200;
        assert!(Messages::parse(&bytes).is_err());
        for cut in 0..HEADER_LEN {
            assert!(SegmentHeader::parse(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn other_protocols_and_versions_are_refused() {
        let mut bytes = segment(1, &[b"S"]);
        bytes[2..4].copy_from_slice(&0x8004u16.to_le_bytes()); // DEEP
        assert!(SegmentHeader::parse(&bytes).is_err());
        bytes[2..4].copy_from_slice(&TOPS_1_5.to_le_bytes());
        assert!(SegmentHeader::parse(&bytes).is_ok());
        bytes[0] = 2;
        assert!(SegmentHeader::parse(&bytes).is_err());
    }

    #[test]
    fn the_sequencer_drops_copies_and_counts_gaps() {
        let header = |first_seq, count| SegmentHeader::parse(&segment(first_seq, &vec![&b"S"[..]; count])).unwrap();
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.admit(&header(1, 3)), Admission::default());
        // The same segment from the other feed.
        assert_eq!(sequencer.admit(&header(1, 3)).duplicates, 3);
        // Overlapping by one, then a gap of two (6 and 7 missing).
        assert_eq!(sequencer.admit(&header(3, 3)).duplicates, 1);
        assert_eq!(sequencer.admit(&header(8, 1)).missing, 2);
        // A heartbeat carries the next expected number.
        assert_eq!(sequencer.admit(&header(9, 0)), Admission::default());
    }
}
