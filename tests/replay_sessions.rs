//! Replay sessions at /v1/replay: a client's own paced replay of a configured
//! feed carries the same records and sequence numbers as a live replay, loses
//! nothing when the client is slow, and names feeds only from the hub's list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{TestHub, bundled_feed, http_get, within};
use quotehub_client::{Client, Error, ReplaySession, Update};
use quotehub_feed::replay::replay_with_status;
use quotehub_feed::{ReplayOptions, ReplayWindow, Speed, open_recorded};
use quotehub_proto::{Flags, StatusCode};
use quotehub_server::{ReplayFeeds, ServerConfig};

fn config(max_sessions: usize) -> ServerConfig {
    ServerConfig {
        replay_feeds: ReplayFeeds::new([("bundled".to_owned(), bundled_feed())], max_sessions).unwrap(),
        // The live client below must take a whole replay at full speed unconflated.
        queue_capacity: 1 << 20,
        ..ServerConfig::default()
    }
}

/// What must match between live and session: the record's bytes with the
/// hub's receive stamp zeroed, or a status's code and detail.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Record {
        symbol: String,
        event_ts: u64,
        bytes: Vec<u8>,
    },
    Status(StatusCode, u64),
}

fn seen(update: Update) -> Seen {
    match update {
        Update::Quote { mut record, .. } => {
            assert_eq!(record.flags, Flags::REPLAYED);
            record.quote.recv_ts = 0;
            Seen::Record {
                symbol: record.quote.symbol.to_string(),
                event_ts: record.quote.event_ts,
                bytes: record.encode().to_vec(),
            }
        }
        Update::Trade { mut record, .. } => {
            assert_eq!(record.flags, Flags::REPLAYED);
            record.trade.recv_ts = 0;
            Seen::Record {
                symbol: record.trade.symbol.to_string(),
                event_ts: record.trade.event_ts,
                bytes: record.encode().to_vec(),
            }
        }
        Update::Status { record, .. } => Seen::Status(record.code, record.detail),
        other => panic!("unexpected {other:?}"),
    }
}

/// Everything a live replay of the bundled feed at full speed publishes, as a "*" subscriber sees it.
async fn live_replay(hub: &TestHub) -> Vec<Seen> {
    let mut live = hub.connect().await;
    live.subscribe(&["*"]).await.unwrap();
    let publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let replay = std::thread::spawn(move || {
        let mut feed = open_recorded(&bundled_feed()).unwrap();
        let (_keep, stop) = std::sync::mpsc::channel();
        let options = ReplayOptions {
            speed: Speed::Max,
            looped: false,
        };
        replay_with_status(feed.as_mut(), options, &stop, publisher).unwrap();
    });
    let mut all = Vec::new();
    loop {
        let update = seen(common::next(&mut live).await);
        let ended = matches!(update, Seen::Status(StatusCode::ReplayEnded, _));
        all.push(update);
        if ended {
            break;
        }
    }
    replay.join().unwrap();
    all
}

/// Everything a session sends until the hub closes it normally.
async fn session(hub: &TestHub, options: &ReplaySession) -> Vec<Seen> {
    let mut client = within(Client::replay(&hub.url, "bundled", options)).await.unwrap();
    let mut all = Vec::new();
    while let Some(update) = within(client.next_update()).await.unwrap() {
        all.push(seen(update));
    }
    assert_eq!(client.gaps(), 0);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sends_what_a_live_replay_publishes_byte_for_byte() {
    let hub = TestHub::start(config(4)).await;
    let live = live_replay(&hub).await;
    assert_eq!(live.len(), 74_900 + 2, "every event, between started and ended");

    let at_max = ReplaySession {
        speed: Some("max".into()),
        ..ReplaySession::default()
    };
    let whole = session(&hub, &at_max).await;
    assert_eq!(whole.len(), live.len());
    assert!(whole == live, "the session's records equal the live replay's");

    // A window: exactly the live records inside it, with their live sequence numbers.
    let (from, to) = ("2026-11-20T14:31:00Z", "2026-11-20T14:31:30.5Z");
    let window = ReplayWindow::parse(Some(from), Some(to), Some("AAPL,BRK.B,MSFT")).unwrap();
    let windowed = session(
        &hub,
        &ReplaySession {
            from: Some(from.into()),
            to: Some(to.into()),
            symbols: vec!["AAPL".into(), "BRK.B".into(), "MSFT".into()],
            ..at_max
        },
    )
    .await;
    let expected: Vec<&Seen> = live
        .iter()
        .filter(|seen| match seen {
            Seen::Record { symbol, event_ts, .. } => {
                window.from.is_some_and(|from| *event_ts >= from)
                    && window.to.is_some_and(|to| *event_ts < to)
                    && ["AAPL", "BRK.B", "MSFT"].contains(&symbol.as_str())
            }
            Seen::Status(..) => false,
        })
        .collect();
    assert!(expected.len() > 100, "the window holds events: {}", expected.len());
    assert_eq!(windowed.first(), Some(&Seen::Status(StatusCode::ReplayStarted, 0)));
    assert_eq!(
        windowed.last(),
        Some(&Seen::Status(StatusCode::ReplayEnded, expected.len() as u64))
    );
    let records: Vec<&Seen> = windowed[1..windowed.len() - 1].iter().collect();
    assert!(
        records == expected,
        "the window's records equal the live ones inside it"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_loses_nothing() {
    let hub = TestHub::start(config(4)).await;
    // Looped, so the session outgrows every buffer between the replay and the client.
    let looped = ReplaySession {
        speed: Some("max".into()),
        looped: true,
        ..ReplaySession::default()
    };
    let mut client = within(Client::replay(&hub.url, "bundled", &looped)).await.unwrap();
    // Read nothing until the hub says the session's replay waits for this client.
    within(async {
        loop {
            let (_, body) = http_get(&hub, "/v1/replay/feeds").await;
            let list: serde_json::Value = serde_json::from_str(&body).unwrap();
            if list["waiting_sessions"] == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let mut events = 0;
    let mut statuses = Vec::new();
    // Two passes and some: the first pass went by while the client did not read.
    while events < 2 * 74_900 + 1_000 {
        match common::next(&mut client).await {
            Update::Quote { record, .. } => {
                assert!(!record.flags.contains(Flags::CONFLATED));
                let last = last_seq.insert(record.quote.symbol.to_string(), record.quote.seq);
                assert_eq!(record.quote.seq, last.unwrap_or(0) + 1, "{record:?}");
                events += 1;
            }
            Update::Trade { record, .. } => {
                assert!(!record.flags.contains(Flags::CONFLATED));
                let last = last_seq.insert(record.trade.symbol.to_string(), record.trade.seq);
                assert_eq!(record.trade.seq, last.unwrap_or(0) + 1, "{record:?}");
                events += 1;
            }
            Update::Status { record, .. } => statuses.push((record.code, record.detail)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        statuses,
        [
            (StatusCode::ReplayStarted, 0),
            (StatusCode::ReplayLooped, 1),
            (StatusCode::ReplayLooped, 2)
        ]
    );
    assert_eq!(client.gaps(), 0);
    drop(client);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_are_named_from_the_list_never_by_path() {
    let hub = TestHub::start(config(1)).await;
    let (status, body) = http_get(&hub, "/v1/replay/feeds").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["feeds"], serde_json::json!(["bundled"]));

    let (status, body) = http_get(&hub, "/v1/replay?feed=nasdaq").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("\"nasdaq\"") && body.contains("offered: bundled"),
        "{body}"
    );
    for path_like in [
        "../feeds/us-equities-2026-11-20.jsonl",
        "%2E%2E%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..",
    ] {
        let (status, body) = http_get(&hub, &format!("/v1/replay?feed={path_like}")).await;
        assert_eq!(status, 400, "{path_like}: {body}");
        assert!(body.contains("never by path"), "{body}");
    }
    for (query, says) in [
        ("feed=bundled&speed=fast", "speed"),
        ("feed=bundled&from=noon", "from:"),
        (
            "feed=bundled&from=2026-11-20T14:32:00Z&to=2026-11-20T14:31:00Z",
            "empty",
        ),
        ("feed=bundled&symbols=%20", "symbols:"),
    ] {
        let (status, body) = http_get(&hub, &format!("/v1/replay?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }

    // One session at once here: a second is refused with 503 while the first runs.
    let mut first = within(Client::replay(&hub.url, "bundled", &ReplaySession::default()))
        .await
        .unwrap();
    first.pause_replay().await.unwrap();
    first.set_replay_speed("10").await.unwrap();
    let refused = first.set_replay_speed("fast").await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
    let (status, body) = http_get(&hub, "/v1/replay?feed=bundled").await;
    assert_eq!(status, 503, "{body}");
    first.resume_replay().await.unwrap();
    first.close().await.unwrap();
    hub.shutdown().await;
}
