//! Records what the hub ingests into a capture (the hub's own format, see
//! `quotehub_feed::capture`), from every feed, in the order published.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use quotehub_feed::CaptureWriter;
use quotehub_proto::Event;
use tracing::error;

/// Large writes: a capture grows by about 70 bytes per event.
const WRITE_BUFFER: usize = 1 << 20;

/// A capture being written. Publishers write each event once it is
/// sequenced, under a lock, so events from several feeds keep one order.
/// A write error stops the recording (logged, and counted in
/// [`Recorder::failed`]); the hub goes on serving.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    writer: Mutex<Option<CaptureWriter<BufWriter<File>>>>,
    records: AtomicU64,
    failed: AtomicU64,
}

impl Recorder {
    /// Creates the capture file; an existing file is never overwritten.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::options().write(true).create_new(true).open(&path)?;
        let writer = CaptureWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file))?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(writer)),
            records: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Appends one ingested event (sequenced and stamped).
    pub(crate) fn record(&self, event: &Event) {
        let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(capture) = writer.as_mut() else {
            return;
        };
        match capture.write_event(event) {
            Ok(()) => {
                self.records.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                error!(path = %self.path.display(), %err, "recording stopped: cannot write the capture");
                self.failed.fetch_add(1, Ordering::Relaxed);
                *writer = None;
            }
        }
    }

    /// Writes the index and closes the capture; later events are not
    /// recorded. Returns the records written.
    pub fn finish(&self) -> io::Result<u64> {
        let taken = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(capture) = taken {
            capture
                .finish()?
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()?;
        }
        Ok(self.records())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Write errors (at most one: recording stops at the first).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The capture's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
