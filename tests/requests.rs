//! Every request gets a reply; bad requests get an error with a code and the
//! connection stays usable; bad handshakes are refused with an HTTP status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, key, next, quote, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_client::Error;
use quotehub_proto::{ErrorCode, Flags};
use quotehub_server::ServerConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Sends `text` and returns the JSON reply.
async fn ask(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    message: Message,
) -> serde_json::Value {
    ws.send(message).await.unwrap();
    loop {
        match within(ws.next()).await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Binary(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_error_replies_and_the_connection_stays() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(hub.url.as_str()).await.unwrap();
    // TC0..: (request, expected code, expected id)
    let cases = [
        (Message::text("{not json"), "malformed_json", serde_json::Value::Null),
        (
            Message::text(r#"{"op":"dance","symbols":["A"],"id":1}"#),
            "unknown_op",
            1.into(),
        ),
        (
            Message::text(r#"{"op":"subscribe","id":"x"}"#),
            "bad_request",
            "x".into(),
        ),
        (
            Message::text(r#"{"op":"subscribe","symbols":["NOT VALID"],"id":2}"#),
            "invalid_symbol",
            2.into(),
        ),
        (
            Message::binary(vec![1, 2, 3]),
            "unsupported_message",
            serde_json::Value::Null,
        ),
    ];
    for (request, code, id) in cases {
        let reply = ask(&mut ws, request).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply["id"], id, "{reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let reply = ask(
        &mut ws,
        Message::text(r#"{"op":"subscribe","symbols":["AAPL","*"],"id":3}"#),
    )
    .await;
    let epoch = hub.hub.table().epoch().to_string();
    // No feed has sent AAPL: the ack says so, so a client can tell "no data
    // yet" from "nothing coming".
    assert_eq!(
        reply,
        serde_json::json!({"type":"ack","id":3,"op":"subscribe","symbols":["AAPL","*"],"epoch":epoch,"unseen":["AAPL"]})
    );
    hub.hub
        .publisher(quotehub_proto::Flags::default(), 0)
        .publish(common::quote("MSFT", "509.84", "509.86", 1));
    let reply = ask(
        &mut ws,
        Message::text(r#"{"op":"subscribe","symbols":["MSFT","ZZZZ"],"id":4}"#),
    )
    .await;
    assert_eq!(reply["unseen"], serde_json::json!(["ZZZZ"]), "{reply}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_library_reports_refusals_and_carries_on() {
    let hub = TestHub::start(ServerConfig {
        max_symbols_per_client: 2,
        ..ServerConfig::default()
    })
    .await;
    let mut client = hub.connect().await;
    match client.subscribe(&["A", "B", "C"]).await {
        Err(Error::Refused {
            code: ErrorCode::BadRequest,
            message,
        }) => assert!(message.contains("at most 2")),
        other => panic!("{other:?}"),
    }
    client.subscribe(&["A", "B"]).await.unwrap();
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("B", "1.00", "1.01", 1));
    assert_eq!(key(&next(&mut client).await), ("B".into(), 1, false));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_and_unknown_subprotocol_are_refused_at_the_handshake() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let wrong_path = hub.url.replace("/v1/quotes", "/v2/nothing");
    match tokio_tungstenite::connect_async(wrong_path.as_str()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("/v1/quotes"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    let mut request = hub.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("{other:?}"),
    }
    // The named binary protocol is accepted and echoed.
    let mut request = hub.url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "quotehub.v1.binary".parse().unwrap());
    let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "quotehub.v1.binary");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_requests_are_validated_and_a_refused_one_changes_nothing() {
    let hub = TestHub::start(ServerConfig::default()).await;
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("MSFT", "509.84", "509.86", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(hub.url.as_str()).await.unwrap();
    // TC0: a channel this hub does not carry: refused whole, naming it and the known ones.
    let reply = ask(
        &mut ws,
        Message::text(r#"{"op":"subscribe","symbols":["MSFT"],"channels":["quotes","bars.5m"],"id":1}"#),
    )
    .await;
    assert_eq!(
        (&reply["type"], &reply["code"], &reply["id"]),
        (&"error".into(), &"unknown_channel".into(), &1.into()),
        "{reply}"
    );
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("bars.5m") && message.contains("bars.1m"), "{message}");
    // TC1: empty channels, and channels that are not strings: bad requests.
    for (text, id) in [
        (r#"{"op":"subscribe","symbols":["MSFT"],"channels":[],"id":2}"#, 2),
        (r#"{"op":"unsubscribe","symbols":["MSFT"],"channels":"bbo","id":3}"#, 3),
    ] {
        let reply = ask(&mut ws, Message::text(text)).await;
        assert_eq!(
            (&reply["code"], &reply["id"]),
            (&"bad_request".into(), &id.into()),
            "{reply}"
        );
    }
    // TC2: the default channels, named: acknowledged, and MSFT's snapshot
    // follows, so the refused request above had not subscribed it.
    let reply = ask(
        &mut ws,
        Message::text(r#"{"op":"subscribe","symbols":["MSFT"],"channels":["quotes","trades"],"id":4}"#),
    )
    .await;
    assert_eq!((&reply["type"], &reply["id"]), (&"ack".into(), &4.into()), "{reply}");
    let Message::Binary(snapshot) = within(ws.next()).await.unwrap().unwrap() else {
        panic!("expected MSFT's snapshot")
    };
    let records: Vec<_> = quotehub_proto::Message::decode(&snapshot)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let [quotehub_proto::Record::Quote(record)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!((record.quote.symbol.as_str(), record.flags), ("MSFT", Flags::SNAPSHOT));
}
