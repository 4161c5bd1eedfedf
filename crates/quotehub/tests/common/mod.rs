//! Real processes for the bus tests: a `nats-server -js` on a random
//! loopback port with its store in a temporary directory, `quotehub serve`
//! hubs (this package's binary) on `127.0.0.1:0`, a load balancer in front
//! of edges, and a JSON-lines feed several ingest hubs read at once. Each
//! process is killed when its handle drops, so a failing test leaves
//! nothing running. Tests skip, saying so, when `nats-server` is missing,
//! unless `QUOTEHUB_REQUIRE_ALL` is set.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use quotehub_client::{Client, Update};
use quotehub_proto::{Event, Flags, Symbol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest any one step may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The bundled session (74,900 events over 300 s of event time).
pub fn bundled_feed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feeds/us-equities-2026-11-20.jsonl")
}

/// Whether `nats-server` is installed; when it is not, fails under
/// `QUOTEHUB_REQUIRE_ALL` or says that `test` is skipped.
pub fn have_nats(test: &str) -> bool {
    let found = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var_os("QUOTEHUB_REQUIRE_ALL").is_none(),
            "{test}: missing nats-server; apt-get install nats-server, or run scripts/test.sh (QUOTEHUB_REQUIRE_ALL is set)"
        );
        eprintln!("skipping {test}: missing nats-server; apt-get install nats-server");
    }
    found
}

/// A child process whose stderr lines are kept (and can be waited for).
struct Logged {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let (tell, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&seen);
        let stderr = child.stderr.take().unwrap();
        // A plain thread: the pipe is blocking. It reads to the end so that
        // the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tell.send(line);
            }
        });
        Self { child, lines, seen }
    }

    /// Reads lines until one satisfies `found`, before the deadline.
    fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) if found(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("no {what} within {DEADLINE:?}; log:\n{}", self.log().join("\n")),
            }
        }
    }

    fn log(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal} failed");
    }

    /// Waits for the exit, before the deadline.
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "no exit within {DEADLINE:?}");
            // Polling the exit: std has no wait with a timeout.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `nats-server -js`; killed, and its store removed, on drop.
pub struct Nats {
    process: Logged,
    pub port: u16,
    store: PathBuf,
}

impl Nats {
    pub fn start(test: &str) -> Self {
        static STORES: AtomicU32 = AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "quotehub-nats-{test}-{}-{}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).unwrap();
        let mut command = Command::new("nats-server");
        command.args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"]).arg(&store);
        let process = Logged::spawn(command);
        process.wait_for("nats-server ready line", |line| line.contains("Server is ready"));
        let port = process
            .log()
            .iter()
            .find_map(|line| line.split("Listening for client connections on ").nth(1))
            .and_then(|rest| rest.rsplit(':').next())
            .and_then(|port| port.trim().parse().ok())
            .expect("nats-server names its client port");
        Self { process, port, store }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGSTOP: the bus stops answering; clients' sockets stay open.
    pub fn pause(&self) {
        self.process.signal("-STOP");
    }

    /// SIGCONT: it answers again, from where it was stopped.
    pub fn resume(&self) {
        self.process.signal("-CONT");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A `quotehub serve` process; killed on drop.
pub struct HubProcess {
    pub name: String,
    process: Logged,
    pub port: u16,
    config: PathBuf,
}

impl HubProcess {
    /// Starts `quotehub serve --bus NATS --role ROLE --listen 127.0.0.1:0
    /// ARGS` with `holder` as its lease id and `toml` added to its config
    /// file, and waits for its ready line.
    pub fn start(name: &str, nats: &Nats, role: &str, holder: &str, toml: &str, args: &[&str]) -> Self {
        static CONFIGS: AtomicU32 = AtomicU32::new(0);
        let config = std::env::temp_dir().join(format!(
            "quotehub-{name}-{}-{}.toml",
            std::process::id(),
            CONFIGS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&config, format!("[bus]\nholder = \"{holder}\"\n{toml}")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_quotehub"));
        command
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            // QUOTEHUB_HUB_LOG: a filter for the hubs' logs when digging
            // into a failure (e.g. `info,quotehub_bus=debug`).
            .env(
                "RUST_LOG",
                std::env::var("QUOTEHUB_HUB_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env_remove("QUOTEHUB_API_KEY")
            .args(["serve", "--listen", "127.0.0.1:0", "--bus", &nats.url(), "--role", role])
            .arg("--config")
            .arg(&config)
            .args(args);
        let process = Logged::spawn(command);
        let ready = process.wait_for(&format!("{name}'s ready line"), |line| line.contains("quotehub ready"));
        let port = ready
            .split("url=ws://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no port in {ready:?}"));
        Self {
            name: name.to_owned(),
            process,
            port,
            config,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/v1/quotes", self.port)
    }

    /// SIGKILL: the process dies with no chance to clean up.
    pub fn kill(&mut self) {
        self.process.signal("-KILL");
        self.process.wait();
    }

    /// SIGSTOP: the process is frozen as a starved VM or a long stall
    /// freezes it (its sockets keep buffering what peers send).
    pub fn pause(&self) {
        self.process.signal("-STOP");
    }

    /// SIGCONT: it goes on from where it was stopped.
    pub fn resume(&self) {
        self.process.signal("-CONT");
    }

    /// SIGTERM, as an operator stops it; returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process.signal("-TERM");
        self.process.wait()
    }

    /// Whether it logged a line holding `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.process.log().iter().any(|line| line.contains(text))
    }

    /// Everything it logged, for failure messages.
    pub fn log(&self) -> String {
        self.process.log().join("\n")
    }

    /// The value of the `/metrics` line `name` (labels included, e.g.
    /// `quotehub_bus_lease_holder_info{holder="a"}`), if present.
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let body = http_get(self.port, "/metrics").await;
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Polls `/metrics` until `name` is `value` (the hub changes state on
    /// its own timers: there is no event to wait on from outside).
    pub async fn metric_reaches(&self, name: &str, value: u64) {
        self.metric_until(name, &format!("{value}"), |now| now == Some(value))
            .await;
    }

    /// As [`HubProcess::metric_reaches`], until `name` is `value` or more.
    pub async fn metric_at_least(&self, name: &str, value: u64) {
        self.metric_until(name, &format!("at least {value}"), |now| {
            now.is_some_and(|now| now >= value)
        })
        .await;
    }

    /// Polls `/metrics` until `done` holds of `name`'s value (`wanted`
    /// says what for the failure message).
    async fn metric_until(&self, name: &str, wanted: &str, done: impl Fn(Option<u64>) -> bool) {
        let start = Instant::now();
        loop {
            if done(self.metric(name).await) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{}: {name} did not reach {wanted} within {DEADLINE:?} (now {:?})",
                self.name,
                self.metric(name).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// `GET path` on `127.0.0.1:port`: the body.
pub async fn http_get(port: u16, path: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let response = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("GET timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_owned()
}

/// A load balancer as operators put in front of edges: each connection
/// goes to the first backend that accepts it, in order, and is piped both
/// ways until either side closes. A dead backend refuses, so new
/// connections go to the next. Returns its port; it runs until the
/// runtime ends.
pub async fn balancer(backends: Vec<u16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backends = backends.clone();
            tokio::spawn(async move {
                for backend in backends {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", backend)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A live JSON-lines feed (`--feed tcp://...`) that several ingest hubs
/// read at once, as two hubs on one exchange feed do: it waits for
/// `readers` connections, then writes every line to each of them, `batch`
/// lines every `pause`. A reader that goes away is dropped; the rest go on.
/// After the last line the connections stay open until `stop` is dropped.
pub fn feed_server(lines: Vec<String>, readers: usize, batch: usize, pause: Duration) -> (u16, mpsc::Sender<()>) {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut outs = Vec::new();
        while outs.len() < readers {
            let Ok((out, _)) = listener.accept() else { return };
            out.set_write_timeout(Some(DEADLINE)).unwrap();
            outs.push(out);
        }
        for chunk in lines.chunks(batch) {
            let mut text = chunk.join("\n");
            text.push('\n');
            outs.retain_mut(|out| out.write_all(text.as_bytes()).is_ok());
            // The feed's own rhythm, not synchronisation.
            if stopped.recv_timeout(pause).is_ok() {
                return;
            }
        }
        let _ = stopped.recv();
    });
    (port, stop)
}

/// The bundled session's lines of `symbols`, in order.
pub fn feed_lines(symbols: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(bundled_feed()).unwrap();
    text.lines()
        .filter(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["sym"].as_str().is_some_and(|sym| symbols.contains(&sym))
        })
        .map(str::to_owned)
        .collect()
}

/// An event as the feed has it: without the hub's number and stamp.
pub fn bare(mut event: Event) -> Event {
    event.set_seq(0);
    event.set_recv_ts(0);
    event
}

/// The bundled session's events of `symbols`, per symbol, in order: what
/// a hub numbers 1..n.
pub fn feed_events(symbols: &[&str]) -> BTreeMap<String, Vec<Event>> {
    let only: HashSet<Symbol> = symbols.iter().map(|s| s.parse().unwrap()).collect();
    let mut feed = quotehub_feed::open_recorded(&bundled_feed()).unwrap();
    let (_keep, stop) = mpsc::channel::<()>();
    let options = quotehub_feed::ReplayOptions {
        speed: quotehub_feed::Speed::Max,
        looped: false,
    };
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    quotehub_feed::replay(feed.as_mut(), options, &stop, |event| {
        if only.contains(&event.symbol()) {
            events.entry(event.symbol().to_string()).or_default().push(bare(event));
        }
    })
    .unwrap();
    events
}

/// A client's record: symbol, number, the event it carries, and whether
/// it is a snapshot.
pub fn record(update: &Update) -> Option<(String, u64, Event, bool)> {
    match update {
        Update::Quote { record, .. } => Some((
            record.quote.symbol.to_string(),
            record.quote.seq,
            bare(Event::Quote(record.quote)),
            record.flags.contains(Flags::SNAPSHOT),
        )),
        Update::Trade { record, .. } => Some((
            record.trade.symbol.to_string(),
            record.trade.seq,
            bare(Event::Trade(record.trade)),
            record.flags.contains(Flags::SNAPSHOT),
        )),
        _ => None,
    }
}

/// A client and every quote and trade it received, in order, from each
/// symbol's first live record on (it subscribes mid-feed: the snapshots
/// before that are the last values, not part of the sequence followed).
pub struct Collector {
    pub name: &'static str,
    pub client: Client,
    pub got: Vec<(String, u64, Event)>,
    /// Symbols with a live record already: any snapshot after that counts.
    live: HashSet<String>,
    /// `Update::Reconnected` updates seen.
    pub reconnects: u32,
    /// Records flagged conflated (the client fell behind): the checks
    /// expect none.
    pub conflated: u32,
}

impl Collector {
    pub fn new(name: &'static str, client: Client) -> Self {
        Self {
            name,
            client,
            got: Vec::new(),
            live: HashSet::new(),
            reconnects: 0,
            conflated: 0,
        }
    }

    /// Reads one update (before the deadline) and keeps it.
    pub async fn read_one(&mut self) {
        let update = tokio::time::timeout(DEADLINE, self.client.next_update())
            .await
            .unwrap_or_else(|_| {
                // Where each symbol had got to: a stall mid-stream and a
                // missing last record read differently.
                let mut reached: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
                for (symbol, seq, ..) in &self.got {
                    let entry = reached.entry(symbol.as_str()).or_default();
                    *entry = (*seq, entry.1 + 1);
                }
                panic!(
                    "{}: nothing within {DEADLINE:?}; per symbol (last seq, records): {reached:?}, gaps {}",
                    self.name,
                    self.client.gaps()
                )
            })
            .unwrap_or_else(|error| panic!("{}: {error}", self.name))
            .unwrap_or_else(|| panic!("{}: the hub closed", self.name));
        match update {
            Update::Reconnected { .. } => self.reconnects += 1,
            Update::Quote { record, .. } if record.flags.contains(Flags::CONFLATED) => self.conflated += 1,
            Update::Trade { record, .. } if record.flags.contains(Flags::CONFLATED) => self.conflated += 1,
            _ => {}
        }
        if let Some((symbol, seq, event, snapshot)) = record(&update) {
            if snapshot && !self.live.contains(&symbol) {
                return;
            }
            self.live.insert(symbol.clone());
            self.got.push((symbol, seq, event));
        }
    }

    /// Whether it has each symbol's last event (number `n`).
    pub fn has_all(&self, expected: &BTreeMap<String, Vec<Event>>) -> bool {
        expected.iter().all(|(symbol, events)| {
            self.got
                .iter()
                .any(|(s, seq, _)| s == symbol && *seq == events.len() as u64)
        })
    }

    /// Reads until it has each symbol's last event.
    pub async fn read_to_end(&mut self, expected: &BTreeMap<String, Vec<Event>>) {
        while !self.has_all(expected) {
            self.read_one().await;
        }
    }

    /// Every symbol's records are the feed's events numbered on from the
    /// first live one it got to the last:
    /// each number once, in order, no gap, each carrying that event; and
    /// the client counted no gap and no `RESET`.
    pub fn assert_whole(&self, expected: &BTreeMap<String, Vec<Event>>) {
        for (symbol, events) in expected {
            let mine: Vec<&(String, u64, Event)> = self.got.iter().filter(|r| &r.0 == symbol).collect();
            let seqs: Vec<u64> = mine.iter().map(|r| r.1).collect();
            let first = *seqs.first().unwrap_or_else(|| panic!("{}: no {symbol}", self.name));
            let want: Vec<u64> = (first..=events.len() as u64).collect();
            if let Some(at) = (0..seqs.len().max(want.len())).find(|&i| seqs.get(i) != want.get(i)) {
                let around = |list: &[u64]| list[at.saturating_sub(3)..(at + 4).min(list.len())].to_vec();
                panic!(
                    "{}: {symbol} not numbered on with no gap and no duplicate: at index {at} got {:?}, want {:?} ({} records, {} conflated, {} reconnects, gaps {}, resets {})",
                    self.name,
                    around(&seqs),
                    around(&want),
                    seqs.len(),
                    self.conflated,
                    self.reconnects,
                    self.client.gaps(),
                    self.client.resets()
                );
            }
            for (_, seq, event) in &mine {
                assert_eq!(
                    event,
                    &events[*seq as usize - 1],
                    "{}: {symbol} {seq} is the feed's event {seq}",
                    self.name
                );
            }
        }
        assert_eq!(
            (self.client.gaps(), self.client.resets(), self.conflated),
            (0, 0, 0),
            "{}: no gap, no RESET and nothing conflated seen by the client",
            self.name
        );
    }
}
