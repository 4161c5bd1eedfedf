//! Hostile requests at the front door (issue 14, rows 8 and 10): a page on
//! another name that resolves to loopback (DNS rebinding) may not drive the
//! admin endpoints of a hub without keys; two `Origin` headers are refused;
//! query parameters are percent-decoded (`?api_key=`, `?policy=`); a request
//! head over 16 KiB gets 431 however it arrives; and a client's close frame
//! with a code it may not send is answered with 1002.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, raw_ws, within};
use quotehub_feed::{ReplayControl, ReplayWindow, Speed};
use quotehub_server::{Access, ApiKey, ReplayAdmin, ServerConfig, ServerState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A hub without keys whose replay the admin endpoints control (no feed
/// runs: the state is enough to see a pause take effect or not).
async fn open_hub_with_admin(access: Access) -> (TestHub, ReplayControl) {
    let control = ReplayControl::new(Speed::Max);
    let config = ServerConfig {
        access,
        ..ServerConfig::default()
    };
    let state = ServerState::new(config).unwrap().with_replay_admin(ReplayAdmin {
        control: control.clone(),
        window: ReplayWindow::default(),
        feed: "test".into(),
    });
    (TestHub::start_with_state(state).await, control)
}

/// Sends `request` as it is and reads the whole response: (status, text).
async fn raw_request(hub: &TestHub, request: &[u8]) -> (u16, String) {
    let mut stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {text:?}"));
    (status, text)
}

/// `METHOD PATH` with these header lines (each without its CRLF).
async fn request_with(hub: &TestHub, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    let lines: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
    let request = format!("{method} {path} HTTP/1.1\r\n{lines}Content-Length: 0\r\nConnection: close\r\n\r\n");
    raw_request(hub, request.as_bytes()).await
}

fn port(hub: &TestHub) -> String {
    hub.addr().rsplit(':').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_without_keys_answers_only_loopback_host_names() {
    let (hub, control) = open_hub_with_admin(Access::default()).await;
    let port = port(&hub);
    // TC0: DNS rebinding, as a browser sends it: the page's own name as
    // Host, its own origin as Origin (same-origin, so the origin check passes).
    let evil_host = format!("Host: evil.example:{port}");
    let evil_origin = format!("Origin: http://evil.example:{port}");
    let (status, text) = request_with(&hub, "POST", "/admin/replay/pause", &[&evil_host, &evil_origin]).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Host"), "the refusal says why: {text}");
    // TC1: the same name without Origin (a script, not a browser) is refused too.
    let (status, text) = request_with(&hub, "POST", "/admin/replay/pause", &[&evil_host]).await;
    assert_eq!(status, 403, "{text}");
    // TC2: no Host at all.
    let (status, text) = request_with(&hub, "POST", "/admin/replay/pause", &[]).await;
    assert_eq!(status, 403, "{text}");
    assert!(!control.state().paused, "no refused request paused the replay");
    // TC3..6: loopback names, with and without a port, and their own origin.
    for (host, origin) in [
        (format!("127.0.0.1:{port}"), None),
        (format!("localhost:{port}"), Some(format!("http://localhost:{port}"))),
        ("LocalHost".to_owned(), None),
        (format!("[::1]:{port}"), None),
        (format!("127.3.2.1:{port}"), None),
    ] {
        let host_line = format!("Host: {host}");
        let mut headers = vec![host_line.as_str()];
        let origin_line = origin.map(|origin| format!("Origin: {origin}"));
        if let Some(line) = &origin_line {
            headers.push(line);
        }
        let (status, text) = request_with(&hub, "GET", "/admin/replay", &headers).await;
        assert_eq!(status, 200, "Host {host}: {text}");
    }
    let (status, text) = request_with(
        &hub,
        "POST",
        "/admin/replay/pause",
        &[&format!("Host: localhost:{port}")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(control.state().paused);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origin_headers_are_refused() {
    let access = Access::new(Vec::new(), vec!["https://board.example".into()]);
    let (hub, control) = open_hub_with_admin(access).await;
    let upgrade = |origins: &[&str]| {
        let origins: String = origins.iter().map(|o| format!("Origin: {o}\r\n")).collect();
        format!(
            "GET /v1/quotes HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origins}\r\n"
        )
    };
    // The allowed origin alone: upgraded (the status line is all we read).
    let mut stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    stream
        .write_all(upgrade(&["https://board.example"]).as_bytes())
        .await
        .unwrap();
    let mut status_line = [0u8; 12];
    within(stream.read_exact(&mut status_line)).await.unwrap();
    assert_eq!(&status_line, b"HTTP/1.1 101");
    drop(stream);
    // TC0: the allowed origin first, another behind it.
    let (status, text) = raw_request(
        &hub,
        upgrade(&["https://board.example", "https://evil.example"]).as_bytes(),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Origin"), "{text}");
    // TC1: the same on an admin route from a loopback Host.
    let port = port(&hub);
    let (status, text) = request_with(
        &hub,
        "POST",
        "/admin/replay/pause",
        &[
            &format!("Host: localhost:{port}"),
            &format!("Origin: http://localhost:{port}"),
            "Origin: https://evil.example",
        ],
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(!control.state().paused);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_are_percent_decoded() {
    // A key with characters a browser escapes in a query (URLSearchParams).
    let key = ApiKey {
        name: "desk".into(),
        key: "s/e=c&r+t".into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let hub = TestHub::start(ServerConfig {
        access: Access::new(vec![key], Vec::new()),
        ..ServerConfig::default()
    })
    .await;
    let (mut ws, response) = within(tokio_tungstenite::connect_async(format!(
        "{}?api_key=s%2Fe%3Dc%26r%2Bt&policy=disconnec%74",
        hub.url
    )))
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    ws.close(None).await.unwrap();
    // The raw form is not the key.
    match within(tokio_tungstenite::connect_async(format!("{}?api_key=s/e=c", hub.url))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_16_kib_get_431_however_they_arrive() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let head_of = |total: usize| {
        let start = "GET /health HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nX-Pad: ";
        let end = "\r\n\r\n";
        format!("{start}{}{end}", "a".repeat(total - start.len() - end.len()))
    };
    // TC0: 18,300 bytes sent at once (the parser sees it complete).
    let (status, text) = raw_request(&hub, head_of(18_300).as_bytes()).await;
    assert_eq!(status, 431, "{text}");
    // TC1: one byte over the limit.
    let (status, text) = raw_request(&hub, head_of(16 * 1024 + 1).as_bytes()).await;
    assert_eq!(status, 431, "{text}");
    // TC2: exactly at the limit is a request like any other.
    let (status, text) = raw_request(&hub, head_of(16 * 1024).as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes_a_client_may_not_send_are_answered_with_1002() {
    let hub = TestHub::start(ServerConfig::default()).await;
    // (code the client sends, code the hub answers with)
    for (sent, answered) in [
        (999, 1002),  // TC0: below the range
        (1005, 1002), // TC1: "no status", never on the wire
        (1006, 1002), // TC2: "abnormal", never on the wire
        (1015, 1002), // TC3: "TLS failure", never on the wire
        (1016, 1002), // TC4: reserved for the protocol
        (2999, 1002), // TC5: reserved
        (5000, 1002), // TC6: above the range
        (1000, 1000), // TC7: a valid code still closes normally
        (4000, 1000), // TC8: an application's own code is valid
    ] {
        let mut stream = raw_ws::upgrade(&hub).await;
        let payload = u16::to_be_bytes(sent);
        raw_ws::write_frame(&mut stream, 0x88, &payload).await;
        let (code, reason) = raw_ws::read_close(&mut stream).await;
        assert_eq!(code, answered, "close code {sent}: answered {code} {reason:?}");
    }
    hub.shutdown().await;
}
