//! A Rust client for quotehub: connect, subscribe, and read quotes and trades.
//!
//! ```no_run
//! # async fn demo() -> quotehub_client::Result<()> {
//! use quotehub_client::{Client, Update};
//!
//! let mut client = Client::connect("ws://127.0.0.1:8080/v1/quotes").await?;
//! client.subscribe(&["AAPL", "MSFT"]).await?;
//! while let Some(update) = client.next_update().await? {
//!     if let Update::Quote { record, .. } = update {
//!         println!("{} {} / {}", record.quote.symbol, record.quote.bid_price, record.quote.ask_price);
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod error;

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use quotehub_proto::{Message as Records, QuoteRecord, Record, TradeRecord};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use error::{Error, Result};

/// The binary sub-protocol this client speaks.
pub const PROTOCOL: &str = "quotehub.v1.binary";

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
}

/// A connection to a hub.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Records that arrived while waiting for a reply, in arrival order.
    pending: VecDeque<Update>,
    next_id: u64,
    /// Records of types this client does not know, skipped as the spec says.
    skipped: u64,
}

/// A reply as the hub sends it.
#[derive(Debug, Deserialize)]
struct WireReply {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    code: Option<quotehub_proto::ErrorCode>,
    message: Option<String>,
}

impl Client {
    /// Connects to a hub, e.g. `ws://127.0.0.1:8080/v1/quotes`.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
        let config = WebSocketConfig::default().read_buffer_size(64 * 1024);
        let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        Ok(Self {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
            skipped: 0,
        })
    }

    /// Subscribes to symbols (`"*"` for all) and waits for the hub's ack.
    /// Snapshots of the new symbols are the next updates after it.
    pub async fn subscribe(&mut self, symbols: &[&str]) -> Result<()> {
        self.request("subscribe", symbols).await
    }

    /// Unsubscribes and waits for the ack.
    pub async fn unsubscribe(&mut self, symbols: &[&str]) -> Result<()> {
        self.request("unsubscribe", symbols).await
    }

    /// Sends a raw text message (for tools and tests that speak JSON directly).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::Text(Utf8Bytes::from(text))).await?;
        Ok(())
    }

    async fn request(&mut self, op: &str, symbols: &[&str]) -> Result<()> {
        self.next_id += 1;
        let id = self.next_id;
        let text = serde_json::json!({ "op": op, "symbols": symbols, "id": id }).to_string();
        self.send_text(&text).await?;
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: WireReply = serde_json::from_str(text.as_str())
                        .map_err(|err| Error::Protocol(format!("unreadable reply {text:?}: {err}")))?;
                    if reply.id != Some(id) {
                        continue;
                    }
                    return match reply.kind.as_str() {
                        "ack" => Ok(()),
                        _ => Err(Error::Refused {
                            code: reply.code.unwrap_or(quotehub_proto::ErrorCode::BadRequest),
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

    /// The next quote or trade, or `None` once the hub has closed normally.
    pub async fn next_update(&mut self) -> Result<Option<Update>> {
        loop {
            if let Some(update) = self.pending.pop_front() {
                return Ok(Some(update));
            }
            match self.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => self.buffer_records(&bytes)?,
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f)
                            if f.code != tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal =>
                        {
                            Err(closed(Some(f)))
                        }
                        _ => Ok(None),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(None),
            }
        }
    }

    /// How many records of unknown types were skipped.
    pub fn skipped_records(&self) -> u64 {
        self.skipped
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
            match record.map_err(|err| Error::Protocol(err.to_string()))? {
                Record::Quote(record) => self.pending.push_back(Update::Quote { record, send_ts }),
                Record::Trade(record) => self.pending.push_back(Update::Trade { record, send_ts }),
                _ => self.skipped += 1,
            }
        }
        Ok(())
    }
}

fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Error {
    Error::Closed {
        reason: frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
    }
}
