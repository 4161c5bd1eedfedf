//! `--bus`: the hub deployed over NATS JetStream, measured beside the
//! standalone hub in the same run: a `nats-server -js` of its own (on a
//! free port, its store in the report directory), one ingest hub that the
//! bench feed feeds (`serve --bus URL --role ingest`), and two edge hubs
//! (`--role edge`) that the clients are split across, client i on edge
//! i mod 2. Each is its own child process, so each one's CPU is its own.
//!
//! Updates owed: an edge answers a subscribe once it has fetched the
//! symbol's records from the stream, and its snapshot comes from them; a
//! count of owed updates must not include what the snapshot already
//! covers. Here none does: the stream holds none of the workload's symbols
//! when the clients subscribe (the edges start on a priming record of a
//! symbol no client takes), and the feed writes nothing until every client
//! has its ack, so every quote published is owed to every subscriber of it,
//! on the bus as on the standalone hub, and a fresh deployment (fresh
//! store) serves each stint. Under `--pin` the whole deployment shares the
//! one server CPU.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clients::Endpoint;
use crate::feeder::Feeder;
use crate::pin;
use crate::target::{self, Kind, Target};

/// Edges in the deployment (the issue's figure).
pub const EDGES: usize = 2;
/// How long nats-server may take to be ready, and the ingest hub to connect to the feed.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// What nats-server logs once it serves clients (JetStream included).
const READY: &str = "Server is ready";
/// The log line that names its client port.
const LISTENING: &str = "Listening for client connections on ";
/// `QUOTEHUB_REQUIRE_ALL` turns "nats-server is missing" from a skip into an error.
const REQUIRE_ALL: &str = "QUOTEHUB_REQUIRE_ALL";
/// A symbol no client subscribes to (the workload's are `S00000`...): an
/// edge starts once the stream holds a record, so the ingest hub is fed
/// one of this before the edges start; nobody is owed it.
const PRIME_SYMBOL: &str = "BUSPRIME";

/// A running `nats-server -js`, stopped (SIGTERM, then kill) when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pub url: String,
    /// Its JetStream store, removed when it stops.
    store: PathBuf,
    /// Its log, under the report directory.
    pub log: PathBuf,
}

impl NatsServer {
    /// Starts one on a free loopback port, or says why it cannot run here
    /// (an error instead under `QUOTEHUB_REQUIRE_ALL`).
    pub fn start(out: &Path) -> anyhow::Result<Result<Self, String>> {
        let Some(program) = target::find_in_path("nats-server") else {
            let reason = "nats-server is not on PATH (apt-get install nats-server)".to_string();
            anyhow::ensure!(
                std::env::var_os(REQUIRE_ALL).is_none(),
                "--bus: {reason} ({REQUIRE_ALL} is set)"
            );
            return Ok(Err(reason));
        };
        let store = out.join("nats-store");
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
        let (log, mut log_file) = target::log_file(out, "nats-server")?;
        let mut command = Command::new(program);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = pin::spawn(&mut command).context("starting nats-server")?;
        let stderr = child.stderr.take().context("nats-server: no stderr")?;
        // Its log goes to the file throughout; the lines up to "ready" also
        // come here, for the port.
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log_file, "{line}");
                let _ = lines.send(line);
            }
        });
        let mut server = Self {
            child: Some(child),
            url: String::new(),
            store,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut port = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split(LISTENING).nth(1) {
                        port = rest.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                    }
                    if line.contains(READY) {
                        break;
                    }
                }
                Err(_) => anyhow::bail!(
                    "nats-server was not ready within {START_TIMEOUT:?}; see {}",
                    server.log.display()
                ),
            }
        }
        let port = port.with_context(|| format!("nats-server named no client port; see {}", server.log.display()))?;
        server.url = format!("nats://127.0.0.1:{port}");
        Ok(Ok(server))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The whole deployment, stopped edges first when dropped.
#[derive(Debug)]
pub struct Deployment {
    pub edges: Vec<Target>,
    pub ingest: Target,
    pub nats: NatsServer,
}

impl Deployment {
    /// Starts nats-server, the ingest hub on `feeder` (and waits for it to
    /// connect), primes the stream, then the edges; or says why the bus
    /// cannot run here. `storage`, when given, is every hub's `bus.storage`.
    pub fn start(
        hub: &Path,
        feeder: &mut Feeder,
        out: &Path,
        max_connections: usize,
        storage: Option<&str>,
    ) -> anyhow::Result<Result<Self, String>> {
        let nats = match NatsServer::start(out)? {
            Ok(nats) => nats,
            Err(reason) => return Ok(Err(reason)),
        };
        let mut limits = Target::load_limits(max_connections);
        if let Some(storage) = storage {
            limits = format!("{limits}[bus]\nstorage = {storage:?}\n");
        }
        let feed = format!("tcp://{}", feeder.local_addr()?);
        let bus = ["--bus", nats.url.as_str(), "--role"];
        let mut ingest = Target::start_hub_with(
            hub,
            out,
            "bus-ingest",
            &limits,
            &[&bus[..], &["ingest", "--feed", &feed]].concat(),
        )?;
        ingest.kind = Kind::Bus;
        feeder
            .accept(START_TIMEOUT)
            .with_context(|| format!("the ingest hub:\n{}", ingest.log_tail()))?;
        let prime = format!(
            r#"{{"ev":"Q","sym":"{PRIME_SYMBOL}","bp":"1","bs":1,"ap":"1.01","as":1,"t":{}}}"#,
            quotehub_proto::now_ns()
        );
        feeder.write_raw(format!("{prime}\n").as_bytes())?;
        let mut edges = Vec::with_capacity(EDGES);
        for edge in 1..=EDGES {
            let mut target = Target::start_hub_with(
                hub,
                out,
                &format!("bus-edge-{edge}"),
                &limits,
                &[&bus[..], &["edge"]].concat(),
            )
            .with_context(|| format!("edge {edge}; the ingest hub's log:\n{}", ingest.log_tail()))?;
            target.kind = Kind::Bus;
            edges.push(target);
        }
        Ok(Ok(Self { edges, ingest, nats }))
    }

    /// Where the clients connect: client i on edge i mod [`EDGES`].
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.edges.iter().map(|edge| edge.endpoint.clone()).collect()
    }

    /// Every process of the deployment, by the name the report gives it.
    pub fn processes(&self) -> Vec<(String, Option<u32>)> {
        let mut processes = vec![
            ("nats-server".to_string(), self.nats.pid()),
            ("ingest hub".to_string(), self.ingest.pid()),
        ];
        for (i, edge) in self.edges.iter().enumerate() {
            processes.push((format!("edge {}", i + 1), edge.pid()));
        }
        processes
    }

    /// The last lines of each hub's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut tail = format!("ingest hub:\n{}", self.ingest.log_tail());
        for (i, edge) in self.edges.iter().enumerate() {
            tail.push_str(&format!("\nedge {}:\n{}", i + 1, edge.log_tail()));
        }
        tail
    }

    /// Stops the edges, then the ingest hub, then the bus.
    pub fn stop(&mut self) {
        for edge in &mut self.edges {
            edge.stop();
        }
        self.ingest.stop();
        self.nats.stop();
    }
}
