//! Issue 14, row 7: replay sessions (`/v1/replay`) cannot be hoarded. A
//! paused session is closed after the maximum pause (1008 `paused too long`)
//! and its slot serves the next client; a client that stops answering pings
//! is closed by the idle timeout (1001); one client (API key, or IP without
//! keys) holds at most its own share of sessions (429 past it) while others
//! still get theirs; and sessions run on the runtime, not on a thread each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::raw_ws::{read_close, write_frame};
use common::{TestHub, bundled_feed, http_get, http_request, within};
use quotehub_client::{Client, Error, ReplaySession};
use quotehub_server::{Access, ApiKey, ReplayFeeds, ServerConfig};
use tokio::net::{TcpSocket, TcpStream};

/// Tests here count the process's threads: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(max_sessions: usize, per_client: usize) -> ServerConfig {
    ServerConfig {
        replay_feeds: ReplayFeeds::new([("bundled".to_owned(), bundled_feed())], max_sessions).unwrap(),
        replay_max_sessions_per_client: per_client,
        ..ServerConfig::default()
    }
}

/// A session of the bundled feed at its recorded pace (five minutes long).
async fn open(hub: &TestHub) -> Client {
    within(Client::replay(&hub.url, "bundled", &ReplaySession::default()))
        .await
        .unwrap()
}

/// Reads until the hub closes the connection; the close code and reason.
async fn close_reason(client: &mut Client) -> String {
    within(async {
        loop {
            match client.next_update().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("closed normally"),
                Err(Error::Closed { reason }) => return reason.unwrap_or_default(),
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await
}

/// Waits until the hub counts `n` open sessions.
async fn until_open_sessions(hub: &TestHub, n: u64) {
    within(async {
        loop {
            let (_, body) = http_get(hub, "/v1/replay/feeds").await;
            let list: serde_json::Value = serde_json::from_str(&body).unwrap();
            if list["open_sessions"] == n {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A WebSocket upgrade to `path` by hand from `local` (any 127.0.0.0/8
/// address): the raw socket if the hub answered 101, else the status.
async fn raw_upgrade(hub: &TestHub, local: &str, path: &str) -> Result<TcpStream, u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = within(socket.connect(hub.addr().parse().unwrap())).await.unwrap();
    common::raw_ws::upgrade_on(stream, path).await
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_sessions_are_closed_after_the_max_pause_and_free_their_slots() {
    let _serial = SERIAL.lock().await;
    let hub = TestHub::start(ServerConfig {
        replay_max_pause: Duration::from_millis(300),
        ..config(3, 3)
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(open(&hub).await);
    }
    let (status, body) = http_get(&hub, "/v1/replay?feed=bundled").await;
    assert_eq!(status, 503, "the cap is held: {body}");
    for session in &mut sessions {
        session.pause_replay().await.unwrap();
    }
    for session in &mut sessions {
        let reason = close_reason(session).await;
        assert!(reason.starts_with("1008 paused too long"), "{reason}");
    }
    until_open_sessions(&hub, 0).await;
    let mut next = open(&hub).await;
    assert!(
        within(next.next_update()).await.unwrap().is_some(),
        "a new client is served"
    );
    drop(next);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_stops_answering_pings_is_closed_by_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    let hub = TestHub::start(ServerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..config(2, 2)
    })
    .await;
    // By hand: this client never answers a ping (nor writes anything after the pause).
    let mut raw = raw_upgrade(&hub, "127.0.0.1", "/v1/replay?feed=bundled").await.unwrap();
    write_frame(&mut raw, 0x81, br#"{"op":"pause"}"#).await;
    until_open_sessions(&hub, 1).await;
    until_open_sessions(&hub, 0).await;
    let (code, reason) = read_close(&mut raw).await;
    assert_eq!(code, 1001, "{reason}");
    assert!(reason.starts_with("idle timeout"), "{reason}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_holds_its_share_of_sessions_and_another_still_gets_one() {
    let _serial = SERIAL.lock().await;
    let hub = TestHub::start(config(8, 2)).await;
    let first = open(&hub).await;
    let second = open(&hub).await;
    let (status, body) = http_get(&hub, "/v1/replay?feed=bundled").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("2 replay sessions"), "{body}");
    // Another address on loopback is another client.
    let other = raw_upgrade(&hub, "127.0.0.2", "/v1/replay?feed=bundled").await;
    assert!(other.is_ok(), "another IP is served: {:?}", other.err());
    drop((first, second, other));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_api_key_holds_its_share_of_sessions_and_another_key_still_gets_one() {
    let _serial = SERIAL.lock().await;
    let key = |name: &str| ApiKey {
        name: name.into(),
        key: format!("secret-{name}"),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let hub = TestHub::start(ServerConfig {
        access: Access::new(vec![key("a"), key("b")], Vec::new()),
        ..config(8, 2)
    })
    .await;
    let url = |name: &str| format!("ws://{}/v1/replay?feed=bundled&api_key=secret-{name}", hub.addr());
    let first = within(Client::connect(&url("a"))).await.unwrap();
    let second = within(Client::connect(&url("a"))).await.unwrap();
    let (status, body) = http_request(&hub, "GET", "/v1/replay?feed=bundled", &["X-Api-Key: secret-a"]).await;
    assert_eq!(status, 429, "{body}");
    let other = within(Client::connect(&url("b"))).await;
    assert!(
        other.is_ok(),
        "another key is served from the same IP: {:?}",
        other.err()
    );
    drop((first, second, other));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_do_not_take_a_thread_each() {
    let _serial = SERIAL.lock().await;
    let hub = TestHub::start(config(12, 12)).await;
    let mut sessions = vec![open(&hub).await];
    // The first session has started (and warmed whatever it uses).
    within(sessions[0].next_update()).await.unwrap().unwrap();
    let before = threads();
    for _ in 0..10 {
        let mut session = open(&hub).await;
        within(session.next_update()).await.unwrap().unwrap();
        sessions.push(session);
    }
    for session in &mut sessions {
        session.pause_replay().await.unwrap();
    }
    let after = threads();
    // The first session started the hub's fixed pool of feed readers; ten
    // more sessions, running or paused, add no thread.
    assert!(
        after <= before,
        "11 sessions took threads: {before} before the last 10, {after} after"
    );
    drop(sessions);
    hub.shutdown().await;
}
