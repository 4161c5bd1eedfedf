//! Shared pieces of the criterion benches: the sample quote and feed line, a
//! table subscriber that owns a real bounded `tokio::sync::mpsc` queue (as the
//! server's `ClientHandle` does), the server's slab encoder, and a timing
//! helper that drains the queues between timed chunks.
//!
//! Each bench file is its own crate and uses part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{QUOTE_LEN, TRADE_LEN};
use quotehub_proto::{Event, Flags, Quote, QuoteRecord, Symbol, TradeRecord};
use quotehub_table::{Start, Subscriber, Table};
use tokio::sync::mpsc;

/// A 110-byte quote line as a Polygon-style JSON-lines feed sends it.
pub const LINE: &[u8] =
    br#"{"ev":"Q","sym":"AAPL","bx":12,"bp":271.22,"bs":1100,"ax":10,"ap":271.23,"as":700,"t":1795185012481269311}"#;

/// The server's per-client queue capacity (`Config::queue_capacity`).
pub const QUEUE_CAPACITY: usize = 8_192;

/// The quote that [`LINE`] decodes to, with hub timestamps filled in.
pub fn sample_quote() -> Quote {
    Quote {
        symbol: "AAPL".parse().unwrap(),
        bid_price: "271.22".parse().unwrap(),
        bid_size: 1_100,
        ask_price: "271.23".parse().unwrap(),
        ask_size: 700,
        event_ts: 1_795_185_012_481_269_311,
        recv_ts: 1_795_185_012_481_300_000,
        seq: 312,
    }
}

/// `count` distinct symbols `S0`, `S1`, … for filling a table.
pub fn symbols(count: usize) -> Vec<Symbol> {
    (0..count).map(|i| format!("S{i}").parse().unwrap()).collect()
}

/// A subscriber shaped like the server's `ClientHandle`: a cheap clone of an
/// `Arc` holding the id and the sending half of a bounded queue, delivered to
/// with `try_send` only (never awaited). The server's handle also checks a
/// `closing` flag and bumps a relaxed counter per record; those two relaxed
/// atomics are left out.
#[derive(Clone, Debug)]
pub struct QueueClient(Arc<QueueInner>);

#[derive(Debug)]
struct QueueInner {
    id: u64,
    queue: mpsc::Sender<Bytes>,
}

impl Subscriber for QueueClient {
    fn subscriber_id(&self) -> u64 {
        self.0.id
    }
}

impl QueueClient {
    /// A client with a queue of `capacity` records, and the queue's receiving end.
    pub fn new(id: u64, capacity: usize) -> (Self, mpsc::Receiver<Bytes>) {
        let (queue, rx) = mpsc::channel(capacity);
        (Self(Arc::new(QueueInner { id, queue })), rx)
    }

    /// Another client (id `id`) whose records go to this client's queue: for
    /// filling symbols with many subscribers without a channel each.
    pub fn sharing_queue(&self, id: u64) -> Self {
        Self(Arc::new(QueueInner {
            id,
            queue: self.0.queue.clone(),
        }))
    }

    /// Queues a record without waiting; false when the queue is full or closed.
    pub fn deliver(&self, record: Bytes) -> bool {
        self.0.queue.try_send(record).is_ok()
    }
}

/// Empties every queue; returns how many records it took out.
pub fn drain(queues: &mut [mpsc::Receiver<Bytes>]) -> u64 {
    let mut taken = 0;
    for rx in queues {
        while rx.try_recv().is_ok() {
            taken += 1;
        }
    }
    taken
}

/// The server's encoder (`quotehub-server`'s `fanout::encode`): records are
/// carved out of a shared 16 KiB slab, so encoding one costs no allocation.
#[derive(Debug)]
pub struct SlabEncoder {
    slab: BytesMut,
    flags: Flags,
}

impl SlabEncoder {
    const SLAB_BYTES: usize = 16 * 1024;

    pub fn new(flags: Flags) -> Self {
        Self {
            slab: BytesMut::with_capacity(Self::SLAB_BYTES),
            flags,
        }
    }

    pub fn encode(&mut self, event: &Event) -> Bytes {
        if self.slab.capacity() < QUOTE_LEN.max(TRADE_LEN) {
            self.slab = BytesMut::with_capacity(Self::SLAB_BYTES);
        }
        match event {
            Event::Quote(quote) => self.slab.extend_from_slice(
                &QuoteRecord {
                    quote: *quote,
                    flags: self.flags,
                    conflated: 0,
                }
                .encode(),
            ),
            Event::Trade(trade) => self.slab.extend_from_slice(
                &TradeRecord {
                    trade: *trade,
                    flags: self.flags,
                    conflated: 0,
                }
                .encode(),
            ),
            _ => {}
        }
        self.slab.split().freeze()
    }
}

/// A table of `others` symbols that have each published one quote, as a hub
/// carries after a while: lookups and publishes then probe a populated map.
pub fn populated_table<S: Subscriber>(others: &[Symbol]) -> Table<S> {
    let table = Table::new();
    let mut encoder = SlabEncoder::new(Flags::default());
    for &symbol in others {
        let mut event = Event::Quote(Quote {
            symbol,
            ..sample_quote()
        });
        drop(table.publish(&mut event, |event| encoder.encode(event)));
    }
    table
}

/// Subscribes `count` queue clients (ids from `first_id`) to `symbol`, their
/// snapshots delivered into their queues; returns the receivers.
pub fn subscribe_clients(
    table: &Table<QueueClient>,
    symbol: Symbol,
    first_id: u64,
    count: u64,
) -> Vec<mpsc::Receiver<Bytes>> {
    (first_id..first_id + count)
        .map(|id| {
            let (client, rx) = QueueClient::new(id, QUEUE_CAPACITY);
            table.subscribe(symbol, &client, Start::Snapshot, |record| {
                client.deliver(record);
            });
            rx
        })
        .collect()
}

/// Times `iters` runs of `step`, in chunks of at most `chunk` runs, calling
/// `between` untimed after each chunk (to drain queues, undo subscriptions…).
/// Two clock reads per chunk are the only timing overhead.
pub fn timed_in_chunks(iters: u64, chunk: u64, mut step: impl FnMut(), between: impl FnMut(u64)) -> Duration {
    timed_batches(
        iters,
        chunk,
        |n| {
            for _ in 0..n {
                step();
            }
        },
        between,
    )
}

/// Times `iters` iterations as batches of at most `batch`, each one call of
/// `run(n)` doing `n` iterations (and whatever ends a batch, such as a
/// flush), calling `between` untimed after each.
pub fn timed_batches(iters: u64, batch: u64, mut run: impl FnMut(u64), mut between: impl FnMut(u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch);
        let start = Instant::now();
        run(n);
        total += start.elapsed();
        between(n);
        left -= n;
    }
    total
}
