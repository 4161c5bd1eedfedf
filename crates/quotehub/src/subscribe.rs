//! `quotehub subscribe`: prints every update of the chosen symbols.

use std::io::Write;

use anyhow::Context;
use quotehub_client::{Client, ClientTls, Reconnect, ReplaySession};
use quotehub_proto::Channels;

use crate::cli::SubscribeArgs;
use crate::format;

pub fn run(args: SubscribeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(subscribe(args))
}

async fn subscribe(args: SubscribeArgs) -> anyhow::Result<()> {
    // Without --ca-file, $QUOTEHUB_CA_FILE (for wss:// only).
    let tls = match args.ca_file.as_deref() {
        Some(path) => ClientTls::with_ca_file(path)?,
        None => Client::tls_from_env(&args.url)?,
    };
    let symbols: Vec<&str> = args.symbols.iter().map(String::as_str).collect();
    // Checked before connecting, so a typo is named without a round trip.
    let channels = channels(&args.channels)?;
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
            let url = session.url(&args.url, feed)?;
            Client::connect_with_key(&url, tls, args.api_key.clone())
                .await
                .map_err(|err| connect_error(err, &url, "opening a replay session at"))?
        }
        None => {
            let mut client = Client::connect_with_key(&args.url, tls, args.api_key.clone())
                .await
                .map_err(|err| connect_error(err, &args.url, "connecting to"))?;
            if !args.no_reconnect {
                client = client.with_reconnect(Reconnect::default());
            }
            client.subscribe_to(&symbols, channels).await.context("subscribing")?;
            for symbol in client.unseen() {
                eprintln!("{}", no_data_yet(symbol));
            }
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

/// The channels named by `--channels` (the default, quotes and trades, when
/// none are), or an error naming the unknown one and the known ones.
fn channels(names: &[String]) -> anyhow::Result<Channels> {
    if names.is_empty() {
        return Ok(Channels::DEFAULT);
    }
    names.iter().try_fold(Channels::NONE, |set, name| {
        let channel = Channels::from_name(name.trim()).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown channel {name:?}; the channels are {}",
                Channels::ALL.names().join(", ")
            )
        })?;
        Ok(set.with(channel))
    })
}

/// The connection error as one sentence, with the likely cause named only
/// where it is known: nothing listening at the address.
fn connect_error(err: quotehub_client::Error, url: &str, doing: &str) -> anyhow::Error {
    if err.nothing_listening() {
        anyhow::anyhow!("{doing} {url}: {err} (is `quotehub serve` running?)")
    } else {
        anyhow::anyhow!("{doing} {url}: {err}")
    }
}

/// What to tell a person about a symbol no feed has published yet.
fn no_data_yet(symbol: &str) -> String {
    let upper = symbol.to_ascii_uppercase();
    if upper != symbol {
        format!("{symbol}: no data yet from any feed (symbols are case-sensitive: did you mean {upper}?)")
    } else {
        format!("{symbol}: no data yet from any feed; waiting for it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_read_from_their_names() {
        let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
        // TC0: none named: the default. TC1: a list. TC2: an unknown name.
        assert_eq!(channels(&[]).unwrap(), Channels::DEFAULT);
        assert_eq!(
            channels(&names(&["trades", "bars.1m"])).unwrap(),
            Channels::TRADES.with(Channels::BARS_1M)
        );
        let err = channels(&names(&["trades", "bars.5m"])).unwrap_err().to_string();
        assert!(
            err.contains("\"bars.5m\"") && err.contains("bars.1s, bars.1m, bbo"),
            "{err}"
        );
    }
}
