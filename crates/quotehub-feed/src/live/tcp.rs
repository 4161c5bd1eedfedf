//! A TCP upstream of JSON lines: the hub connects to `HOST:PORT` and reads
//! newline-delimited Polygon-style quote and trade objects, the format of
//! `feeds/*.jsonl`, for as long as the connection lasts (and something
//! arrives at least once per idle timeout).

use std::time::Duration;

use quotehub_proto::now_ns;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

use super::idle::IdleTimeout;
use super::link::Link;
use super::{CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, LiveError, LiveSink, Upstream};
use crate::error::LineError;
use crate::json_line::JsonLineDecoder;
use crate::jsonl_file::MAX_LINE_BYTES;

/// Read buffer per connection: many lines per read call at full rate.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Reads JSON lines from a TCP upstream. Lines are capped at
/// [`MAX_LINE_BYTES`] as in files; a longer line, or any line that does not
/// decode, is counted and logged with its line number (counted from 1 per
/// connection) and skipped.
#[derive(Debug)]
pub struct TcpLines {
    /// `HOST:PORT`.
    addr: String,
    /// `tcp://HOST:PORT`.
    name: String,
    /// Silence longer than this ends the connection (see [`IdleTimeout`]).
    idle_timeout: Duration,
    decoder: JsonLineDecoder,
    line: Vec<u8>,
}

impl TcpLines {
    /// A source that will connect to `addr` (`HOST:PORT`).
    pub fn new(addr: impl Into<String>) -> Self {
        let addr = addr.into();
        Self {
            name: format!("tcp://{addr}"),
            addr,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            decoder: JsonLineDecoder::new(),
            line: Vec::with_capacity(512),
        }
    }

    /// Ends a connection over which nothing arrives for `idle_timeout`
    /// (default [`DEFAULT_IDLE_TIMEOUT`]).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }
}

impl<S: LiveSink> Upstream<S> for TcpLines {
    fn name(&self) -> &str {
        &self.name
    }

    async fn session(&mut self, link: &mut Link<'_, S>) -> Result<(), LiveError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| LiveError::Timeout("connecting"))??;
        // Quotes are small and latency matters more than packet count.
        stream.set_nodelay(true)?;
        link.up();
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, IdleTimeout::new(stream, self.idle_timeout));
        let mut line_number: u64 = 0;
        // Whole lines still in the read buffer after the current one. When
        // none are, the next read may wait for the upstream, so the sink
        // delivers what this read brought first.
        let mut buffered_lines: usize = 0;
        loop {
            if buffered_lines == 0 {
                link.flush();
            }
            self.line.clear();
            let read = read_capped_line(&mut reader, &mut self.line).await?;
            if read == 0 {
                return Ok(());
            }
            buffered_lines = match buffered_lines.checked_sub(1) {
                Some(left) => left,
                // This line needed a read: count the whole lines it brought.
                None => reader.buffer().iter().filter(|&&byte| byte == b'\n').count(),
            };
            let recv_ts = now_ns();
            line_number += 1;
            link.received(read);
            if self.line.len() > MAX_LINE_BYTES {
                let skipped = skip_rest_of_line(&mut reader, &mut self.line).await?;
                buffered_lines = 0;
                link.add_bytes(skipped);
                link.reject(
                    format_args!("line {line_number}"),
                    LineError::Shape("line longer than 64 KiB"),
                );
                continue;
            }
            while self.line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                self.line.pop();
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.decoder.decode(&mut self.line) {
                Ok(mut event) => {
                    event.set_recv_ts(recv_ts);
                    link.event(event);
                }
                Err(error) => link.reject(format_args!("line {line_number}"), error),
            }
        }
    }
}

/// Reads up to one line, never more than one byte past the limit.
async fn read_capped_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let limit = (MAX_LINE_BYTES + 1) as u64;
    (&mut *reader).take(limit).read_until(b'\n', line).await
}

/// Discards the rest of an over-long line, up to and including its newline;
/// returns the bytes discarded.
async fn skip_rest_of_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut skipped = 0;
    while line.last() != Some(&b'\n') {
        line.clear();
        let read = read_capped_line(reader, line).await?;
        if read == 0 {
            break;
        }
        skipped += read;
    }
    Ok(skipped)
}
