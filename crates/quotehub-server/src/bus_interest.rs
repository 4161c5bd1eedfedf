//! What a connection asks of the bus its hub is joined to (an edge's
//! interest): before a subscribe is answered, the symbols' records are
//! fetched into the table; after a request, what the client does not hold
//! (unsubscribed, or refused) is let go, and everything when it leaves. A
//! hub without a bus skips all of it (no parse, no wait). While a
//! subscribe waits (at most `bus_fetch_timeout`), its connection reads
//! and writes nothing else; its queue keeps filling under its policy.

use std::time::Duration;

use quotehub_engine::ClientHandle;
use quotehub_engine::hub::Hub;
use quotehub_engine::session::Session;
use quotehub_proto::{Channels, ErrorCode, Op, Reply, Request, Selection};

/// Before the session applies `request`: a subscribe waits (at most
/// `wait`) until the bus's records of its symbols are in the table. Past
/// `wait` (the bus is away), a plain subscribe goes on (the client gets
/// what the table has, and the reader's records when they come), but a
/// resume is refused with `upstream_unavailable`: answered from a table
/// that lacks the history, its continuation could come later with numbers
/// at or below the client's. Whether to apply the request.
pub(crate) async fn before(hub: &Hub, client: &ClientHandle, request: &Request, wait: Duration) -> bool {
    let Some(bus) = hub.bus() else { return true };
    if request.op != Op::Subscribe || request.symbols.is_empty() {
        return true;
    }
    let symbols = &request.symbols;
    if tokio::time::timeout(wait, bus.acquire(client.id(), symbols, request.channels))
        .await
        .is_ok()
    {
        return true;
    }
    tracing::warn!(
        client = client.id(),
        symbols = symbols.len(),
        ?wait,
        resume = !request.resume.is_empty(),
        "bus: a subscribe's symbols did not arrive in time"
    );
    if request.resume.is_empty() {
        return true;
    }
    let message = format!("the bus did not deliver these symbols' history within {wait:?}; try again");
    client.reply(Reply::error(request.id.clone(), ErrorCode::UpstreamUnavailable, message).to_json());
    false
}

/// After the session applied `request`: what the client does not hold
/// (unsubscribed, or a subscribe it was refused: over a limit, not
/// entitled) is let go, and so are the derived records of what it holds
/// with no derived channel any more, so a client cannot keep readers it
/// has no subscription for.
pub(crate) fn after(hub: &Hub, client: u64, request: &Request, session: &Session) {
    let Some(bus) = hub.bus() else { return };
    let (held, dropped): (Vec<Selection>, Vec<Selection>) = request
        .symbols
        .iter()
        .copied()
        .partition(|&selection| session.holds(selection));
    if !dropped.is_empty() {
        bus.release(client, &dropped);
    }
    let derived = Channels::ALL.without(Channels::DEFAULT);
    let underived: Vec<Selection> = held
        .into_iter()
        .filter(|&selection| !session.channels(selection).intersects(derived))
        .collect();
    if !underived.is_empty() {
        bus.release_derived(client, &underived);
    }
}

/// The client is gone.
pub(crate) fn left(hub: &Hub, client: u64) {
    if let Some(bus) = hub.bus() {
        bus.release_all(client);
    }
}
