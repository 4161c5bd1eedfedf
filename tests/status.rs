//! Status records: every connected client hears when a replay starts, loops
//! and ends, and when the hub shuts down (then closes with 1001).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, key, next, until, within};
use quotehub_client::{Error, Update};
use quotehub_feed::replay::replay_with_status;
use quotehub_feed::{ReplayOptions, Speed, open_recorded};
use quotehub_proto::{Flags, StatusCode};
use quotehub_server::ServerConfig;

fn status_of(update: &Update) -> (StatusCode, u64) {
    match update {
        Update::Status { record, .. } => (record.code, record.detail),
        other => panic!("expected a status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_start_and_end_reach_every_client() {
    let dir = std::env::temp_dir().join(format!("quotehub-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("feed.jsonl");
    std::fs::write(
        &path,
        "{\"ev\":\"Q\",\"sym\":\"AAPL\",\"bp\":1.01,\"bs\":100,\"ap\":1.02,\"as\":100,\"t\":1795185000000000000}\n\
         {\"ev\":\"T\",\"sym\":\"MSFT\",\"p\":2.5,\"s\":10,\"t\":1795185000000000001}\n",
    )
    .unwrap();
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut watcher = hub.connect().await; // subscribed to nothing: statuses still come
    let mut trader = hub.connect().await;
    trader.subscribe(&["AAPL"]).await.unwrap();
    until(|| hub.hub.client_count() >= 2).await;

    let mut feed = open_recorded(&path).unwrap();
    let (_keep, stop) = std::sync::mpsc::channel();
    let options = ReplayOptions {
        speed: Speed::Max,
        looped: false,
    };
    replay_with_status(feed.as_mut(), options, &stop, hub.hub.publisher(Flags::REPLAYED, 0)).unwrap();

    assert_eq!(status_of(&next(&mut watcher).await), (StatusCode::ReplayStarted, 0));
    assert_eq!(status_of(&next(&mut watcher).await), (StatusCode::ReplayEnded, 2));
    assert_eq!(status_of(&next(&mut trader).await), (StatusCode::ReplayStarted, 0));
    let quote = next(&mut trader).await;
    assert_eq!(key(&quote), ("AAPL".into(), 1, false));
    let Update::Quote { record, send_ts } = quote else {
        panic!()
    };
    assert!(record.flags.contains(Flags::REPLAYED));
    assert!(
        record.quote.recv_ts > 0 && send_ts >= record.quote.recv_ts,
        "the replay stamps receive time"
    );
    assert_eq!(status_of(&next(&mut trader).await), (StatusCode::ReplayEnded, 2));
    std::fs::remove_dir_all(&dir).unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_announced_then_clients_are_closed_with_1001() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = hub.connect().await;
    client.subscribe(&["AAPL"]).await.unwrap();
    let stopping = tokio::spawn(hub.shutdown());
    let (code, drain_ms) = status_of(&next(&mut client).await);
    assert_eq!(code, StatusCode::Shutdown);
    assert_eq!(drain_ms, ServerConfig::default().drain_timeout.as_millis() as u64);
    match within(client.next_update()).await {
        Err(Error::Closed { reason: Some(reason) }) => assert!(reason.starts_with("1001"), "{reason}"),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    within(stopping).await.unwrap();
}
