//! A Rust client for quotehub: connect, subscribe, read quotes and trades,
//! and (optionally) reconnect and resume without losing what the hub still holds.
//!
//! ```no_run
//! # async fn demo() -> quotehub_client::Result<()> {
//! use quotehub_client::{Client, Reconnect, Update};
//!
//! let mut client = Client::connect("ws://127.0.0.1:8080/v1/quotes").await?.with_reconnect(Reconnect::default());
//! client.subscribe(&["AAPL", "MSFT"]).await?;
//! while let Some(update) = client.next_update().await? {
//!     if let Update::Quote { record, .. } = update {
//!         println!("{} {} / {}", record.quote.symbol, record.quote.bid_price, record.quote.ask_price);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The client keeps the last sequence number it saw per symbol. With a
//! [`Reconnect`] policy, a lost connection is re-established with backoff and
//! every subscription is renewed with those numbers as resume points: the hub
//! sends what was missed from its history, or a snapshot flagged `RESET` when
//! its history no longer reaches back (counted in [`Client::resets`]), or
//! when it now numbers in another sequence space (a hub that restarted: the
//! ack's epoch differs, counted in [`Client::epoch_changes`]).
//!
//! `wss://` hubs are verified against the public web roots plus the CA file
//! named by `$QUOTEHUB_CA_FILE` ([`Client::connect`]), or the roots of a
//! [`ClientTls`] given to [`Client::connect_with`]. Verification is never off.

pub mod error;
pub mod replay;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quotehub_connect::Backoff;
use quotehub_proto::{
    BarRecord, BboRecord, Channels, Epoch, Flags, Message as Records, QuoteRecord, Record, StatusRecord, Symbol,
    TradeRecord,
};
use serde::Deserialize;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub use error::{Error, Result};
pub use quotehub_connect::{CA_FILE_ENV, CertificateProblem, ClientTls, ConnectError};
pub use replay::ReplaySession;

/// The binary sub-protocol this client speaks.
pub const PROTOCOL: &str = "quotehub.v1.binary";

/// The environment variable [`Client::connect`] reads an API key from.
pub const API_KEY_ENV: &str = "QUOTEHUB_API_KEY";

/// One record received, with the time the hub wrote its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Update {
    /// A quote (live, or a snapshot: see `record.flags`).
    Quote {
        /// The record.
        record: QuoteRecord,
        /// When the hub wrote the message, ns since the Unix epoch.
        send_ts: u64,
    },
    /// A trade.
    Trade {
        /// The record.
        record: TradeRecord,
        /// When the hub wrote the message, ns since the Unix epoch.
        send_ts: u64,
    },
    /// A change of a feed's or the hub's state.
    Status {
        /// The record.
        record: StatusRecord,
        /// When the hub wrote the message, ns since the Unix epoch.
        send_ts: u64,
    },
    /// A bar (channels `bars.1s`, `bars.1m`; protocol minor 1).
    Bar {
        /// The record.
        record: BarRecord,
        /// When the hub wrote the message, ns since the Unix epoch.
        send_ts: u64,
    },
    /// A consolidated best bid and offer (channel `bbo`; protocol minor 1).
    Bbo {
        /// The record.
        record: BboRecord,
        /// When the hub wrote the message, ns since the Unix epoch.
        send_ts: u64,
    },
    /// The connection was lost and is back; subscriptions were renewed with
    /// resume points, so what follows continues each symbol's sequence.
    Reconnected {
        /// Connection attempts it took.
        attempts: u32,
    },
}

impl Update {
    /// The update a decoded record of a message written at `send_ts`
    /// becomes; `None` for a record type this client does not know (skipped,
    /// as the spec's versioning rules say).
    pub fn from_record(record: Record, send_ts: u64) -> Option<Update> {
        Some(match record {
            Record::Quote(record) => Update::Quote { record, send_ts },
            Record::Trade(record) => Update::Trade { record, send_ts },
            Record::Status(record) => Update::Status { record, send_ts },
            Record::Bar(record) => Update::Bar { record, send_ts },
            Record::Bbo(record) => Update::Bbo { record, send_ts },
            _ => return None,
        })
    }
}

/// How to reconnect after a lost connection: exponential backoff from
/// `initial_backoff` up to `max_backoff`, giving up after `max_attempts`.
/// Each wait is drawn from the upper half of its nominal length (jitter, so
/// that clients of a restarted hub do not all return at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Nominal wait before the second attempt (the first is immediate);
    /// each wait is between half its nominal length and all of it.
    pub initial_backoff: Duration,
    /// Longest nominal wait between attempts.
    pub max_backoff: Duration,
    /// Attempts before the error is returned.
    pub max_attempts: u32,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_attempts: 20,
        }
    }
}

/// A connection to a hub.
#[derive(Debug)]
pub struct Client {
    url: String,
    /// Whom to trust when the URL is `wss://` (kept for reconnecting).
    tls: ClientTls,
    /// The API key presented on every connection, if any.
    api_key: Option<String>,
    ws: Socket,
    /// Records that arrived while waiting for a reply, in arrival order.
    pending: VecDeque<Update>,
    next_id: u64,
    /// What is subscribed (`"*"` included), with the channels of each, to
    /// renew after a reconnect.
    subscribed: BTreeMap<String, Channels>,
    /// The last sequence number seen per symbol: the resume points.
    last_seq: HashMap<Symbol, u64>,
    /// The sequence space `last_seq`'s numbers come from (from the last ack).
    epoch: Option<Epoch>,
    reconnect: Option<Reconnect>,
    /// Records of types this client does not know, skipped as the spec says.
    skipped: u64,
    /// Sequence jumps not explained by a `RESET` (the hub promises none).
    gaps: u64,
    /// Snapshots flagged `RESET`: records lost across a reconnect.
    resets: u64,
    /// Acks that named another sequence space than the one before.
    epoch_changes: u64,
    /// The symbols the last acknowledged request named that no feed has
    /// published yet.
    unseen: Vec<String>,
}

/// A reply as the hub sends it.
#[derive(Debug, Deserialize)]
struct WireReply {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    code: Option<quotehub_proto::ErrorCode>,
    message: Option<String>,
    /// On an ack: the hub's sequence space.
    epoch: Option<String>,
    /// On a subscribe's ack: the symbols no feed has published yet.
    #[serde(default)]
    unseen: Vec<String>,
}

type Socket = WebSocketStream<quotehub_connect::Stream>;

async fn open(url: &str, tls: &ClientTls, api_key: Option<&str>) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
    if let Some(key) = api_key {
        // In a header, not the URL, so that it stays out of logs.
        let value = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| Error::Protocol("the API key holds characters a header cannot carry".into()))?;
        headers.insert("Authorization", value);
    }
    let config = WebSocketConfig::default().read_buffer_size(64 * 1024);
    let (ws, _response) = quotehub_connect::connect_websocket(request, Some(config), tls).await?;
    Ok(ws)
}

impl Client {
    /// Connects to a hub, e.g. `ws://127.0.0.1:8080/v1/quotes`, or
    /// `wss://hub.example/v1/quotes` trusting the public web roots and the
    /// CA file named by `$QUOTEHUB_CA_FILE` when it is set; presents the API
    /// key in `$QUOTEHUB_API_KEY` when it is set.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_key(url, Self::tls_from_env(url)?, std::env::var(API_KEY_ENV).ok()).await
    }

    /// What [`Client::connect`] trusts for `url`: for `wss://`, the public
    /// web roots and `$QUOTEHUB_CA_FILE`; a plain `ws://` connection never
    /// reads the CA file.
    pub fn tls_from_env(url: &str) -> Result<ClientTls> {
        let secure = url.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss://"));
        Ok(if secure {
            ClientTls::from_env()?
        } else {
            ClientTls::web_roots()?
        })
    }

    /// Connects to a hub, trusting `tls`'s roots for `wss://`, with no API key.
    pub async fn connect_with(url: &str, tls: ClientTls) -> Result<Self> {
        Self::connect_with_key(url, tls, None).await
    }

    /// Connects to a hub, trusting `tls`'s roots for `wss://` and presenting
    /// `api_key` (as `Authorization: Bearer`) on this and every reconnection.
    pub async fn connect_with_key(url: &str, tls: ClientTls, api_key: Option<String>) -> Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            ws: open(url, &tls, api_key.as_deref()).await?,
            tls,
            api_key,
            pending: VecDeque::new(),
            next_id: 0,
            subscribed: BTreeMap::new(),
            last_seq: HashMap::new(),
            epoch: None,
            reconnect: None,
            skipped: 0,
            gaps: 0,
            resets: 0,
            epoch_changes: 0,
            unseen: Vec::new(),
        })
    }

    /// Reconnects by itself when the connection is lost, resuming every
    /// subscription where it left off.
    #[must_use]
    pub fn with_reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Subscribes to symbols (`"*"` for all) with the default channels,
    /// quotes and trades, and waits for the hub's ack. Snapshots of the new
    /// symbols are the next updates after it.
    pub async fn subscribe(&mut self, symbols: &[&str]) -> Result<()> {
        self.subscribe_to(symbols, Channels::DEFAULT).await
    }

    /// Adds `channels` to each of `symbols` (`"*"` for all) and waits for
    /// the hub's ack. Each channel new to a symbol starts with its snapshot
    /// (`quotes`: the last quote) among the next updates. The channels are
    /// named in the request only when they are not the default, so that a
    /// hub older than channels still understands it.
    pub async fn subscribe_to(&mut self, symbols: &[&str], channels: Channels) -> Result<()> {
        self.request("subscribe", symbols, channels, None).await?;
        for symbol in symbols {
            let held = self.subscribed.entry((*symbol).to_owned()).or_default();
            *held = held.with(channels);
        }
        Ok(())
    }

    /// Unsubscribes (every channel) and waits for the ack.
    pub async fn unsubscribe(&mut self, symbols: &[&str]) -> Result<()> {
        self.unsubscribe_from(symbols, Channels::ALL).await
    }

    /// Removes `channels` from each of `symbols` and waits for the ack; a
    /// symbol left with none is no longer subscribed.
    pub async fn unsubscribe_from(&mut self, symbols: &[&str], channels: Channels) -> Result<()> {
        self.request("unsubscribe", symbols, channels, None).await?;
        for symbol in symbols {
            let Some(held) = self.subscribed.get_mut(*symbol) else {
                continue;
            };
            *held = held.without(channels);
            if held.is_empty() {
                self.subscribed.remove(*symbol);
                if let Ok(symbol) = symbol.parse() {
                    self.last_seq.remove(&symbol);
                }
            }
        }
        Ok(())
    }

    /// The channels this client holds `symbol` with (by name or through
    /// `"*"`), as its requests asked.
    pub fn channels_of(&self, symbol: &str) -> Channels {
        let named = self.subscribed.get(symbol).copied().unwrap_or_default();
        named.with(self.subscribed.get("*").copied().unwrap_or_default())
    }

    /// Sends a raw text message (for tools and tests that speak JSON directly).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::Text(Utf8Bytes::from(text))).await?;
        Ok(())
    }

    /// Connects again and renews every subscription with resume points.
    pub async fn reconnect(&mut self) -> Result<()> {
        self.ws = open(&self.url, &self.tls, self.api_key.as_deref()).await?;
        if self.subscribed.is_empty() {
            return Ok(());
        }
        // One request per distinct set of channels, each resuming its
        // symbols where they left off.
        let mut by_channels: BTreeMap<u8, Vec<String>> = BTreeMap::new();
        for (symbol, channels) in &self.subscribed {
            by_channels.entry(channels.bits()).or_default().push(symbol.clone());
        }
        for (channels, symbols) in by_channels {
            let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
            let resume: serde_json::Map<String, serde_json::Value> = self
                .last_seq
                .iter()
                .filter(|(symbol, _)| symbols.contains(&"*") || symbols.contains(&symbol.as_str()))
                .map(|(symbol, seq)| (symbol.to_string(), (*seq).into()))
                .collect();
            self.request("subscribe", &symbols, Channels::from_bits(channels), Some(resume))
                .await?;
        }
        Ok(())
    }

    async fn request(
        &mut self,
        op: &str,
        symbols: &[&str],
        channels: Channels,
        resume: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<()> {
        let mut request = serde_json::json!({ "op": op, "symbols": symbols });
        let default = match op {
            "subscribe" => Channels::DEFAULT,
            _ => Channels::ALL,
        };
        if channels != default {
            request["channels"] = channels.names().into();
        }
        if let Some(resume) = resume {
            request["resume"] = serde_json::Value::Object(resume);
            // Whose numbers they are: a hub that numbers in another space
            // (it restarted) answers with RESET snapshots.
            if let Some(epoch) = self.epoch {
                request["epoch"] = epoch.to_string().into();
            }
        }
        self.request_value(request).await
    }

    /// Sends `request` (a JSON object) with the next id and waits for its reply.
    async fn request_value(&mut self, mut request: serde_json::Value) -> Result<()> {
        self.next_id += 1;
        let id = self.next_id;
        request["id"] = id.into();
        self.send_text(&request.to_string()).await?;
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: WireReply = serde_json::from_str(text.as_str())
                        .map_err(|err| Error::Protocol(format!("unreadable reply {text:?}: {err}")))?;
                    if reply.id != Some(id) {
                        continue;
                    }
                    return match reply.kind.as_str() {
                        "ack" => {
                            self.enter_space(reply.epoch.as_deref());
                            self.unseen = reply.unseen;
                            Ok(())
                        }
                        _ => Err(Error::Refused {
                            code: reply.code.unwrap_or(quotehub_proto::ErrorCode::Other),
                            message: reply.message.unwrap_or_default(),
                        }),
                    };
                }
                Some(Ok(Message::Binary(bytes))) => self.buffer_records(&bytes)?,
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Err(Error::Closed { reason: None }),
            }
        }
    }

    /// The next update, or `None` once the hub has closed normally. With a
    /// reconnect policy, a lost connection is re-established here and
    /// [`Update::Reconnected`] is returned before the resumed records.
    pub async fn next_update(&mut self) -> Result<Option<Update>> {
        loop {
            if let Some(update) = self.pending.pop_front() {
                return Ok(Some(update));
            }
            let lost = match self.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    self.buffer_records(&bytes)?;
                    continue;
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(f) if f.code != CloseCode::Normal => closed(Some(f)),
                    _ => return Ok(None),
                },
                Some(Ok(_)) => continue,
                Some(Err(err)) => err.into(),
                None => Error::Closed { reason: None },
            };
            let Some(policy) = self.reconnect else { return Err(lost) };
            let attempts = self.reconnect_with(policy, lost).await?;
            return Ok(Some(Update::Reconnected { attempts }));
        }
    }

    async fn reconnect_with(&mut self, policy: Reconnect, mut last_error: Error) -> Result<u32> {
        // The live sources' reconnect delays, with the policy's bounds.
        let mut backoff = Backoff::new(policy.initial_backoff, policy.max_backoff);
        for attempt in 1..=policy.max_attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            match self.reconnect().await {
                Ok(()) => return Ok(attempt),
                // Waiting will not change these answers.
                Err(err @ (Error::Refused { .. } | Error::Http { status: 401 | 403, .. })) => return Err(err),
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }

    /// How many records of unknown types were skipped.
    pub fn skipped_records(&self) -> u64 {
        self.skipped
    }

    /// Sequence jumps seen that no `RESET` explained (the hub promises none).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Resume snapshots flagged `RESET`: times records were lost.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// The last sequence number seen for a symbol.
    pub fn last_seq(&self, symbol: &Symbol) -> Option<u64> {
        self.last_seq.get(symbol).copied()
    }

    /// Opens a replay session of `feed` (a name the hub offers, see
    /// `GET /v1/replay/feeds`) on the hub at `hub_url` (any URL of the hub:
    /// `ws://127.0.0.1:8080` or its `/v1/quotes`). The hub paces it for this
    /// client alone and sends every record (it waits for a slow reader);
    /// [`Client::next_update`] returns `None` after the `replay_ended` status.
    /// Do not add a reconnect policy: a new connection is a new replay.
    pub async fn replay(hub_url: &str, feed: &str, session: &ReplaySession) -> Result<Self> {
        Self::connect(&session.url(hub_url, feed)?).await
    }

    /// Pauses this replay session (waits for the hub's ack).
    pub async fn pause_replay(&mut self) -> Result<()> {
        self.request_value(serde_json::json!({ "op": "pause" })).await
    }

    /// Resumes this replay session.
    pub async fn resume_replay(&mut self) -> Result<()> {
        self.request_value(serde_json::json!({ "op": "resume" })).await
    }

    /// Changes this replay session's pace: a factor (`"10"`) or `"max"`.
    pub async fn set_replay_speed(&mut self, speed: &str) -> Result<()> {
        self.request_value(serde_json::json!({ "op": "speed", "x": speed }))
            .await
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }

    fn buffer_records(&mut self, bytes: &[u8]) -> Result<()> {
        let message = Records::decode(bytes).map_err(|err| Error::Protocol(err.to_string()))?;
        let send_ts = message.header.send_ts;
        for record in message {
            let record = record.map_err(|err| Error::Protocol(err.to_string()))?;
            // Resume points follow the symbol's shared sequence of quotes and
            // trades; bars and BBO records number in sequences of their own.
            match &record {
                Record::Quote(r) => self.track(r.quote.symbol, r.quote.seq, r.flags, Some(r.conflated)),
                Record::Trade(r) => self.track(r.trade.symbol, r.trade.seq, r.flags, Some(r.conflated)),
                _ => {}
            }
            match Update::from_record(record, send_ts) {
                Some(update) => self.pending.push_back(update),
                None => self.skipped += 1,
            }
        }
        Ok(())
    }

    /// Notes the hub's sequence space from an ack. Numbers from another
    /// space are no resume points: they are forgotten, so that the new
    /// space's numbers (which may be lower) are not taken for gaps. The hub
    /// has flagged the snapshots of the resumed symbols `RESET`.
    fn enter_space(&mut self, epoch: Option<&str>) {
        let Some(epoch) = epoch.and_then(|text| text.parse::<Epoch>().ok()) else {
            return;
        };
        if self.epoch.is_some_and(|known| known != epoch) {
            self.last_seq.clear();
            self.epoch_changes += 1;
        }
        self.epoch = Some(epoch);
    }

    /// Times the hub's sequence space changed under this client (a hub
    /// restart seen across a reconnect).
    pub fn epoch_changes(&self) -> u64 {
        self.epoch_changes
    }

    /// The symbols of the last acknowledged subscribe that no feed has
    /// published yet: they get no snapshot, and nothing until a feed sends
    /// them (a typo or a lowercase name never will).
    pub fn unseen(&self) -> &[String] {
        &self.unseen
    }

    /// The hub's sequence space, once a request was acknowledged.
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// Follows a symbol's sequence: live records continue it by one, a
    /// conflated one by one plus the updates it stands for; snapshots set it
    /// (a reset one also says records were lost). `conflated` is `None` where
    /// the record type carries no count this build reads.
    fn track(&mut self, symbol: Symbol, seq: u64, flags: Flags, conflated: Option<u32>) {
        let expected = |last: u64| match (flags.contains(Flags::CONFLATED), conflated) {
            (false, _) => Some(last + 1),
            (true, Some(count)) => Some(last + 1 + u64::from(count)),
            (true, None) => None,
        };
        // Quotes and trades share the sequence: holding only one of them,
        // the other's numbers are left out, so only a step back is a fault.
        // (A symbol subscribed by raw text is taken to hold both.)
        let held = self.channels_of(symbol.as_str());
        let whole = held.is_empty() || held.contains(Channels::DEFAULT);
        if flags.contains(Flags::RESET) {
            self.resets += 1;
        } else if !flags.contains(Flags::SNAPSHOT)
            && let Some(&last) = self.last_seq.get(&symbol)
            && expected(last).is_some_and(|want| if whole { want != seq } else { seq < want })
        {
            self.gaps += 1;
        }
        self.last_seq.insert(symbol, seq);
    }
}

fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Error {
    Error::Closed {
        reason: frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `### V<n> ...` hex vectors of SPEC.md, by name.
    fn spec_vector(name: &str) -> Vec<u8> {
        let spec = include_str!("../../quotehub-proto/SPEC.md");
        let after = spec.split(&format!("\n### {name} ")).nth(1).unwrap();
        let block = after.split("```hex\n").nth(1).unwrap().split("```").next().unwrap();
        block
            .split_whitespace()
            .map(|pair| u8::from_str_radix(pair, 16).unwrap())
            .collect()
    }

    fn updates(name: &str) -> Vec<Option<Update>> {
        let bytes = spec_vector(name);
        let message = Records::decode(&bytes).unwrap();
        let send_ts = message.header.send_ts;
        message
            .map(|record| Update::from_record(record.unwrap(), send_ts))
            .collect()
    }

    #[test]
    fn spec_vectors_become_updates() {
        const SEND_TS: u64 = 1_499_697_123_000_000_000;
        // TC0: V2's quote and trade. TC1: V3's unknown record is skipped.
        assert!(matches!(
            updates("V2").as_slice(),
            [
                Some(Update::Quote { send_ts: SEND_TS, .. }),
                Some(Update::Trade { send_ts: SEND_TS, .. })
            ]
        ));
        assert!(matches!(updates("V3").as_slice(), [None, Some(Update::Quote { .. })]));
        // TC2: V5's bars, with their exact prices and the rounded VWAP.
        let [
            Some(Update::Bar {
                record: second,
                send_ts,
            }),
            Some(Update::Bar { record: minute, .. }),
        ] = updates("V5").as_slice().to_owned()[..]
        else {
            panic!("{:?}", updates("V5"))
        };
        assert_eq!(send_ts, SEND_TS);
        assert_eq!(
            (second.bar.symbol.as_str(), second.bar.interval, second.bar.start_ts),
            ("AAPL", quotehub_proto::BarInterval::SECOND, 1_499_697_122_000_000_000)
        );
        let prices = [
            second.bar.open,
            second.bar.high,
            second.bar.low,
            second.bar.close,
            second.bar.vwap,
        ];
        assert_eq!(
            prices.map(|p| p.to_string()),
            ["148.90", "148.95", "148.88", "148.91", "148.920980966"]
        );
        assert_eq!((second.bar.volume, second.bar.trade_count, second.bar.seq), (683, 4, 1));
        assert_eq!((minute.bar.interval.seconds(), minute.bar.seq), (60, 12));
        assert_eq!(minute.flags, Flags::SNAPSHOT.with(Flags::REPLAYED));
        // TC3: V6's BBOs: venues, counts, a size past u32, an empty side.
        let [
            Some(Update::Bbo { record: both, .. }),
            Some(Update::Bbo { record: one_sided, .. }),
        ] = updates("V6").as_slice().to_owned()[..]
        else {
            panic!("{:?}", updates("V6"))
        };
        let (bid, ask) = (both.bbo.bid, both.bbo.ask);
        assert_eq!(
            (bid.price.to_string(), bid.size, bid.feed, bid.feeds),
            ("18.73".to_owned(), 1_293, 1, 2)
        );
        assert_eq!(
            (ask.price.to_string(), ask.size, ask.feed, ask.feeds),
            ("18.75".to_owned(), 297, 2, 1)
        );
        assert_eq!((one_sided.bbo.symbol.as_str(), one_sided.bbo.bid.feeds), ("ZVZZT", 0));
        assert_eq!(
            (one_sided.bbo.ask.size, one_sided.flags),
            (4_294_967_296, Flags::SNAPSHOT)
        );
    }
}
