//! What a connection asks of the bus its hub is joined to (an edge's
//! interest): before a subscribe is answered, the symbols' records are
//! fetched into the table; after a request, what the client does not hold
//! (unsubscribed, or refused) is let go, and everything when it leaves. A
//! hub without a bus skips all of it (no parse, no wait). While a
//! subscribe waits (at most `bus_fetch_timeout`), its connection reads
//! and writes nothing else; its queue keeps filling under its policy.

use std::time::Duration;

use quotehub_engine::hub::Hub;
use quotehub_engine::session::Session;
use quotehub_proto::{Op, Request, Selection};

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

/// After the session applied `request`: what the client does not hold
/// (unsubscribed, or a subscribe it was refused: over a limit, not
/// entitled) is let go, so a client cannot keep readers it has no
/// subscription for.
pub(crate) fn after(hub: &Hub, client: u64, request: &Request, session: &Session) {
    let Some(bus) = hub.bus() else { return };
    let dropped: Vec<Selection> = request
        .symbols
        .iter()
        .copied()
        .filter(|&selection| !session.holds(selection))
        .collect();
    if !dropped.is_empty() {
        bus.release(client, &dropped);
    }
}

/// The client is gone.
pub(crate) fn left(hub: &Hub, client: u64) {
    if let Some(bus) = hub.bus() {
        bus.release_all(client);
    }
}
