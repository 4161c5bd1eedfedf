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
        if is_valid_wire(wire) {
            Ok(Self(*wire))
        } else {
            Self::from_wire_slow(wire)
        }
    }

    /// Reads a wire form the fast check refused, finding out why.
    #[cold]
    fn from_wire_slow(wire: &[u8; Self::MAX_LEN]) -> Result<Self> {
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

/// True when `wire` is a valid symbol's wire form: 1 to 16 symbol bytes, then
/// only NULs; the same verdict as the byte-by-byte checks of `from_wire`.
#[inline]
fn is_valid_wire(wire: &[u8; Symbol::MAX_LEN]) -> bool {
    // Two 8-byte loads: were the 16 bytes read as one `u128`, the compiler
    // would build the symbol from those registers with two 8-byte stores,
    // which a later 16-byte load of the symbol cannot forward from.
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    low.copy_from_slice(&wire[..8]);
    high.copy_from_slice(&wire[8..]);
    is_valid_halves(u64::from_le_bytes(low), u64::from_le_bytes(high))
}

/// [`is_valid_wire`] of the wire form's bytes 0..8 and 8..16, each read
/// little-endian. Branch-free (SWAR): each byte lane's top bit says whether
/// the byte is a symbol byte (`symbol`) or a NUL (`nul`). Valid means every
/// lane is one or the other, there is a symbol byte, and every symbol lane
/// sits below the lowest NUL lane (a run from byte 0).
#[inline]
fn is_valid_halves(low: u64, high: u64) -> bool {
    let (symbol_low, nul_low) = classify(low);
    let (symbol_high, nul_high) = classify(high);
    let symbol = u128::from(symbol_high) << 64 | u128::from(symbol_low);
    let nul = u128::from(nul_high) << 64 | u128::from(nul_low);
    let every_lane = u128::from(TOP) << 64 | u128::from(TOP);
    symbol != 0 && symbol | nul == every_lane && (nul == 0 || symbol < (nul & nul.wrapping_neg()))
}

/// The top bits of the lanes of `x` (8 bytes) that hold a symbol byte, and
/// of those that hold a NUL.
#[inline]
const fn classify(x: u64) -> (u64, u64) {
    // Bytes from 0x80 up are never symbol bytes; the rest compare as 7-bit values.
    let ascii = !x & TOP;
    let v = x & LOW7;
    let letter = in_range(v | lanes(0x20), b'a', b'z');
    let punctuation = equals(v, b'+') | in_range(v, b'-', b'9') | equals(v, b'=') | in_range(v, b'^', b'_');
    let nul = !((v + LOW7) | x) & TOP;
    (ascii & (letter | punctuation), nul)
}

/// `b` in every byte lane.
const fn lanes(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const TOP: u64 = lanes(0x80);
const LOW7: u64 = lanes(0x7F);

/// Top bit of each lane of `v` (lanes below 0x80) that is at least `c` (at most 0x80):
/// `lane + 0x80 - c` reaches 0x80 exactly then, and never carries out of its lane.
const fn at_least(v: u64, c: u8) -> u64 {
    (v + lanes(0x80 - c)) & TOP
}

/// Top bit of each lane of `v` (lanes below 0x80) in `lo..=hi` (`hi` below 0x80).
const fn in_range(v: u64, lo: u8, hi: u8) -> u64 {
    at_least(v, lo) & !at_least(v, hi + 1)
}

/// Top bit of each lane of `v` (lanes below 0x80) equal to `c` (below 0x80):
/// `lane ^ c` is then 0, the one value that `+ 0x7F` leaves below 0x80.
const fn equals(v: u64, c: u8) -> u64 {
    !((v ^ lanes(c)) + LOW7) & TOP
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

    /// The byte-by-byte rule the fast check must agree with.
    fn valid_by_rule(wire: &[u8; 16]) -> bool {
        let len = wire.iter().position(|&b| b == 0).unwrap_or(16);
        len > 0 && wire[..len].iter().all(|&b| is_symbol_byte(b)) && wire[len..].iter().all(|&b| b == 0)
    }

    fn check(wire: &[u8; 16]) {
        let expected = valid_by_rule(wire);
        assert_eq!(is_valid_wire(wire), expected, "{wire:?}");
        assert_eq!(Symbol::from_wire(wire).is_ok(), expected, "{wire:?}");
        if let Ok(symbol) = Symbol::from_wire(wire) {
            assert_eq!(symbol.to_wire(), *wire);
        }
        // from_bytes of every prefix: valid only without NULs, trailing ones included.
        for len in 0..=16 {
            let bytes = &wire[..len];
            let expected = len > 0 && bytes.iter().all(|&b| is_symbol_byte(b));
            assert_eq!(Symbol::from_bytes(bytes).is_ok(), expected, "{bytes:?}");
        }
    }

    #[test]
    fn fast_check_agrees_with_the_byte_rule() {
        // Every byte value at every position, after every prefix length of
        // valid bytes, with NUL or valid bytes after it.
        for prefix in 0..16 {
            for at in prefix..16 {
                for b in 0..=255u8 {
                    for tail in [0u8, b'Z'] {
                        let mut wire = [tail; 16];
                        wire[..prefix].fill(b'A');
                        wire[at] = b;
                        check(&wire);
                    }
                }
            }
        }
        // Pseudo-random wires over the symbol bytes, NUL and a few others.
        let alphabet = b"\0\0\0\0AZaz09.-/^=_+ *,:@[`{\x7f\x80\xff";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..200_000 {
            let mut wire = [0u8; 16];
            let len = (state % 17) as usize;
            for byte in &mut wire[..len] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = alphabet[(state % alphabet.len() as u64) as usize];
            }
            check(&wire);
        }
    }

    #[test]
    fn errors_keep_their_reasons_after_the_fast_path() {
        let reason = |result: Result<Symbol>| match result {
            Err(Error::InvalidSymbol { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        let mut wire = [0u8; 16];
        wire[0] = b'A';
        wire[5] = b'B';
        assert_eq!(reason(Symbol::from_wire(&wire)), "bytes after the NUL padding");
        assert_eq!(reason(Symbol::from_wire(&[0u8; 16])), "empty");
        wire[5] = 0;
        wire[1] = b' ';
        assert_eq!(
            reason(Symbol::from_wire(&wire)),
            "allowed are A-Z a-z 0-9 and . - / ^ = _ +"
        );
        assert_eq!(
            reason(Symbol::from_bytes(b"A\0B")),
            "allowed are A-Z a-z 0-9 and . - / ^ = _ +"
        );
        assert_eq!(
            reason(Symbol::from_bytes(b"AB\0")),
            "allowed are A-Z a-z 0-9 and . - / ^ = _ +"
        );
        assert_eq!(reason(Symbol::from_bytes(&[b'A'; 17])), "longer than 16 bytes");
    }
}
