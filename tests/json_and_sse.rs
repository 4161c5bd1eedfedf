//! The JSON sub-protocol and Server-Sent Events carry the same content as the
//! binary records; the HTTP front door answers everything else plainly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, quote, trade, until, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_proto::Flags;
use quotehub_server::ServerConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_subprotocol_sends_the_same_records_as_json_text() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut request = hub.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt, quotehub.v1.json".parse().unwrap());
    let (mut ws, response) = within(tokio_tungstenite::connect_async(request)).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "quotehub.v1.json");

    ws.send(Message::text(r#"{"op":"subscribe","symbols":["BRK.B"],"id":9}"#))
        .await
        .unwrap();
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    let mut texts = Vec::new();
    while texts.len() < 2 {
        if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
            texts.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
            if texts.len() == 1 {
                publisher.publish(quote("BRK.B", "500.0001", "500.0300", 1_795_185_000_000_000_001));
                publisher.publish(trade("BRK.B", "500.01", 1_795_185_000_000_000_002));
            }
        }
    }
    assert_eq!(texts[0]["type"], "ack");
    let mut records: Vec<Value> = Vec::new();
    records.extend(texts[1]["records"].as_array().unwrap().iter().cloned());
    while records.len() < 2 {
        let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() else {
            continue;
        };
        let value: Value = serde_json::from_str(text.as_str()).unwrap();
        records.extend(value["records"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(texts[1]["type"], "records");
    assert!(texts[1]["send_ts"].as_u64().unwrap() > 0);
    let q = &records[0];
    assert_eq!(
        (q["type"].as_str(), q["sym"].as_str(), q["seq"].as_u64()),
        (Some("quote"), Some("BRK.B"), Some(1))
    );
    assert_eq!(
        (q["bp"].as_str(), q["ap"].as_str()),
        (Some("500.0001"), Some("500.03")),
        "exact decimal strings"
    );
    assert_eq!(q["t"].as_u64(), Some(1_795_185_000_000_000_001));
    assert_eq!(q["flags"], serde_json::json!(["replayed"]));
    let t = &records[1];
    assert_eq!(
        (t["type"].as_str(), t["p"].as_str(), t["seq"].as_u64()),
        (Some("trade"), Some("500.01"), Some(2))
    );
    hub.shutdown().await;
}

/// Sends a raw HTTP request and returns the response's status line and the stream.
async fn http(hub: &TestHub, request: &str) -> (String, BufReader<TcpStream>) {
    let mut stream = within(TcpStream::connect(hub.addr())).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    within(tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut status))
        .await
        .unwrap();
    (status.trim_end().to_owned(), reader)
}

/// Reads SSE events (name, data) until `count` arrived.
async fn events(reader: &mut BufReader<TcpStream>, count: usize) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let mut name = String::new();
    while found.len() < count {
        let mut line = String::new();
        let read = within(tokio::io::AsyncBufReadExt::read_line(reader, &mut line))
            .await
            .unwrap();
        assert!(read > 0, "the stream ended early");
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            found.push((name.clone(), serde_json::from_str(data.trim()).unwrap()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_json_events_for_the_named_symbols() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("AAPL", "271.10", "271.12", 1));
    let (status, mut reader) = http(&hub, "GET /v1/sse?symbols=AAPL%2CMSFT HTTP/1.1\r\nHost: hub\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        within(tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line))
            .await
            .unwrap();
        if line == "\r\n" {
            break;
        }
        headers.push_str(&line);
    }
    assert!(headers.contains("Content-Type: text/event-stream"), "{headers}");
    let first = events(&mut reader, 2).await;
    assert_eq!(first[0].0, "reply");
    assert_eq!(first[0].1["type"], "ack");
    assert_eq!(
        (first[1].0.as_str(), first[1].1["flags"].clone()),
        ("quote", serde_json::json!(["snapshot"]))
    );
    publisher.publish(quote("TSLA", "420.00", "420.05", 2));
    publisher.publish(trade("MSFT", "510.3100", 3));
    let live = events(&mut reader, 1).await;
    assert_eq!(
        (live[0].0.as_str(), live[0].1["sym"].as_str(), live[0].1["p"].as_str()),
        ("trade", Some("MSFT"), Some("510.31"))
    );
    drop(reader);
    until(|| hub.hub.client_count() == 0).await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_answers_plainly() {
    let hub = TestHub::start(ServerConfig::default()).await;
    // TC0..: (request, status line, text the body must contain)
    let cases = [
        (
            "GET /v1/quotes HTTP/1.1\r\nHost: hub\r\n\r\n",
            "HTTP/1.1 426 Upgrade Required",
            "Upgrade: websocket",
        ),
        (
            "GET /nope HTTP/1.1\r\nHost: hub\r\n\r\n",
            "HTTP/1.1 404 Not Found",
            "/v1/quotes",
        ),
        (
            "POST /v1/sse?symbols=A HTTP/1.1\r\nHost: hub\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
            "GET",
        ),
        (
            "GET /v1/sse HTTP/1.1\r\nHost: hub\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "symbols=AAPL,MSFT",
        ),
        (
            "GET /v1/sse?symbols=A%20B HTTP/1.1\r\nHost: hub\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "invalid symbol",
        ),
        (
            "\x16\x03\x01\x02\x00 garbage\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "malformed request",
        ),
        (
            "GET /v1/quotes HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "Sec-WebSocket-Version must be 13",
        ),
    ];
    for (request, expected_status, expected_body) in cases {
        let (status, mut reader) = http(&hub, request).await;
        assert_eq!(status, expected_status, "{request:?}");
        let mut rest = String::new();
        within(reader.read_to_string(&mut rest)).await.unwrap();
        assert!(rest.contains(expected_body), "{request:?}: {rest}");
    }
    hub.shutdown().await;
}
