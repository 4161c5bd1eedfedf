//! The bus's subject scheme: one NATS subject per symbol, `<prefix>.<token>`.
//!
//! NATS reserves `.` (token separator), `*` and `>` (wildcards) and
//! whitespace in subjects, and advises against other punctuation, while
//! symbols hold `.` (`BRK.B`), `/`, `^`, `=`, `+`. So a symbol becomes a
//! token by a reversible escape over a small alphabet: ASCII letters, digits
//! and `-` stand for themselves; every other byte, `_` itself included, is
//! `_` followed by its two upper-case hex digits (`BRK.B` → `BRK_2EB`).
//! Each byte string has exactly one token (no lower-case hex, no escaped
//! letter), so two symbols never share a subject and a subject read back
//! from the bus decodes to the symbol it was published for, or is refused.
//! SPEC.md, "The bus (NATS JetStream)", has the table and vectors.

use quotehub_proto::{Channels, Symbol};

use crate::error::BusError;

/// The escape byte: what follows it is two upper-case hex digits.
const ESCAPE: u8 = b'_';

/// Whether a byte stands for itself in a token.
const fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// The subject token of a byte string (a symbol's text).
pub fn encode_token(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut token = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if is_plain(b) {
            token.push(char::from(b));
        } else {
            token.push(char::from(ESCAPE));
            token.push(char::from(HEX[usize::from(b >> 4)]));
            token.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    token
}

/// The bytes a token stands for; `None` unless it is the one token
/// [`encode_token`] gives for them.
pub fn decode_token(token: &str) -> Option<Vec<u8>> {
    let upper_hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if is_plain(b) {
            bytes.push(b);
            rest = tail;
        } else if b == ESCAPE {
            let [high, low, tail @ ..] = tail else { return None };
            let decoded = (upper_hex(*high)? << 4) | upper_hex(*low)?;
            if is_plain(decoded) {
                // An escaped plain byte would be a second spelling.
                return None;
            }
            bytes.push(decoded);
            rest = tail;
        } else {
            return None;
        }
    }
    (!bytes.is_empty()).then_some(bytes)
}

/// The subjects of one deployment: every symbol's subject sits under one
/// prefix, so that one stream (`<prefix>.>`) holds them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The prefix quotehub uses unless told otherwise.
    pub const DEFAULT_PREFIX: &'static str = "quotehub.rec";

    /// Subjects under `prefix`: one or more `.`-separated tokens of letters,
    /// digits, `-` and `_` (no wildcard, no whitespace, not `$`-led, which
    /// NATS keeps for its own APIs).
    pub fn new(prefix: &str) -> Result<Self, BusError> {
        let bad = |reason| BusError::Prefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if prefix.is_empty() {
            return Err(bad("empty"));
        }
        for token in prefix.split('.') {
            if token.is_empty() {
                return Err(bad("an empty token (two dots, or a dot at an end)"));
            }
            if !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("allowed are letters, digits, '-' and '_' between dots"));
            }
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The subject of one symbol's records.
    pub fn of(&self, symbol: &Symbol) -> String {
        format!("{}.{}", self.prefix, encode_token(symbol.as_str().as_bytes()))
    }

    /// The wildcard that covers every symbol's subject (what the stream holds).
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The prefix of the live subjects, `<prefix>-live`: where the stream
    /// republishes each record it stores (SPEC.md, "Live subjects"). Its
    /// last token differs from the prefix's, so the two spaces never
    /// overlap (JetStream refuses a republish into its own subjects).
    pub fn live_prefix(&self) -> String {
        format!("{}-live", self.prefix)
    }

    /// The live subject of one symbol's records: what an edge subscribes to
    /// (core NATS) for the records the stream has stored.
    pub fn live_of(&self, symbol: &Symbol) -> String {
        format!("{}.{}", self.live_prefix(), encode_token(symbol.as_str().as_bytes()))
    }

    /// The wildcard over every symbol's live subject.
    pub fn live_all(&self) -> String {
        format!("{}.>", self.live_prefix())
    }

    /// The symbol a subject under this prefix is for; `None` for any other
    /// subject, or a token that is not a symbol's one spelling.
    pub fn symbol_of(&self, subject: &str) -> Option<Symbol> {
        let token = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        Symbol::from_bytes(&decode_token(token)?).ok()
    }

    /// The prefix of the derived subjects, `<prefix>-drv`: where the bars
    /// and BBO records the ingest hub derives go, in a stream of their own
    /// (SPEC.md, "Derived channels"). Its last token differs from the
    /// prefix's and the live prefix's, so no two spaces overlap.
    pub fn derived_prefix(&self) -> String {
        format!("{}-drv", self.prefix)
    }

    /// The subject of one symbol's records of one derived `channel`
    /// (`bars.1s`, `bars.1m` or `bbo`): `<prefix>-drv.<channel token>.<symbol token>`;
    /// `None` for any other channel set.
    pub fn derived_of(&self, channel: Channels, symbol: &Symbol) -> Option<String> {
        Some(format!(
            "{}.{}.{}",
            self.derived_prefix(),
            derived_token(channel)?,
            encode_token(symbol.as_str().as_bytes())
        ))
    }

    /// The wildcard over every derived channel of one symbol.
    pub fn derived_channels_of(&self, symbol: &Symbol) -> String {
        format!(
            "{}.*.{}",
            self.derived_prefix(),
            encode_token(symbol.as_str().as_bytes())
        )
    }

    /// The wildcard over every derived subject (what the derived stream holds).
    pub fn derived_all(&self) -> String {
        format!("{}.>", self.derived_prefix())
    }

    /// The channel and symbol a derived subject under this prefix is for;
    /// `None` for any other subject.
    pub fn derived_symbol_of(&self, subject: &str) -> Option<(Channels, Symbol)> {
        let rest = subject.strip_prefix(&self.derived_prefix())?.strip_prefix('.')?;
        let (channel, token) = rest.split_once('.')?;
        let channel = channel_of_token(channel)?;
        Some((channel, Symbol::from_bytes(&decode_token(token)?).ok()?))
    }
}

/// The derived channels, each with its subject token (one token: a
/// channel's name holds a `.`, which NATS reads as a separator).
pub const DERIVED_TOKENS: [(Channels, &str); 3] = [
    (Channels::BARS_1S, "bars-1s"),
    (Channels::BARS_1M, "bars-1m"),
    (Channels::BBO, "bbo"),
];

/// The subject token of a derived channel; `None` for any other set.
pub fn derived_token(channel: Channels) -> Option<&'static str> {
    DERIVED_TOKENS
        .iter()
        .find(|(known, _)| *known == channel)
        .map(|(_, token)| *token)
}

/// The derived channel a subject token names.
pub fn channel_of_token(token: &str) -> Option<Channels> {
    DERIVED_TOKENS
        .iter()
        .find(|(_, known)| *known == token)
        .map(|(channel, _)| *channel)
}

impl Default for Subjects {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// SPEC.md's table: symbol → token. The test below reads the table back
    /// out of SPEC.md so that the document and the code cannot drift.
    const VECTORS: &[(&str, &str)] = &[
        ("AAPL", "AAPL"),
        ("BRK.B", "BRK_2EB"),
        ("AA-", "AA-"),
        ("BF/B", "BF_2FB"),
        ("^GSPC", "_5EGSPC"),
        ("EURUSD=X", "EURUSD_3DX"),
        ("ES_F", "ES_5FF"),
        ("BRK+A", "BRK_2BA"),
        ("a.b.c", "a_2Eb_2Ec"),
    ];

    #[test]
    fn spec_vectors_encode_and_decode() {
        for &(symbol, token) in VECTORS {
            assert_eq!(encode_token(symbol.as_bytes()), token, "{symbol}");
            assert_eq!(decode_token(token).unwrap(), symbol.as_bytes(), "{token}");
        }
    }

    #[test]
    fn spec_md_lists_the_same_vectors() {
        let spec = include_str!("../../quotehub-proto/SPEC.md");
        let section = spec
            .split("## The bus (NATS JetStream)")
            .nth(1)
            .expect("SPEC.md has the bus section");
        for &(symbol, token) in VECTORS {
            let hex: Vec<String> = token.bytes().map(|b| format!("{b:02x}")).collect();
            let row = format!("| `{symbol}` | `{token}` | `{}` |", hex.join(" "));
            assert!(section.contains(&row), "SPEC.md's bus table lacks the row {row}");
        }
    }

    #[test]
    fn every_reserved_and_punctuation_byte_is_escaped_and_round_trips() {
        // NATS's reserved bytes, whitespace, and every punctuation byte a symbol may hold.
        for b in [
            b'.', b'*', b'>', b' ', b'\t', b'\r', b'\n', b'$', b'_', b'/', b'^', b'=', b'+', 0, 0x7f, 0xff,
        ] {
            let token = encode_token(&[b'X', b, b'Y']);
            assert_eq!(token.len(), 5, "{b:#04x} becomes one 3-character escape: {token}");
            assert!(
                token
                    .bytes()
                    .all(|t| t.is_ascii_alphanumeric() || t == b'-' || t == b'_'),
                "{b:#04x}: {token} holds only subject-safe bytes"
            );
            assert_eq!(decode_token(&token).unwrap(), [b'X', b, b'Y']);
        }
    }

    #[test]
    fn all_byte_strings_round_trip_and_tokens_are_single_tokens() {
        for b in 0..=255u8 {
            let bytes = [b, b'.', b];
            let token = encode_token(&bytes);
            assert!(!token.contains(['.', '*', '>', ' ']), "{token}");
            assert_eq!(decode_token(&token).unwrap(), bytes);
        }
    }

    #[test]
    fn only_the_one_spelling_decodes() {
        for (bad, why) in [
            ("", "empty"),
            ("BRK.B", "a raw dot"),
            ("BRK_2eB", "lower-case hex"),
            ("_41", "an escaped plain letter"),
            ("_2D", "an escaped dash"),
            ("AB_2", "a cut escape"),
            ("AB_", "a bare escape"),
            ("A*", "a wildcard"),
            ("A B", "a space"),
        ] {
            assert_eq!(decode_token(bad), None, "{why}: {bad:?}");
        }
    }

    #[test]
    fn subjects_map_symbols_both_ways() {
        let subjects = Subjects::default();
        for text in ["AAPL", "BRK.B", "BF/B", "ES_F", "^GSPC", "ZZZZZZZZZZZZZZZZ"] {
            let symbol = Symbol::from_bytes(text.as_bytes()).unwrap();
            let subject = subjects.of(&symbol);
            assert!(subject.starts_with("quotehub.rec."), "{subject}");
            assert_eq!(subject.matches('.').count(), 2, "{subject}: one token per symbol");
            assert_eq!(subjects.symbol_of(&subject), Some(symbol));
        }
        assert_eq!(subjects.all(), "quotehub.rec.>");
        assert_eq!(subjects.live_all(), "quotehub.rec-live.>");
        assert_eq!(
            subjects.live_of(&Symbol::from_bytes(b"BRK.B").unwrap()),
            "quotehub.rec-live.BRK_2EB"
        );
        assert_eq!(subjects.symbol_of("quotehub.rec.A.B"), None);
        assert_eq!(subjects.symbol_of("quotehub.recA"), None);
        assert_eq!(subjects.symbol_of("other.rec.AAPL"), None);
        // A token that decodes to bytes no symbol may hold.
        assert_eq!(subjects.symbol_of("quotehub.rec.A_2A"), None);
    }

    #[test]
    fn derived_subjects_map_channels_and_symbols_both_ways() {
        let subjects = Subjects::default();
        let symbol = Symbol::from_bytes(b"BRK.B").unwrap();
        assert_eq!(
            subjects.derived_of(Channels::BARS_1S, &symbol).unwrap(),
            "quotehub.rec-drv.bars-1s.BRK_2EB"
        );
        assert_eq!(
            subjects.derived_of(Channels::BBO, &symbol).unwrap(),
            "quotehub.rec-drv.bbo.BRK_2EB"
        );
        assert_eq!(subjects.derived_of(Channels::QUOTES, &symbol), None);
        assert_eq!(subjects.derived_of(Channels::ALL, &symbol), None);
        assert_eq!(subjects.derived_channels_of(&symbol), "quotehub.rec-drv.*.BRK_2EB");
        assert_eq!(subjects.derived_all(), "quotehub.rec-drv.>");
        for (channel, _) in DERIVED_TOKENS {
            let subject = subjects.derived_of(channel, &symbol).unwrap();
            assert_eq!(subjects.derived_symbol_of(&subject), Some((channel, symbol)));
            assert_eq!(subjects.symbol_of(&subject), None, "not a record subject");
        }
        assert_eq!(subjects.derived_symbol_of("quotehub.rec.BRK_2EB"), None);
        assert_eq!(subjects.derived_symbol_of("quotehub.rec-drv.quotes.AAPL"), None);
        assert_eq!(subjects.derived_symbol_of("quotehub.rec-drv.bbo.A.B"), None);
        assert_eq!(subjects.derived_symbol_of("quotehub.rec-drv.bbo"), None);
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(Subjects::new("md.us_eq").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b", "$JS"] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
    }
}
