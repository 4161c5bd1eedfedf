//! Capture format, version 1: every byte offset of a `.qhc` file.
//!
//! ```text
//! file   = header, record*, [index]
//! header = 32 bytes (below)
//! record = one v1 wire record of SPEC.md (quote 0x02 or trade 0x03), flags 0;
//!          seq and recv_ts as the recording hub stamped them (0 when the
//!          events were converted from a file rather than ingested by a hub)
//! index  = index marker record, entry*, footer (below)
//! ```
//!
//! Header (32 bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 'Q' 'H' 'C' 'A' 'P' 0D 0A` |
//! | 8 | 2 | capture format major version = 1 |
//! | 10 | 2 | capture format minor version = 0 |
//! | 12 | 1 | wire record layout major version of the body (1) |
//! | 13 | 19 | reserved, 0 |
//!
//! The index is written when a capture is finished. A capture cut short (the
//! recorder killed) has none and is read by scanning; a reader stops at an
//! index marker whose index is incomplete.
//!
//! Index marker record (16 bytes), then `entries` index entries:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | length = 16 |
//! | 2 | 1 | rtype = 0xFE |
//! | 3 | 5 | reserved, 0 |
//! | 8 | 8 | entries: u64 |
//!
//! Index entry (32 bytes), one per block of [`BLOCK_RECORDS`] records:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | file offset of the block's first record |
//! | 8 | 8 | number of records before the block |
//! | 16 | 8 | smallest event_ts in the block |
//! | 24 | 8 | largest event_ts in the block |
//!
//! Footer (16 bytes, the file's last):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | file offset of the index marker |
//! | 8 | 8 | magic `"QHCINDEX"` |
//!
//! The magic's first byte has its high bit set and it holds CR LF, so a
//! capture mangled by a 7-bit or newline-converting transfer is caught at once
//! (the PNG trick). Event times in a capture need not be sorted (several live
//! feeds arrive interleaved), which is why index entries keep both bounds.

/// The first eight bytes of every capture.
pub const MAGIC: [u8; 8] = *b"\x89QHCAP\r\n";
/// Capture format major version this build writes and reads.
pub const MAJOR: u16 = 1;
/// Capture format minor version this build writes.
pub const MINOR: u16 = 0;
/// Bytes in the file header.
pub const HEADER_LEN: usize = 32;
/// The index marker's record type (outside the wire protocol's types).
pub const INDEX_RTYPE: u8 = 0xFE;
/// Bytes in the index marker record.
pub const INDEX_MARKER_LEN: usize = 16;
/// Bytes in one index entry.
pub const INDEX_ENTRY_LEN: usize = 32;
/// Bytes in the footer.
pub const FOOTER_LEN: usize = 16;
/// The footer's magic.
pub const FOOTER_MAGIC: [u8; 8] = *b"QHCINDEX";
/// Records per index block: a seek reads at most this many records past the
/// one it wants (about 290 KiB of quotes), and the index costs 32 bytes per
/// block.
pub const BLOCK_RECORDS: u64 = 4096;

/// The file header's bytes.
pub fn header() -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&MAJOR.to_le_bytes());
    out[10..12].copy_from_slice(&MINOR.to_le_bytes());
    out[12] = quotehub_proto::record::PROTOCOL_VERSION;
    out
}

/// Checks a file header; the error says what is wrong.
pub fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
        return Err("not a quotehub capture (bad magic)");
    }
    if u16::from_le_bytes([bytes[8], bytes[9]]) != MAJOR {
        return Err("capture format major version is not 1");
    }
    if bytes[12] != quotehub_proto::record::PROTOCOL_VERSION {
        return Err("capture body uses an unknown wire record version");
    }
    Ok(())
}

/// One block of records in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// File offset of the block's first record.
    pub offset: u64,
    /// Records before the block.
    pub first_record: u64,
    /// Smallest event time in the block.
    pub min_ts: u64,
    /// Largest event time in the block.
    pub max_ts: u64,
}

impl IndexEntry {
    /// The entry's 32 bytes.
    pub fn encode(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut out = [0u8; INDEX_ENTRY_LEN];
        for (at, value) in [self.offset, self.first_record, self.min_ts, self.max_ts]
            .into_iter()
            .enumerate()
        {
            out[at * 8..at * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Reads an entry from its 32 bytes.
    pub fn decode(bytes: &[u8; INDEX_ENTRY_LEN]) -> Self {
        let at = |i: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        };
        Self {
            offset: at(0),
            first_record: at(1),
            min_ts: at(2),
            max_ts: at(3),
        }
    }
}

/// The index marker record for `entries` entries.
pub fn index_marker(entries: u64) -> [u8; INDEX_MARKER_LEN] {
    let mut out = [0u8; INDEX_MARKER_LEN];
    out[..2].copy_from_slice(&(INDEX_MARKER_LEN as u16).to_le_bytes());
    out[2] = INDEX_RTYPE;
    out[8..16].copy_from_slice(&entries.to_le_bytes());
    out
}

/// The footer pointing at the index marker at `index_offset`.
pub fn footer(index_offset: u64) -> [u8; FOOTER_LEN] {
    let mut out = [0u8; FOOTER_LEN];
    out[..8].copy_from_slice(&index_offset.to_le_bytes());
    out[8..].copy_from_slice(&FOOTER_MAGIC);
    out
}
