//! Control messages: JSON text the client sends (requests) and the hub's JSON
//! replies. Every request is answered, echoing its `id`.

use serde::Serialize;
use serde_json::Value;

use crate::symbol::Symbol;

/// What a client asks for in a `symbols` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Selection {
    /// `"*"`: every symbol, including ones the feed has not shown yet.
    All,
    /// The named symbols.
    Symbol(Symbol),
}

/// The request's `id`, echoed in its reply so the client can match them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A non-negative integer id.
    Number(u64),
    /// A string id (at most [`MAX_ID_LEN`] bytes).
    Text(String),
}

/// The longest string `id` the hub echoes.
pub const MAX_ID_LEN: usize = 64;

/// A request operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Start receiving the symbols (last value first, as a snapshot).
    Subscribe,
    /// Stop receiving the symbols.
    Unsubscribe,
}

/// A valid client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// On what.
    pub symbols: Vec<Selection>,
    /// Echoed in the reply.
    pub id: Option<RequestId>,
}

/// Error codes of [`Reply::Error`]; stable strings clients may match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The text was not a JSON object.
    MalformedJson,
    /// `op` was missing or not one the hub knows.
    UnknownOp,
    /// A field was missing or of the wrong type.
    BadRequest,
    /// A symbol was not valid.
    InvalidSymbol,
    /// The client sent a binary message; requests are JSON text.
    UnsupportedMessage,
    /// A code this build does not know (sent by a newer hub).
    #[serde(other)]
    Other,
}

/// A reply to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Reply {
    /// The request was carried out.
    Ack {
        /// The request's id, or null.
        id: Option<RequestId>,
        /// The operation carried out.
        op: Op,
        /// The symbols it applied to, as the client named them (`"*"` included).
        symbols: Vec<String>,
    },
    /// The request was refused; nothing changed.
    Error {
        /// The request's id when it could be read, or null.
        id: Option<RequestId>,
        /// A stable code.
        code: ErrorCode,
        /// A sentence for people.
        message: String,
    },
}

impl Reply {
    /// An error reply.
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Reply::Error {
            id,
            code,
            message: message.into(),
        }
    }

    /// The reply as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail; keep a valid reply regardless.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","id":null,"code":"bad_request","message":"reply could not be encoded"}"#.to_owned()
        })
    }
}

impl Request {
    /// Parses and validates a request, or returns the error reply to send.
    pub fn parse(text: &str) -> Result<Self, Reply> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Reply::error(None, ErrorCode::MalformedJson, format!("not valid JSON: {err}")))?;
        let Value::Object(fields) = value else {
            return Err(Reply::error(
                None,
                ErrorCode::MalformedJson,
                "a request is a JSON object",
            ));
        };
        let id = match fields.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().map(RequestId::Number),
            Some(Value::String(s)) if s.len() <= MAX_ID_LEN => Some(RequestId::Text(s.clone())),
            Some(_) => {
                return Err(Reply::error(
                    None,
                    ErrorCode::BadRequest,
                    "id must be a non-negative integer or a string of at most 64 bytes",
                ));
            }
        };
        let op = match fields.get("op").and_then(Value::as_str) {
            Some("subscribe") => Op::Subscribe,
            Some("unsubscribe") => Op::Unsubscribe,
            Some(other) => {
                let shown: String = other.chars().take(32).collect();
                return Err(Reply::error(
                    id,
                    ErrorCode::UnknownOp,
                    format!("unknown op {shown:?}; expected \"subscribe\" or \"unsubscribe\""),
                ));
            }
            None => return Err(Reply::error(id, ErrorCode::UnknownOp, "missing string field \"op\"")),
        };
        let Some(Value::Array(items)) = fields.get("symbols") else {
            return Err(Reply::error(
                id,
                ErrorCode::BadRequest,
                "missing array field \"symbols\"",
            ));
        };
        if items.is_empty() {
            return Err(Reply::error(id, ErrorCode::BadRequest, "\"symbols\" is empty"));
        }
        let mut symbols = Vec::with_capacity(items.len());
        for item in items {
            let Some(text) = item.as_str() else {
                return Err(Reply::error(id, ErrorCode::BadRequest, "every symbol must be a string"));
            };
            if text == "*" {
                symbols.push(Selection::All);
                continue;
            }
            match text.parse() {
                Ok(symbol) => symbols.push(Selection::Symbol(symbol)),
                Err(err) => return Err(Reply::error(id, ErrorCode::InvalidSymbol, err.to_string())),
            }
        }
        Ok(Request { op, symbols, id })
    }

    /// The request as JSON text, as a client sends it.
    pub fn to_json(&self) -> String {
        let symbols: Vec<&str> = self
            .symbols
            .iter()
            .map(|s| match s {
                Selection::All => "*",
                Selection::Symbol(symbol) => symbol.as_str(),
            })
            .collect();
        let op = match self.op {
            Op::Subscribe => "subscribe",
            Op::Unsubscribe => "unsubscribe",
        };
        serde_json::json!({ "op": op, "symbols": symbols, "id": self.id }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> (Option<RequestId>, ErrorCode) {
        match Request::parse(text) {
            Err(Reply::Error { id, code, .. }) => (id, code),
            other => panic!("{text} gave {other:?}"),
        }
    }

    #[test]
    fn parses_subscribe_with_wildcard_and_id() {
        let request = Request::parse(r#"{"op":"subscribe","symbols":["AAPL","*","BRK.B"],"id":7}"#).unwrap();
        assert_eq!(request.op, Op::Subscribe);
        assert_eq!(request.id, Some(RequestId::Number(7)));
        assert_eq!(
            request.symbols,
            vec![
                Selection::Symbol("AAPL".parse().unwrap()),
                Selection::All,
                Selection::Symbol("BRK.B".parse().unwrap())
            ]
        );
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
    }

    #[test]
    fn every_bad_request_gets_a_code_and_keeps_its_id() {
        // TC0: not JSON. TC1: not an object. TC2: unknown op keeps id. TC3: missing op.
        // TC4: symbols missing. TC5: empty. TC6: not strings. TC7: bad symbol. TC8: bad id.
        assert_eq!(code_of("{nope"), (None, ErrorCode::MalformedJson));
        assert_eq!(code_of("[1,2]"), (None, ErrorCode::MalformedJson));
        assert_eq!(
            code_of(r#"{"op":"fly","id":"a"}"#),
            (Some(RequestId::Text("a".into())), ErrorCode::UnknownOp)
        );
        assert_eq!(
            code_of(r#"{"symbols":["A"],"id":3}"#),
            (Some(RequestId::Number(3)), ErrorCode::UnknownOp)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","id":4}"#),
            (Some(RequestId::Number(4)), ErrorCode::BadRequest)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":[]}"#),
            (None, ErrorCode::BadRequest)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":[1]}"#),
            (None, ErrorCode::BadRequest)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A B"],"id":5}"#),
            (Some(RequestId::Number(5)), ErrorCode::InvalidSymbol)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"id":-1}"#),
            (None, ErrorCode::BadRequest)
        );
    }

    #[test]
    fn replies_serialize_as_documented() {
        let ack = Reply::Ack {
            id: Some(RequestId::Number(1)),
            op: Op::Subscribe,
            symbols: vec!["AAPL".into()],
        };
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL"]}"#
        );
        let error = Reply::error(None, ErrorCode::InvalidSymbol, "bad");
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","id":null,"code":"invalid_symbol","message":"bad"}"#
        );
    }
}
