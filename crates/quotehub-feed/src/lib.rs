//! The feed ingester: recorded feed sources, their decoders, replay pacing,
//! and the generator of the bundled synthetic session.
//!
//! | module | holds |
//! |---|---|
//! | [`source`] | [`RecordedFeed`], the trait every recorded source implements, and its counters |
//! | [`json_line`] | [`JsonLineDecoder`]: one Polygon-style JSON line → [`quotehub_proto::Event`], exact prices |
//! | [`jsonl_file`] | [`JsonLinesFile`]: a JSON-lines file; bad lines counted and reported with file:line |
//! | [`iex`] | [`IexTopsFile`]: an IEX TOPS 1.5/1.6 capture (pcap or pcapng, optionally gzipped) → quotes and trades, exact prices; damage counted with its packet number |
//! | [`live`] | live sources: TCP JSON lines, Polygon-style WebSocket; reconnect with backoff, counters |
//! | [`replay`](mod@replay) | [`replay()`]: paces events by their timestamps (1×, any factor, max), optional loop |
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

pub mod error;
pub mod iex;
pub mod json_line;
pub mod jsonl_file;
pub mod live;
pub mod replay;
pub mod source;
pub mod synth;

pub use error::{FeedError, LineError};
pub use iex::{IexTopsFile, TopsCounts};
pub use json_line::JsonLineDecoder;
pub use jsonl_file::JsonLinesFile;
pub use replay::{ReplayEnd, ReplayOptions, Speed, replay};
pub use source::{FeedStats, RecordedFeed, Rejection};

use std::path::Path;

/// Opens a recorded feed, choosing the decoder by the file's first bytes
/// (never by its name): JSON lines, which start with `{` (after optional
/// blank space), or an IEX TOPS capture in pcap or pcapng, either of them
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
    let gzip = iex::capture::is_gzip(&head[..read]);
    if gzip {
        read = std::fs::File::open(path)
            .and_then(|file| iex::capture::gunzip_prefix(file, &mut head))
            .map_err(io_error)?;
    }
    let head = &head[..read];
    if iex::capture::Format::from_magic(head).is_some() {
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
            "unknown feed format ({}first bytes {:02x?}); expected JSON lines or an IEX TOPS capture \
             (pcap or pcapng, optionally gzip-compressed)",
            if gzip { "gzip-compressed, " } else { "" },
            &head[..read.min(8)]
        ))),
    }
}
