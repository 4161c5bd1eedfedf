//! A run: the records of one binary message, held as parts. A part is
//! either records copied into the client's own buffer or a body of records
//! shared with the other clients that get exactly the same records in the
//! same publisher batch (see `staging.rs`). The writer sends a run's parts
//! behind its headers in one vectored write (see `writer.rs`), so a shared
//! body is never copied per client in user space.

use std::borrow::Cow;

use bytes::Bytes;

/// Records bound for one message.
#[derive(Debug, Default)]
pub struct Run {
    /// The records in wire order; no part is empty and none cuts a record.
    pub parts: Vec<Bytes>,
    /// How many records the parts hold.
    pub records: u32,
    /// Snapshots and resumed history rather than live records: their
    /// receive times are old, so the writer does not time them.
    pub catch_up: bool,
}

impl Run {
    /// Bytes of records (the message without its header).
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the run holds no record bytes.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Bytes::is_empty)
    }

    /// The records as one slice: borrowed when the run has a single part.
    /// For renderings that decode (JSON, SSE) and for tests.
    pub fn contiguous(&self) -> Cow<'_, [u8]> {
        match self.parts.as_slice() {
            [] => Cow::Borrowed(&[]),
            [part] => Cow::Borrowed(part),
            parts => Cow::Owned(parts.concat()),
        }
    }
}

/// The records of a byte run, one slice each, by their length prefix (bytes
/// 0..2, little-endian, see SPEC.md); ends at the first that is too short to
/// be a record or runs past the end.
#[derive(Debug)]
pub struct Records<'a>(pub &'a [u8]);

/// The shortest record: its length, type and flags (bytes 0..4).
const MIN_RECORD_LEN: usize = 4;

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0;
        let length = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        if length < MIN_RECORD_LEN || length > rest.len() {
            return None;
        }
        let (record, after) = rest.split_at(length);
        self.0 = after;
        Some(record)
    }
}

/// Where to cut a run of whole records so that the first piece ends with the
/// record that reaches `room` bytes: the cut's offset and the records before
/// it. Cuts after everything when no record reaches `room` or the bytes do
/// not parse as records (the records a publisher staged always do).
pub(crate) fn cut_reaching(bytes: &[u8], room: usize) -> (usize, u32) {
    let (mut offset, mut records) = (0, 0);
    for record in Records(bytes) {
        offset += record.len();
        records += 1;
        if offset >= room {
            return (offset, records);
        }
    }
    (bytes.len(), records)
}

/// A record of `length` bytes (at least 4) whose other bytes are `fill`:
/// whole records for tests (here and the server's writer), which nothing
/// here decodes further.
#[doc(hidden)]
pub fn test_record(length: u16, fill: u8) -> Vec<u8> {
    let mut bytes = vec![fill; usize::from(length)];
    bytes[..2].copy_from_slice(&length.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(length: u16, fill: u8) -> Vec<u8> {
        test_record(length, fill)
    }

    #[test]
    fn records_are_split_by_their_length_prefix_and_a_cut_short_one_ends_the_walk() {
        let run = [record(8, 1), record(24, 2), record(4, 3)].concat();
        let lengths: Vec<usize> = Records(&run).map(<[u8]>::len).collect();
        assert_eq!(lengths, [8, 24, 4]);
        let cut_short = [record(8, 1), record(24, 2)[..10].to_vec()].concat();
        assert_eq!(Records(&cut_short).count(), 1);
        let too_short = [record(8, 1), vec![2, 0, 9, 9]].concat();
        assert_eq!(Records(&too_short).count(), 1, "a length under 4 is no record");
        assert_eq!(Records(&[8]).count(), 0);
    }

    #[test]
    fn a_cut_ends_with_the_record_that_reaches_the_room() {
        let run = [record(8, 1), record(8, 2), record(8, 3)].concat();
        assert_eq!(cut_reaching(&run, 1), (8, 1));
        assert_eq!(cut_reaching(&run, 8), (8, 1));
        assert_eq!(cut_reaching(&run, 9), (16, 2));
        assert_eq!(cut_reaching(&run, 24), (24, 3));
        assert_eq!(cut_reaching(&run, 100), (24, 3), "nothing reaches: all of it");
    }

    #[test]
    fn a_run_is_contiguous_without_a_copy_when_it_has_one_part() {
        let one = Run {
            parts: vec![Bytes::from(record(8, 1))],
            records: 1,
            catch_up: false,
        };
        assert!(matches!(one.contiguous(), Cow::Borrowed(_)));
        let two = Run {
            parts: vec![Bytes::from(record(8, 1)), Bytes::from(record(4, 2))],
            records: 2,
            catch_up: false,
        };
        assert_eq!(two.len(), 12);
        assert_eq!(two.contiguous().as_ref(), [record(8, 1), record(4, 2)].concat());
    }
}
