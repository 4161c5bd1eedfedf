//! What a connection asks of the bus its hub is joined to (an edge's
//! interest): before a subscribe is answered, the symbols' records are
//! fetched into the table; after an unsubscribe, and when the client
//! leaves, the symbols it no longer holds are let go. A hub without a bus
//! skips all of it (no parse, no wait).

use std::time::Duration;

use quotehub_engine::hub::Hub;
use quotehub_proto::{Channels, Op, Request};

/// Before the session applies `request`: a subscribe waits (at most
/// `wait`) until the bus's records of its symbols are in the table. Past
/// `wait` (the bus is away) it goes on: the client gets what the table has,
/// and the reader's records when they come.
pub(crate) async fn before(hub: &Hub, client: u64, request: &Request, wait: Duration) {
    let Some(bus) = hub.bus() else { return };
    if request.op != Op::Subscribe {
        return;
    }
    let symbols = &request.symbols;
    if symbols.is_empty() {
        return;
    }
    if tokio::time::timeout(wait, bus.acquire(client, symbols)).await.is_err() {
        tracing::warn!(
            client,
            symbols = symbols.len(),
            ?wait,
            "bus: a subscribe went ahead before its symbols' history arrived"
        );
    }
}

/// After the session applied `request`: an unsubscribe of every channel
/// lets its symbols go.
pub(crate) fn after(hub: &Hub, client: u64, request: &Request) {
    let Some(bus) = hub.bus() else { return };
    if request.op == Op::Unsubscribe && request.channels == Channels::ALL {
        bus.release(client, &request.symbols);
    }
}

/// The client is gone.
pub(crate) fn left(hub: &Hub, client: u64) {
    if let Some(bus) = hub.bus() {
        bus.release_all(client);
    }
}
