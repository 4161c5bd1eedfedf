//! Issue 14, row 10 (the relay's part): a hub chained to an upstream
//! (`quotehub://`) takes messages of at most 1 MiB from it, not
//! tungstenite's default 64 MiB. A stand-in upstream that acknowledges the
//! relay's subscription and then sends a 2 MiB message loses the connection,
//! and the relay connects again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_feed::live::LiveUrl;
use quotehub_server::{LiveOptions, ServerConfig, run_live};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Accepts one relay connection, acknowledges its subscription, sends
/// `bytes` in one binary message; whether the relay then hung up.
async fn serve_once(listener: &TcpListener, bytes: usize) -> bool {
    let (socket, _) = within(listener.accept()).await.unwrap();
    // tungstenite's callback type: its error is an HTTP response, large by design.
    #[allow(clippy::result_large_err)]
    let choose_binary = |_: &Request, mut response: Response| {
        let protocol = HeaderValue::from_static(quotehub_server::BINARY_PROTOCOL);
        response.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
        Ok(response)
    };
    let mut ws = within(tokio_tungstenite::accept_hdr_async(socket, choose_binary))
        .await
        .unwrap();
    let subscribe = within(ws.next()).await.unwrap().unwrap();
    assert!(subscribe.to_text().unwrap().contains("subscribe"), "{subscribe:?}");
    ws.send(Message::text(r#"{"type":"ack","id":1,"op":"subscribe"}"#))
        .await
        .unwrap();
    // A message header (16 bytes, protocol 1) then zeros: framing a reader rejects.
    let mut message = vec![0u8; bytes];
    message[..6].copy_from_slice(&[16, 0, 0x01, 0, 1, 0]);
    // The relay hangs up (or resets) once it has read too much; a relay that
    // took the message keeps the connection open (pinging) and this times out.
    within(async {
        let _ = ws.send(Message::binary(message)).await;
        loop {
            match ws.next().await {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return true,
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_message_over_the_limit_ends_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = TestHub::start(ServerConfig::default()).await;
    let url = LiveUrl::parse(&format!("quotehub://{addr}")).unwrap().unwrap();
    let (stop, mut stopped) = watch::channel(false);
    let source = tokio::spawn(run_live(hub.hub.clone(), url, 0, LiveOptions::default(), async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    assert!(serve_once(&listener, 2 << 20).await, "the relay hung up");
    // It reconnects: the hub is unharmed and keeps its source.
    let (again, _) = within(listener.accept()).await.unwrap();
    drop(again);
    stop.send(true).unwrap();
    within(source).await.unwrap();
    hub.shutdown().await;
}
