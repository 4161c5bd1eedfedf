//! A recorded feed of JSON lines, one quote or trade per line.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use quotehub_proto::Event;
use tracing::warn;

use crate::error::FeedError;
use crate::json_line::JsonLineDecoder;
use crate::source::{FeedStats, RecordedFeed, Rejection};

/// Reads a JSON-lines feed file. Blank lines are skipped; any other line that
/// does not decode is counted, logged with its file and line number, and
/// skipped, and reading goes on.
#[derive(Debug)]
pub struct JsonLinesFile {
    path: PathBuf,
    name: String,
    reader: BufReader<File>,
    decoder: JsonLineDecoder,
    line: Vec<u8>,
    line_number: u64,
    stats: FeedStats,
}

impl JsonLinesFile {
    /// Opens the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FeedError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| FeedError::Io {
            context: "opening feed",
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            name: path.display().to_string(),
            path,
            reader: BufReader::with_capacity(256 * 1024, file),
            decoder: JsonLineDecoder::new(),
            line: Vec::with_capacity(512),
            line_number: 0,
            stats: FeedStats::default(),
        })
    }
}

impl RecordedFeed for JsonLinesFile {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        loop {
            self.line.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| FeedError::Io {
                    context: "reading feed",
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            while self.line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                self.line.pop();
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.decoder.decode(&mut self.line) {
                Ok(event) => {
                    self.stats.events += 1;
                    return Ok(Some(event));
                }
                Err(error) => {
                    let rejection = Rejection {
                        path: self.path.clone(),
                        line: self.line_number,
                        error,
                    };
                    // Looped replays meet the same bad lines again: report them once.
                    if self.stats.passes == 0 {
                        warn!(%rejection, "skipped malformed feed line");
                    }
                    self.stats.reject(rejection);
                }
            }
        }
    }

    fn rewind(&mut self) -> Result<(), FeedError> {
        self.reader.seek(SeekFrom::Start(0)).map_err(|source| FeedError::Io {
            context: "rewinding feed",
            path: self.path.clone(),
            source,
        })?;
        self.line_number = 0;
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
