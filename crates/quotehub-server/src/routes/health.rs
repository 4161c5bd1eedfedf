//! `GET /health`: a liveness answer for load balancers and probes, open
//! even when API keys are configured and served from the refusal reserve
//! when the hub is full.

use tokio::io::AsyncWrite;

use quotehub_engine::hub::Hub;
use quotehub_engine::stats::Stats;

use crate::http::respond;

/// Serves `/health`: clients, symbols and events in, as JSON; a hub whose
/// bus is disconnected says `"status":"degraded"`.
pub(crate) async fn serve<S: AsyncWrite + Unpin>(stream: &mut S, hub: &Hub) {
    let mut body = serde_json::json!({
        "status": "ok",
        "clients": hub.client_count(),
        "symbols": hub.table().symbol_count(),
        "events_in": Stats::get(&hub.stats().events_in),
    });
    if let Some(bus) = hub.bus() {
        // Still 200: the hub serves what it has, and says what it lacks.
        let view = bus.view();
        body["bus"] = serde_json::json!({
            "role": view.role,
            "connected": view.connected,
        });
        if !view.connected {
            body["status"] = "degraded".into();
            body["degraded"] = serde_json::json!(["bus disconnected"]);
        }
    }
    let body = body.to_string();
    let _ = respond(
        stream,
        200,
        "application/json",
        &[("Cache-Control", "no-cache")],
        body.as_bytes(),
    )
    .await;
}
