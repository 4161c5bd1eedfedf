//! Errors of feed sources.

use std::path::PathBuf;

/// Why one feed line was rejected; the reader counts it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not valid JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The line is JSON but not a flat object of the expected shape.
    #[error("{0}")]
    Shape(&'static str),
    /// A required field is missing.
    #[error("missing field {0:?}")]
    Missing(&'static str),
    /// A field holds a value of the wrong type or out of range.
    #[error("field {field:?}: {reason}")]
    Field {
        /// The field's key.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A binary record (a captured packet, an IEX-TP segment or a TOPS
    /// message) is malformed; the text says which layer and what is wrong.
    #[error("{0}")]
    Binary(&'static str),
}

/// A failure that stops a feed source (as opposed to a skipped line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// Opening or reading the feed failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The feed file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A feed's bytes are in no format this build reads.
    #[error("{path}: {reason}")]
    UnknownFormat {
        /// The feed file.
        path: PathBuf,
        /// What was seen.
        reason: String,
    },
}

impl FeedError {
    /// True when retrying cannot help (today every feed error is fatal; live
    /// sources will add recoverable ones).
    pub fn is_terminal(&self) -> bool {
        true
    }
}
