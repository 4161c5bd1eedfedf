//! An ingest hub's records onto the bus: the engine hands each record it
//! sequences ([`RecordSink`]) to the [`IngestPublisher`], which only queues
//! it. The `Bytes` is the one the subscribers' queues share: no re-encode,
//! no copy.

use bytes::Bytes;
use quotehub_engine::RecordSink;
use quotehub_proto::{Epoch, Symbol};

use crate::ingest::IngestPublisher;

impl RecordSink for IngestPublisher {
    fn sequenced(&self, symbol: Symbol, epoch: Epoch, seq: u64, record: &Bytes) {
        self.publish(&symbol, epoch, seq, record.clone());
    }
}
