//! The admin endpoints of the hub's replay: pause holds it still (nothing is
//! published while paused), resume continues without a gap, seek jumps,
//! speed changes the pace; only admin keys (or, without keys, loopback
//! clients from the same origin) may use them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, bundled_feed, http_request, key, next, within};
use quotehub_client::{Client, Update};
use quotehub_feed::{ReplayControl, ReplayWindow, Speed, open_recorded, replay_controlled};
use quotehub_proto::{Flags, StatusCode};
use quotehub_server::{Access, ApiKey, ReplayAdmin, ServerConfig, ServerState};
use serde_json::Value;

/// A hub replaying the bundled feed at `speed` under admin control (held
/// before its first event when `paused`).
async fn hub_replaying(speed: Speed, access: Access, paused: bool) -> (TestHub, std::thread::JoinHandle<()>) {
    let control = ReplayControl::new(speed);
    if paused {
        control.pause();
    }
    let config = ServerConfig {
        access,
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    };
    let state = ServerState::new(config).unwrap().with_replay_admin(ReplayAdmin {
        control: control.clone(),
        window: ReplayWindow::default(),
        feed: "bundled".into(),
    });
    let hub = TestHub::start_with_state(state).await;
    let publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let replay = std::thread::spawn(move || {
        let mut feed = open_recorded(&bundled_feed()).unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let window = ReplayWindow::default();
        replay_controlled(feed.as_mut(), false, &window, &control, &stop, publisher).unwrap();
    });
    (hub, replay)
}

async fn admin(hub: &TestHub, method: &str, path: &str) -> (u16, Value) {
    let (status, body) = http_request(hub, method, path, &[]).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON: {body}")),
    )
}

/// Waits until the replay's state satisfies `condition`, by asking for it.
async fn state_until(hub: &TestHub, condition: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let (status, state) = admin(hub, "GET", "/admin/replay").await;
            assert_eq!(status, 200, "{state}");
            if condition(&state) {
                return state;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// Every event the client has been sent so far: a request's ack comes
/// after all records queued before it.
async fn drain(client: &mut Client) -> Vec<Update> {
    client.subscribe(&["ZZZZ"]).await.unwrap();
    let mut updates = Vec::new();
    // subscribe() buffered what came before the ack; next_update() hands it out.
    while let Ok(Some(update)) = tokio::time::timeout(std::time::Duration::ZERO, client.next_update())
        .await
        .unwrap_or(Ok(None))
    {
        updates.push(update);
    }
    updates
}

fn events(updates: &[Update]) -> usize {
    updates
        .iter()
        .filter(|u| matches!(u, Update::Quote { .. } | Update::Trade { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_resume_continues_seek_jumps_speed_changes() {
    let (hub, replay) = hub_replaying(Speed::Factor(1.0), Access::default(), true).await;
    // Subscribed before the first event, so that the client gets every one.
    let mut client = hub.connect().await;
    client.subscribe(&["*"]).await.unwrap();
    admin(&hub, "POST", "/admin/replay/resume").await;
    // Real time: a few events arrive, then pause. (The replay_started status
    // comes too when the client connected before the replay began.)
    let mut first = 0;
    while first < 5 {
        if matches!(next(&mut client).await, Update::Quote { .. } | Update::Trade { .. }) {
            first += 1;
        }
    }
    let (status, state) = admin(&hub, "POST", "/admin/replay/pause").await;
    assert_eq!((status, state["paused"].as_bool()), (200, Some(true)), "{state}");
    let paused = state_until(&hub, |state| state["phase"] == "paused").await;
    let delivered = paused["delivered"].as_u64().unwrap();
    // Everything published before the pause, and nothing after it.
    let mut received = first + events(&drain(&mut client).await);
    let published = hub.hub.stats().events_in.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(published, delivered, "the state counts what was published");
    for _ in 0..3 {
        let still = state_until(&hub, |_| true).await;
        assert_eq!(
            still["delivered"].as_u64(),
            Some(delivered),
            "nothing delivered while paused"
        );
    }
    received += events(&drain(&mut client).await);
    assert_eq!(received as u64, delivered, "nothing arrived while paused");

    // Resume: the next event continues its symbol's sequence.
    admin(&hub, "POST", "/admin/replay/resume").await;
    let update = next(&mut client).await;
    let (symbol, seq, _) = key(&update);
    assert_eq!(client.last_seq(&symbol.parse().unwrap()), Some(seq));
    assert_eq!(client.gaps(), 0);

    // Seek forward two minutes: the next event is the feed's first at or after then.
    let target = "2026-11-20T14:32:00Z";
    let target_ns = quotehub_feed::parse_event_time(target).unwrap();
    admin(&hub, "POST", "/admin/replay/pause").await;
    state_until(&hub, |state| state["phase"] == "paused").await;
    drain(&mut client).await;
    let (status, state) = admin(&hub, "POST", &format!("/admin/replay/seek?to={target}")).await;
    assert_eq!(status, 200, "{state}");
    admin(&hub, "POST", "/admin/replay/resume").await;
    let first_after = match next(&mut client).await {
        Update::Quote { record, .. } => (record.quote.symbol, record.quote.event_ts),
        Update::Trade { record, .. } => (record.trade.symbol, record.trade.event_ts),
        other => panic!("{other:?}"),
    };
    let mut feed = open_recorded(&bundled_feed()).unwrap();
    let expected = loop {
        let event = feed.next_event().unwrap().unwrap();
        if event.event_ts() >= target_ns {
            break (event.symbol(), event.event_ts());
        }
    };
    assert_eq!(first_after, expected);

    // Speed: to full speed, the rest of the feed goes by and the replay ends.
    let (status, state) = admin(&hub, "POST", "/admin/replay/speed?x=max").await;
    assert_eq!((status, state["speed"].as_str()), (200, Some("max")), "{state}");
    let ended = state_until(&hub, |state| state["phase"] == "ended").await;
    assert!(
        ended["position"].as_str().unwrap().starts_with("2026-11-20T14:3"),
        "{ended}"
    );
    loop {
        if let Update::Status { record, .. } = next(&mut client).await
            && record.code == StatusCode::ReplayEnded
        {
            break;
        }
    }
    replay.join().unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mistakes_get_clear_errors() {
    let (hub, _replay) = hub_replaying(Speed::Factor(1.0), Access::default(), false).await;
    for (method, path, status, says) in [
        ("POST", "/admin/replay/seek?to=noon", 400, "RFC 3339"),
        ("POST", "/admin/replay/seek", 400, "?to="),
        ("POST", "/admin/replay/speed?x=0", 400, "positive"),
        ("POST", "/admin/replay/rewind", 404, "pause, resume"),
        ("GET", "/admin/replay/pause", 405, "POST"),
        ("POST", "/admin/replay", 405, "GET"),
        ("GET", "/admin/other", 404, "/admin/replay"),
    ] {
        let (got, body) = admin(&hub, method, path).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{method} {path}: {body}"
        );
    }
    // A page from another origin may not drive it through a local browser.
    let (status, _) = http_request(&hub, "POST", "/admin/replay/pause", &["Origin: https://evil.example"]).await;
    assert_eq!(status, 403);
    let own_origin = format!("Origin: http://{}", hub.addr());
    let (status, _) = http_request(&hub, "GET", "/admin/replay", &[&own_origin]).await;
    assert_eq!(status, 200, "the board's own origin may");
    admin(&hub, "POST", "/admin/replay/speed?x=max").await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_only_admin_keys_may() {
    let key = |name: &str, admin: bool| ApiKey {
        name: name.into(),
        key: format!("{name}-secret"),
        symbols: None,
        max_connections: None,
        admin,
        delay: std::time::Duration::ZERO,
    };
    let access = Access::new(vec![key("desk", false), key("ops", true)], vec![]);
    let (hub, _replay) = hub_replaying(Speed::Max, access, false).await;
    let (status, _) = http_request(&hub, "GET", "/admin/replay", &[]).await;
    assert_eq!(status, 401);
    let (status, _) = http_request(&hub, "GET", "/admin/replay", &["Authorization: Bearer nope"]).await;
    assert_eq!(status, 401);
    let (status, body) = http_request(&hub, "GET", "/admin/replay", &["X-Api-Key: desk-secret"]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no admin right"), "{body}");
    let (status, body) = http_request(&hub, "GET", "/admin/replay", &["Authorization: Bearer ops-secret"]).await;
    assert_eq!(status, 200, "{body}");
    hub.shutdown().await;
}

/// Far past the bundled session (2026-11-20): a trade stamped here moves the
/// event clock past every open bar, closing them all.
const FAR: u64 = 1_900_000_000_000_000_000;

/// A seek back in event time starts the bars over, as a looped replay's next
/// pass does: the bars open at the seek close, and the trades replayed after
/// it make bars of their own rather than being dropped as late (or counted a
/// second time into a bar still open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_back_starts_the_bars_over() {
    use common::bars_computed::{Bars, computed};
    use quotehub_proto::bar::Bar;
    use quotehub_proto::{Channels, Event, Trade};

    let (hub, replay) = hub_replaying(Speed::Factor(20.0), Access::default(), true).await;
    let mut client = hub.connect().await;
    let channels = Channels::TRADES.with(Channels::BARS_1S).with(Channels::BARS_1M);
    client.subscribe_to(&["*"], channels).await.unwrap();
    let mut updates = Vec::new();
    // Four seconds of the opening rush at 20×, then a pause.
    let mut feed = open_recorded(&bundled_feed()).unwrap();
    let mut all_trades = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        if let Event::Trade(trade) = event {
            all_trades.push(trade);
        }
    }
    let start = feed_start();
    admin(&hub, "POST", "/admin/replay/resume").await;
    state_until(&hub, |state| {
        state["position_ns"].as_u64() >= Some(start + 4_000_000_000)
    })
    .await;
    admin(&hub, "POST", "/admin/replay/pause").await;
    state_until(&hub, |state| state["phase"] == "paused").await;
    updates.extend(drain(&mut client).await);
    let before: Vec<Trade> = updates
        .iter()
        .filter_map(|update| match update {
            Update::Trade { record, .. } => Some(record.trade),
            _ => None,
        })
        .collect();
    assert!(before.len() > 100, "{} trades before the seek", before.len());

    // Back to the start, then the whole feed at full speed.
    let (status, state) = admin(&hub, "POST", &format!("/admin/replay/seek?to={start}")).await;
    assert_eq!(status, 200, "{state}");
    admin(&hub, "POST", "/admin/replay/speed?x=max").await;
    admin(&hub, "POST", "/admin/replay/resume").await;
    tokio::task::spawn_blocking(move || replay.join().unwrap())
        .await
        .unwrap();
    let sentinel = |event_ts| {
        Event::Trade(Trade {
            symbol: common::sym("ZZZZ"),
            price: "1".parse().unwrap(),
            size: 1,
            event_ts,
            recv_ts: event_ts,
            seq: 0,
        })
    };
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    publisher.publish(sentinel(FAR));
    publisher.publish(sentinel(FAR + 10_000_000_000));
    loop {
        let update = next(&mut client).await;
        let done = matches!(&update, Update::Bar { record, .. } if record.bar.symbol == common::sym("ZZZZ"));
        updates.push(update);
        if done {
            break;
        }
    }

    let mut received = Bars::new();
    for update in updates {
        if let Update::Bar { record, .. } = update
            && record.bar.symbol != common::sym("ZZZZ")
        {
            let bar = Bar {
                recv_ts: 0,
                ..record.bar
            };
            received
                .entry((bar.symbol, bar.interval.seconds()))
                .or_default()
                .push(bar);
        }
    }
    // The bars of the trades before the seek (the last ones closed by the
    // seek), then those of the whole feed, numbered on.
    let mut expected = computed(&before);
    for (key, bars) in computed(&all_trades) {
        let series = expected.entry(key).or_default();
        for bar in bars {
            let seq = series.len() as u64 + 1;
            series.push(Bar { seq, ..bar });
        }
    }
    assert_eq!(received.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, bars) in &expected {
        assert_eq!(&received[key], bars, "{key:?}");
    }
    hub.shutdown().await;
}

/// The bundled feed's first event time.
fn feed_start() -> u64 {
    let mut feed = open_recorded(&bundled_feed()).unwrap();
    feed.next_event().unwrap().unwrap().event_ts()
}
