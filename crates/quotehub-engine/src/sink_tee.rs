//! One [`RecordSink`] that hands each record to several: a hub has one
//! sink (`Hub::sink_to`), and both its bus and its delay lines may want
//! every record.

use std::sync::Arc;

use bytes::Bytes;
use quotehub_proto::{Epoch, StatusRecord, Symbol};

use crate::bus_link::RecordSink;

/// Forwards every record to each of its sinks, in order.
#[derive(Debug)]
pub struct SinkTee(pub Vec<Arc<dyn RecordSink>>);

impl RecordSink for SinkTee {
    fn sequenced(&self, symbol: Symbol, epoch: Epoch, seq: u64, record: &Bytes) {
        for sink in &self.0 {
            sink.sequenced(symbol, epoch, seq, record);
        }
    }

    fn derived(&self, symbol: Symbol, record: &Bytes) {
        for sink in &self.0 {
            sink.derived(symbol, record);
        }
    }

    fn status(&self, status: &StatusRecord) {
        for sink in &self.0 {
            sink.status(status);
        }
    }
}
