//! The fan-out loop: sequence an event, encode it once, hand the same bytes to
//! every subscriber's queue without ever waiting on one.

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{QUOTE_LEN, TRADE_LEN};
use quotehub_proto::{Event, Flags, QuoteRecord, StatusCode, StatusRecord, TradeRecord, now_ns};

use quotehub_feed::live::{LiveSink, UpstreamState};
use quotehub_feed::replay::{ReplaySink, ReplayStatus};

use crate::hub::Hub;
use crate::stats::Stats;

/// Records are carved out of shared slabs of this size, so encoding a record
/// costs no allocation of its own.
const SLAB_BYTES: usize = 16 * 1024;

/// Publishes events into the hub. One per feed; it runs on the feed's thread.
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    /// Flags set on every record this publisher encodes (REPLAYED for replays).
    flags: Flags,
    /// This feed's number in status records.
    feed: u16,
    /// Where records are encoded; each is split off as its own `Bytes`.
    slab: BytesMut,
}

impl Publisher {
    pub(crate) fn new(hub: Hub, flags: Flags, feed: u16) -> Self {
        Self {
            hub,
            flags,
            feed,
            slab: BytesMut::with_capacity(SLAB_BYTES),
        }
    }

    /// Tells every connected client about a change of this feed's state.
    pub fn status(&self, code: StatusCode, detail: u64) {
        self.hub.announce(StatusRecord {
            code,
            feed: self.feed,
            ts: now_ns(),
            detail,
        });
    }

    /// Sequences, encodes once and queues `event` for every subscriber.
    /// `event.recv_ts` should be stamped by the caller when it received it.
    pub fn publish(&mut self, mut event: Event) {
        let flags = self.flags;
        let slab = &mut self.slab;
        let fanout = self.hub.table().publish(&mut event, |event| encode(slab, event, flags));
        Stats::add(&self.hub.stats().events_in, 1);
        for client in fanout.recipients() {
            client.deliver(fanout.record.clone());
        }
    }
}

/// A replay publishes through its feed's publisher: events stamped with the
/// time they are released, state changes as status records.
impl ReplaySink for Publisher {
    fn event(&mut self, mut event: Event) {
        event.set_recv_ts(now_ns());
        self.publish(event);
    }

    fn status(&mut self, status: ReplayStatus) {
        match status {
            ReplayStatus::Started => Publisher::status(self, StatusCode::ReplayStarted, 0),
            ReplayStatus::Looped { pass } => Publisher::status(self, StatusCode::ReplayLooped, pass),
            ReplayStatus::Ended { events } => Publisher::status(self, StatusCode::ReplayEnded, events),
        }
    }
}

/// A live source publishes through its feed's publisher: events as they
/// come (stamped by the source on receipt), its upstream's state as
/// `UpstreamDown`/`UpstreamUp` status records.
impl LiveSink for Publisher {
    fn event(&mut self, event: Event) {
        self.publish(event);
    }

    fn upstream(&mut self, state: UpstreamState) {
        let code = match state {
            UpstreamState::Up => StatusCode::UpstreamUp,
            UpstreamState::Down => StatusCode::UpstreamDown,
        };
        Publisher::status(self, code, 0);
    }
}

fn encode(slab: &mut BytesMut, event: &Event, flags: Flags) -> Bytes {
    if slab.capacity() < QUOTE_LEN.max(TRADE_LEN) {
        *slab = BytesMut::with_capacity(SLAB_BYTES);
    }
    match event {
        Event::Quote(quote) => slab.extend_from_slice(
            &QuoteRecord {
                quote: *quote,
                flags,
                conflated: 0,
            }
            .encode(),
        ),
        Event::Trade(trade) => slab.extend_from_slice(
            &TradeRecord {
                trade: *trade,
                flags,
                conflated: 0,
            }
            .encode(),
        ),
        // New event kinds get a record type before a feed may produce them.
        _ => {}
    }
    slab.split().freeze()
}
