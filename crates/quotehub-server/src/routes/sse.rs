//! Server-Sent Events at `GET /v1/sse?symbols=AAPL,MSFT` (or `*`): the same
//! records as JSON, one event each, for clients behind proxies that block
//! WebSocket. The subscription is fixed by the URL; the stream is read-only.

use std::net::SocketAddr;

use quotehub_proto::json::record_to_json;
use quotehub_proto::{Op, Record, Request, Selection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tracing::debug;

use crate::bus_interest;
use crate::config::ServerConfig;
use crate::connection::{CLOSE_GRACE, Registered, going_away, leave};
use crate::deadline::{self, Deadline};
use crate::http::{Head, respond_text};
use quotehub_engine::hub::Hub;
use quotehub_engine::queue::Outbound;

/// Most queued items turned into events between two writes.
const MAX_ITEMS_PER_WRITE: usize = 1_024;

/// Serves one SSE client until it goes away, the hub closes it, or shutdown.
pub(crate) async fn serve<S>(
    mut stream: S,
    head: Head,
    entitled: Option<std::sync::Arc<std::collections::HashSet<quotehub_proto::Symbol>>>,
    peer: SocketAddr,
    hub: &Hub,
    config: &ServerConfig,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if head.method != "GET" {
        let _ = respond_text(&mut stream, 405, "the SSE endpoint takes GET\n").await;
        return;
    }
    let request = match selections(&head) {
        Ok(symbols) => Request {
            policy: None,
            op: Op::Subscribe,
            symbols,
            channels: Request::default_channels(Op::Subscribe),
            id: None,
            resume: Vec::new(),
            epoch: None,
        },
        Err(text) => {
            let _ = respond_text(&mut stream, 400, &text).await;
            return;
        }
    };
    let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n";
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let Registered {
        client,
        mut session,
        queue,
        mut close,
    } = Registered::new(hub, config, config.default_policy);
    debug!(%peer, client = client.id(), "SSE client connected");
    session.restrict_to(entitled);
    let apply = bus_interest::before(hub, &client, &request, config.bus_fetch_timeout).await;
    let asked = hub.bus().is_some().then(|| request.clone());
    if apply {
        session.apply(request);
    }
    if let Some(asked) = &asked {
        bus_interest::after(hub, client.id(), asked, &session);
    }
    let (mut reader, writer) = tokio::io::split(stream);
    // Every write under the write deadline, and a close cuts a stalled one short.
    let mut writer = Deadline::new(writer, config.write_timeout, CLOSE_GRACE, &close);
    let mut discard = [0u8; 512];
    let mut text = String::new();
    let mut batch = Vec::with_capacity(MAX_ITEMS_PER_WRITE);
    loop {
        batch.clear();
        tokio::select! {
            biased;
            _ = close.changed() => break,
            more = queue.drain(&mut batch, MAX_ITEMS_PER_WRITE) => {
                if !more {
                    break;
                }
                text.clear();
                let mut closing = false;
                for item in batch.drain(..) {
                    closing |= append_event(&mut text, item);
                    if closing {
                        break;
                    }
                }
                if let Err(err) = writer.write_all(text.as_bytes()).await {
                    deadline::count(hub.stats(), &err);
                    break;
                }
                if closing {
                    break;
                }
            }
            // An SSE client sends nothing after its request: any end of input means it left.
            read = reader.read(&mut discard) => {
                if !matches!(read, Ok(n) if n > 0) {
                    break;
                }
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    client.close_after_queue(going_away());
                }
            }
        }
    }
    queue.close();
    leave(hub, session, &client);
    let _ = writer.shutdown().await;
    debug!(%peer, client = client.id(), "SSE client disconnected");
}

/// The selections in `?symbols=`, or the text of a 400.
fn selections(head: &Head) -> Result<Vec<Selection>, String> {
    let raw = head
        .query_value("symbols")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "name the symbols: /v1/sse?symbols=AAPL,MSFT (or symbols=* for all)\n".to_owned())?;
    raw.split(',')
        .map(|name| match name.trim() {
            "*" => Ok(Selection::All),
            name => name.parse().map(Selection::Symbol).map_err(|err| format!("{err}\n")),
        })
        .collect()
}

/// Appends one queued item as an SSE event; true if it asks to close.
fn append_event(text: &mut String, item: Outbound) -> bool {
    match item {
        Outbound::Records(run) => {
            let records = run.contiguous();
            let mut rest = records.as_ref();
            while let Ok((record, used)) = Record::decode(rest) {
                let kind = match record {
                    Record::Quote(_) => "quote",
                    Record::Trade(_) => "trade",
                    Record::Status(_) => "status",
                    Record::Bar(_) => "bar",
                    Record::Bbo(_) => "bbo",
                    _ => "record",
                };
                text.push_str(&format!("event: {kind}\ndata: {}\n\n", record_to_json(&record)));
                rest = rest.get(used..).unwrap_or_default();
            }
            false
        }
        Outbound::Text(reply) => {
            text.push_str(&format!("event: reply\ndata: {reply}\n\n"));
            false
        }
        // SSE has no pings (the stream's own traffic shows liveness) and
        // no writes from the publisher's thread.
        Outbound::Ping | Outbound::Control(_) | Outbound::Unfinished(_) => false,
        Outbound::Close(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_browser_escapes() {
        let decoded = |raw: &str| {
            let head = Head {
                method: "GET".into(),
                path: "/v1/sse".into(),
                query: Some(format!("symbols={raw}")),
                headers: Vec::new(),
                rest: Vec::new(),
            };
            head.query_value("symbols").unwrap()
        };
        assert_eq!(decoded("AAPL%2CBRK.B%2C%2A"), "AAPL,BRK.B,*");
        assert_eq!(decoded("bad%zz%4"), "bad%zz%4");
    }
}
