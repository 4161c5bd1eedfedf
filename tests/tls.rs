//! TLS: a hub given a certificate and key serves `wss://` (and `https://`);
//! a real WebSocket client over rustls subscribes and receives exact quotes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{TestHub, quote, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_proto::{Flags, Message as Records, Record};
use quotehub_server::{ServerConfig, Tls, TlsError};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

/// A fresh self-signed certificate for `localhost`, written as PEM files.
fn certificate(dir: &PathBuf) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key, generated.cert.der().clone())
}

/// A rustls client stream to the hub that trusts only `root`.
async fn tls_stream(hub: &TestHub, root: CertificateDer<'static>) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = within(TcpStream::connect(hub.addr())).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    within(connector.connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_clients_subscribe_and_receive_exact_quotes() {
    let dir = std::env::temp_dir().join(format!("quotehub-tls-{}", std::process::id()));
    let (cert, key, root) = certificate(&dir);
    let tls = Tls::from_pem_files(&cert, &key).unwrap();
    let hub = TestHub::start(ServerConfig {
        tls: Some(tls),
        ..ServerConfig::default()
    })
    .await;

    let url = format!("wss://localhost:{}/v1/quotes", hub.addr().rsplit(':').next().unwrap());
    let stream = tls_stream(&hub, root.clone()).await;
    let (mut ws, response) = within(tokio_tungstenite::client_async(url.as_str(), stream))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text(r#"{"op":"subscribe","symbols":["AAPL"],"id":1}"#))
        .await
        .unwrap();
    let Message::Text(ack) = within(ws.next()).await.unwrap().unwrap() else {
        panic!("an ack first")
    };
    assert!(ack.as_str().contains(r#""type":"ack""#), "{ack}");
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.2345", "271.24", 7));
    let Message::Binary(bytes) = within(ws.next()).await.unwrap().unwrap() else {
        panic!("records")
    };
    let Some(Ok(Record::Quote(record))) = Records::decode(&bytes).unwrap().next() else {
        panic!("a quote")
    };
    assert_eq!(record.quote.bid_price.to_string(), "271.2345");

    // The board is served over https on the same port.
    let mut https = tls_stream(&hub, root).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    https
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    within(https.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");

    // A plain-text client gets no service from a TLS hub.
    assert!(
        within(tokio_tungstenite::connect_async(hub.url.as_str()))
            .await
            .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    hub.shutdown().await;
}

#[test]
fn bad_pem_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("quotehub-tls-bad-{}", std::process::id()));
    let (cert, key, _) = certificate(&dir);
    let missing = dir.join("missing.pem");
    match Tls::from_pem_files(&missing, &key) {
        Err(TlsError::Pem {
            what: "certificate",
            path,
            ..
        }) => assert!(path.ends_with("missing.pem")),
        other => panic!("{other:?}"),
    }
    // The certificate where the key should be.
    match Tls::from_pem_files(&cert, &cert) {
        Err(TlsError::Pem {
            what: "private key", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
