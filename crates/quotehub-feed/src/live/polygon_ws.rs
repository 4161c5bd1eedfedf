//! A Polygon-style WebSocket upstream: connect, authenticate with
//! `{"action":"auth","params":KEY}`, wait for the `auth_success` status,
//! subscribe with `{"action":"subscribe","params":"Q.*,T.*"}`, then read text
//! messages that are JSON arrays of quote (`"ev":"Q"`), trade (`"ev":"T"`)
//! and status (`"ev":"status"`) objects.

use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quotehub_connect::ClientTls;
use quotehub_proto::now_ns;
use simd_json::prelude::{ValueAsScalar, ValueObjectAccess};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{info, warn};

use super::json_array::split_objects;
use super::link::Link;
use super::url::without_query;
use super::websocket::{self, Heartbeat, UpstreamSocket};
use super::{CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, LiveError, LiveSink, Upstream};
use crate::json_line::JsonLineDecoder;

/// What is subscribed to unless configured otherwise: every quote and trade.
pub const DEFAULT_SUBSCRIPTION: &str = "Q.*,T.*";

/// The statuses of a healthy session; any other is worth an operator's eye.
const ROUTINE_STATUSES: [&str; 4] = ["connected", "auth_success", "success", "info"];

/// The largest message accepted from upstream; a bigger one ends the
/// connection (tungstenite refuses it) rather than the hub's memory.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Reads quotes and trades from a Polygon-style WebSocket upstream.
pub struct PolygonWs {
    url: String,
    name: String,
    /// The API key; never logged (see the `Debug` impl).
    key: Option<String>,
    /// The `params` of the subscribe action, e.g. `Q.*,T.*` or `Q.AAPL,T.AAPL`.
    subscription: String,
    /// Whom to trust for `wss://`.
    tls: ClientTls,
    /// Silence longer than this ends the connection; pings go out every half of it.
    idle_timeout: Duration,
    decoder: JsonLineDecoder,
    /// Each element is copied here to be decoded (the decoder uses it as scratch).
    element: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// Messages received over the current connection, from 1, for reports.
    message_number: u64,
}

impl fmt::Debug for PolygonWs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolygonWs")
            .field("name", &self.name)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("subscription", &self.subscription)
            .field("tls", &self.tls)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl PolygonWs {
    /// A source for `url` (`ws://` or `wss://`), authenticating with `key`
    /// when there is one and subscribing to `subscription`; `wss://`
    /// servers must present a certificate `tls` trusts.
    pub fn new(url: impl Into<String>, key: Option<String>, subscription: impl Into<String>, tls: ClientTls) -> Self {
        let url = url.into();
        Self {
            name: without_query(&url).to_owned(),
            url,
            key,
            subscription: subscription.into(),
            tls,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            decoder: JsonLineDecoder::new(),
            element: Vec::with_capacity(512),
            spans: Vec::with_capacity(64),
            message_number: 0,
        }
    }

    /// Ends a connection over which nothing (not even a pong) arrives for
    /// `idle_timeout` (default [`DEFAULT_IDLE_TIMEOUT`]).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Authenticates (when there is a key) and subscribes.
    async fn handshake<S: LiveSink>(
        &mut self,
        ws: &mut UpstreamSocket,
        link: &mut Link<'_, S>,
    ) -> Result<(), LiveError> {
        if let Some(key) = &self.key {
            let auth = format!(r#"{{"action":"auth","params":{}}}"#, json_string(key));
            ws.send(Message::text(auth)).await?;
            loop {
                let text = match ws.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err(LiveError::Protocol("closed before authentication".into()));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => return Err(err.into()),
                };
                link.received(text.len());
                let statuses = statuses(text.as_bytes(), &mut self.spans);
                // `auth_failed`, or `error` with `authentication failed`,
                // as Polygon answers a key without the plan for the feed.
                let refusal = statuses
                    .iter()
                    .find(|(status, _)| !ROUTINE_STATUSES.contains(&status.as_str()));
                if let Some((status, message)) = refusal {
                    return Err(LiveError::Protocol(format!(
                        "authentication failed ({status}: {message})"
                    )));
                }
                if statuses.iter().any(|(status, _)| status == "auth_success") {
                    break;
                }
            }
        }
        let subscribe = format!(
            r#"{{"action":"subscribe","params":{}}}"#,
            json_string(&self.subscription)
        );
        ws.send(Message::text(subscribe)).await?;
        Ok(())
    }

    /// Delivers every quote and trade of one message; reports statuses;
    /// counts anything else, with where it was. Ends the session when the
    /// upstream asks for the key this source does not have: retrying
    /// would only ask again.
    fn deliver<S: LiveSink>(&mut self, text: &[u8], recv_ts: u64, link: &mut Link<'_, S>) -> Result<(), LiveError> {
        let number = self.message_number;
        if let Err(error) = split_objects(text, &mut self.spans) {
            link.reject(format_args!("message {number}"), error);
            return Ok(());
        }
        for (index, &(start, end)) in self.spans.iter().enumerate() {
            self.element.clear();
            self.element.extend_from_slice(&text[start..end]);
            match self.decoder.decode(&mut self.element) {
                Ok(mut event) => {
                    event.set_recv_ts(recv_ts);
                    link.event(event);
                }
                Err(error) => match status(&text[start..end]) {
                    Some((status, message)) if ROUTINE_STATUSES.contains(&status.as_str()) => {
                        info!(source = link.source(), %status, %message, "upstream status");
                    }
                    Some((status, message)) if self.key.is_none() && asks_for_a_key(&status, &message) => {
                        return Err(LiveError::Protocol(format!(
                            "the upstream wants an API key ({status}: {message}) and none is configured for it"
                        )));
                    }
                    Some((status, message)) => {
                        warn!(source = link.source(), %status, %message, "upstream status");
                    }
                    None => link.reject(format_args!("message {number} element {}", index + 1), error),
                },
            }
        }
        Ok(())
    }
}

impl<S: LiveSink> Upstream<S> for PolygonWs {
    fn name(&self) -> &str {
        &self.name
    }

    async fn session(&mut self, link: &mut Link<'_, S>) -> Result<(), LiveError> {
        self.message_number = 0;
        let config = WebSocketConfig::default()
            .read_buffer_size(64 * 1024)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connecting = async {
            let request = self.url.as_str().into_client_request()?;
            let mut ws = websocket::open(request, config, &self.tls, self.idle_timeout).await?;
            self.handshake(&mut ws, link).await?;
            Ok::<_, LiveError>(ws)
        };
        let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| LiveError::Timeout("connecting, authenticating and subscribing"))??;
        link.up();
        let mut heartbeat = Heartbeat::new(self.idle_timeout);
        while let Some(message) = heartbeat.next(&mut ws).await {
            match message? {
                Message::Text(text) => {
                    let recv_ts = now_ns();
                    self.message_number += 1;
                    link.received(text.len());
                    let delivered = self.deliver(text.as_bytes(), recv_ts, link);
                    link.flush();
                    delivered?;
                }
                Message::Binary(bytes) => {
                    self.message_number += 1;
                    link.received(bytes.len());
                    let number = self.message_number;
                    link.reject(format_args!("message {number}"), "a binary message; expected JSON text");
                }
                Message::Close(frame) => {
                    if let Some(frame) = frame {
                        warn!(source = link.source(), code = %frame.code, reason = %frame.reason, "upstream closed");
                    }
                    return Ok(());
                }
                // Pings are answered by tungstenite as it reads; pongs
                // answer the heartbeat (their bytes reset the idle clock).
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        Ok(())
    }
}

/// The `(status, message)` of every status object in a message.
fn statuses(text: &[u8], spans: &mut Vec<(usize, usize)>) -> Vec<(String, String)> {
    if split_objects(text, spans).is_err() {
        return Vec::new();
    }
    spans
        .iter()
        .filter_map(|&(start, end)| status(&text[start..end]))
        .collect()
}

/// The `(status, message)` of a `{"ev":"status",...}` object, if it is one.
/// Cold path: parsed into a tree (no prices are read here).
fn status(object: &[u8]) -> Option<(String, String)> {
    let mut copy = object.to_vec();
    let value = simd_json::to_borrowed_value(&mut copy).ok()?;
    if value.get("ev")?.as_str()? != "status" {
        return None;
    }
    let status = value
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    let message = value
        .get("message")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((status, message))
}

/// Whether a status is the upstream refusing an unauthenticated client
/// (Polygon answers a subscribe without `auth` with `not authorized`).
fn asks_for_a_key(status: &str, message: &str) -> bool {
    status.to_ascii_lowercase().contains("auth") || message.to_ascii_lowercase().contains("auth")
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_found_and_strings_escaped() {
        let mut spans = Vec::new();
        let text = br#"[{"ev":"status","status":"auth_success","message":"authenticated"},{"ev":"Q"}]"#;
        assert_eq!(
            statuses(text, &mut spans),
            [("auth_success".to_owned(), "authenticated".to_owned())]
        );
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let tls = ClientTls::web_roots().unwrap();
        let source = PolygonWs::new("ws://h:1/stocks", Some("SECRET".into()), DEFAULT_SUBSCRIPTION, tls);
        assert!(!format!("{source:?}").contains("SECRET"));
    }
}
