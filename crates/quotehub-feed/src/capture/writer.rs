//! Writes captures: a header, one wire record per event, and on
//! [`CaptureWriter::finish`] the index.

use std::io::{self, Write};

use quotehub_proto::{Event, Flags, QuoteRecord, TradeRecord};

use super::layout::{self, BLOCK_RECORDS, IndexEntry};

/// Writes a capture to `out` (buffer it: every event is one small write).
///
/// Deterministic: the same events give the same bytes, so a capture
/// converted to JSON lines and back (with `seq` and `recv_ts` 0) is byte for
/// byte the original.
#[derive(Debug)]
pub struct CaptureWriter<W: Write> {
    out: W,
    /// File offset of the next record.
    offset: u64,
    /// Records written so far.
    records: u64,
    /// Finished blocks.
    index: Vec<IndexEntry>,
    /// The block being written, once it holds a record.
    block: Option<IndexEntry>,
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the header and returns a writer for the records.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&layout::header())?;
        Ok(Self {
            out,
            offset: layout::HEADER_LEN as u64,
            records: 0,
            index: Vec::new(),
            block: None,
        })
    }

    /// Appends one event as its wire record: `seq` and `recv_ts` as the
    /// event carries them, flags and conflation count 0.
    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Quote(quote) => self.write_record(
                &QuoteRecord {
                    quote: *quote,
                    flags: Flags::default(),
                    conflated: 0,
                }
                .encode(),
                quote.event_ts,
            ),
            Event::Trade(trade) => self.write_record(
                &TradeRecord {
                    trade: *trade,
                    flags: Flags::default(),
                    conflated: 0,
                }
                .encode(),
                trade.event_ts,
            ),
            // An event kind without a record type cannot be captured yet;
            // proto gives one a record type before any feed produces it.
            _ => Ok(()),
        }
    }

    fn write_record(&mut self, bytes: &[u8], event_ts: u64) -> io::Result<()> {
        if self.records.is_multiple_of(BLOCK_RECORDS) {
            self.index.extend(self.block.take());
            self.block = Some(IndexEntry {
                offset: self.offset,
                first_record: self.records,
                min_ts: event_ts,
                max_ts: event_ts,
            });
        }
        self.out.write_all(bytes)?;
        if let Some(block) = &mut self.block {
            block.min_ts = block.min_ts.min(event_ts);
            block.max_ts = block.max_ts.max(event_ts);
        }
        self.offset += bytes.len() as u64;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes the index and footer, flushes, and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.index.extend(self.block.take());
        let index_offset = self.offset;
        self.out.write_all(&layout::index_marker(self.index.len() as u64))?;
        for entry in &self.index {
            self.out.write_all(&entry.encode())?;
        }
        self.out.write_all(&layout::footer(index_offset))?;
        self.out.flush()?;
        Ok(self.out)
    }
}
