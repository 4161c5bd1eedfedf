//! The admin endpoints of the hub's own replay, on the hub's HTTP port:
//!
//! | request | does |
//! |---|---|
//! | `GET /admin/replay` | the replay's state as JSON |
//! | `POST /admin/replay/pause` | holds still; nothing is published until resumed |
//! | `POST /admin/replay/resume` | continues where it held |
//! | `POST /admin/replay/seek?to=T` | goes to the first event at or after `T` (RFC 3339 or ns) |
//! | `POST /admin/replay/speed?x=10` | a new pace (a factor, or `max`) from now on |
//!
//! Who may: see [`crate::auth::Access::admit_admin`]. Every reply is JSON:
//! the state after the command, or `{"error": ...}` with 400, 404 or 405.

use std::net::SocketAddr;

use quotehub_feed::{ReplayState, Speed, format_event_time, parse_event_time};
use serde_json::{Value, json};
use tokio::io::AsyncWrite;

use crate::auth::Access;
use crate::http::{Head, respond_json};
use crate::paths::ADMIN_REPLAY_PATH;
use crate::replay_admin::ReplayAdmin;

/// Serves `/admin` and `/admin/...`. `local` is the address the client
/// reached (see [`crate::auth::Access::admit_admin`]).
pub(crate) async fn serve<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &Head,
    peer: SocketAddr,
    local: SocketAddr,
    access: &Access,
    replay: Option<&ReplayAdmin>,
) {
    let (status, body) = match access.admit_admin(head, peer, local) {
        Err(refusal) => (refusal.status, json!({ "error": refusal.reason })),
        Ok(()) => answer(head, replay),
    };
    let _ = respond_json(stream, status, &body).await;
}

/// The status and JSON body for an admitted admin request.
fn answer(head: &Head, admin: Option<&ReplayAdmin>) -> (u16, Value) {
    let error = |status, message: String| (status, json!({ "error": message }));
    let Some(command) = head.path.strip_prefix(ADMIN_REPLAY_PATH) else {
        return error(
            404,
            format!("no admin endpoint {:?}; try GET {ADMIN_REPLAY_PATH}", head.path),
        );
    };
    let Some(admin) = admin else {
        return error(404, "this hub runs no replay of its own".into());
    };
    let control = &admin.control;
    let method = match command {
        "" => "GET",
        "/pause" | "/resume" | "/seek" | "/speed" => "POST",
        other => {
            return error(
                404,
                format!("no replay command {other:?}; the commands are pause, resume, seek?to=T and speed?x=F"),
            );
        }
    };
    if head.method != method {
        return error(405, format!("{} takes {method}", head.path));
    }
    let param = |name: &str| head.query_value(name);
    match command {
        "/pause" => control.pause(),
        "/resume" => control.resume(),
        "/seek" => match param("to").as_deref().map(parse_event_time) {
            Some(Ok(ts)) => control.seek(ts),
            Some(Err(message)) => return error(400, message),
            None => return error(400, "seek needs ?to=TIME (RFC 3339 or ns since the epoch)".into()),
        },
        "/speed" => match param("x").as_deref().map(str::parse::<Speed>) {
            Some(Ok(speed)) => control.set_speed(speed),
            Some(Err(message)) => return error(400, message),
            None => return error(400, "speed needs ?x=FACTOR (1, 10, 0.5) or ?x=max".into()),
        },
        _ => {}
    }
    (200, state_json(&control.state(), admin))
}

/// The replay's state as the admin endpoints show it.
fn state_json(state: &ReplayState, admin: &ReplayAdmin) -> Value {
    let time = |ts: Option<u64>| ts.map(format_event_time);
    let window = &admin.window;
    let mut symbols: Option<Vec<String>> = window
        .symbols
        .as_ref()
        .map(|set| set.iter().map(ToString::to_string).collect());
    if let Some(symbols) = &mut symbols {
        symbols.sort();
    }
    json!({
        "feed": admin.feed,
        "phase": state.phase.name(),
        "paused": state.paused,
        "speed": state.speed.to_string(),
        "delivered": state.delivered,
        "position": time(state.position_ts),
        "position_ns": state.position_ts,
        "seeking": time(state.seeking),
        "window": {
            "from": time(window.from),
            "to": time(window.to),
            "symbols": symbols,
        },
    })
}
