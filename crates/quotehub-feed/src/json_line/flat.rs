//! The fast path of [`super::JsonLineDecoder`]: a hand-written scanner for the
//! common feed line, one flat JSON object whose values are numbers, plain
//! strings, `true`, `false` or `null`, e.g.
//! `{"ev":"Q","sym":"AAPL","bx":12,"bp":271.22,"bs":1100,"ax":10,"ap":271.23,"as":700,"t":1795185012481269311}`.
//!
//! It reads the line where it is (no copy), and fills the same [`Fields`] as the
//! simd-json path, with the same rules per key. It answers only for what it
//! fully recognises and what then decodes without error; for anything else
//! it says nothing and the decoder takes the simd-json path, which therefore
//! gives every error and handles every unusual line. The scanner stays
//! inside a subset of JSON on which both paths agree by construction:
//!
//! - strings of printable ASCII only (`0x20..=0x7e`), without escapes, so a
//!   string's text is its bytes and no UTF-8 needs checking;
//! - numbers as the JSON grammar has them, without exponent and with at most
//!   [`MAX_DIGITS`] digits, so simd-json reads each as a number without
//!   rounding to infinity or failing (and a plain unsigned integer as an
//!   integer, which sizes and timestamps require);
//! - at most [`MAX_NUMBERS`] numbers, JSON whitespace anywhere JSON allows
//!   it, nothing after the object but whitespace.
//!
//! Prices are read exactly from their own digits, as on the simd-json path.

use quotehub_proto::Price;

use super::{Fields, MAX_NUMBERS, timestamp_ns};

/// Most digits (integer and fraction together) of a number the scanner
/// takes: every price the wire can carry (10 integer and 9 decimal digits at
/// most) and every `u64` timestamp below 10^19 fit.
const MAX_DIGITS: usize = 19;

/// The fields of `line` when it is a flat object this scanner fully
/// recognises and every known key holds a valid value; `None` otherwise.
pub(super) fn scan(line: &[u8]) -> Option<Fields<'_>> {
    let mut rest = skip_whitespace(line).strip_prefix(b"{")?;
    let mut fields = Fields::default();
    let mut numbers = 0;
    loop {
        rest = skip_whitespace(rest).strip_prefix(b"\"")?;
        let (key, after_key) = string(rest)?;
        rest = skip_whitespace(skip_whitespace(after_key).strip_prefix(b":")?);
        let (value, after_value) = value(rest)?;
        if let Value::Number { .. } = value {
            numbers += 1;
            if numbers > MAX_NUMBERS {
                return None;
            }
        }
        // The keys and rules of the simd-json path (`read_event`); a
        // duplicate key overwrites, as there. Byte patterns compile to a few
        // compares, not a `memcmp` call per key.
        match key {
            [b'e', b'v'] => fields.ev = Some(value.text()?),
            [b's', b'y', b'm'] => fields.sym = Some(value.text()?),
            [b'b', b'p'] => fields.bp = Some(value.price()?),
            [b'a', b'p'] => fields.ap = Some(value.price()?),
            [b'p'] => fields.p = Some(value.price()?),
            [b'b', b's'] => fields.bs = Some(value.size()?),
            [b'a', b's'] => fields.size_ask = Some(value.size()?),
            [b's'] => fields.s = Some(value.size()?),
            [b't'] => fields.t = Some(timestamp_ns(value.integer()?).ok()?),
            _ => {}
        }
        match skip_whitespace(after_value).split_first()? {
            (b',', after) => rest = after,
            (b'}', after) => {
                rest = after;
                break;
            }
            _ => return None,
        }
    }
    skip_whitespace(rest).is_empty().then_some(fields)
}

/// A value as the scanner read it.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A string's bytes (printable ASCII, no escapes).
    Text(&'a [u8]),
    /// A number token as written; `integer` when it is a plain unsigned
    /// integer (digits only).
    Number { text: &'a [u8], integer: bool },
    /// `true`, `false` or `null`.
    Literal,
}

impl<'a> Value<'a> {
    fn text(self) -> Option<&'a str> {
        match self {
            Value::Text(text) => std::str::from_utf8(text).ok(),
            _ => None,
        }
    }

    fn price(self) -> Option<Price> {
        match self {
            Value::Text(text) | Value::Number { text, .. } => Price::parse_exact(text).ok(),
            Value::Literal => None,
        }
    }

    fn size(self) -> Option<u32> {
        u32::try_from(self.integer()?).ok()
    }

    /// The value of a plain unsigned integer (at most [`MAX_DIGITS`] digits,
    /// so below 10^19: no overflow). Computed only for the keys that need it.
    fn integer(self) -> Option<u64> {
        match self {
            Value::Number { text, integer: true } => {
                Some(text.iter().fold(0_u64, |n, &d| n * 10 + u64::from(d - b'0')))
            }
            _ => None,
        }
    }
}

/// `text` without its leading JSON whitespace; inlined for the common case
/// of none.
#[inline(always)]
fn skip_whitespace(text: &[u8]) -> &[u8] {
    match text.first() {
        Some(b' ' | b'\t' | b'\n' | b'\r') => {
            let len = text.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            &text[len.unwrap_or(text.len())..]
        }
        _ => text,
    }
}

/// Bytes a string may hold on the fast path, as a table (one load per byte):
/// printable ASCII but `"` and `\\`.
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b <= 0x7e {
        table[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    table
};

/// The bytes of a string whose opening quote was just read, and what follows
/// its closing quote; `None` for an escape or a byte that is not printable
/// ASCII.
fn string(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = text.iter().position(|&b| !PLAIN[usize::from(b)])?;
    let (body, rest) = text.split_at(len);
    Some((body, rest.strip_prefix(b"\"")?))
}

/// The value at the start of `text`, and what follows it.
fn value(text: &[u8]) -> Option<(Value<'_>, &[u8])> {
    match *text.first()? {
        b'"' => string(&text[1..]).map(|(body, rest)| (Value::Text(body), rest)),
        b'-' | b'0'..=b'9' => number(text),
        b't' => literal(text, b"true"),
        b'f' => literal(text, b"false"),
        b'n' => literal(text, b"null"),
        _ => None,
    }
}

fn literal<'a>(text: &'a [u8], word: &[u8]) -> Option<(Value<'a>, &'a [u8])> {
    text.strip_prefix(word).map(|rest| (Value::Literal, rest))
}

fn digits(text: &[u8]) -> usize {
    text.iter().position(|b| !b.is_ascii_digit()).unwrap_or(text.len())
}

/// A number as JSON writes it, `-? (0 | [1-9][0-9]*) (. [0-9]+)?`, and what
/// follows it; an exponent or more than [`MAX_DIGITS`] digits is left to
/// simd-json.
fn number(text: &[u8]) -> Option<(Value<'_>, &[u8])> {
    let unsigned = text.strip_prefix(b"-");
    let magnitude = unsigned.unwrap_or(text);
    let int_len = digits(magnitude);
    if int_len == 0 || (int_len > 1 && magnitude[0] == b'0') {
        return None;
    }
    let after_int = &magnitude[int_len..];
    let (frac_len, rest) = match after_int.strip_prefix(b".") {
        Some(fraction) => {
            let len = digits(fraction);
            if len == 0 {
                return None;
            }
            (len, &fraction[len..])
        }
        None => (0, after_int),
    };
    if int_len + frac_len > MAX_DIGITS || matches!(rest.first(), Some(b'e' | b'E')) {
        return None;
    }
    let token = &text[..text.len() - rest.len()];
    let integer = unsigned.is_none() && rest.len() == after_int.len();
    Some((Value::Number { text: token, integer }, rest))
}

#[cfg(test)]
mod tests;
