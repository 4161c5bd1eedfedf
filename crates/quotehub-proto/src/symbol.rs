//! Ticker symbols, stored inline as fixed-width bytes.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A ticker symbol such as `AAPL`, `BRK.B` or `ZVZZT`: 1 to [`Symbol::MAX_LEN`]
/// bytes, NUL-padded on the right.
///
/// Allowed characters are ASCII letters and digits and `. - / ^ = _ +`
/// (which covers share classes `BRK.B`, when-issued `AA-`, and index or
/// preferred notations). `*` is reserved for "every symbol" in requests.
/// Matching is exact and case-sensitive, as venues publish symbols.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol([u8; Symbol::MAX_LEN]);

impl Symbol {
    /// The longest symbol the wire format holds, in bytes.
    pub const MAX_LEN: usize = 16;

    /// Parses a symbol from bytes, rejecting anything outside the allowed set.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let reject = |reason| Error::InvalidSymbol {
            symbol: String::from_utf8_lossy(bytes).into_owned(),
            reason,
        };
        if bytes.is_empty() {
            return Err(reject("empty"));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(reject("longer than 16 bytes"));
        }
        if !bytes.iter().all(|&b| is_symbol_byte(b)) {
            return Err(reject("allowed are A-Z a-z 0-9 and . - / ^ = _ +"));
        }
        let mut inline = [0u8; Self::MAX_LEN];
        inline[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(inline))
    }

    /// Reads a symbol from its 16-byte wire form (NUL-padded), validating it.
    pub fn from_wire(wire: &[u8; Self::MAX_LEN]) -> Result<Self> {
        let len = wire.iter().position(|&b| b == 0).unwrap_or(Self::MAX_LEN);
        if wire[len..].iter().any(|&b| b != 0) {
            return Err(Error::InvalidSymbol {
                symbol: String::from_utf8_lossy(wire).into_owned(),
                reason: "bytes after the NUL padding",
            });
        }
        Self::from_bytes(&wire[..len])
    }

    /// The 16-byte wire form, NUL-padded.
    pub const fn to_wire(&self) -> [u8; Self::MAX_LEN] {
        self.0
    }

    /// The symbol text.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(Self::MAX_LEN);
        // Construction admits ASCII only, so this never falls back.
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }
}

const fn is_symbol_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'/' | b'^' | b'=' | b'_' | b'+')
}

impl FromStr for Symbol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_bytes(s.as_bytes())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_symbol_shapes() {
        // TC0..: share classes, when-issued, test symbols, the 16-byte maximum.
        for text in ["AAPL", "BRK.B", "AA-", "ZVZZT", "BF/B", "SPX^", "ABCDEFGHIJKLMNOP"] {
            let symbol: Symbol = text.parse().unwrap();
            assert_eq!(symbol.as_str(), text);
            assert_eq!(Symbol::from_wire(&symbol.to_wire()).unwrap(), symbol);
        }
    }

    #[test]
    fn rejects_bad_symbols_with_a_reason() {
        for (text, reason) in [
            ("", "empty"),
            ("ABCDEFGHIJKLMNOPQ", "longer than 16 bytes"),
            ("AA PL", "allowed are A-Z a-z 0-9 and . - / ^ = _ +"),
            ("*", "allowed are A-Z a-z 0-9 and . - / ^ = _ +"),
            ("ÄPL", "allowed are A-Z a-z 0-9 and . - / ^ = _ +"),
        ] {
            match text.parse::<Symbol>() {
                Err(Error::InvalidSymbol { reason: got, .. }) => assert_eq!(got, reason, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn wire_form_rejects_bytes_after_padding() {
        let mut wire = [0u8; 16];
        wire[0] = b'A';
        wire[5] = b'B';
        assert!(Symbol::from_wire(&wire).is_err());
        assert!(Symbol::from_wire(&[0u8; 16]).is_err());
    }
}
