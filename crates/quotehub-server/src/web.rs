//! The browser quote board: a page and the JavaScript client module it
//! imports, served by the hub itself over plain HTTP, with no build step.

use tokio::io::AsyncWrite;

use crate::http::{Head, respond};

/// The board page.
const BOARD_HTML: &str = include_str!("../web/index.html");
/// The reference JavaScript decoder and client (also usable from Node).
const CLIENT_MODULE: &str = include_str!("../../quotehub-client/js/quotehub.mjs");

/// Serves the board's files; false when the path is not one of them.
pub(crate) async fn serve<S: AsyncWrite + Unpin>(stream: &mut S, head: &Head) -> bool {
    let (content_type, body) = match head.path.as_str() {
        "/" | "/index.html" => ("text/html; charset=utf-8", BOARD_HTML),
        "/quotehub.mjs" => ("text/javascript; charset=utf-8", CLIENT_MODULE),
        _ => return false,
    };
    if head.method != "GET" && head.method != "HEAD" {
        let _ = crate::http::respond_text(stream, 405, "the board takes GET\n").await;
        return true;
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
    true
}
