//! TOPS 1.6 (and 1.5) messages: the first byte is the type, every field is
//! little-endian, prices are int64 with 4 implied decimals, timestamps int64
//! ns since the Unix epoch, symbols 8 bytes padded with spaces.
//!
//! Quote updates and trade reports become [`Event`]s; the other types are
//! only recognized (and counted by the feed). IEX may lengthen a message by
//! appending fields, so a message longer than its layout is accepted and a
//! shorter one is rejected.

use quotehub_proto::{Event, Price, Quote, Symbol, Trade};

use crate::error::LineError;

/// Message type bytes.
pub mod kind {
    /// System Event ('S').
    pub const SYSTEM_EVENT: u8 = b'S';
    /// Security Directory ('D').
    pub const SECURITY_DIRECTORY: u8 = b'D';
    /// Trading Status ('H').
    pub const TRADING_STATUS: u8 = b'H';
    /// Retail Liquidity Indicator ('I').
    pub const RETAIL_LIQUIDITY_INDICATOR: u8 = b'I';
    /// Operational Halt Status ('O').
    pub const OPERATIONAL_HALT_STATUS: u8 = b'O';
    /// Short Sale Price Test Status ('P').
    pub const SHORT_SALE_PRICE_TEST_STATUS: u8 = b'P';
    /// Security Event ('E').
    pub const SECURITY_EVENT: u8 = b'E';
    /// Quote Update ('Q').
    pub const QUOTE_UPDATE: u8 = b'Q';
    /// Trade Report ('T').
    pub const TRADE_REPORT: u8 = b'T';
    /// Official Price ('X').
    pub const OFFICIAL_PRICE: u8 = b'X';
    /// Trade Break ('B').
    pub const TRADE_BREAK: u8 = b'B';
    /// Auction Information ('A').
    pub const AUCTION_INFORMATION: u8 = b'A';
}

/// Bytes of a Quote Update.
pub const QUOTE_UPDATE_LEN: usize = 42;
/// Bytes of a Trade Report.
pub const TRADE_REPORT_LEN: usize = 38;

/// The layout length of a known message type, `None` for a type this
/// decoder does not know.
pub const fn layout_len(kind: u8) -> Option<usize> {
    Some(match kind {
        kind::SYSTEM_EVENT => 10,
        kind::SECURITY_DIRECTORY => 31,
        kind::TRADING_STATUS => 22,
        kind::RETAIL_LIQUIDITY_INDICATOR | kind::OPERATIONAL_HALT_STATUS | kind::SECURITY_EVENT => 18,
        kind::SHORT_SALE_PRICE_TEST_STATUS => 19,
        kind::QUOTE_UPDATE => QUOTE_UPDATE_LEN,
        kind::TRADE_REPORT | kind::TRADE_BREAK => TRADE_REPORT_LEN,
        kind::OFFICIAL_PRICE => 26,
        kind::AUCTION_INFORMATION => 80,
        _ => return None,
    })
}

/// A readable name of a message type.
pub const fn name(kind: u8) -> &'static str {
    match kind {
        kind::SYSTEM_EVENT => "system event",
        kind::SECURITY_DIRECTORY => "security directory",
        kind::TRADING_STATUS => "trading status",
        kind::RETAIL_LIQUIDITY_INDICATOR => "retail liquidity indicator",
        kind::OPERATIONAL_HALT_STATUS => "operational halt status",
        kind::SHORT_SALE_PRICE_TEST_STATUS => "short sale price test status",
        kind::SECURITY_EVENT => "security event",
        kind::QUOTE_UPDATE => "quote update",
        kind::TRADE_REPORT => "trade report",
        kind::OFFICIAL_PRICE => "official price",
        kind::TRADE_BREAK => "trade break",
        kind::AUCTION_INFORMATION => "auction information",
        _ => "unknown",
    }
}

/// One TOPS message, borrowed from the packet that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks a message block: not empty, and for a known type at least as
    /// long as its layout. Unknown types pass; only their type byte is read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let Some(&kind) = bytes.first() else {
            return Err("empty TOPS message");
        };
        match layout_len(kind) {
            Some(len) if bytes.len() < len => Err(short_message(kind)),
            _ => Ok(Self { bytes }),
        }
    }

    /// The type byte.
    pub fn kind(&self) -> u8 {
        self.bytes.first().copied().unwrap_or_default()
    }

    /// True for a type this decoder knows the layout of.
    pub fn is_known(&self) -> bool {
        layout_len(self.kind()).is_some()
    }

    /// The whole message, type byte included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The timestamp, ns since the Unix epoch; every known type has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.is_known().then(|| i64::from_le_bytes(array(self.bytes, 2)))
    }

    /// The symbol with its space padding trimmed, for the known types that
    /// carry one (all but the system event).
    pub fn symbol(&self) -> Option<&'a [u8]> {
        if !self.is_known() || self.kind() == kind::SYSTEM_EVENT {
            return None;
        }
        self.bytes.get(10..18).map(trim_padding)
    }

    /// The hub event of a quote update or trade report; `None` for the
    /// other types.
    pub fn to_event(&self) -> Option<Result<Event, LineError>> {
        match self.kind() {
            kind::QUOTE_UPDATE => Some(decode_quote(self.bytes).map(Event::Quote)),
            kind::TRADE_REPORT => Some(decode_trade(self.bytes).map(Event::Trade)),
            _ => None,
        }
    }
}

/// Decodes a Quote Update: type, flags, timestamp, symbol, bid size, bid
/// price, ask price, ask size. A side without interest comes as size 0 and
/// price 0 and is kept so. The flags (symbol available, market session) have
/// no place in [`Quote`] and are not read.
pub fn decode_quote(bytes: &[u8]) -> Result<Quote, LineError> {
    let Some(b) = bytes.first_chunk::<QUOTE_UPDATE_LEN>() else {
        return Err(LineError::Binary(short_message(kind::QUOTE_UPDATE)));
    };
    Ok(Quote {
        symbol: symbol(b)?,
        bid_size: u32::from_le_bytes(array(b, 18)),
        bid_price: price(i64::from_le_bytes(array(b, 22)), "bid_price")?,
        ask_price: price(i64::from_le_bytes(array(b, 30)), "ask_price")?,
        ask_size: u32::from_le_bytes(array(b, 38)),
        event_ts: timestamp(b)?,
        recv_ts: 0,
        seq: 0,
    })
}

/// Decodes a Trade Report: type, sale condition flags, timestamp, symbol,
/// size, price, trade id. The sale conditions and trade id have no place in
/// [`Trade`] and are not read.
pub fn decode_trade(bytes: &[u8]) -> Result<Trade, LineError> {
    let Some(b) = bytes.first_chunk::<TRADE_REPORT_LEN>() else {
        return Err(LineError::Binary(short_message(kind::TRADE_REPORT)));
    };
    Ok(Trade {
        symbol: symbol(b)?,
        size: u32::from_le_bytes(array(b, 18)),
        price: price(i64::from_le_bytes(array(b, 22)), "price")?,
        event_ts: timestamp(b)?,
        recv_ts: 0,
        seq: 0,
    })
}

fn symbol(b: &[u8]) -> Result<Symbol, LineError> {
    let raw: [u8; 8] = array(b, 10);
    Symbol::from_bytes(trim_padding(&raw)).map_err(|e| LineError::Field {
        field: "symbol",
        reason: e.to_string(),
    })
}

fn price(mantissa: i64, field: &'static str) -> Result<Price, LineError> {
    Price::from_scaled(mantissa, 4).map_err(|e| LineError::Field {
        field,
        reason: e.to_string(),
    })
}

fn timestamp(b: &[u8]) -> Result<u64, LineError> {
    u64::try_from(i64::from_le_bytes(array(b, 2))).map_err(|_| LineError::Field {
        field: "timestamp",
        reason: "before the Unix epoch".into(),
    })
}

fn trim_padding(raw: &[u8]) -> &[u8] {
    let len = raw.iter().rposition(|&c| c != b' ').map_or(0, |last| last + 1);
    raw.get(..len).unwrap_or_default()
}

fn short_message(kind: u8) -> &'static str {
    match kind {
        kind::QUOTE_UPDATE => "quote update shorter than 42 bytes",
        kind::TRADE_REPORT => "trade report shorter than 38 bytes",
        _ => "TOPS message shorter than the layout of its type",
    }
}

/// `N` bytes at `at`; callers check the length first, and a short slice reads
/// as zeros rather than panicking. On a fixed-size array the check folds away.
#[inline(always)]
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes.get(at..at + N).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn quote_bytes(symbol: &[u8; 8], bid: (u32, i64), ask: (i64, u32), ts: i64) -> Vec<u8> {
        let mut m = vec![b'Q', 0];
        m.extend_from_slice(&ts.to_le_bytes());
        m.extend_from_slice(symbol);
        m.extend_from_slice(&bid.0.to_le_bytes());
        m.extend_from_slice(&bid.1.to_le_bytes());
        m.extend_from_slice(&ask.0.to_le_bytes());
        m.extend_from_slice(&ask.1.to_le_bytes());
        m
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn a_quote_update_decodes_exactly() {
        let m = quote_bytes(b"GOOD    ", (993, 187_300), (187_500, 297), 1_499_697_227_199_519_142);
        let Some(Ok(Event::Quote(q))) = Message::parse(&m).unwrap().to_event() else {
            panic!("a quote")
        };
        assert_eq!(q.symbol.as_str(), "GOOD");
        assert_eq!((q.bid_size, q.bid_price.to_decimal()), (993, dec("18.73")));
        assert_eq!((q.ask_size, q.ask_price.to_decimal()), (297, dec("18.75")));
        assert_eq!((q.event_ts, q.recv_ts, q.seq), (1_499_697_227_199_519_142, 0, 0));
    }

    #[test]
    fn an_empty_side_stays_zero() {
        let m = quote_bytes(b"ZVZZT   ", (0, 0), (100_001, 5), 1);
        let q = decode_quote(&m).unwrap();
        assert_eq!((q.bid_size, q.bid_price), (0, Price::ZERO));
        assert_eq!(q.ask_price.to_decimal(), dec("10.0001"));
    }

    #[test]
    fn bad_fields_are_rejected_with_the_field_name() {
        let field_of = |m: &[u8]| match decode_quote(m) {
            Err(LineError::Field { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(&quote_bytes(b"        ", (1, 1), (1, 1), 1)), "symbol");
        assert_eq!(field_of(&quote_bytes(b"A B     ", (1, 1), (1, 1), 1)), "symbol");
        assert_eq!(
            field_of(&quote_bytes(b"AAPL    ", (1, i64::MAX), (1, 1), 1)),
            "bid_price"
        );
        assert_eq!(
            field_of(&quote_bytes(b"AAPL    ", (1, 1), (i64::MIN, 1), 1)),
            "ask_price"
        );
        assert_eq!(field_of(&quote_bytes(b"AAPL    ", (1, 1), (1, 1), -1)), "timestamp");
    }

    #[test]
    fn short_messages_are_rejected_and_longer_ones_accepted() {
        let mut m = quote_bytes(b"AAPL    ", (1, 1), (1, 1), 1);
        assert!(Message::parse(&m[..41]).is_err());
        assert!(Message::parse(&[]).is_err());
        m.extend_from_slice(b"appended by a later version");
        assert!(matches!(
            Message::parse(&m).unwrap().to_event(),
            Some(Ok(Event::Quote(_)))
        ));
        assert!(decode_trade(&[b'T'; 37]).is_err());
    }

    #[test]
    fn other_types_are_recognized_and_unknown_ones_pass() {
        let mut halt = vec![b'O', b'N'];
        halt.extend_from_slice(&5i64.to_le_bytes());
        halt.extend_from_slice(b"BRK.B   ");
        let message = Message::parse(&halt).unwrap();
        assert_eq!((message.symbol(), message.timestamp()), (Some(&b"BRK.B"[..]), Some(5)));
        assert!(message.to_event().is_none());
        let unknown = Message::parse(b"z").unwrap();
        assert!(!unknown.is_known());
        assert_eq!(
            (unknown.symbol(), unknown.timestamp(), unknown.to_event()),
            (None, None, None)
        );
        assert!(Message::parse(b"S").is_err());
    }
}
