//! `quotehub replay FEED --listen ADDR`: a recorded feed as a live TCP
//! upstream of JSON lines, for hubs started with `--feed tcp://ADDR`.

use anyhow::Context;
use quotehub_feed::line_server::serve_json_lines;
use quotehub_feed::{ReplayOptions, open_recorded};
use tracing::info;

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    // Open it once now, so a bad path is an error at start, not per connection.
    open_recorded(&args.feed).with_context(|| format!("opening feed {}", args.feed.display()))?;
    let listener = std::net::TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let options = ReplayOptions {
        speed: args.speed,
        looped: args.looped,
    };
    info!(
        feed = %args.feed.display(),
        speed = ?options.speed,
        looped = options.looped,
        "replaying to hubs that connect; try: quotehub serve --feed tcp://{addr}"
    );
    let path = args.feed;
    serve_json_lines(listener, move || open_recorded(&path), options).context("accepting connections")?;
    Ok(())
}
