//! Follows symbols on a hub, reconnecting and resuming by itself:
//!
//! ```sh
//! cargo run --release -p quotehub -- serve &            # a hub on the bundled session
//! cargo run -p quotehub-client --example follow -- AAPL MSFT
//! QUOTEHUB_API_KEY=... cargo run -p quotehub-client --example follow -- --url wss://hub.example/v1/quotes '*'
//! ```
//!
//! Stop the hub and start it again while this runs: the client reconnects,
//! resumes every symbol where it left off, and, since a restarted hub numbers
//! in a new sequence space, says so (a `RESET` snapshot per symbol) instead of
//! taking the new numbers for a gap.

use std::process::ExitCode;

use quotehub_client::{Client, Reconnect, Update};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut url = "ws://127.0.0.1:8080/v1/quotes".to_owned();
    if let Some(at) = args.iter().position(|arg| arg == "--url") {
        if at + 1 >= args.len() {
            eprintln!("--url takes a ws:// or wss:// URL");
            return ExitCode::from(2);
        }
        url = args.remove(at + 1);
        args.remove(at);
    }
    if args.is_empty() {
        eprintln!("usage: follow [--url WS_URL] SYMBOL... ('*' for every symbol)");
        return ExitCode::from(2);
    }
    match follow(&url, &args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("follow: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn follow(url: &str, symbols: &[String]) -> quotehub_client::Result<()> {
    // Trusts $QUOTEHUB_CA_FILE for wss:// and presents $QUOTEHUB_API_KEY, when set.
    let mut client = Client::connect(url).await?.with_reconnect(Reconnect::default());
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    client.subscribe(&symbols).await?;
    for symbol in client.unseen() {
        eprintln!("{symbol}: no data yet from any feed");
    }
    while let Some(update) = client.next_update().await? {
        match update {
            Update::Quote { record, .. } => {
                let quote = record.quote;
                let reset = if record.flags.contains(quotehub_proto::Flags::RESET) {
                    "  (RESET: records were lost; this replaces them)"
                } else {
                    ""
                };
                println!(
                    "{} #{} {} x {} / {} x {}{reset}",
                    quote.symbol, quote.seq, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size
                );
            }
            Update::Trade { record, .. } => {
                let trade = record.trade;
                println!("{} #{} trade {} @ {}", trade.symbol, trade.seq, trade.size, trade.price);
            }
            Update::Reconnected { attempts } => {
                eprintln!(
                    "reconnected after {attempts} attempt(s); resumed (sequence-space changes so far: {})",
                    client.epoch_changes()
                );
            }
            Update::Status { record, .. } => eprintln!("status: {}", record.code.name()),
            _ => {}
        }
    }
    eprintln!("the hub closed the connection; gaps seen: {}", client.gaps());
    Ok(())
}
