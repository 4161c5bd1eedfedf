//! Clients that misbehave on purpose, and the well-behaved neighbour that
//! must not notice them: for the hostile-client tests.

use std::collections::HashMap;

use futures_util::SinkExt;
use quotehub_client::Update;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::{TestHub, within};

/// A raw WebSocket client with a 4 KiB receive window, subscribed to `*`,
/// that reads nothing (not even its ack) until the test reads it. `query` is
/// appended to the URL.
pub async fn stalled_client(hub: &TestHub, query: &str) -> WebSocketStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = within(socket.connect(hub.addr().parse().unwrap())).await.unwrap();
    let (mut ws, _) = within(tokio_tungstenite::client_async(format!("{}{query}", hub.url), stream))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"op":"subscribe","symbols":["*"],"id":1}"#))
        .await
        .unwrap();
    ws
}

/// A well-behaved client subscribed to `*`, reading all the time on its own
/// task (so it answers pings), checking that every quote continues its
/// symbol's sequence; publishes how many quotes it has received.
pub async fn neighbour(hub: &TestHub) -> watch::Receiver<u64> {
    let mut client = hub.connect().await;
    client.subscribe(&["*"]).await.unwrap();
    let (count, received) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut seqs: HashMap<String, u64> = HashMap::new();
        while let Ok(Some(update)) = client.next_update().await {
            let Update::Quote { record, .. } = update else { continue };
            let symbol = record.quote.symbol.to_string();
            let previous = seqs.insert(symbol.clone(), record.quote.seq).unwrap_or(0);
            assert_eq!(record.quote.seq, previous + 1, "the neighbour missed a {symbol} quote");
            count.send_modify(|n| *n += 1);
        }
    });
    received
}
