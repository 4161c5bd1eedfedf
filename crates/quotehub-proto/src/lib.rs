//! The quotehub wire format, sans I/O: symbols, exact prices, the quote and
//! trade model, the binary record layout and the JSON control messages.
//!
//! No runtime and no sockets live here, so every decoder and encoder can be
//! tested and fuzzed as plain functions. `SPEC.md` beside this crate is the
//! protocol document with hex test vectors.
//!
//! | module | holds |
//! |---|---|
//! | [`symbol`] | [`Symbol`]: inline 16-byte tickers |
//! | [`price`] | [`Price`]: exact fixed-point decimal (10⁻⁹) ↔ `rust_decimal` |
//! | [`event`] | [`Quote`], [`Trade`], [`Event`] |
//! | [`record`] | binary record layout: encode and decode |
//! | [`bar`] | [`Bar`]: OHLCV bars, their record, interval alignment and the VWAP rounding |
//! | [`bbo`] | [`Bbo`]: the consolidated best bid and offer and its record |
//! | [`channel`] | [`Channels`]: which kinds of records a subscription asks for |
//! | [`control`] | JSON requests and replies |
//! | [`epoch`] | [`Epoch`]: the identity of a sequence space |
//! | [`json`] | the JSON form of records (the `quotehub.v1.json` sub-protocol) |
//!
//! ```
//! use quotehub_proto::{Flags, Message, MessageHeader, Quote, QuoteRecord, Record};
//!
//! let quote = Quote {
//!     symbol: "GOOD".parse()?,
//!     bid_price: "18.73".parse()?,
//!     bid_size: 993,
//!     ask_price: "18.75".parse()?,
//!     ask_size: 297,
//!     event_ts: 1_499_697_120_000_000_000,
//!     recv_ts: 1_499_697_120_000_005_000,
//!     seq: 1,
//! };
//! let mut message = MessageHeader::encode(1_499_697_120_000_009_000).to_vec();
//! message.extend_from_slice(&QuoteRecord { quote, flags: Flags::default(), conflated: 0 }.encode());
//!
//! let mut decoded = Message::decode(&message)?;
//! assert_eq!(decoded.header.send_ts, 1_499_697_120_000_009_000);
//! let Some(Ok(Record::Quote(record))) = decoded.next() else { panic!("one quote") };
//! assert_eq!(record.quote.bid_price.to_decimal().to_string(), "18.73");
//! # Ok::<(), quotehub_proto::Error>(())
//! ```

pub mod bar;
pub mod bbo;
pub mod channel;
pub mod control;
pub mod epoch;
pub mod error;
pub mod event;
pub mod json;
pub mod price;
pub mod record;
pub mod symbol;

pub use bar::{Bar, BarInterval, BarRecord};
pub use bbo::{Bbo, BboRecord, BboSide};
pub use channel::Channels;
pub use control::{ErrorCode, Op, Policy, Reply, Request, RequestId, Selection};
pub use epoch::Epoch;
pub use error::{Error, Result};
pub use event::{Event, Quote, Trade};
pub use price::Price;
pub use record::{Flags, Message, MessageHeader, QuoteRecord, Record, StatusCode, StatusRecord, TradeRecord};
pub use symbol::Symbol;

/// Nanoseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
