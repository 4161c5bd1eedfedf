//! Decoder for one line of a JSON-lines quote feed (Polygon-style fields).
//!
//! Two paths give the same event or error for every line. The common flat
//! line (numbers and plain strings, no escapes, no nesting) is read by a
//! hand-written scanner (`flat.rs`) in one pass; anything it does not fully
//! recognise, and every line that is refused, goes through simd-json, which
//! alone decides errors. The scanner is checked against the simd-json path
//! on generated and fuzzed lines (`flat`'s tests, the fuzz target
//! `json_line_paths`).
//!
//! simd-json validates each line and lays it out as a tape, reusing its buffers
//! and the tape's allocation from line to line. It parses a copy of the line,
//! so the line itself stays intact for reading prices exactly from their own
//! digits: a price key's tape string points into the copy, which gives its
//! offset in the line, and the number token follows the key there. Should that
//! ever not hold (a key written with escapes), a scan of the line lists every
//! number token outside strings, and the k-th number on the tape is the k-th
//! token of the text. No price ever passes through `f64`.

use quotehub_proto::{Event, Price, Quote, Symbol, Trade};
use simd_json::{Buffers, Node, StaticNode, Tape};

use crate::error::LineError;

mod flat;

/// The most number tokens a line may hold.
const MAX_NUMBERS: usize = 32;

/// Decodes JSON quote and trade lines, keeping its buffers between lines.
pub struct JsonLineDecoder {
    buffers: Buffers,
    tape: Vec<Node<'static>>,
    /// The copy of the line that simd-json parses (in place).
    input: Vec<u8>,
    /// Spans of the line's number tokens, when a price has to be found by scanning.
    numbers: Vec<(usize, usize)>,
}

impl std::fmt::Debug for JsonLineDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLineDecoder").finish_non_exhaustive()
    }
}

impl Default for JsonLineDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Fields of one line, as found.
#[derive(Default)]
struct Fields<'a> {
    ev: Option<&'a str>,
    sym: Option<&'a str>,
    bp: Option<Price>,
    bs: Option<u32>,
    ap: Option<Price>,
    size_ask: Option<u32>,
    p: Option<Price>,
    s: Option<u32>,
    t: Option<u64>,
}

impl JsonLineDecoder {
    /// A decoder with buffers sized for typical quote lines.
    pub fn new() -> Self {
        Self {
            buffers: Buffers::new(256),
            tape: Vec::with_capacity(48),
            input: Vec::with_capacity(256),
            numbers: Vec::with_capacity(MAX_NUMBERS),
        }
    }

    /// Decodes one line. The line's bytes may be used as scratch space, so
    /// the caller passes a buffer it no longer needs.
    ///
    /// Quote lines: `{"ev":"Q","sym":"AAPL","bp":148.91,"bs":300,"ap":148.92,"as":200,"t":1499697120000000000}`.
    /// Trade lines: `{"ev":"T","sym":"AAPL","p":148.91,"s":283,"t":...}`. Prices may also
    /// be decimal strings. `t` is the event time since the Unix epoch in ns, µs or ms
    /// (told apart by magnitude). Other keys are ignored.
    pub fn decode(&mut self, line: &mut [u8]) -> Result<Event, LineError> {
        if let Some(event) = Self::decode_flat(line) {
            return Ok(event);
        }
        self.decode_with_simd_json(line)
    }

    /// The fast path alone: the event of a line that the flat scanner fully
    /// recognises and that decodes without error, else `None`. Public for
    /// the differential fuzz target only.
    #[doc(hidden)]
    pub fn decode_flat(line: &[u8]) -> Option<Event> {
        flat::scan(line).and_then(|fields| build_event(fields).ok())
    }

    /// The simd-json path alone, which [`JsonLineDecoder::decode`] takes for
    /// every line the fast path leaves; the reference the fast path is
    /// checked against. Public for the differential fuzz target only.
    #[doc(hidden)]
    pub fn decode_with_simd_json(&mut self, line: &[u8]) -> Result<Event, LineError> {
        self.input.clear();
        self.input.extend_from_slice(line);
        let copy_at = self.input.as_ptr().addr();
        let mut tape = Tape(std::mem::take(&mut self.tape));
        let parsed = simd_json::fill_tape(&mut self.input, &mut self.buffers, &mut tape);
        let mut text = LineText {
            line,
            copy_at,
            numbers: &mut self.numbers,
            scanned: false,
        };
        let result = match parsed {
            Ok(()) => count_numbers(&tape.0).and_then(|()| read_event(&tape.0, &mut text)),
            // A line with too many numbers is refused as such, valid JSON or not.
            Err(err) => text.scan().and_then(|()| Err(LineError::Json(err.to_string()))),
        };
        self.tape = tape.reset().0;
        result
    }
}

/// Refuses a line with more than [`MAX_NUMBERS`] number tokens. In valid JSON
/// every number token outside strings is a number on the tape.
fn count_numbers(tape: &[Node<'_>]) -> Result<(), LineError> {
    if tape.len() > MAX_NUMBERS {
        let numbers = tape.iter().filter(|node| is_number(node)).count();
        if numbers > MAX_NUMBERS {
            return Err(too_many_numbers());
        }
    }
    Ok(())
}

fn is_number(node: &Node<'_>) -> bool {
    matches!(
        node,
        Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))
    )
}

fn too_many_numbers() -> LineError {
    LineError::Shape("more than 32 numbers on one line")
}

/// The original line, for reading number tokens as written.
struct LineText<'a> {
    line: &'a [u8],
    /// Where the copy that simd-json parsed starts in memory: tape strings
    /// point into it, at the same offsets as in `line`.
    copy_at: usize,
    /// Spans of the line's number tokens, once scanned.
    numbers: &'a mut Vec<(usize, usize)>,
    scanned: bool,
}

impl<'a> LineText<'a> {
    /// The text of the `index`-th number on the tape, the value of `key` (a
    /// string of the tape, without escapes or quotes).
    fn number(&mut self, key: &str, index: usize) -> Result<&'a [u8], LineError> {
        if let Some(text) = self.after_key(key) {
            return Ok(text);
        }
        self.scan()?;
        let &(start, end) = self
            .numbers
            .get(index)
            .ok_or(LineError::Shape("number tokens out of step"))?;
        let line: &'a [u8] = self.line;
        Ok(&line[start..end])
    }

    /// The number token right after `key` in the line, when `key` is found
    /// where its tape string points, written as is between quotes (escaped,
    /// its text would differ).
    fn after_key(&self, key: &str) -> Option<&'a [u8]> {
        let line: &'a [u8] = self.line;
        let at = key.as_ptr().addr().checked_sub(self.copy_at)?;
        let mut rest = line.get(at..)?;
        // Byte by byte: keys are a byte or two, shorter than a `memcmp` call.
        for &b in key.as_bytes() {
            rest = rest.strip_prefix(&[b])?;
        }
        let rest = rest.strip_prefix(b"\"")?;
        let rest = skip_whitespace(rest).strip_prefix(b":")?;
        let rest = skip_whitespace(rest);
        let len = rest.iter().position(|&b| !is_number_byte(b)).unwrap_or(rest.len());
        (len > 0).then(|| &rest[..len])
    }

    /// Lists the line's number tokens, once.
    fn scan(&mut self) -> Result<(), LineError> {
        if !self.scanned {
            scan_numbers(self.line, self.numbers)?;
            self.scanned = true;
        }
        Ok(())
    }
}

fn skip_whitespace(text: &[u8]) -> &[u8] {
    let len = text.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    &text[len.unwrap_or(text.len())..]
}

const fn is_number_byte(b: u8) -> bool {
    matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
}

/// Records the span of every number token outside strings, in order.
fn scan_numbers(line: &[u8], spans: &mut Vec<(usize, usize)>) -> Result<(), LineError> {
    spans.clear();
    let mut at = 0;
    while at < line.len() {
        match line[at] {
            b'"' => {
                at += 1;
                while at < line.len() && line[at] != b'"' {
                    at += if line[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                while at < line.len() && is_number_byte(line[at]) {
                    at += 1;
                }
                if spans.len() == MAX_NUMBERS {
                    return Err(too_many_numbers());
                }
                spans.push((start, at));
            }
            _ => at += 1,
        }
    }
    Ok(())
}

fn read_event(tape: &[Node<'_>], text: &mut LineText<'_>) -> Result<Event, LineError> {
    let Some(Node::Object { len, .. }) = tape.first() else {
        return Err(LineError::Shape("a feed line is a JSON object"));
    };
    let mut fields = Fields::default();
    let mut number_index = 0;
    let mut at = 1;
    for _ in 0..*len {
        let (Some(Node::String(key)), Some(value)) = (tape.get(at), tape.get(at + 1)) else {
            return Err(LineError::Shape("truncated object"));
        };
        at += 2;
        let number = match value {
            Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)) => {
                number_index += 1;
                Some(number_index - 1)
            }
            // A nested value (Polygon's trade conditions, `"c":[12,37]`) is
            // skipped whole; its numbers still count, so the k-th number on
            // the tape stays the k-th number token of the text.
            Node::Object { count, .. } | Node::Array { count, .. } => {
                let nested = tape
                    .get(at..at + count)
                    .ok_or(LineError::Shape("truncated nested value"))?;
                number_index += nested.iter().filter(|node| is_number(node)).count();
                at += count;
                None
            }
            _ => None,
        };
        let string = match value {
            Node::String(s) => Some(*s),
            _ => None,
        };
        let mut read_price = |field| match number {
            Some(index) => price(field, Some(text.number(key, index)?), None),
            None => price(field, None, string),
        };
        // Byte patterns rather than string literals: they compile to a few
        // compares instead of a `memcmp` call per key.
        match key.as_bytes() {
            [b'e', b'v'] => fields.ev = Some(string.ok_or_else(|| bad("ev", "expected a string"))?),
            [b's', b'y', b'm'] => fields.sym = Some(string.ok_or_else(|| bad("sym", "expected a string"))?),
            [b'b', b'p'] => fields.bp = Some(read_price("bp")?),
            [b'a', b'p'] => fields.ap = Some(read_price("ap")?),
            [b'p'] => fields.p = Some(read_price("p")?),
            [b'b', b's'] => fields.bs = Some(size("bs", value)?),
            [b'a', b's'] => fields.size_ask = Some(size("as", value)?),
            [b's'] => fields.s = Some(size("s", value)?),
            [b't'] => fields.t = Some(timestamp(value)?),
            _ => {}
        }
    }
    build_event(fields)
}

fn build_event(fields: Fields<'_>) -> Result<Event, LineError> {
    let symbol: Symbol = required(fields.sym, "sym")?
        .parse()
        .map_err(|err: quotehub_proto::Error| bad("sym", &err.to_string()))?;
    let event_ts = required(fields.t, "t")?;
    match required(fields.ev, "ev")? {
        "Q" => Ok(Event::Quote(Quote {
            symbol,
            bid_price: required(fields.bp, "bp")?,
            bid_size: required(fields.bs, "bs")?,
            ask_price: required(fields.ap, "ap")?,
            ask_size: required(fields.size_ask, "as")?,
            event_ts,
            recv_ts: 0,
            seq: 0,
        })),
        "T" => Ok(Event::Trade(Trade {
            symbol,
            price: required(fields.p, "p")?,
            size: required(fields.s, "s")?,
            event_ts,
            recv_ts: 0,
            seq: 0,
        })),
        other => Err(bad(
            "ev",
            &format!("unknown event type {:?} (expected \"Q\" or \"T\")", truncate(other)),
        )),
    }
}

/// The field's value, or the error naming it (built only when it is missing).
fn required<T>(value: Option<T>, field: &'static str) -> Result<T, LineError> {
    match value {
        Some(value) => Ok(value),
        None => Err(LineError::Missing(field)),
    }
}

fn bad(field: &'static str, reason: &str) -> LineError {
    LineError::Field {
        field,
        reason: reason.to_owned(),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(16).collect()
}

fn price(field: &'static str, number: Option<&[u8]>, text: Option<&str>) -> Result<Price, LineError> {
    let digits = number
        .or(text.map(str::as_bytes))
        .ok_or_else(|| bad(field, "expected a price"))?;
    Price::parse_exact(digits).map_err(|err| bad(field, &err.to_string()))
}

fn size(field: &'static str, value: &Node<'_>) -> Result<u32, LineError> {
    match value {
        Node::Static(StaticNode::U64(n)) => u32::try_from(*n).map_err(|_| bad(field, "size above 4294967295")),
        Node::Static(StaticNode::I64(n)) => u32::try_from(*n).map_err(|_| bad(field, "size must be 0 or more")),
        _ => Err(bad(field, "expected a whole number of shares")),
    }
}

/// Reads `t`, telling ms, µs and ns since the epoch apart by magnitude: any
/// date from 1973 to 2286 falls in exactly one range.
fn timestamp(value: &Node<'_>) -> Result<u64, LineError> {
    let raw = match value {
        Node::Static(StaticNode::U64(n)) => *n,
        Node::Static(StaticNode::I64(n)) => u64::try_from(*n).map_err(|_| bad("t", "negative timestamp"))?,
        _ => return Err(bad("t", "expected an integer timestamp")),
    };
    timestamp_ns(raw)
}

/// A timestamp of `t` in ns, or why it is out of range (see [`timestamp`]).
fn timestamp_ns(raw: u64) -> Result<u64, LineError> {
    let ns = match raw {
        0..100_000_000_000 => None,
        100_000_000_000..100_000_000_000_000 => raw.checked_mul(1_000_000),
        100_000_000_000_000..100_000_000_000_000_000 => raw.checked_mul(1_000),
        _ => Some(raw),
    };
    ns.ok_or_else(|| bad("t", "timestamp is not ms, µs or ns since 1973"))
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    fn decode(line: &str) -> Result<Event, LineError> {
        JsonLineDecoder::new().decode(&mut line.as_bytes().to_vec())
    }

    #[test]
    fn quote_prices_equal_their_text_as_decimals() {
        let line =
            r#"{"ev":"Q","sym":"GOOD","bx":8,"bp":18.73,"bs":993,"ax":8,"ap":18.75,"as":297,"t":1499697120000000000}"#;
        let Event::Quote(q) = decode(line).unwrap() else {
            panic!()
        };
        assert_eq!(Decimal::from(q.bid_price), Decimal::from_str_exact("18.73").unwrap());
        assert_eq!(Decimal::from(q.ask_price), Decimal::from_str_exact("18.75").unwrap());
        assert_eq!(
            (q.bid_size, q.ask_size, q.event_ts),
            (993, 297, 1_499_697_120_000_000_000)
        );
    }

    #[test]
    fn nested_values_of_other_keys_are_skipped_and_keep_numbers_in_step() {
        // Polygon trades carry their conditions as an array. The escaped key
        // `\u0070` ("p") makes the decoder find the price by counting number
        // tokens, which must include the ones inside the nested values.
        let line =
            r#"{"ev":"T","sym":"A","c":[12,37],"z":{"q":[1.5,{"r":2}]},"\u0070":271.42,"s":100,"t":1700000000000}"#;
        let Event::Trade(t) = decode(line).unwrap() else {
            panic!()
        };
        assert_eq!((t.price.units(), t.size), (271_420_000_000, 100));
        let line = r#"{"ev":"Q","sym":"A","bp":[1],"bs":1,"ap":2,"as":1,"t":1700000000000}"#;
        assert!(decode(line).is_err(), "a price must not be an array");
    }

    #[test]
    fn prices_that_floats_would_round_stay_exact() {
        // 0.1 + 0.2 style values and 17 significant digits survive unchanged.
        let line = r#"{"ev":"Q","sym":"X","bp":0.3,"bs":1,"ap":12345678.123456789,"as":1,"t":1700000000000}"#;
        let Event::Quote(q) = decode(line).unwrap() else {
            panic!()
        };
        assert_eq!(q.bid_price.units(), 300_000_000);
        assert_eq!(q.ask_price.units(), 12_345_678_123_456_789);
        assert_eq!(q.event_ts, 1_700_000_000_000_000_000, "ms are scaled to ns");
    }

    #[test]
    fn escaped_strings_do_not_shift_number_spans() {
        let line = r#"{"note":"a\"1,2\\","ev":"T","sym":"AAPL","x":"9","p":"148.91","s":283,"t":1499697120000001}"#;
        let Event::Trade(t) = decode(line).unwrap() else {
            panic!()
        };
        assert_eq!(t.price.to_string(), "148.91");
        assert_eq!((t.size, t.event_ts), (283, 1_499_697_120_000_001_000));
    }

    #[test]
    fn prices_are_read_exactly_whatever_the_spacing_or_escapes() {
        let lines = [
            // Spaces around keys, colons and values.
            r#"{ "ev" : "Q" , "sym" : "A" , "bp" :  18.73 , "bs" : 1 , "ap"	:	18.75 , "as" : 1 , "t" : 1700000000000 }"#,
            // A price key written with an escape: found by scanning instead.
            r#"{"ev":"Q","sym":"A","b\u0070":18.73,"bs":1,"ap":18.75,"as":1,"t":1700000000000}"#,
            // Escaped quotes and numbers inside strings before the prices.
            r#"{"x\"1":"2,\"3\\","ev":"Q","sym":"A","bs":1,"bp":18.73,"as":1,"ap":18.75,"t":1700000000000}"#,
            // Duplicate keys: the last one counts, as before.
            r#"{"ev":"Q","sym":"A","bp":1.5,"bs":1,"ap":18.75,"as":1,"bp":18.73,"t":1700000000000}"#,
        ];
        for line in lines {
            let Ok(Event::Quote(q)) = decode(line) else {
                panic!("{line}")
            };
            assert_eq!(
                (q.bid_price.units(), q.ask_price.units()),
                (18_730_000_000, 18_750_000_000),
                "{line}"
            );
        }
    }

    #[test]
    fn more_than_32_numbers_are_refused_as_such_valid_json_or_not() {
        let fields: String = (0..33).map(|i| format!(",\"n{i}\":{i}")).collect();
        let valid = format!(r#"{{"ev":"Q","sym":"A"{fields}}}"#);
        let invalid = format!(r#"{{"ev":"Q","sym":"A"{fields}"#);
        for line in [valid, invalid] {
            assert_eq!(
                decode(&line).unwrap_err(),
                LineError::Shape("more than 32 numbers on one line")
            );
        }
        // 30 numbers, "s" and "t": 32 are fine.
        let fields: String = (0..30).map(|i| format!(",\"n{i}\":{i}")).collect();
        let line = format!(r#"{{"ev":"T","sym":"A"{fields},"p":"1","s":1,"t":1700000000000}}"#);
        assert!(decode(&line).is_ok(), "32 numbers are fine");
    }

    #[test]
    fn decoder_reuses_buffers_across_lines() {
        let mut decoder = JsonLineDecoder::new();
        for i in 0..100u32 {
            let line = format!(r#"{{"ev":"T","sym":"S{i}","p":{i}.5,"s":{i},"t":1499697120000000000}}"#);
            let Event::Trade(t) = decoder.decode(&mut line.into_bytes()).unwrap() else {
                panic!()
            };
            assert_eq!(t.size, i);
            assert_eq!(t.price.to_string(), format!("{i}.50"));
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        // TC0..: each malformed shape and the reason the reader will log.
        let cases = [
            ("", "not valid JSON"),
            ("{\"ev\":\"Q\"", "not valid JSON"),
            ("[1]", "a feed line is a JSON object"),
            (
                r#"{"ev":"Q","sym":"A","bp":1,"bs":1,"ap":1,"as":1}"#,
                "missing field \"t\"",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":1,"bs":1,"as":1,"t":1700000000000}"#,
                "missing field \"ap\"",
            ),
            (r#"{"ev":"X","sym":"A","t":1700000000000}"#, "unknown event type"),
            (
                r#"{"ev":"Q","sym":"A B","bp":1,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
                "invalid symbol",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":1e3,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
                "not a plain decimal",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":0.0000000001,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
                "more than 9",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":1,"bs":-1,"ap":1,"as":1,"t":1700000000000}"#,
                "size must be 0 or more",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":1,"bs":1.5,"ap":1,"as":1,"t":1700000000000}"#,
                "whole number",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":1,"bs":1,"ap":1,"as":1,"t":12}"#,
                "timestamp is not",
            ),
            (
                r#"{"ev":"Q","sym":"A","bp":true,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
                "expected a price",
            ),
        ];
        for (line, reason) in cases {
            let err = decode(line).unwrap_err().to_string();
            assert!(err.contains(reason), "{line:?}: got {err:?}, want {reason:?}");
        }
    }
}
