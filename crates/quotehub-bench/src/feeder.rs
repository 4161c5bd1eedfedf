//! The open-loop feed: it listens, the target connects to it, and it writes
//! quotes at a fixed rate whatever the target does.
//!
//! Each quote's event time is its *intended* send time (start + k / rate),
//! so a target that stalls the feed (TCP back-pressure) or its clients
//! cannot hide the stall: every quote's latency is counted from when it was
//! due, not from when it finally went out (no coordinated omission).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use quotehub_proto::now_ns;

use super::workload::{Workload, binary_record, json_line, quote};

/// How quotes are written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// JSON lines, as `serve --feed tcp://` reads them (the hub, the peer).
    JsonLines,
    /// The 72-byte binary records themselves (the floor only forwards).
    Records,
}

/// One measured phase of the feed.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// 1-based; written into every measured quote (0 marks warm-up).
    pub number: u32,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What the feed did in one phase.
#[derive(Debug, Clone, Copy)]
pub struct PhaseFeed {
    /// Quotes written in the phase's measured part.
    pub measured: u64,
    /// Quotes written since the feed began, warm-ups included.
    pub published_total: u64,
    /// Intended times (ns since the epoch) bounding the measured part.
    pub measure_start_ns: u64,
    pub measure_end_ns: u64,
    /// The longest the feed ran behind its schedule (back-pressure from the target).
    pub max_behind: Duration,
    /// Quotes per write over the phase, warm-up included (the write gap
    /// sets the least, when quotes come faster than the gap).
    pub quotes_per_write: f64,
}

#[derive(Debug)]
pub struct Feeder {
    listener: TcpListener,
    stream: Option<TcpStream>,
    format: FeedFormat,
    workload: Workload,
    /// Quotes written so far (read by the progress line).
    pub published: Arc<AtomicU64>,
    buffer: Vec<u8>,
    /// The least time between two writes (see `BenchArgs::feed_write_gap_us`).
    write_gap: Duration,
}

impl Feeder {
    /// A feed on `addr` that writes at most once per `write_gap`, each write
    /// carrying every quote due by then.
    pub fn listen(
        addr: SocketAddr,
        format: FeedFormat,
        workload: Workload,
        write_gap: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).with_context(|| format!("bench feed: listening on {addr}"))?;
        Ok(Self {
            listener,
            stream: None,
            format,
            workload,
            published: Arc::new(AtomicU64::new(0)),
            buffer: Vec::with_capacity(64 * 1024),
            write_gap,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Waits for the target to connect.
    pub fn accept(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.listener.set_nonblocking(true)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_nodelay(true)?;
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "the target did not connect to the bench feed at {} within {timeout:?}",
                        self.local_addr()?
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => return Err(err).context("bench feed: accept"),
            }
        }
    }

    /// Writes `bytes` as they are, outside any phase and not counted as
    /// published (the bus run's priming line, for a symbol no client takes).
    pub fn write_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let stream = self
            .stream
            .as_mut()
            .context("the target has not connected to the feed")?;
        stream
            .write_all(bytes)
            .context("bench feed: the target stopped reading")
    }

    /// Writes one phase: its warm-up, then its measured part, at `phase.rate`.
    pub fn run_phase(&mut self, phase: Phase) -> anyhow::Result<PhaseFeed> {
        anyhow::ensure!(phase.rate > 0.0, "the rate must be above 0");
        let mut stream = self.stream.take().context("the target has not connected to the feed")?;
        let result = self.write_phase(&mut stream, phase);
        self.stream = Some(stream);
        result
    }

    fn write_phase(&mut self, stream: &mut TcpStream, phase: Phase) -> anyhow::Result<PhaseFeed> {
        let interval_ns = 1e9 / phase.rate;
        let warmup_quotes = (phase.warmup.as_secs_f64() * phase.rate).round() as u64;
        let measured_quotes = ((phase.duration.as_secs_f64() * phase.rate).round() as u64).max(1);
        let total = warmup_quotes + measured_quotes;
        let start = Instant::now();
        let start_ns = now_ns();
        let intended_offset = |i: u64| (i as f64 * interval_ns) as u64;
        let first_k = self.published.load(Ordering::Relaxed);
        let mut sent = 0u64;
        let mut max_behind = Duration::ZERO;
        // When the last write went out (since `start`).
        let mut last_write: Option<Duration> = None;
        let mut writes = 0;
        while sent < total {
            let elapsed = start.elapsed();
            let due = ((elapsed.as_nanos() as f64 / interval_ns) as u64 + 1).min(total);
            let gap_over = last_write.is_none_or(|at| elapsed >= at + self.write_gap);
            if due > sent && gap_over {
                last_write = Some(elapsed);
                writes += 1;
                let late = elapsed.saturating_sub(Duration::from_nanos(intended_offset(sent)));
                max_behind = max_behind.max(late);
                self.buffer.clear();
                for i in sent..due {
                    let number = if i < warmup_quotes { 0 } else { phase.number };
                    let quote = quote(&self.workload, first_k + i, start_ns + intended_offset(i), number);
                    match self.format {
                        FeedFormat::JsonLines => json_line(&quote, &mut self.buffer),
                        FeedFormat::Records => binary_record(&quote, &mut self.buffer),
                    }
                }
                stream
                    .write_all(&self.buffer)
                    .context("bench feed: the target stopped reading")?;
                self.published.fetch_add(due - sent, Ordering::Relaxed);
                sent = due;
                continue;
            }
            // Sleep to just before the next write may go out (the next quote
            // is due and the gap is over); the last stretch yields, since a
            // sleep can overshoot by tens of microseconds.
            let gap_end = last_write.map_or(Duration::ZERO, |at| at + self.write_gap);
            let next = Duration::from_nanos(intended_offset(sent)).max(gap_end);
            let wait = next.saturating_sub(start.elapsed());
            if wait > Duration::from_micros(200) {
                std::thread::sleep(wait - Duration::from_micros(100));
            } else {
                std::thread::yield_now();
            }
        }
        Ok(PhaseFeed {
            measured: measured_quotes,
            published_total: first_k + total,
            measure_start_ns: start_ns + intended_offset(warmup_quotes),
            measure_end_ns: start_ns + intended_offset(total),
            max_behind,
            quotes_per_write: total as f64 / writes.max(1) as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use quotehub_proto::record::QUOTE_LEN;

    use super::*;
    use crate::workload::Layout;

    #[test]
    fn quotes_due_within_the_write_gap_go_out_in_one_write_and_none_is_lost() {
        let workload = Workload::new(1, 2, 1, Layout::Blocks).unwrap();
        let gap = Duration::from_millis(50);
        let mut feeder = Feeder::listen("127.0.0.1:0".parse().unwrap(), FeedFormat::Records, workload, gap).unwrap();
        let mut target = TcpStream::connect(feeder.local_addr().unwrap()).unwrap();
        feeder.accept(Duration::from_secs(10)).unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            target.read_to_end(&mut bytes).map(|_| bytes.len())
        });
        // 1,000 quotes due over half a second, one every 0.5 ms.
        let phase = Phase {
            number: 1,
            rate: 2_000.0,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(500),
        };
        let fed = feeder.run_phase(phase).unwrap();
        drop(feeder);
        assert_eq!(fed.measured, 1_000);
        assert_eq!(
            reader.join().unwrap().unwrap(),
            1_000 * QUOTE_LEN,
            "every quote written"
        );
        // Writes at 0 ms and then at least 50 ms apart; every quote is due
        // by 500 ms, so the write after that carries the last of them: 11
        // writes at the most.
        assert!(
            fed.quotes_per_write >= 1_000.0 / 11.0,
            "{} quotes a write",
            fed.quotes_per_write
        );
    }
}
