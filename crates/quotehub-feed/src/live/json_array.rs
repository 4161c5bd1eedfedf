//! Splits a JSON array of objects into its elements' byte spans, so each
//! element can go through the same exact per-object decoder as a feed line
//! (prices are read from their own digits, never through a float). Only the
//! array's shape is checked here; each element is validated by its decoder.

use crate::error::LineError;

/// Finds the span of every top-level element of `text`, a JSON array of
/// objects (a lone object counts as an array of one). Strings are skipped
/// with their escapes, so braces inside them do not count.
pub fn split_objects(text: &[u8], spans: &mut Vec<(usize, usize)>) -> Result<(), LineError> {
    spans.clear();
    let mut at = skip_whitespace(text, 0);
    match text.get(at) {
        Some(b'{') => {
            let end = object_end(text, at)?;
            spans.push((at, end));
            return expect_end(text, end);
        }
        Some(b'[') => at += 1,
        _ => return Err(LineError::Shape("a message is a JSON array of objects")),
    }
    at = skip_whitespace(text, at);
    if text.get(at) == Some(&b']') {
        return expect_end(text, at + 1);
    }
    loop {
        if text.get(at) != Some(&b'{') {
            return Err(LineError::Shape("array elements must be objects"));
        }
        let end = object_end(text, at)?;
        spans.push((at, end));
        at = skip_whitespace(text, end);
        match text.get(at) {
            Some(b',') => at = skip_whitespace(text, at + 1),
            Some(b']') => return expect_end(text, at + 1),
            _ => return Err(LineError::Shape("expected , or ] after an array element")),
        }
    }
}

/// Where the object opening at `start` ends (one past its closing brace).
fn object_end(text: &[u8], start: usize) -> Result<usize, LineError> {
    let mut depth = 0usize;
    let mut at = start;
    while at < text.len() {
        match text[at] {
            b'"' => {
                at += 1;
                while at < text.len() && text[at] != b'"' {
                    at += if text[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    Err(LineError::Shape("unterminated object in array"))
}

fn expect_end(text: &[u8], at: usize) -> Result<(), LineError> {
    if skip_whitespace(text, at) == text.len() {
        Ok(())
    } else {
        Err(LineError::Shape("text after the end of the array"))
    }
}

fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && matches!(text[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Result<Vec<&str>, LineError> {
        let mut spans = Vec::new();
        split_objects(text.as_bytes(), &mut spans)?;
        Ok(spans.iter().map(|&(start, end)| &text[start..end]).collect())
    }

    #[test]
    fn arrays_split_into_objects_with_strings_and_nesting_respected() {
        assert_eq!(
            elements(r#" [ {"ev":"Q","x":"}{]"} , {"ev":"T","c":[1,{"a":2}]} ] "#).unwrap(),
            [r#"{"ev":"Q","x":"}{]"}"#, r#"{"ev":"T","c":[1,{"a":2}]}"#]
        );
        assert_eq!(
            elements(r#"{"ev":"status","m":"\"}"}"#).unwrap(),
            [r#"{"ev":"status","m":"\"}"}"#]
        );
        assert_eq!(elements("[]").unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn broken_arrays_are_refused() {
        for bad in [
            "",
            "[1]",
            "[{}",
            r#"[{"a":"}]"#,
            "[{} {}]",
            "[{}] x",
            "\"text\"",
            "[{},]",
        ] {
            assert!(elements(bad).is_err(), "{bad:?}");
        }
    }
}
