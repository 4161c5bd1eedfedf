//! `quotehub replay FEED --listen ADDR`: a recorded feed as a live TCP
//! upstream of JSON lines, for hubs started with `--feed tcp://ADDR`.

use anyhow::Context;
use quotehub_feed::line_server::serve_json_lines;
use quotehub_feed::{FeedError, FeedInput, MergedFeed, RecordedFeed, ReplayOptions, open_recorded};
use tracing::info;

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let spec = args.feed;
    let name = spec.to_string();
    // Each connecting hub gets the feed from its start, through the filter.
    let open = move || -> Result<Box<dyn RecordedFeed>, FeedError> {
        let feed = open_recorded(std::path::Path::new(&spec.location))?;
        Ok(match &spec.symbols {
            None => feed,
            Some(symbols) => Box::new(MergedFeed::new(vec![FeedInput {
                feed,
                symbols: Some(symbols.clone()),
            }])),
        })
    };
    // Open it once now, so a bad path is an error at start, not per connection.
    open().with_context(|| format!("opening feed {name}"))?;
    let listener = std::net::TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let options = ReplayOptions {
        speed: args.speed,
        looped: args.looped,
    };
    info!(
        feed = %name,
        speed = ?options.speed,
        looped = options.looped,
        "replaying to hubs that connect; try: quotehub serve --feed tcp://{addr}"
    );
    serve_json_lines(listener, open, options).context("accepting connections")?;
    Ok(())
}
