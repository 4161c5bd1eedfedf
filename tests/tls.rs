//! TLS: a hub given a certificate and key serves `wss://` (and `https://`);
//! a real WebSocket client over rustls subscribes and receives exact quotes,
//! and so does quotehub's own Rust client, which refuses a certificate it
//! has no reason to trust, or one for another name, with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::tls::TestCert;
use common::{TestHub, next, quote, within};
use futures_util::{SinkExt, StreamExt};
use quotehub_client::{CertificateProblem, Client, ClientTls, Error, Update};
use quotehub_proto::{Flags, Message as Records, Record};
use quotehub_server::{ServerConfig, ServerTls, ServerTlsError};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

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
    let cert = TestCert::localhost("tls-raw");
    let root = cert.der.clone();
    let hub = TestHub::start(ServerConfig {
        tls: Some(cert.server_tls()),
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
    hub.shutdown().await;
}

#[test]
fn bad_pem_files_are_clear_errors() {
    let files = TestCert::localhost("tls-bad");
    let (cert, key) = (&files.cert, &files.key);
    let missing = cert.with_file_name("missing.pem");
    match ServerTls::from_pem_files(&missing, key) {
        Err(ServerTlsError::Pem {
            what: "certificate",
            path,
            ..
        }) => assert!(path.ends_with("missing.pem")),
        other => panic!("{other:?}"),
    }
    // The certificate where the key should be.
    match ServerTls::from_pem_files(cert, cert) {
        Err(ServerTlsError::Pem {
            what: "private key", ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// A hub serving `wss://` with a fresh certificate for `localhost`.
async fn tls_hub(cert: &TestCert) -> (TestHub, String) {
    let hub = TestHub::start(ServerConfig {
        tls: Some(cert.server_tls()),
        ..ServerConfig::default()
    })
    .await;
    let port = hub.addr().rsplit(':').next().unwrap().to_owned();
    (hub, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_subscribes_over_wss_to_a_hub_whose_ca_it_is_given() {
    let cert = TestCert::localhost("tls-client");
    let (hub, port) = tls_hub(&cert).await;
    let url = format!("wss://localhost:{port}/v1/quotes");
    let mut client = within(Client::connect_with(&url, cert.client_tls())).await.unwrap();
    client.subscribe(&["AAPL"]).await.unwrap();
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.2345", "271.240000001", 7));
    let Update::Quote { record, .. } = next(&mut client).await else {
        panic!("a quote")
    };
    assert_eq!(
        (record.quote.bid_price.to_string(), record.quote.ask_price.to_string()),
        ("271.2345".to_owned(), "271.240000001".to_owned())
    );
    client.close().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_refuses_an_untrusted_or_misnamed_certificate_clearly() {
    let cert = TestCert::localhost("tls-refused");
    let (hub, port) = tls_hub(&cert).await;

    // The public web roots alone do not vouch for a self-signed certificate.
    let url = format!("wss://localhost:{port}/v1/quotes");
    let error = within(Client::connect_with(&url, ClientTls::web_roots().unwrap()))
        .await
        .unwrap_err();
    let Error::Connect(connect) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(connect.certificate_problem(), Some(CertificateProblem::Untrusted));
    let message = error.to_string();
    assert!(
        message.contains(&format!("localhost:{port}"))
            && message.contains("not trusted")
            && message.contains("--ca-file"),
        "{message}"
    );

    // Trusted, but the URL names the host by an address the certificate does not list.
    let by_address = format!("wss://127.0.0.1:{port}/v1/quotes");
    let error = within(Client::connect_with(&by_address, cert.client_tls()))
        .await
        .unwrap_err();
    let Error::Connect(connect) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(connect.certificate_problem(), Some(CertificateProblem::NameMismatch));
    assert!(error.to_string().contains("not valid for"), "{error}");

    // The hub is still serving those who trust it.
    let client = within(Client::connect_with(&url, cert.client_tls())).await.unwrap();
    client.close().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_served_as_the_hubs_own_is_refused_with_what_to_do() {
    // What a plain `openssl req -x509 ...` makes: a CA certificate. Trusted
    // as a CA, it still may not be a server's own (webpki: CaUsedAsEndEntity).
    let cert = TestCert::localhost_ca("tls-ca-as-leaf");
    let (hub, port) = tls_hub(&cert).await;
    let url = format!("wss://localhost:{port}/v1/quotes");
    let error = within(Client::connect_with(&url, cert.client_tls())).await.unwrap_err();
    let Error::Connect(connect) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        connect.certificate_problem(),
        Some(CertificateProblem::CaAsServerCertificate)
    );
    let message = error.to_string();
    assert!(
        message.contains("is a CA certificate") && message.contains("quotehub cert") && !message.contains("CaUsed"),
        "{message}"
    );
    hub.shutdown().await;
}
