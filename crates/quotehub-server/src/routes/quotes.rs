//! Quotes over WebSocket at `/v1/quotes`: the upgrade (with the client's
//! `?policy=`), then a reader that handles the client's requests beside a
//! writer that drains its queue, a heartbeat, and the close handshake.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tracing::debug;

use quotehub_engine::direct::DirectWrite;
use quotehub_engine::hub::Hub;
use quotehub_engine::slow_consumer::Policy;
use quotehub_engine::stats::{ForcedClose, Stats};

use crate::bus_interest;
use crate::config::ServerConfig;
use crate::connection::{CLOSE_GRACE, Registered, answer_to_close, close_for, going_away, leave};
use crate::deadline::Deadline;
use crate::direct_tcp::{DirectTcp, SharedWrite};
use crate::http::{Head, respond_text};
use crate::read_side::ReadSide;
use crate::upgrade::{self, Format};
use crate::writer::Writer;

/// Upgrades the connection and serves the client until it goes, the hub
/// closes it, or shutdown; a `?policy=` the hub does not know is a 400.
pub(crate) async fn serve<S>(
    mut stream: S,
    head: Head,
    entitled: Option<Arc<std::collections::HashSet<quotehub_proto::Symbol>>>,
    peer: SocketAddr,
    hub: &Hub,
    config: &ServerConfig,
    stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let policy = match head.query_value("policy").as_deref().map(str::parse::<Policy>) {
        None => config.default_policy,
        Some(Ok(policy)) => policy,
        Some(Err(message)) => {
            let _ = respond_text(&mut stream, 400, &format!("{message}\n")).await;
            return;
        }
    };
    match upgrade::handshake(stream, head).await {
        Some((stream, rest, format)) => {
            // Plain TCP and binary: the publisher may write to the socket
            // itself while the writer is idle (see `direct_tcp.rs`).
            let mut stream = Some(stream);
            let tcp = (format == Format::Binary)
                .then(|| (&mut stream as &mut dyn Any).downcast_mut::<Option<TcpStream>>())
                .flatten()
                .and_then(Option::take);
            if let Some(tcp) = tcp {
                let (read, write) = tcp.into_split();
                let write = Arc::new(write);
                let direct = DirectTcp {
                    out: Arc::clone(&write),
                };
                let halves = (read, SharedWrite(write), Some(Box::new(direct) as Box<dyn DirectWrite>));
                Box::pin(serve_client(
                    halves, rest, format, policy, entitled, peer, hub, config, stopping,
                ))
                .await;
            } else if let Some(stream) = stream {
                let (read, out) = tokio::io::split(stream);
                Box::pin(serve_client(
                    (read, out, None),
                    rest,
                    format,
                    policy,
                    entitled,
                    peer,
                    hub,
                    config,
                    stopping,
                ))
                .await;
            }
        }
        None => Stats::add(&hub.stats().handshakes_failed, 1),
    }
}

/// Drives one upgraded connection (plain or TLS): tungstenite reads the
/// client's messages from the read half, the writer writes to the write
/// half, and so may the publisher, through `direct` when given.
/// `rest` is what the client sent after its request head.
#[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
async fn serve_client<R, W>(
    (read, out, direct): (R, W, Option<Box<dyn DirectWrite>>),
    rest: Vec<u8>,
    format: Format,
    policy: Policy,
    entitled: Option<Arc<std::collections::HashSet<quotehub_proto::Symbol>>>,
    peer: SocketAddr,
    hub: &Hub,
    config: &ServerConfig,
    mut stopping: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Registered {
        client,
        mut session,
        queue,
        close,
    } = Registered::new(hub, config, policy);
    let read = ReadSide {
        read,
        queue: Arc::clone(&queue),
    };
    let mut source =
        WebSocketStream::from_partially_read(read, rest, Role::Server, Some(upgrade::websocket_config(config))).await;
    session.restrict_to(entitled);
    if let Some(direct) = direct {
        queue.write_directly(direct);
    }
    // Closed at the end whatever became of the writer, so that the queue
    // lets go of the socket.
    let closing_queue = Arc::clone(&queue);
    debug!(%peer, client = client.id(), ?format, ?policy, "client connected");
    let writer = Writer {
        out: Deadline::new(out, config.write_timeout, CLOSE_GRACE, &close),
        queue,
        close,
        stats: hub.stats(),
        format,
    };
    let writer = writer.run();
    tokio::pin!(writer);
    let mut writer_done = false;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let mut last_heard = Instant::now();
    // Once our close frame is out: until when we wait for the client's.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            incoming = source.next() => {
                last_heard = Instant::now();
                if closing.is_some() {
                    // Only the client's close (or the end) matters now.
                    match incoming {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                        Some(Ok(_)) => continue,
                    }
                }
                match incoming {
                    Some(Ok(Message::Text(text))) if hub.bus().is_some() => {
                        // Past the rate limit, the bus's work for the request, then the request.
                        if let Some(request) = session.admit(text.as_str()) {
                            if bus_interest::before(hub, &client, &request, config.bus_fetch_timeout).await {
                                session.apply(request.clone());
                            }
                            bus_interest::after(hub, client.id(), &request, &session);
                        }
                    }
                    Some(Ok(Message::Text(text))) => session.handle_text(text.as_str()),
                    Some(Ok(Message::Binary(_))) => session.handle_binary(),
                    // tungstenite answers pings itself, through the queue (see `read_side.rs`).
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        client.close(answer_to_close(frame.as_ref()));
                        break;
                    }
                    None => break,
                    Some(Err(err)) => {
                        debug!(%peer, %err, "read failed");
                        if let Some(frame) = close_for(&err) {
                            client.close(frame);
                        }
                        break;
                    }
                }
            }
            _ = heartbeat.tick(), if closing.is_none() => {
                if last_heard.elapsed() >= config.idle_timeout {
                    let reason = format!("idle timeout: nothing heard for {:?}", config.idle_timeout).into();
                    if client.close(CloseFrame { code: CloseCode::Away, reason }) {
                        hub.stats().forced_close(ForcedClose::IdleTimeout);
                    }
                } else {
                    client.ping();
                }
            }
            result = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(err) = result {
                    debug!(%peer, %err, "write failed");
                    break;
                }
                // Our close frame is sent. Read on until the client answers
                // it (RFC 6455 §7.1.1): dropping the socket with the client's
                // messages unread would reset the connection, and a reset can
                // destroy the close frame before the client reads it.
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
            () = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => break,
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    // After the shutdown status already queued for it.
                    client.close_after_queue(going_away());
                }
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    leave(hub, session, &client);
    client.close(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    });
    if !writer_done {
        let _ = tokio::time::timeout(config.drain_timeout, &mut writer).await;
    }
    closing_queue.close();
    debug!(%peer, client = client.id(), "client disconnected");
}
