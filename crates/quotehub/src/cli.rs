//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use quotehub_feed::Speed;

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
    /// Convert a recorded feed: IEX TOPS (pcap) or a capture to JSON lines, anything to a capture.
    Convert(ConvertArgs),
    /// Write a local CA and a server certificate signed by it, for serving
    /// `wss://` (`serve --tls-cert/--tls-key`) to clients that trust the CA.
    Cert(CertArgs),
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
    /// Feed to serve: a recording (JSON lines, a quotehub capture, or IEX
    /// TOPS in a pcap/pcapng file, optionally gzipped), or a live source:
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
    /// Join NATS JetStream at these servers (nats://HOST:PORT, several
    /// separated by commas); without it the hub stands alone.
    #[arg(long, value_name = "URLS")]
    pub bus: Option<String>,
    /// The hub's role on the bus: ingest (publishes what its feeds bring),
    /// edge (no feeds: serves the bus's records), or both. Default: ingest.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<quotehub_bus::Role>,
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
    /// Channels to subscribe to, comma-separated: quotes, trades, bars.1s,
    /// bars.1m, bbo [default: quotes,trades].
    #[arg(long, value_delimiter = ',', value_name = "CHANNELS", conflicts_with = "replay")]
    pub channels: Vec<String>,
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
