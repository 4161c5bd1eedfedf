//! Reads captures back as a recorded feed, in file order, with seeking by
//! event time through the index.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use quotehub_proto::Event;
use quotehub_proto::record::{Record, rtype};
use tracing::warn;

use super::layout::{self, FOOTER_LEN, HEADER_LEN, INDEX_ENTRY_LEN, INDEX_MARKER_LEN, INDEX_RTYPE, IndexEntry};
use crate::error::{FeedError, LineError};
use crate::source::{FeedStats, RecordedFeed};

/// Bytes read from the file at a time.
const READ_BUFFER: usize = 1 << 20;
/// The longest record a v1 header can announce.
const MAX_RECORD: usize = u16::MAX as usize;

/// A capture file opened for replay. A damaged record is counted with its
/// record number and skipped; a damaged record length ends the replay there
/// (nothing after it can be found), also counted.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    name: String,
    reader: BufReader<File>,
    /// Where the records end: the index marker, or the end of the file.
    body_end: u64,
    /// File offset of the next record.
    offset: u64,
    /// Records read in this pass (the next record's number is this + 1).
    record_number: u64,
    index: Vec<IndexEntry>,
    /// An event read ahead by a seek, delivered next.
    pending: Option<Event>,
    /// A record that does not fit the reader's buffer.
    scratch: Vec<u8>,
    stats: FeedStats,
}

impl CaptureFile {
    /// Opens a capture and reads its index (a capture without one, cut short
    /// while recording, is read by scanning).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FeedError> {
        let path = path.as_ref().to_path_buf();
        let io_error = |context, source| FeedError::Io {
            context,
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(|e| io_error("opening capture", e))?;
        let len = file.metadata().map_err(|e| io_error("opening capture", e))?.len();
        let mut header = [0u8; HEADER_LEN];
        let checked = match file.read_exact(&mut header) {
            Ok(()) => layout::check_header(&header),
            Err(_) => Err("the file is shorter than a capture header"),
        };
        if let Err(reason) = checked {
            return Err(FeedError::UnknownFormat {
                path,
                reason: reason.to_string(),
            });
        }
        let index = read_index(&mut file, len).map_err(|e| io_error("reading capture index", e))?;
        let body_end = match &index {
            Some((offset, _)) => *offset,
            None => {
                warn!(path = %path.display(), "capture has no index (cut short while recording?); reading it by scanning");
                len
            }
        };
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        reader
            .seek(SeekFrom::Start(HEADER_LEN as u64))
            .map_err(|e| io_error("reading capture", e))?;
        Ok(Self {
            name: path.display().to_string(),
            path,
            reader,
            body_end,
            offset: HEADER_LEN as u64,
            record_number: 0,
            index: index.map(|(_, entries)| entries).unwrap_or_default(),
            pending: None,
            scratch: Vec::new(),
            stats: FeedStats::default(),
        })
    }

    /// The index's blocks (empty for a capture without an index).
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }

    /// Positions the replay at the first event, in file order, whose event
    /// time is `ts` or later, using the index to skip whole blocks.
    pub fn seek_time(&mut self, ts: u64) -> Result<(), FeedError> {
        let start = self
            .index
            .iter()
            .find(|block| block.max_ts >= ts)
            .map_or((HEADER_LEN as u64, 0), |block| (block.offset, block.first_record));
        self.position(start.0, start.1)?;
        while let Some(event) = self.read_event()? {
            if event.event_ts() >= ts {
                self.pending = Some(event);
                break;
            }
        }
        Ok(())
    }

    fn position(&mut self, offset: u64, record_number: u64) -> Result<(), FeedError> {
        self.reader
            .seek(SeekFrom::Start(offset))
            .map_err(|source| FeedError::Io {
                context: "seeking in capture",
                path: self.path.clone(),
                source,
            })?;
        self.offset = offset;
        self.record_number = record_number;
        self.pending = None;
        Ok(())
    }

    /// The next quote or trade in file order, skipping what is not one.
    fn read_event(&mut self) -> Result<Option<Event>, FeedError> {
        loop {
            let remaining = self.body_end.saturating_sub(self.offset);
            if remaining == 0 {
                return Ok(None);
            }
            let head = self.fill(4.min(remaining as usize))?;
            if head.len() < 4 {
                self.end_damaged("truncated record header at the end of the capture");
                return Ok(None);
            }
            let length = usize::from(u16::from_le_bytes([head[0], head[1]]));
            let kind = head[2];
            if kind == INDEX_RTYPE {
                // An index whose footer never got written: the body ends here.
                return Ok(None);
            }
            if length < 8 || !length.is_multiple_of(8) || length as u64 > remaining {
                self.end_damaged("bad record length; the rest of the capture cannot be read");
                return Ok(None);
            }
            self.record_number += 1;
            self.offset += length as u64;
            let decoded = if self.reader.buffer().len() >= length {
                let decoded = decode(&self.reader.buffer()[..length], kind);
                self.reader.consume(length);
                decoded
            } else {
                self.scratch.resize(length.min(MAX_RECORD), 0);
                self.reader
                    .read_exact(&mut self.scratch)
                    .map_err(|source| FeedError::Io {
                        context: "reading capture",
                        path: self.path.clone(),
                        source,
                    })?;
                decode(&self.scratch, kind)
            };
            match decoded {
                Some(Ok(event)) => return Ok(Some(event)),
                Some(Err(error)) => self.reject(error),
                // A record type this reader does not know: skip it, as the
                // versioning rules say.
                None => {}
            }
        }
    }

    /// Makes at least `want` bytes available in the buffer if the file has
    /// them, and returns what is buffered.
    fn fill(&mut self, want: usize) -> Result<&[u8], FeedError> {
        if self.reader.buffer().len() < want {
            // Refill keeping the unread bytes: seek to where they start.
            let at = self.offset;
            self.reader.seek(SeekFrom::Start(at)).map_err(|source| FeedError::Io {
                context: "reading capture",
                path: self.path.clone(),
                source,
            })?;
        }
        self.reader.fill_buf().map_err(|source| FeedError::Io {
            context: "reading capture",
            path: self.path.clone(),
            source,
        })
    }

    fn end_damaged(&mut self, reason: &'static str) {
        self.record_number += 1;
        self.reject(LineError::Binary(reason));
        self.offset = self.body_end;
    }

    fn reject(&mut self, error: LineError) {
        let entry = self.record_number;
        self.stats.reject_in_file(&self.path, entry, error);
    }
}

/// A quote or trade record as an event; `None` for other record types.
fn decode(bytes: &[u8], kind: u8) -> Option<Result<Event, LineError>> {
    if kind != rtype::QUOTE && kind != rtype::TRADE {
        return None;
    }
    Some(match Record::decode(bytes) {
        Ok((Record::Quote(record), _)) => Ok(Event::Quote(record.quote)),
        Ok((Record::Trade(record), _)) => Ok(Event::Trade(record.trade)),
        Ok(_) => Err(LineError::Binary("record type and body disagree")),
        Err(_) => Err(LineError::Binary("malformed quote or trade record")),
    })
}

/// The index, if the file ends with a consistent one: the marker's offset
/// and the entries.
fn read_index(file: &mut File, len: u64) -> std::io::Result<Option<(u64, Vec<IndexEntry>)>> {
    let smallest = (HEADER_LEN + INDEX_MARKER_LEN + FOOTER_LEN) as u64;
    if len < smallest {
        return Ok(None);
    }
    let mut footer = [0u8; FOOTER_LEN];
    file.seek(SeekFrom::Start(len - FOOTER_LEN as u64))?;
    file.read_exact(&mut footer)?;
    if footer[8..] != layout::FOOTER_MAGIC {
        return Ok(None);
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&footer[..8]);
    let index_offset = u64::from_le_bytes(word);
    if index_offset < HEADER_LEN as u64 || index_offset > len - (INDEX_MARKER_LEN + FOOTER_LEN) as u64 {
        return Ok(None);
    }
    let mut marker = [0u8; INDEX_MARKER_LEN];
    file.seek(SeekFrom::Start(index_offset))?;
    file.read_exact(&mut marker)?;
    word.copy_from_slice(&marker[8..16]);
    let entries = u64::from_le_bytes(word);
    let expected = index_offset
        .checked_add(INDEX_MARKER_LEN as u64)
        .and_then(|at| {
            entries
                .checked_mul(INDEX_ENTRY_LEN as u64)
                .and_then(|n| at.checked_add(n))
        })
        .and_then(|at| at.checked_add(FOOTER_LEN as u64));
    if marker[2] != INDEX_RTYPE || expected != Some(len) {
        return Ok(None);
    }
    let mut bytes = vec![0u8; entries as usize * INDEX_ENTRY_LEN];
    file.read_exact(&mut bytes)?;
    let index = bytes
        .chunks_exact(INDEX_ENTRY_LEN)
        .map(|chunk| {
            let mut entry = [0u8; INDEX_ENTRY_LEN];
            entry.copy_from_slice(chunk);
            IndexEntry::decode(&entry)
        })
        .collect();
    Ok(Some((index_offset, index)))
}

impl RecordedFeed for CaptureFile {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        let event = match self.pending.take() {
            Some(event) => Some(event),
            None => self.read_event()?,
        };
        if event.is_some() {
            self.stats.events += 1;
        }
        Ok(event)
    }

    fn seek_near(&mut self, event_ts: u64) -> Result<(), FeedError> {
        self.seek_time(event_ts)
    }

    fn rewind(&mut self) -> Result<(), FeedError> {
        self.position(HEADER_LEN as u64, 0)?;
        self.stats.passes += 1;
        Ok(())
    }

    fn stats(&self) -> &FeedStats {
        &self.stats
    }

    fn name(&self) -> &str {
        &self.name
    }
}
