//! The raw-TCP fan-out floor (`quotehub-bench floor`, run by the load test
//! as its own process): the same 72-byte quote records to the same clients,
//! with no WebSocket, no table and no policy, only what fan-out cannot avoid:
//! a per-client buffer, one wake-up, and one write per batch.
//!
//! Clients send one line of space-separated symbols, get an empty frame as
//! the ack, then frames of a u32 little-endian length and a message (the
//! hub's 16-byte message header followed by records).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One client's pending bytes and the wake-up of its writer.
#[derive(Debug, Default)]
struct Outbox {
    pending: Mutex<Vec<u8>>,
    ready: Notify,
    closed: AtomicBool,
}

type Subscribers = RwLock<HashMap<[u8; 16], Vec<Arc<Outbox>>>>;

pub fn run(args: FloorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(TcpListener::bind(args.listen))
        .with_context(|| format!("floor: listening on {}", args.listen))?;
    let subscribers: Arc<Subscribers> = Arc::default();
    let feed = std::net::TcpStream::connect(args.feed)
        .with_context(|| format!("floor: connecting to the feed at {}", args.feed))?;
    // The bench reads this line to learn where the clients go.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening {}", listener.local_addr()?)?;
    stdout.flush()?;
    let fan_out = Arc::clone(&subscribers);
    let feed_thread = std::thread::Builder::new()
        .name("floor-feed".into())
        .spawn(move || forward(feed, &fan_out))?;
    runtime.spawn(accept(listener, subscribers));
    // The floor lives as long as its feed: the bench ends it by closing the feed.
    let ended = feed_thread.join();
    runtime.shutdown_background();
    match ended {
        Ok(result) => result,
        Err(_) => anyhow::bail!("floor: the feed thread panicked"),
    }
}

/// Reads records from the feed and appends each to its subscribers' outboxes.
fn forward(mut feed: std::net::TcpStream, subscribers: &Subscribers) -> anyhow::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut filled = 0;
    loop {
        let read = std::io::Read::read(&mut feed, &mut buffer[filled..])?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        let whole = filled - filled % QUOTE_LEN;
        if let Ok(subscribers) = subscribers.read() {
            for record in buffer[..whole].chunks_exact(QUOTE_LEN) {
                let mut symbol = [0u8; 16];
                symbol.copy_from_slice(&record[8..24]);
                for outbox in subscribers.get(&symbol).into_iter().flatten() {
                    deliver(outbox, record);
                }
            }
        }
        buffer.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

fn deliver(outbox: &Outbox, record: &[u8]) {
    if outbox.closed.load(Ordering::Relaxed) {
        return;
    }
    let Ok(mut pending) = outbox.pending.lock() else {
        return;
    };
    let was_empty = pending.is_empty();
    pending.extend_from_slice(record);
    drop(pending);
    // A non-empty outbox already has a wake-up on its way.
    if was_empty {
        outbox.ready.notify_one();
    }
}

async fn accept(listener: TcpListener, subscribers: Arc<Subscribers>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&subscribers)));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

async fn serve(stream: TcpStream, subscribers: Arc<Subscribers>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::with_capacity(4096, stream);
    let mut line = Vec::new();
    match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
        Ok(n) if n > 0 => {}
        _ => return,
    }
    let outbox = Arc::new(Outbox::default());
    if let Ok(mut map) = subscribers.write() {
        for name in String::from_utf8_lossy(&line).split_whitespace() {
            let mut symbol = [0u8; 16];
            let bytes = name.as_bytes();
            let n = bytes.len().min(16);
            symbol[..n].copy_from_slice(&bytes[..n]);
            map.entry(symbol).or_default().push(Arc::clone(&outbox));
        }
    }
    let mut stream = reader.into_inner();
    if stream.write_all(&0u32.to_le_bytes()).await.is_ok() {
        let _ = write_batches(&mut stream, &outbox).await;
    }
    outbox.closed.store(true, Ordering::Relaxed);
    if let Ok(mut map) = subscribers.write() {
        for list in map.values_mut() {
            list.retain(|other| !Arc::ptr_eq(other, &outbox));
        }
    }
}

/// Takes everything pending and writes it as one frame, one write per batch.
async fn write_batches(stream: &mut TcpStream, outbox: &Outbox) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(64 * 1024);
    let mut taken = Vec::with_capacity(64 * 1024);
    loop {
        outbox.ready.notified().await;
        if let Ok(mut pending) = outbox.pending.lock() {
            std::mem::swap(&mut *pending, &mut taken);
        }
        if taken.is_empty() {
            continue;
        }
        let length = u32::try_from(MESSAGE_HEADER_LEN + taken.len()).unwrap_or(u32::MAX);
        frame.clear();
        frame.extend_from_slice(&length.to_le_bytes());
        frame.extend_from_slice(&MessageHeader::encode(now_ns()));
        frame.extend_from_slice(&taken);
        taken.clear();
        stream.write_all(&frame).await?;
    }
}
