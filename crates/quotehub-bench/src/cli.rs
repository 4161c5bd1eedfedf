//! Command-line interface: the load test's settings, and the hidden `floor`
//! role the tool starts itself in as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::workload::Layout;

/// End-to-end load test: a hub, a raw-TCP fan-out floor, a Node `ws` peer
/// and a Bun (uWebSockets) pub/sub peer, each fed the same open-loop quote
/// stream and read by the same clients; writes a Markdown report, JSON and
/// an SVG latency plot.
#[derive(Debug, Parser)]
#[command(name = "quotehub-bench", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub role: Option<Role>,
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// What else this binary runs as, besides the load test.
#[derive(Debug, Subcommand)]
pub enum Role {
    /// The raw-TCP fan-out floor that the load test runs as a child process.
    #[command(hide = true)]
    Floor(FloorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Client connections per target (1 to 10,000 or more, file descriptors permitting).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Distinct symbols the feed cycles through.
    #[arg(long, default_value_t = 20)]
    pub symbols: usize,
    /// Symbols each client subscribes to.
    #[arg(long, default_value_t = 5)]
    pub symbols_per_client: usize,
    /// How subscriptions are laid over the symbols: "blocks" gives each
    /// client consecutive symbols from its own offset, so clients share
    /// sets (as screens watching one list do); "scattered" draws each
    /// client's own, so sets rarely repeat.
    #[arg(long, value_enum, default_value_t = Layout::Blocks)]
    pub subscriptions: Layout,
    /// Open-loop feed rate, quotes per second (the offered load).
    #[arg(long, default_value_t = 2_000.0)]
    pub rate: f64,
    /// Seconds measured per phase (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of feed before each measured phase, not counted in latency.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Least microseconds between two writes of the feed; each write carries
    /// every quote due by then, as a feed's packets carry several messages.
    /// Latency still counts from each quote's intended time, so the wait (at
    /// most this long, only when quotes come faster) is in every target's
    /// figures alike. 0 writes each quote the moment it is due: at hundreds
    /// of thousands of quotes/s that spends most of a core on the feed's own
    /// system calls, taken from the target and its clients.
    #[arg(long, default_value_t = 50)]
    pub feed_write_gap_us: u64,
    /// Find each target's saturation by doubling the rate from --rate (phases
    /// of --duration) until a second phase delivers under 90 % of its offered
    /// load, or one's p50 passes --max-step-p50-ms, then bisecting the last
    /// doubling (--refine-steps); the best phase within that latency
    /// counts. Then measure latency at half of the hub's
    /// saturation rate, and every target at --moderate-deliveries (1 M and
    /// 4 M deliveries/s; each phase on a fresh start of the target).
    #[arg(long)]
    pub saturation: bool,
    /// The moderate loads, in deliveries/s (quotes/s × fan-out), at which a
    /// --saturation run measures every target after the search, each on a
    /// fresh start; comma-separated; 0 for none.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000.0, 4_000_000.0])]
    pub moderate_deliveries: Vec<f64>,
    /// A saturation step whose p50 latency passes this many milliseconds
    /// ends the search and does not count as saturation (its backlog grows).
    #[arg(long, default_value_t = 100.0)]
    pub max_step_p50_ms: f64,
    /// Most rate steps in --saturation mode.
    #[arg(long, default_value_t = 8)]
    pub max_steps: u32,
    /// Steps after the doubling in --saturation mode that bisect between the
    /// highest rate that kept up and the lowest that did not (each halves
    /// the bracket's ratio: 3 steps take it from 2× to 1.09×); 0 for none.
    #[arg(long, default_value_t = 3)]
    pub refine_steps: u32,
    /// Run the whole comparison this many times (each in OUT/run-K) and
    /// judge the targets on the median ratio: on a shared machine one run's
    /// ratios can swing by half.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// Benchmark a hub that is already running at this URL instead of
    /// starting one; start it with `quotehub serve --feed tcp://FEED_LISTEN`.
    #[arg(long, value_name = "WS_URL")]
    pub url: Option<String>,
    /// The API key for the hub given by --url, when it requires one
    /// (sent in the `Authorization` header; the hub the bench starts
    /// itself has no keys).
    #[arg(long, env = "QUOTEHUB_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// The hub binary to start (`quotehub`, run as `quotehub serve`)
    /// [default: `quotehub` in the directory of this binary, where cargo
    /// builds both: `cargo build --release -p quotehub -p quotehub-bench`].
    #[arg(long, value_name = "PATH")]
    pub hub_binary: Option<PathBuf>,
    /// Where the feed waits for the hub given by --url to connect.
    #[arg(long, default_value = "127.0.0.1:9107")]
    pub feed_listen: SocketAddr,
    /// Directory for report.md, report.json and latency.svg.
    #[arg(long, default_value = "target/bench-report")]
    pub out: PathBuf,
    /// Do not run the hub (measure the floor and the peer only).
    #[arg(long)]
    pub skip_hub: bool,
    /// Do not run the Node `ws` peer.
    #[arg(long)]
    pub skip_peer: bool,
    /// Do not run the Bun pub/sub peer.
    #[arg(long)]
    pub skip_bun: bool,
    /// Pin each server process (hub, floor, peers) to one CPU and the
    /// bench's feed and clients to the others, for per-core figures; the
    /// reports say pinned or unpinned. Needs at least 2 CPUs; not with
    /// --url (the bench did not start that hub).
    #[arg(long, conflicts_with = "url")]
    pub pin: bool,
    /// Also measure the hub deployed over NATS JetStream, right after the
    /// standalone hub and with the same clients and feed: a nats-server of
    /// its own (from PATH; skipped, saying why, when it is not there, an
    /// error under QUOTEHUB_REQUIRE_ALL), one ingest hub fed by the bench,
    /// two edge hubs with the clients split across them. Reports
    /// deliveries/s per edge and in total, what the bus adds to p50/p99 and
    /// at which hop, losses, and CPU per delivery per process.
    #[arg(long, conflicts_with = "url")]
    pub bus: bool,
    /// With --bus: where nats-server keeps the stream ("file" or "memory"),
    /// given to the hubs as `bus.storage`. Without it the hubs' default
    /// (file), and nothing is added to their config (so that a hub binary
    /// from before the setting runs too).
    #[arg(long, value_name = "STORAGE", requires = "bus")]
    pub bus_storage: Option<String>,
    /// Do not run the raw-TCP floor.
    #[arg(long)]
    pub skip_floor: bool,
    /// Instead of the load test: hold this many idle subscribed connections
    /// to a fresh hub and report its resident memory per connection.
    #[arg(long, value_name = "N")]
    pub idle_connections: Option<usize>,
    /// Instead of the load test: run a mixed hostile load (well-behaved
    /// readers beside stalled readers, request floods, connect/disconnect
    /// churn, replay sessions, silent connections) against a fresh hub for
    /// this many minutes, and report its memory and descriptors over time
    /// and the gaps the well-behaved readers saw (soak.md in --out).
    #[arg(long, value_name = "MINUTES")]
    pub soak: Option<f64>,
    /// The pace of the bundled session the --soak hub replays (a factor or "max").
    #[arg(long, default_value = "10")]
    pub soak_speed: String,
    /// OS threads running the client connections.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Source addresses 127.0.0.1..127.0.0.K the clients bind to, so large
    /// runs do not run out of ephemeral ports [default: one per 10,000 clients].
    #[arg(long)]
    pub source_addrs: Option<u8>,
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Address of the bench feed to connect to (binary quote records).
    #[arg(long)]
    pub feed: SocketAddr,
    /// Address to listen on for clients; the bound address is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}
