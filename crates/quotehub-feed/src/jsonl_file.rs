//! A recorded feed of JSON lines, one quote or trade per line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use quotehub_proto::Event;

use crate::error::{FeedError, LineError};
use crate::json_line::JsonLineDecoder;
use crate::source::{FeedStats, RecordedFeed};

/// The longest line read; a longer one is rejected and skipped, so a file
/// without newlines cannot make the reader hold it whole in memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

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

impl JsonLinesFile {
    /// Reads up to one line, but never more than one byte past the limit.
    fn read_line(&mut self) -> Result<usize, FeedError> {
        let limit = (MAX_LINE_BYTES + 1) as u64;
        (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.line)
            .map_err(|source| FeedError::Io {
                context: "reading feed",
                path: self.path.clone(),
                source,
            })
    }

    /// Discards the remainder of an over-long line, up to and including its newline.
    fn skip_rest_of_line(&mut self) -> Result<(), FeedError> {
        while self.line.last() != Some(&b'\n') {
            self.line.clear();
            if self.read_line()? == 0 {
                break;
            }
        }
        Ok(())
    }

    fn reject(&mut self, error: LineError) {
        let entry = self.line_number;
        self.stats.reject_in_file(&self.path, entry, error);
    }
}

impl RecordedFeed for JsonLinesFile {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        loop {
            self.line.clear();
            if self.read_line()? == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            if self.line.len() > MAX_LINE_BYTES {
                self.skip_rest_of_line()?;
                self.reject(LineError::Shape("line longer than 64 KiB"));
                continue;
            }
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
                Err(error) => self.reject(error),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_long_line_is_rejected_and_reading_goes_on() {
        let dir = std::env::temp_dir().join(format!("quotehub-long-line-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("feed.jsonl");
        let good = r#"{"ev":"T","sym":"A","p":1.5,"s":1,"t":1700000000000}"#;
        let long = "x".repeat(3 * MAX_LINE_BYTES);
        std::fs::write(&path, format!("{good}\n{long}\n{good}\n{long}")).unwrap();
        let mut feed = JsonLinesFile::open(&path).unwrap();
        let mut events = 0;
        while feed.next_event().unwrap().is_some() {
            events += 1;
        }
        let rejected: Vec<(u64, String)> = feed
            .stats()
            .first_rejections
            .iter()
            .map(|r| (r.line, r.error.to_string()))
            .collect();
        let reason = "line longer than 64 KiB".to_owned();
        assert_eq!((events, rejected), (2, vec![(2, reason.clone()), (4, reason)]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
