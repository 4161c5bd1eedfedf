//! `quotehub`: serve quotes, subscribe to them, record and convert feeds,
//! generate the bundled feed, and make a local CA and server certificate
//! (`cert`). The end-to-end load tool is a binary of its own
//! (`crates/quotehub-bench`), so the shipped hub carries none of it.

mod cert;
mod cli;
mod config;
mod convert;
mod delay;
mod feeds;
mod format;
mod live;
mod record;
mod replay;
mod serve;
mod subscribe;
mod synth;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Subscribe(args) => subscribe::run(args),
        cli::Command::Synth(args) => synth::run(args),
        cli::Command::Record(args) => record::run(args),
        cli::Command::Convert(args) => convert::run(args),
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Cert(args) => cert::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", say_once(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes in one line, each said once: a cause whose
/// text the message already holds (many errors quote their source) is
/// dropped, and a cause that repeats the context before it replaces it.
fn say_once(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.iter().any(|part| part.contains(&text)) {
            continue;
        }
        match parts.last_mut() {
            Some(last) if text.contains(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}

/// Logs go to stderr (stdout is for quotes), filtered by `RUST_LOG`, `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal, so logs piped to files and tools stay plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
}
