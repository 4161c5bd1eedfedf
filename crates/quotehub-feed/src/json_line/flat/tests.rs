//! The fast path against the simd-json path: on every line, `decode` (fast
//! path first) gives exactly what the simd-json path alone gives, event or
//! error, and whatever the fast path accepts, the simd-json path accepts as
//! the same event.

use super::super::JsonLineDecoder;
use crate::error::LineError;
use quotehub_proto::Event;

/// Both paths on one line; returns whether the fast path took it.
fn check_same(line: &[u8]) -> bool {
    let reference = JsonLineDecoder::new().decode_with_simd_json(line);
    let fast = JsonLineDecoder::decode_flat(line);
    if let Some(event) = &fast {
        assert_eq!(
            Ok(event),
            reference.as_ref(),
            "fast path differs on {:?}",
            String::from_utf8_lossy(line)
        );
    }
    let decoded = JsonLineDecoder::new().decode(&mut line.to_vec());
    assert_eq!(
        decoded,
        reference,
        "decode differs on {:?}",
        String::from_utf8_lossy(line)
    );
    fast.is_some()
}

#[test]
fn plain_lines_take_the_fast_path() {
    let lines = [
        r#"{"ev":"Q","sym":"AAPL","bx":12,"bp":271.22,"bs":1100,"ax":10,"ap":271.23,"as":700,"t":1795185012481269311}"#,
        r#"{"ev":"T","sym":"BRK.B","x":4,"p":"148.91","s":283,"c":"@","t":1499697120000001}"#,
        // Whitespace anywhere JSON allows it, any key order, a trailing newline.
        " {\t\"t\" : 1700000000000 ,\r\n\"as\":1, \"ap\" : -0.5,\"bs\":0,\"bp\":0,\"sym\":\"AA-\",\"ev\":\"Q\"} \n",
        // Duplicate keys: the last one counts on both paths.
        r#"{"ev":"Q","sym":"A","bp":1.5,"bs":1,"ap":18.75,"as":1,"bp":18.73,"t":1700000000000}"#,
        // Unknown keys with literals, negative and long numbers are skipped.
        r#"{"n":null,"b":true,"f":false,"x":-12.5,"y":1234567890123456789,"ev":"T","sym":"Z","p":0.000000001,"s":4294967295,"t":9999999999999999999}"#,
        // 32 numbers are fine.
        &format!(
            r#"{{"ev":"T","sym":"A"{},"p":"1","s":1,"t":1700000000000}}"#,
            (0..30).map(|i| format!(",\"n{i}\":{i}")).collect::<String>()
        ),
    ];
    for line in lines {
        assert!(check_same(line.as_bytes()), "not on the fast path: {line}");
    }
}

#[test]
fn unusual_and_bad_lines_fall_back_with_the_same_result() {
    let lines = [
        // Exponents (a valid price or not), escapes in keys and strings.
        r#"{"ev":"Q","sym":"A","bp":1e3,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
        r#"{"ev":"Q","sym":"A","bp":1,"bs":1,"ap":1,"as":1,"x":2.5E-3,"t":1700000000000}"#,
        r#"{"ev":"Q","sym":"A","b\u0070":18.73,"bs":1,"ap":18.75,"as":1,"t":1700000000000}"#,
        r#"{"ev":"\u0051","sym":"A","bp":1,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
        r#"{"note":"a\"1,2\\","ev":"T","sym":"AAPL","p":"148.91","s":283,"t":1499697120000001}"#,
        r#"{"ev":"T","sym":"É","p":1,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","u":"é","p":1,"s":1,"t":1700000000000}"#,
        // Huge numbers and sizes or timestamps out of range.
        r#"{"ev":"T","sym":"A","p":123456789012345678901234567890,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","x":123456789012345678901234567890,"p":1,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":4294967296,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":-0,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":1,"t":18446744073709551616}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":1,"t":12}"#,
        r#"{"ev":"T","sym":"A","p":1.0000000000000000000000,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":99999999999.5,"s":1,"t":1700000000000}"#,
        // Not JSON: leading zeros, bare points, truncation, trailing bytes.
        r#"{"ev":"T","sym":"A","p":01,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":.5,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1.,"s":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":1,"t":1700000000000"#,
        r#"{"ev":"T","sym":"A","p":1,"s":1,"t":1700000000000}x"#,
        r#"{"ev":"T","sym":"A","p":1,"s":1,"t":1700000000000,}"#,
        "{\"ev\":\"T\",\"sym\":\"A\",\"p\":1,\"s\":1,\"t\":1700000000000}\u{b}",
        // Nesting, missing fields, the wrong types, more than 32 numbers.
        r#"{"ev":"Q","sym":"A","c":[1],"bp":1,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
        r#"{"ev":"Q","sym":"A","bp":1,"bs":1,"as":1,"t":1700000000000}"#,
        r#"{"ev":"Q","sym":"A","bp":true,"bs":1,"ap":1,"as":1,"t":1700000000000}"#,
        r#"{"ev":"T","sym":"A","p":1,"s":"1","t":1700000000000}"#,
        &format!(
            r#"{{"ev":"T","sym":"A"{}}}"#,
            (0..33).map(|i| format!(",\"n{i}\":{i}")).collect::<String>()
        ),
        "",
        "{}",
        "[1]",
    ];
    for line in lines {
        assert!(!check_same(line.as_bytes()), "on the fast path: {line}");
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PRICES: &[&str] = &[
    "271.22",
    "0.3",
    "-1.5",
    "-0",
    "0",
    "0.0",
    "12345678.123456789",
    "1e3",
    "1E-2",
    "1.5e+2",
    "00.5",
    "01",
    ".5",
    "1.",
    "-",
    "\"148.91\"",
    "\"1e3\"",
    "\"-0.5\"",
    "\" 1.5\"",
    "\"\"",
    "0.0000000001",
    "1.000000000000000000000",
    "99999999999.5",
    "9223372036.854775807",
    "9223372036.854775808",
    "123456789012345678901234567890",
    "1e400",
    "true",
    "null",
    "\"\\u0031.5\"",
    "[1]",
    "{}",
    "1.5.5",
    "--1",
];
const SIZES: &[&str] = &[
    "1100",
    "0",
    "-0",
    "-1",
    "1.5",
    "1.0",
    "1e2",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "\"100\"",
    "01",
    "null",
    "9999999999999999999",
];
const TIMES: &[&str] = &[
    "1795185012481269311",
    "1700000000000",
    "1700000000000000",
    "12",
    "-1",
    "1.7e18",
    "9999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "\"1700000000000\"",
    "0",
    "100000000000",
    "99999999999",
    "1700000000000.0",
    "-0",
];
const SYMBOLS: &[&str] = &[
    "\"AAPL\"",
    "\"BRK.B\"",
    "\"AA-\"",
    "\"ZVZZT\"",
    "\"ABCDEFGHIJK\"",
    "\"ABCDEFGHIJKLMNOPQ\"",
    "\"A B\"",
    "\"\"",
    "\"\\u00e9\"",
    "\"é\"",
    "\"A\\\"B\"",
    "\"aapl\"",
    "1",
    "\"A\u{7f}\"",
    "\"A\tB\"",
];
const EVENTS: &[&str] = &["\"Q\"", "\"T\"", "\"X\"", "\"\\u0051\"", "1", "null", "\"Q \"", "\"q\""];
const UNKNOWN: &[&str] = &[
    "\"bx\":12",
    "\"c\":[1,2]",
    "\"c\":{}",
    "\"z\":\"a\\nb\"",
    "\"n\":null",
    "\"b\":true",
    "\"f\":false",
    "\"x\":1e5",
    "\"u\":\"\\u00e9\"",
    "\"q\":\"plain\"",
    "\"big\":123456789012345678901234567890",
    "\"neg\":-12.5",
    "\"raw\":\"é\"",
    "\"\":0",
    "\"ev2\":\"Q\"",
    "\"c\":\"@\"",
    "\"i\":1234567890123456789",
];
const SPACES: &[&str] = &[" ", "\t", "\n", "\r", "  ", "\u{b}", "\u{a0}"];

/// One line: usually a valid quote or trade in random key order, with
/// unknown keys, duplicates, odd values and odd spacing now and then, and
/// sometimes truncated or with one byte replaced.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let quote = rng.chance(60);
    let mut fields: Vec<String> = Vec::new();
    let mut field = |rng: &mut Rng, key: &str, good: &str, odd: &[&str]| {
        if rng.chance(2) {
            return;
        }
        let value = if rng.chance(5) { rng.pick(odd) } else { good };
        let key = if rng.chance(2) {
            format!("{key}\\u0020")
        } else {
            key.to_owned()
        };
        fields.push(format!("\"{key}\":{value}"));
    };
    field(rng, "ev", if quote { "\"Q\"" } else { "\"T\"" }, EVENTS);
    field(rng, "sym", "\"AAPL\"", SYMBOLS);
    let t = ["1795185012481269311", "1700000000000", "1700000000000000"][rng.below(3)];
    field(rng, "t", t, TIMES);
    if quote {
        field(rng, "bp", "271.22", PRICES);
        field(rng, "bs", "1100", SIZES);
        field(rng, "ap", "271.23", PRICES);
        field(rng, "as", "700", SIZES);
    } else {
        field(rng, "p", "148.905", PRICES);
        field(rng, "s", "283", SIZES);
    }
    for _ in 0..rng.below(3) {
        fields.push(rng.pick(UNKNOWN).to_owned());
    }
    if rng.chance(10) && !fields.is_empty() {
        let again = fields[rng.below(fields.len())].clone();
        fields.push(again);
    }
    for i in (1..fields.len()).rev() {
        let j = rng.below(i + 1);
        fields.swap(i, j);
    }
    let space = |rng: &mut Rng| {
        if rng.chance(8) {
            if rng.chance(90) {
                rng.pick(&SPACES[..5])
            } else {
                rng.pick(SPACES)
            }
        } else {
            ""
        }
    };
    let mut line = String::new();
    line.push_str(space(rng));
    line.push('{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push_str(space(rng));
            line.push(',');
        }
        line.push_str(space(rng));
        // Space around the colon too.
        match field.split_once("\":") {
            Some((key, value)) if rng.chance(20) => {
                line.push_str(key);
                line.push('"');
                line.push_str(space(rng));
                line.push(':');
                line.push_str(space(rng));
                line.push_str(value);
            }
            _ => line.push_str(field),
        }
    }
    line.push_str(space(rng));
    line.push('}');
    line.push_str(space(rng));
    let mut line = line.into_bytes();
    if rng.chance(5) {
        line.truncate(rng.below(line.len() + 1));
    }
    if rng.chance(5) && !line.is_empty() {
        let at = rng.below(line.len());
        line[at] = [
            b'"', b'\\', b'{', b'}', b',', b':', b'0', b'x', b'.', b'-', 0x80, 0, b'e',
        ][rng.below(13)];
    }
    line
}

#[test]
fn generated_lines_decode_the_same_on_both_paths() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut fast, mut accepted) = (0, 0);
    let lines = 100_000;
    for _ in 0..lines {
        let line = generate(&mut rng);
        fast += usize::from(check_same(&line));
        accepted += usize::from(JsonLineDecoder::new().decode_with_simd_json(&line).is_ok());
    }
    eprintln!("{lines} lines: {fast} on the fast path, {accepted} accepted by simd-json");
    // Most generated lines are plain and valid: the fast path must take them,
    // and the simd-json path must be left lines it accepts as well as errors.
    assert!(fast > lines / 4, "fast path took only {fast} of {lines} lines");
    assert!(
        accepted > fast,
        "no valid line fell back ({accepted} accepted, {fast} fast)"
    );
}

#[test]
fn the_bundled_feed_takes_the_fast_path_with_the_same_events() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feeds/us-equities-2026-11-20.jsonl");
    let Ok(text) = std::fs::read(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let mut reference = JsonLineDecoder::new();
    let mut lines = 0;
    for line in text.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let fast = JsonLineDecoder::decode_flat(line);
        let expected: Result<Event, LineError> = reference.decode_with_simd_json(line);
        assert_eq!(
            fast.ok_or("not on the fast path"),
            expected.map_err(|_| "refused"),
            "line {lines}"
        );
        lines += 1;
    }
    assert!(lines > 70_000, "{lines} lines");
}
