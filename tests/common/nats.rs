//! A real `nats-server` with JetStream for the bus tests: on a random
//! loopback port with its store in a temporary directory; it can be stopped
//! and started again on the same port with the same store, and is killed
//! (and its store removed) when dropped. Tests skip, saying so, when
//! `nats-server` is not installed, unless `QUOTEHUB_REQUIRE_ALL` is set.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::mpsc;

use super::DEADLINE;
use super::external::{REQUIRE_ALL, missing_program};

/// What the server logs once it serves clients (JetStream included: it
/// starts JetStream before it listens).
const READY: &str = "Server is ready";
/// The log line that names the port it listens on.
const LISTENING: &str = "Listening for client connections on ";

/// A running (or stopped) `nats-server -js`.
pub struct NatsServer {
    child: Option<Child>,
    /// Its log lines (it logs to stderr), read on a thread of their own;
    /// closed when the process exits.
    log: mpsc::UnboundedReceiver<String>,
    /// What it has logged since it last started, for failure messages.
    seen: Vec<String>,
    pub port: u16,
    store: PathBuf,
}

impl NatsServer {
    /// Starts a server, or returns `None` (after saying why) when
    /// `nats-server` is missing and `QUOTEHUB_REQUIRE_ALL` is not set.
    pub async fn start(test: &str) -> Option<Self> {
        if let Some(missing) = missing_program("nats-server") {
            assert!(
                std::env::var_os(REQUIRE_ALL).is_none(),
                "{test}: missing {missing}; apt-get install nats-server, or run scripts/test.sh ({REQUIRE_ALL} is set)"
            );
            eprintln!("skipping {test}: missing {missing}; apt-get install nats-server, or run scripts/test.sh");
            return None;
        }
        static STORES: AtomicU32 = AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "quotehub-nats-{test}-{}-{}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).unwrap();
        let (child, log) = spawn(&store, None);
        let mut server = Self {
            child: Some(child),
            log,
            seen: Vec::new(),
            port: 0,
            store,
        };
        server.port = server.wait_ready().await;
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it as an operator would (SIGTERM: it flushes its store and
    /// exits), waiting for the exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        // Its log closes when it exits.
        let closed = tokio::time::timeout(DEADLINE, async { while self.log.recv().await.is_some() {} }).await;
        if closed.is_err() {
            let _ = child.kill();
        }
        let _ = child.wait();
        assert!(
            closed.is_ok(),
            "nats-server did not exit within {DEADLINE:?} of SIGTERM"
        );
    }

    /// Freezes it (SIGSTOP): its connections stay open, so clients think
    /// they are connected, and nothing is answered until [`NatsServer::resume`].
    /// Returns once every thread of it is stopped: the signal is queued at
    /// once, but a thread that is running (or about to run) may still serve
    /// what it has already read before it stops, and did so under load.
    pub async fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
        let child = self.child.as_ref().expect("a running server");
        let tasks = PathBuf::from(format!("/proc/{}/task", child.id()));
        let stopped = tokio::time::timeout(DEADLINE, async {
            while !all_stopped(&tasks) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            stopped.is_ok(),
            "nats-server did not stop within {DEADLINE:?} of SIGSTOP"
        );
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("a running server");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped server");
        let (child, log) = spawn(&self.store, Some(self.port));
        self.child = Some(child);
        self.log = log;
        self.seen.clear();
        let port = self.wait_ready().await;
        assert_eq!(port, self.port, "restarted on another port");
    }

    /// Reads its log until it is ready; returns the port it listens on.
    async fn wait_ready(&mut self) -> u16 {
        let mut port = None;
        loop {
            match tokio::time::timeout(DEADLINE, self.log.recv()).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.split(LISTENING).nth(1) {
                        port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                    }
                    let ready = line.contains(READY);
                    self.seen.push(line);
                    if ready {
                        break;
                    }
                }
                Ok(None) => panic!("nats-server exited before it was ready:\n{}", self.seen.join("\n")),
                Err(_) => panic!("nats-server not ready within {DEADLINE:?}:\n{}", self.seen.join("\n")),
            }
        }
        port.unwrap_or_else(|| panic!("nats-server named no client port:\n{}", self.seen.join("\n")))
    }
}

/// Whether every thread under `/proc/PID/task` is stopped (state `T`).
fn all_stopped(tasks: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return false;
    };
    entries.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
    })
}

/// Starts `nats-server -js` on loopback (`port`, or a random one) with its
/// store in `store`; its log lines come on the channel.
fn spawn(store: &std::path::Path, port: Option<u16>) -> (Child, mpsc::UnboundedReceiver<String>) {
    let port = port.map_or_else(|| "-1".to_owned(), |port| port.to_string());
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start nats-server: {error}"));
    let (lines, log) = mpsc::unbounded_channel();
    let stderr = child.stderr.take().unwrap();
    // A plain thread: the pipe is blocking.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, log)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
