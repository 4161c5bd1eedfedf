//! The ingest publisher against a real nats-server, through a proxy that
//! loses exactly one publish: record k of a symbol never reaches the
//! stream while k+1.. of the same symbol do. Its ack times out, and the
//! publisher must not send it again behind the later records (readers would
//! see the symbol's numbers go back): the stream keeps a gap at k, in
//! order, and the record is counted as not re-sent (`overtaken.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::nats::NatsServer;
use common::quote_record as record;
use common::{sym, within};
use quotehub_bus::message_id;
use quotehub_bus::{Bus, IngestPublisher, IngestSettings, StreamSettings};
use quotehub_proto::Epoch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

fn epoch() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap()
}

/// nats-server's own limit on a control line (`max_control_line`, 4 KiB).
const MAX_CONTROL_LINE: usize = 4096;
/// nats-server's default `max_payload` (1 MiB): headers and body together.
const MAX_PAYLOAD: usize = 1 << 20;
/// The most one client→server operation takes, `\r\n`s included: the most
/// the proxy holds of a connection's bytes before it has forwarded them.
const MAX_OPERATION: usize = MAX_CONTROL_LINE + 2 + MAX_PAYLOAD + 2;
/// The most read from the client in one go.
const READ_CHUNK: usize = 64 << 10;

/// One complete client→server operation at the head of a buffer.
struct Operation {
    /// Its bytes, control line, payload and `\r\n`s included.
    len: usize,
    /// Where its headers are, for an `HPUB`.
    headers: Option<Range<usize>>,
}

/// The operation at the head of `buf`: `Ok(None)` while it is incomplete,
/// `Err` for one a nats-server would refuse (too long, sizes that are not
/// numbers, a payload not followed by `\r\n`).
fn next_operation(buf: &[u8]) -> Result<Option<Operation>, String> {
    let window = &buf[..buf.len().min(MAX_CONTROL_LINE + 2)];
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        if window.len() > MAX_CONTROL_LINE + 1 {
            return Err(format!("control line longer than {MAX_CONTROL_LINE} bytes"));
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| "control line not UTF-8".to_owned())?;
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let size = |word: Option<&&str>| -> Result<usize, String> {
        word.and_then(|word| word.parse().ok())
            .ok_or_else(|| format!("bad size in {line:?}"))
    };
    let (header_len, total_len) = match words.first().map(|verb| verb.to_ascii_uppercase()).as_deref() {
        Some("PUB") => (0, size(words.last())?),
        Some("HPUB") => (size(words.iter().rev().nth(1))?, size(words.last())?),
        // CONNECT, SUB, UNSUB, PING, PONG: a line and nothing more.
        _ => {
            return Ok(Some(Operation {
                len: end + 2,
                headers: None,
            }));
        }
    };
    if total_len > MAX_PAYLOAD || header_len > total_len {
        return Err(format!("sizes out of bounds in {line:?}"));
    }
    let body = end + 2;
    let len = body + total_len + 2;
    if buf.len() < len {
        return Ok(None);
    }
    if &buf[len - 2..len] != b"\r\n" {
        return Err(format!("payload of {line:?} not followed by CRLF"));
    }
    let headers = (header_len > 0).then(|| body..body + header_len);
    Ok(Some(Operation { len, headers }))
}

/// Whether a header block (`NATS/1.0\r\nName: value\r\n...`) carries the
/// message id `id`.
fn carries_id(headers: &[u8], id: &str) -> bool {
    let Ok(text) = std::str::from_utf8(headers) else {
        return false;
    };
    text.split("\r\n").skip(1).any(|line| {
        line.split_once(':')
            .is_some_and(|(name, value)| name.trim().eq_ignore_ascii_case(message_id::HEADER) && value.trim() == id)
    })
}

/// A NATS-protocol-aware TCP proxy in front of one nats-server: it
/// forwards everything, but the first publish carrying one message id
/// never reaches the server (as if lost with a connection that broke, while
/// the connection itself stays up).
struct LosingProxy {
    /// `nats://127.0.0.1:PORT` of the proxy.
    url: String,
    /// Publishes carrying the id seen so far: the first was dropped, the
    /// others forwarded.
    seen: Arc<AtomicU64>,
    /// Client connections cut for bytes a nats-server would refuse.
    refused: Arc<AtomicU64>,
}

impl LosingProxy {
    async fn start(server: &str, lost_id: String) -> Self {
        let server: std::net::SocketAddr = server.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let lost_id = Arc::new(lost_id);
        let (counts, refusals) = (Arc::clone(&seen), Arc::clone(&refused));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (lost_id, seen, refused) = (Arc::clone(&lost_id), Arc::clone(&counts), Arc::clone(&refusals));
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(server).await else {
                        return;
                    };
                    let (from_client, mut to_client) = inbound.into_split();
                    let (mut from_server, mut to_server) = outbound.into_split();
                    let upstream = async {
                        if let Err(error) = client_to_server(from_client, &mut to_server, &lost_id, &seen).await {
                            eprintln!("proxy: cutting a client connection: {error}");
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    };
                    // Either direction ending ends the connection (both
                    // halves dropped), as a broken TCP connection would.
                    tokio::select! {
                        () = upstream => {}
                        _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
                    }
                });
            }
        });
        Self { url, seen, refused }
    }
}

/// Copies the client's operations to the server one by one, leaving out
/// the first publish that carries `lost_id`; holds at most
/// [`MAX_OPERATION`] bytes (reads stop at it, and a complete operation is
/// forwarded before the next read).
async fn client_to_server(
    mut from: OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    lost_id: &str,
    seen: &AtomicU64,
) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        let mut at = 0;
        while let Some(operation) = next_operation(&buf[at..])? {
            let bytes = &buf[at..at + operation.len];
            let lost = operation
                .headers
                .is_some_and(|headers| carries_id(&bytes[headers], lost_id))
                && seen.fetch_add(1, Ordering::Relaxed) == 0;
            if !lost {
                to.write_all(bytes).await.map_err(|error| error.to_string())?;
            }
            at += operation.len;
        }
        buf.drain(..at);
        // What is left is one incomplete operation, which next_operation
        // has checked fits in MAX_OPERATION.
        assert!(buf.len() < MAX_OPERATION, "the proxy's buffer is bounded");
        let start = buf.len();
        buf.resize(start + READ_CHUNK.min(MAX_OPERATION - start), 0);
        let read = from.read(&mut buf[start..]).await.map_err(|error| error.to_string())?;
        buf.truncate(start + read);
        if read == 0 {
            return Ok(());
        }
    }
}

#[test]
fn the_proxy_splits_the_client_stream_into_operations_and_bounds_them() {
    // TC0: lines without a payload.
    let op = next_operation(b"PING\r\nPONG\r\n").unwrap().unwrap();
    assert_eq!((op.len, op.headers), (6, None));
    // TC1: a PUB with a reply subject, complete and incomplete.
    let publish = b"PUB a.b _INBOX.1 5\r\nhello\r\n";
    assert_eq!(next_operation(publish).unwrap().unwrap().len, publish.len());
    assert!(next_operation(&publish[..publish.len() - 1]).unwrap().is_none());
    // TC2: an HPUB: headers found, and the id matched exactly.
    let hpub = b"HPUB a.b _INBOX.2 32 34\r\nNATS/1.0\r\nNats-Msg-Id: A:e:4\r\n\r\nhi\r\n";
    let op = next_operation(hpub).unwrap().unwrap();
    assert_eq!(op.len, hpub.len());
    let headers = &hpub[op.headers.unwrap()];
    assert!(carries_id(headers, "A:e:4"));
    assert!(!carries_id(headers, "A:e:40"));
    assert!(!carries_id(headers, "A:e:"));
    // TC3: what a nats-server would refuse is an error, not a bigger buffer.
    assert!(next_operation(&[b'x'; MAX_CONTROL_LINE + 2]).is_err());
    assert!(next_operation(format!("PUB a {}\r\n", MAX_PAYLOAD + 1).as_bytes()).is_err());
    assert!(next_operation(b"HPUB a 9 5\r\n").is_err());
    assert!(next_operation(b"PUB a x\r\n").is_err());
    assert!(next_operation(b"PUB a 2\r\nhiXX").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_record_overtaken_by_later_ones_of_its_symbol_is_not_re_sent() {
    const SYMBOL: &str = "MSFT";
    const N: u64 = 10;
    const LOST: u64 = 4;
    let Some(server) = NatsServer::start("bus_overtaken").await else {
        return;
    };
    // The stream is made, and read back, on a connection of its own.
    let direct = within(Bus::connect(&server.url())).await.unwrap();
    let settings = StreamSettings::new(100);
    within(settings.ensure(direct.jetstream())).await.unwrap();

    let lost_id = IngestPublisher::message_id(&sym(SYMBOL), epoch(), LOST);
    let proxy = LosingProxy::start(&format!("127.0.0.1:{}", server.port), lost_id).await;
    let through_proxy = within(Bus::connect(&proxy.url)).await.unwrap();
    let publisher = IngestPublisher::start(&through_proxy, settings.subjects.clone(), IngestSettings::default());
    for seq in 1..=N {
        assert!(publisher.publish(&sym(SYMBOL), epoch(), seq, record(SYMBOL, seq)));
    }
    // Record LOST's ack never comes (the server never saw it): it times
    // out, the publisher looks at the stream, and settles it one way or
    // the other; flush returns once nothing is queued or in flight.
    within(publisher.flush()).await;

    // The stream, message by message in the order it stored them: every
    // record but LOST, in order, byte for byte; nothing after N.
    let mut stream = within(direct.jetstream().get_stream(&settings.name)).await.unwrap();
    let stored = within(stream.info()).await.unwrap().state.messages;
    let mut ids = Vec::new();
    for position in 1..=stored {
        let message = within(stream.get_raw_message(position)).await.unwrap();
        let id = message.headers.get(message_id::HEADER).unwrap().as_str().to_owned();
        let seq: u64 = id.rsplit_once(':').unwrap().1.parse().unwrap();
        assert_eq!(message.payload, record(SYMBOL, seq), "stored record {id}");
        ids.push(id);
    }
    let expected: Vec<String> = (1..=N)
        .filter(|&seq| seq != LOST)
        .map(|seq| IngestPublisher::message_id(&sym(SYMBOL), epoch(), seq))
        .collect();
    assert_eq!(
        ids,
        expected,
        "the stream holds 1..={}, {}..={N} in order, and no {LOST} behind them",
        LOST - 1,
        LOST + 1
    );

    let counters = publisher.counters();
    assert_eq!(
        proxy.seen.load(Ordering::Relaxed),
        1,
        "record {LOST} was sent once (and lost), never again: {counters:?}"
    );
    assert_eq!(proxy.refused.load(Ordering::Relaxed), 0, "the client spoke plain NATS");
    assert_eq!(counters.retries, 1, "one ack failed: {counters:?}");
    assert_eq!(counters.not_resent, 1, "{counters:?}");
    assert_eq!(counters.published, N - 1, "{counters:?}");
    assert_eq!(counters.duplicates, 0, "{counters:?}");
    assert_eq!(counters.dropped, 0, "{counters:?}");
    assert_eq!(counters.buffered_bytes, 0, "{counters:?}");
}
