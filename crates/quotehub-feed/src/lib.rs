//! The feed ingester: recorded feed sources, their decoders, replay pacing,
//! and the generator of the bundled synthetic session.
//!
//! | module | holds |
//! |---|---|
//! | [`source`] | [`RecordedFeed`], the trait every recorded source implements, and its counters |
//! | [`json_line`] | [`JsonLineDecoder`]: one Polygon-style JSON line → [`quotehub_proto::Event`], exact prices |
//! | [`jsonl_file`] | [`JsonLinesFile`]: a JSON-lines file; bad lines counted and reported with file:line |
//! | [`capture`] | the hub's own capture format: [`CaptureWriter`] records what a hub ingests, [`CaptureFile`] replays it bit for bit and seeks by time |
//! | [`jsonl_writer`] | events → JSON lines (for conversions) |
//! | [`iex`] | [`IexTopsFile`]: IEX TOPS 1.5/1.6 in a pcap or pcapng file (optionally gzipped) → quotes and trades, exact prices; damage counted with its packet number |
//! | [`merge`] | [`MergedFeed`]: several recorded feeds as one, by event time, with per-feed symbol filters |
//! | [`line_server`] | serves a recorded feed as paced JSON lines over TCP, for `tcp://` sources |
//! | [`live`] | live sources: TCP JSON lines, Polygon-style WebSocket; reconnect with backoff, counters |
//! | [`replay`](mod@replay) | [`replay()`], [`replay_controlled()`]: paces events by their timestamps (1×, any factor, max), optional loop |
//! | [`replay_control`] | [`ReplayControl`]: pause, resume, speed, seek at run time; [`ReplayState`] |
//! | [`replay_window`] | [`ReplayWindow`]: which events a replay delivers (from, to, symbols) |
//! | [`event_time`] | times as RFC 3339 or ns since the epoch, parsed and formatted |
//! | [`synth`] | deterministic generator of the bundled US-equity session |
//!
//! ```
//! use quotehub_feed::JsonLineDecoder;
//! use quotehub_proto::Event;
//!
//! let mut decoder = JsonLineDecoder::new();
//! let mut line = br#"{"ev":"Q","sym":"GOOD","bp":18.73,"bs":993,"ap":18.75,"as":297,"t":1499697120000000000}"#.to_vec();
//! let Ok(Event::Quote(quote)) = decoder.decode(&mut line) else { panic!("a quote") };
//! assert_eq!(quote.bid_price.to_string(), "18.73");
//! ```

pub mod capture;
pub mod error;
pub mod event_time;
pub mod iex;
pub mod json_line;
pub mod jsonl_file;
pub mod jsonl_writer;
pub mod line_server;
pub mod live;
pub mod merge;
pub mod replay;
pub mod replay_control;
pub mod replay_window;
pub mod source;
pub mod synth;

pub use capture::{CaptureFile, CaptureWriter};
pub use error::{FeedError, LineError};
pub use event_time::{format_event_time, parse_event_time};
pub use iex::{IexTopsFile, TopsCounts};
pub use json_line::JsonLineDecoder;
pub use jsonl_file::JsonLinesFile;
pub use merge::{FeedInput, MergedFeed};
pub use replay::{ReplayEnd, ReplayOptions, ReplayRun, ReplayStep, Speed, replay, replay_controlled};
pub use replay_control::{Phase, ReplayControl, ReplayState};
pub use replay_window::ReplayWindow;
pub use source::{FeedStats, RecordedFeed, Rejection};

use std::path::Path;

/// Opens a recorded feed, choosing the decoder by the file's first bytes
/// (never by its name): a quotehub capture, JSON lines, which start with `{`
/// (after optional blank space), or IEX TOPS in a pcap or pcapng file, either of them
/// possibly gzip-compressed (a gzip stream is judged by what it holds).
pub fn open_recorded(path: &Path) -> Result<Box<dyn RecordedFeed>, FeedError> {
    use std::io::Read;
    let io_error = |source| FeedError::Io {
        context: "opening feed",
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; 64];
    let mut read = std::fs::File::open(path)
        .and_then(|mut file| file.read(&mut head))
        .map_err(io_error)?;
    if head[..read].starts_with(&capture::layout::MAGIC) {
        return Ok(Box::new(CaptureFile::open(path)?));
    }
    let gzip = iex::pcap::is_gzip(&head[..read]);
    if gzip {
        read = std::fs::File::open(path)
            .and_then(|file| iex::pcap::gunzip_prefix(file, &mut head))
            .map_err(io_error)?;
    }
    let head = &head[..read];
    if iex::pcap::Format::from_magic(head).is_some() {
        return Ok(Box::new(IexTopsFile::open(path)?));
    }
    let unknown = |reason: String| FeedError::UnknownFormat {
        path: path.to_path_buf(),
        reason,
    };
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') if gzip => Err(unknown(
            "gzip-compressed JSON lines are not read; decompress the file first".into(),
        )),
        Some(b'{') => Ok(Box::new(JsonLinesFile::open(path)?)),
        None if gzip => Err(unknown("the gzip stream is empty".into())),
        None => Err(unknown("the file is empty".into())),
        Some(_) => Err(unknown(format!(
            "unknown feed format ({}first bytes {:02x?}); expected JSON lines, a quotehub capture or IEX TOPS \
             in a pcap or pcapng file (optionally gzip-compressed)",
            if gzip { "gzip-compressed, " } else { "" },
            &head[..read.min(8)]
        ))),
    }
}
