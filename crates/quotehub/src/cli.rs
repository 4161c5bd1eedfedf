//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use quotehub_feed::Speed;

use crate::bench::workload::Layout;
use crate::feeds::FeedSpec;

/// A market-data hub: replays and relays stock quotes to WebSocket subscribers.
#[derive(Debug, Parser)]
#[command(name = "quotehub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve quotes over WebSocket at ws://LISTEN/v1/quotes, replaying a recorded feed.
    Serve(ServeArgs),
    /// Connect to a hub, subscribe to symbols and print each quote and trade.
    Subscribe(SubscribeArgs),
    /// Write the deterministic synthetic US-equity session (the bundled feed).
    Synth(SynthArgs),
    /// Serve a recorded feed as JSON lines over TCP to hubs that connect
    /// (`quotehub serve --feed tcp://ADDR`), each from the start, paced.
    Replay(ReplayArgs),
    /// Record what a hub ingests from feeds into a capture file (the hub's own
    /// format, indexed by time; replay it with `serve --feed FILE`).
    Record(RecordArgs),
    /// Convert a recorded feed: IEX TOPS or capture to JSON lines, anything to a capture.
    Convert(ConvertArgs),
    /// End-to-end load test: a hub, a raw-TCP fan-out floor and a Node `ws`
    /// peer, each fed the same open-loop quote stream and read by the same
    /// clients; writes a Markdown report, JSON and an SVG latency plot.
    Bench(BenchArgs),
    /// Write a local CA and a server certificate signed by it, for serving
    /// `wss://` (`serve --tls-cert/--tls-key`) to clients that trust the CA.
    Cert(CertArgs),
    /// The raw-TCP fan-out floor that `quotehub bench` runs as a child process.
    #[command(hide = true)]
    BenchFloor(BenchFloorArgs),
}

#[derive(Debug, Args)]
pub struct CertArgs {
    /// Directory for ca.pem, ca-key.pem, cert.pem and key.pem (created if
    /// missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A name or IP address the server is reached by; repeat for several
    /// [default: localhost, 127.0.0.1 and ::1].
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Feed to record, a recording or a live source (as for `serve --feed`); repeat for several.
    #[arg(long = "feed", value_name = "FEED", required = true)]
    pub feeds: Vec<FeedSpec>,
    /// The capture to write (a new file; an existing one is never overwritten).
    #[arg(long, short, value_name = "PATH")]
    pub out: PathBuf,
    /// Pace of recorded feeds: a factor of recorded time, or "max".
    #[arg(long, default_value = "max")]
    pub speed: Speed,
    /// Stop after this many seconds (default: when the feeds end, or on Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The feed to read, any format (detected by its bytes); `PATH#SYMBOLS` filters.
    #[arg(value_name = "INPUT")]
    pub input: FeedSpec,
    /// The file to write ("-" for standard output, JSON lines only).
    #[arg(value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Output format [default: from OUTPUT's extension: .jsonl, .qhc].
    #[arg(long, value_enum)]
    pub to: Option<OutputFormat>,
}

/// What `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Polygon-style JSON lines, exact decimal prices.
    Jsonl,
    /// The hub's capture format.
    Capture,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Recorded feed, any format (`PATH#SYMBOLS` filters).
    #[arg(value_name = "FEED")]
    pub feed: FeedSpec,
    /// Address to accept hubs on (HOST:PORT; a name such as localhost is resolved).
    #[arg(long, value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Pace: a factor of recorded time (1, 10, 0.5) or "max".
    #[arg(long, default_value = "1")]
    pub speed: Speed,
    /// Start the feed over when it ends.
    #[arg(long = "loop")]
    pub looped: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML) with settings an operator sets once; flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on (a name such as localhost is
    /// resolved) [default: 127.0.0.1:8080].
    #[arg(long, value_parser = listen_address)]
    pub listen: Option<SocketAddr>,
    /// Feed to serve: a recording (JSON lines, a quotehub capture, or an IEX
    /// TOPS capture, pcap/pcapng, optionally gzipped), or a live source:
    /// tcp://HOST:PORT (JSON lines), ws://HOST:PORT/PATH or wss://HOST/PATH
    /// (Polygon-style), quotehub://HOST:PORT or quotehub+tls://HOST:PORT
    /// (another hub; TLS roots: the web's plus $QUOTEHUB_CA_FILE or the
    /// config's tls.ca_file). `FEED#AAPL,MSFT` takes only those
    /// symbols. Repeat to serve several; recordings are merged by event time.
    /// Default: the bundled session (feeds/ of a checkout in the working
    /// directory, else written by this binary into ~/.cache/quotehub).
    #[arg(long = "feed", value_name = "FEED")]
    pub feeds: Vec<FeedSpec>,
    /// Also record what the hub ingests into this capture file (a new file).
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Replay speed: a factor of recorded time (1, 10, 0.5) or "max" [default: 1].
    #[arg(long)]
    pub speed: Option<Speed>,
    /// PEM certificate chain: serve wss:// and https:// (with --tls-key).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also serve the conformance echo route: WebSocket upgrades at / echo
    /// every message (for the Autobahn test suite; off by default).
    #[arg(long)]
    pub echo: bool,
    /// Slow-consumer policy for clients that do not choose one [default: conflate].
    #[arg(long, value_parser = ["conflate", "disconnect"])]
    pub policy: Option<String>,
    /// Start the feed over when it ends. Default: on for the bundled feed, off for others.
    #[arg(long = "loop", overrides_with = "no_loop")]
    pub looped: bool,
    /// Do not start the feed over when it ends.
    #[arg(long = "no-loop", overrides_with = "looped")]
    pub no_loop: bool,
    /// Shift each merged recording in time so that it starts when the first
    /// --feed does (for recordings of different days; the shift shows in
    /// the feed's name, in the log and at /admin/replay). Without it,
    /// recordings that start more than a day apart are refused.
    #[arg(long)]
    pub align: bool,

    // --- replay window (see also the admin endpoints at /admin/replay) ---
    /// Replay from this event time on (inclusive): RFC 3339 (2026-11-20T14:31:00Z) or ns since the epoch.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Replay up to this event time (exclusive): RFC 3339 or ns since the epoch.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Replay only these symbols (comma-separated: AAPL,MSFT).
    #[arg(long, value_name = "SYMBOLS")]
    pub symbols: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Hub to connect to (ws:// or wss://).
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/quotes")]
    pub url: String,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many updates (default: run until the hub closes).
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit when the connection is lost instead of reconnecting and resuming.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Open a replay session of this feed (a name from GET /v1/replay/feeds)
    /// instead of subscribing to live quotes; SYMBOLS filter it ("*": all).
    #[arg(long, value_name = "FEED")]
    pub replay: Option<String>,
    /// Pace of the replay session: a factor or "max" [default: 1].
    #[arg(long, requires = "replay")]
    pub speed: Option<String>,
    /// Replay session from this event time (RFC 3339 or ns).
    #[arg(long, requires = "replay", value_name = "TIME")]
    pub from: Option<String>,
    /// Replay session up to this event time (RFC 3339 or ns).
    #[arg(long, requires = "replay", value_name = "TIME")]
    pub to: Option<String>,
    /// PEM CA certificates to trust for a wss:// hub, besides the public
    /// web roots [default: $QUOTEHUB_CA_FILE].
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The API key to present, for a hub that requires one (sent in the
    /// Authorization header, never in the URL).
    #[arg(long, env = "QUOTEHUB_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Symbols to subscribe to, or "*" for every symbol.
    #[arg(required = true, value_name = "SYMBOL")]
    pub symbols: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Seed; the same seed writes the same bytes.
    #[arg(long, default_value_t = quotehub_feed::synth::DEFAULT_SEED)]
    pub seed: u64,
    /// Seconds of market time from the 09:30 ET open.
    #[arg(long, default_value_t = 300)]
    pub seconds: u32,
    /// File to write (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
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
    /// load; the best phase counts. Then measure latency at half of the hub's
    /// saturation rate.
    #[arg(long)]
    pub saturation: bool,
    /// Most rate steps in --saturation mode.
    #[arg(long, default_value_t = 8)]
    pub max_steps: u32,
    /// Run the whole comparison this many times (each in OUT/run-K) and
    /// judge the targets on the median ratio: on a shared machine one run's
    /// ratios can swing by half.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// Benchmark a hub that is already running at this URL instead of
    /// starting one; start it with `serve --feed tcp://FEED_LISTEN`.
    #[arg(long, value_name = "WS_URL")]
    pub url: Option<String>,
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
pub struct BenchFloorArgs {
    /// Address of the bench feed to connect to (binary quote records).
    #[arg(long)]
    pub feed: SocketAddr,
    /// Address to listen on for clients; the bound address is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// `HOST:PORT` to listen on: an address, or a name resolved to its first
/// address (`localhost:8080`).
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut addrs = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|err| format!("{text:?} is not HOST:PORT with a host name this machine resolves ({err})"))?;
    addrs.next().ok_or_else(|| format!("{text:?} resolves to no address"))
}
