//! Ingest failover against a real nats-server: the lease (one holder at a
//! time; a standby takes it only once the holder stops refreshing; a
//! zombie holder learns it lost; a holder cut off from the bus gives it
//! up), the stream's tail, and a takeover mid-feed after which every
//! symbol is numbered 1..n in the stream with no gap and no duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use common::nats::NatsServer;
use common::{sym, until, within};
use quotehub_bus::lease::{LostReason, Refresh, Seen};
use quotehub_bus::{
    Bus, EdgeReader, IngestPublisher, IngestSettings, Lease, LeaseKeeper, LeaseSettings, LeaseState, LeaseValue,
    StreamSettings, Tail, TakeoverPlan,
};
use quotehub_proto::{Epoch, Flags, Quote, QuoteRecord, Record, Symbol, Trade, TradeRecord};
use tokio::sync::watch;

fn epoch_a() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_000a).unwrap()
}

fn epoch_b() -> Epoch {
    Epoch::from_u64(0x00c0_ffee_0000_000b).unwrap()
}

async fn server(test: &str) -> Option<(NatsServer, StreamSettings)> {
    let server = NatsServer::start(test).await?;
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let settings = StreamSettings::new(1000);
    within(settings.ensure(bus.jetstream())).await.unwrap();
    Some((server, settings))
}

/// A keeper for hub `holder` on its own connection (so that dropping it
/// is the hub dying: its connection goes with it).
async fn keeper(server: &NatsServer, stream: &StreamSettings, holder: &str, epoch: Epoch) -> (Bus, LeaseKeeper) {
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let lease = within(Lease::open(&bus, LeaseSettings::default(), holder))
        .await
        .unwrap();
    let keeper = LeaseKeeper::start(lease, &bus, stream.clone(), epoch);
    (bus, keeper)
}

async fn wait(state: &mut watch::Receiver<LeaseState>, what: impl Fn(&LeaseState) -> bool) -> LeaseState {
    within(state.wait_for(|state| what(state)))
        .await
        .expect("the keeper stopped")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_the_lease_only_once_the_holder_stops_refreshing() {
    let Some((server, stream)) = server("lease_takeover").await else {
        return;
    };
    let (_bus_a, a) = keeper(&server, &stream, "ingest-a", epoch_a()).await;
    let mut a_state = a.state();
    let state = wait(&mut a_state, |state| state.active).await;
    assert!(a.is_active());
    assert_eq!(
        (state.holder.as_deref(), state.epoch),
        (Some("ingest-a"), Some(epoch_a()))
    );

    let (_bus_b, b) = keeper(&server, &stream, "ingest-b", epoch_b()).await;
    let mut b_state = b.state();
    // Eight looks at the key span longer than the TTL: had the holder not
    // been refreshing, the standby would have taken it by now.
    let seen = wait(&mut b_state, |state| state.checks >= 8).await;
    assert!(!seen.active && !b.is_active(), "{seen:?}");
    assert_eq!(
        (seen.holder.as_deref(), seen.epoch),
        (Some("ingest-a"), Some(epoch_a()))
    );
    assert!(a.is_active(), "the holder kept it");

    // The holder dies (its task and connection go; nothing is released).
    let died = Instant::now();
    drop(a);
    let taken = wait(&mut b_state, |state| state.active).await;
    let takeover = died.elapsed();
    eprintln!(
        "takeover: the standby published {takeover:?} after the active died (bound: ttl 1.5 s + poll 0.25 s + round trips)"
    );
    assert!(b.is_active());
    assert_eq!(taken.holder.as_deref(), Some("ingest-b"));
    assert_eq!((taken.takeovers, taken.losses), (1, 0));
    // The stream is empty: the new holder publishes in its own space.
    assert_eq!(taken.epoch, Some(epoch_b()));

    // What any other hub reads in the key now.
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let observer = within(Lease::open(&bus, LeaseSettings::default(), "observer"))
        .await
        .unwrap();
    match within(observer.current()).await.unwrap() {
        Seen::Held(value) => assert_eq!(value.holder, "ingest-b"),
        other => panic!("{other:?}"),
    }
    // Given up cleanly, the key goes at once (no standby waits for the TTL).
    assert!(within(b.release()).await, "the holder deleted its key");
    assert_eq!(within(observer.current()).await.unwrap(), Seen::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_holder_learns_it_lost_and_stops() {
    let Some((server, stream)) = server("lease_zombie").await else {
        return;
    };
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    let intruder = LeaseValue {
        holder: "intruder".to_owned(),
        epoch: epoch_b(),
    }
    .encode();

    // A holder whose key another writer replaced (an operator, a hub
    // that does not compare-and-set): its refresh is refused and it stops
    // at once, though its own deadline has not passed.
    let mut zombie = within(Lease::open(&bus, LeaseSettings::default(), "zombie"))
        .await
        .unwrap();
    let store = within(bus.jetstream().get_key_value("QUOTEHUB_LEASE")).await.unwrap();
    assert!(within(zombie.acquire(epoch_a())).await.unwrap());
    within(store.put("ingest", intruder.clone())).await.unwrap();
    assert!(zombie.is_held(), "its own deadline has not passed");
    assert_eq!(within(zombie.refresh()).await, Refresh::Lost(LostReason::Taken));
    assert!(!zombie.is_held());

    // A refresh that landed but whose ack was lost (written here as the
    // holder would have written it) is not someone else's: still held.
    within(store.delete("ingest")).await.unwrap();
    let mut holder = within(Lease::open(&bus, LeaseSettings::default(), "holder"))
        .await
        .unwrap();
    assert!(within(holder.acquire(epoch_a())).await.unwrap());
    let own = LeaseValue {
        holder: "holder".to_owned(),
        epoch: epoch_a(),
    };
    within(store.put("ingest", own.encode())).await.unwrap();
    assert!(matches!(within(holder.refresh()).await, Refresh::Failed(_)));
    assert!(holder.is_held());
    assert_eq!(within(holder.refresh()).await, Refresh::Refreshed);
    within(holder.release()).await.unwrap();

    // A holder that stops refreshing (a paused process) without dying.
    within(store.delete("ingest")).await.unwrap();
    let mut paused = within(Lease::open(&bus, LeaseSettings::default(), "paused"))
        .await
        .unwrap();
    assert!(
        within(paused.acquire(epoch_a())).await.unwrap(),
        "a deleted key is free"
    );
    let (_bus_b, b) = keeper(&server, &stream, "ingest-b", epoch_b()).await;
    let mut b_state = b.state();
    wait(&mut b_state, |state| state.active).await;
    // The standby could take it only once the key expired, which is after
    // the paused holder's own deadline: never two publishers.
    assert!(!paused.is_held(), "the paused holder's own deadline passed first");
    assert_eq!(within(paused.refresh()).await, Refresh::Lost(LostReason::Unreachable));

    // The keeper as the zombie: its next refresh is refused, it stops.
    within(store.put("ingest", intruder)).await.unwrap();
    let lost = wait(&mut b_state, |state| state.losses == 1).await;
    assert_eq!(lost.takeovers, 1, "{lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_from_the_bus_gives_the_lease_up_and_takes_it_back() {
    let Some((mut server, stream)) = server("lease_cut_off").await else {
        return;
    };
    let (_bus_a, a) = keeper(&server, &stream, "ingest-a", epoch_a()).await;
    let mut state = a.state();
    wait(&mut state, |state| state.active).await;
    server.stop().await;
    let lost = wait(&mut state, |state| !state.active).await;
    assert!(!a.is_active());
    assert_eq!((lost.losses, lost.holder), (1, None));
    server.restart().await;
    let back = wait(&mut state, |state| state.active).await;
    assert_eq!((back.takeovers, back.losses), (2, 1));
}

/// Encoded record of feed event `n` numbered `seq`; the hub's receive
/// stamp `recv` differs between hubs. Sizes carry `n`.
fn encode(n: u64, seq: u64, recv: u64) -> (Symbol, Bytes) {
    const SYMBOLS: [&str; 4] = ["AAPL", "BRK.B", "MSFT", "ZVZZT"];
    // Irregular: symbols do not take turns.
    let symbol = sym(SYMBOLS[usize::try_from((n * 7 + n / 3) % 4).unwrap()]);
    let event_ts = 1_795_000_000_000_000_000 + n;
    let size = u32::try_from(n).unwrap();
    let bytes = if n.is_multiple_of(3) {
        Bytes::copy_from_slice(
            &TradeRecord {
                trade: Trade {
                    symbol,
                    price: "187.255".parse().unwrap(),
                    size,
                    event_ts,
                    recv_ts: recv,
                    seq,
                },
                flags: Flags(0),
                conflated: 0,
            }
            .encode(),
        )
    } else {
        Bytes::copy_from_slice(
            &QuoteRecord {
                quote: Quote {
                    symbol,
                    bid_price: "187.25".parse().unwrap(),
                    bid_size: size,
                    ask_price: "187.26".parse().unwrap(),
                    ask_size: 200,
                    event_ts,
                    recv_ts: recv,
                    seq,
                },
                flags: Flags(0),
                conflated: 0,
            }
            .encode(),
        )
    };
    (symbol, bytes)
}

/// The feed event number and the sequence number in a record.
fn event_and_seq(bytes: &[u8]) -> (u64, u64) {
    match Record::decode(bytes).unwrap().0 {
        Record::Quote(quote) => (u64::from(quote.quote.bid_size), quote.quote.seq),
        Record::Trade(trade) => (u64::from(trade.trade.size), trade.trade.seq),
        other => panic!("{other:?}"),
    }
}

/// What the ingest role will do, in miniature: number every event itself,
/// keep its recent records, and publish only while it holds the lease,
/// in the stream's numbers once it has taken over.
struct IngestHub {
    own_epoch: Epoch,
    recv: u64,
    bus: Bus,
    keeper: LeaseKeeper,
    publisher: IngestPublisher,
    own_seq: HashMap<Symbol, u64>,
    recent: HashMap<Symbol, Vec<Bytes>>,
    /// The epoch and each symbol's next number, while publishing.
    publishing: Option<(Epoch, HashMap<Symbol, u64>)>,
}

impl IngestHub {
    async fn start(server: &NatsServer, stream: &StreamSettings, holder: &str, own_epoch: Epoch, recv: u64) -> Self {
        let (bus, keeper) = keeper(server, stream, holder, own_epoch).await;
        let publisher = IngestPublisher::start(&bus, stream.subjects.clone(), IngestSettings::default());
        Self {
            own_epoch,
            recv,
            bus,
            keeper,
            publisher,
            own_seq: HashMap::new(),
            recent: HashMap::new(),
            publishing: None,
        }
    }

    fn on_event(&mut self, n: u64) {
        let (symbol, _) = encode(n, 0, 0);
        let own = self.own_seq.entry(symbol).or_insert(0);
        *own += 1;
        self.recent
            .entry(symbol)
            .or_default()
            .push(encode(n, *own, self.recv + n).1);
        if !self.keeper.is_active() {
            self.publishing = None;
        }
        if let Some((epoch, next)) = &mut self.publishing {
            let seq = next.entry(symbol).or_insert(1);
            self.publisher
                .publish(&symbol, *epoch, *seq, encode(n, *seq, self.recv + n).1);
            *seq += 1;
        }
    }

    async fn take_over(&mut self, stream: &StreamSettings) -> TakeoverPlan {
        let tail = within(Tail::read(&self.bus, stream)).await.unwrap();
        let plan = TakeoverPlan::new(self.own_epoch, &tail, &self.recent);
        for (symbol, takeover) in &plan.symbols {
            for (seq, bytes) in &takeover.publish {
                self.publisher.publish(symbol, plan.epoch, *seq, bytes.clone());
            }
        }
        self.publishing = Some((
            plan.epoch,
            plan.symbols
                .iter()
                .map(|(symbol, takeover)| (*symbol, takeover.next_seq))
                .collect(),
        ));
        plan
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_active_leaves_every_symbol_numbered_without_gap_or_duplicate() {
    let Some((server, stream)) = server("failover_mid_feed").await else {
        return;
    };
    const N: u64 = 900;
    let mut a = IngestHub::start(&server, &stream, "ingest-a", epoch_a(), 1_000_000).await;
    let mut a_state = a.keeper.state();
    wait(&mut a_state, |state| state.active).await;
    a.take_over(&stream).await;

    // The standby joins the feed late (it numbers from its own start).
    let mut b = IngestHub::start(&server, &stream, "ingest-b", epoch_b(), 2_000_000).await;
    let mut b_state = b.keeper.state();
    wait(&mut b_state, |state| state.holder.as_deref() == Some("ingest-a")).await;
    for n in 1..=N / 3 {
        a.on_event(n);
        if n > 50 {
            b.on_event(n);
        }
    }
    // Killed with records queued and in flight.
    until(|| a.publisher.counters().published >= 100).await;
    let published_by_a = a.publisher.counters().published;
    // Its records, numbered as it published them (it started the space).
    let zombie_records = a.recent.clone();
    let died = Instant::now();
    drop(a);

    // The feed goes on; the standby sees it, not yet publishing.
    for n in N / 3 + 1..=2 * N / 3 {
        b.on_event(n);
    }
    let taken = wait(&mut b_state, |state| state.active).await;
    eprintln!(
        "takeover: the standby took the lease {:?} after the active died ({published_by_a} of its records acked)",
        died.elapsed()
    );
    assert_eq!(taken.epoch, Some(epoch_a()), "the lease names the stream's space");
    let plan = b.take_over(&stream).await;
    assert_eq!(plan.epoch, epoch_a(), "the standby continues the active's numbers");
    assert_eq!((plan.unmatched, plan.ambiguous), (0, 0), "{plan:?}");
    eprintln!("takeover: the standby filled in {} records", plan.records());
    for n in 2 * N / 3 + 1..=N {
        b.on_event(n);
    }
    within(b.publisher.flush()).await;

    // The old active comes back as a zombie (a paused process resuming)
    // and sends everything it ever had: the message ids and the stream's
    // duplicate window store none of it again.
    let zombie = IngestPublisher::start(&b.bus, stream.subjects.clone(), IngestSettings::default());
    let mut resent = 0;
    for (symbol, records) in &zombie_records {
        for bytes in records {
            let (_, seq) = event_and_seq(bytes);
            zombie.publish(symbol, epoch_a(), seq, bytes.clone());
            resent += 1;
        }
    }
    within(zombie.flush()).await;
    let counters = zombie.counters();
    assert_eq!((counters.published, counters.duplicates), (0, resent), "{counters:?}");

    // Every symbol: the feed's events of it in order, numbered 1..n, in
    // the active's epoch, nothing twice.
    let mut expected: HashMap<Symbol, Vec<u64>> = HashMap::new();
    for n in 1..=N {
        expected.entry(encode(n, 0, 0).0).or_default().push(n);
    }
    for (symbol, events) in &expected {
        let mut reader = within(EdgeReader::open(&b.bus, &stream, symbol, 1000)).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..events.len() {
            let record = within(reader.next()).await;
            assert_eq!(record.epoch, Some(epoch_a()), "{}", symbol.as_str());
            got.push(event_and_seq(&record.payload));
        }
        let want: Vec<(u64, u64)> = events.iter().copied().zip(1..).collect();
        assert_eq!(got, want, "{}: events in order, numbered 1..n", symbol.as_str());
    }
    let mut info = within(b.bus.jetstream().get_stream(&stream.name)).await.unwrap();
    assert_eq!(
        within(info.info()).await.unwrap().state.messages,
        N,
        "one record per event: no duplicate under another number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_is_the_last_record_of_every_symbol_in_one_pass() {
    let Some((server, stream)) = server("bus_tail").await else {
        return;
    };
    let bus = within(Bus::connect(&server.url())).await.unwrap();
    assert!(within(Tail::read(&bus, &stream)).await.unwrap().is_empty());
    assert_eq!(
        within(quotehub_bus::tail::latest_epoch(&bus, &stream)).await.unwrap(),
        None
    );
    let publisher = IngestPublisher::start(&bus, stream.subjects.clone(), IngestSettings::default());
    const SYMBOLS: u64 = 2000;
    let name = |i: u64| sym(&format!("S{i}.X"));
    for seq in 1..=3 {
        for i in 0..SYMBOLS {
            let record = QuoteRecord {
                quote: Quote {
                    symbol: name(i),
                    bid_price: "1.5".parse().unwrap(),
                    bid_size: u32::try_from(i).unwrap(),
                    ask_price: "1.6".parse().unwrap(),
                    ask_size: 1,
                    event_ts: seq,
                    recv_ts: seq,
                    seq,
                },
                flags: Flags(0),
                conflated: 0,
            };
            // The last symbol's newest record is in the other space.
            let epoch = if i == SYMBOLS - 1 && seq == 3 {
                epoch_b()
            } else {
                epoch_a()
            };
            publisher.publish(&name(i), epoch, seq, Bytes::copy_from_slice(&record.encode()));
        }
    }
    within(publisher.flush()).await;
    let started = Instant::now();
    let tail = within(Tail::read(&bus, &stream)).await.unwrap();
    eprintln!("tail: {} symbols read in {:?}", tail.len(), started.elapsed());
    assert_eq!(tail.len(), usize::try_from(SYMBOLS).unwrap());
    for i in 0..SYMBOLS {
        let record = tail.get(&name(i)).unwrap();
        assert_eq!(record.seq(), Some(3), "{i}");
        let (event, _) = event_and_seq(&record.payload);
        assert_eq!(event, i);
    }
    assert_eq!(tail.epoch(), Some(epoch_b()), "the newest record's");
    assert_eq!(
        within(quotehub_bus::tail::latest_epoch(&bus, &stream)).await.unwrap(),
        Some(epoch_b())
    );
}
