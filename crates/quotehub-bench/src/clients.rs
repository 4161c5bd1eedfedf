//! The load's clients: N connections on a few OS threads, each thread a
//! single-threaded tokio runtime whose clients share one [`Tally`], so
//! recording takes an uncontended lock and 10,000 connections cost a few
//! threads, not 10,000.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ws_client::opcode;
use anyhow::Context;
use quotehub_proto::{Symbol, now_ns};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::tally::Tally;
use super::workload::Workload;
use super::ws_client::WsClient;

/// Connections opening at once per thread, below the listen backlog.
const CONNECTS_IN_FLIGHT: usize = 128;
/// Read buffer per connection: small, so 10,000 connections cost 40 MiB;
/// a message longer than this is read straight into the payload buffer.
const READ_BUFFER: usize = 4 * 1024;
/// Largest frame a client accepts.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Where the clients connect and how they talk.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The hub or the peer: WebSocket, a `subscribe` request answered by an ack.
    WebSocket {
        addr: SocketAddr,
        url: String,
        /// Presented in the handshake to a hub with API keys (`--api-key`).
        api_key: Option<String>,
        hub_stamps: bool,
    },
    /// The floor: plain TCP, a line of symbols, then frames of a u32 length
    /// and a message; the first frame (empty) is the ack.
    Tcp { addr: SocketAddr },
}

impl Endpoint {
    /// Where the target listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Endpoint::WebSocket { addr, .. } | Endpoint::Tcp { addr } => *addr,
        }
    }
}

/// What all client threads share with the bench.
#[derive(Debug, Default)]
pub struct FleetCounters {
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    pub disconnected: AtomicUsize,
    pub updates: AtomicU64,
    first_error: Mutex<Option<String>>,
    stopping: AtomicBool,
}

impl FleetCounters {
    fn note_error(&self, error: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|first| first.clone())
    }
}

#[derive(Debug)]
pub struct Fleet {
    threads: Vec<JoinHandle<()>>,
    /// Each thread's tally, and the endpoint its clients connect to.
    tallies: Vec<(usize, Arc<Mutex<Tally>>)>,
    /// How many endpoints the clients are split across.
    pub endpoints: usize,
    stop: watch::Sender<bool>,
    pub counters: Arc<FleetCounters>,
    pub clients: usize,
}

impl Fleet {
    /// Starts every client; they connect and subscribe in the background.
    pub fn start(endpoint: &Endpoint, workload: &Workload, threads: usize, source_addrs: u8) -> anyhow::Result<Self> {
        Self::start_split(std::slice::from_ref(endpoint), workload, threads, source_addrs)
    }

    /// Starts every client, client i on `endpoints[i % endpoints.len()]`
    /// (the edges of a bus deployment), each endpoint's clients on
    /// threads of their own so each one's tally is its own.
    pub fn start_split(
        endpoints: &[Endpoint],
        workload: &Workload,
        threads: usize,
        source_addrs: u8,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!endpoints.is_empty(), "no endpoint for the clients");
        let parts = endpoints.len();
        let counters = Arc::new(FleetCounters::default());
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        let mut tallies = Vec::new();
        for (part, endpoint) in endpoints.iter().enumerate() {
            let mine: Vec<usize> = (part..workload.clients).step_by(parts).collect();
            let threads = (threads / parts).clamp(1, mine.len().max(1));
            for thread in 0..threads {
                let tally = Arc::new(Mutex::new(Tally::default()));
                tallies.push((part, Arc::clone(&tally)));
                let clients: Vec<(usize, Vec<Symbol>)> = mine
                    .iter()
                    .skip(thread)
                    .step_by(threads)
                    .map(|&client| (client, workload.subscriptions(client)))
                    .collect();
                let endpoint = endpoint.clone();
                let counters = Arc::clone(&counters);
                let stopped = stopped.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("bench-clients-{part}-{thread}"))
                    .spawn(move || run_thread(endpoint, clients, source_addrs, tally, counters, stopped))?;
                handles.push(handle);
            }
        }
        Ok(Self {
            threads: handles,
            tallies,
            endpoints: parts,
            stop,
            counters,
            clients: workload.clients,
        })
    }

    /// Waits until every client is subscribed; fails on the first that could not.
    pub fn wait_ready(&self, timeout: Duration, mut progress: impl FnMut(usize)) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.counters.ready.load(Ordering::Relaxed);
            progress(ready);
            if ready == self.clients {
                return Ok(());
            }
            let failed = self.counters.failed.load(Ordering::Relaxed);
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} clients could not connect and subscribe; first error: {}",
                    self.clients,
                    self.counters.first_error().unwrap_or_default()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {ready} of {} clients subscribed within {timeout:?}",
                self.clients
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every thread's tallies so far, merged.
    pub fn snapshot(&self) -> Tally {
        self.merged(|_| true)
    }

    /// The tallies so far of the clients of endpoint `part`, merged.
    pub fn snapshot_of(&self, part: usize) -> Tally {
        self.merged(|of| of == part)
    }

    fn merged(&self, wanted: impl Fn(usize) -> bool) -> Tally {
        let mut merged = Tally::default();
        for (part, tally) in &self.tallies {
            if !wanted(*part) {
                continue;
            }
            if let Ok(tally) = tally.lock() {
                merged.merge(&tally);
            }
        }
        merged
    }

    /// Closes every client and returns the final tallies.
    pub fn stop(mut self) -> Tally {
        self.counters.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
        self.snapshot()
    }
}

/// Source addresses to spread `clients` over when none are asked for: one
/// per 10,000 clients.
pub fn default_source_addrs(clients: usize) -> u8 {
    u8::try_from(clients.div_ceil(10_000)).unwrap_or(u8::MAX)
}

/// Source address of client `client`: 127.0.0.1 to 127.0.0.K in turn, since
/// each source address has its own ~28,000 ephemeral ports towards one server port.
fn source_of(client: usize, source_addrs: u8) -> IpAddr {
    let k = usize::from(source_addrs.max(1));
    let last = u8::try_from(1 + client % k).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn run_thread(
    endpoint: Endpoint,
    clients: Vec<(usize, Vec<Symbol>)>,
    source_addrs: u8,
    tally: Arc<Mutex<Tally>>,
    counters: Arc<FleetCounters>,
    stopped: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            counters.note_error(format!("client runtime: {err}"));
            counters.failed.fetch_add(clients.len(), Ordering::Relaxed);
            return;
        }
    };
    runtime.block_on(async move {
        let connecting = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        for (client, symbols) in clients {
            let session = Session {
                endpoint: endpoint.clone(),
                symbols,
                source: source_of(client, source_addrs),
                tally: Arc::clone(&tally),
                counters: Arc::clone(&counters),
                last_seq: HashMap::new(),
            };
            let connecting = Arc::clone(&connecting);
            let stopped = stopped.clone();
            tasks.spawn(async move { session.run(connecting, stopped).await });
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// One client connection.
struct Session {
    endpoint: Endpoint,
    symbols: Vec<Symbol>,
    source: IpAddr,
    tally: Arc<Mutex<Tally>>,
    counters: Arc<FleetCounters>,
    /// The last `seq` this client got per symbol, for gaps (numbered targets only).
    last_seq: HashMap<[u8; 16], u64>,
}

impl Session {
    async fn run(mut self, connecting: Arc<Semaphore>, mut stopped: watch::Receiver<bool>) {
        let permit = connecting.acquire().await;
        let opened = self.open().await;
        drop(permit);
        let result = match opened {
            Ok(Open::WebSocket(ws, hub_stamps)) => {
                self.counters.ready.fetch_add(1, Ordering::Relaxed);
                self.read_websocket(ws, hub_stamps, &mut stopped).await
            }
            Ok(Open::Tcp(reader)) => {
                self.counters.ready.fetch_add(1, Ordering::Relaxed);
                self.read_frames(reader, &mut stopped).await
            }
            Err(err) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.counters.note_error(format!("{err:#}"));
                return;
            }
        };
        if !self.counters.stopping.load(Ordering::Relaxed) {
            self.counters.disconnected.fetch_add(1, Ordering::Relaxed);
            let reason = match result {
                Ok(()) => "the server closed the connection".to_string(),
                Err(err) => format!("{err:#}"),
            };
            self.counters.note_error(format!("disconnected: {reason}"));
        }
    }

    async fn connect(&self, addr: SocketAddr) -> anyhow::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::new(self.source, 0))
            .with_context(|| format!("binding a client to {}", self.source))?;
        let stream = socket
            .connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn subscribe_request(&self) -> String {
        let symbols: Vec<String> = self.symbols.iter().map(ToString::to_string).collect();
        serde_json::json!({"op": "subscribe", "symbols": symbols, "id": 1}).to_string()
    }

    async fn open(&self) -> anyhow::Result<Open> {
        match &self.endpoint {
            Endpoint::WebSocket {
                addr,
                url,
                api_key,
                hub_stamps,
            } => {
                let stream = self.connect(*addr).await?;
                let mut ws = WsClient::handshake(stream, url, api_key.as_deref(), READ_BUFFER, MAX_FRAME)
                    .await
                    .with_context(|| format!("WebSocket handshake with {url}"))?;
                ws.send(opcode::TEXT, self.subscribe_request().as_bytes()).await?;
                let mut payload = Vec::new();
                loop {
                    let kind = ws
                        .read_frame(&mut payload)
                        .await
                        .context("waiting for the subscribe ack")?;
                    let text = String::from_utf8_lossy(&payload);
                    match kind {
                        opcode::TEXT if text.contains(r#""type":"ack""#) => break,
                        opcode::TEXT if text.contains(r#""type":"error""#) => {
                            anyhow::bail!("subscribe refused: {text}")
                        }
                        opcode::CLOSE => anyhow::bail!("closed before the subscribe ack"),
                        _ => {}
                    }
                }
                Ok(Open::WebSocket(ws, *hub_stamps))
            }
            Endpoint::Tcp { addr } => {
                let mut stream = self.connect(*addr).await?;
                let symbols: Vec<String> = self.symbols.iter().map(ToString::to_string).collect();
                stream.write_all(format!("{}\n", symbols.join(" ")).as_bytes()).await?;
                let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
                let ack = reader.read_u32_le().await.context("waiting for the floor's ack")?;
                anyhow::ensure!(ack == 0, "the floor's first frame was not its ack");
                Ok(Open::Tcp(reader))
            }
        }
    }

    async fn read_websocket(
        &mut self,
        mut ws: WsClient,
        hub_stamps: bool,
        stopped: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut payload = Vec::new();
        loop {
            let kind = tokio::select! {
                kind = ws.read_frame(&mut payload) => kind?,
                _ = stopped.changed() => {
                    ws.close().await;
                    return Ok(());
                }
            };
            match kind {
                opcode::BINARY => self.record(&payload, hub_stamps),
                // The hub closes idle clients; a pong shows this one is alive.
                opcode::PING => ws.send(opcode::PONG, &payload).await?,
                opcode::CLOSE => return Ok(()),
                _ => {}
            }
        }
    }

    async fn read_frames(
        &mut self,
        mut reader: BufReader<TcpStream>,
        stopped: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut frame = Vec::new();
        loop {
            let length = tokio::select! {
                length = reader.read_u32_le() => length?,
                _ = stopped.changed() => return Ok(()),
            };
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            anyhow::ensure!(length <= MAX_FRAME, "a floor frame of {length} bytes");
            frame.resize(length, 0);
            reader.read_exact(&mut frame).await?;
            self.record(&frame, false);
        }
    }

    fn record(&mut self, message: &[u8], hub_stamps: bool) {
        let received = now_ns();
        // The hub's records are numbered per symbol; the floor's and the peers' are not.
        let gaps = if hub_stamps {
            super::tally::seq_gaps(message, &mut self.last_seq)
        } else {
            0
        };
        let delivered = match self.tally.lock() {
            Ok(mut tally) => {
                tally.gap_updates += gaps;
                tally.on_message(message, received, hub_stamps)
            }
            Err(_) => 0,
        };
        self.counters.updates.fetch_add(delivered, Ordering::Relaxed);
    }
}

enum Open {
    WebSocket(WsClient, bool),
    Tcp(BufReader<TcpStream>),
}
