//! The browser quote board: a page and the JavaScript client module it
//! imports, served by the hub itself over plain HTTP, with no build step.

use tokio::io::AsyncWrite;

use crate::http::{Head, respond};

/// The board page.
const BOARD_HTML: &str = include_str!("../../web/index.html");
/// The reference JavaScript decoder and client (also usable from Node).
const CLIENT_MODULE: &str = include_str!("../../../quotehub-client/js/quotehub.mjs");
/// The board's charts: TradingView's lightweight-charts, vendored from npm
/// (web/vendor/README.md says which version and how to update it), so the
/// page needs no CDN.
const CHARTS_MODULE: &str = include_str!("../../web/vendor/lightweight-charts.standalone.production.mjs");
/// Its licence (Apache-2.0), served beside it as it is redistributed.
const CHARTS_LICENSE: &str = include_str!("../../web/vendor/lightweight-charts.LICENSE");

/// The paths of the board's files (the router's table names them).
pub(crate) const BOARD_PATHS: [&str; 5] = [
    "/",
    "/index.html",
    "/quotehub.mjs",
    "/vendor/lightweight-charts.mjs",
    "/vendor/lightweight-charts.LICENSE.txt",
];

/// Serves one of the board's files ([`BOARD_PATHS`]).
pub(crate) async fn serve<S: AsyncWrite + Unpin>(stream: &mut S, head: &Head) {
    let (content_type, body) = match head.path.as_str() {
        "/quotehub.mjs" => ("text/javascript; charset=utf-8", CLIENT_MODULE),
        "/vendor/lightweight-charts.mjs" => ("text/javascript; charset=utf-8", CHARTS_MODULE),
        "/vendor/lightweight-charts.LICENSE.txt" => ("text/plain; charset=utf-8", CHARTS_LICENSE),
        _ => ("text/html; charset=utf-8", BOARD_HTML),
    };
    if head.method != "GET" && head.method != "HEAD" {
        let _ = crate::http::respond_text(stream, 405, "the board takes GET\n").await;
        return;
    }
    let body = if head.method == "HEAD" { "" } else { body };
    let _ = respond(
        stream,
        200,
        content_type,
        &[("Cache-Control", "no-cache")],
        body.as_bytes(),
    )
    .await;
}
