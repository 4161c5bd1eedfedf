//! Accepting connections and driving each one: handshake, a reader that
//! handles requests, a writer that drains the client's queue.

use std::future::Future;
use std::net::SocketAddr;

use futures_util::{Sink, Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info, warn};

use crate::client::ClientHandle;
use crate::config::ServerConfig;
use crate::handshake::{Handshake, websocket_config};
use crate::hub::Hub;
use crate::session::Session;
use crate::stats::Stats;
use crate::writer::Writer;

/// Serves WebSocket clients from `listener` until `shutdown` completes, then
/// closes every client with 1001 (going away) and waits up to
/// [`ServerConfig::drain_timeout`] for them to go.
pub async fn run(listener: TcpListener, hub: Hub, config: ServerConfig, shutdown: impl Future) -> std::io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    info!(addr = %listener.local_addr()?, "serving quotes");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, hub.clone(), config.clone(), stopping.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    info!(clients = connections.len(), "shutting down: closing clients");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(config.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            remaining = connections.len(),
            "drain deadline passed; dropping remaining clients"
        );
        connections.abort_all();
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Hub,
    config: ServerConfig,
    stopping: watch::Receiver<bool>,
) {
    // Quotes are small and latency-bound; never let Nagle hold one back.
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%peer, %err, "could not set TCP_NODELAY");
    }
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, Handshake, Some(websocket_config(&config)));
    let ws = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, %err, "handshake failed");
            return;
        }
        Err(_) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, "handshake timed out");
            return;
        }
    };
    serve_client(ws, peer, &hub, &config, stopping).await;
}

/// Drives one upgraded connection; generic over the socket so it runs over
/// any `Sink`/`Stream` of messages.
pub(crate) async fn serve_client<W>(
    ws: W,
    peer: SocketAddr,
    hub: &Hub,
    config: &ServerConfig,
    mut stopping: watch::Receiver<bool>,
) where
    W: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let stats = hub.stats();
    Stats::add(&stats.connections_opened, 1);
    Stats::add(&stats.connections_open, 1);
    let (sink, mut source) = ws.split();
    let (queue_tx, queue_rx) = mpsc::channel(config.queue_capacity);
    let (close_tx, close_rx) = watch::channel(None);
    let client = ClientHandle::new(hub.next_client_id(), queue_tx, close_tx, std::sync::Arc::clone(stats));
    debug!(%peer, client = client.id(), "client connected");
    let mut session = Session::new(
        client.clone(),
        std::sync::Arc::clone(hub.table()),
        config.max_symbols_per_client,
    );
    let writer = Writer {
        sink,
        queue: queue_rx,
        close: close_rx,
        max_message_bytes: config.max_message_bytes,
        stats,
    };
    let writer = writer.run();
    tokio::pin!(writer);
    let mut writer_done = false;
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => session.handle_text(text.as_str()),
                Some(Ok(Message::Binary(_))) => session.handle_binary(),
                // tungstenite answers pings itself; the reply goes out with the next flush.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => {
                    debug!(%peer, %err, "read failed");
                    break;
                }
            },
            result = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(err) = result {
                    debug!(%peer, %err, "write failed");
                }
                break;
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    client.close(CloseFrame { code: CloseCode::Away, reason: "hub shutting down".into() });
                }
            }
        }
    }
    // Leave the table before the writer winds down, so nothing new is queued.
    drop(session);
    client.close(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    });
    if !writer_done {
        let _ = tokio::time::timeout(config.drain_timeout, &mut writer).await;
    }
    stats
        .connections_open
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    debug!(%peer, client = client.id(), "client disconnected");
}
