//! Replay sessions: a client opens its own replay of a configured feed at
//! `/v1/replay?feed=NAME&speed=10&from=T&to=T&symbols=A,B&loop=true`
//! (WebSocket, the same sub-protocols as `/v1/quotes`).
//!
//! The session gets the records a live replay of the feed would publish,
//! encoded by the same code, flagged `REPLAYED`, numbered per symbol as a
//! live replay of the whole feed numbers them (events before `from` are
//! counted, not sent), between a `replay_started` and a `replay_ended` status;
//! then the hub closes it normally (1000, "replay ended").
//!
//! Pacing is the client's alone, and so is the backpressure: the session's
//! replay thread is the only reader of its own feed, so it waits for the
//! socket (a bounded channel between them) instead of conflating or dropping.
//! The live publisher is not involved and never waits.
//!
//! While it runs, the client may send `{"op":"pause"}`, `{"op":"resume"}`
//! and `{"op":"speed","x":10}` (or `"x":"max"`), with an optional `"id"`;
//! each is answered with `{"type":"ack",...}` or `{"type":"error",...}`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use quotehub_feed::replay::{ReplaySink, ReplayStatus};
use quotehub_feed::{RecordedFeed, ReplayControl, ReplayWindow, Speed, open_recorded, replay_controlled};
use quotehub_proto::record::MESSAGE_HEADER_LEN;
use quotehub_proto::{Event, Flags, StatusRecord, Symbol, now_ns};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use crate::config::ServerConfig;
use crate::fanout::{encode, status_code};
use crate::http::{Head, respond_busy, respond_text};
use crate::hub::Hub;
use crate::replay_feeds::valid_feed_name;
use crate::sse::percent_decode;
use crate::upgrade::{self, Format};
use crate::writer::send_records;

/// The path of replay sessions.
pub const REPLAY_PATH: &str = "/v1/replay";

/// Records between a session's replay thread and its socket: when they are
/// all unsent, the replay waits.
const BUFFERED_RECORDS: usize = 1_024;

/// Most records packed between two flushes.
const MAX_RECORDS_PER_FLUSH: usize = 4_096;

/// What a client asked for in its URL.
#[derive(Debug)]
struct SessionRequest {
    name: String,
    path: PathBuf,
    speed: Speed,
    looped: bool,
    window: ReplayWindow,
}

/// Reads the URL's parameters, or says why not: (status, text).
fn parse_request(
    head: &Head,
    config: &ServerConfig,
    entitled: Option<&HashSet<Symbol>>,
) -> Result<SessionRequest, (u16, String)> {
    let param = |name: &str| head.query_param(name).map(percent_decode);
    let bad = |text: String| (400, format!("{text}\n"));
    let feeds = &config.replay_feeds;
    let offered = || {
        let names = feeds.names();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let name =
        param("feed").ok_or_else(|| bad(format!("name a feed: {REPLAY_PATH}?feed=NAME; offered: {}", offered())))?;
    if !valid_feed_name(&name) {
        return Err(bad(format!(
            "feed {name:?} is not a feed name (feeds are named from the hub's list, never by path); offered: {}",
            offered()
        )));
    }
    let path = feeds
        .path(&name)
        .ok_or_else(|| (404, format!("no replay feed named {name:?}; offered: {}\n", offered())))?
        .to_path_buf();
    let speed = match param("speed") {
        None => Speed::Factor(1.0),
        Some(text) => text.parse().map_err(bad)?,
    };
    let looped = match param("loop").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(bad(format!("loop is true or false, not {other:?}"))),
    };
    let mut window = ReplayWindow::parse(
        param("from").as_deref(),
        param("to").as_deref(),
        param("symbols").as_deref(),
    )
    .map_err(bad)?;
    if let Some(entitled) = entitled {
        match &window.symbols {
            None => window.symbols = Some(entitled.clone()),
            Some(asked) => {
                if let Some(symbol) = asked.iter().find(|symbol| !entitled.contains(*symbol)) {
                    return Err((403, format!("this API key is not entitled to {symbol}\n")));
                }
            }
        }
    }
    Ok(SessionRequest {
        name,
        path,
        speed,
        looped,
        window,
    })
}

/// Serves one replay session, from the request head to the close.
pub(crate) async fn serve<S>(
    mut stream: S,
    head: Head,
    entitled: Option<Arc<HashSet<Symbol>>>,
    peer: SocketAddr,
    hub: &Hub,
    config: &ServerConfig,
    stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = match parse_request(&head, config, entitled.as_deref()) {
        Ok(request) => request,
        Err((status, text)) => {
            let _ = respond_text(&mut stream, status, &text).await;
            return;
        }
    };
    let Some(_slot) = config.replay_feeds.try_open() else {
        let text = format!(
            "the hub serves {} replay sessions at once; try again later\n",
            config.replay_feeds.max_sessions()
        );
        let _ = respond_busy(&mut stream, &text).await;
        return;
    };
    let feed = match open_recorded(&request.path) {
        Ok(feed) => feed,
        Err(err) => {
            tracing::error!(feed = %request.name, %err, "replay feed cannot be opened");
            let text = format!("replay feed {:?} cannot be opened right now\n", request.name);
            let _ = respond_text(&mut stream, 500, &text).await;
            return;
        }
    };
    let Some((ws, format)) = upgrade::accept(stream, head, config).await else {
        return;
    };
    debug!(%peer, feed = %request.name, speed = %request.speed, "replay session opened");
    run(ws, format, feed, request, hub, config, stopping).await;
    debug!(%peer, "replay session closed");
}

/// Runs the session's replay on its own thread and writes what it sends,
/// answering the client's requests in between.
async fn run<W>(
    ws: W,
    format: Format,
    mut feed: Box<dyn RecordedFeed>,
    request: SessionRequest,
    hub: &Hub,
    config: &ServerConfig,
    mut stopping: watch::Receiver<bool>,
) where
    W: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let control = ReplayControl::new(request.speed);
    let (records_tx, mut records) = mpsc::channel::<Bytes>(BUFFERED_RECORDS);
    let (outcome_tx, outcome) = oneshot::channel();
    let (stop_tx, stop) = std::sync::mpsc::channel::<()>();
    let thread_control = control.clone();
    let waiting = config.replay_feeds.waiting_counter();
    let spawned = std::thread::Builder::new()
        .name("replay-session".into())
        .spawn(move || {
            let sink = SessionSink {
                records: records_tx,
                seq: HashMap::new(),
                slab: BytesMut::new(),
                waiting,
            };
            let ended = replay_controlled(
                feed.as_mut(),
                request.looped,
                &request.window,
                &thread_control,
                &stop,
                sink,
            );
            let _ = outcome_tx.send(ended);
        });
    if let Err(err) = spawned {
        tracing::error!(%err, "cannot start a replay session thread");
        let _ = sink
            .send(Message::Close(Some(close(CloseCode::Error, "cannot start the replay"))))
            .await;
        return;
    }
    let stats = hub.stats();
    let mut message = BytesMut::with_capacity(config.max_message_bytes + MESSAGE_HEADER_LEN);
    let mut batch = Vec::with_capacity(MAX_RECORDS_PER_FLUSH);
    let frame = loop {
        tokio::select! {
            received = records.recv_many(&mut batch, MAX_RECORDS_PER_FLUSH) => {
                if received == 0 {
                    break match outcome.await {
                        Ok(Err(err)) => {
                            tracing::error!(%err, "replay session feed failed");
                            Some(close(CloseCode::Error, "the feed failed"))
                        }
                        _ => Some(close(CloseCode::Normal, "replay ended")),
                    };
                }
                // Waiting here is the backpressure: the replay thread waits
                // for room in the channel meanwhile.
                if write(&mut sink, &mut message, &mut batch, format, stats, config.max_message_bytes).await.is_err() {
                    break None;
                }
            }
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle_op(&control, text.as_str());
                    if sink.send(Message::text(reply.to_string())).await.is_err() {
                        break None;
                    }
                }
                // tungstenite queued the pong; send it now even if paused.
                Some(Ok(Message::Ping(_))) => {
                    if sink.flush().await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = json!({"type": "error", "id": null, "code": "unsupported_message",
                        "message": "requests are JSON text"});
                    if sink.send(Message::text(reply.to_string())).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(err)) => break crate::server::close_for(&err),
            },
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    break Some(crate::server::going_away());
                }
            }
        }
    };
    // The thread sees the stop at once, or a closed channel if it was waiting to send.
    control.stop();
    drop(stop_tx);
    drop(records);
    if let Some(frame) = frame {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

/// Packs a batch of records into messages and flushes them.
async fn write<S>(
    sink: &mut S,
    message: &mut BytesMut,
    batch: &mut Vec<Bytes>,
    format: Format,
    stats: &crate::stats::Stats,
    max_message_bytes: usize,
) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    for record in batch.drain(..) {
        if message.is_empty() {
            message.extend_from_slice(&[0; MESSAGE_HEADER_LEN]);
        }
        message.extend_from_slice(&record);
        if message.len() >= max_message_bytes {
            send_records(sink, message, format, stats).await?;
        }
    }
    send_records(sink, message, format, stats).await?;
    sink.flush().await
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Carries out one client request on its session's replay; the reply.
fn handle_op(control: &ReplayControl, text: &str) -> Value {
    let request: Value = match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return json!({"type": "error", "id": null, "code": "malformed_json",
                "message": "a request is a JSON object such as {\"op\":\"pause\"}"});
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let error = |code: &str, message: String| json!({"type": "error", "id": id, "code": code, "message": message});
    let op = request.get("op").and_then(Value::as_str).unwrap_or_default();
    match op {
        "pause" => control.pause(),
        "resume" => control.resume(),
        "speed" => {
            let speed = match request.get("x") {
                Some(Value::Number(number)) => number.to_string().parse::<Speed>(),
                Some(Value::String(text)) => text.parse::<Speed>(),
                _ => Err("speed needs \"x\": a factor (10, 0.5) or \"max\"".to_owned()),
            };
            match speed {
                Ok(speed) => control.set_speed(speed),
                Err(message) => return error("bad_request", message),
            }
        }
        _ => {
            return error(
                "unknown_op",
                format!("a replay session takes the ops pause, resume and speed, not {op:?}"),
            );
        }
    }
    json!({"type": "ack", "id": id, "op": op})
}

/// Where a session's replay thread puts records: sequenced per symbol,
/// encoded like live records, sent down the bounded channel (waiting for
/// room: the backpressure).
struct SessionSink {
    records: mpsc::Sender<Bytes>,
    /// The last sequence number given per symbol.
    seq: HashMap<Symbol, u64>,
    slab: BytesMut,
    /// Counts sessions waiting for their client (shown at /v1/replay/feeds).
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl SessionSink {
    fn next_seq(&mut self, symbol: Symbol) -> u64 {
        let seq = self.seq.entry(symbol).or_default();
        *seq += 1;
        *seq
    }

    fn send(&self, record: Bytes) {
        use std::sync::atomic::Ordering;
        use tokio::sync::mpsc::error::TrySendError;
        // Either fails only when the session is over; the replay sees the stop next.
        if let Err(TrySendError::Full(record)) = self.records.try_send(record) {
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let _ = self.records.blocking_send(record);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl ReplaySink for SessionSink {
    fn event(&mut self, mut event: Event) {
        event.set_recv_ts(now_ns());
        let seq = self.next_seq(event.symbol());
        event.set_seq(seq);
        let record = encode(&mut self.slab, &event, Flags::REPLAYED);
        self.send(record);
    }

    fn status(&mut self, status: ReplayStatus) {
        let (code, detail) = status_code(status);
        let record = StatusRecord {
            code,
            feed: 0,
            ts: now_ns(),
            detail,
        };
        self.send(Bytes::copy_from_slice(&record.encode()));
    }

    /// A live replay of the whole feed would have numbered it.
    fn skipped(&mut self, event: &Event) {
        self.next_seq(event.symbol());
    }

    fn counts_skipped(&self) -> bool {
        true
    }
}
