//! Control messages: JSON text the client sends (requests) and the hub's JSON
//! replies. Every request is answered, echoing its `id`.

use serde::Serialize;
use serde_json::Value;

use crate::channel::Channels;
use crate::epoch::Epoch;
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

/// What the hub does when a client reads slower than its symbols publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Merge pending updates per symbol, keeping the newest (flagged
    /// `CONFLATED`, with a count): the client always catches up.
    #[default]
    Conflate,
    /// Close the client with code 1008 and the reason "slow consumer".
    Disconnect,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "conflate" => Ok(Policy::Conflate),
            "disconnect" => Ok(Policy::Disconnect),
            other => Err(format!(
                "unknown policy {other:?}; expected \"conflate\" or \"disconnect\""
            )),
        }
    }
}

/// A valid client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// On what.
    pub symbols: Vec<Selection>,
    /// Which channels of those symbols: what a subscribe adds, what an
    /// unsubscribe removes. A request without `channels` means
    /// [`Channels::DEFAULT`] (quotes and trades) on a subscribe and
    /// [`Channels::ALL`] on an unsubscribe ([`Request::default_channels`]).
    pub channels: Channels,
    /// Echoed in the reply.
    pub id: Option<RequestId>,
    /// For a subscribe after a reconnect: the last sequence number the client
    /// saw per symbol. The hub sends what it still holds after each instead
    /// of a snapshot, or a snapshot flagged `RESET` when it no longer does.
    pub resume: Vec<(Symbol, u64)>,
    /// The sequence space `resume`'s numbers come from (the epoch of the ack
    /// the client last had); a resume from another space gets `RESET`
    /// snapshots.
    pub epoch: Option<Epoch>,
    /// A change of this connection's slow-consumer policy.
    pub policy: Option<Policy>,
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
    /// The client sent requests faster than the hub accepts them.
    RateLimited,
    /// The connection's API key does not allow a requested symbol.
    NotEntitled,
    /// The request names symbols no feed has published, and the hub already
    /// tracks as many symbols as it is configured to, or this connection
    /// holds as many never-published symbols as one connection may.
    SymbolLimit,
    /// `channels` named a channel this hub does not carry.
    UnknownChannel,
    /// A resume this hub cannot answer yet: it reads the named symbols from
    /// an upstream (an edge's bus) that did not deliver their history in
    /// time. Nothing was carried out; the client retries, here or elsewhere.
    UpstreamUnavailable,
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
        /// The sequence space of the records this connection gets.
        epoch: Epoch,
        /// On a subscribe: the requested symbols no feed has published yet
        /// (a typo, a lowercase name, or one still to come); they get no
        /// snapshot until a feed sends them. Left out when there are none.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        unseen: Vec<String>,
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
        let resume = match fields.get("resume") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) if op == Op::Subscribe => {
                let mut resume = Vec::with_capacity(map.len());
                for (name, seq) in map {
                    let symbol = name.parse().map_err(|err: crate::Error| {
                        Reply::error(id.clone(), ErrorCode::InvalidSymbol, err.to_string())
                    })?;
                    let Some(seq) = seq.as_u64() else {
                        return Err(Reply::error(
                            id,
                            ErrorCode::BadRequest,
                            "resume values are sequence numbers (integers >= 0)",
                        ));
                    };
                    resume.push((symbol, seq));
                }
                resume
            }
            Some(_) => {
                return Err(Reply::error(
                    id,
                    ErrorCode::BadRequest,
                    "resume is an object {\"SYMBOL\": last_seq, ...} on a subscribe",
                ));
            }
        };
        let epoch = optional_parsed(
            &fields,
            "epoch",
            &id,
            "epoch is a string of 16 hex digits, as the ack gives it",
        )?;
        let policy = optional_parsed(&fields, "policy", &id, "policy is \"conflate\" or \"disconnect\"")?;
        let channels = parse_channels(fields.get("channels"), op, &id)?;
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
        Ok(Request {
            op,
            symbols,
            channels,
            id,
            resume,
            epoch,
            policy,
        })
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
        let mut value = serde_json::json!({ "op": op, "symbols": symbols, "id": self.id });
        // Left out when it says what no `channels` says, so that the text
        // stays what hubs before channels understood.
        if self.channels != Request::default_channels(self.op) {
            value["channels"] = Value::from(self.channels.names());
        }
        if let Some(policy) = self.policy {
            value["policy"] = serde_json::to_value(policy).unwrap_or(Value::Null);
        }
        if !self.resume.is_empty() {
            let resume: serde_json::Map<String, Value> = self
                .resume
                .iter()
                .map(|(symbol, seq)| (symbol.to_string(), Value::from(*seq)))
                .collect();
            value["resume"] = Value::Object(resume);
        }
        if let Some(epoch) = self.epoch {
            value["epoch"] = Value::String(epoch.to_string());
        }
        value.to_string()
    }
}

impl Request {
    /// The channels a request without `channels` means: quotes and trades
    /// on a subscribe (what every client got before channels existed), every
    /// channel on an unsubscribe (the symbol is dropped whole, as before).
    pub const fn default_channels(op: Op) -> Channels {
        match op {
            Op::Subscribe => Channels::DEFAULT,
            Op::Unsubscribe => Channels::ALL,
        }
    }
}

/// The `channels` field: absent or null means the op's default; otherwise a
/// non-empty array of known channel names (repeats allowed).
fn parse_channels(field: Option<&Value>, op: Op, id: &Option<RequestId>) -> Result<Channels, Reply> {
    let items = match field {
        None | Some(Value::Null) => return Ok(Request::default_channels(op)),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(Reply::error(id.clone(), ErrorCode::BadRequest, "\"channels\" is empty"));
        }
        Some(_) => {
            return Err(Reply::error(
                id.clone(),
                ErrorCode::BadRequest,
                "channels is an array of channel names, e.g. [\"quotes\",\"bars.1m\"]",
            ));
        }
    };
    let mut channels = Channels::NONE;
    for item in items {
        let Some(name) = item.as_str() else {
            return Err(Reply::error(
                id.clone(),
                ErrorCode::BadRequest,
                "every channel must be a string",
            ));
        };
        let Some(channel) = Channels::from_name(name) else {
            let shown: String = name.chars().take(32).collect();
            let known: Vec<String> = Channels::NAMED.iter().map(|(_, name)| format!("{name:?}")).collect();
            return Err(Reply::error(
                id.clone(),
                ErrorCode::UnknownChannel,
                format!("unknown channel {shown:?}; this hub carries {}", known.join(", ")),
            ));
        };
        channels = channels.with(channel);
    }
    Ok(channels)
}

/// An optional string field parsed with `FromStr` (whose error is the
/// reply's message); `wrong_type` is the message for a field that is not a
/// string.
fn optional_parsed<T: std::str::FromStr<Err = String>>(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    id: &Option<RequestId>,
    wrong_type: &str,
) -> Result<Option<T>, Reply> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text
            .parse()
            .map(Some)
            .map_err(|message: String| Reply::error(id.clone(), ErrorCode::BadRequest, message)),
        Some(_) => Err(Reply::error(id.clone(), ErrorCode::BadRequest, wrong_type)),
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
    fn parses_the_slow_consumer_policy() {
        let request = Request::parse(r#"{"op":"subscribe","symbols":["A"],"policy":"disconnect"}"#).unwrap();
        assert_eq!(request.policy, Some(Policy::Disconnect));
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"policy":"drop","id":1}"#),
            (Some(RequestId::Number(1)), ErrorCode::BadRequest)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"policy":3}"#).1,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn parses_resume_points() {
        let text =
            r#"{"op":"subscribe","symbols":["*"],"resume":{"AAPL":41,"BRK.B":7},"epoch":"9f86d081884c7d65","id":2}"#;
        let request = Request::parse(text).unwrap();
        assert_eq!(request.epoch, Epoch::from_u64(0x9f86_d081_884c_7d65));
        for bad in [r#""9f86""#, "12", r#""0000000000000000""#] {
            let text = format!(r#"{{"op":"subscribe","symbols":["A"],"resume":{{"A":1}},"epoch":{bad}}}"#);
            assert_eq!(code_of(&text).1, ErrorCode::BadRequest, "{bad}");
        }
        let mut resume = request.resume.clone();
        resume.sort();
        assert_eq!(
            resume,
            vec![("AAPL".parse().unwrap(), 41), ("BRK.B".parse().unwrap(), 7)]
        );
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
        // TC0: not an object. TC1: bad symbol key. TC2: negative. TC3: on unsubscribe.
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"resume":[1]}"#).1,
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"resume":{"A B":1}}"#).1,
            ErrorCode::InvalidSymbol
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"resume":{"A":-1}}"#).1,
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"op":"unsubscribe","symbols":["A"],"resume":{"A":1}}"#).1,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn parses_channels_with_defaults_that_keep_old_clients_working() {
        // TC0: the issue's example, every channel.
        let text =
            r#"{"op":"subscribe","symbols":["AAPL"],"channels":["quotes","trades","bars.1s","bars.1m","bbo"],"id":1}"#;
        let request = Request::parse(text).unwrap();
        assert_eq!(request.channels, Channels::ALL);
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
        // TC1: no channels: a subscribe means quotes and trades, an unsubscribe everything;
        // to_json writes no channels then, as a client before channels did.
        let subscribe = Request::parse(r#"{"op":"subscribe","symbols":["A"]}"#).unwrap();
        assert_eq!(subscribe.channels, Channels::DEFAULT);
        assert!(!subscribe.to_json().contains("channels"), "{}", subscribe.to_json());
        let unsubscribe = Request::parse(r#"{"op":"unsubscribe","symbols":["A"],"channels":null}"#).unwrap();
        assert_eq!(unsubscribe.channels, Channels::ALL);
        assert!(!unsubscribe.to_json().contains("channels"));
        // TC2: unsubscribe by channel; repeats are one channel.
        let text = r#"{"op":"unsubscribe","symbols":["A"],"channels":["quotes","bbo","quotes"]}"#;
        let request = Request::parse(text).unwrap();
        assert_eq!(request.channels, Channels::QUOTES.with(Channels::BBO));
        assert!(
            request.to_json().contains(r#""channels":["quotes","bbo"]"#),
            "{}",
            request.to_json()
        );
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
        // TC3: a subscribe naming exactly the default writes no channels either.
        let request = Request::parse(r#"{"op":"subscribe","symbols":["A"],"channels":["trades","quotes"]}"#).unwrap();
        assert_eq!(request, subscribe);
        // TC4: trades alone.
        let request = Request::parse(r#"{"op":"subscribe","symbols":["A"],"channels":["trades"]}"#).unwrap();
        assert_eq!(request.channels, Channels::TRADES);
        assert_eq!(Request::parse(&request.to_json()).unwrap(), request);
    }

    #[test]
    fn bad_channels_are_refused_with_a_clear_reply() {
        // TC0: an unknown name keeps the id, says which, and lists the known ones.
        let reply =
            Request::parse(r#"{"op":"subscribe","symbols":["A"],"channels":["quotes","bars.5m"],"id":9}"#).unwrap_err();
        let Reply::Error { id, code, message } = &reply else {
            panic!("{reply:?}")
        };
        assert_eq!((id, code), (&Some(RequestId::Number(9)), &ErrorCode::UnknownChannel));
        assert!(
            message.contains("\"bars.5m\"") && message.contains("\"bbo\""),
            "{message}"
        );
        assert!(
            reply.to_json().contains(r#""code":"unknown_channel""#),
            "{}",
            reply.to_json()
        );
        // TC1: case matters. TC2: empty. TC3: not an array. TC4: not strings.
        assert_eq!(
            code_of(r#"{"op":"unsubscribe","symbols":["A"],"channels":["Quotes"]}"#).1,
            ErrorCode::UnknownChannel
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"channels":[],"id":"e"}"#),
            (Some(RequestId::Text("e".into())), ErrorCode::BadRequest)
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"channels":"quotes"}"#).1,
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"op":"subscribe","symbols":["A"],"channels":[1]}"#).1,
            ErrorCode::BadRequest
        );
        // TC5: a long unknown name is cut in the message (the reply stays small).
        let long = "x".repeat(10_000);
        let text = format!(r#"{{"op":"subscribe","symbols":["A"],"channels":["{long}"]}}"#);
        let Err(Reply::Error { message, .. }) = Request::parse(&text) else {
            panic!("accepted")
        };
        assert!(message.len() < 200, "{} bytes", message.len());
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
            epoch: Epoch::from_u64(0x9f86_d081_884c_7d65).unwrap(),
            unseen: Vec::new(),
        };
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ack","id":1,"op":"subscribe","symbols":["AAPL"],"epoch":"9f86d081884c7d65"}"#
        );
        let ack = Reply::Ack {
            id: None,
            op: Op::Subscribe,
            symbols: vec!["AAPL".into(), "ZZZZ".into()],
            epoch: Epoch::from_u64(1).unwrap(),
            unseen: vec!["ZZZZ".into()],
        };
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ack","id":null,"op":"subscribe","symbols":["AAPL","ZZZZ"],"epoch":"0000000000000001","unseen":["ZZZZ"]}"#
        );
        let error = Reply::error(None, ErrorCode::InvalidSymbol, "bad");
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","id":null,"code":"invalid_symbol","message":"bad"}"#
        );
    }
}
