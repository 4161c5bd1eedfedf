//! Heartbeats: the hub pings every client; one that stops answering (it
//! stopped reading, so its pongs never come) is closed with 1001, while a
//! client that reads stays connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, key, quote, raw_ws, until, within};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_closed_and_readers_are_kept() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let hub = TestHub::start(config).await;

    // A reader, answering pings as any WebSocket client does while it reads.
    let mut reader = hub.connect().await;
    reader.subscribe(&["AAPL"]).await.unwrap();
    let (updates, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(update)) = reader.next_update().await {
            if updates.send(update).is_err() {
                break;
            }
        }
    });

    // A raw client that answers no ping (a library client would pong
    // whenever it reads) and reads nothing until the hub has dropped it.
    let mut silent = raw_ws::upgrade(&hub).await;
    until(|| hub.hub.client_count() == 2).await;
    until(|| hub.hub.client_count() == 1).await;
    // What it was sent: pings (0x89), then the close.
    let (first, _) = raw_ws::read_frame(&mut silent).await;
    assert_eq!(first, 0x89, "the hub pinged it first");
    let (code, reason) = raw_ws::read_close(&mut silent).await;
    assert_eq!(code, 1001);
    assert!(reason.contains("idle timeout"), "{reason}");

    // The reader outlived it: well past the idle timeout, it is still served.
    assert_eq!(hub.hub.client_count(), 1);
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "1.00", "1.01", 1));
    let update = within(received.recv()).await.expect("the reader is still connected");
    assert_eq!(key(&update), ("AAPL".into(), 1, false));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pings_are_answered_with_their_payload() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = raw_ws::upgrade(&hub).await;
    raw_ws::write_frame(&mut client, 0x89, b"are you there").await;
    let (first, payload) = raw_ws::read_frame(&mut client).await;
    assert_eq!(
        (first, payload.as_slice()),
        (0x8a, &b"are you there"[..]),
        "a pong with the ping's payload"
    );
    hub.shutdown().await;
}

/// The other control frame tungstenite answers while the writer owns the
/// socket: a client's close gets exactly one close back (the hub's own and
/// tungstenite's answer must not both go out), and then the hub ends the
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_close_is_answered_once() {
    use tokio::io::AsyncReadExt;

    let hub = TestHub::start(ServerConfig::default()).await;
    let mut client = raw_ws::upgrade(&hub).await;
    raw_ws::write_frame(&mut client, 0x81, br#"{"op":"subscribe","symbols":["AAPL"],"id":1}"#).await;
    let (first, reply) = raw_ws::read_frame(&mut client).await;
    assert_eq!(first, 0x81, "{}", String::from_utf8_lossy(&reply));
    raw_ws::write_frame(&mut client, 0x88, &1000u16.to_be_bytes()).await;

    let (code, _) = raw_ws::read_close(&mut client).await;
    assert_eq!(code, 1000);
    let mut rest = Vec::new();
    within(client.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "nothing after the close: {rest:?}");
    hub.shutdown().await;
}
