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
//! Pacing is the client's alone, and so is the backpressure: the session is
//! the only reader of its own feed, so it reads the next chunk only once the
//! last one is written, instead of conflating or dropping. The live
//! publisher is not involved and never waits.
//!
//! A session holds no thread: it reads its feed a chunk at a time on a
//! small fixed pool of reader threads (`replay_pool`), and waits for due
//! times, pauses and its socket on the runtime. It cannot hold its slot for
//! ever: it is pinged like a quote connection and closed with 1001
//! "idle timeout: ..." when nothing is heard from the client, closed with
//! 1008 "paused too long: ..." past `replay_max_pause`, and a socket write
//! past `write_timeout` drops it. One client (API key, or IP address without
//! keys) holds at most `replay_max_sessions_per_client` sessions (HTTP 429).
//!
//! While it runs, the client may send `{"op":"pause"}`, `{"op":"resume"}`
//! and `{"op":"speed","x":10}` (or `"x":"max"`), with an optional `"id"`;
//! each is answered with `{"type":"ack",...}` or `{"type":"error",...}`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::Either;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use quotehub_feed::replay::{ReplaySink, ReplayStatus};
use quotehub_feed::{
    FeedError, RecordedFeed, ReplayControl, ReplayEnd, ReplayRun, ReplayStep, ReplayWindow, Speed, open_recorded,
};
use quotehub_proto::record::MESSAGE_HEADER_LEN;
use quotehub_proto::{Event, Flags, StatusRecord, Symbol, now_ns};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use crate::config::ServerConfig;
use crate::http::{Head, respond_busy, respond_text};
use crate::paths::REPLAY_PATH;
use crate::replay_feeds::{Full, valid_feed_name};
use crate::state::ServerState;
use crate::upgrade::{self, Format};
use crate::writer::send_records;
use quotehub_engine::fanout::{encode, status_code};
use quotehub_engine::hub::Hub;

/// Most records read in one chunk, and packed between two flushes.
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
    let param = |name: &str| head.query_value(name);
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

/// Serves one replay session, from the request head to the close. `key`
/// is the name of the client's API key, if keys are in use; without one the
/// client is its IP address (for the per-client session cap).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S>(
    mut stream: S,
    head: Head,
    entitled: Option<Arc<HashSet<Symbol>>>,
    key: Option<&str>,
    peer: SocketAddr,
    hub: &Hub,
    state: &ServerState,
    stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let config = &state.config;
    let sessions = &state.replay_sessions;
    let request = match parse_request(&head, config, entitled.as_deref()) {
        Ok(request) => request,
        Err((status, text)) => {
            let _ = respond_text(&mut stream, status, &text).await;
            return;
        }
    };
    let (client, who) = match key {
        Some(name) => (format!("key {name}"), format!("API key {name:?}")),
        None => (peer.ip().to_string(), format!("address {}", peer.ip())),
    };
    let per_client = config.replay_max_sessions_per_client;
    let _slot = match sessions.try_open(&client, per_client) {
        Ok(slot) => slot,
        Err(Full::Hub) => {
            let text = format!(
                "the hub serves {} replay sessions at once; try again later\n",
                config.replay_feeds.max_sessions()
            );
            let _ = respond_busy(&mut stream, &text).await;
            return;
        }
        Err(Full::Client) => {
            let text = format!(
                "{who} already holds its {per_client} replay sessions (the most one client may hold); close one first\n"
            );
            let _ = respond_text(&mut stream, 429, &text).await;
            return;
        }
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
    run(ws, format, feed, request, hub, state, stopping).await;
    debug!(%peer, "replay session closed");
}

/// How long, after sending its close frame, a session reads on for the
/// client's answer (as quote sessions do): dropping a socket with the
/// client's frames unread resets it, and a reset can destroy the close frame
/// before the client reads it.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A session's replay between chunks: moved to a reader thread
/// (`replay_pool`) to read one chunk of the feed, and back.
struct Replaying {
    run: ReplayRun,
    feed: Box<dyn RecordedFeed>,
    sink: SessionSink,
}

/// What reading one chunk came to.
enum Chunk {
    /// The chunk is full and more is due at once.
    Full,
    /// Nothing more is due for this long (`None`: paused, until a command).
    Wait(Option<Duration>),
    /// The replay is over, or its feed failed.
    End(Result<ReplayEnd, FeedError>),
}

impl Replaying {
    /// Steps the replay until a chunk of records is ready, the next event
    /// is not due yet, or the end. Reads the feed (file IO): runs on a
    /// reader thread, never waits.
    fn chunk(mut self: Box<Self>) -> (Box<Self>, Chunk) {
        let chunk = loop {
            if self.sink.records.len() >= MAX_RECORDS_PER_FLUSH {
                break Chunk::Full;
            }
            let Replaying { run, feed, sink } = &mut *self;
            match run.step(feed.as_mut(), sink) {
                Ok(ReplayStep::Continue) => {}
                Ok(ReplayStep::Wait { wait, .. }) => break Chunk::Wait(wait),
                Ok(ReplayStep::End(end)) => break Chunk::End(Ok(end)),
                Err(err) => break Chunk::End(Err(err)),
            }
        };
        (self, chunk)
    }
}

/// A chunk being read: the replay comes back with what it read.
type Reading = Pin<Box<dyn Future<Output = Option<(Box<Replaying>, Chunk)>> + Send>>;

/// Runs the session: reads its feed a chunk at a time on the reader pool
/// (`replay_pool`), waits for due times, pauses and the client's socket on
/// the runtime (no thread of its own), pings the client and closes it when
/// it goes silent (1001), stays paused too long (1008) or the hub shuts
/// down; every write has a deadline.
async fn run<W>(
    ws: W,
    format: Format,
    feed: Box<dyn RecordedFeed>,
    request: SessionRequest,
    hub: &Hub,
    state: &ServerState,
    mut stopping: watch::Receiver<bool>,
) where
    W: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let (config, sessions) = (&state.config, &state.replay_sessions);
    let (mut sink, mut source) = ws.split();
    let control = ReplayControl::new(request.speed);
    let mut replaying = Some(Box::new(Replaying {
        run: ReplayRun::new(request.looped, request.window, control.clone()),
        feed,
        sink: SessionSink {
            records: Vec::with_capacity(MAX_RECORDS_PER_FLUSH),
            seq: HashMap::new(),
            slab: BytesMut::new(),
        },
    }));
    let mut reading: Option<Reading> = None;
    // When to read on; `None` while paused (or reading).
    let mut due = Some(Instant::now());
    // A command came while a chunk was out: its answer may be stale.
    let mut look_again = false;
    let mut paused_since: Option<Instant> = None;
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let readers = sessions.readers();
    let waiting = sessions.waiting_counter();
    let deadline = config.write_timeout;
    let stats = hub.stats();
    let mut message = BytesMut::with_capacity(config.max_message_bytes + MESSAGE_HEADER_LEN);
    let frame = loop {
        tokio::select! {
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() && reading.is_none() => {
                due = None;
                if let Some(replay) = replaying.take() {
                    let readers = Arc::clone(&readers);
                    reading = Some(Box::pin(async move { readers.run(move || replay.chunk()).await }));
                }
            }
            read = async { reading.as_mut().map_or_else(|| Either::Right(std::future::pending()), Either::Left).await }, if reading.is_some() => {
                reading = None;
                let Some((mut replay, chunk)) = read else {
                    tracing::error!("a replay session's feed reader failed");
                    break Some(close(CloseCode::Error, "the replay failed"));
                };
                // Waiting here is the backpressure: nothing more is read meanwhile.
                let written = write(&mut sink, &mut message, &mut replay.sink.records, format, stats, config, &waiting).await;
                replaying = Some(replay);
                if written.is_err() {
                    break None;
                }
                match chunk {
                    Chunk::Full => due = Some(Instant::now()),
                    Chunk::Wait(_) if look_again => due = Some(Instant::now()),
                    // A due time past what an instant holds (a client's absurd speed) is never.
                    Chunk::Wait(wait) => due = wait.and_then(|wait| Instant::now().checked_add(wait)),
                    Chunk::End(Ok(_)) => break Some(close(CloseCode::Normal, "replay ended")),
                    Chunk::End(Err(err)) => {
                        tracing::error!(%err, "replay session feed failed");
                        break Some(close(CloseCode::Error, "the feed failed"));
                    }
                }
                look_again = false;
            }
            incoming = source.next() => {
                last_heard = Instant::now();
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let reply = handle_op(&control, text.as_str());
                        // A command may change what is due: look again.
                        if reading.is_some() {
                            look_again = true;
                        } else if replaying.is_some() {
                            due = Some(Instant::now());
                        }
                        paused_since = if control.state().paused {
                            paused_since.or(Some(Instant::now()))
                        } else {
                            None
                        };
                        Some(reply)
                    }
                    Some(Ok(Message::Binary(_))) => Some(json!({"type": "error", "id": null, "code": "unsupported_message",
                        "message": "requests are JSON text"})),
                    // tungstenite queued the pong; the flush below sends it even if paused.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(err)) => break crate::connection::close_for(&err),
                };
                let sent = match reply {
                    Some(reply) => within(deadline, sink.send(Message::text(reply.to_string()))).await,
                    None => within(deadline, sink.flush()).await,
                };
                if sent.is_err() {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= config.idle_timeout {
                    let reason = format!("idle timeout: nothing heard for {:?}", config.idle_timeout);
                    break Some(CloseFrame { code: CloseCode::Away, reason: reason.into() });
                }
                if within(deadline, sink.send(Message::Ping(Bytes::new()))).await.is_err() {
                    break None;
                }
            }
            () = sleep_until(paused_since.map_or_else(Instant::now, |since| since + config.replay_max_pause)), if paused_since.is_some() => {
                let reason = format!("paused too long: {:?} at most", config.replay_max_pause);
                break Some(CloseFrame { code: CloseCode::Policy, reason: reason.into() });
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    break Some(crate::connection::going_away());
                }
            }
        }
    };
    // A chunk still being read stops at its next step.
    control.stop();
    drop(reading);
    if let Some(frame) = frame
        && within(deadline, sink.send(Message::Close(Some(frame)))).await.is_ok()
    {
        let answered = async {
            while let Some(Ok(message)) = source.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, answered).await;
    }
    let _ = within(deadline, sink.close()).await;
}

/// A socket write raced against the write deadline; a write past it is an error.
async fn within(deadline: Duration, write: impl Future<Output = Result<(), WsError>>) -> Result<(), WsError> {
    match tokio::time::timeout(deadline, write).await {
        Ok(written) => written,
        Err(_) => Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Packs a batch of records into messages and flushes them, within the
/// write deadline; counts the session as waiting for its client while the
/// socket does not take them at once.
async fn write<S>(
    sink: &mut S,
    message: &mut BytesMut,
    batch: &mut Vec<Bytes>,
    format: Format,
    stats: &quotehub_engine::stats::Stats,
    config: &ServerConfig,
    waiting: &AtomicUsize,
) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let written = within(
        config.write_timeout,
        pack(sink, message, batch, format, stats, config.max_message_bytes),
    );
    tokio::pin!(written);
    if let Some(done) = written.as_mut().now_or_never() {
        return done;
    }
    waiting.fetch_add(1, Ordering::AcqRel);
    let done = written.await;
    waiting.fetch_sub(1, Ordering::AcqRel);
    done
}

/// Packs a batch of records into messages and flushes them.
async fn pack<S>(
    sink: &mut S,
    message: &mut BytesMut,
    batch: &mut Vec<Bytes>,
    format: Format,
    stats: &quotehub_engine::stats::Stats,
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

/// Where a session's replay puts records: sequenced per symbol, encoded
/// like live records, collected for the next write.
struct SessionSink {
    /// Records of the chunk being read, written when it is done.
    records: Vec<Bytes>,
    /// The last sequence number given per symbol.
    seq: HashMap<Symbol, u64>,
    slab: BytesMut,
}

impl SessionSink {
    fn next_seq(&mut self, symbol: Symbol) -> u64 {
        let seq = self.seq.entry(symbol).or_default();
        *seq += 1;
        *seq
    }

    fn send(&mut self, record: Bytes) {
        self.records.push(record);
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
