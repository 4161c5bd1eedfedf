//! `quotehub://HOST:PORT` (or `quotehub+tls://HOST:PORT` for a hub serving
//! `wss://`): another quotehub as a live source. The relay
//! connects to the upstream hub's `/v1/quotes` with the binary sub-protocol,
//! subscribes to `"*"`, and republishes every quote and trade record it
//! receives as is, through [`Publisher::publish_relayed`], which copies the
//! record's bytes and patches only this hub's sequence number, receive time
//! and flags. Decoding every field and encoding it again would cost time on
//! the hot path and could only ever lose something; the layout is fixed
//! (`quotehub_proto::record`), so the fields this hub owns are at known offsets.
//!
//! It lives in the server crate because it publishes encoded records into
//! the table, which the feed crate may not depend on; the reconnecting,
//! backoff and counters are the feed crate's, shared with every live source.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quotehub_connect::ClientTls;
use quotehub_feed::live::websocket::{self, Heartbeat};
use quotehub_feed::live::{CONNECT_TIMEOUT, Link, LiveError, Upstream};
use quotehub_proto::record::{QUOTE_LEN, STATUS_LEN, TRADE_LEN, rtype};
use quotehub_proto::{StatusRecord, Symbol, now_ns};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info};

use crate::paths::QUOTES_PATH;
use crate::upgrade::BINARY_PROTOCOL;
use quotehub_engine::fanout::Publisher;

/// The subscription the relay sends: every symbol.
const SUBSCRIBE_ALL: &str = r#"{"op":"subscribe","symbols":["*"],"id":1}"#;

/// Largest message (and frame) accepted from the upstream hub. A hub batches
/// at most `max_message_bytes` of records (64 KiB by default) plus one record
/// and the 16-byte message header, and its replies are small JSON; 1 MiB is
/// 16 times that, room for an upstream configured with bigger batches, while
/// an upstream that is not a quotehub (or is hostile) can make this hub buffer
/// 1 MiB, not tungstenite's default 64 MiB. A bigger message ends the
/// connection as a protocol error, and the relay reconnects with backoff.
pub const MAX_UPSTREAM_MESSAGE_BYTES: usize = 1 << 20;

/// Relays another quotehub's records.
#[derive(Debug)]
pub struct QuotehubRelay {
    url: String,
    name: String,
    tls: ClientTls,
    idle_timeout: Duration,
    message_number: u64,
    /// The API key the upstream hub requires, if it has keys.
    key: Option<String>,
}

impl QuotehubRelay {
    /// A relay from the hub at `addr` (`HOST:PORT`), over TLS when `secure`
    /// (its certificate checked against `tls`); a connection silent for
    /// `idle_timeout` (no records, no pongs) is lost.
    pub fn new(addr: &str, secure: bool, tls: ClientTls, idle_timeout: Duration) -> Self {
        let (ws, scheme) = if secure {
            ("wss", "quotehub+tls")
        } else {
            ("ws", "quotehub")
        };
        Self {
            url: format!("{ws}://{addr}{QUOTES_PATH}"),
            name: format!("{scheme}://{addr}"),
            tls,
            idle_timeout,
            message_number: 0,
            key: None,
        }
    }

    /// Presents `key` (in the `Authorization` header) to an upstream hub
    /// that has API keys.
    #[must_use]
    pub fn with_key(mut self, key: Option<String>) -> Self {
        self.key = key;
        self
    }

    /// Republishes the quote and trade records of one binary message.
    fn relay(&mut self, message: &[u8], recv_ts: u64, link: &mut Link<'_, Publisher>) {
        let number = self.message_number;
        let records = match RawRecords::new(message) {
            Ok(records) => records,
            Err(error) => return link.reject(format_args!("message {number}"), error),
        };
        for (index, record) in records.enumerate() {
            let at = format_args!("message {number} record {}", index + 1);
            let (kind, bytes) = match record {
                Ok(record) => record,
                Err(error) => return link.reject(at, error),
            };
            let is_quote = match kind {
                rtype::QUOTE if bytes.len() >= QUOTE_LEN => true,
                rtype::TRADE if bytes.len() >= TRADE_LEN => false,
                rtype::QUOTE | rtype::TRADE => {
                    link.reject(at, "record shorter than its type's layout");
                    continue;
                }
                rtype::STATUS if bytes.len() >= STATUS_LEN => {
                    if let Ok(status) = <&[u8; STATUS_LEN]>::try_from(&bytes[..STATUS_LEN]) {
                        let status = StatusRecord::decode(status);
                        info!(
                            source = link.source(),
                            code = status.code.name(),
                            feed = status.feed,
                            "upstream hub status"
                        );
                    }
                    continue;
                }
                // Newer record types: skipped, as the spec tells readers to.
                other => {
                    debug!(
                        source = link.source(),
                        rtype = other,
                        "skipped a record of a type this hub does not relay"
                    );
                    continue;
                }
            };
            let mut wire = [0u8; Symbol::MAX_LEN];
            wire.copy_from_slice(&bytes[8..8 + Symbol::MAX_LEN]);
            match Symbol::from_wire(&wire) {
                Ok(symbol) => {
                    link.sink().publish_relayed(symbol, is_quote, bytes, recv_ts);
                    link.delivered();
                }
                Err(error) => link.reject(at, error),
            }
        }
    }
}

impl Upstream<Publisher> for QuotehubRelay {
    fn name(&self) -> &str {
        &self.name
    }

    async fn session(&mut self, link: &mut Link<'_, Publisher>) -> Result<(), LiveError> {
        self.message_number = 0;
        let mut request = self.url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(BINARY_PROTOCOL));
        if let Some(key) = &self.key {
            let value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| LiveError::Protocol("the upstream key holds characters a header cannot carry".into()))?;
            request.headers_mut().insert("Authorization", value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(64 * 1024)
            .max_message_size(Some(MAX_UPSTREAM_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_UPSTREAM_MESSAGE_BYTES));
        let connecting = async {
            let mut ws = websocket::open(request, config, &self.tls, self.idle_timeout).await?;
            ws.send(Message::text(SUBSCRIBE_ALL)).await?;
            // The ack comes before any snapshot; statuses may come before it.
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(reply))) => {
                        let parsed: Option<serde_json::Value> = serde_json::from_str(reply.as_str()).ok();
                        let is = |key: &str, value: serde_json::Value| parsed.as_ref().is_some_and(|p| p[key] == value);
                        if is("type", "ack".into()) && is("id", 1.into()) {
                            return Ok(ws);
                        }
                        return Err(LiveError::Protocol(format!(
                            "the upstream hub refused the subscription: {reply}"
                        )));
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        return Err(LiveError::Protocol(
                            "closed before acknowledging the subscription".into(),
                        ));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(err.into()),
                }
            }
        };
        let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| LiveError::Timeout("connecting and subscribing"))??;
        link.up();
        let mut heartbeat = Heartbeat::new(self.idle_timeout);
        while let Some(message) = heartbeat.next(&mut ws).await {
            match message? {
                Message::Binary(bytes) => {
                    let recv_ts = now_ns();
                    self.message_number += 1;
                    link.received(bytes.len());
                    self.relay(&bytes, recv_ts, link);
                }
                Message::Text(reply) => debug!(source = link.source(), %reply, "upstream hub reply"),
                Message::Close(_) => return Ok(()),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        Ok(())
    }
}

/// The records of one binary message as `(record type, bytes)`, after its
/// message header, each checked only for the framing every reader relies
/// on (length a positive multiple of 8 that fits).
struct RawRecords<'a> {
    rest: &'a [u8],
}

impl<'a> RawRecords<'a> {
    fn new(message: &'a [u8]) -> Result<Self, quotehub_proto::Error> {
        // Checks the header's type, length and protocol version.
        quotehub_proto::Message::decode(message)?;
        let header_len = usize::from(u16::from_le_bytes([message[0], message[1]]));
        Ok(Self {
            rest: &message[header_len..],
        })
    }
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = Result<(u8, &'a [u8]), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let framing = match self.rest {
            [low, high, kind, ..] => {
                let length = usize::from(u16::from_le_bytes([*low, *high]));
                if length < 8 || length % 8 != 0 {
                    Err("record length must be a positive multiple of 8")
                } else if length > self.rest.len() {
                    Err("record longer than the rest of its message")
                } else {
                    Ok((*kind, length))
                }
            }
            _ => Err("truncated record header"),
        };
        match framing {
            Ok((kind, length)) => {
                let (record, rest) = self.rest.split_at(length);
                self.rest = rest;
                Some(Ok((kind, record)))
            }
            Err(error) => {
                // A broken length leaves no way to find the next record.
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quotehub_proto::{Flags, MessageHeader, Quote, QuoteRecord};

    fn message(records: &[&[u8]]) -> Vec<u8> {
        let mut out = MessageHeader::encode(1).to_vec();
        for record in records {
            out.extend_from_slice(record);
        }
        out
    }

    #[test]
    fn records_are_framed_and_broken_framing_stops_the_message() {
        let quote = QuoteRecord {
            quote: Quote {
                symbol: "BRK.B".parse().unwrap(),
                bid_price: "1.5".parse().unwrap(),
                bid_size: 1,
                ask_price: "1.6".parse().unwrap(),
                ask_size: 2,
                event_ts: 3,
                recv_ts: 4,
                seq: 5,
            },
            flags: Flags::default(),
            conflated: 0,
        }
        .encode();
        let unknown = [8, 0, 0x7f, 0, 0, 0, 0, 0];
        let broken = [12, 0, rtype::QUOTE, 0];
        let bytes = message(&[&quote, &unknown, &broken, &quote]);
        let records: Vec<_> = RawRecords::new(&bytes).unwrap().collect();
        assert_eq!(records.len(), 3, "nothing after a broken length");
        assert_eq!(records[0], Ok((rtype::QUOTE, &quote[..])));
        assert_eq!(records[1], Ok((0x7f, &unknown[..])));
        assert!(records[2].is_err());
        assert!(RawRecords::new(&quote).is_err(), "no message header");
    }
}
