//! Access at the handshake: API keys (header, or query parameter for
//! browsers), per-key symbol entitlements and connection caps, and an
//! `Origin` allow-list. Refusals are HTTP 401/403 with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestHub, http_get, until, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_server::{Access, ApiKey, ServerConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

fn config() -> ServerConfig {
    let desk = ApiKey {
        name: "desk".into(),
        key: "desk-secret".into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let board = ApiKey {
        name: "board".into(),
        key: "board-secret".into(),
        symbols: Some(["AAPL".parse().unwrap()].into_iter().collect()),
        max_connections: Some(1),
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let access = Access::new(vec![desk, board], vec!["https://board.example".into()]);
    ServerConfig {
        access,
        ..ServerConfig::default()
    }
}

/// Attempts a handshake with these headers and query; the HTTP status of a refusal, or 101.
async fn handshake(hub: &TestHub, query: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = format!("{}{query}", hub.url).into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match within(tokio_tungstenite::connect_async(request)).await {
        Ok((mut ws, response)) => {
            let _ = ws.close(None).await;
            (response.status().as_u16(), String::new())
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_origins_are_checked_at_the_handshake() {
    let hub = TestHub::start(config()).await;
    // TC0: no key. TC1: a wrong key. TC2..4: the three ways to present one.
    let (status, body) = handshake(&hub, "", &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("an API key is required"), "{body}");
    assert_eq!(
        handshake(&hub, "", &[("Authorization", "Bearer nope")]).await,
        (401, "unknown API key\n".into())
    );
    assert_eq!(
        handshake(&hub, "", &[("Authorization", "Bearer desk-secret")]).await.0,
        101
    );
    assert_eq!(handshake(&hub, "", &[("X-Api-Key", "desk-secret")]).await.0, 101);
    assert_eq!(handshake(&hub, "?api_key=desk-secret", &[]).await.0, 101);
    // TC5: a browser page from another site. TC6: from the allowed one.
    let (status, body) = handshake(&hub, "?api_key=desk-secret", &[("Origin", "https://evil.example")]).await;
    assert_eq!((status, body.contains("not allowed")), (403, true), "{body}");
    assert_eq!(
        handshake(&hub, "?api_key=desk-secret", &[("Origin", "https://board.example")])
            .await
            .0,
        101
    );
    // TC7: SSE is guarded the same way.
    assert_eq!(http_get(&hub, "/v1/sse?symbols=AAPL").await.0, 401);
    // TC8: the board page itself is public.
    assert_eq!(http_get(&hub, "/").await.0, 200);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gets_only_its_symbols_and_its_connections() {
    let hub = TestHub::start(config()).await;
    let url = format!("{}?api_key=board-secret", hub.url);
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url.as_str())).await.unwrap();
    let mut replies = Vec::new();
    for request in [
        r#"{"op":"subscribe","symbols":["AAPL"],"id":1}"#,
        r#"{"op":"subscribe","symbols":["AAPL","MSFT"],"id":2}"#,
        r#"{"op":"subscribe","symbols":["*"],"id":3}"#,
    ] {
        ws.send(Message::text(request)).await.unwrap();
        loop {
            if let Message::Text(text) = within(ws.next()).await.unwrap().unwrap() {
                replies.push(serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap());
                break;
            }
        }
    }
    assert_eq!(replies[0]["type"], "ack");
    assert_eq!(
        (replies[1]["code"].as_str(), replies[1]["id"].as_u64()),
        (Some("not_entitled"), Some(2))
    );
    assert!(replies[1]["message"].as_str().unwrap().contains("MSFT"));
    assert_eq!(replies[2]["code"], "not_entitled");
    assert_eq!(
        hub.hub.table().subscriber_count("MSFT".parse().unwrap()),
        0,
        "refused whole"
    );

    // The key holds one connection at most; the cap frees when it closes.
    let (status, body) = handshake(&hub, "?api_key=board-secret", &[]).await;
    assert_eq!(status, 403, "{body}");
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    until(|| hub.hub.client_count() == 0).await;
    assert_eq!(handshake(&hub, "?api_key=board-secret", &[]).await.0, 101);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_metrics_need_an_admin_key_and_health_stays_open() {
    let mut config = config();
    config.access.keys.push(ApiKey {
        name: "ops".into(),
        key: "ops-secret".into(),
        symbols: None,
        max_connections: None,
        admin: true,
        delay: std::time::Duration::ZERO,
    });
    let hub = TestHub::start(config).await;
    let (status, body) = common::http_request(&hub, "GET", "/metrics", &[]).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = common::http_request(&hub, "GET", "/metrics", &["Authorization: Bearer desk-secret"]).await;
    assert_eq!(status, 403, "a key without the admin right");
    let (status, body) = common::http_request(&hub, "GET", "/metrics", &["Authorization: Bearer ops-secret"]).await;
    assert_eq!(status, 200);
    assert!(body.contains("quotehub_events_in_total"), "{body}");
    let (status, _) = http_get(&hub, "/health").await;
    assert_eq!(status, 200);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_presents_its_key_and_says_when_one_is_needed() {
    use quotehub_client::{Client, ClientTls, Error};
    let hub = TestHub::start(config()).await;
    let error = within(Client::connect_with(&hub.url, ClientTls::web_roots().unwrap()))
        .await
        .unwrap_err();
    assert!(error.needs_api_key(), "{error:?}");
    assert!(matches!(error, Error::Http { status: 401, .. }), "{error:?}");
    assert!(error.to_string().contains("--api-key or QUOTEHUB_API_KEY"), "{error}");

    let mut client = within(Client::connect_with_key(
        &hub.url,
        ClientTls::web_roots().unwrap(),
        Some("desk-secret".into()),
    ))
    .await
    .unwrap();
    within(client.subscribe(&["AAPL"])).await.unwrap();
    // The key is presented again on a reconnection.
    within(client.reconnect()).await.unwrap();
    client.close().await.unwrap();
    hub.shutdown().await;
}
