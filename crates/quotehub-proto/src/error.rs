//! Errors of the wire format.

/// What went wrong while building or decoding a wire value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A symbol was empty, too long, or held a character outside the allowed set.
    #[error("invalid symbol {symbol:?}: {reason}")]
    InvalidSymbol {
        /// The rejected text (lossy UTF-8 of what was given).
        symbol: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A price was not a plain decimal, or cannot be held exactly at the wire scale.
    #[error("invalid price {text:?}: {reason}")]
    InvalidPrice {
        /// The rejected text.
        text: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A binary message or record was shorter than its header or declared length.
    #[error("truncated {what}: need {needed} bytes, have {available}")]
    Truncated {
        /// Which structure was cut short.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// A binary message broke a layout rule (bad length, wrong first record, ...).
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A binary message of a protocol major version this decoder does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
}

/// Result with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
