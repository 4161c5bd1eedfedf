//! Snapshots over HTTP at /v1/snapshot: live, they equal what WebSocket
//! subscribers see at the same point; as of a time in a replay feed, they
//! equal what a replay session of that feed has shown by then; and a bad,
//! hostile or unauthorised request is refused before it costs anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{TestHub, bundled_feed, http_get, http_request, replay_at_max, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_client::{Client, ReplaySession, Update};
use quotehub_proto::bar::{Bar, BarRecord};
use quotehub_proto::json::record_to_json;
use quotehub_proto::{Channels, Event, Flags, Quote, QuoteRecord, Record, Trade, TradeRecord};
use quotehub_server::{Access, ApiKey, ReplayFeeds, ServerConfig, ServerState};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// 14:32:30 UTC in the bundled session (which runs 14:30 to 14:35).
const T: u64 = 1_795_185_150_000_000_000;
const T_TEXT: &str = "2026-11-20T14:32:30Z";

fn config() -> ServerConfig {
    ServerConfig {
        replay_feeds: ReplayFeeds::new([("bundled".to_owned(), bundled_feed())], 4).unwrap(),
        // The live subscriber below takes a whole replay at full speed unconflated.
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    }
}

/// A WebSocket subscriber in the JSON sub-protocol: the records' JSON form
/// as SPEC.md gives it, the form /v1/snapshot answers in.
async fn json_subscriber(hub: &TestHub, symbols: &[&str]) -> (Ws, Value) {
    json_subscriber_to(hub, symbols, &["quotes", "trades"]).await
}

/// [`json_subscriber`] holding `channels`.
async fn json_subscriber_to(hub: &TestHub, symbols: &[&str], channels: &[&str]) -> (Ws, Value) {
    let mut request = hub.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "quotehub.v1.json".parse().unwrap());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(request)).await.unwrap();
    let subscribe = json!({"op": "subscribe", "symbols": symbols, "channels": channels, "id": 1});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    loop {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            let ack: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(ack["type"], "ack", "{ack}");
            return (ws, ack);
        }
    }
}

/// The next records message's records.
async fn next_records(ws: &mut Ws) -> Vec<Value> {
    loop {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == "records" {
                return message["records"].as_array().unwrap().clone();
            }
        }
    }
}

async fn snapshot(hub: &TestHub, query: &str) -> (u16, Value) {
    let (status, body) = http_get(hub, &format!("/v1/snapshot?{query}")).await;
    let value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON, not {body:?}"));
    (status, value)
}

/// `record` with `snapshot` added to its flags (the JSON form lists flags in this order).
fn flagged_snapshot(mut record: Value) -> Value {
    let mut flags: Vec<Value> = vec![json!("snapshot")];
    flags.extend(record["flags"].as_array().unwrap().iter().cloned());
    record["flags"] = Value::Array(flags);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_snapshot_is_what_websocket_subscribers_see_at_that_point() {
    let hub = TestHub::start(config()).await;
    let symbols = ["AAPL", "GS", "ZVZZT", "ZZZZ"];
    // One subscriber sees every record of the replay as it is published...
    let (mut live, ack) = json_subscriber(&hub, &symbols).await;
    assert_eq!(ack["unseen"], json!(["AAPL", "GS", "ZVZZT", "ZZZZ"]));
    replay_at_max(&hub.hub, bundled_feed()).join().unwrap();
    // ...and once the feed is over (a point where nothing moves) the
    // snapshot over HTTP...
    let (status, body) = snapshot(&hub, "symbols=ZZZZ,AAPL,GS,ZVZZT").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["epoch"], ack["epoch"], "the same sequence space");
    assert_eq!(body["channels"], json!(["quotes", "trades"]));
    // ...and a new subscriber's snapshots.
    let (mut late, _) = json_subscriber(&hub, &symbols[..3]).await;
    let mut snapshots = HashMap::new();
    while snapshots.len() < 3 {
        for record in next_records(&mut late).await {
            snapshots.insert(record["sym"].as_str().unwrap().to_owned(), record);
        }
    }
    // Every record the first subscriber saw, until each symbol's number.
    let mut last_quote: HashMap<String, Value> = HashMap::new();
    let mut last_trade: HashMap<String, Value> = HashMap::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let done = |last_seq: &HashMap<String, u64>| {
        symbols[..3]
            .iter()
            .all(|symbol| last_seq.get(*symbol).copied() == body["symbols"][symbol]["seq"].as_u64())
    };
    while !done(&last_seq) {
        for record in next_records(&mut live).await {
            let symbol = record["sym"].as_str().unwrap().to_owned();
            last_seq.insert(symbol.clone(), record["seq"].as_u64().unwrap());
            match record["type"].as_str() {
                Some("quote") => last_quote.insert(symbol, record),
                Some("trade") => last_trade.insert(symbol, record),
                other => panic!("{other:?}"),
            };
        }
    }
    for symbol in &symbols[..3] {
        let http = &body["symbols"][symbol];
        let seq = http["seq"].as_u64().unwrap();
        assert!(seq > 0, "{symbol}");
        // The quote: exactly the subscribe's snapshot (flags, number, stamps).
        assert_eq!(http["quotes"], snapshots[*symbol], "{symbol}");
        assert_eq!(snapshots[*symbol]["seq"].as_u64(), Some(seq));
        // The trade: the last one the subscriber saw, flagged snapshot, while
        // the hub's history (64 records per symbol) still holds it.
        let trade = &last_trade[*symbol];
        if seq - trade["seq"].as_u64().unwrap() < 64 {
            assert_eq!(http["trades"], flagged_snapshot(trade.clone()), "{symbol}");
        } else {
            assert_eq!(http["trades"], Value::Null, "{symbol}: older than the history");
        }
        assert!(http.get("note").is_none());
    }
    assert_ne!(body["symbols"]["AAPL"]["trades"], Value::Null, "AAPL trades often");
    assert_eq!(
        body["symbols"]["ZZZZ"],
        json!({"seq": 0, "quotes": null, "trades": null, "note": "no data yet from any feed"})
    );
    // The derived channels: exactly what a subscribe to them starts with.
    let (status, derived) = snapshot(&hub, "symbols=AAPL&channels=trades,bars.1s,bars.1m,bbo").await;
    assert_eq!(status, 200, "{derived}");
    assert!(derived.get("not_built").is_none(), "{derived}");
    let aapl = &derived["symbols"]["AAPL"];
    assert_eq!(aapl["trades"], body["symbols"]["AAPL"]["trades"]);
    assert!(aapl.get("quotes").is_none(), "only the channels asked");
    let (mut derived_client, _) = json_subscriber_to(&hub, &["AAPL"], &["bars.1s", "bars.1m", "bbo"]).await;
    let mut started: HashMap<String, Value> = HashMap::new();
    while started.len() < 3 {
        for record in next_records(&mut derived_client).await {
            let channel = match record["type"].as_str() {
                Some("bar") => format!("bars.{}", record["interval"].as_str().unwrap()),
                Some("bbo") => "bbo".to_owned(),
                other => panic!("{other:?} on the derived channels"),
            };
            started.insert(channel, record);
        }
    }
    for channel in ["bars.1s", "bars.1m", "bbo"] {
        assert_eq!(aapl[channel], started[channel], "{channel}");
        assert_eq!(aapl[channel]["flags"][0], "snapshot", "{channel}");
    }
    hub.shutdown().await;
}

/// A session record's JSON form as an as-of snapshot gives it: flagged
/// snapshot, the recording's receive time (the bundled feed has none), and
/// for a quote the symbol's number at that time.
fn as_snapshot(update: &Update, symbol_seq: u64) -> Value {
    let flags = Flags::REPLAYED.with(Flags::SNAPSHOT);
    match update {
        Update::Quote { record, .. } => record_to_json(&Record::Quote(QuoteRecord {
            quote: Quote {
                seq: symbol_seq,
                recv_ts: 0,
                ..record.quote
            },
            flags,
            conflated: 0,
        })),
        Update::Trade { record, .. } => record_to_json(&Record::Trade(TradeRecord {
            trade: Trade {
                recv_ts: 0,
                ..record.trade
            },
            flags,
            conflated: 0,
        })),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_as_of_snapshot_is_what_a_replay_session_has_shown_by_that_time() {
    let state = ServerState::new(config()).unwrap();
    let indexes = Arc::clone(state.snapshot_indexes());
    let hub = TestHub::start_with_state(state).await;
    let symbols = ["AAPL", "GS", "INTU", "ZVZZT"];
    // A session that plays the feed up to T (inclusive: `to` is exclusive).
    let session = ReplaySession {
        speed: Some("max".into()),
        to: Some((T + 1).to_string()),
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        ..ReplaySession::default()
    };
    let mut client = within(Client::replay(&hub.url, "bundled", &session)).await.unwrap();
    let mut quotes = HashMap::new();
    let mut trades = HashMap::new();
    let mut seqs: HashMap<String, u64> = HashMap::new();
    while let Some(update) = within(client.next_update()).await.unwrap() {
        let (symbol, seq, event_ts) = match &update {
            Update::Quote { record, .. } => (record.quote.symbol, record.quote.seq, record.quote.event_ts),
            Update::Trade { record, .. } => (record.trade.symbol, record.trade.seq, record.trade.event_ts),
            _ => continue,
        };
        assert!(event_ts <= T);
        seqs.insert(symbol.to_string(), seq);
        match update {
            Update::Quote { .. } => quotes.insert(symbol.to_string(), update),
            _ => trades.insert(symbol.to_string(), update),
        };
    }
    // GS's last trade is long before T (tens of seconds, dozens of GS records).
    let Update::Trade { record: gs_trade, .. } = &trades["GS"] else {
        panic!()
    };
    assert!(T - gs_trade.trade.event_ts > 20_000_000_000);
    assert!(seqs["GS"] - gs_trade.trade.seq > 30);

    let query = format!("feed=bundled&at={T_TEXT}&symbols=AAPL,GS,INTU,ZVZZT,NOPE");
    let (status, body) = snapshot(&hub, &query).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["feed"].as_str(), body["at"].as_u64()), (Some("bundled"), Some(T)));
    for symbol in symbols {
        let http = &body["symbols"][symbol];
        let seq = seqs[symbol];
        assert_eq!(http["seq"].as_u64(), Some(seq), "{symbol}: the session's numbering");
        assert_eq!(http["quotes"], as_snapshot(&quotes[symbol], seq), "{symbol}");
        assert_eq!(http["trades"], as_snapshot(&trades[symbol], seq), "{symbol}");
    }
    assert_eq!(body["symbols"]["NOPE"]["note"], "no data yet from any feed");
    // Before the feed's first event: nothing yet, for a symbol it has.
    let (_, before) = snapshot(&hub, "feed=bundled&at=2026-11-20T14:00:00Z&symbols=AAPL").await;
    assert_eq!(
        before["symbols"]["AAPL"],
        json!({"seq": 0, "quotes": null, "trades": null, "note": "no data yet from any feed"})
    );
    assert_eq!(indexes.builds(), 1, "the feed was read once for every as-of request");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_needs_the_same_api_key_and_entitlements_as_the_websocket() {
    let key = ApiKey {
        name: "desk".into(),
        key: "s3cret".into(),
        symbols: Some(HashSet::from(["AAPL".parse().unwrap()])),
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let hub = TestHub::start(ServerConfig {
        access: Access::new(vec![key], Vec::new()),
        ..config()
    })
    .await;
    assert_eq!(http_get(&hub, "/v1/snapshot?symbols=AAPL").await.0, 401);
    assert_eq!(http_get(&hub, "/v1/snapshot?symbols=AAPL&api_key=guess").await.0, 401);
    assert_eq!(http_get(&hub, "/v1/snapshot?symbols=AAPL&api_key=s3cret").await.0, 200);
    let (status, _) = http_request(&hub, "GET", "/v1/snapshot?symbols=AAPL", &["X-Api-Key: s3cret"]).await;
    assert_eq!(status, 200);
    let (status, body) = http_request(
        &hub,
        "GET",
        "/v1/snapshot?symbols=AAPL,MSFT",
        &["Authorization: Bearer s3cret"],
    )
    .await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "not_entitled");
    assert!(body["message"].as_str().unwrap().contains("MSFT"));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_channel_is_refused_as_a_subscribe_refuses_it() {
    let hub = TestHub::start(config()).await;
    let (status, body) = snapshot(&hub, "symbols=AAPL&channels=quotes,candles").await;
    assert_eq!(status, 400);
    assert_eq!(
        (body["type"].as_str(), body["code"].as_str(), &body["id"]),
        (Some("error"), Some("unknown_channel"), &Value::Null)
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("\"candles\"") && message.contains("\"bars.1m\""),
        "{message}"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_hostile_symbols_and_bad_times_get_a_400_and_cost_nothing() {
    let state = ServerState::new(ServerConfig {
        max_symbols_per_client: 3,
        ..config()
    })
    .unwrap();
    let indexes = Arc::clone(state.snapshot_indexes());
    let hub = TestHub::start_with_state(state).await;
    let table = hub.hub.table();
    // TC0..: (query, status, code).
    let many = (0..2_500).map(|n| format!("S{n}")).collect::<Vec<_>>().join(",");
    let cases = [
        ("symbols=A,B,C,D".to_owned(), 400, "bad_request"),
        (format!("symbols={many}"), 400, "bad_request"),
        (format!("symbols={many}&feed=bundled&at={T}"), 400, "bad_request"),
        ("symbols=*".to_owned(), 400, "bad_request"),
        ("symbols=NOT%20A%20SYMBOL".to_owned(), 400, "invalid_symbol"),
        (
            format!("symbols=AAPL&feed=bundled&at={}", "9".repeat(40)),
            400,
            "bad_request",
        ),
        ("symbols=AAPL&feed=bundled&at=yesterday".to_owned(), 400, "bad_request"),
        ("symbols=AAPL&feed=bundled".to_owned(), 400, "bad_request"),
        (
            format!("symbols=AAPL&feed=..%2Fetc%2Fpasswd&at={T}"),
            400,
            "bad_request",
        ),
        (format!("symbols=AAPL&feed=nope&at={T}"), 404, "unknown_feed"),
    ];
    for (label, (query, status, code)) in cases.iter().enumerate() {
        let (got, body) = snapshot(&hub, query).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (*status, Some(*code)),
            "TC{label}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().len() < 300,
            "TC{label}: echoes are cut"
        );
    }
    // Nothing was looked up, kept or read for any of them.
    assert_eq!(indexes.builds(), 0, "no feed was read");
    assert_eq!(table.symbol_count(), 0, "no symbol was added to the table");
    // Symbols that exist nowhere cost no slot either.
    let (status, _) = snapshot(&hub, "symbols=X1,X2,X3").await;
    assert_eq!((status, table.symbol_count()), (200, 0));
    // A head past the hub's 16 KiB limit is refused before any route.
    let huge = (0..3_000).map(|n| format!("S{n}")).collect::<Vec<_>>().join(",");
    let (status, _) = http_get(&hub, &format!("/v1/snapshot?symbols={huge}")).await;
    assert_eq!(status, 431);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_too_large_for_its_index_is_refused_and_read_only_once() {
    let state = ServerState::new(ServerConfig {
        snapshot_index_max_bytes: 100 * 1024,
        ..config()
    })
    .unwrap();
    let indexes = Arc::clone(state.snapshot_indexes());
    let hub = TestHub::start_with_state(state).await;
    for _ in 0..3 {
        let (status, body) = snapshot(&hub, &format!("feed=bundled&at={T}&symbols=AAPL")).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("feed_too_large")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("snapshot_index_max_bytes"));
    }
    assert_eq!(indexes.builds(), 1, "the refusal is kept: the feed is not read again");
    // Live snapshots do not depend on it.
    assert_eq!(snapshot(&hub, "symbols=AAPL").await.0, 200);
    hub.shutdown().await;
}

/// A bar's JSON form as an as-of snapshot gives it: flagged `replayed` and
/// `snapshot`, `recv_ts` 0 (no hub closed it; the other fields are the
/// trades' and the event clock's alone).
fn bar_as_of(bar: &Bar) -> Value {
    record_to_json(&Record::Bar(BarRecord {
        bar: Bar { recv_ts: 0, ..*bar },
        flags: Flags::REPLAYED.with(Flags::SNAPSHOT),
        conflated: 0,
    }))
}

/// This file's own answer: the last bar of `bars` (a symbol's, in order)
/// closed once the feed has delivered every event stamped at or before `at`:
/// closed by a later trade of the symbol, or by the feed's event clock
/// (`clock`, the last event time at or before `at`) passing its end by the
/// 2 s grace.
fn closed_at<'a>(bars: &'a [Bar], trades: &[Trade], clock: u64, at: u64) -> Option<&'a Bar> {
    let grace = 2_000_000_000;
    bars.iter().rev().find(|bar| {
        let end = bar.start_ts + bar.interval.nanos();
        clock >= end + grace
            || trades.iter().any(|trade| {
                trade.symbol == bar.symbol && trade.size > 0 && trade.event_ts >= end && trade.event_ts <= at
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_bars_are_what_a_replaying_subscriber_holds_at_that_time() {
    let hub = TestHub::start(config()).await;
    let symbols = ["AAPL", "GS", "INTU", "ZVZZT"];
    // Times around the minute's end and its grace, mid-session, the last
    // instant and after the end.
    let times: Vec<u64> = [
        "2026-11-20T14:30:00.500Z",
        "2026-11-20T14:31:00.400Z",
        "2026-11-20T14:31:02.900Z",
        "2026-11-20T14:31:03.100Z",
        "2026-11-20T14:32:30Z",
        "2026-11-20T14:34:59.999999999Z",
        "2026-11-20T15:00:00Z",
    ]
    .iter()
    .map(|text| quotehub_feed::parse_event_time(text).unwrap())
    .collect();

    // A subscriber to every symbol's quotes, trades and bars while the hub
    // replays the feed at full speed: each event's record comes after the
    // bars it closed, so what the subscriber holds once the last record
    // stamped at or before `at` has come is its state at `at`.
    let mut client = hub.connect().await;
    let channels = Channels::QUOTES
        .with(Channels::TRADES)
        .with(Channels::BARS_1S)
        .with(Channels::BARS_1M);
    client.subscribe_to(&["*"], channels).await.unwrap();
    let hub_handle = hub.hub.clone();
    tokio::task::spawn_blocking(move || replay_at_max(&hub_handle, bundled_feed()).join().unwrap())
        .await
        .unwrap();
    // A quote far past the session marks the end of the records.
    let far = 1_900_000_000_000_000_000;
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(common::quote("ZZZZ", "1.00", "1.01", far));
    let mut holds: HashMap<(String, u32), Bar> = HashMap::new();
    let mut held_at: Vec<HashMap<(String, u32), Bar>> = vec![HashMap::new(); times.len()];
    loop {
        let event_ts = match within(client.next_update()).await.unwrap().unwrap() {
            Update::Bar { record, .. } => {
                let bar = record.bar;
                // Only the symbols asked below (a copy is taken per event).
                if symbols.contains(&bar.symbol.to_string().as_str()) {
                    holds.insert((bar.symbol.to_string(), bar.interval.seconds()), bar);
                }
                continue;
            }
            Update::Quote { record, .. } => record.quote.event_ts,
            Update::Trade { record, .. } => record.trade.event_ts,
            _ => continue,
        };
        if event_ts == far {
            break;
        }
        for (at, held) in times.iter().zip(&mut held_at) {
            if event_ts <= *at {
                held.clone_from(&holds);
            }
        }
    }

    // The test's own computation from the feed's trades.
    let mut feed = quotehub_feed::open_recorded(&bundled_feed()).unwrap();
    let mut events = Vec::new();
    while let Some(event) = feed.next_event().unwrap() {
        events.push(event);
    }
    let trades: Vec<Trade> = events
        .iter()
        .filter_map(|event| match event {
            Event::Trade(trade) => Some(*trade),
            _ => None,
        })
        .collect();
    let computed = common::bars_computed::computed(&trades);
    let trades_of: HashMap<&str, Vec<Trade>> = symbols
        .iter()
        .map(|&symbol| {
            let own = trades.iter().filter(|trade| trade.symbol == common::sym(symbol));
            (symbol, own.copied().collect())
        })
        .collect();

    let mut closed = 0;
    for (at, held) in times.iter().zip(&held_at) {
        let clock = events
            .iter()
            .map(Event::event_ts)
            .filter(|ts| ts <= at)
            .max()
            .unwrap_or(0);
        let query = format!(
            "feed=bundled&at={at}&symbols={}&channels=trades,bars.1s,bars.1m",
            symbols.join(",")
        );
        let (status, body) = snapshot(&hub, &query).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("not_built").is_none(), "{body}");
        for symbol in symbols {
            for seconds in [1u32, 60] {
                let channel = format!("bars.{}", if seconds == 1 { "1s" } else { "1m" });
                let http = &body["symbols"][symbol][&channel];
                let key = (symbol.to_owned(), seconds);
                let subscriber = held.get(&key).map_or(Value::Null, bar_as_of);
                assert_eq!(http, &subscriber, "{symbol} {channel} at {at}: the subscriber's");
                let own = computed
                    .get(&(common::sym(symbol), seconds))
                    .and_then(|bars| closed_at(bars, &trades_of[symbol], clock, *at))
                    .map_or(Value::Null, bar_as_of);
                assert_eq!(http, &own, "{symbol} {channel} at {at}: this file's");
                closed += usize::from(!http.is_null());
            }
        }
    }
    assert!(closed > 30, "{closed} closed bars compared");
    // The grace: ZVZZT trades at 14:31:00.165 and not again for a while;
    // at 14:31:02.9 that second's bar is still open, at 14:31:03.1 (its end
    // plus 2 s passed) the clock has closed it.
    let second = |held: &HashMap<(String, u32), Bar>| held.get(&("ZVZZT".to_owned(), 1)).map(|bar| bar.start_ts);
    assert_eq!(second(&held_at[3]), Some(1_795_185_060_000_000_000));
    assert_ne!(second(&held_at[2]), second(&held_at[3]), "the grace shows for ZVZZT");
    // The BBO as of a time is not built (one feed cannot say the
    // consolidated book): null, and said so.
    let (status, body) = snapshot(
        &hub,
        &format!("feed=bundled&at={}&symbols=AAPL&channels=bars.1m,bbo", times[4]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["not_built"], json!(["bbo"]), "{body}");
    assert_eq!(body["symbols"]["AAPL"]["bbo"], Value::Null);
    assert_ne!(body["symbols"]["AAPL"]["bars.1m"], Value::Null);
    hub.shutdown().await;
}
