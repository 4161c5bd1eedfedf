//! Limits, each with a clear answer: the connection cap (503), the request
//! rate (error replies, then 1008), the message size (1009), invalid UTF-8
//! (1007), and a slow request head (dropped after the handshake timeout).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestHub, raw_ws, until, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_server::ServerConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Reads until the close frame, returning it (replies and records before it are skipped).
async fn close_frame(ws: &mut Ws) -> CloseFrame {
    within(async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503() {
    let hub = TestHub::start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let _first = hub.connect().await;
    until(|| hub.hub.client_count() >= 1).await;
    match within(tokio_tungstenite::connect_async(hub.url.as_str())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "5");
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("the hub is full"), "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_floods_get_error_replies_then_a_close() {
    // One request a second sustained, two at once: the third is refused.
    let config = ServerConfig {
        requests_per_second: 1,
        request_burst: 2,
        ..ServerConfig::default()
    };
    let hub = TestHub::start(config).await;
    let (mut ws, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap();
    for id in 0..3 {
        ws.send(Message::text(format!(
            r#"{{"op":"subscribe","symbols":["A"],"id":{id}}}"#
        )))
        .await
        .unwrap();
    }
    let mut replies: Vec<Value> = Vec::new();
    while replies.len() < 3 {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            replies.push(serde_json::from_str(text.as_str()).unwrap());
        }
    }
    assert_eq!(
        (replies[0]["type"].as_str(), replies[1]["type"].as_str()),
        (Some("ack"), Some("ack"))
    );
    assert_eq!(replies[2]["code"], "rate_limited", "{}", replies[2]);
    // Ignoring the refusals: closed for abuse.
    for id in 3..8 {
        ws.send(Message::text(format!(
            r#"{{"op":"subscribe","symbols":["A"],"id":{id}}}"#
        )))
        .await
        .unwrap();
    }
    let frame = close_frame(&mut ws).await;
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Policy, "request rate exceeded")
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_closed_with_1009() {
    let hub = TestHub::start(ServerConfig {
        max_request_bytes: 1024,
        ..ServerConfig::default()
    })
    .await;
    let (mut ws, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap();
    ws.send(Message::text("x".repeat(4096))).await.unwrap();
    let frame = close_frame(&mut ws).await;
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Size, "message too big")
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_text_message_is_closed_with_1007() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut stream = raw_ws::upgrade(&hub).await;
    // A final text frame whose payload is not UTF-8.
    raw_ws::write_frame(&mut stream, 0x81, &[0xff, 0xfe, 0xfd]).await;
    let (code, reason) = raw_ws::read_close(&mut stream).await;
    assert_eq!((code, reason.as_str()), (1007, "invalid UTF-8 in a text message"));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_dropped_after_the_timeout() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let hub = TestHub::start(config).await;
    let mut stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    stream
        .write_all(b"GET /v1/quotes HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = within(stream.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(
        read,
        0,
        "the hub hangs up without answering: {}",
        String::from_utf8_lossy(&rest)
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_grow_the_table_past_its_symbol_limit() {
    let hub = TestHub::start(ServerConfig {
        max_symbols: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut publisher = hub.hub.publisher(quotehub_proto::Flags::default(), 0);
    publisher.publish(common::quote("AAPL", "1.00", "1.01", 1));
    let (mut ws, _) = within(tokio_tungstenite::connect_async(hub.url.as_str()))
        .await
        .unwrap();
    let mut request = async |id: u32, symbols: &str| -> Value {
        ws.send(Message::text(format!(
            r#"{{"op":"subscribe","symbols":[{symbols}],"id":{id}}}"#
        )))
        .await
        .unwrap();
        loop {
            if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
                let reply: Value = serde_json::from_str(text.as_str()).unwrap();
                if reply["id"] == id {
                    return reply;
                }
            }
        }
    };
    // AAPL is known; X1 is one unseen symbol: 2 of 3.
    assert_eq!(request(1, r#""AAPL","X1""#).await["type"], "ack");
    // Two more unseen would make 4: refused, and nothing changes.
    let refused = request(2, r#""X2","X3""#).await;
    assert_eq!(refused["code"], "symbol_limit", "{refused}");
    assert_eq!(hub.hub.table().symbol_count(), 2);
    // One fits; a symbol already tracked never counts against the limit.
    assert_eq!(request(3, r#""X2""#).await["type"], "ack");
    assert_eq!(request(4, r#""X1","AAPL""#).await["type"], "ack");
    assert_eq!(request(5, r#""X4""#).await["code"], "symbol_limit");
    // Feeds are never refused: a new symbol published still gets a slot.
    publisher.publish(common::quote("MSFT", "2.00", "2.01", 2));
    assert_eq!(hub.hub.table().symbol_count(), 4);
    hub.shutdown().await;
}
