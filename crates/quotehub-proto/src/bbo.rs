//! The consolidated best bid and offer of a symbol across the hub's feeds
//! (venues), and its binary record: the `bbo` channel.

use crate::error::Result;
use crate::price::Price;
use crate::record::{Flags, i64_at, put_header, rtype, symbol_at, u16_at, u32_at, u64_at};
use crate::symbol::Symbol;

/// Bytes in a BBO record.
pub const BBO_LEN: usize = 88;

/// One side of a consolidated book: the best price across feeds, the shares
/// at that price summed over every feed quoting it, and who quotes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BboSide {
    /// The best price (highest bid, lowest ask); 0 when no feed quotes the side.
    pub price: Price,
    /// Shares at `price`, summed over the feeds quoting it (u64: a sum of
    /// u32 quote sizes, exact). 0 when no feed quotes the side.
    pub size: u64,
    /// The feed (venue) number quoting `price`; the lowest number when
    /// several do. 0 when no feed quotes the side.
    pub feed: u16,
    /// How many feeds quote `price` (0: no feed quotes the side).
    pub feeds: u16,
}

/// The consolidated best bid and offer of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bbo {
    /// The instrument.
    pub symbol: Symbol,
    /// The best bid across feeds.
    pub bid: BboSide,
    /// The best ask (offer) across feeds.
    pub ask: BboSide,
    /// Venue time of the quote that changed the consolidation, ns since the Unix epoch.
    pub event_ts: u64,
    /// When the hub received that quote, ns since the Unix epoch.
    pub recv_ts: u64,
    /// Sequence number in the symbol's sequence of BBO records, from 1.
    pub seq: u64,
}

/// A BBO record as received. Layout (88 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 88 |
/// | 2 | 1 | rtype = 0x06 |
/// | 3 | 1 | flags |
/// | 4 | 4 | conflated: u32, updates merged into this one (0 if none) |
/// | 8 | 16 | symbol, ASCII, NUL-padded |
/// | 24 | 8 | seq: u64, per symbol, BBO records only |
/// | 32 | 8 | event_ts: u64 ns since the Unix epoch (venue) |
/// | 40 | 8 | recv_ts: u64 ns since the Unix epoch (hub ingest) |
/// | 48 | 8 | bid_price: i64, units of 10⁻⁹ |
/// | 56 | 8 | ask_price: i64, units of 10⁻⁹ |
/// | 64 | 8 | bid_size: u64 shares, summed over the feeds at bid_price |
/// | 72 | 8 | ask_size: u64 shares, summed over the feeds at ask_price |
/// | 80 | 2 | bid_feed: u16, the (lowest-numbered) feed at bid_price |
/// | 82 | 2 | ask_feed: u16, the (lowest-numbered) feed at ask_price |
/// | 84 | 2 | bid_feeds: u16, feeds at bid_price (0: no bid) |
/// | 86 | 2 | ask_feeds: u16, feeds at ask_price (0: no ask) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BboRecord {
    /// The consolidated book.
    pub bbo: Bbo,
    /// Snapshot, conflated, replayed, reset.
    pub flags: Flags,
    /// How many updates were merged into this record (0 if none).
    pub conflated: u32,
}

impl BboRecord {
    /// Encodes the record into its 88 wire bytes.
    pub fn encode(&self) -> [u8; BBO_LEN] {
        let b = &self.bbo;
        let mut out = [0u8; BBO_LEN];
        put_header(&mut out, BBO_LEN, rtype::BBO, self.flags);
        out[4..8].copy_from_slice(&self.conflated.to_le_bytes());
        out[8..24].copy_from_slice(&b.symbol.to_wire());
        out[24..32].copy_from_slice(&b.seq.to_le_bytes());
        out[32..40].copy_from_slice(&b.event_ts.to_le_bytes());
        out[40..48].copy_from_slice(&b.recv_ts.to_le_bytes());
        out[48..56].copy_from_slice(&b.bid.price.units().to_le_bytes());
        out[56..64].copy_from_slice(&b.ask.price.units().to_le_bytes());
        out[64..72].copy_from_slice(&b.bid.size.to_le_bytes());
        out[72..80].copy_from_slice(&b.ask.size.to_le_bytes());
        out[80..82].copy_from_slice(&b.bid.feed.to_le_bytes());
        out[82..84].copy_from_slice(&b.ask.feed.to_le_bytes());
        out[84..86].copy_from_slice(&b.bid.feeds.to_le_bytes());
        out[86..88].copy_from_slice(&b.ask.feeds.to_le_bytes());
        out
    }

    /// Decodes the known 88-byte prefix of a BBO record.
    pub fn decode(bytes: &[u8; BBO_LEN]) -> Result<Self> {
        Ok(Self {
            flags: Flags(bytes[3]),
            conflated: u32_at(bytes, 4),
            bbo: Bbo {
                symbol: Symbol::from_wire(&symbol_at(bytes, 8))?,
                seq: u64_at(bytes, 24),
                event_ts: u64_at(bytes, 32),
                recv_ts: u64_at(bytes, 40),
                bid: BboSide {
                    price: Price::from_units(i64_at(bytes, 48)),
                    size: u64_at(bytes, 64),
                    feed: u16_at(bytes, 80),
                    feeds: u16_at(bytes, 84),
                },
                ask: BboSide {
                    price: Price::from_units(i64_at(bytes, 56)),
                    size: u64_at(bytes, 72),
                    feed: u16_at(bytes, 82),
                    feeds: u16_at(bytes, 86),
                },
            },
        })
    }
}
