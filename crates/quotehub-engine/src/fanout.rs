//! The fan-out loop: sequence an event, encode it once, hand the same bytes to
//! every subscriber's queue without ever waiting on one.

use std::collections::{HashMap, HashSet};

use bytes::{Bytes, BytesMut};
use quotehub_proto::record::{QUOTE_LEN, TRADE_LEN, restamp};
use quotehub_proto::{Event, Flags, QuoteRecord, Record, StatusCode, StatusRecord, Symbol, TradeRecord, now_ns};

use quotehub_feed::live::{LiveSink, UpstreamState};
use quotehub_feed::replay::{ReplaySink, ReplayStatus};
use quotehub_table::{Fanout, Passthrough};

use crate::client::{ClientHandle, Tally, wanted_by};
use crate::consolidation;
use crate::derived::{Emitter, Entry, SymbolHasher, lock};
use crate::hub::Hub;
use crate::staging::Staging;
use crate::stats::Stats;

/// Records are carved out of shared slabs of this size, so encoding a record
/// costs no allocation of its own.
pub(crate) const SLAB_BYTES: usize = 16 * 1024;

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
    /// When set, only these symbols are published (a per-feed filter).
    symbols: Option<HashSet<Symbol>>,
    /// Events a live source staged, delivered at [`Publisher::flush`].
    staging: Staging,
    /// The bars and BBO builders of the symbols this feed published (the
    /// hub's, shared with its other feeds), kept so that a lookup here needs
    /// no lock shared with them. Keyed by the symbol's 16 wire bytes as one
    /// `u128`, which hashes in one step where `Symbol`'s derived `Hash`
    /// (a length, then a byte slice) takes several: this lookup is on every
    /// quote's and trade's publish path.
    derived: HashMap<u128, Entry, SymbolHasher>,
}

impl Publisher {
    pub(crate) fn new(hub: Hub, flags: Flags, feed: u16) -> Self {
        Self {
            hub,
            flags,
            feed,
            slab: BytesMut::with_capacity(SLAB_BYTES),
            symbols: None,
            staging: Staging::default(),
            derived: HashMap::default(),
        }
    }

    /// Publishes only `symbols` (all when `None`); the others are counted
    /// as filtered in the hub's stats.
    #[must_use]
    pub fn only(mut self, symbols: Option<HashSet<Symbol>>) -> Self {
        self.symbols = symbols;
        self
    }

    /// False (and counted) when this feed's filter leaves `symbol` out.
    fn wanted(&self, symbol: Symbol) -> bool {
        let wanted = self.symbols.as_ref().is_none_or(|set| set.contains(&symbol));
        if !wanted {
            Stats::add(&self.hub.stats().events_filtered, 1);
        }
        wanted
    }

    /// Tells every connected client about a change of this feed's state.
    pub fn status(&self, code: StatusCode, detail: u64) {
        let status = StatusRecord {
            code,
            feed: self.feed,
            ts: now_ns(),
            detail,
        };
        self.hub.announce(status);
        if let Some(sink) = self.hub.record_sink() {
            sink.status(&status);
        }
    }

    /// Sequences, encodes once and queues `event` for every subscriber.
    /// `event.recv_ts` should be stamped by the caller when it received it.
    pub fn publish(&mut self, event: Event) {
        self.flush();
        if let Some(fanout) = self.ingest(event) {
            Stats::add(&self.hub.stats().events_in, 1);
            deliver(fanout, self.hub.stats());
        }
    }

    /// Like [`Publisher::publish`], but the subscribers' queues get the
    /// record at the next [`Publisher::flush`] (or once enough are staged),
    /// each client all of its records under one lock. For sources that
    /// receive events in bursts: call `flush` before waiting for more.
    pub fn stage(&mut self, event: Event) {
        if let Some(fanout) = self.ingest(event) {
            self.staging.stage(fanout, self.hub.stats());
        }
    }

    /// Delivers what [`Publisher::stage`] staged.
    pub fn flush(&mut self) {
        if !self.staging.is_empty() {
            self.staging.deliver(self.hub.stats());
        }
    }

    /// Sequences, encodes and records `event`: its fan-out, unless this
    /// feed's filter leaves it out. (The caller counts it in `events_in`;
    /// the staged path counts a batch at once.)
    fn ingest(&mut self, mut event: Event) -> Option<Fanout<ClientHandle>> {
        if !self.wanted(event.symbol()) {
            return None;
        }
        let flags = self.flags;
        let slab = &mut self.slab;
        let fanout = self.hub.table().publish(&mut event, |event| encode(slab, event, flags));
        if let Some(recorder) = self.hub.recorder() {
            recorder.record(&event);
        }
        self.derive(&event);
        // After what the event derived: the derived records reach this hub's
        // clients first (delivered at once), so a sink that passes both on
        // (a delay line) keeps that order.
        if let Some(sink) = self.hub.record_sink() {
            sink.sequenced(event.symbol(), self.hub.table().epoch(), fanout.seq, &fanout.record);
        }
        Some(fanout)
    }

    /// Starts the bars over: the event clock went back (a looped replay's
    /// next pass, a seek back), so the open bars close and older trades are
    /// taken again (see `Derived::rewind`).
    fn rewind_derived(&mut self) {
        let mut out = Emitter {
            table: self.hub.table(),
            stats: self.hub.stats(),
            slab: &mut self.slab,
            sink: self.hub.record_sink(),
        };
        self.hub.derived().rewind(now_ns(), &mut out);
    }

    /// Feeds `event` (sequenced) to what the hub derives from it, and
    /// publishes what that emits: the bars its event time closes, then, for
    /// a trade, the bars it closes of its symbol; for a quote, its symbol's
    /// new BBO if it changed.
    fn derive(&mut self, event: &Event) {
        let derived = self.hub.derived();
        let mut out = Emitter {
            table: self.hub.table(),
            stats: self.hub.stats(),
            slab: &mut self.slab,
            sink: self.hub.record_sink(),
        };
        let (symbol, recv_ts) = match event {
            Event::Quote(quote) => (quote.symbol, quote.recv_ts),
            Event::Trade(trade) => (trade.symbol, trade.recv_ts),
            _ => return,
        };
        if derived.due(event.event_ts()) {
            derived.advance(event.event_ts(), recv_ts, &mut out);
        }
        let key = u128::from_ne_bytes(symbol.to_wire());
        let entry = self.derived.entry(key).or_insert_with(|| derived.entry(symbol));
        let mut builders = lock(entry);
        builders.flags = self.flags;
        match event {
            Event::Trade(trade) => {
                // The hub received the closing trade when it learned the bar closed.
                let closed = builders.bars.trade(trade, trade.recv_ts);
                out.bars(&builders, closed);
                derived.note(builders.bars.next_close());
            }
            Event::Quote(quote) => {
                if let Some(bbo) = builders.bbo.quote(self.feed, quote) {
                    out.emit(symbol, &consolidation::encode(bbo, self.flags));
                }
            }
            _ => {}
        }
    }
}

impl Drop for Publisher {
    /// Nothing staged is lost when a source ends.
    fn drop(&mut self) {
        self.flush();
    }
}

/// Copies the one encoded record into every recipient's queue, counting
/// deliveries once per event rather than once per client.
pub(crate) fn deliver(fanout: Fanout<ClientHandle>, stats: &Stats) {
    let Fanout {
        record,
        subscribers,
        wildcard,
        ..
    } = fanout;
    let mut tally = Tally::default();
    let wanted = wanted_by(&record);
    for recipient in subscribers.iter().chain(wildcard.iter().flat_map(|all| all.iter())) {
        if recipient.wants(wanted) {
            recipient.subscriber.deliver_counted(&record, &mut tally);
        }
    }
    tally.add_to(stats);
}

impl Publisher {
    /// Publishes a quote or trade record relayed from another hub without
    /// re-encoding it: its bytes are copied once into the slab and only what
    /// this hub owns is patched in place — the per-symbol sequence number
    /// (this hub's, so its clients see no gaps of their own and can resume
    /// here), the receive time (`recv_ts`, so `ingest_to_send` measures this
    /// hub), and the flags (the upstream's `SNAPSHOT`/`RESET` describe the
    /// relay's own subscription, not news for this hub's clients; `REPLAYED`
    /// and `CONFLATED` stay true of the data). Prices, sizes, symbol and
    /// venue time are never decoded, so they cannot change on the way.
    ///
    /// A record the upstream conflated for the relay keeps its flag and its
    /// `conflated` count, and this hub's sequence moves past the updates it
    /// stands for (`1 + conflated`), so this hub's clients keep the rule
    /// `seq == last + 1 + conflated`. Clearing the flag and moving by one
    /// would be a lie: those updates were lost on the way here, and a
    /// client must be able to tell (SPEC.md, "Slow consumers").
    pub fn publish_relayed(&mut self, symbol: Symbol, is_quote: bool, record: &[u8], recv_ts: u64) {
        self.flush();
        if !self.wanted(symbol) {
            return;
        }
        let own = Flags::SNAPSHOT.with(Flags::RESET);
        let flags = Flags(record.get(3).map_or(0, |flags| flags & !own.0)).with(self.flags);
        // A count without the flag means nothing (SPEC: 0 if none); it is cleared below.
        let merged = match record.get(4..8) {
            Some(&[a, b, c, d]) if flags.contains(Flags::CONFLATED) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        };
        let slab = &mut self.slab;
        let fanout = self.hub.table().publish_merged_record(symbol, is_quote, merged, |seq| {
            if slab.capacity() < record.len() {
                *slab = BytesMut::with_capacity(SLAB_BYTES.max(record.len()));
            }
            slab.extend_from_slice(record);
            restamp(slab, flags, seq);
            if let Some(count) = slab.get_mut(CONFLATED_AT..CONFLATED_AT + 4) {
                count.copy_from_slice(&merged.to_le_bytes());
            }
            if let Some(recv) = slab.get_mut(RECV_TS_AT..RECV_TS_AT + 8) {
                recv.copy_from_slice(&recv_ts.to_le_bytes());
            }
            slab.split().freeze()
        });
        Stats::add(&self.hub.stats().events_in, 1);
        if let Some(sink) = self.hub.record_sink() {
            sink.sequenced(symbol, self.hub.table().epoch(), fanout.seq, &fanout.record);
        }
        if let Some(recorder) = self.hub.recorder() {
            // Recording decodes the relayed record; relaying itself never does.
            match Record::decode(&fanout.record) {
                Ok((Record::Quote(QuoteRecord { quote, .. }), _)) => recorder.record(&Event::Quote(quote)),
                Ok((Record::Trade(TradeRecord { trade, .. }), _)) => recorder.record(&Event::Trade(trade)),
                _ => {}
            }
        }
        deliver(fanout, self.hub.stats());
    }
}

impl Publisher {
    /// Publishes a quote or trade record with the sequence number it
    /// carries (an edge passing the ingest hub's numbers through): its
    /// bytes are stored and fanned out exactly as received, flags, stamps
    /// and all, so every edge of one ingest hub holds the same records.
    /// False, counted in `passthrough_refused` and not published, when the
    /// number is not past the symbol's last (a duplicate) or the record is
    /// too short to carry one. A jump is published and counted in
    /// `passthrough_gaps`, not flagged: the record is the upstream's, and
    /// a client sees the jump in the numbers (`seq != last + 1 +
    /// conflated`), which is what SPEC.md tells it to check. This feed's
    /// symbol filter and flags do not apply: the upstream chose both.
    pub fn publish_passthrough(&mut self, symbol: Symbol, is_quote: bool, record: &[u8]) -> bool {
        self.flush();
        let stats = self.hub.stats();
        let Some(&[a, b, c, d, e, f, g, h]) = record.get(SEQ_AT..SEQ_AT + 8) else {
            Stats::add(&stats.passthrough_refused, 1);
            return false;
        };
        let seq = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let conflated = match record.get(CONFLATED_AT..CONFLATED_AT + 4) {
            Some(&[a, b, c, d])
                if record
                    .get(3)
                    .is_some_and(|&flags| Flags(flags).contains(Flags::CONFLATED)) =>
            {
                u32::from_le_bytes([a, b, c, d])
            }
            _ => 0,
        };
        if self.slab.capacity() < record.len() {
            self.slab = BytesMut::with_capacity(SLAB_BYTES.max(record.len()));
        }
        self.slab.extend_from_slice(record);
        let bytes = self.slab.split().freeze();
        let (fanout, skipped) = match self.hub.table().publish_passthrough(symbol, is_quote, seq, bytes) {
            Passthrough::Published { fanout, skipped } => (fanout, skipped),
            Passthrough::Refused { .. } => {
                Stats::add(&stats.passthrough_refused, 1);
                return false;
            }
        };
        // Updates the upstream merged into this record are not missing.
        if skipped > u64::from(conflated) {
            Stats::add(&stats.passthrough_gaps, 1);
        }
        Stats::add(&stats.events_in, 1);
        deliver(fanout, stats);
        true
    }
}

impl Publisher {
    /// Publishes a bar or BBO record another hub derived (a delay line
    /// releasing the real hub's), bytes and number unchanged: kept as its
    /// channel's last value and fanned out to its channel's subscribers.
    /// This hub derives nothing from passed-through records, so there is
    /// never a second bar or BBO of its own beside it.
    pub fn publish_derived_passthrough(&mut self, symbol: Symbol, record: &[u8]) {
        self.flush();
        Emitter {
            table: self.hub.table(),
            stats: self.hub.stats(),
            slab: &mut self.slab,
            sink: self.hub.record_sink(),
        }
        .emit(symbol, record);
    }

    /// Sends another hub's status record (a delay line releasing the real
    /// hub's) to every client of this one, unchanged.
    pub fn publish_status_passthrough(&mut self, status: StatusRecord) {
        self.flush();
        self.hub.announce(status);
    }
}

/// Where quote and trade records hold their sequence number (see `quotehub_proto::record`).
const SEQ_AT: usize = 24;

/// Where quote and trade records hold `recv_ts` (see `quotehub_proto::record`).
const RECV_TS_AT: usize = 40;

/// Where quote and trade records hold their `conflated` count (see `quotehub_proto::record`).
const CONFLATED_AT: usize = 4;

/// A replay publishes through its feed's publisher: events stamped with the
/// time they are released, state changes as status records.
impl ReplaySink for Publisher {
    fn event(&mut self, mut event: Event) {
        event.set_recv_ts(now_ns());
        self.publish(event);
    }

    fn status(&mut self, status: ReplayStatus) {
        self.flush();
        if let ReplayStatus::Looped { .. } = status {
            // The next pass's trades are as old as the first's: without
            // this, every one of them would be late for its bars.
            self.rewind_derived();
        }
        let (code, detail) = status_code(status);
        Publisher::status(self, code, detail);
    }

    /// A seek back: the trades after it are as old as those already
    /// replayed, as in a loop's next pass.
    fn rewound(&mut self) {
        self.flush();
        self.rewind_derived();
    }
}

/// A live source publishes through its feed's publisher: events as they
/// come (stamped by the source on receipt), staged until the source flushes
/// before it waits for more; its upstream's state as
/// `UpstreamDown`/`UpstreamUp` status records.
impl LiveSink for Publisher {
    fn event(&mut self, event: Event) {
        self.stage(event);
    }

    fn flush(&mut self) {
        Publisher::flush(self);
    }

    fn upstream(&mut self, state: UpstreamState) {
        self.flush();
        let code = match state {
            UpstreamState::Up => StatusCode::UpstreamUp,
            UpstreamState::Down => StatusCode::UpstreamDown,
        };
        Publisher::status(self, code, 0);
        if state == UpstreamState::Down {
            // Its book may move while the hub cannot see it (consolidation.rs).
            self.hub.feed_down(self.feed);
        }
    }
}

/// The status code and detail that tell clients of a replay's state change.
pub fn status_code(status: ReplayStatus) -> (StatusCode, u64) {
    match status {
        ReplayStatus::Started => (StatusCode::ReplayStarted, 0),
        ReplayStatus::Looped { pass } => (StatusCode::ReplayLooped, pass),
        ReplayStatus::Ended { events } => (StatusCode::ReplayEnded, events),
    }
}

/// Encodes one event as its record into `slab` (the one encoding of live
/// records, also used by replay sessions).
pub fn encode(slab: &mut BytesMut, event: &Event, flags: Flags) -> Bytes {
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
