//! `quotehub subscribe`: prints every update of the chosen symbols.

use std::io::Write;

use anyhow::Context;
use quotehub_client::{Client, ClientTls, Reconnect, ReplaySession};

use crate::cli::SubscribeArgs;
use crate::format;

pub fn run(args: SubscribeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(subscribe(args))
}

async fn subscribe(args: SubscribeArgs) -> anyhow::Result<()> {
    // Without --ca-file, Client::connect reads $QUOTEHUB_CA_FILE (for wss:// only).
    let tls = args.ca_file.as_deref().map(ClientTls::with_ca_file).transpose()?;
    let symbols: Vec<&str> = args.symbols.iter().map(String::as_str).collect();
    let mut client = match &args.replay {
        // A replay session: its own paced copy of a feed, filtered by SYMBOLS; no reconnect
        // (a new connection would be a new replay).
        Some(feed) => {
            let session = ReplaySession {
                speed: args.speed.clone(),
                from: args.from.clone(),
                to: args.to.clone(),
                symbols: args.symbols.iter().filter(|s| *s != "*").cloned().collect(),
                looped: false,
            };
            let opened = match tls {
                Some(tls) => Client::connect_with(&session.url(&args.url, feed)?, tls).await,
                None => Client::replay(&args.url, feed, &session).await,
            };
            opened.with_context(|| format!("opening a replay of {feed:?} at {}", args.url))?
        }
        None => {
            let connected = match tls {
                Some(tls) => Client::connect_with(&args.url, tls).await,
                None => Client::connect(&args.url).await,
            };
            let mut client =
                connected.with_context(|| format!("connecting to {} (is `quotehub serve` running?)", args.url))?;
            if !args.no_reconnect {
                client = client.with_reconnect(Reconnect::default());
            }
            client.subscribe(&symbols).await.context("subscribing")?;
            client
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        let Some(update) = client.next_update().await? else {
            break;
        };
        let text = if args.json {
            format::json(&update)
        } else {
            format::line(&update)
        };
        if let Err(err) = writeln!(stdout, "{text}") {
            // `quotehub subscribe ... | head` closes the pipe: that is a normal end.
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(err.into());
        }
        printed += 1;
    }
    stdout.flush()?;
    Ok(())
}
