//! Connections bounded from accept (issue 14, row 6): silent TCP connections
//! hold a place under `max_connections` from the moment they are accepted,
//! so a flood of them cannot take more than the cap; clients racing for the
//! last place never make it 51 of 50; one address cannot hold more than its
//! share of connections still opening; `/health` is answered while the cap
//! is full; and a good client gets in once the flood is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestHub, until, within};
use futures_util::StreamExt;
use quotehub_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite;

const CAP: usize = 50;

/// A hub with a small cap whose handshake timeout outlasts every test, so
/// that only the cap (not the timeout) can close a silent connection.
fn capped(max_pending_per_ip: usize) -> ServerConfig {
    ServerConfig {
        max_connections: CAP,
        max_pending_per_ip,
        handshake_timeout: Duration::from_secs(120),
        ..ServerConfig::default()
    }
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A TCP connection to the hub from the loopback address `source`.
async fn connect_from(hub: &TestHub, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let addr: SocketAddr = hub.addr().parse().unwrap();
    within(socket.connect(addr)).await
}

/// `count` connections from `source` that never send a byte; each counts in
/// `closed` once the hub ends it (a refusal, a reset, or EOF). Dropping the
/// set closes the ones still open.
struct Flood {
    /// Held, not read: dropping it aborts the tasks, closing their sockets.
    _tasks: JoinSet<()>,
    closed: Arc<AtomicUsize>,
}

impl Flood {
    async fn start(hub: &TestHub, source: IpAddr, count: usize) -> Self {
        let closed = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let connected = connect_from(hub, source).await;
            let closed = Arc::clone(&closed);
            tasks.spawn(async move {
                if let Ok(mut stream) = connected {
                    let mut sink = [0u8; 512];
                    while let Ok(1..) = stream.read(&mut sink).await {}
                }
                closed.fetch_add(1, Ordering::Relaxed);
            });
        }
        Self { _tasks: tasks, closed }
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }
}

/// A plain GET from `source`: the status, or `None` if the hub hung up first.
async fn get_from(hub: &TestHub, source: IpAddr, path: &str) -> Option<u16> {
    let mut stream = connect_from(hub, source).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.ok()?;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
}

/// A WebSocket handshake from `source`: the HTTP status (101 when upgraded)
/// and the socket, or `None` if the hub hung up before answering.
async fn upgrade_from(
    hub: &TestHub,
    source: IpAddr,
) -> Option<(u16, Option<tokio_tungstenite::WebSocketStream<TcpStream>>, String)> {
    let stream = connect_from(hub, source).await.ok()?;
    match within(tokio_tungstenite::client_async(hub.url.as_str(), stream)).await {
        Ok((ws, response)) => Some((response.status().as_u16(), Some(ws), String::new())),
        Err(tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            Some((response.status().as_u16(), None, body))
        }
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_take_no_more_than_the_cap_and_health_still_answers() {
    let hub = TestHub::start(capped(1_000)).await;
    let flood = Flood::start(&hub, loopback(1), 3 * CAP).await;
    // Past the cap, the hub closes them at once (or after a short wait for a
    // head it can refuse properly); the cap's worth stay open, waiting for
    // the handshake timeout.
    until(|| flood.closed() >= 2 * CAP).await;
    // The cap is full of silent connections: a client is told so...
    let (status, _, body) = upgrade_from(&hub, loopback(2)).await.expect("an answer, not a hang-up");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the hub is full"), "{body}");
    // ...and a health probe is still answered.
    assert_eq!(get_from(&hub, loopback(3), "/health").await, Some(200));
    assert_eq!(hub.hub.client_count(), 0);
    // The flood leaves: a good client gets in and is served.
    drop(flood);
    let mut ws = within(async {
        loop {
            if let Some((101, Some(ws), _)) = upgrade_from(&hub, loopback(2)).await {
                return ws;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let request = r#"{"op":"subscribe","symbols":["AAPL"],"id":1}"#;
    futures_util::SinkExt::send(&mut ws, tungstenite::Message::text(request))
        .await
        .unwrap();
    let ack = within(ws.next()).await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("ack"), "{ack:?}");
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "1.00", "1.01", 1));
    let message = within(ws.next()).await.unwrap().unwrap();
    let bytes = message.into_data();
    let records: Vec<_> = quotehub_proto::Message::decode(&bytes).unwrap().collect();
    assert!(
        matches!(records.as_slice(), [Ok(quotehub_proto::Record::Quote(_))]),
        "{records:?}"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_clients_never_make_it_51_of_50() {
    let hub = TestHub::start(capped(1_000)).await;
    let mut held = Vec::new();
    for _ in 0..CAP - 1 {
        held.push(hub.connect().await);
    }
    until(|| hub.hub.client_count() == CAP - 1).await;
    // Twenty clients race for the last place.
    let mut racers = JoinSet::new();
    for _ in 0..20 {
        let url = hub.url.clone();
        racers.spawn(async move {
            match within(tokio_tungstenite::connect_async(url.as_str())).await {
                Ok((ws, _)) => Some(ws),
                Err(tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 503);
                    None
                }
                // The refusal reserve is full too: closed without an answer.
                Err(_) => None,
            }
        });
    }
    let mut admitted = Vec::new();
    while let Some(result) = racers.join_next().await {
        admitted.extend(result.unwrap());
    }
    assert!(admitted.len() <= 1, "{} racers admitted for 1 place", admitted.len());
    assert!(
        hub.hub.client_count() <= CAP,
        "{} clients of {CAP}",
        hub.hub.client_count()
    );
    // Gone before the shutdown, which would otherwise wait for them to read its close.
    drop((held, admitted));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_no_more_than_its_pending_share() {
    let hub = TestHub::start(capped(10)).await;
    let flood = Flood::start(&hub, loopback(1), 30).await;
    // Ten stay open, waiting for a head; the other twenty are closed.
    until(|| flood.closed() >= 20).await;
    // Another address is served as if nothing happened.
    let (status, ws, body) = upgrade_from(&hub, loopback(2)).await.expect("an answer");
    assert_eq!(status, 101, "{body}");
    drop(ws);
    assert_eq!(get_from(&hub, loopback(3), "/health").await, Some(200));
    // The flooding address is told why (503), not left hanging.
    let (status, _, body) = upgrade_from(&hub, loopback(1)).await.expect("an answer");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("from your address"), "{body}");
    drop(flood);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_silent_connections() {
    // A drain long enough that waiting for the silent ones would outlast DEADLINE.
    let hub = TestHub::start(ServerConfig {
        drain_timeout: Duration::from_secs(120),
        ..capped(1_000)
    })
    .await;
    let flood = Flood::start(&hub, loopback(1), 10).await;
    hub.shutdown().await;
    until(|| flood.closed() == 10).await;
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let raised = quotehub_server::descriptors::raise_open_file_limit().unwrap();
    let now = quotehub_server::descriptors::open_file_limit();
    assert_eq!(raised, now, "what it reports is what the process has");
    if let Some(hard) = now.hard {
        assert_eq!(now.soft, Some(hard), "{now:?}");
    }
}
