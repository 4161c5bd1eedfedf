//! A connection's life, the same for every route: accept under the
//! connection cap (`admission.rs`), the TLS handshake and the request head
//! within the handshake timeout, then the router; for streaming routes,
//! registration with the engine ([`Registered`]), the close reasons, and
//! leaving; at shutdown, the drain. Routes use these and never each other.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use quotehub_proto::{StatusCode, StatusRecord, now_ns};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, info, warn};

use crate::accept_backoff::AcceptBackoff;
use crate::admission::{Admitted, Busy, Gate, PendingGuard, REFUSAL_HEAD_TIMEOUT};
use crate::config::ServerConfig;
use crate::http::{Head, HeadError, linger, read_head, respond_busy, respond_text};
use crate::router;
use crate::state::ServerState;
use quotehub_engine::client::ClientHandle;
use quotehub_engine::hub::Hub;
use quotehub_engine::queue::Queue;
use quotehub_engine::session::Session;
use quotehub_engine::slow_consumer::Policy;
use quotehub_engine::stats::Stats;

/// What every route gets of the connection it serves.
pub(crate) struct Conn {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The address the client reached (for the admin endpoints' `Host` check).
    pub(crate) local: SocketAddr,
    /// The engine.
    pub(crate) hub: Hub,
    /// The server's settings and live handles.
    pub(crate) state: Arc<ServerState>,
    /// Turns true when the hub starts shutting down (drain).
    pub(crate) stopping: watch::Receiver<bool>,
}

/// Serves clients from `listener` until `shutdown` completes; then announces
/// the shutdown to every client, closes each with 1001 (going away) once its
/// queue is written, and waits up to [`ServerConfig::drain_timeout`].
///
/// Every accepted socket holds a permit of [`ServerConfig::max_connections`]
/// until it closes (see `admission.rs`).
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    config: ServerConfig,
    shutdown: impl Future,
) -> std::io::Result<()> {
    let state = ServerState::new(config).map_err(std::io::Error::other)?;
    serve_with(listener, hub, state, shutdown).await
}

/// [`serve`] with a state built by the caller: one that lets the admin
/// endpoints steer the hub's replay ([`ServerState::with_replay_admin`]).
pub async fn serve_with(
    listener: TcpListener,
    hub: Hub,
    state: ServerState,
    shutdown: impl Future,
) -> std::io::Result<()> {
    let state = Arc::new(state);
    let config = &state.config;
    let (stop, stopping) = watch::channel(false);
    state.delayed.spawn_releases(&stopping);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let listening = listener.local_addr()?;
    info!(addr = %listening, "serving quotes");
    let gate = Gate::new(fit_to_descriptors(config), config.max_pending_per_ip);
    let mut backoff = AcceptBackoff::default();
    // Set after a failed accept: no accepting until then.
    let mut paused_until: Option<Instant> = None;
    loop {
        tokio::select! {
            accepted = listener.accept(), if paused_until.is_none() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(unlogged) = backoff.succeeded() {
                        warn!(failures = unlogged, "accept failed (not logged before); accepting again");
                    }
                    match gate.enter(peer) {
                        Some(admitted) => {
                            let local = stream.local_addr().unwrap_or(listening);
                            let task = connection(stream, peer, local, admitted, hub.clone(), Arc::clone(&state), stopping.clone());
                            connections.spawn(task);
                        }
                        None => {
                            // Refused with the refusal reserve taken too:
                            // closed at once, the cheapest answer.
                            Stats::add(&hub.stats().connections_refused, 1);
                            drop(stream);
                        }
                    }
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    Stats::add(&hub.stats().accept_errors, 1);
                    let failed = backoff.failed(Instant::now());
                    if let Some(suppressed) = failed.log {
                        warn!(%err, suppressed, pause_ms = failed.pause.as_millis(), "accept failed");
                    }
                    paused_until = Some(Instant::now() + failed.pause);
                }
            },
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)), if paused_until.is_some() => {
                paused_until = None;
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    info!(clients = hub.client_count(), "shutting down: closing clients");
    let drain_ms = u64::try_from(config.drain_timeout.as_millis()).unwrap_or(u64::MAX);
    let shutdown_status = StatusRecord {
        code: StatusCode::Shutdown,
        feed: 0,
        ts: now_ns(),
        detail: drain_ms,
    };
    hub.announce(shutdown_status);
    for delayed in state.delayed.hubs() {
        delayed.hub.announce(shutdown_status);
    }
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

/// The connection cap the process's open-file limit allows: past it,
/// `accept` would fail for everyone (health probes included) while silent
/// sockets hold every descriptor, so a `max_connections` the limit cannot
/// hold is lowered to what it can, with a warning.
fn fit_to_descriptors(config: &ServerConfig) -> usize {
    let limit = crate::descriptors::open_file_limit();
    let allowed = crate::descriptors::connections_allowed(config.max_connections, limit);
    if allowed < config.max_connections {
        warn!(
            max_connections = config.max_connections,
            needed = crate::descriptors::descriptors_needed(config),
            open_file_limit = ?limit.soft,
            serving = allowed,
            "max_connections needs more file descriptors than the open-file limit (ulimit -n) allows; \
             serving fewer: raise the limit (LimitNOFILE=) or lower max_connections"
        );
    }
    allowed
}

/// How an accepted connection came in and what it may do before its head is read.
struct Door {
    /// The address the client reached (for the admin endpoints' `Host` check).
    local: SocketAddr,
    /// How long the TLS handshake, then the request head, may take.
    head_timeout: Duration,
    /// Its place among its address's connections still opening.
    pending: Option<PendingGuard>,
    /// Why it is refused, if it was accepted only to be told so.
    busy: Option<Busy>,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    admitted: Admitted,
    hub: Hub,
    state: Arc<ServerState>,
    mut stopping: watch::Receiver<bool>,
) {
    // The connection's place under the cap, until it ends.
    let Admitted {
        permit: _permit,
        pending,
        busy,
    } = admitted;
    if busy.is_some() {
        Stats::add(&hub.stats().connections_refused, 1);
    }
    let config = &state.config;
    let head_timeout = match busy {
        Some(_) => REFUSAL_HEAD_TIMEOUT.min(config.handshake_timeout),
        None => config.handshake_timeout,
    };
    let door = Door {
        local,
        head_timeout,
        pending,
        busy,
    };
    // Quotes are small and latency-bound; never let Nagle hold one back.
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%peer, %err, "could not set TCP_NODELAY");
    }
    let Some(tls) = state.tls.clone() else {
        return Box::pin(route(stream, peer, door, hub, state, stopping)).await;
    };
    // Boxed, as is `route` above: a connection's task then holds only the
    // state it is in (an idle subscriber's, a few KiB), not the largest of
    // every state a connection can pass through (the TLS handshake's).
    let handshake = tokio::time::timeout(head_timeout, Box::pin(tls.accept(stream)));
    let Some(handshake) = unless_stopping(&mut stopping, handshake).await else {
        return;
    };
    match handshake {
        Ok(Ok(stream)) => Box::pin(route(stream, peer, door, hub, state, stopping)).await,
        Ok(Err(err)) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, %err, "TLS handshake failed");
        }
        Err(_) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, "TLS handshake timed out");
        }
    }
}

/// Runs `step` (a TLS handshake, a request head) unless the hub starts
/// shutting down first (`None`): a connection that has not even sent its
/// head is not worth the drain's wait.
async fn unless_stopping<F: Future>(stopping: &mut watch::Receiver<bool>, step: F) -> Option<F::Output> {
    tokio::select! {
        output = step => Some(output),
        _ = stopping.wait_for(|stop| *stop) => None,
    }
}

/// The answer to a connection accepted only to be refused.
pub(crate) fn busy_text(busy: Busy) -> String {
    match busy {
        Busy::HubFull(cap) => format!("the hub is full ({cap} connections); try again later\n"),
        Busy::AddressBusy(cap) => {
            format!("too many connections from your address still opening ({cap}); try again later\n")
        }
    }
}

/// Reads the request head within the handshake timeout and hands the
/// connection to the router, over plain TCP or TLS.
async fn route<S>(
    mut stream: S,
    peer: SocketAddr,
    door: Door,
    hub: Hub,
    state: Arc<ServerState>,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: reading a head (and refusing a bad one) takes buffers of a few
    // KiB; unboxed they stayed in the connection's task for its whole life
    // (release build: 16.3 KiB per idle subscriber with them, 11.8 KiB
    // without; benches/README.md, "Idle connections: 16.3 KiB, then 11.8").
    let read = Box::pin(read_head_or_refuse(&mut stream, peer, &door, &hub, &mut stopping));
    let Some(head) = read.await else {
        return;
    };
    Box::pin(router::dispatch(
        stream,
        head,
        Conn {
            peer,
            local: door.local,
            hub,
            state,
            stopping,
        },
        door.pending,
        door.busy,
    ))
    .await;
}

/// The request head, read within the handshake timeout; `None` when there
/// is none to route (the hub is stopping, the head is bad or late: a bad one
/// is answered, a late one on a refused connection gets the refusal).
async fn read_head_or_refuse<S>(
    stream: &mut S,
    peer: SocketAddr,
    door: &Door,
    hub: &Hub,
    stopping: &mut watch::Receiver<bool>,
) -> Option<Head>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reading = tokio::time::timeout(door.head_timeout, read_head(&mut *stream));
    match unless_stopping(stopping, reading).await? {
        Ok(Ok(head)) => Some(head),
        Ok(Err(err)) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, %err, "bad request");
            let status = if matches!(err, HeadError::TooLarge) { 431 } else { 400 };
            let _ = respond_text(stream, status, &format!("{err}\n")).await;
            // The client may still be sending the head we stopped reading.
            linger(stream).await;
            None
        }
        Err(_) => {
            Stats::add(&hub.stats().handshakes_failed, 1);
            debug!(%peer, "request head timed out");
            if let Some(busy) = door.busy {
                let _ = respond_busy(stream, &busy_text(busy)).await;
            }
            None
        }
    }
}

/// How long a connection waits for the client's answer to the hub's close
/// frame before dropping the socket; also the most a closing connection's
/// writer has to send its close frame (see `deadline.rs`).
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The close frame owed to a client whose input broke a rule, if any: the
/// reader stops after such an error, and the writer sends the frame.
pub(crate) fn close_for(err: &WsError) -> Option<CloseFrame> {
    let (code, reason) = match err {
        WsError::Capacity(_) => (CloseCode::Size, "message too big"),
        WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        WsError::Protocol(_) => (CloseCode::Protocol, "WebSocket protocol error"),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// The answer to a client's close frame: 1002 when it carries a code a peer
/// may not send (999, 1005, 1006, 1015, the reserved ranges; tungstenite
/// hands those over as 1002 already, see its `do_close`) or 1002 itself,
/// 1000 otherwise.
pub(crate) fn answer_to_close(frame: Option<&CloseFrame>) -> CloseFrame {
    let code = match frame {
        Some(frame) if !frame.code.is_allowed() || frame.code == CloseCode::Protocol => CloseCode::Protocol,
        _ => CloseCode::Normal,
    };
    CloseFrame {
        code,
        reason: "".into(),
    }
}

/// The close frame of a shutdown.
pub(crate) fn going_away() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: "hub shutting down".into(),
    }
}

/// A new client's queue, its handle and its session, registered with the hub.
pub(crate) struct Registered {
    pub(crate) client: ClientHandle,
    pub(crate) session: Session,
    pub(crate) queue: Arc<Queue>,
    pub(crate) close: watch::Receiver<Option<CloseFrame>>,
}

impl Registered {
    pub(crate) fn new(hub: &Hub, config: &ServerConfig, policy: Policy) -> Self {
        let queue = Arc::new(
            Queue::new(config.queue_capacity, policy, config.max_message_bytes)
                .with_reply_budget(config.reply_budget_bytes),
        );
        let (close_tx, close) = watch::channel(None);
        let client = ClientHandle::new(
            hub.next_client_id(),
            hub.lease_slot(),
            Arc::clone(&queue),
            config.queue_capacity,
            Box::new(CloseSignal(close_tx)),
            Arc::clone(hub.stats()),
        );
        let mut session = Session::new(
            client.clone(),
            Arc::clone(hub.table()),
            config.max_symbols_per_client,
            (config.requests_per_second, config.request_burst),
        );
        session.cap_hub_symbols(config.max_symbols);
        session.cap_unseen_symbols(config.max_unseen_symbols_per_client);
        session.run_walks_with(off_the_worker);
        hub.clients().insert(client.id(), client.clone());
        Stats::add(&hub.stats().connections_opened, 1);
        Stats::add(&hub.stats().connections_open, 1);
        Self {
            client,
            session,
            queue,
            close,
        }
    }
}

/// Runs `walk` (a `"*"` join, which visits every symbol of the table and
/// queues a snapshot of each) with the runtime told that this worker
/// blocks, so the other connections' tasks queued on it move to another
/// thread meanwhile. It holds no table lock for long either way (one slot's
/// at a time); on a single-threaded runtime it just runs. (The server's
/// [`quotehub_engine::session::Blocking`].)
fn off_the_worker(walk: &mut dyn FnMut()) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(walk);
        }
        _ => walk(),
    }
}

/// The engine's way to close a client ([`quotehub_engine::Closer`]): the
/// frame goes to the writer's watch, which it selects on beside its queue.
/// Dropped with the client, which the writer reads as a close too.
#[derive(Debug)]
struct CloseSignal(watch::Sender<Option<CloseFrame>>);

impl quotehub_engine::Closer for CloseSignal {
    fn close(&self, frame: CloseFrame) {
        self.0.send_replace(Some(frame));
    }
}

/// Takes a client out of the table and the registry; nothing new is queued after this.
pub(crate) fn leave(hub: &Hub, session: Session, client: &ClientHandle) {
    drop(session);
    crate::bus_interest::left(hub, client.id());
    hub.clients().remove(&client.id());
    hub.stats()
        .connections_open
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}
