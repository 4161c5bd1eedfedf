//! IEX TOPS market data in pcap files as a recorded feed.
//!
//! IEX publishes TOPS (top of book and last sale) over UDP multicast and
//! distributes recordings ("HIST" files) as pcap files. A pcap file is
//! decoded in layers, outermost first, one module each:
//!
//! | module | reads | yields |
//! |---|---|---|
//! | [`pcap`] | a pcap or pcapng file, optionally gzip-compressed | link-layer frames, into one reused buffer |
//! | [`packet`] | an Ethernet (VLAN-tagged or not), Linux cooked or raw-IP frame; IPv4; UDP | the UDP payload |
//! | [`transport`] | an IEX-TP 1.0 segment | TOPS message blocks, copies from the redundant feed dropped |
//! | [`tops`] | a TOPS 1.5/1.6 message | a quote or trade [`Event`], or a message only counted |
//!
//! [`IexTopsFile`] pulls through the layers one message at a time: nothing is
//! collected, the file is never loaded whole, and the only buffers are the
//! reader's and one frame buffer. Damage at any layer is counted in
//! [`FeedStats`] with the 1-based packet number, logged once (first pass),
//! and skipped.

pub mod packet;
pub mod pcap;
pub mod tops;
pub mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use quotehub_proto::Event;

use crate::error::{FeedError, LineError};
use crate::source::{FeedStats, RecordedFeed};

use packet::Datagram;
use pcap::{Format, OpenError, PcapReader, Record};
use tops::Message;
use transport::{MessageCursor, SegmentHeader, Sequencer};

/// Counts of what a pcap held besides events: TOPS messages per type,
/// segments and skipped traffic. Cumulative over passes, like [`FeedStats`].
#[derive(Clone, PartialEq, Eq)]
pub struct TopsCounts {
    /// TOPS messages read, of every type (not counting dropped copies).
    pub messages: u64,
    /// Messages per type byte: `by_type[usize::from(b'Q')]` are quote updates.
    pub by_type: [u64; 256],
    /// IEX-TP segments read, heartbeats (no messages) included.
    pub segments: u64,
    /// Frames that were not IPv4/UDP (ARP, IPv6, TCP, ...), skipped.
    pub other_frames: u64,
    /// Messages dropped as copies already read (both redundant feeds captured).
    pub duplicate_messages: u64,
    /// Messages missing by sequence number (packets the pcap lost).
    pub missing_messages: u64,
}

impl TopsCounts {
    /// Messages of one type.
    pub fn of_type(&self, kind: u8) -> u64 {
        self.by_type[usize::from(kind)]
    }

    /// Quote Update ('Q') messages.
    pub fn quote_updates(&self) -> u64 {
        self.of_type(tops::kind::QUOTE_UPDATE)
    }

    /// Trade Report ('T') messages.
    pub fn trade_reports(&self) -> u64 {
        self.of_type(tops::kind::TRADE_REPORT)
    }

    /// Messages of types this decoder does not know.
    pub fn unknown_types(&self) -> u64 {
        (0..=u8::MAX)
            .filter(|&kind| tops::layout_len(kind).is_none())
            .map(|kind| self.of_type(kind))
            .sum()
    }
}

impl Default for TopsCounts {
    fn default() -> Self {
        Self {
            messages: 0,
            by_type: [0; 256],
            segments: 0,
            other_frames: 0,
            duplicate_messages: 0,
            missing_messages: 0,
        }
    }
}

/// Lists only the types that occurred, by their character.
impl fmt::Debug for TopsCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_type: Vec<(char, u64)> = (0..=u8::MAX)
            .filter(|&kind| self.of_type(kind) > 0)
            .map(|kind| (char::from(kind), self.of_type(kind)))
            .collect();
        f.debug_struct("TopsCounts")
            .field("messages", &self.messages)
            .field("by_type", &by_type)
            .field("segments", &self.segments)
            .field("other_frames", &self.other_frames)
            .field("duplicate_messages", &self.duplicate_messages)
            .field("missing_messages", &self.missing_messages)
            .finish()
    }
}

/// An IEX TOPS 1.5/1.6 pcap read as a recorded feed: quote updates become
/// [`Event::Quote`], trade reports [`Event::Trade`], in pcap order; other
/// messages are counted in [`IexTopsFile::counts`].
///
/// Reads a file ([`IexTopsFile::open`]) or any seekable reader
/// ([`IexTopsFile::from_reader`], e.g. a `Cursor` over bytes in memory).
pub struct IexTopsFile<R: Read + Seek = File> {
    path: PathBuf,
    name: String,
    /// Where the pcap starts in the reader, for rewinding.
    start: u64,
    /// `None` once a rewind failed to reopen the pcap: the feed is over.
    pcap: Option<PcapReader<R>>,
    /// The messages left in the current packet's segment.
    cursor: MessageCursor,
    sequencer: Sequencer,
    stats: FeedStats,
    counts: TopsCounts,
}

impl<R: Read + Seek> fmt::Debug for IexTopsFile<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IexTopsFile")
            .field("name", &self.name)
            .field("pcap", &self.pcap)
            .field("stats", &self.stats)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl IexTopsFile<File> {
    /// Opens a pcap file, telling its format by its first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FeedError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| FeedError::Io {
            context: "opening pcap",
            path: path.clone(),
            source,
        })?;
        Self::with_path(file, path)
    }
}

impl<R: Read + Seek> IexTopsFile<R> {
    /// Reads a pcap from its current position in `reader`; `name` stands
    /// for the path in logs and rejections.
    pub fn from_reader(reader: R, name: impl Into<String>) -> Result<Self, FeedError> {
        Self::with_path(reader, PathBuf::from(name.into()))
    }

    fn with_path(mut reader: R, path: PathBuf) -> Result<Self, FeedError> {
        let start = reader.stream_position().map_err(|source| FeedError::Io {
            context: "opening pcap",
            path: path.clone(),
            source,
        })?;
        let pcap = PcapReader::open(reader).map_err(|error| open_error(error, &path))?;
        Ok(Self {
            name: path.display().to_string(),
            path,
            start,
            pcap: Some(pcap),
            cursor: MessageCursor::default(),
            sequencer: Sequencer::default(),
            stats: FeedStats::default(),
            counts: TopsCounts::default(),
        })
    }

    /// Message counts so far, of every type.
    pub fn counts(&self) -> &TopsCounts {
        &self.counts
    }

    /// The pcap's container format.
    pub fn format(&self) -> Option<Format> {
        self.pcap.as_ref().map(PcapReader::format)
    }

    /// True when the pcap is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.pcap.as_ref().is_some_and(PcapReader::is_gzip)
    }

    /// The capacity of the one reused frame buffer (at most
    /// [`pcap::MAX_FRAME_BYTES`], whatever the pcap's length).
    pub fn frame_capacity(&self) -> usize {
        self.pcap.as_ref().map_or(0, PcapReader::frame_capacity)
    }

    /// The next TOPS message of any type, borrowed from the current packet,
    /// or `None` at the end. Counted in [`IexTopsFile::counts`]; not turned
    /// into an event (use [`RecordedFeed::next_event`] for that).
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, FeedError> {
        // The range is found first and the message borrowed after the loop:
        // rejecting inside the loop needs `self` mutably.
        let range = loop {
            let Some(pcap) = self.pcap.as_ref() else {
                return Ok(None);
            };
            let frame = pcap.frame();
            let step = match self.cursor.next_range(frame) {
                Some(Ok(range)) => {
                    let bytes = frame.get(range.clone()).unwrap_or_default();
                    match Message::parse(bytes) {
                        Ok(message) => Ok((range, message.kind())),
                        Err(reason) => Err((bytes.first().copied(), reason)),
                    }
                }
                Some(Err(reason)) => Err((None, reason)),
                None => {
                    if !self.next_segment()? {
                        return Ok(None);
                    }
                    continue;
                }
            };
            match step {
                Ok((range, kind)) => {
                    self.count(kind);
                    break range;
                }
                Err((kind, reason)) => {
                    if let Some(kind) = kind {
                        self.count(kind);
                    }
                    self.reject(LineError::Binary(reason));
                }
            }
        };
        // The same bytes that parsed inside the loop: this cannot fail.
        let frame = self.pcap.as_ref().map_or(&[][..], PcapReader::frame);
        let bytes = frame.get(range).unwrap_or_default();
        Ok(Message::parse(bytes).ok())
    }

    fn count(&mut self, kind: u8) {
        self.counts.messages += 1;
        self.counts.by_type[usize::from(kind)] += 1;
    }

    /// Reads packets until one holds a TOPS segment with messages to read;
    /// false at the end of the pcap.
    fn next_segment(&mut self) -> Result<bool, FeedError> {
        loop {
            let Some(pcap) = self.pcap.as_mut() else {
                return Ok(false);
            };
            let record = pcap.next_record().map_err(|source| FeedError::Io {
                context: "reading pcap",
                path: self.path.clone(),
                source,
            })?;
            let link_type = match record {
                None => return Ok(false),
                Some(Record::Rejected(reason)) => {
                    self.reject(LineError::Binary(reason));
                    continue;
                }
                Some(Record::Frame { link_type }) => link_type,
            };
            let frame = pcap.frame();
            let segment = match packet::udp_payload(link_type, frame) {
                Ok(Datagram::Udp(payload)) => {
                    let bytes = frame.get(payload.clone()).unwrap_or_default();
                    SegmentHeader::parse(bytes).map(|header| (header, payload.start))
                }
                Ok(Datagram::Other) => {
                    self.counts.other_frames += 1;
                    continue;
                }
                Err(reason) => Err(reason),
            };
            let (header, start) = match segment {
                Ok(segment) => segment,
                Err(reason) => {
                    self.reject(LineError::Binary(reason));
                    continue;
                }
            };
            self.counts.segments += 1;
            let admission = self.sequencer.admit(&header);
            self.counts.missing_messages += admission.missing;
            self.counts.duplicate_messages += u64::from(admission.duplicates);
            self.cursor = MessageCursor::new(start, &header);
            for _ in 0..admission.duplicates {
                if let Some(Err(reason)) = self.cursor.next_range(frame) {
                    self.reject(LineError::Binary(reason));
                    break;
                }
            }
            if !self.cursor.is_done() {
                return Ok(true);
            }
        }
    }

    fn reject(&mut self, error: LineError) {
        let entry = self.pcap.as_ref().map_or(0, PcapReader::packets);
        self.stats.reject_in_file(&self.path, entry, error);
    }
}

impl<R: Read + Seek + Send> RecordedFeed for IexTopsFile<R> {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        loop {
            let Some(message) = self.next_message()? else {
                return Ok(None);
            };
            match message.to_event() {
                None => {}
                Some(Ok(event)) => {
                    self.stats.events += 1;
                    return Ok(Some(event));
                }
                Some(Err(error)) => self.reject(error),
            }
        }
    }

    fn rewind(&mut self) -> Result<(), FeedError> {
        let io_error = |source| FeedError::Io {
            context: "rewinding pcap",
            path: self.path.clone(),
            source,
        };
        let Some(pcap) = self.pcap.take() else {
            return Err(io_error(std::io::Error::other(
                "the pcap could not be reopened by an earlier rewind",
            )));
        };
        let mut reader = pcap.into_inner();
        reader.seek(SeekFrom::Start(self.start)).map_err(io_error)?;
        let pcap = PcapReader::open(reader).map_err(|error| open_error(error, &self.path))?;
        self.pcap = Some(pcap);
        self.cursor = MessageCursor::default();
        self.sequencer.reset();
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

fn open_error(error: OpenError, path: &Path) -> FeedError {
    match error {
        OpenError::Io(source) => FeedError::Io {
            context: "opening pcap",
            path: path.to_path_buf(),
            source,
        },
        OpenError::Format(reason) => FeedError::UnknownFormat {
            path: path.to_path_buf(),
            reason: reason.into(),
        },
    }
}
