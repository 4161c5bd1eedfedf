//! The tally of what the clients measure (a tally, not a "recorder": that
//! word is the hub's `record` run's): per phase, an HDR histogram of feed-in
//! to client-receive (from each quote's intended send time) and, for the hub,
//! one of its own ingest-to-send (from the record's `recv_ts` and the
//! message's `send_ts`) and one of send-to-client-receive (the message's
//! `send_ts` and the receive time); plus delivery counts and conflations.
//! Over the bus `recv_ts` is the ingest hub's and `send_ts` the edge's, so
//! the two split the way at the edge's send.
//!
//! HDR histograms keep 3 significant digits from 1 ns to 100 s in a fixed
//! few hundred KiB, merge exactly, and answer any percentile, which a
//! reservoir or fixed buckets would not at p99.9 and max.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use quotehub_proto::Flags;
use quotehub_proto::record::{MESSAGE_HEADER_LEN, QUOTE_LEN, rtype};

/// Bytes of the symbol field of a quote record (SPEC.md).
const SYMBOL_LEN: usize = 16;
/// Highest latency a histogram holds; anything above is clamped to it.
const MAX_NS: u64 = 100_000_000_000;

#[allow(clippy::expect_used)] // constant bounds, not outside data
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("1 ns to 100 s at 3 significant digits is a valid histogram")
}

/// One measured phase, as seen by some clients.
#[derive(Debug, Clone)]
pub struct PhaseTally {
    pub latency: Histogram<u64>,
    pub hub_latency: Histogram<u64>,
    /// The sending hub's `send_ts` to client receive (the socket and the client).
    pub wire_latency: Histogram<u64>,
    /// Quote records received (a conflated one counts once).
    pub records: u64,
    /// Messages that carried them (how well the target batches).
    pub messages: u64,
    /// Receive times of the first and last of them, ns since the epoch.
    pub first_receive_ns: u64,
    pub last_receive_ns: u64,
}

impl PhaseTally {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            hub_latency: new_histogram(),
            wire_latency: new_histogram(),
            records: 0,
            messages: 0,
            first_receive_ns: u64::MAX,
            last_receive_ns: 0,
        }
    }

    pub fn merge(&mut self, other: &PhaseTally) {
        let _ = self.latency.add(&other.latency);
        let _ = self.hub_latency.add(&other.hub_latency);
        let _ = self.wire_latency.add(&other.wire_latency);
        self.records += other.records;
        self.messages += other.messages;
        self.first_receive_ns = self.first_receive_ns.min(other.first_receive_ns);
        self.last_receive_ns = self.last_receive_ns.max(other.last_receive_ns);
    }
}

/// A client thread's tallies; the clients of one thread share one.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Indexed by phase number (0 is the warm-up and gets no histogram).
    pub phases: Vec<Option<PhaseTally>>,
    /// Updates delivered: each quote record counts 1 plus its `conflated`.
    pub updates: u64,
    /// Quote records received, warm-up included.
    pub records: u64,
    /// Records flagged CONFLATED, and the updates they merged beyond themselves.
    pub conflated_records: u64,
    pub conflated_updates: u64,
    /// Messages that did not parse as a message header plus records.
    pub malformed: u64,
    /// Updates missing between two records of a symbol a client did get
    /// (from the hub's sequence numbers, [`seq_gaps`]): lost on the way,
    /// not merely late at the end of a run.
    pub gap_updates: u64,
}

/// A quote record's fields the bench reads, by their SPEC.md offsets.
fn u64_at(record: &[u8], offset: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&record[offset..offset + 8]);
    u64::from_le_bytes(bytes)
}

fn u32_at(record: &[u8], offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&record[offset..offset + 4]);
    u32::from_le_bytes(bytes)
}

/// Updates a client missed between two records of one symbol in this
/// message and the ones before it (`last_seq`: the client's last `seq` per
/// symbol): a record's `seq` should be one past the last plus what it
/// conflated. Only for targets that number records (the hub, the bus).
pub fn seq_gaps(message: &[u8], last_seq: &mut HashMap<[u8; SYMBOL_LEN], u64>) -> u64 {
    if message.len() < MESSAGE_HEADER_LEN || message[2] != rtype::MESSAGE_HEADER {
        return 0;
    }
    let mut rest = &message[MESSAGE_HEADER_LEN..];
    let mut gaps = 0;
    while rest.len() >= 4 {
        let length = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        if length < 4 || length > rest.len() {
            break;
        }
        let (record, tail) = rest.split_at(length);
        rest = tail;
        if record[2] != rtype::QUOTE || length < QUOTE_LEN {
            continue;
        }
        let mut symbol = [0u8; SYMBOL_LEN];
        symbol.copy_from_slice(&record[8..8 + SYMBOL_LEN]);
        let seq = u64_at(record, 24);
        let conflated = u64::from(u32_at(record, 4));
        if let Some(last) = last_seq.insert(symbol, seq) {
            gaps += seq.saturating_sub(last.saturating_add(1).saturating_add(conflated));
        }
    }
    gaps
}

impl Tally {
    pub fn phase(&mut self, number: usize) -> &mut PhaseTally {
        if self.phases.len() <= number {
            self.phases.resize(number + 1, None);
        }
        self.phases[number].get_or_insert_with(PhaseTally::new)
    }

    /// Counts one binary message received at `received_ns`; returns the
    /// updates it delivered. `hub_stamps`: the records carry the hub's
    /// `recv_ts` and the header its `send_ts`.
    pub fn on_message(&mut self, message: &[u8], received_ns: u64, hub_stamps: bool) -> u64 {
        if message.len() < MESSAGE_HEADER_LEN || message[2] != rtype::MESSAGE_HEADER {
            self.malformed += 1;
            return 0;
        }
        let send_ts = u64_at(message, 8);
        let mut rest = &message[MESSAGE_HEADER_LEN..];
        let mut delivered = 0;
        let mut counted_phase = None;
        while rest.len() >= 4 {
            let length = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            if length < 4 || length > rest.len() {
                self.malformed += 1;
                break;
            }
            let (record, tail) = rest.split_at(length);
            rest = tail;
            let flags = Flags(record[3]);
            if record[2] != rtype::QUOTE || length < QUOTE_LEN || flags.contains(Flags::SNAPSHOT) {
                continue;
            }
            let conflated = u64::from(u32_at(record, 4));
            let event_ts = u64_at(record, 32);
            let recv_ts = u64_at(record, 40);
            let phase = u32_at(record, 64);
            self.records += 1;
            delivered += 1 + conflated;
            if flags.contains(Flags::CONFLATED) {
                self.conflated_records += 1;
                self.conflated_updates += conflated;
            }
            if phase == 0 {
                continue;
            }
            let measured = self.phase(usize::try_from(phase).unwrap_or(0));
            if counted_phase != Some(phase) {
                counted_phase = Some(phase);
                measured.messages += 1;
            }
            measured.records += 1;
            measured.first_receive_ns = measured.first_receive_ns.min(received_ns);
            measured.last_receive_ns = measured.last_receive_ns.max(received_ns);
            let _ = measured
                .latency
                .record(received_ns.saturating_sub(event_ts).clamp(1, MAX_NS));
            if hub_stamps && recv_ts > 0 {
                let _ = measured
                    .hub_latency
                    .record(send_ts.saturating_sub(recv_ts).clamp(1, MAX_NS));
            }
            if hub_stamps && send_ts > 0 {
                let _ = measured
                    .wire_latency
                    .record(received_ns.saturating_sub(send_ts).clamp(1, MAX_NS));
            }
        }
        self.updates += delivered;
        delivered
    }

    pub fn merge(&mut self, other: &Tally) {
        for (number, phase) in other.phases.iter().enumerate() {
            if let Some(phase) = phase {
                self.phase(number).merge(phase);
            }
        }
        self.updates += other.updates;
        self.records += other.records;
        self.conflated_records += other.conflated_records;
        self.conflated_updates += other.conflated_updates;
        self.malformed += other.malformed;
        self.gap_updates += other.gap_updates;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Layout, Workload, binary_record, quote};
    use quotehub_proto::MessageHeader;

    #[test]
    fn a_message_counts_latency_from_the_intended_time_and_conflations() {
        let workload = Workload::new(1, 2, 1, Layout::Blocks).unwrap();
        let mut message = MessageHeader::encode(5_000).to_vec();
        binary_record(&quote(&workload, 0, 1_000, 1), &mut message);
        let mut conflated = Vec::new();
        binary_record(&quote(&workload, 1, 2_000, 0), &mut conflated);
        conflated[3] = Flags::CONFLATED.0;
        conflated[4] = 3;
        message.extend_from_slice(&conflated);
        let mut tally = Tally::default();
        assert_eq!(tally.on_message(&message, 10_000, false), 5);
        assert_eq!(
            (tally.records, tally.conflated_records, tally.conflated_updates),
            (2, 1, 3)
        );
        let phase = tally.phase(1).clone();
        assert_eq!(phase.records, 1, "the warm-up quote is not measured");
        assert!(phase.latency.equivalent(phase.latency.max(), 9_000));
        assert!(phase.hub_latency.is_empty());
        assert!(phase.wire_latency.is_empty());
    }

    #[test]
    fn hub_stamps_split_the_way_at_the_send() {
        let workload = Workload::new(1, 1, 1, Layout::Blocks).unwrap();
        // Intended at 1,000 ns, received by the (ingest) hub at 1,400, sent
        // (by the edge) at 6,000, read by the client at 10,000.
        let mut message = MessageHeader::encode(6_000).to_vec();
        let mut record = quote(&workload, 0, 1_000, 1);
        record.recv_ts = 1_400;
        binary_record(&record, &mut message);
        let mut tally = Tally::default();
        assert_eq!(tally.on_message(&message, 10_000, true), 1);
        let phase = tally.phase(1).clone();
        assert!(phase.latency.equivalent(phase.latency.max(), 9_000));
        assert!(phase.hub_latency.equivalent(phase.hub_latency.max(), 4_600));
        assert!(phase.wire_latency.equivalent(phase.wire_latency.max(), 4_000));
    }

    #[test]
    fn a_sequence_jump_counts_the_updates_missed_and_a_conflation_is_not_one() {
        let workload = Workload::new(1, 2, 2, Layout::Blocks).unwrap();
        let record = |k: u64, seq: u64, conflated: u8| {
            let mut quote = quote(&workload, k, 1_000, 1);
            quote.seq = seq;
            let mut bytes = Vec::new();
            binary_record(&quote, &mut bytes);
            bytes[4] = conflated;
            bytes
        };
        let mut last = HashMap::new();
        let mut message = MessageHeader::encode(5_000).to_vec();
        // Symbol 0: 1, then 2, then 5 conflating 2 (3 and 4 merged into it).
        for bytes in [record(0, 1, 0), record(0, 2, 0), record(0, 5, 2)] {
            message.extend_from_slice(&bytes);
        }
        assert_eq!(seq_gaps(&message, &mut last), 0);
        // Symbol 0 goes on at 9 (6, 7, 8 missed); symbol 1 starts at 4 (its first seen).
        let mut message = MessageHeader::encode(5_000).to_vec();
        message.extend_from_slice(&record(0, 9, 0));
        message.extend_from_slice(&record(1, 4, 0));
        assert_eq!(seq_gaps(&message, &mut last), 3);
    }

    #[test]
    fn a_truncated_message_is_counted_not_trusted() {
        let mut tally = Tally::default();
        assert_eq!(tally.on_message(&[1, 2, 3], 1, true), 0);
        let mut message = MessageHeader::encode(5_000).to_vec();
        message.extend_from_slice(&[72, 0, 2, 0, 0, 0]);
        assert_eq!(tally.on_message(&message, 1, true), 0);
        assert_eq!(tally.malformed, 2);
    }
}
