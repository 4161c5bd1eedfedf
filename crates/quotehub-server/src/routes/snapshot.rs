//! `GET /v1/snapshot?symbols=AAPL,MSFT&channels=quotes,trades`: the last
//! values of the named symbols as one JSON document, for clients that want
//! the current state without holding a stream; and, with `feed=NAME&at=T`,
//! the same as of event time `T` in a replay feed (`snapshot_index`).
//!
//! Each record is in SPEC.md's JSON form, as a subscribe's snapshot has it:
//! the last quote flagged `snapshot` and stamped with the symbol's number;
//! the last trade (which a subscribe does not send) flagged `snapshot` with
//! its own number. The work is proportional to the symbols named (at most
//! `max_symbols_per_client`): a lookup each, live, or two binary searches
//! each, as of a time, plus, for bars, the trades of one interval of each
//! (`as_of_bars`). A request is checked whole before any of that; a bad
//! one gets a 400 with an error reply in the WebSocket's form.

use std::collections::{BTreeSet, HashSet};

use quotehub_feed::parse_event_time;
use quotehub_proto::bar::{BAR_LEN, Bar, BarInterval, BarRecord};
use quotehub_proto::json::record_to_json;
use quotehub_proto::{Channels, ErrorCode, Flags, Record, Reply, Symbol};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWrite;

use crate::http::{Head, respond_json};
use crate::paths::SNAPSHOT_PATH;
use crate::replay_feeds::valid_feed_name;
use crate::state::ServerState;
use quotehub_engine::hub::Hub;

/// What a symbol with no record yet says, as the acks' `unseen` and the
/// clients word it.
const NO_DATA: &str = "no data yet from any feed";

/// Longest piece of a client's text echoed in an error message.
const ECHO_CHARS: usize = 64;

/// What the URL asks for, checked.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    symbols: BTreeSet<Symbol>,
    channels: Channels,
    /// `None`: live; else (feed name, event time in ns).
    as_of: Option<(String, u64)>,
}

/// A refusal: status, error code (SPEC.md's, or one of this endpoint's own)
/// and message.
type Refused = (u16, &'static str, String);

/// Serves one snapshot request.
pub(crate) async fn serve<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &Head,
    entitled: Option<&HashSet<Symbol>>,
    hub: &Hub,
    state: &ServerState,
) {
    let answer = match answer(head, entitled, hub, state).await {
        Ok(body) => (200, body),
        Err((status, code, message)) => (status, error(code, message)),
    };
    let _ = respond_json(stream, answer.0, &answer.1).await;
}

/// The answer's body, or why not.
async fn answer(
    head: &Head,
    entitled: Option<&HashSet<Symbol>>,
    hub: &Hub,
    state: &ServerState,
) -> Result<Value, Refused> {
    if head.method != "GET" {
        return Err((405, "bad_request", "a snapshot takes GET".to_owned()));
    }
    let config = &state.config;
    let asked = parse(head, config.max_symbols_per_client)?;
    if let Some(entitled) = entitled
        && let Some(symbol) = asked.symbols.iter().find(|symbol| !entitled.contains(*symbol))
    {
        return Err((403, "not_entitled", format!("this API key is not entitled to {symbol}")));
    }
    let mut body = Map::new();
    let mut symbols = Map::new();
    // The channels this answer has values for: all of them live.
    let mut built = Channels::ALL;
    match &asked.as_of {
        None => {
            let table = hub.table();
            for &symbol in &asked.symbols {
                let values = table.last_values(symbol);
                let seq = values.as_ref().map_or(0, |v| v.seq);
                let entry = entry(asked.channels, seq, |channel| {
                    values
                        .as_ref()
                        .and_then(|v| v.record(channel))
                        .map(|record| &record[..])
                });
                symbols.insert(symbol.to_string(), entry);
            }
            body.insert("epoch".into(), json!(table.epoch()));
        }
        Some((name, at)) => {
            let path = config
                .replay_feeds
                .path(name)
                .ok_or_else(|| {
                    let offered = config.replay_feeds.names().join(", ");
                    (
                        404,
                        "unknown_feed",
                        format!("no replay feed named {name:?}; offered: {offered}"),
                    )
                })?
                .to_path_buf();
            let index = state
                .snapshot_indexes
                .get(
                    name,
                    path,
                    config.snapshot_index_max_bytes,
                    state.replay_sessions.readers(),
                )
                .await
                .map_err(|err| {
                    use crate::snapshot_index::IndexError;
                    let (status, code) = match err {
                        IndexError::TooLarge { .. } => (422, "feed_too_large"),
                        IndexError::Unordered { .. } => (422, "feed_unordered"),
                        IndexError::Feed(_) | IndexError::Failed => (500, "feed_unavailable"),
                    };
                    (status, code, format!("replay feed {name:?}: {err}"))
                })?;
            built = Channels::QUOTES.with(Channels::TRADES);
            if index.has_bars() {
                built = built.with(Channels::BARS_1S).with(Channels::BARS_1M);
            }
            for &symbol in &asked.symbols {
                let values = index.at(symbol, *at);
                let (seq, quote, trade) = values.map_or((0, None, None), |v| (v.seq, v.quote, v.trade));
                let bar = |interval: BarInterval| {
                    let wanted = asked.channels.contains(interval.channel()) && built.contains(interval.channel());
                    wanted
                        .then(|| index.bar_at(symbol, interval, *at))
                        .flatten()
                        .map(as_of_bar_record)
                };
                let (second, minute) = (bar(BarInterval::SECOND), bar(BarInterval::MINUTE));
                // No BBO as of a time (see `not_built` below).
                let entry = entry(asked.channels, seq, |channel| {
                    if channel == Channels::QUOTES {
                        quote.as_deref()
                    } else if channel == Channels::TRADES {
                        trade.as_deref()
                    } else if channel == Channels::BARS_1S {
                        second.as_ref().map(|record| &record[..])
                    } else if channel == Channels::BARS_1M {
                        minute.as_ref().map(|record| &record[..])
                    } else {
                        None
                    }
                });
                symbols.insert(symbol.to_string(), entry);
            }
            body.insert("feed".into(), json!(name));
            body.insert("at".into(), json!(at));
        }
    }
    body.insert("channels".into(), json!(asked.channels.names()));
    // As of a time, `bbo` is not built: a recording is one feed, and the
    // live `bbo` is consolidated across the hub's feeds, with venues that are
    // the hub's feed numbers, so one file cannot say what a subscriber held.
    // Bars are not built for a feed whose event time goes back across
    // symbols (see `as_of_bars`). Say so rather than answer null silently.
    let not_built = asked.channels.without(built);
    if !not_built.is_empty() {
        body.insert("not_built".into(), json!(not_built.names()));
    }
    body.insert("symbols".into(), Value::Object(symbols));
    Ok(Value::Object(body))
}

/// A bar as of a time as its SPEC record: flagged `replayed` (it is a
/// replay's) and `snapshot`, as the quotes and trades of the answer are.
fn as_of_bar_record(bar: Bar) -> [u8; BAR_LEN] {
    BarRecord {
        bar,
        flags: Flags::REPLAYED.with(Flags::SNAPSHOT),
        conflated: 0,
    }
    .encode()
}

/// Reads and checks the URL: every part before any lookup.
fn parse(head: &Head, max_symbols: usize) -> Result<Asked, Refused> {
    let bad = |message: String| (400, "bad_request", message);
    let raw = head
        .query_value("symbols")
        .ok_or_else(|| bad(format!("name the symbols: {SNAPSHOT_PATH}?symbols=AAPL,MSFT")))?;
    // At most one name past the cap is looked at.
    let names: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .take(max_symbols.saturating_add(1))
        .collect();
    if names.is_empty() {
        return Err(bad(format!("name the symbols: {SNAPSHOT_PATH}?symbols=AAPL,MSFT")));
    }
    if names.len() > max_symbols {
        return Err(bad(format!("at most {max_symbols} symbols per snapshot")));
    }
    let mut symbols = BTreeSet::new();
    for name in names {
        if name == "*" {
            return Err(bad(
                "a snapshot names its symbols; \"*\" is for streams (/v1/quotes, /v1/sse)".to_owned(),
            ));
        }
        let symbol = name
            .parse::<Symbol>()
            .map_err(|err| (400, "invalid_symbol", cut(&err.to_string())))?;
        symbols.insert(symbol);
    }
    let channels = match head.query_value("channels") {
        None => Channels::DEFAULT,
        Some(raw) => channels(&raw)?,
    };
    let as_of = match (head.query_value("feed"), head.query_value("at")) {
        (None, None) => None,
        (Some(name), Some(at)) => {
            if !valid_feed_name(&name) {
                return Err(bad(format!(
                    "feed {:?} is not a feed name (feeds are named as {} lists them)",
                    cut(&name),
                    crate::paths::REPLAY_FEEDS_PATH
                )));
            }
            let at = parse_event_time(&at).map_err(|err| bad(format!("at: {}", cut(&err))))?;
            Some((name, at))
        }
        _ => {
            return Err(bad(
                "a snapshot as of a time names both feed and at: feed=NAME&at=TIME (RFC 3339 or ns)".to_owned(),
            ));
        }
    };
    Ok(Asked {
        symbols,
        channels,
        as_of,
    })
}

/// `quotes,trades,...` into a set; an unknown name is refused as a
/// subscribe's `channels` is.
fn channels(raw: &str) -> Result<Channels, Refused> {
    let mut channels = Channels::NONE;
    for name in raw.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let Some(channel) = Channels::from_name(name) else {
            let shown: String = name.chars().take(32).collect();
            let known: Vec<String> = Channels::NAMED.iter().map(|(_, name)| format!("{name:?}")).collect();
            return Err((
                400,
                "unknown_channel",
                format!("unknown channel {shown:?}; this hub carries {}", known.join(", ")),
            ));
        };
        channels = channels.with(channel);
    }
    if channels.is_empty() {
        return Err((
            400,
            "bad_request",
            "channels names at least one channel, e.g. channels=quotes,trades".to_owned(),
        ));
    }
    Ok(channels)
}

/// One symbol's part of the answer: its number and each asked channel's
/// record (`null` when there is none).
fn entry<'a>(channels: Channels, seq: u64, record_of: impl Fn(Channels) -> Option<&'a [u8]>) -> Value {
    let mut entry = Map::new();
    entry.insert("seq".into(), json!(seq));
    for (channel, name) in Channels::NAMED {
        if !channels.contains(channel) {
            continue;
        }
        let value = record_of(channel)
            .and_then(|bytes| Record::decode(bytes).ok())
            .map_or(Value::Null, |(record, _)| record_to_json(&record));
        entry.insert(name.into(), value);
    }
    if seq == 0 {
        entry.insert("note".into(), json!(NO_DATA));
    }
    Value::Object(entry)
}

/// An error reply in the WebSocket's form (`id` null: a URL has none).
fn error(code: &'static str, message: String) -> Value {
    let known = match code {
        "bad_request" => Some(ErrorCode::BadRequest),
        "invalid_symbol" => Some(ErrorCode::InvalidSymbol),
        "unknown_channel" => Some(ErrorCode::UnknownChannel),
        "not_entitled" => Some(ErrorCode::NotEntitled),
        _ => None,
    };
    match known {
        Some(code) => serde_json::from_str(&Reply::error(None, code, message).to_json()).unwrap_or(Value::Null),
        None => json!({"type": "error", "id": null, "code": code, "message": message}),
    }
}

/// A client's text cut to [`ECHO_CHARS`] characters for a message.
fn cut(text: &str) -> String {
    let mut shown: String = text.chars().take(ECHO_CHARS).collect();
    if text.chars().nth(ECHO_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(query: &str) -> Head {
        Head {
            method: "GET".into(),
            path: SNAPSHOT_PATH.into(),
            query: Some(query.into()),
            headers: Vec::new(),
            rest: Vec::new(),
        }
    }

    #[test]
    fn every_part_of_the_url_is_checked_before_any_lookup() {
        let asked = parse(&head("symbols=MSFT,%20AAPL,,MSFT"), 3).unwrap();
        assert_eq!(asked.symbols.len(), 2, "blanks and repeats are one name");
        assert_eq!((asked.channels, asked.as_of), (Channels::DEFAULT, None));
        let asked = parse(
            &head("symbols=AAPL&channels=trades&feed=bundled&at=1795185000000000000"),
            3,
        )
        .unwrap();
        assert_eq!(asked.channels, Channels::TRADES);
        assert_eq!(asked.as_of, Some(("bundled".to_owned(), 1_795_185_000_000_000_000)));
        // TC0..: (query, status, code).
        let cases = [
            ("", 400, "bad_request"),
            ("symbols=", 400, "bad_request"),
            ("symbols=A,B,C,D", 400, "bad_request"),
            ("symbols=*", 400, "bad_request"),
            ("symbols=A%20B", 400, "invalid_symbol"),
            ("symbols=AAPL&channels=candles", 400, "unknown_channel"),
            ("symbols=AAPL&channels=,", 400, "bad_request"),
            ("symbols=AAPL&feed=bundled", 400, "bad_request"),
            ("symbols=AAPL&at=5", 400, "bad_request"),
            ("symbols=AAPL&feed=../etc&at=5", 400, "bad_request"),
            ("symbols=AAPL&feed=bundled&at=yesterday", 400, "bad_request"),
        ];
        for (label, (query, status, code)) in cases.into_iter().enumerate() {
            let refused = parse(&head(query), 3).unwrap_err();
            assert_eq!((refused.0, refused.1), (status, code), "TC{label}: {query}");
        }
    }

    #[test]
    fn echoed_text_is_cut_and_errors_keep_the_websocket_form() {
        let long = "x".repeat(10_000);
        let refused = parse(&head(&format!("symbols=AAPL&feed=a&at={long}")), 3).unwrap_err();
        assert!(refused.2.len() < 200, "{}", refused.2);
        let reply = error("unknown_channel", "m".into());
        assert_eq!(
            reply,
            json!({"type": "error", "id": null, "code": "unknown_channel", "message": "m"})
        );
        assert_eq!(error("feed_too_large", "m".into())["code"], "feed_too_large");
    }
}
