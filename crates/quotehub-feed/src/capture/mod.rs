//! The hub's own capture format: what a hub ingested, as a compact versioned
//! binary file with an index for seeking by event time.
//!
//! Every byte offset of the format lives in [`layout`]; [`CaptureWriter`]
//! writes captures and [`CaptureFile`] reads them back as a
//! [`crate::RecordedFeed`].
//!
//! The body reuses the v1 wire records of `quotehub-proto` (SPEC.md), so a
//! capture holds exactly the bytes the hub would encode for each event, any
//! v1 record decoder reads its body, and replay decodes it with the same
//! tested code as clients do. Reading back yields every field as written:
//! replay is bit-identical to what was recorded.

pub mod layout;
mod reader;
mod writer;

pub use layout::IndexEntry;
pub use reader::CaptureFile;
pub use writer::CaptureWriter;

#[cfg(test)]
mod tests;
