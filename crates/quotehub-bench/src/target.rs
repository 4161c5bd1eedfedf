//! The processes under test: the hub (`quotehub serve`), the floor
//! (`quotehub-bench floor`) and the peers (`node ws_broadcast.mjs`, `bun
//! bun_pubsub.mjs`), each its own child process so its CPU and memory are its
//! own (and, under `--pin`, its core: [`crate::pin`]); each connects to the
//! bench feed and serves clients on a port of its own.

use std::io::BufRead;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::clients::Endpoint;
use super::pin;

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Which system a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Hub,
    Floor,
    /// The Node `ws` peer (serialized "peer", as before the Bun peer came).
    Peer,
    /// Bun's native pub/sub, uWebSockets inside.
    Bun,
    /// The hub over NATS JetStream: one ingest hub, two edges (`--bus`, [`crate::bus`]).
    Bus,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Hub => "quotehub",
            Kind::Floor => "raw-TCP floor",
            Kind::Peer => "Node ws peer",
            Kind::Bun => "Bun pub/sub peer",
            Kind::Bus => "quotehub over NATS (ingest + 2 edges)",
        }
    }
}

#[derive(Debug)]
pub struct Target {
    pub kind: Kind,
    child: Option<Child>,
    pub endpoint: Endpoint,
    /// Where the child's standard error goes.
    pub log: PathBuf,
}

/// The repository the binary was built from, for files it reads at run time
/// (the peer script, the `ws` package): the working directory if it is one.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(".");
    if here.join("benches/peer/ws_broadcast.mjs").is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The hub binary to start: `--hub-binary`, else `quotehub` beside this
/// binary (cargo builds both into one directory).
pub fn hub_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(path.is_file(), "--hub-binary {} is not a file", path.display());
        return Ok(path.to_path_buf());
    }
    let here = std::env::current_exe().context("finding this binary's directory")?;
    let beside = here.with_file_name(format!("quotehub{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.is_file(),
        "no hub binary at {}: build it beside this one (`cargo build --release -p quotehub -p quotehub-bench`) \
         or name one with --hub-binary PATH",
        beside.display()
    );
    Ok(beside)
}

/// Raises the open-file limit to its hard maximum (10,000 clients need
/// 10,000 descriptors here and 10,000 in the target, which inherits it).
pub fn raise_file_limit(needed: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft < hard {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(hard),
                maximum: limit.maximum,
            },
        )
        .context("raising the open-file limit (RLIMIT_NOFILE)")?;
    }
    anyhow::ensure!(
        hard >= needed,
        "{needed} connections need about {needed} open files, but the hard limit (ulimit -Hn) is {hard}; \
         raise it (e.g. `ulimit -n {needed}` as root, or LimitNOFILE) or use fewer clients"
    );
    Ok(hard)
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

pub fn log_file(out: &Path, name: &str) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let path = out.join(format!("{name}.log"));
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok((path, file))
}

impl Target {
    /// Starts `HUB serve` reading the bench feed at `feed`.
    pub fn start_hub(hub: &Path, feed: SocketAddr, out: &Path, max_connections: usize) -> anyhow::Result<Self> {
        let config = Self::load_limits(max_connections);
        Self::start_hub_with(hub, out, "hub", &config, &["--feed", &format!("tcp://{feed}")])
    }

    /// The `[limits]` a hub of the load needs: the load's clients all come
    /// from a few loopback addresses, up to 128 connects in flight per
    /// client thread, so no per-address share.
    pub fn load_limits(max_connections: usize) -> String {
        format!("[limits]\nmax_connections = {max_connections}\nmax_pending_per_ip = {max_connections}\n")
    }

    /// Starts `HUB serve` replaying the bundled session in a loop at
    /// `speed` (for `--soak`), with the default settings.
    pub fn start_bundled_hub(hub: &Path, out: &Path, speed: &str) -> anyhow::Result<Self> {
        Self::start_hub_with(hub, out, "hub", "", &["--speed", speed, "--loop"])
    }

    /// Starts `HUB serve` on a free port with `config` (TOML) and `args`;
    /// its config and log are `OUT/NAME.toml` and `OUT/NAME.log`.
    pub fn start_hub_with(hub: &Path, out: &Path, name: &str, config: &str, args: &[&str]) -> anyhow::Result<Self> {
        let listen = free_port()?;
        let config_path = out.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
        let (log, stderr) = log_file(out, name)?;
        let mut command = Command::new(hub);
        command
            .args(["serve", "--listen", &listen.to_string()])
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = pin::spawn(&mut command).with_context(|| format!("starting the hub ({} serve)", hub.display()))?;
        let mut target = Self {
            kind: Kind::Hub,
            child: Some(child),
            endpoint: Endpoint::WebSocket {
                addr: listen,
                url: format!("ws://{listen}/v1/quotes"),
                api_key: None,
                hub_stamps: true,
            },
            log,
        };
        target.wait_listening(listen)?;
        Ok(target)
    }

    /// A hub someone else started, at `url`.
    pub fn external_hub(url: &str, api_key: Option<String>) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .context("--url must be ws://HOST:PORT/PATH (the bench does not speak TLS)")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .with_context(|| format!("resolving {authority}"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{authority} has no IPv4 address"))?;
        Ok(Self {
            kind: Kind::Hub,
            child: None,
            endpoint: Endpoint::WebSocket {
                addr,
                url: url.to_string(),
                api_key,
                hub_stamps: true,
            },
            log: PathBuf::new(),
        })
    }

    /// Starts the raw-TCP floor (`quotehub-bench floor`).
    pub fn start_floor(feed: SocketAddr, out: &Path) -> anyhow::Result<Self> {
        let (log, stderr) = log_file(out, "floor")?;
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["floor", "--feed", &feed.to_string()]).stderr(stderr);
        let (child, addr) = spawn_announcing(command, "the floor")?;
        Ok(Self {
            kind: Kind::Floor,
            child: Some(child),
            endpoint: Endpoint::Tcp { addr },
            log,
        })
    }

    /// Starts the Node `ws` peer, or says why it cannot run here.
    pub fn start_peer(feed: SocketAddr, out: &Path) -> anyhow::Result<Result<Self, String>> {
        let root = repo_root();
        let script = root.join("benches/peer/ws_broadcast.mjs");
        if !script.is_file() {
            return Ok(Err(format!("{} is missing", script.display())));
        }
        let Some(node) = find_in_path("node") else {
            return Ok(Err("node is not on PATH (install Node.js 20 or later)".into()));
        };
        let ws_dir = std::env::var_os("QUOTEHUB_BENCH_WS_DIR")
            .map(PathBuf::from)
            .into_iter()
            .chain([root.join("crates/quotehub-client/js/node_modules/ws")])
            .find(|dir| dir.join("package.json").is_file());
        let Some(ws_dir) = ws_dir else {
            return Ok(Err(
                "the npm package `ws` is not installed: run `bash scripts/setup_clients.sh` \
                 (or set QUOTEHUB_BENCH_WS_DIR to a ws package directory)"
                    .into(),
            ));
        };
        let (log, stderr) = log_file(out, "peer")?;
        let mut command = Command::new(node);
        command.arg(&script).arg(feed.to_string()).arg(&ws_dir).stderr(stderr);
        let (child, addr) = spawn_announcing(command, "the Node ws peer")?;
        Ok(Ok(Self {
            kind: Kind::Peer,
            child: Some(child),
            endpoint: Endpoint::WebSocket {
                addr,
                url: format!("ws://{addr}/"),
                api_key: None,
                hub_stamps: false,
            },
            log,
        }))
    }

    /// Starts the Bun pub/sub peer, or says why it cannot run here.
    pub fn start_bun(feed: SocketAddr, out: &Path) -> anyhow::Result<Result<Self, String>> {
        let root = repo_root();
        let script = root.join("benches/peer/bun_pubsub.mjs");
        if !script.is_file() {
            return Ok(Err(format!("{} is missing", script.display())));
        }
        let bun = std::env::var_os("QUOTEHUB_BENCH_BUN")
            .map(PathBuf::from)
            .into_iter()
            .chain([root.join("benches/peer/node_modules/@oven/bun-linux-x64/bin/bun")])
            .find(|path| path.is_file())
            .or_else(|| find_in_path("bun"));
        let Some(bun) = bun else {
            return Ok(Err(
                "bun is not installed: run `bash scripts/setup_clients.sh` (the npm package @oven/bun-linux-x64 \
                 into benches/peer/node_modules), or set QUOTEHUB_BENCH_BUN to a bun binary"
                    .into(),
            ));
        };
        // A binary that is there but cannot run here (another CPU, an old
        // kernel) is a reason to skip, not a failed run.
        match Command::new(&bun).arg("--version").stdin(Stdio::null()).output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                return Ok(Err(format!(
                    "{} --version failed ({}): {}",
                    bun.display(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            Err(err) => return Ok(Err(format!("{} cannot run here: {err}", bun.display()))),
        }
        let (log, stderr) = log_file(out, "bun")?;
        let mut command = Command::new(bun);
        command.arg(&script).arg(feed.to_string()).stderr(stderr);
        let (child, addr) = spawn_announcing(command, "the Bun pub/sub peer")?;
        Ok(Ok(Self {
            kind: Kind::Bun,
            child: Some(child),
            endpoint: Endpoint::WebSocket {
                addr,
                url: format!("ws://{addr}/"),
                api_key: None,
                hub_stamps: false,
            },
            log,
        }))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until the child accepts connections at `addr`, or fails with its log.
    fn wait_listening(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                anyhow::bail!(
                    "{} exited ({status}) before listening:\n{}",
                    self.kind.label(),
                    self.log_tail()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not listen on {addr} within {START_TIMEOUT:?}:\n{}",
                self.kind.label(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines the child wrote to standard error.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Asks the child to stop (SIGTERM), and kills it if it has not within 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns a child that prints `listening HOST:PORT` on its first stdout line.
fn spawn_announcing(mut command: Command, what: &str) -> anyhow::Result<(Child, SocketAddr)> {
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = pin::spawn(&mut command).with_context(|| format!("starting {what}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            anyhow::bail!("{what} did not announce its address within {START_TIMEOUT:?}");
        }
    };
    match line
        .trim()
        .strip_prefix("listening ")
        .and_then(|addr| addr.parse().ok())
    {
        Some(addr) => Ok((child, addr)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{what} did not start (said {line:?}); see its log in the report directory")
        }
    }
}

pub fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
