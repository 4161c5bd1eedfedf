//! The raw-TCP fan-out floor (`quotehub-bench floor`, run by the load test
//! as its own process): the same 72-byte quote records to the same clients,
//! with no WebSocket, no table beyond symbol → clients and no policy beyond
//! a bounded pending buffer, only what fan-out cannot avoid. It shares work
//! as the hub does, so that it bounds any design that moves the same bytes
//! (a floor that copies per client is one a product can pass):
//!
//! - clients with the same subscription set form a group; per feed read,
//!   each group with records gets one body (frame length, message header,
//!   records), built once and handed to its clients by reference;
//! - each client's writer takes every body pending and writes them with
//!   one vectored write, one wake-up per batch;
//! - a client's pending bodies are bounded in bytes ([`MAX_PENDING_BYTES`]);
//!   a body that would pass the bound is skipped for that client (counted),
//!   as uWebSockets skips publishes to a socket past its backpressure limit.
//!
//! Clients send one line of space-separated symbols, get an empty frame as
//! the ack, then frames of a u32 little-endian length and a message (the
//! hub's 16-byte message header followed by records). On exit (the feed
//! closes, or SIGTERM) the floor writes one line to stderr with what it
//! built, queued and wrote ([`Sharing`]); the bench reads it from the log.

use std::collections::HashMap;
use std::io::{IoSlice, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use quotehub_proto::record::{MESSAGE_HEADER_LEN, QUOTE_LEN};
use quotehub_proto::{MessageHeader, now_ns};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::cli::FloorArgs;

/// Longest subscription line a client may send.
const MAX_LINE: usize = 1024 * 1024;
/// Most bytes of bodies a client may have pending (not yet taken by its
/// writer): of the order of the hub's per-client queue (8,192 records, about
/// 0.6 MB) with room for bursts. A client holds at most this plus the batch
/// its writer is writing.
pub const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;
/// Bodies per vectored write (Linux takes up to 1,024 slices).
const MAX_SLICES: usize = 512;
/// How the floor's exit line starts.
const SHARING_LINE: &str = "floor sharing: ";
/// The frame's length prefix.
const PREFIX_LEN: usize = 4;

/// One frame as the clients get it, shared by every client of a group.
type Body = Arc<Vec<u8>>;

/// What the floor built, queued and wrote, over its life.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sharing {
    /// Bodies built: one per group with records, per feed read.
    pub bodies: u64,
    /// Bytes of those bodies (length prefix, message header, records).
    pub body_bytes: u64,
    /// Bytes queued to clients: each body once per client it went to.
    pub queued_bytes: u64,
    /// Bytes written to client sockets.
    pub written_bytes: u64,
    /// Bytes not queued because a client was at [`MAX_PENDING_BYTES`].
    pub skipped_bytes: u64,
}

impl Sharing {
    pub fn add(&mut self, other: &Sharing) {
        self.bodies += other.bodies;
        self.body_bytes += other.body_bytes;
        self.queued_bytes += other.queued_bytes;
        self.written_bytes += other.written_bytes;
        self.skipped_bytes += other.skipped_bytes;
    }

    /// The floor's exit line in its log, if it wrote one.
    pub fn from_log(log: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(log).ok()?;
        let line = text.lines().rev().find_map(|line| line.strip_prefix(SHARING_LINE))?;
        serde_json::from_str(line).ok()
    }

    /// One sentence for the report.
    pub fn describe(&self) -> String {
        format!(
            "built {} bodies of {} bytes in all and queued {} bytes from them ({:.1}× shared); wrote {} bytes; \
             skipped {} bytes at the {} MiB pending bound",
            self.bodies,
            self.body_bytes,
            self.queued_bytes,
            self.queued_bytes as f64 / self.body_bytes.max(1) as f64,
            self.written_bytes,
            self.skipped_bytes,
            MAX_PENDING_BYTES / (1024 * 1024)
        )
    }
}

/// The floor's counters, shared by the feed thread and the writers.
#[derive(Debug, Default)]
struct Counters {
    bodies: AtomicU64,
    body_bytes: AtomicU64,
    queued_bytes: AtomicU64,
    written_bytes: AtomicU64,
    skipped_bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Sharing {
        Sharing {
            bodies: self.bodies.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            written_bytes: self.written_bytes.load(Ordering::Relaxed),
            skipped_bytes: self.skipped_bytes.load(Ordering::Relaxed),
        }
    }
}

/// One client's pending bodies and the wake-up of its writer.
#[derive(Debug, Default)]
struct Outbox {
    pending: Mutex<Pending>,
    ready: Notify,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    bodies: Vec<Body>,
    /// Bytes of `bodies`, held under [`MAX_PENDING_BYTES`].
    bytes: usize,
}

/// Who gets which records: clients grouped by subscription set.
#[derive(Debug, Default)]
struct Table {
    /// Each distinct subscription set's clients; a group's index never changes.
    groups: Vec<Vec<Arc<Outbox>>>,
    /// Symbol → the groups whose set holds it.
    by_symbol: HashMap<[u8; 16], Vec<usize>>,
    /// Sorted symbol set → its group.
    by_set: HashMap<Vec<[u8; 16]>, usize>,
}

impl Table {
    fn join(&mut self, mut symbols: Vec<[u8; 16]>, outbox: Arc<Outbox>) {
        symbols.sort_unstable();
        symbols.dedup();
        let group = match self.by_set.get(&symbols) {
            Some(&group) => group,
            None => {
                let group = self.groups.len();
                self.groups.push(Vec::new());
                for symbol in &symbols {
                    self.by_symbol.entry(*symbol).or_default().push(group);
                }
                self.by_set.insert(symbols, group);
                group
            }
        };
        self.groups[group].push(outbox);
    }

    fn leave(&mut self, outbox: &Arc<Outbox>) {
        for members in &mut self.groups {
            members.retain(|other| !Arc::ptr_eq(other, outbox));
        }
    }
}

/// The feed thread's work between two reads: one body being built per group.
#[derive(Debug, Default)]
struct Batcher {
    /// Indexed by group; empty when the group has no records in this batch.
    bodies: Vec<Vec<u8>>,
    /// Groups with a body in this batch, in order.
    touched: Vec<usize>,
}

impl Batcher {
    /// Appends one record to the body of every group subscribed to its symbol.
    fn add(&mut self, table: &Table, record: &[u8]) {
        let mut symbol = [0u8; 16];
        symbol.copy_from_slice(&record[8..24]);
        for &group in table.by_symbol.get(&symbol).into_iter().flatten() {
            if table.groups[group].is_empty() {
                continue;
            }
            if group >= self.bodies.len() {
                self.bodies.resize_with(group + 1, Vec::new);
            }
            let body = &mut self.bodies[group];
            if body.is_empty() {
                self.touched.push(group);
                // Room for the length and the header, filled in at `finish`.
                body.resize(PREFIX_LEN + MESSAGE_HEADER_LEN, 0);
            }
            body.extend_from_slice(record);
        }
    }

    /// Closes the batch: each group's body, built once, goes to each of its
    /// clients by reference.
    fn finish(&mut self, table: &Table, counters: &Counters) {
        if self.touched.is_empty() {
            return;
        }
        let header = MessageHeader::encode(now_ns());
        let (mut bodies, mut body_bytes, mut queued, mut skipped) = (0, 0, 0, 0);
        for group in self.touched.drain(..) {
            let capacity = self.bodies[group].capacity();
            let mut body = std::mem::replace(&mut self.bodies[group], Vec::with_capacity(capacity));
            let length = u32::try_from(body.len() - PREFIX_LEN).unwrap_or(u32::MAX);
            body[..PREFIX_LEN].copy_from_slice(&length.to_le_bytes());
            body[PREFIX_LEN..PREFIX_LEN + MESSAGE_HEADER_LEN].copy_from_slice(&header);
            let body = Arc::new(body);
            bodies += 1;
            body_bytes += body.len() as u64;
            for outbox in &table.groups[group] {
                match deliver(outbox, &body) {
                    Delivery::Queued => queued += body.len() as u64,
                    Delivery::Skipped => skipped += body.len() as u64,
                    Delivery::Closed => {}
                }
            }
        }
        counters.bodies.fetch_add(bodies, Ordering::Relaxed);
        counters.body_bytes.fetch_add(body_bytes, Ordering::Relaxed);
        counters.queued_bytes.fetch_add(queued, Ordering::Relaxed);
        counters.skipped_bytes.fetch_add(skipped, Ordering::Relaxed);
    }
}

enum Delivery {
    Queued,
    /// The client was at its pending bound.
    Skipped,
    Closed,
}

fn deliver(outbox: &Outbox, body: &Body) -> Delivery {
    if outbox.closed.load(Ordering::Relaxed) {
        return Delivery::Closed;
    }
    let Ok(mut pending) = outbox.pending.lock() else {
        return Delivery::Closed;
    };
    if pending.bytes + body.len() > MAX_PENDING_BYTES {
        return Delivery::Skipped;
    }
    let was_empty = pending.bodies.is_empty();
    pending.bodies.push(Arc::clone(body));
    pending.bytes += body.len();
    drop(pending);
    // A non-empty outbox already has a wake-up on its way.
    if was_empty {
        outbox.ready.notify_one();
    }
    Delivery::Queued
}

pub fn run(args: FloorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(TcpListener::bind(args.listen))
        .with_context(|| format!("floor: listening on {}", args.listen))?;
    let table: Arc<RwLock<Table>> = Arc::default();
    let counters: Arc<Counters> = Arc::default();
    let feed = std::net::TcpStream::connect(args.feed)
        .with_context(|| format!("floor: connecting to the feed at {}", args.feed))?;
    // The bench reads this line to learn where the clients go.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening {}", listener.local_addr()?)?;
    stdout.flush()?;
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    {
        let table = Arc::clone(&table);
        let counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("floor-feed".into())
            .spawn(move || ended_tx.send(forward(feed, &table, &counters)))?;
    }
    runtime.spawn(accept(listener, table, Arc::clone(&counters)));
    // The floor lives as long as its feed (the bench closes it) or until
    // SIGTERM (the bench's stop); either way it says what it shared.
    let ended = runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            ended = ended => Ok::<_, std::io::Error>(Some(ended)),
            _ = terminate.recv() => Ok(None),
        }
    })?;
    eprintln!("{SHARING_LINE}{}", serde_json::to_string(&counters.snapshot())?);
    runtime.shutdown_background();
    match ended {
        None => Ok(()),
        Some(Ok(result)) => result,
        Some(Err(_)) => anyhow::bail!("floor: the feed thread panicked"),
    }
}

/// Reads records from the feed; each read is one batch.
fn forward(mut feed: std::net::TcpStream, table: &RwLock<Table>, counters: &Counters) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut filled = 0;
    let mut batcher = Batcher::default();
    loop {
        let read = std::io::Read::read(&mut feed, &mut buffer[filled..])?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        let whole = filled - filled % QUOTE_LEN;
        if let Ok(table) = table.read() {
            for record in buffer[..whole].chunks_exact(QUOTE_LEN) {
                batcher.add(&table, record);
            }
            batcher.finish(&table, counters);
        }
        buffer.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

async fn accept(listener: TcpListener, table: Arc<RwLock<Table>>, counters: Arc<Counters>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&table), Arc::clone(&counters)));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

async fn serve(stream: TcpStream, table: Arc<RwLock<Table>>, counters: Arc<Counters>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::with_capacity(4096, stream);
    let mut line = Vec::new();
    match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
        Ok(n) if n > 0 => {}
        _ => return,
    }
    let outbox = Arc::new(Outbox::default());
    let symbols = String::from_utf8_lossy(&line)
        .split_whitespace()
        .map(|name| {
            let mut symbol = [0u8; 16];
            let bytes = name.as_bytes();
            let n = bytes.len().min(16);
            symbol[..n].copy_from_slice(&bytes[..n]);
            symbol
        })
        .collect();
    if let Ok(mut table) = table.write() {
        table.join(symbols, Arc::clone(&outbox));
    }
    let mut stream = reader.into_inner();
    if stream.write_all(&0u32.to_le_bytes()).await.is_ok() {
        let _ = write_batches(&mut stream, &outbox, &counters).await;
    }
    outbox.closed.store(true, Ordering::Relaxed);
    if let Ok(mut table) = table.write() {
        table.leave(&outbox);
    }
}

/// Takes every body pending and writes them with vectored writes, one
/// wake-up per batch.
async fn write_batches(stream: &mut TcpStream, outbox: &Outbox, counters: &Counters) -> std::io::Result<()> {
    let mut taken: Vec<Body> = Vec::with_capacity(64);
    loop {
        outbox.ready.notified().await;
        if let Ok(mut pending) = outbox.pending.lock() {
            std::mem::swap(&mut pending.bodies, &mut taken);
            pending.bytes = 0;
        }
        for chunk in taken.chunks(MAX_SLICES) {
            let mut slices: Vec<IoSlice<'_>> = chunk.iter().map(|body| IoSlice::new(body)).collect();
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let written = stream.write_vectored(rest).await?;
                if written == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                counters.written_bytes.fetch_add(written as u64, Ordering::Relaxed);
                IoSlice::advance_slices(&mut rest, written);
            }
        }
        taken.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(name: &str) -> [u8; 16] {
        let mut symbol = [0u8; 16];
        symbol[..name.len()].copy_from_slice(name.as_bytes());
        symbol
    }

    fn record(name: &str) -> Vec<u8> {
        let mut record = vec![0u8; QUOTE_LEN];
        record[8..24].copy_from_slice(&symbol(name));
        record
    }

    fn taken(outbox: &Outbox) -> Vec<Body> {
        std::mem::take(&mut outbox.pending.lock().unwrap().bodies)
    }

    #[test]
    fn clients_with_one_subscription_set_share_one_body_per_batch() {
        let mut table = Table::default();
        let same: Vec<Arc<Outbox>> = (0..3).map(|_| Arc::new(Outbox::default())).collect();
        for outbox in &same {
            // The same set, named in another order.
            table.join(vec![symbol("MSFT"), symbol("AAPL")], Arc::clone(outbox));
        }
        let other = Arc::new(Outbox::default());
        table.join(vec![symbol("AAPL")], Arc::clone(&other));
        let counters = Counters::default();
        let mut batcher = Batcher::default();
        for name in ["AAPL", "MSFT", "IBM", "AAPL"] {
            batcher.add(&table, &record(name));
        }
        batcher.finish(&table, &counters);

        let bodies: Vec<Vec<Body>> = same.iter().map(|outbox| taken(outbox)).collect();
        assert!(bodies.iter().all(|b| b.len() == 1), "one body per client per batch");
        assert!(Arc::ptr_eq(&bodies[0][0], &bodies[1][0]) && Arc::ptr_eq(&bodies[0][0], &bodies[2][0]));
        let body = &bodies[0][0];
        let framed = PREFIX_LEN + MESSAGE_HEADER_LEN + 3 * QUOTE_LEN;
        assert_eq!(body.len(), framed, "AAPL, MSFT, AAPL");
        assert_eq!(body[..4], ((framed - PREFIX_LEN) as u32).to_le_bytes());
        let alone = taken(&other);
        assert_eq!(alone[0].len(), PREFIX_LEN + MESSAGE_HEADER_LEN + 2 * QUOTE_LEN);
        let sharing = counters.snapshot();
        assert_eq!(sharing.bodies, 2, "one body per distinct set");
        assert_eq!(sharing.body_bytes, (framed + alone[0].len()) as u64);
        assert_eq!(sharing.queued_bytes, (3 * framed + alone[0].len()) as u64);
    }

    #[test]
    fn a_client_at_its_pending_bound_is_skipped_not_grown() {
        let mut table = Table::default();
        let stalled = Arc::new(Outbox::default());
        table.join(vec![symbol("AAPL")], Arc::clone(&stalled));
        let counters = Counters::default();
        let mut batcher = Batcher::default();
        let batch = PREFIX_LEN + MESSAGE_HEADER_LEN + 100 * QUOTE_LEN;
        let batches = MAX_PENDING_BYTES / batch + 5;
        for _ in 0..batches {
            for _ in 0..100 {
                batcher.add(&table, &record("AAPL"));
            }
            batcher.finish(&table, &counters);
        }
        let pending = stalled.pending.lock().unwrap();
        assert!(pending.bytes <= MAX_PENDING_BYTES);
        assert_eq!(pending.bytes, pending.bodies.iter().map(|b| b.len()).sum::<usize>());
        let sharing = counters.snapshot();
        assert_eq!(sharing.queued_bytes, pending.bytes as u64);
        assert_eq!(sharing.skipped_bytes, ((batches - pending.bodies.len()) * batch) as u64);
        assert!(sharing.skipped_bytes > 0);
    }

    #[test]
    fn the_exit_line_reads_back() {
        let sharing = Sharing {
            bodies: 2,
            body_bytes: 300,
            queued_bytes: 900,
            written_bytes: 900,
            skipped_bytes: 0,
        };
        let dir = std::env::temp_dir().join(format!("quotehub-floor-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("floor.log");
        let line = format!("{SHARING_LINE}{}\n", serde_json::to_string(&sharing).unwrap());
        std::fs::write(&log, format!("noise\n{line}")).unwrap();
        assert_eq!(Sharing::from_log(&log), Some(sharing));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
