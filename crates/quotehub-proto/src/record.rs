//! The binary record layout, version 1: every byte offset the hub sends lives
//! in this file, except those of the minor-1 records, beside their models in
//! `bar.rs` and `bbo.rs` (this file decodes them). `SPEC.md` in this crate is
//! the same layout for readers, with test vectors that the tests below check
//! against this code.
//!
//! A binary WebSocket message is a sequence of records. Each record starts with
//! a 4-byte header — `length: u16` (bytes in the whole record, header included),
//! `rtype: u8`, `flags: u8` — so a reader can skip record types it does not
//! know. All integers are little-endian; every record length is a multiple of 8.
//! The first record of every message is a [`MessageHeader`].

use crate::bar::{BAR_LEN, BarRecord};
use crate::bbo::{BBO_LEN, BboRecord};
use crate::error::{Error, Result};
use crate::event::{Quote, Trade};
use crate::price::Price;
use crate::symbol::Symbol;

/// Major version of the record layout; a new major changes existing records.
pub const PROTOCOL_VERSION: u8 = 1;
/// Minor version: what this build adds on top of the major version's first
/// layout. Readers accept any minor of their major (see SPEC.md).
/// Minor 1 adds the bar and BBO records (sent only to clients that ask for
/// their channels), which the hub sends: every message it writes says 1.
pub const PROTOCOL_MINOR: u8 = 1;

/// Record type bytes.
pub mod rtype {
    /// [`super::MessageHeader`]: opens every binary message.
    pub const MESSAGE_HEADER: u8 = 0x01;
    /// A quote record.
    pub const QUOTE: u8 = 0x02;
    /// A trade record.
    pub const TRADE: u8 = 0x03;
    /// A status record (feed and hub state changes).
    pub const STATUS: u8 = 0x04;
    /// A bar record (minor 1; [`crate::bar::BarRecord`]).
    pub const BAR: u8 = 0x05;
    /// A consolidated best bid and offer record (minor 1; [`crate::bbo::BboRecord`]).
    pub const BBO: u8 = 0x06;
}

/// Bytes in the message header record.
pub const MESSAGE_HEADER_LEN: usize = 16;
/// Bytes in a quote record.
pub const QUOTE_LEN: usize = 72;
/// Bytes in a trade record.
pub const TRADE_LEN: usize = 64;
/// Bytes in a status record.
pub const STATUS_LEN: usize = 24;

/// Record flags (the header's fourth byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// The record is the last known value of its symbol, sent on subscribe.
    pub const SNAPSHOT: Flags = Flags(0x01);
    /// The record stands for several updates merged while the client lagged.
    pub const CONFLATED: Flags = Flags(0x02);
    /// The record comes from a recorded feed being replayed.
    pub const REPLAYED: Flags = Flags(0x04);
    /// On a snapshot sent for a resume: the hub no longer held every record
    /// since the client's last sequence number, so some were lost; the
    /// snapshot replaces them.
    pub const RESET: Flags = Flags(0x08);

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both flag sets.
    #[must_use]
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The names of the set flags, as JSON shows them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Flags::SNAPSHOT, "snapshot"),
            (Flags::CONFLATED, "conflated"),
            (Flags::REPLAYED, "replayed"),
            (Flags::RESET, "reset"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

/// Opens every binary message. Layout (16 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 16 |
/// | 2 | 1 | rtype = 0x01 |
/// | 3 | 1 | flags = 0 |
/// | 4 | 1 | protocol major version = 1 |
/// | 5 | 1 | protocol minor version |
/// | 6 | 2 | reserved, 0 |
/// | 8 | 8 | send_ts: u64 ns since the Unix epoch, stamped when the message is written |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Protocol major version of the message.
    pub version: u8,
    /// Protocol minor version of the message.
    pub minor: u8,
    /// When the hub wrote the message, ns since the Unix epoch.
    pub send_ts: u64,
}

impl MessageHeader {
    /// The header's bytes for a message written at `send_ts`.
    pub fn encode(send_ts: u64) -> [u8; MESSAGE_HEADER_LEN] {
        let mut out = [0u8; MESSAGE_HEADER_LEN];
        put_header(&mut out, MESSAGE_HEADER_LEN, rtype::MESSAGE_HEADER, Flags::default());
        out[4] = PROTOCOL_VERSION;
        out[5] = PROTOCOL_MINOR;
        out[8..16].copy_from_slice(&send_ts.to_le_bytes());
        out
    }
}

/// A quote record as received: the quote plus its delivery metadata.
/// Layout (72 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 72 |
/// | 2 | 1 | rtype = 0x02 |
/// | 3 | 1 | flags |
/// | 4 | 4 | conflated: u32, updates merged into this one (0 if none) |
/// | 8 | 16 | symbol, ASCII, NUL-padded |
/// | 24 | 8 | seq: u64, per-symbol sequence number |
/// | 32 | 8 | event_ts: u64 ns since the Unix epoch (venue) |
/// | 40 | 8 | recv_ts: u64 ns since the Unix epoch (hub ingest) |
/// | 48 | 8 | bid_price: i64, units of 10⁻⁹ |
/// | 56 | 8 | ask_price: i64, units of 10⁻⁹ |
/// | 64 | 4 | bid_size: u32 shares |
/// | 68 | 4 | ask_size: u32 shares |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteRecord {
    /// The quote.
    pub quote: Quote,
    /// Snapshot, conflated, replayed.
    pub flags: Flags,
    /// How many updates were merged into this record (0 if none).
    pub conflated: u32,
}

impl QuoteRecord {
    /// Encodes the record into its 72 wire bytes.
    pub fn encode(&self) -> [u8; QUOTE_LEN] {
        let q = &self.quote;
        let mut out = [0u8; QUOTE_LEN];
        put_header(&mut out, QUOTE_LEN, rtype::QUOTE, self.flags);
        out[4..8].copy_from_slice(&self.conflated.to_le_bytes());
        out[8..24].copy_from_slice(&q.symbol.to_wire());
        out[24..32].copy_from_slice(&q.seq.to_le_bytes());
        out[32..40].copy_from_slice(&q.event_ts.to_le_bytes());
        out[40..48].copy_from_slice(&q.recv_ts.to_le_bytes());
        out[48..56].copy_from_slice(&q.bid_price.units().to_le_bytes());
        out[56..64].copy_from_slice(&q.ask_price.units().to_le_bytes());
        out[64..68].copy_from_slice(&q.bid_size.to_le_bytes());
        out[68..72].copy_from_slice(&q.ask_size.to_le_bytes());
        out
    }

    /// Decodes the known 72-byte prefix of a quote record.
    pub fn decode(bytes: &[u8; QUOTE_LEN]) -> Result<Self> {
        Ok(Self {
            flags: Flags(bytes[3]),
            conflated: u32_at(bytes, 4),
            quote: Quote {
                symbol: Symbol::from_wire(&symbol_at(bytes, 8))?,
                seq: u64_at(bytes, 24),
                event_ts: u64_at(bytes, 32),
                recv_ts: u64_at(bytes, 40),
                bid_price: Price::from_units(i64_at(bytes, 48)),
                ask_price: Price::from_units(i64_at(bytes, 56)),
                bid_size: u32_at(bytes, 64),
                ask_size: u32_at(bytes, 68),
            },
        })
    }
}

/// A trade record as received. Layout (64 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 64 |
/// | 2 | 1 | rtype = 0x03 |
/// | 3 | 1 | flags |
/// | 4 | 4 | conflated: u32, records merged into this one (0 if none) |
/// | 8 | 16 | symbol, ASCII, NUL-padded |
/// | 24 | 8 | seq: u64, per-symbol sequence number |
/// | 32 | 8 | event_ts: u64 ns since the Unix epoch (venue) |
/// | 40 | 8 | recv_ts: u64 ns since the Unix epoch (hub ingest) |
/// | 48 | 8 | price: i64, units of 10⁻⁹ |
/// | 56 | 4 | size: u32 shares |
/// | 60 | 4 | reserved, 0 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRecord {
    /// The trade.
    pub trade: Trade,
    /// Replayed, or conflated (a lagging client's pending trade that stands
    /// for later records of its symbol; snapshots are always quotes).
    pub flags: Flags,
    /// How many records were merged into this one (0 if none).
    pub conflated: u32,
}

impl TradeRecord {
    /// Encodes the record into its 64 wire bytes.
    pub fn encode(&self) -> [u8; TRADE_LEN] {
        let t = &self.trade;
        let mut out = [0u8; TRADE_LEN];
        put_header(&mut out, TRADE_LEN, rtype::TRADE, self.flags);
        out[4..8].copy_from_slice(&self.conflated.to_le_bytes());
        out[8..24].copy_from_slice(&t.symbol.to_wire());
        out[24..32].copy_from_slice(&t.seq.to_le_bytes());
        out[32..40].copy_from_slice(&t.event_ts.to_le_bytes());
        out[40..48].copy_from_slice(&t.recv_ts.to_le_bytes());
        out[48..56].copy_from_slice(&t.price.units().to_le_bytes());
        out[56..60].copy_from_slice(&t.size.to_le_bytes());
        out
    }

    /// Decodes the known 64-byte prefix of a trade record.
    pub fn decode(bytes: &[u8; TRADE_LEN]) -> Result<Self> {
        Ok(Self {
            flags: Flags(bytes[3]),
            conflated: u32_at(bytes, 4),
            trade: Trade {
                symbol: Symbol::from_wire(&symbol_at(bytes, 8))?,
                seq: u64_at(bytes, 24),
                event_ts: u64_at(bytes, 32),
                recv_ts: u64_at(bytes, 40),
                price: Price::from_units(i64_at(bytes, 48)),
                size: u32_at(bytes, 56),
            },
        })
    }
}

/// What a status record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// A replay began its first pass (`detail`: 0).
    ReplayStarted,
    /// A looped replay started over (`detail`: the pass number now starting, from 1).
    ReplayLooped,
    /// A replay reached its end and stopped (`detail`: events replayed).
    ReplayEnded,
    /// A live source lost its upstream (`detail`: 0).
    UpstreamDown,
    /// A live source is receiving again (`detail`: 0).
    UpstreamUp,
    /// The hub is shutting down (`detail`: ms until it closes connections).
    Shutdown,
    /// A code this build does not know.
    Other(u16),
}

impl StatusCode {
    /// The code's number on the wire.
    pub const fn to_u16(self) -> u16 {
        match self {
            StatusCode::ReplayStarted => 1,
            StatusCode::ReplayLooped => 2,
            StatusCode::ReplayEnded => 3,
            StatusCode::UpstreamDown => 4,
            StatusCode::UpstreamUp => 5,
            StatusCode::Shutdown => 6,
            StatusCode::Other(code) => code,
        }
    }

    /// The code for a wire number.
    pub const fn from_u16(code: u16) -> Self {
        match code {
            1 => StatusCode::ReplayStarted,
            2 => StatusCode::ReplayLooped,
            3 => StatusCode::ReplayEnded,
            4 => StatusCode::UpstreamDown,
            5 => StatusCode::UpstreamUp,
            6 => StatusCode::Shutdown,
            other => StatusCode::Other(other),
        }
    }

    /// The code's name in JSON and logs.
    pub const fn name(self) -> &'static str {
        match self {
            StatusCode::ReplayStarted => "replay_started",
            StatusCode::ReplayLooped => "replay_looped",
            StatusCode::ReplayEnded => "replay_ended",
            StatusCode::UpstreamDown => "upstream_down",
            StatusCode::UpstreamUp => "upstream_up",
            StatusCode::Shutdown => "shutdown",
            StatusCode::Other(_) => "other",
        }
    }
}

/// A change of feed or hub state, sent to every connected client. Layout (24 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 24 |
/// | 2 | 1 | rtype = 0x04 |
/// | 3 | 1 | flags = 0 |
/// | 4 | 2 | code: u16 (see [`StatusCode`]) |
/// | 6 | 2 | feed: u16, which feed (0 = the hub itself or its only feed) |
/// | 8 | 8 | ts: u64 ns since the Unix epoch, when the state changed |
/// | 16 | 8 | detail: u64, meaning depends on the code |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    /// What happened.
    pub code: StatusCode,
    /// Which feed.
    pub feed: u16,
    /// When, ns since the Unix epoch.
    pub ts: u64,
    /// Code-specific detail.
    pub detail: u64,
}

impl StatusRecord {
    /// Encodes the record into its 24 wire bytes.
    pub fn encode(&self) -> [u8; STATUS_LEN] {
        let mut out = [0u8; STATUS_LEN];
        put_header(&mut out, STATUS_LEN, rtype::STATUS, Flags::default());
        out[4..6].copy_from_slice(&self.code.to_u16().to_le_bytes());
        out[6..8].copy_from_slice(&self.feed.to_le_bytes());
        out[8..16].copy_from_slice(&self.ts.to_le_bytes());
        out[16..24].copy_from_slice(&self.detail.to_le_bytes());
        out
    }

    /// Decodes the known 24-byte prefix of a status record.
    pub fn decode(bytes: &[u8; STATUS_LEN]) -> Self {
        Self {
            code: StatusCode::from_u16(u16::from_le_bytes([bytes[4], bytes[5]])),
            feed: u16::from_le_bytes([bytes[6], bytes[7]]),
            ts: u64_at(bytes, 8),
            detail: u64_at(bytes, 16),
        }
    }
}

/// Sets the flags byte of an encoded quote, trade, bar or BBO record, and for a snapshot
/// its sequence number: a snapshot states the symbol's sequence at the moment
/// it was taken, so live records continue from it with no apparent gap.
pub fn restamp(record: &mut [u8], flags: Flags, seq: u64) {
    if record.len() >= 32 {
        record[3] = flags.0;
        record[24..32].copy_from_slice(&seq.to_le_bytes());
    }
}

/// The sequence number of an encoded quote, trade, bar or BBO record (bytes
/// 24..32, where [`restamp`] writes it); `None` for a shorter record.
pub fn seq_of(record: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(record.get(24..32)?.try_into().ok()?))
}

/// One record of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A quote.
    Quote(QuoteRecord),
    /// A trade.
    Trade(TradeRecord),
    /// A feed or hub state change.
    Status(StatusRecord),
    /// An OHLCV bar (channels `bars.1s`, `bars.1m`).
    Bar(BarRecord),
    /// A consolidated best bid and offer (channel `bbo`).
    Bbo(BboRecord),
    /// A record type this decoder does not know; skip it (see the versioning rules).
    Unknown {
        /// The record type byte.
        rtype: u8,
        /// The record's length in bytes.
        length: usize,
    },
}

impl Record {
    /// Decodes one record (no message header) from the start of `bytes`,
    /// returning it and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Record, usize)> {
        decode_record(bytes)
    }
}

/// A decoded binary message: its header and an iterator over its records.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The message header.
    pub header: MessageHeader,
    rest: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks the message header and returns the message, ready to iterate.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let (length, kind) = record_bounds(bytes)?;
        if kind != rtype::MESSAGE_HEADER {
            return Err(Error::Malformed("a message must start with a message header"));
        }
        if length < MESSAGE_HEADER_LEN {
            return Err(Error::Malformed("message header shorter than 16 bytes"));
        }
        let version = bytes[4];
        if version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        Ok(Self {
            header: MessageHeader {
                version,
                minor: bytes[5],
                send_ts: u64_at(bytes, 8),
            },
            rest: &bytes[length..],
        })
    }
}

impl Iterator for Message<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let decoded = decode_record(self.rest);
        match &decoded {
            Ok((_, length)) => self.rest = &self.rest[*length..],
            // A broken record leaves no way to find the next one.
            Err(_) => self.rest = &[],
        }
        Some(decoded.map(|(record, _)| record))
    }
}

/// Decodes the record at the start of `bytes`, returning it and its length.
fn decode_record(bytes: &[u8]) -> Result<(Record, usize)> {
    let (length, kind) = record_bounds(bytes)?;
    let record = match kind {
        rtype::QUOTE => Record::Quote(QuoteRecord::decode(known_prefix(bytes, length, "quote record")?)?),
        rtype::TRADE => Record::Trade(TradeRecord::decode(known_prefix(bytes, length, "trade record")?)?),
        rtype::STATUS => Record::Status(StatusRecord::decode(known_prefix(bytes, length, "status record")?)),
        rtype::BAR => Record::Bar(BarRecord::decode(known_prefix::<BAR_LEN>(
            bytes,
            length,
            "bar record",
        )?)?),
        rtype::BBO => Record::Bbo(BboRecord::decode(known_prefix::<BBO_LEN>(
            bytes,
            length,
            "BBO record",
        )?)?),
        rtype::MESSAGE_HEADER => return Err(Error::Malformed("message header inside a message")),
        other => Record::Unknown { rtype: other, length },
    };
    Ok((record, length))
}

/// Reads a record's declared length and type, checking it fits in `bytes`.
fn record_bounds(bytes: &[u8]) -> Result<(usize, u8)> {
    if bytes.len() < 4 {
        return Err(Error::Truncated {
            what: "record header",
            needed: 4,
            available: bytes.len(),
        });
    }
    let length = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
    if length < 4 || length % 8 != 0 {
        return Err(Error::Malformed("record length must be a positive multiple of 8"));
    }
    if length > bytes.len() {
        return Err(Error::Truncated {
            what: "record",
            needed: length,
            available: bytes.len(),
        });
    }
    Ok((length, bytes[2]))
}

/// The first `N` bytes of a record whose declared length is at least `N`:
/// a longer record is a newer minor version with fields appended.
fn known_prefix<'a, const N: usize>(bytes: &'a [u8], length: usize, what: &'static str) -> Result<&'a [u8; N]> {
    if length < N {
        return Err(Error::Truncated {
            what,
            needed: N,
            available: length,
        });
    }
    bytes[..N].try_into().map_err(|_| Error::Truncated {
        what,
        needed: N,
        available: bytes.len(),
    })
}

pub(crate) fn put_header(out: &mut [u8], length: usize, kind: u8, flags: Flags) {
    // Every record length is a small constant of this file, so it fits in u16.
    out[0..2].copy_from_slice(&(length as u16).to_le_bytes());
    out[2] = kind;
    out[3] = flags.0;
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

pub(crate) fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    i64::from_le_bytes(word)
}

pub(crate) fn symbol_at(bytes: &[u8], at: usize) -> [u8; Symbol::MAX_LEN] {
    let mut wire = [0u8; Symbol::MAX_LEN];
    wire.copy_from_slice(&bytes[at..at + Symbol::MAX_LEN]);
    wire
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
