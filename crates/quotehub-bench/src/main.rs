//! `quotehub-bench`: the end-to-end load tool, a binary of its own so that
//! the shipped hub (`quotehub`) carries none of it.
//!
//! For each target in turn (the hub, with `--bus` the hub over NATS, the
//! raw-TCP floor, the Node `ws` peer, the Bun pub/sub peer) it starts the target as a child process, lets it
//! connect to an open-loop feed, connects the same clients with the same
//! subscriptions, drives the same quotes through it phase by phase, and
//! measures at the clients.
//!
//! | file | holds |
//! |---|---|
//! | [`workload`] | symbols, subscriptions, the quotes (JSON line and binary record) |
//! | [`feeder`] | the open-loop feed: quotes at intended times, no coordinated omission |
//! | [`clients`] | N WebSocket or TCP clients on a few threads |
//! | [`ws_client`] | the clients' WebSocket: frames read like the floor's |
//! | [`tally`] | HDR histograms and delivery counts per phase |
//! | [`bus`] | `--bus`: nats-server, an ingest hub and two edges, the clients split across the edges |
//! | [`target`] | starting and stopping the hub (the `quotehub` binary), the floor and the peers |
//! | [`pin`] | `--pin`: each server on one CPU, the feed and clients on the others |
//! | [`compare`] | one comparison of the targets, phase by phase; `--repeat` runs it again |
//! | [`floor`] | the raw-TCP fan-out floor (`quotehub-bench floor`, hidden) |
//! | [`proc_stats`] | a target's CPU and RSS from `/proc` |
//! | [`idle`] | resident memory per idle subscribed connection |
//! | [`soak`] | `--soak MINUTES`: a mixed hostile load against one hub, memory and descriptors over time |
//! | [`report`], [`svg`] | the results as Markdown, JSON and an SVG plot |
//! | [`repeat`] | `--repeat N`: the runs' ratios side by side, judged on the median |
//! | [`progress`] | the progress line |
//! | [`cli`] | the flags |

mod bus;
mod cli;
mod clients;
mod compare;
mod feeder;
mod floor;
mod idle;
mod pin;
mod proc_stats;
mod progress;
mod repeat;
mod report;
mod soak;
mod steps;
mod svg;
mod tally;
mod target;
mod workload;
mod ws_client;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match cli.role {
        None => compare::run(cli.bench),
        Some(cli::Role::Floor(args)) => floor::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs (of the `--soak` run's client library) go to stderr, filtered by
/// `RUST_LOG`, `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
